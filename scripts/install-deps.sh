#!/usr/bin/env bash
# Installs what kube-dataplane needs to build, test and demo, from Debian 12's archive only.
set -euo pipefail
packages=(
  cmake ninja-build g++ pkg-config ccache git
  libboost1.81-dev libssl-dev openssl libyaml-cpp-dev libspdlog-dev libfmt-dev catch2
  libnftnl-dev libmnl-dev libsimdjson-dev libcli11-dev
  curl iproute2 nftables procps python3
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
