#!/usr/bin/env bash
# Create (or reuse) the Python virtualenv with the real TAXII/STIX clients used by
# the interop test, and print its path on stdout (everything else goes to stderr).
#
#   venv=$(tests/interop/setup-venv.sh)
#   "$venv/bin/python" tests/interop/test_taxii21.py
#
# Idempotent: pip runs only when requirements.txt (or the interpreter) changed since
# the last successful install, recorded in a stamp file inside the venv.
#
# Environment:
#   TAXIWAY_CACHE   cache root (default: $HOME/.cache/taxiway); the venv is $TAXIWAY_CACHE/venv
#   TAXIWAY_PYTHON  interpreter to build the venv with (default: python3)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
requirements="$here/requirements.txt"
cache="${TAXIWAY_CACHE:-$HOME/.cache/taxiway}"
venv="$cache/venv"
python="${TAXIWAY_PYTHON:-python3}"
stamp="$venv/.taxiway-requirements.sha256"

log() { echo "setup-venv: $*" >&2; }

if ! command -v "$python" >/dev/null 2>&1; then
    log "no $python on PATH (set TAXIWAY_PYTHON)"
    exit 1
fi

# The key covers the pins and the interpreter the venv was made from.
key="$( { cat "$requirements"; "$python" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)"

if [[ -x "$venv/bin/python" ]] && [[ -f "$stamp" ]] && [[ "$(cat "$stamp")" == "$key" ]] \
    && "$venv/bin/python" -c 'import taxii2client.v21, stix2, stix2validator, medallion' >/dev/null 2>&1; then
    log "up to date: $venv"
    echo "$venv"
    exit 0
fi

mkdir -p "$cache"
if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
    log "creating $venv"
    rm -rf "$venv"
    "$python" -m venv "$venv"
fi

rm -f "$stamp"
log "installing pinned requirements into $venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$requirements" >&2
"$venv/bin/python" -c 'import taxii2client.v21, stix2, stix2validator, medallion' >&2
echo "$key" > "$stamp"
log "ready: $venv"
echo "$venv"
