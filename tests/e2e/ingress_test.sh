#!/usr/bin/env bash
# `kube-dataplane ingress` end to end on loopback: backends started here on 127.0.0.x, named as
# endpoints in a manifests directory; curl (--resolve) for host and path fan-out, 404/503/502,
# the 308 to https, X-Forwarded-*, streamed uploads and 413; openssl s_client for SNI; raw
# sockets for smuggling and oversized headers; a live edit of an Ingress.
source "$(dirname "$0")/lib.sh"
examples=$(cd "$(dirname "$0")/../../examples" && pwd)

# A backend that answers every request with its name, the request line, the body length it
# read, and the request headers it got (HTTP/1.1, keep-alive, Content-Length or chunked bodies).
cat > "$KDP_TMP/backend.py" <<'PY'
import base64, hashlib, http.server, socketserver, sys, time
name, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    def log_message(self, *a): pass
    def body_len(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            n = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""): pass
                    return n
                left = size
                while left:
                    left -= len(self.rfile.read(min(left, 1 << 16)))
                n += size
                self.rfile.readline()
        left = n = int(self.headers.get("Content-Length", "0"))
        while left:
            chunk = self.rfile.read(min(left, 1 << 16))
            if not chunk: break
            left -= len(chunk)
        return n
    def tunnel(self):
        key = self.headers["Sec-WebSocket-Key"] + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", base64.b64encode(hashlib.sha1(key.encode()).digest()).decode())
        self.end_headers()
        self.wfile.flush()
        self.connection.sendall(("hello from %s\n" % name).encode())
        for _ in range(1000):  # echo raw bytes until the client closes
            data = self.connection.recv(65536)
            if not data: break
            self.connection.sendall(data)
        self.close_connection = True
    def answer(self):
        if self.headers.get("Upgrade", "").lower() == "websocket":
            return self.tunnel()
        n = self.body_len()
        if self.path.startswith("/slow"):
            time.sleep(3)
        text = "name=%s\nline=%s %s\nbody=%d\n" % (name, self.command, self.path, n)
        text += "".join("h:%s: %s\n" % (k.lower(), v) for k, v in self.headers.items())
        data = text.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "keep-alive, X-Secret")
        self.send_header("X-Secret", "hop-by-hop")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = answer
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
S((addr, port), H).serve_forever()
PY

bport=$(kdp_free_port)
kdp_spawn python3 "$KDP_TMP/backend.py" web-a 127.0.0.2 "$bport"
kdp_spawn python3 "$KDP_TMP/backend.py" web-b 127.0.0.3 "$bport"
kdp_spawn python3 "$KDP_TMP/backend.py" api 127.0.0.4 "$bport"
for ip in 127.0.0.2 127.0.0.3 127.0.0.4; do
  kdp_wait_for 10 curl -sf "http://$ip:$bport/" || kdp_fail "backend $ip did not start"
done

