#!/usr/bin/env bash
# TAXII 2.0 interop: the real taxii2client.v20 against the real binary serving 2.0
# alone and 2.0 beside 2.1; stix2-validator --version 2.0 on everything served.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="$(bash "$repo/tests/interop/setup-venv.sh")"
cd "$repo"
TAXIWAY_BIN="${TAXIWAY_BIN:-$repo/target/debug/taxiway-server}" "$venv/bin/python" tests/interop/test_taxii20.py
