#!/usr/bin/env bash
# 10,000 Ingresses through the real binary (issue 5, benchmark 3): a manifests directory of 100
# files x 100 Ingresses (one host each, two paths, 10,000 Services and EndpointSlices), then
# CHANGES times one Ingress edited in its own file (its path moves from /vN to /vN+1), and the
# time from the file's rename into place until a client polling over keep-alive gets 200 for the
# new path. That includes the manifests watcher's 20 ms quiet period (k8s/manifests_source.h),
# decoding the file, the store, the route compile and the swap. Also resident memory (VmRSS,
# VmHWM) after the load, and the compile time the binary reports for the same changes.
#   bench/ingress_routes.sh [KDP_BIN] [CHANGES]
set -euo pipefail
cd "$(dirname "$0")/.."
KDP_BIN=$(realpath "${1:-build/kube-dataplane}")
changes=${2:-21}
# $KDP_TMP and KDP_PIDS (the backend and the binary, killed on exit, also on failure),
# kdp_free_port.
source tests/e2e/lib.sh
work=$KDP_TMP
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# A backend that answers 200 to everything (the route decides what answers, not the backend).
bport=$(kdp_free_port)
python3 - "$bport" <<'PY' &
import http.server, socketserver, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "3"); self.end_headers()
        self.wfile.write(b"ok\n")
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
S(("127.0.0.11", int(sys.argv[1])), H).serve_forever()
PY
KDP_PIDS+=("$!")  # not kdp_spawn: a background job of a function reads /dev/null, not the here-document

python3 - "$work/m" "$bport" <<'PY'
import os, sys
out, port = sys.argv[1], sys.argv[2]
os.makedirs(out)
for f in range(100):
    docs = []
    for j in range(100):
        i = f * 100 + j
        docs.append(f"""apiVersion: v1
kind: Service
metadata: {{name: svc-{i}, namespace: ns-{i % 50}}}
spec: {{ports: [{{name: http, port: 80, targetPort: {port}}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: svc-{i}-1, namespace: ns-{i % 50}, labels: {{kubernetes.io/service-name: svc-{i}}}}}
addressType: IPv4
ports: [{{name: http, port: {port}}}]
endpoints: [{{addresses: [127.0.0.11]}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: ing-{i}, namespace: ns-{i % 50}}}
spec:
  ingressClassName: kube-dataplane
  rules:
  - host: h{i}.bench.local
    http:
      paths:
      - {{path: /, pathType: Prefix, backend: {{service: {{name: svc-{i}, port: {{number: 80}}}}}}}}
      - {{path: /api, pathType: Exact, backend: {{service: {{name: svc-{i}, port: {{name: http}}}}}}}}
""")
    open(os.path.join(out, f"{f:03}.yaml"), "w").write("---\n".join(docs))
PY

hport=$(kdp_free_port); mport=$(kdp_free_port)
kdp_spawn "$KDP_BIN" ingress --manifests "$work/m" --http "127.0.0.1:$hport" \
  --https "127.0.0.1:$(kdp_free_port)" --metrics "127.0.0.1:$mport" --threads 1 --access-log off \
  2>"$work/log"
pid=$!
t0=$(date +%s.%N)
until curl -sf "http://127.0.0.1:$mport/readyz" >/dev/null 2>&1; do
  kill -0 "$pid" || { cat "$work/log"; exit 1; }
  sleep 0.05
done
load_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b - a}')
curl -sf -H 'Host: h9999.bench.local' "http://127.0.0.1:$hport/api" >/dev/null || { echo "route missing" >&2; exit 1; }
rss=$(awk '/VmRSS/{printf "%.1f", $2/1024}' "/proc/$pid/status")
hwm=$(awk '/VmHWM/{printf "%.1f", $2/1024}' "/proc/$pid/status")

# The changes: one Ingress in its own file, edited CHANGES times; the poller sends GET /vN+1 on
# one keep-alive connection until it gets 200 and prints the milliseconds since the rename.
times=$(python3 - "$work/m" "$hport" "$bport" "$changes" <<'PY'
import http.client, os, sys, time
out, hport, bport, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
def write(v):
    text = f"""apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: changed, namespace: ns-0}}
spec:
  ingressClassName: kube-dataplane
  rules:
  - host: changed.bench.local
    http:
      paths:
      - {{path: /v{v}, pathType: Exact, backend: {{service: {{name: svc-0, port: {{number: 80}}}}}}}}
"""
    tmp = os.path.join(out, ".changed.tmp")
    open(tmp, "w").write(text)
    os.rename(tmp, os.path.join(out, "changed.yaml"))
    return time.monotonic()
c = http.client.HTTPConnection("127.0.0.1", hport, timeout=5)
def status(path):
    c.request("GET", path, headers={"Host": "changed.bench.local"})
    r = c.getresponse(); r.read(); return r.status
write(0)
deadline = time.monotonic() + 10
while status("/v0") != 200:
    assert time.monotonic() < deadline, "first change never live"
for v in range(1, n + 1):
    t = write(v)
    while status(f"/v{v}") != 200:
        assert time.monotonic() - t < 10, "change never live"
    print(f"{(time.monotonic() - t) * 1000:.1f}")
    time.sleep(0.1)
PY
)
live=$(median <<<"$times")
max=$(sort -g <<<"$times" | tail -1)
compile=$(grep -o 'seconds=[0-9.]*' "$work/log" | tail -"$changes" | cut -d= -f2 | awk '{print $1 * 1000}' | median)
full=$(grep -o 'seconds=[0-9.]*' "$work/log" | head -1 | cut -d= -f2 | awk '{printf "%.1f", $1 * 1000}')
rss_after=$(awk '/VmRSS/{printf "%.1f", $2/1024}' "/proc/$pid/status")

summary="change → live route: median ${live} ms, max ${max} ms over ${changes} changes (goal ≤ 100 ms; includes the watcher's 20 ms quiet period); the binary's compile+swap per change: median ${compile} ms (first full load ${full} ms); RSS ${rss} MB after load (peak ${hwm} MB), ${rss_after} MB after the changes; start to ready ${load_s} s"
echo "$summary"
section=$(cat <<EOF
- date: $(date -u +%Y-%m-%dT%H:%MZ); machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(sed -n 's/model name\s*: //p' /proc/cpuinfo | head -1)
- command: \`bench/ingress_routes.sh KDP_BIN $changes\`: manifests directory, 100 files x 100 Ingresses (10,000 hosts, 20,000 paths, 10,000 Services + EndpointSlices), --threads 1; one Ingress edited in its own file $changes times, a keep-alive client polls the new path
- result: $summary
- change → live runs (ms): $(tr '\n' ' ' <<<"$times")
EOF
)
printf '%s\n\n%s\n' "## ingress: 10,000 Ingresses, change to live route and memory" "$section" |
  python3 bench/write_section.py