m="$KDP_TMP/m"
mkdir -p "$m"
cp "$examples/60-tls-secret.yaml" "$m/"
svc() {  # svc NAME ADDRESS... : a Service on port 80 and its EndpointSlice on $bport
  local name=$1; shift
  cat <<YAML
---
apiVersion: v1
kind: Service
metadata: {name: $name, namespace: shop}
spec: {ports: [{name: http, port: 80, targetPort: $bport}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: $name-1, namespace: shop, labels: {kubernetes.io/service-name: $name}}
addressType: IPv4
ports: [{name: http, port: $bport}]
endpoints:
YAML
  local a
  for a in "$@"; do echo "- addresses: [$a]"; done
  [ $# -gt 0 ] || echo "  []"
}
{
  cat <<'YAML'
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: kube-dataplane
  annotations: {ingressclass.kubernetes.io/is-default-class: "true"}
spec: {controller: kube-dataplane.io/ingress}
YAML
  svc web 127.0.0.2 127.0.0.3
  svc api 127.0.0.4
  svc empty
  svc flaky 127.0.0.9 127.0.0.2   # 127.0.0.9: nothing listens
  svc dead 127.0.0.9
} > "$m/services.yaml"
# "endpoints: []" needs the list on the key's line.
sed -i -z 's/endpoints:\n  \[\]/endpoints: []/g' "$m/services.yaml"
cat > "$m/ingress.yaml" <<'YAML'
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop, namespace: shop}
spec:
  tls:
  - hosts: [shop.example.com, "*.shop.example.com"]
    secretName: shop-tls
  rules:
  - host: shop.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {name: http}}}}
      - {path: /api, pathType: Prefix, backend: {service: {name: api, port: {number: 80}}}}
      - {path: /empty, pathType: Exact, backend: {service: {name: empty, port: {number: 80}}}}
  - host: "*.shop.example.com"
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: api, port: {number: 80}}}}
YAML
cat > "$m/plain.yaml" <<'YAML'
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: plain, namespace: shop}
spec:
  rules:
  - host: plain.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
      - {path: /flaky, pathType: Prefix, backend: {service: {name: flaky, port: {number: 80}}}}
      - {path: /dead, pathType: Prefix, backend: {service: {name: dead, port: {number: 80}}}}
YAML
cat > "$m/slow.yaml" <<'YAML'
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: slow
  namespace: shop
  annotations: {kube-dataplane.io/proxy-read-timeout: "1"}
spec:
  rules:
  - host: slow.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: api, port: {number: 80}}}}
YAML

hport=$(kdp_free_port)
sport=$(kdp_free_port)
mport=$(kdp_free_port)
kdp_spawn "$KDP_BIN" ingress --manifests "$m" --http "127.0.0.1:$hport" --https "127.0.0.1:$sport" \
  --metrics "127.0.0.1:$mport" --threads 2 --max-body-size 8m --access-log "$KDP_TMP/access.log" \
  2>"$KDP_TMP/log"
kdp=$!
kdp_wait_for 10 curl -sf "http://127.0.0.1:$mport/readyz" || kdp_fail "not ready: $(cat "$KDP_TMP/log")"

# Slowloris: a header trickled a byte every half second is cut off by the header deadline
# (20 s); runs in the background while the rest of the test goes on, checked at the end.
python3 - "$hport" > "$KDP_TMP/slowloris" <<'PY' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
start = time.time()
data = b"GET / HTTP/1.1\r\nHost: plain.example.com\r\nX-Slow: " + b"a" * 200
try:
    for i in range(len(data)):
        s.sendall(data[i:i + 1])
        time.sleep(0.5)
        s.settimeout(0.001)
        try:
            if s.recv(100) == b"":
                break
        except socket.timeout:
            pass
        s.settimeout(5)
    print("not cut")
except OSError:
    pass
print("cut after %d s" % (time.time() - start))
PY
slowloris=$!
KDP_PIDS+=("$slowloris")

H="http://plain.example.com:$hport"
S="https://shop.example.com:$sport"
R=(--resolve "plain.example.com:$hport:127.0.0.1" --resolve "shop.example.com:$hport:127.0.0.1"
   --resolve "shop.example.com:$sport:127.0.0.1" --resolve "x.shop.example.com:$sport:127.0.0.1"
   --resolve "nowhere.example.com:$hport:127.0.0.1" --resolve "slow.example.com:$hport:127.0.0.1"
   -sk --max-time 10)
get() { curl "${R[@]}" "$@"; }
code() { curl "${R[@]}" -o /dev/null -w '%{http_code}' "$@"; }

