#!/usr/bin/env bash
# First README command: install build dependencies, build in Release, and start
# `smtpguard relay` on its embedded defaults (127.0.0.1:2525, state in ./smtpguard-state).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
install_missing $BUILD_PACKAGES
ensure_service_user
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSMTPGUARD_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" --target smtpguard
# Foreground; Ctrl-C (SIGINT) stops it. Add an identity from another shell:
#   build/src/cli/smtpguard client add shop --password-stdin --allowed-sender '*@shop.example.com'
exec build/src/cli/smtpguard relay
