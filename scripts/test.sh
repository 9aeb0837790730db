#!/usr/bin/env bash
# Sets up this machine (idempotently) and runs the whole test suite: format check, build, tests.
# Tests start real QEMU under TCG; the small test guest is built into images/ on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh --test-tools
scripts/tiny-guest.sh images/tiny

echo "== swift format lint"
swift format lint --strict --recursive Package.swift Sources Tests

echo "== swift build"
swift build

echo "== swift test"
swift test "$@"
