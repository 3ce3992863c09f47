#!/usr/bin/env bash
# Taxiway benchmark: millions of objects, quoted against a static-bytes baseline.
#
#   bash tests/bench/run.sh                 # 100k then 1m (the default)
#   bash tests/bench/run.sh 100k            # one size: smoke (2k, seconds), 100k, 1m, 10m, or e.g. 250k
#   bash tests/bench/run.sh 1m --duration 20 --fresh-store --keep
#   bash tests/bench/run.sh 100k --store postgres   # PostgreSQL beside SQLite, one run
#
# It builds release binaries (taxiway-server and the examples gen_corpus and
# static_page), installs wrk from Debian if it is missing, generates each size's
# deterministic corpus once and imports it once into a cached store under
# ${TAXIWAY_CACHE:-~/.cache/taxiway}/bench/<size>/ (delete that directory, or pass
# --fresh-store, to re-measure the import), then serves a copy of the store and
# measures pages, query rebuild, POST ingest, memory and disk. It stops by itself,
# stops every process it started, prints a Markdown table per size and writes it to
# tests/bench/results/<size>.md (plus the raw figures in <size>.json).
#
# Options after the sizes go to tests/bench/bench.py: --duration S (wrk seconds per
# figure), --post-seconds S (cap of each POST phase, default 120), --fresh-store,
# --keep, --import-bin BIN (build the cached store with another server binary),
# --store postgres (also measure PostgreSQL on the same corpus: a throwaway cluster from
# tests/pg/provision.sh named `bench`, filled by `taxiway-server migrate --from-sqlite`;
# results in tests/bench/results/postgres-<size>.md), --replicas 1,2,3 (PostgreSQL server
# counts of the read-throughput figures), --pg-settings 'name=value …' (that cluster's
# settings; default shared_buffers=2GB wal_compression=lz4 max_wal_size=4GB),
# --wrk-threads / --wrk-conns (their client).
#
# Not part of CI: a 1m run takes 15-20 minutes once its store is cached (building it
# with today's server takes hours: see docs/performance.md); `smoke` runs the whole
# pipeline on 2,000 objects in about 20 seconds once built.
# Honours CARGO_TARGET_DIR and CARGO_BUILD_JOBS. Results: docs/performance.md.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"

sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
if ! command -v wrk >/dev/null 2>&1; then
    echo "[bench] installing wrk (Debian package)" >&2
    $sudo apt-get install -y wrk >/dev/null 2>&1 ||
        { $sudo apt-get update >/dev/null && $sudo apt-get install -y wrk >/dev/null; }
fi
# nginx compressing the page is the baseline of the gzip figures (skipped without it).
# Where services start on install (systemd), Debian's package also starts its own
# nginx on port 80; the benchmark runs its own, on a free loopback port.
if ! command -v nginx >/dev/null 2>&1; then
    echo "[bench] installing nginx-light (Debian package)" >&2
    $sudo apt-get install -y nginx-light >/dev/null 2>&1 ||
        { $sudo apt-get update >/dev/null && $sudo apt-get install -y nginx-light >/dev/null; } ||
        echo "[bench] no nginx: the gzip figures will be skipped" >&2
fi

echo "[bench] building release binaries" >&2
cargo build --release -p taxiway-server --bin taxiway-server --example gen_corpus --example static_page
target="${CARGO_TARGET_DIR:-$repo/target}"
[[ $target = /* ]] || target="$repo/$target"

exec python3 "$repo/tests/bench/bench.py" \
    --repo "$repo" \
    --bin "$target/release/taxiway-server" \
    --gen "$target/release/examples/gen_corpus" \
    --static "$target/release/examples/static_page" \
    --cache "${TAXIWAY_CACHE:-$HOME/.cache/taxiway}/bench" \
    --results "$repo/tests/bench/results" \
    "$@"
