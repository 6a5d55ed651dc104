#!/usr/bin/env bash
# Installs what the benchmarks need besides scripts/install-deps.sh: scripts/packages/bench/*.txt
# (nginx, HAProxy and wrk for bench/ingress.sh). Debian starts nginx and HAProxy on install (port
# 80 and the packaged config); the benchmarks run their own instances on loopback ports, so the
# packaged services are kept from starting (policy-rc.d) and disabled afterwards.
set -euo pipefail
cd "$(dirname "$0")/../scripts"
mapfile -t packages < <(cat packages/bench/*.txt | sed 's/#.*//' | tr -s ' \t' '\n' | sed '/^$/d' | sort -u)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
((${#missing[@]})) || exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
policy=/usr/sbin/policy-rc.d
ours=""
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod 755 "$policy"
  ours=1
fi
cleanup() { if [ -n "$ours" ]; then $SUDO rm -f "$policy"; fi; }
trap cleanup EXIT
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
if [ -d /run/systemd/system ]; then
  $SUDO systemctl disable --now nginx haproxy 2>/dev/null || true
fi
