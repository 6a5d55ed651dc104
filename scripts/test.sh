#!/usr/bin/env bash
# Installs what is needed, builds, and runs every test: once on the release build and once under
# AddressSanitizer + UndefinedBehaviorSanitizer. Exits non-zero when anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# The real kube-apiserver v1.20.2 that the Kubernetes API tests run against, built from Debian's
# `kubernetes` source package into a cache directory outside the repository (~5-6 min once;
# skipped when built; its packages: scripts/packages/tests/apiserver.txt). Tests only: the demo
# does not need it. See tests/e2e/apiserver.sh.
(source tests/e2e/apiserver.sh && kdp_apiserver_install)
scripts/build.sh release
scripts/build.sh asan
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
echo "== tests, release build"
ctest --test-dir build --output-on-failure -j2
echo "== tests, ASan+UBSan build"
ctest --test-dir build-asan --output-on-failure -j2
