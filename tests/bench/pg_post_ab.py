#!/usr/bin/env python3
"""PostgreSQL POST ingest, A against B, on one database and one binary: interleaved
phases (`--phases ABAB`), each of fresh 1,000-object envelopes from the benchmark's
delta corpus over `--conns` connections, right after a `CHECKPOINT` (the worst case
for full-page images). Before each phase that switches side, that side's SQL runs
(`--a-sql`, `--b-sql`): an index re-created and dropped, a setting, a table option.

    python3 tests/bench/pg_post_ab.py --bin target/release/taxiway-server \\
        --gen target/release/examples/gen_corpus \\
        --a-sql "CREATE INDEX entries_by_object ON entries (view_id, stix_id, version_us)" \\
        --b-sql "DROP INDEX entries_by_object"

Uses bench.py's cached corpus and store of `--size` (built on first use) and its
`bench` PostgreSQL cluster (`--pg-settings`); prints objects/s, CPU of the server and
every PostgreSQL process, full-page images and WAL per 1,000 objects for each phase.
Not part of CI. Results: docs/performance.md.
"""
import argparse
import base64
import glob
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as b  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--gen", required=True)
    ap.add_argument("--size", default="1m")
    ap.add_argument("--phases", default="ABAB")
    ap.add_argument("--per-phase", type=int, default=20, help="envelopes per phase")
    ap.add_argument("--conns", type=int, default=4)
    ap.add_argument("--a-sql", default="", help="SQL run when switching to A")
    ap.add_argument("--b-sql", default="", help="SQL run when switching to B")
    ap.add_argument("--pg-settings", default=b.PG_SETTINGS)
    a = ap.parse_args()
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    args = argparse.Namespace(
        repo=repo, bin=a.bin, gen=a.gen, import_bin=a.bin, open=False, store="postgres",
        cache=os.path.join(os.environ.get("TAXIWAY_CACHE",
                                          os.path.expanduser("~/.cache/taxiway")), "bench"),
        fresh_store=False, gen_source=os.path.join(repo, "server/examples/gen_corpus.rs"),
        pg_name="bench", pg_settings=a.pg_settings, pg_database="taxiway_post_ab")
    token = base64.b64encode(f"{b.USER}:{b.PASSWORD}".encode()).decode()
    b.AUTH["Authorization"] = f"Basic {token}"
    n, delta, _ = b.parse_size(a.size)
    base = os.path.join(args.cache, a.size)
    os.makedirs(base, exist_ok=True)
    corpus = b.build_corpus(args, a.size, n, delta, base)
    store, _ = b.build_store(args, a.size, n, corpus, base)
    bodies = b.envelopes(sorted(glob.glob(os.path.join(corpus, "delta-*.json"))))
    if len(a.phases) * a.per_phase > len(bodies):
        raise SystemExit(f"{len(a.phases)} phases of {a.per_phase} envelopes need more "
                         f"than the {len(bodies)} of the delta corpus")
    work = os.path.join(base, "post-ab")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    cluster = b.PgCluster(args)
    backend = b.PostgresBackend(args, store, cluster)
    config_dir = os.path.join(work, "config")
    b.write_config(config_dir, b.QUERY, backend.store_toml)
    backend.prepare(work, config_dir)
    print(f"settings: {cluster.settings()}", flush=True)
    server, port, admin_port, _ = b.start_server(args, backend, config_dir, work, 0)

    def sql(text):
        return cluster.psql(text, args.pg_database)

    try:
        b.wait_ready(port, admin_port, server)
        cpu = backend.cpu([server])
        side = None
        for i, phase in enumerate(a.phases):
            if phase != side:
                switch = a.a_sql if phase == "A" else a.b_sql
                if switch:
                    sql(switch)
                side = phase
            sql("CHECKPOINT")
            fpi0, wal0 = (int(v) for v in sql("SELECT wal_fpi, wal_bytes FROM pg_stat_wal")[0])
            cpu0 = cpu.total()
            r = b.post_all(port, bodies[i * a.per_phase:(i + 1) * a.per_phase], a.conns, 3600)
            spent = cpu.total() - cpu0
            time.sleep(1)  # pg_stat_wal is flushed by the writing backends
            fpi1, wal1 = (int(v) for v in sql("SELECT wal_fpi, wal_bytes FROM pg_stat_wal")[0])
            k = r["objects"] / 1000
            print(f"{phase}: {r['rate']:7.0f} objects/s  CPU {spent * 1000 / k:6.1f} ms"
                  f"  full-page images {(fpi1 - fpi0) / k:6.0f}"
                  f"  WAL {(wal1 - wal0) / k / 1e6:5.2f} MB  (per 1,000 objects)"
                  f"  p50 {r['p50']:.0f} ms", flush=True)
    finally:
        b.PROCS.stop_all()
        cluster.psql(f"DROP DATABASE IF EXISTS {args.pg_database} WITH (FORCE)")
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
