#!/usr/bin/env bash
# First README command: install build dependencies, build in Release, and start
# smtpguard on its embedded defaults (state in ./smtpguard-state).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
install_missing $BUILD_PACKAGES
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSMTPGUARD_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" --target smtpguard
# The relay is not built yet (issue 3); until then show the tool working.
exec build/src/cli/smtpguard status
