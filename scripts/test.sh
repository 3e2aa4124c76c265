#!/usr/bin/env bash
# Set-up (scripts/setup.sh), then the whole test suite through CTest.
# Tests that need ../shared (golden fixtures, shared data) skip without it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
ctest --test-dir build --output-on-failure --timeout 900 "$@"
