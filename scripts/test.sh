#!/usr/bin/env bash
# Installs what is needed, builds, and runs every test: once on the release build and once under
# AddressSanitizer + UndefinedBehaviorSanitizer. Exits non-zero when anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh release
scripts/build.sh asan
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
echo "== tests, release build"
ctest --test-dir build --output-on-failure -j2
echo "== tests, ASan+UBSan build"
ctest --test-dir build-asan --output-on-failure -j2
