#!/usr/bin/env bash
# Builds deploy/Containerfile with buildah, for hosts without a Docker engine (Debian 12:
# `apt-get install buildah debootstrap`; run as root), then checks the image: --version, uid
# 65532, every linked library found.
#
#   deploy/build-image.sh [--debootstrap-base] [TAG]        (TAG: kube-dataplane:dev)
#
# --debootstrap-base: for hosts that cannot pull from Docker Hub, first makes the two base images
# the Containerfile names, docker.io/library/debian:12 and :12-slim, from deb.debian.org with
# debootstrap (minbase; -slim without docs, man pages and locales, as Debian's own), and builds
# with --pull=never. When both are already in buildah's store, they are used as they are.
# The context is the working tree (.dockerignore applies), uncommitted changes included.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
pull=true
if [[ ${1:-} == --debootstrap-base ]]; then pull=never; shift; fi
tag=${1:-kube-dataplane:dev}
tmp=$(mktemp -d)
container=
cleanup() {
  if [[ -n $container ]]; then buildah rm "$container" >/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# A buildah image from a root file system directory.
import_rootfs() {
  local dir=$1 name=$2 c mnt
  c=$(buildah from scratch)
  mnt=$(buildah mount "$c")
  cp -a "$dir/." "$mnt/"
  buildah umount "$c" >/dev/null
  buildah config --cmd bash --os linux --arch amd64 \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$c"
  buildah commit --rm -q "$c" "$name" >/dev/null
  echo "made $name"
}

make_base_images() {
  local root=$tmp/rootfs
  debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian
  rm -f "$root/etc/apt/sources.list"
  cat > "$root/etc/apt/sources.list.d/debian.sources" <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  # As in Debian's images: apt deletes the .debs it installed (the Containerfile relies on it).
  cat > "$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";
EOF
  chroot "$root" apt-get clean
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/log/*.log
  import_rootfs "$root" docker.io/library/debian:12

  cat > "$root/etc/dpkg/dpkg.cfg.d/slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
EOF
  find "$root/usr/share/doc" -mindepth 2 -type f ! -name copyright -delete
  rm -rf "$root"/usr/share/{man,info,lintian}/*
  find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
  import_rootfs "$root" docker.io/library/debian:12-slim
}

have_image() { buildah inspect --type image "$1" >/dev/null 2>&1; }
if [[ $pull == never ]] && ! { have_image docker.io/library/debian:12 &&
                               have_image docker.io/library/debian:12-slim; }; then
  make_base_images
fi

buildah bud --layers --pull="$pull" --isolation chroot -f "$repo/deploy/Containerfile" -t "$tag" "$repo"

container=$(buildah from --pull-never "$tag")
buildah run --isolation chroot "$container" -- /usr/bin/kube-dataplane --version
uid=$(buildah run --isolation chroot "$container" -- id -u)
[[ $uid == 65532 ]] || { echo "runs as uid $uid, expected 65532" >&2; exit 1; }
if buildah run --isolation chroot "$container" -- ldd /usr/bin/kube-dataplane | grep 'not found'; then
  echo "libraries missing in the image" >&2
  exit 1
fi
buildah images "$tag"
