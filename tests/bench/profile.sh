#!/usr/bin/env bash
# Profile the server under callgrind on a benchmark store (perf has no hardware
# counters on our VMs: `perf stat -e instructions true` says <not supported>).
#
#   bash tests/bench/profile.sh pages [size]   # 40 × stored start page + 40 × a deep page
#   bash tests/bench/profile.sh query-pages [size]   # the same on the query collection
#   bash tests/bench/profile.sh post  [size]   # 10 POSTs of 1,000 new objects
#
# Needs a cached store from `tests/bench/run.sh <size>` (default 100k). Runs the server
# from a copy of the store, zeroes the counters after a warm-up, runs the workload,
# dumps, stops the server and prints the top functions (tests/bench/cgsum.py).
# Honours CARGO_TARGET_DIR (or TAXIWAY_BIN for another server binary), TAXIWAY_LOG
# (default warn; info adds the access log line of each request) and PAGE_CACHE_BYTES
# (`[limits] page_cache_bytes`; 0 profiles every page read from the store).
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
what="${1:-pages}"
size="${2:-100k}"
target="${CARGO_TARGET_DIR:-$repo/target}"
bin="${TAXIWAY_BIN:-$target/release/taxiway-server}"
cache="${TAXIWAY_CACHE:-$HOME/.cache/taxiway}/bench/$size"
store=$(ls -d "$cache"/store-*/data | head -1)
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
cp -r "$store" "$work/data"
mkdir "$work/config"
cp "$cache/import-config/taxiway.toml" "$work/config/"
if [ -n "${PAGE_CACHE_BYTES:-}" ]; then
    sed -i "s/^\[limits\]$/[limits]\npage_cache_bytes = $PAGE_CACHE_BYTES/" "$work/config/taxiway.toml"
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
admin=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
NO_COLOR=1 TAXIWAY_LOG="${TAXIWAY_LOG:-warn}" valgrind --tool=callgrind --callgrind-out-file="$work/cg.%p" \
    "$bin" serve --config-dir "$work/config" --data-dir "$work/data" \
    --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$admin" >"$work/valgrind.log" 2>&1 &
pid=$!
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$admin/readyz" >/dev/null && break; sleep 1; done
python3 - "$what" "$port" "$pid" "$cache" "$repo" <<'PY'
import glob, subprocess, sys, time
sys.path.insert(0, sys.argv[5] + "/tests/bench")
import bench
what, port, pid, cache = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
if what in ("pages", "query-pages"):
    coll = bench.INBOX if what == "pages" else bench.QUERY_COLL
    pages, _, _ = bench.walk(port, coll)
    k = int((len(pages) - 1) * 0.9)
    deep = (bench.objects_path(coll, f"limit=1000&added_after={pages[k-1][2]}") if k > 0
            else pages[0][0])  # a collection of one page: its start page twice
    paths = [pages[0][0], deep]
    bench.http_get(port, paths[0])
    subprocess.run(["callgrind_control", "-z", pid], capture_output=True)
    t = time.time()
    for p in paths:
        for _ in range(40):
            assert bench.http_get(port, p)[0] == 200
    print(f"80 pages in {time.time() - t:.1f} s under callgrind", file=sys.stderr)
else:
    bodies = bench.envelopes(sorted(glob.glob(f"{cache}/corpus/delta-*.json"))[:1])[:11]
    bench.post_all(port, bodies[:1], 1, 3600)
    subprocess.run(["callgrind_control", "-z", pid], capture_output=True)
    print(bench.post_all(port, bodies[1:], 1, 3600), file=sys.stderr)
subprocess.run(["callgrind_control", "-d", pid], capture_output=True)
PY
kill "$pid"; wait "$pid" || true
out=$(ls -S "$work"/cg.*.1 | head -1)
cp "$out" "/tmp/callgrind.$what.$size.out"
echo "callgrind output: /tmp/callgrind.$what.$size.out" >&2
python3 "$repo/tests/bench/cgsum.py" "$out" 30 'taxiway|rusqlite::|sqlite3_step|serde_json::de::from|hyper::proto|insert_entry|remove_other|parse_envelope'
