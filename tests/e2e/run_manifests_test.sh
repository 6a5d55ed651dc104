#!/usr/bin/env bash
# The binary end to end on a manifests directory: the command-line contract (one-line errors,
# exit codes), `run --dry-run`, and `run` serving /metrics, /healthz, /readyz while the directory
# changes under it.
source "$(dirname "$0")/lib.sh"
examples=$(cd "$(dirname "$0")/../../examples" && pwd)

# Bad flags and values: exit 2 and exactly one line naming the flag.
for args in "run --bogus" "proxy --manifests x --node-name n --node-ip 1.2.3" "dns --manifests x --listen 1.2.3.4:99999"; do
  set +e; err=$("$KDP_BIN" $args 2>&1 >/dev/null); rc=$?; set -e
  [ "$rc" -eq 2 ] || kdp_fail "'$args' exited $rc, want 2"
  [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] || kdp_fail "'$args' printed more than one line: $err"
done
"$KDP_BIN" --version | grep -q '^kube-dataplane [0-9]' || kdp_fail "--version"
set +e; "$KDP_BIN" run --manifests /nonexistent --dry-run 2>"$KDP_TMP/err"; rc=$?; set -e
[ "$rc" -eq 1 ] && grep -q -- '--manifests /nonexistent' "$KDP_TMP/err" || kdp_fail "missing dir: rc=$rc $(cat "$KDP_TMP/err")"

# --dry-run loads and summarises the examples.
out=$("$KDP_BIN" run --manifests "$examples" --dry-run 2>/dev/null)
grep -q 'Service shop/web ClusterIP 10.96.0.20' <<<"$out" || kdp_fail "dry-run: no shop/web"
grep -q 'EndpointSlices shop/api slices=1 endpoints=3 ready=2' <<<"$out" || kdp_fail "dry-run: api slices from pods"
grep -q 'decodeErrors=0' <<<"$out" || kdp_fail "dry-run: decode errors"

# run: metrics, health, readiness, and a live directory.
cp -r "$examples" "$KDP_TMP/m"
port=$(kdp_free_port)
url="http://127.0.0.1:$port"
kdp_spawn "$KDP_BIN" run --manifests "$KDP_TMP/m" --metrics "127.0.0.1:$port" --log-format json 2>"$KDP_TMP/log"
kdp_wait_for 10 curl -sf "$url/readyz" || kdp_fail "not ready: $(cat "$KDP_TMP/log")"
[ "$(curl -s "$url/healthz")" = ok ] || kdp_fail "/healthz"
metric() { curl -s "$url/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
services_are() { [ "$(metric 'kube_dataplane_store_objects{kind="Service"}')" = "$1" ]; }
errors_are() { [ "$(metric kube_dataplane_decode_errors_total)" = "$1" ]; }
services_are 6 || kdp_fail "6 Services"

cat > "$KDP_TMP/m/70-new.yaml" <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: checkout, namespace: shop}
spec: {clusterIP: 10.96.0.30, ports: [{port: 80}]}
YAML
kdp_wait_for 5 services_are 7 || kdp_fail "new file not loaded"
echo '{ not yaml' >> "$KDP_TMP/m/70-new.yaml"
kdp_wait_for 5 errors_are 1 || kdp_fail "broken file not counted"
services_are 7 || kdp_fail "broken file dropped its objects"
rm "$KDP_TMP/m/70-new.yaml"
kdp_wait_for 5 services_are 6 || kdp_fail "removed file kept its objects"
grep -q '"logger":"k8s"' "$KDP_TMP/log" || kdp_fail "json log lines"
echo "PASS run_manifests"