# Host and path fan-out, round robin over both web endpoints.
names=$(for _ in 1 2 3 4; do get "$H/" | grep '^name='; done | sort -u | tr '\n' ' ')
[ "$names" = "name=web-a name=web-b " ] || kdp_fail "round robin over web: $names"
get "$S/api/v1" | grep -x 'name=api' >/dev/null || kdp_fail "https /api → api"
get "$S/api/v1?q=1" | grep -x 'line=GET /api/v1?q=1' >/dev/null || kdp_fail "target passed through"
get "$S/apix" | grep '^name=web-' >/dev/null || kdp_fail "/apix is not under /api"
get "https://x.shop.example.com:$sport/" | grep -x 'name=api' >/dev/null || kdp_fail "wildcard host"
[ "$(code "http://nowhere.example.com:$hport/")" = 404 ] || kdp_fail "unknown host → 404"
[ "$(code "$S/empty")" = 503 ] || kdp_fail "no endpoints → 503"
[ "$(code "$H/dead")" = 502 ] || kdp_fail "dead endpoint → 502"
t0=$SECONDS
[ "$(code "http://slow.example.com:$hport/slow")" = 504 ] || kdp_fail "upstream timeout → 504"
((SECONDS - t0 <= 2)) || kdp_fail "504 took $((SECONDS - t0)) s with a 1 s read timeout"
[ "$(code "http://slow.example.com:$hport/fast")" = 200 ] || kdp_fail "after a 504"
for _ in 1 2 3 4; do
  [ "$(code "$H/flaky")" = 200 ] || kdp_fail "a dead endpoint is retried on the next one"
done

# Plain HTTP to a TLS host: 308 to https.
loc=$(curl "${R[@]}" -o /dev/null -w '%{http_code} %{redirect_url}' "http://shop.example.com:$hport/a?b=c")
[ "$loc" = "308 https://shop.example.com:$sport/a?b=c" ] || kdp_fail "redirect: $loc"

# Headers: X-Forwarded-*, X-Real-IP, hop-by-hop removed both ways, Date and Server.
body=$(get -H 'Connection: keep-alive, X-Drop' -H 'X-Drop: 1' -H 'X-Forwarded-For: 6.6.6.6' "$S/api")
grep -qx 'h:x-forwarded-for: 127.0.0.1' <<<"$body" || kdp_fail "X-Forwarded-For: $body"
grep -qx 'h:x-real-ip: 127.0.0.1' <<<"$body" || kdp_fail "X-Real-IP"
grep -qx 'h:x-forwarded-proto: https' <<<"$body" || kdp_fail "X-Forwarded-Proto"
grep -qx 'h:x-forwarded-host: shop.example.com:'"$sport" <<<"$body" || kdp_fail "X-Forwarded-Host"
grep -qx "h:x-forwarded-port: $sport" <<<"$body" || kdp_fail "X-Forwarded-Port"
grep -q '^h:x-drop' <<<"$body" && kdp_fail "a header named by Connection was forwarded"
hdrs=$(get -D - -o /dev/null "$H/")
grep -qi '^date: ' <<<"$hdrs" || kdp_fail "no Date"
grep -qi '^server: ' <<<"$hdrs" || kdp_fail "no Server"
grep -qi '^x-secret' <<<"$hdrs" && kdp_fail "a response header named by Connection was forwarded"
[ "$(get -I "$H/" | head -1 | tr -d '\r')" = "HTTP/1.1 200 OK" ] || kdp_fail "HEAD"

# Keep-alive: several requests on one client connection.
n=$(get -v "$H/" "$H/" "$H/" 2>&1 | grep -c 'Re-using existing connection' || true)
[ "$n" -ge 2 ] || kdp_fail "client keep-alive"

# Bodies: 6 MB streamed up (Content-Length and chunked), 9 MB refused with 413.
head -c 6000000 /dev/urandom > "$KDP_TMP/6m"
get --data-binary @"$KDP_TMP/6m" "$H/" | grep -x 'body=6000000' >/dev/null || kdp_fail "6 MB upload"
get -H 'Transfer-Encoding: chunked' --data-binary @"$KDP_TMP/6m" "$H/" | grep -x 'body=6000000' >/dev/null ||
  kdp_fail "chunked upload"
head -c 9000000 /dev/zero > "$KDP_TMP/9m"
[ "$(code --data-binary @"$KDP_TMP/9m" "$H/")" = 413 ] || kdp_fail "9 MB upload → 413"

# A 1 GB upload streams through a second instance without a body limit: the proxy's peak
# resident memory stays far below the body's size (backpressure, one chunk in flight).
hport2=$(kdp_free_port)
sport2=$(kdp_free_port)
kdp_spawn "$KDP_BIN" ingress --manifests "$m" --http "127.0.0.1:$hport2" --https "127.0.0.1:$sport2" \
  --threads 1 --max-body-size 0 --access-log off 2>"$KDP_TMP/log2"
big_pid=$!
up2() { curl -s --max-time 60 --resolve "plain.example.com:$hport2:127.0.0.1" "$@"; }
kdp_wait_for 10 up2 -f "http://plain.example.com:$hport2/" || kdp_fail "second instance"
out=$(head -c 1000000000 /dev/zero | up2 -T - "http://plain.example.com:$hport2/")
grep -x 'body=1000000000' <<<"$out" >/dev/null || kdp_fail "1 GB upload: $out"
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$big_pid/status")
# (ASan builds keep up to a 256 MB quarantine of freed memory.)
[ "$hwm" -lt 524288 ] || kdp_fail "1 GB upload: peak RSS ${hwm} kB"
kill "$big_pid"

# Hostile input on raw sockets: CL+TE → 400, a 40 KB header → 431, a trickled header cut off.
raw() {  # raw PORT DATA: sends DATA, prints the status line of the answer
  python3 - "$1" "$2" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(sys.argv[2].encode().decode("unicode_escape").encode())
print(s.makefile("rb").readline().decode().strip())
PY
}
st=$(raw "$hport" 'POST / HTTP/1.1\r\nHost: plain.example.com\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n')
[[ "$st" == "HTTP/1.1 400"* ]] || kdp_fail "CL+TE: $st"
for req in 'POST / HTTP/1.1\r\nHost: plain.example.com\r\nTransfer-Encoding: gzip\r\n\r\nxyz' \
           'POST / HTTP/1.1\r\nHost: plain.example.com\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab' \
           'POST / HTTP/1.1\r\nHost: plain.example.com\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n' \
           'GET / HTTP/1.1\r\nHost: plain.example.com\r\nHost: shop.example.com\r\n\r\n' \
           'GET / HTTP/1.1\r\nHost: plain.example.com/x\r\n\r\n' \
           'GET / HTTP/1.1\r\n\r\n' 'NOT HTTP\r\n\r\n'; do
  st=$(raw "$hport" "$req")
  [[ "$st" == "HTTP/1.1 400"* ]] || kdp_fail "$req: $st"
done
st=$(raw "$hport" 'GET / HTTP/1.0\r\nHost: plain.example.com\r\n\r\n')
[[ "$st" == "HTTP/1.0 200"* ]] || kdp_fail "HTTP/1.0 client: $st"
# Pipelining: two requests in one write, two responses in order.
pipelined=$(python3 - "$hport" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"GET /one HTTP/1.1\r\nHost: plain.example.com\r\n\r\n"
          b"GET /two HTTP/1.1\r\nHost: plain.example.com\r\nConnection: close\r\n\r\n")
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk: break
    data += chunk
print(" ".join(l for l in data.decode().splitlines() if l.startswith("line=")))
PY
)
[ "$pipelined" = "line=GET /one line=GET /two" ] || kdp_fail "pipelining: $pipelined"
big=$(head -c 40000 /dev/zero | tr '\0' a)
st=$(raw "$hport" "GET / HTTP/1.1\\r\\nHost: plain.example.com\\r\\nX-Big: $big\\r\\n\\r\\n")
[[ "$st" == "HTTP/1.1 431"* ]] || kdp_fail "big header: $st"

# WebSocket: the Upgrade goes through, then bytes flow both ways (over TLS too).
ws() {  # ws SCHEME PORT: prints the status line, the backend's greeting and an echo
  python3 - "$1" "$2" <<'PY'
import socket, ssl, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=10)
if sys.argv[1] == "https":
    ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
    s = ctx.wrap_socket(s, server_hostname="shop.example.com")
s.sendall(b"GET /api/ws HTTP/1.1\r\nHost: shop.example.com\r\nUpgrade: websocket\r\n"
          b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
          b"Sec-WebSocket-Version: 13\r\n\r\n")
f = s.makefile("rb")
print(f.readline().decode().strip())
while f.readline() not in (b"\r\n", b""): pass
print(f.readline().decode().strip())
s.sendall(b"ping-through-the-tunnel\n")
print(f.readline().decode().strip())
PY
}
out=$(ws https "$sport" | tr '\n' '|')
[ "$out" = "HTTP/1.1 101 Switching Protocols|hello from api|ping-through-the-tunnel|" ] ||
  kdp_fail "websocket over https: $out"

# SNI: the Secret's certificate for its hosts, the default certificate otherwise.
subject() {
  openssl s_client -connect "127.0.0.1:$sport" ${1:+-servername "$1"} </dev/null 2>/dev/null |
    openssl x509 -noout -subject
}
subject shop.example.com | grep 'CN *= *shop.example.com' >/dev/null || kdp_fail "SNI shop.example.com"
subject a.shop.example.com | grep 'CN *= *shop.example.com' >/dev/null || kdp_fail "SNI wildcard"
subject other.example.com | grep 'kube-dataplane' >/dev/null || kdp_fail "SNI default: $(subject other.example.com)"
subject "" | grep 'kube-dataplane' >/dev/null || kdp_fail "no SNI: default"
openssl s_client -connect "127.0.0.1:$sport" -servername shop.example.com -tls1_1 </dev/null \
  >/dev/null 2>&1 && kdp_fail "TLS 1.1 accepted"

# Secrets live: a new one serves its host at once, a changed one replaces it, a broken one
# (key of another certificate) is refused and the previous certificate stays.
cat > "$m/newtls.yaml" <<'YAML'
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: newtls, namespace: shop}
spec:
  tls: [{hosts: [new.example.com], secretName: new-tls}]
  rules:
  - host: new.example.com
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}
YAML
cert() {  # cert CN: writes $KDP_TMP/CN.crt and CN.key (ECDSA P-256, self-signed)
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=$1" \
    -addext "subjectAltName=DNS:new.example.com" -keyout "$KDP_TMP/$1.key" -out "$KDP_TMP/$1.crt" 2>/dev/null
}
secret() {  # secret CRT KEY
  printf 'apiVersion: v1\nkind: Secret\nmetadata: {name: new-tls, namespace: shop}\ntype: kubernetes.io/tls\ndata:\n  tls.crt: %s\n  tls.key: %s\n' \
    "$(base64 -w0 "$1")" "$(base64 -w0 "$2")" > "$m/newtls-secret.yaml.tmp"
  mv "$m/newtls-secret.yaml.tmp" "$m/newtls-secret.yaml"
}
sni_is() { subject new.example.com | grep "CN *= *$1\$" >/dev/null; }
kdp_wait_for 5 sni_is 'kube-dataplane ingress default certificate' || kdp_fail "no Secret yet: default"
cert v1.new.example.com; cert v2.new.example.com
secret "$KDP_TMP/v1.new.example.com.crt" "$KDP_TMP/v1.new.example.com.key"
kdp_wait_for 5 sni_is v1.new.example.com || kdp_fail "new Secret not live: $(subject new.example.com)"
secret "$KDP_TMP/v2.new.example.com.crt" "$KDP_TMP/v2.new.example.com.key"
kdp_wait_for 5 sni_is v2.new.example.com || kdp_fail "changed Secret not live"
secret "$KDP_TMP/v1.new.example.com.crt" "$KDP_TMP/v2.new.example.com.key"
kdp_wait_for 5 grep -q 'certificate refused secret=shop/new-tls' "$KDP_TMP/log" || kdp_fail "broken Secret not refused"
sni_is v2.new.example.com || kdp_fail "broken Secret: the previous certificate is gone"

