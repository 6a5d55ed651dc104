#!/usr/bin/env bash
# `kube-dataplane ingress` end to end, the parts tests/e2e/ingress_test.sh does not cover:
# upstream framing (Content-Length passed through, chunked when the upstream chunks, an HTTP/1.0
# upstream that ends its body by closing), WebSocket over plain HTTP, IngressClass selection
# (the legacy kubernetes.io/ingress.class annotation, a default IngressClass turned off live),
# and the flags: --access-log-format json, --max-connections, --client-idle-timeout,
# --upstream-read-timeout, --load-balance; and the certificate expiry metric.
source "$(dirname "$0")/lib.sh"

# A backend on raw sockets, so that each path frames its response exactly as written here.
cat > "$KDP_TMP/backend.py" <<'PY'
import base64, hashlib, socketserver, sys, time
RESPONSES = {
    "/length": b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world",
    "/chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
}
CLOSING = {  # HTTP/1.0: the connection closes after the response
    "/http10": b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello world",
    "/http10-length": b"HTTP/1.0 200 OK\r\nContent-Length: 11\r\n\r\nhello world",
}
class H(socketserver.BaseRequestHandler):
    def handle(self):
        f = self.request.makefile("rb")
        while True:
            line = f.readline()
            if not line:
                return
            path = line.split()[1].decode()
            headers = {}
            while True:
                h = f.readline()
                if h in (b"\r\n", b"\n", b""):
                    break
                k, _, v = h.decode().partition(":")
                headers[k.strip().lower()] = v.strip()
            if headers.get("upgrade", "").lower() == "websocket":
                key = headers["sec-websocket-key"] + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
                accept = base64.b64encode(hashlib.sha1(key.encode()).digest())
                self.request.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                     b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept +
                                     b"\r\n\r\nhello over plain http\n")
                data = f.read1(65536)
                while data:
                    self.request.sendall(data)
                    data = f.read1(65536)
                return
            if path == "/slow":
                time.sleep(3)
            if path in CLOSING:
                self.request.sendall(CLOSING[path])
                return
            self.request.sendall(RESPONSES.get(path, b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n"))
class S(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
S((sys.argv[1], int(sys.argv[2])), H).serve_forever()
PY
bport=$(kdp_free_port)
kdp_spawn python3 "$KDP_TMP/backend.py" 127.0.0.5 "$bport"
kdp_wait_for 10 curl -sf "http://127.0.0.5:$bport/" || kdp_fail "backend did not start"

m="$KDP_TMP/m"
mkdir -p "$m"
cat > "$m/objects.yaml" <<YAML
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: kube-dataplane
  annotations: {ingressclass.kubernetes.io/is-default-class: "true"}
spec: {controller: kube-dataplane.io/ingress}
---
apiVersion: v1
kind: Service
metadata: {name: raw, namespace: t}
spec: {ports: [{name: http, port: 80, targetPort: $bport}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: raw-1, namespace: t, labels: {kubernetes.io/service-name: raw}}
addressType: IPv4
ports: [{name: http, port: $bport}]
endpoints: [{addresses: [127.0.0.5]}]
YAML
ingress() {  # ingress NAME HOST [METADATA-LINES] [SPEC-LINES]
  cat <<YAML
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: $1
  namespace: t
${3:-}
spec:
${4:-}
  rules:
  - host: $2
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: raw, port: {number: 80}}}}
YAML
}
{
  ingress named named.test "" "  ingressClassName: kube-dataplane"
  ingress legacy legacy.test "  annotations: {kubernetes.io/ingress.class: kube-dataplane}"
  # The legacy annotation names another class: not ours, whatever ingressClassName says.
  ingress legacy-other legacy-other.test "  annotations: {kubernetes.io/ingress.class: nginx}" \
    "  ingressClassName: kube-dataplane"
  ingress other other.test "" "  ingressClassName: nginx"
} > "$m/ingresses.yaml"
ingress unclassed unclassed.test > "$m/unclassed.yaml"

hport=$(kdp_free_port)
mport=$(kdp_free_port)
kdp_spawn "$KDP_BIN" ingress --manifests "$m" --http "127.0.0.1:$hport" --https "127.0.0.1:$(kdp_free_port)" \
  --metrics "127.0.0.1:$mport" --threads 1 --access-log "$KDP_TMP/access.log" --access-log-format json \
  --max-connections 4 --client-idle-timeout 2 --upstream-read-timeout 1 --upstream-connect-timeout 2 \
  --load-balance least-request 2>"$KDP_TMP/log"
kdp=$!
kdp_wait_for 10 curl -sf "http://127.0.0.1:$mport/readyz" || kdp_fail "not ready: $(cat "$KDP_TMP/log")"

R=(-s --max-time 10 --resolve "named.test:$hport:127.0.0.1")
code() { curl -s --max-time 10 -o /dev/null -w '%{http_code}' -H "Host: $1" "http://127.0.0.1:$hport${2:-/}"; }

# IngressClass: by name, by the legacy annotation (which wins over ingressClassName), and the
# Ingress without a class while ours is the default.
[ "$(code named.test)" = 200 ] || kdp_fail "ingressClassName"
[ "$(code legacy.test)" = 200 ] || kdp_fail "legacy annotation kubernetes.io/ingress.class"
[ "$(code legacy-other.test)" = 404 ] || kdp_fail "legacy annotation of another class served"
[ "$(code other.test)" = 404 ] || kdp_fail "another class served"
[ "$(code unclassed.test)" = 200 ] || kdp_fail "no class with our default IngressClass"
# Our IngressClass stops being the default: the unclassed Ingress goes, live.
sed -i 's/is-default-class: "true"/is-default-class: "false"/' "$m/objects.yaml"
kdp_wait_for 5 eval '[ "$(code unclassed.test)" = 404 ]' || kdp_fail "default class turned off, still served"
[ "$(code named.test)" = 200 ] || kdp_fail "named Ingress lost with the default class"

# Framing: Content-Length passed through, chunked passed on as chunked, an HTTP/1.0 upstream's
# close-delimited body chunked for an HTTP/1.1 client and read to the close by an HTTP/1.0 one.
headers() { curl "${R[@]}" -D - -o "$KDP_TMP/body" "$@" | tr -d '\r' | tr 'A-Z' 'a-z'; }
h=$(headers "http://named.test:$hport/length")
grep -qx 'content-length: 11' <<<"$h" && ! grep -q '^transfer-encoding' <<<"$h" &&
  [ "$(cat "$KDP_TMP/body")" = "hello world" ] || kdp_fail "Content-Length upstream: $h"
h=$(headers "http://named.test:$hport/chunked")
grep -qx 'transfer-encoding: chunked' <<<"$h" && ! grep -q '^content-length' <<<"$h" &&
  [ "$(cat "$KDP_TMP/body")" = "hello world" ] || kdp_fail "chunked upstream: $h"
h=$(headers "http://named.test:$hport/http10")
grep -qx 'transfer-encoding: chunked' <<<"$h" && [ "$(cat "$KDP_TMP/body")" = "hello world" ] ||
  kdp_fail "HTTP/1.0 upstream, close-delimited: $h"
h=$(headers "http://named.test:$hport/http10-length")
grep -qx 'content-length: 11' <<<"$h" && [ "$(cat "$KDP_TMP/body")" = "hello world" ] ||
  kdp_fail "HTTP/1.0 upstream with Content-Length: $h"
h=$(headers --http1.0 "http://named.test:$hport/http10")
grep -q '^http/1.0 200' <<<"$h" && ! grep -q '^transfer-encoding' <<<"$h" &&
  [ "$(cat "$KDP_TMP/body")" = "hello world" ] || kdp_fail "HTTP/1.0 client, HTTP/1.0 upstream: $h"
# Keep-alive survives the framings: three requests on one connection.
out=$(curl "${R[@]}" "http://named.test:$hport/length" "http://named.test:$hport/chunked" \
  "http://named.test:$hport/http10" -w '|%{num_connects}' 2>&1)
[ "$out" = "hello world|1hello world|0hello world|0" ] || kdp_fail "keep-alive across framings: $out"

# WebSocket over plain HTTP: the 101, the backend's greeting, an echo through the tunnel.
out=$(python3 - "$hport" <<'PY' | tr '\n' '|'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"GET /ws HTTP/1.1\r\nHost: named.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
f = s.makefile("rb")
print(f.readline().decode().strip())
while f.readline() not in (b"\r\n", b""): pass
print(f.readline().decode().strip())
s.sendall(b"echo over plain http\n")
print(f.readline().decode().strip())
PY
)
[ "$out" = "HTTP/1.1 101 Switching Protocols|hello over plain http|echo over plain http|" ] ||
  kdp_fail "websocket over http: $out"

# --upstream-read-timeout 1: a backend that answers after 3 s gets a 504.
[ "$(code named.test /slow)" = 504 ] || kdp_fail "--upstream-read-timeout"

# --client-idle-timeout 2: an idle keep-alive connection is closed after it, not before.
idle=$(python3 - "$hport" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"GET /length HTTP/1.1\r\nHost: named.test\r\n\r\n")
data = b""
while not data.endswith(b"hello world"):
    data += s.recv(4096)
start = time.time()
while s.recv(4096): pass
print(round(time.time() - start))
PY
)
[ "$idle" -ge 1 ] && [ "$idle" -le 4 ] || kdp_fail "--client-idle-timeout 2: closed after ${idle} s"

