#!/usr/bin/env python3
"""The dns benchmark's cluster, written twice from one model: as manifests for kube-dataplane and
as zone files for NSD (the same records), plus dnsperf query files.

  dns_gen.py OUT_DIR [SERVICES] [ENDPOINTS_PER_SERVICE]

OUT_DIR/manifests/*.yaml, OUT_DIR/nsd/{cluster.local,10.in-addr.arpa}.zone, OUT_DIR/queries.txt
(A, SRV, PTR, NXDOMAIN mix), OUT_DIR/upstream.zone and OUT_DIR/forward-queries.txt (names under
example.test for the cached-forwarding benchmark).
One Service in ten is headless: its ready endpoints get A records, hostnames (dashed IPs), PTRs
and SRV targets; the others get A, SRV (named port) and PTR for their ClusterIP."""
import os
import random
import sys

out = sys.argv[1]
services = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
per = int(sys.argv[3]) if len(sys.argv) > 3 else 5
zone = "cluster.local"
os.makedirs(f"{out}/manifests", exist_ok=True)
os.makedirs(f"{out}/nsd", exist_ok=True)


def cluster_ip(i):
    return f"10.96.{i >> 8}.{i & 255}"


def pod_ip(n):
    return f"10.{128 + (n >> 16)}.{(n >> 8) & 255}.{n & 255}"


def ptr(ip):
    return ".".join(reversed(ip.split("."))) + ".in-addr.arpa."


fwd = [f"name{i}.example.test." for i in range(1000)]
records, reverse, queries = [], [], []
files = [open(f"{out}/manifests/{k:02d}.yaml", "w") for k in range(10)]
for i in range(services):
    ns, name = f"ns{i % 100}", f"svc-{i}"
    fqdn = f"{name}.{ns}.svc.{zone}."
    headless = i % 10 == 0
    f = files[i % 10]
    ips = [pod_ip(i * per + e) for e in range(per)]
    spec = "clusterIP: None" if headless else f"clusterIP: {cluster_ip(i)}"
    f.write(f"""---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {ns}}}
spec: {{{spec}, ports: [{{name: http, port: 80, targetPort: 8080}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: {name}-abc, namespace: {ns}, labels: {{kubernetes.io/service-name: {name}}}}}
addressType: IPv4
ports: [{{name: http, protocol: TCP, port: 8080}}]
endpoints:
""")
    for ip in ips:
        f.write(f"- {{addresses: [{ip}], conditions: {{ready: true}}}}\n")
    srv = f"_http._tcp.{fqdn}"
    if headless:
        weight = max(1, 100 // per)
        for ip in ips:
            host = f"{ip.replace('.', '-')}.{fqdn}"
            records.append(f"{fqdn} 30 IN A {ip}")
            records.append(f"{host} 30 IN A {ip}")
            records.append(f"{srv} 30 IN SRV 0 {weight} 8080 {host}")
            reverse.append(f"{ptr(ip)} 30 IN PTR {host}")
        queries.append((f"{fqdn} A", 1))
        queries.append((f"{srv} SRV", 1))
        queries.append((f"{ptr(ips[0])} PTR", 1))
    else:
        ip = cluster_ip(i)
        records.append(f"{fqdn} 30 IN A {ip}")
        records.append(f"{srv} 30 IN SRV 0 100 80 {fqdn}")
        reverse.append(f"{ptr(ip)} 30 IN PTR {fqdn}")
        queries.append((f"{fqdn} A", 4))
        queries.append((f"{srv} SRV", 2))
        queries.append((f"{ptr(ip)} PTR", 2))
    queries.append((f"nope-{i}.{ns}.svc.{zone}. A", 2))
for f in files:
    f.close()

soa = f"ns.dns.{zone}. hostmaster.{zone}. 1 7200 1800 86400 30"
with open(f"{out}/nsd/{zone}.zone", "w") as z:
    z.write(f"$ORIGIN {zone}.\n{zone}. 30 IN SOA {soa}\n{zone}. 30 IN NS ns.dns.{zone}.\n")
    z.write(f"ns.dns.{zone}. 30 IN A 10.96.0.10\ndns-version.{zone}. 30 IN TXT \"1.1.0\"\n")
    z.write("\n".join(records) + "\n")
with open(f"{out}/nsd/10.in-addr.arpa.zone", "w") as z:
    z.write(f"10.in-addr.arpa. 30 IN SOA {soa}\n10.in-addr.arpa. 30 IN NS ns.dns.{zone}.\n")
    z.write("\n".join(reverse) + "\n")

# The mix: weights above (ClusterIP Services: A 4, SRV 2, PTR 2, NXDOMAIN 2 in 10), shuffled.
rng = random.Random(1)
lines = [q for q, w in queries for _ in range(w)]
rng.shuffle(lines)
with open(f"{out}/queries.txt", "w") as q:
    q.write("\n".join(lines[:50000]) + "\n")

with open(f"{out}/upstream.zone", "w") as z:
    z.write("example.test. 3600 IN SOA ns.example.test. admin.example.test. 1 3600 600 86400 60\n")
    z.write("example.test. 3600 IN NS ns.example.test.\nns.example.test. 3600 IN A 192.0.2.53\n")
    for i, n in enumerate(fwd):
        z.write(f"{n} 3600 IN A 192.0.2.{i % 250 + 1}\n")
with open(f"{out}/forward-queries.txt", "w") as q:
    q.write("\n".join(f"{n} A" for n in fwd) + "\n")