# Live reconfiguration: plain.example.com/ moves to the api Service.
sed -i 's/name: web, port: {number: 80}/name: api, port: {number: 80}/' "$m/plain.yaml"
is_api() { get "$H/" | grep -x 'name=api' >/dev/null; }
kdp_wait_for 5 is_api || kdp_fail "edited Ingress not live"

# Reconfiguration under a running load loop: endpoints added and removed, no request fails.
python3 - "$hport" "$KDP_TMP/stop" > "$KDP_TMP/load" <<'PY' &
import http.client, os, sys, time
ok = bad = 0
conn = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
deadline = time.time() + 30
# At least 2000 requests, so that the edits land in the middle of the loop.
while time.time() < deadline and (ok + bad < 2000 or not os.path.exists(sys.argv[2])):
    try:
        conn.request("GET", "/", headers={"Host": "plain.example.com"})
        r = conn.getresponse()
        r.read()
        if r.status == 200: ok += 1
        else: bad += 1
        if ok == 1: open(sys.argv[2] + ".started", "w").close()
    except Exception as e:
        bad += 1
        conn = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
print(ok, bad)
PY
load=$!
KDP_PIDS+=("$load")
served_by() { get "$H/" | grep -x "name=$1" >/dev/null; }
kdp_wait_for 10 test -e "$KDP_TMP/stop.started" || kdp_fail "load loop did not start"
sed -i 's/^- addresses: \[127.0.0.4\]$/- addresses: [127.0.0.4]\n- addresses: [127.0.0.3]/' "$m/services.yaml"
kdp_wait_for 5 served_by web-b || kdp_fail "added endpoint not live"
sed -i '/^- addresses: \[127.0.0.4\]$/d' "$m/services.yaml"
kdp_wait_for 5 eval '! served_by api && ! served_by api && ! served_by api' || kdp_fail "removed endpoint still served"
touch "$KDP_TMP/stop"
wait "$load" || true
read -r ok bad < "$KDP_TMP/load"
[ "$bad" = 0 ] && [ "$ok" -gt 100 ] || kdp_fail "requests failed during reconfiguration: ok=$ok bad=$bad"