# --max-connections 4: four open connections are served, a fifth is closed at once.
out=$(python3 - "$hport" <<'PY'
import socket, sys
port = int(sys.argv[1])
held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(4)]
for s in held:  # each one answered: they all count
    s.sendall(b"GET /length HTTP/1.1\r\nHost: named.test\r\n\r\n")
    assert s.recv(4096).startswith(b"HTTP/1.1 200")
extra = socket.create_connection(("127.0.0.1", port), timeout=5)
try:
    extra.sendall(b"GET /length HTTP/1.1\r\nHost: named.test\r\n\r\n")
    print("refused" if extra.recv(4096) == b"" else "served")
except OSError:
    print("refused")
PY
)
[ "$out" = refused ] || kdp_fail "--max-connections 4: fifth connection $out"
metrics=$(curl -s "http://127.0.0.1:$mport/metrics")
grep -q '^kube_dataplane_ingress_connections_refused_total [1-9]' <<<"$metrics" ||
  kdp_fail "refused connections not counted"

# The default certificate's expiry: about a year ahead (generated at start).
expiry=$(sed -n 's/^kube_dataplane_ingress_certificate_expiry_seconds{secret=""} \([0-9.e+]*\)$/\1/p' <<<"$metrics")
[ -n "$expiry" ] && awk -v e="$expiry" 'BEGIN{exit !(e > 360*86400 && e <= 366*86400)}' ||
  kdp_fail "certificate expiry metric: $(grep expiry <<<"$metrics")"

# --access-log-format json: every line is one JSON object with the request's fields.
python3 - "$KDP_TMP/access.log" <<'PY' || kdp_fail "json access log: $(tail -3 "$KDP_TMP/access.log")"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert lines, "empty"
hit = [l for l in lines if l["target"] == "/length" and l["status"] == 200]
assert hit and hit[0]["host"].startswith("named.test") and hit[0]["ingress"] == "t/named", hit[:1]
assert hit[0]["upstream_addr"].startswith("127.0.0.5:") and hit[0]["bytes_sent"] == 11, hit[0]
assert any(l["status"] == 504 for l in lines)
PY

kill -TERM "$kdp"
wait "$kdp" || kdp_fail "exit status $? after SIGTERM: $(tail -5 "$KDP_TMP/log")"
grep -q 'Sanitizer' "$KDP_TMP/log" && kdp_fail "sanitizer: $(grep -A30 Sanitizer "$KDP_TMP/log" | head -40)"
echo "PASS ingress upstreams (framing, websocket over http, classes, flags, expiry metric)"
