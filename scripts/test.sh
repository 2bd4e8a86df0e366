#!/usr/bin/env bash
# Second README command (and all of CI): install the test peers, build, run
# every test: unit and interop tests (ctest), then each libFuzzer target briefly.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
install_missing $BUILD_PACKAGES $TEST_PACKAGES
ensure_service_user
jobs=$(nproc)

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSMTPGUARD_TESTS=ON >/dev/null
cmake --build build -j"$jobs"

CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz -DSMTPGUARD_FUZZ=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSMTPGUARD_FUZZ_SECONDS="${SMTPGUARD_FUZZ_SECONDS:-20}" >/dev/null
cmake --build build-fuzz -j"$jobs"

status=0
ctest --test-dir build --output-on-failure -j"$jobs" || status=1
ctest --test-dir build-fuzz --output-on-failure -j"$jobs" || status=1

# One closing line over both runs.
passed=0; failed=0
for d in build build-fuzz; do
  log="$d/Testing/Temporary/LastTest.log"
  [ -f "$log" ] || continue
  p=$(grep -c '^Test Passed\.' "$log" || true)
  f=$(grep -cE '^Test (Failed|Fail)' "$log" || true)
  passed=$((passed + p)); failed=$((failed + f))
done
[ "$status" -ne 0 ] && [ "$failed" -eq 0 ] && failed=1
echo "${passed} passed, ${failed} failed"
exit "$status"