wait "$slowloris" || true
cut=$(sed -n 's/^cut after \([0-9]*\) s$/\1/p' "$KDP_TMP/slowloris")
[ -n "$cut" ] && [ "$cut" -ge 15 ] && [ "$cut" -le 30 ] || kdp_fail "slowloris: $(cat "$KDP_TMP/slowloris")"

grep -q '"GET /api/v1?q=1 HTTP/1.1" 200' "$KDP_TMP/access.log" || kdp_fail "access log"
metrics=$(curl -s "http://127.0.0.1:$mport/metrics")
grep -q '^kube_dataplane_ingress_requests_total{namespace="shop",ingress="plain",service="web",status="200"} [1-9]' <<<"$metrics" &&
  grep -q '^kube_dataplane_ingress_requests_total{namespace="",ingress="",service="",status="404"} 1$' <<<"$metrics" &&
  grep -q '^kube_dataplane_ingress_requests_total{namespace="shop",ingress="shop",service="empty",status="503"} 1$' <<<"$metrics" &&
  grep -q '^kube_dataplane_ingress_upstream_response_duration_seconds_count{namespace="shop",ingress="shop",service="api"} [1-9]' <<<"$metrics" ||
  kdp_fail "requests metric: $(grep ingress_requests <<<"$metrics")"
# A clean stop on SIGTERM, and nothing for the sanitizers to say (ASan builds).
kill -TERM "$kdp"
wait "$kdp" || kdp_fail "exit status $? after SIGTERM: $(tail -5 "$KDP_TMP/log")"
grep -q 'Sanitizer' "$KDP_TMP/log" && kdp_fail "sanitizer: $(grep -A30 Sanitizer "$KDP_TMP/log" | head -40)"
echo "PASS ingress (requests during reconfiguration: $ok ok, 0 failed; slowloris cut after ${cut} s; 1 GB upload at peak RSS ${hwm} kB)"
