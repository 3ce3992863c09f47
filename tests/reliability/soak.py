#!/usr/bin/env python3
"""Bounded soak test: the real binary on loopback under minutes of mixed load.

32 client threads (keep-alive connections) run a mix of
  - writes: POST envelopes of 1-25 new indicators, malware and relationships (202,
    every object stored);
  - paged reads: objects of any collection, following `next` for up to 5 pages;
  - `added_after` polling: each thread polls every collection from the last
    X-TAXII-Date-Added-Last it saw, as a SIEM does;
  - manifests, single objects and their versions, status resources, discovery;
while the config directory (laid out like a mounted ConfigMap) has its `..data`
symlink swapped every few seconds with a changed query, so the query collection is
rebuilt under load again and again.

Passes when every response was the expected 2xx, every reload was applied, no object
was lost or duplicated, the server exits 0 on SIGTERM, and memory (RssAnon: the heap;
VmRSS also reported, it includes the memory-mapped database) and open file
descriptors stay within a generous bound of their level after warm-up.

    TAXIWAY_BIN=target/debug/taxiway-server python3 tests/reliability/soak.py
    SOAK_SECONDS=300 SOAK_THREADS=32 SOAK_REPORT=/tmp/soak.json python3 tests/reliability/soak.py

Standard library only; loopback only; stops by itself (default 180 s).
"""
import http.client
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (COLLECTIONS, HIGH_CONFIDENCE, INBOX, BIN, ConfigMount, Server, all_ids, config_text,  # noqa: E402
                     indicator, malware, objects_path, proc_status, relationship, request)

SECONDS = float(os.environ.get("SOAK_SECONDS", "180"))
THREADS = int(os.environ.get("SOAK_THREADS", "32"))
RELOAD_EVERY = float(os.environ.get("SOAK_RELOAD_SECONDS", "4"))
REPORT = os.environ.get("SOAK_REPORT")
# SOAK_WRITES=0: a read-only run (plus reloads) over a store filled first with
# SOAK_PRELOAD objects — the data stops growing, so the heap should stay flat.
WRITES = os.environ.get("SOAK_WRITES", "1") != "0"
PRELOAD = int(os.environ.get("SOAK_PRELOAD", "0" if WRITES else "50000"))
WARMUP = min(30.0, SECONDS * 0.25)
THRESHOLDS = [60, 70, 80, 90]
# Allowed growth after warm-up: generous, to catch leaks and not allocator noise.
ANON_GROWTH_FACTOR = 1.5
ANON_GROWTH_SLACK_KIB = 64 * 1024
FD_GROWTH = 16
# SQLite's page cache is heap memory and legitimately grows with the database: up to
# 32 MB (cache_size) for the writer and 8 MB for each of the `--readers` (8) readers.
WRITER_CACHE_KIB = 32_000 * 1000 // 1024
READER_CACHE_KIB = 8_000 * 1000 // 1024
READERS = 8


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.latencies = {}
        self.errors = []
        self.error_count = 0
        self.acknowledged = set()
        self.duplicate_acks = 0
        self.requests = 0

    def ok(self, kind, seconds):
        with self.lock:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            self.latencies.setdefault(kind, []).append(seconds)

    def error(self, kind, what):
        with self.lock:
            self.error_count += 1
            if len(self.errors) < 20:
                self.errors.append(f"{kind}: {what}")

    def stored(self, ids):
        with self.lock:
            before = len(self.acknowledged)
            self.acknowledged.update(ids)
            self.duplicate_acks += len(ids) - (len(self.acknowledged) - before)


class Unexpected(Exception):
    pass


def expect(status, wanted, what):
    if status != wanted:
        raise Unexpected(f"{what}: HTTP {status}, expected {wanted}")


class Client:
    """One worker thread: a kept-alive connection and what it has seen."""

    def __init__(self, server, stats, seed):
        self.server = server
        self.stats = stats
        self.rng = random.Random(seed)
        self.conn = server.connection(timeout=60)
        self.last_added = {}
        self.mine = []      # ids this client posted (inbox)
        self.statuses = []  # status ids of its posts
        self.requests = 0   # HTTP requests sent

    def call(self, method, path, body=None):
        self.requests += 1
        return request(self.conn, method, path, body)

    def write(self):
        n = self.rng.randint(1, 25)
        objects = []
        while len(objects) < n:
            kind = self.rng.random()
            if kind < 0.7:
                objects.append(indicator(self.rng.randint(0, 100)))
            elif kind < 0.85 or not objects:
                objects.append(malware())
            else:
                objects.append(relationship(objects[-1]["id"], malware()["id"]))
        status, _, result = self.call("POST", objects_path(INBOX), {"objects": objects})
        expect(status, 202, "POST objects")
        if result.get("success_count") != n or result.get("failure_count") != 0:
            raise Unexpected(f"POST objects: {result.get('success_count')} of {n} stored")
        self.stats.stored([o["id"] for o in objects])
        self.mine += [o["id"] for o in objects[:2]]
        self.mine = self.mine[-50:]
        self.statuses = (self.statuses + [result["id"]])[-10:]

    def page(self):
        collection = self.rng.choice(COLLECTIONS)
        limit = self.rng.choice([10, 50, 200])
        query = f"limit={limit}"
        for _ in range(5):
            status, _, page = self.call("GET", objects_path(collection, query))
            expect(status, 200, "GET objects page")
            if not (page or {}).get("more"):
                return
            query = f"limit={limit}&next={page['next']}"

    def poll(self):
        collection = self.rng.choice(COLLECTIONS)
        since = self.last_added.get(collection)
        query = "limit=100" + (f"&added_after={since}" if since else "")
        status, headers, _ = self.call("GET", objects_path(collection, query))
        expect(status, 200, "GET objects added_after")
        last = headers.get("X-TAXII-Date-Added-Last")
        if last:
            self.last_added[collection] = last

    def manifest(self):
        collection = self.rng.choice(COLLECTIONS)
        status, _, _ = self.call("GET", f"/feeds/collections/{collection}/manifest/?limit=100")
        expect(status, 200, "GET manifest")

    def lookup(self):
        if not self.mine:
            return self.discovery()
        object_id = self.rng.choice(self.mine)
        status, _, envelope = self.call("GET", objects_path(INBOX) + f"{object_id}/")
        expect(status, 200, "GET object")
        if [o["id"] for o in envelope.get("objects", [])] != [object_id]:
            raise Unexpected(f"GET object {object_id}: {envelope}")
        status, _, _ = self.call("GET", objects_path(INBOX) + f"{object_id}/versions/")
        expect(status, 200, "GET versions")
        if self.statuses:
            status, _, st = self.call("GET", f"/feeds/status/{self.rng.choice(self.statuses)}/")
            expect(status, 200, "GET status")
            if st.get("status") != "complete":
                raise Unexpected(f"status not complete: {st}")

    def discovery(self):
        for path in ("/taxii2/", "/feeds/", "/feeds/collections/"):
            status, _, _ = self.call("GET", path)
            expect(status, 200, f"GET {path}")

    OPS = [("write", 25), ("page", 30), ("poll", 20), ("manifest", 10), ("lookup", 10), ("discovery", 5)]

    def run(self, deadline):
        names = [n for n, _ in self.OPS]
        weights = [w if (WRITES or n != "write") else 0 for n, w in self.OPS]
        while time.time() < deadline:
            kind = self.rng.choices(names, weights)[0]
            started = time.time()
            try:
                getattr(self, kind)()
                self.stats.ok(kind, time.time() - started)
            except (Unexpected, OSError, http.client.HTTPException, ValueError, KeyError) as e:
                self.stats.error(kind, repr(e))
                self.conn.close()
                self.conn = self.server.connection(timeout=60)
        self.conn.close()
        with self.stats.lock:
            self.stats.requests += self.requests


def monitor(pid, started, samples, stop):
    while not stop.wait(1.0):
        try:
            sample = proc_status(pid)
        except OSError:
            return
        sample["t"] = time.time() - started
        sample["load1"] = os.getloadavg()[0]
        samples.append(sample)


def percentile(values, p):
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def main():
    work = tempfile.mkdtemp(prefix="taxiway-soak-")
    config = ConfigMount(os.path.join(work, "config"), config_text(THRESHOLDS[0]))
    data = os.path.join(work, "data")
    log_path = os.path.join(work, "server.log")
    server = Server(config.path, data, log_path)
    stats = Stats()
    samples = []
    stop = threading.Event()
    swaps = [0]
    failures = []
    ok = False
    try:
        if PRELOAD:
            conn = server.connection(timeout=120)
            for _ in range(0, PRELOAD, 500):
                objects = [indicator(n % 101) for n in range(500)]
                status, _, _ = request(conn, "POST", objects_path(INBOX), {"objects": objects})
                assert status == 202, status
                stats.stored([o["id"] for o in objects])
            conn.close()
            print(f"preloaded {len(stats.acknowledged)} objects", flush=True)
        started = time.time()
        deadline = started + SECONDS
        load_before = os.getloadavg()
        watcher = threading.Thread(target=monitor, args=(server.proc.pid, started, samples, stop))
        watcher.start()

        def reloader():
            i = 0
            while not stop.wait(RELOAD_EVERY) and time.time() < deadline - RELOAD_EVERY:
                i += 1
                config.swap(config_text(THRESHOLDS[i % len(THRESHOLDS)], tag=f" (config {i})"))
                swaps[0] += 1

        reloads = threading.Thread(target=reloader)
        reloads.start()
        clients = [Client(server, stats, seed) for seed in range(THREADS)]
        threads = [threading.Thread(target=c.run, args=(deadline,)) for c in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.time() - started
        stop.set()
        reloads.join()
        watcher.join()
        load_after = os.getloadavg()

        # The last swap is what serves (swaps that come while a reload is still being
        # applied are folded into the next one), and none was rejected.
        wanted = f" (config {swaps[0]})"
        conn = server.connection(timeout=60)
        wait_until = time.time() + 30
        while True:
            _, _, collection = request(conn, "GET", f"/feeds/collections/{HIGH_CONFIDENCE}/")
            last_applied = wanted in collection.get("description", "")
            if last_applied or time.time() > wait_until:
                break
            time.sleep(0.2)
        conn.close()
        reloads_ok = server.metric('taxiway_config_reloads_total{result="ok"}')
        reloads_failed = server.metric('taxiway_config_reloads_total{result="error"}')
        limited = sum(server.metric(f'taxiway_limited_requests_total{{reason="{r}"}}')
                      for r in ("per_client", "body_timeout", "timeout"))
        refused = server.metric("taxiway_connections_refused_total")
        conn = server.connection(timeout=120)
        stored = all_ids(conn, INBOX)
        conn.close()
        idle = proc_status(server.proc.pid)
        db_kib = sum(os.path.getsize(os.path.join(data, f)) for f in os.listdir(data)) // 1024
        code = server.terminate()
        log = server.log_text()

        requests_total = sum(stats.counts.values())
        writes = stats.counts.get("write", 0)
        # "end" is the last sample under load; "idle" is after the clients disconnected.
        under_load = [s for s in samples if s["t"] <= SECONDS - 1]
        final = under_load[-1] if under_load else idle
        warm = next((s for s in samples if s["t"] >= WARMUP), final)
        first = samples[0] if samples else idle
        peak_rss = max([s["VmRSS"] for s in samples] + [idle["VmRSS"]])
        peak_anon = max([s["RssAnon"] for s in samples] + [idle["RssAnon"]])
        peak_fds = max([s["fds"] for s in samples] + [idle["fds"]])
        cache_allowance = min(db_kib, WRITER_CACHE_KIB) + READERS * min(db_kib, READER_CACHE_KIB)
        peak_load = max([s["load1"] for s in samples] + [load_after[0]])
        report = {
            "seconds": round(elapsed, 1),
            "threads": THREADS,
            "writes": WRITES,
            "preloaded": PRELOAD,
            "cpus": os.cpu_count(),
            "binary": BIN,
            "operations": requests_total,
            "operations_per_second": round(requests_total / elapsed, 1),
            "http_requests": stats.requests,
            "http_requests_per_second": round(stats.requests / elapsed, 1),
            "by_kind": stats.counts,
            "p50_ms": {k: round(percentile(v, 0.5) * 1000, 1) for k, v in stats.latencies.items()},
            "p99_ms": {k: round(percentile(v, 0.99) * 1000, 1) for k, v in stats.latencies.items()},
            "objects_written": len(stats.acknowledged),
            "objects_in_inbox": len(stored),
            "errors": stats.error_count,
            "config_swaps": swaps[0],
            "last_swap_applied": last_applied,
            "reloads_ok": reloads_ok,
            "reloads_failed": reloads_failed,
            "limited_requests": limited,
            "connections_refused": refused,
            "database_kib": db_kib,
            "rss_kib": {"start": first["VmRSS"], "after_warmup": warm["VmRSS"], "peak": peak_rss,
                        "end": final["VmRSS"], "idle": idle["VmRSS"]},
            "rss_anon_kib": {"start": first["RssAnon"], "after_warmup": warm["RssAnon"], "peak": peak_anon,
                             "end": final["RssAnon"], "idle": idle["RssAnon"]},
            "fds": {"start": first["fds"], "after_warmup": warm["fds"], "peak": peak_fds,
                    "end": final["fds"], "idle": idle["fds"]},
            # Every tenth of the run: seconds, heap MiB, fds — a leak keeps climbing, caches level off.
            "series": [[round(s["t"]), s["RssAnon"] // 1024, s["fds"]]
                       for s in samples[::max(1, len(samples) // 10)]],
            "load1": {"before": round(load_before[0], 2), "peak": round(peak_load, 2), "after": round(load_after[0], 2)},
            "exit_code": code,
        }
        print(json.dumps(report, indent=2))
        if REPORT:
            with open(REPORT, "w") as f:
                json.dump(report, f, indent=2)

        if stats.error_count:
            failures.append(f"{stats.error_count} errors, e.g. {stats.errors[:5]}")
        if stats.duplicate_acks:
            failures.append(f"{stats.duplicate_acks} ids acknowledged twice (client bug)")
        if len(stored) != len(set(stored)):
            failures.append(f"{len(stored) - len(set(stored))} duplicated objects in the inbox")
        if set(stored) != stats.acknowledged:
            failures.append(f"inbox holds {len(stored)} objects, {len(stats.acknowledged)} were acknowledged")
        if swaps[0] < 2 and SECONDS >= 4 * RELOAD_EVERY:
            failures.append(f"only {swaps[0]} config swaps")
        if not last_applied and swaps[0]:
            failures.append(f"the last of {swaps[0]} config swaps was not applied")
        if reloads_ok < swaps[0] / 2 or reloads_failed:
            failures.append(f"{swaps[0]} config swaps, {reloads_ok:.0f} reloads applied, {reloads_failed:.0f} rejected")
        if limited or refused:
            failures.append(f"{limited:.0f} requests limited and {refused:.0f} connections refused under the default limits")
        if code != 0:
            failures.append(f"exit code {code} after SIGTERM")
        bad = [line for line in log.splitlines() if "panicked" in line or "ERROR" in line]
        if bad:
            failures.append("errors in the server log: " + "; ".join(bad)[:2000])
        anon_bound = warm["RssAnon"] * ANON_GROWTH_FACTOR + ANON_GROWTH_SLACK_KIB + cache_allowance
        if final["RssAnon"] > anon_bound:
            failures.append(f"heap grew from {warm['RssAnon']} KiB after warm-up to {final['RssAnon']} KiB "
                            f"(bound {anon_bound:.0f} KiB, of which {cache_allowance} KiB SQLite page cache)")
        if final["fds"] > warm["fds"] + FD_GROWTH:
            failures.append(f"open file descriptors grew from {warm['fds']} after warm-up to {final['fds']}")
        for f in failures:
            print(f"FAIL: {f}", file=sys.stderr)
        if not failures:
            print(f"soak passed: {requests_total} operations in {elapsed:.0f}s with {THREADS} threads "
                  f"({requests_total / elapsed:.0f}/s; {stats.requests / elapsed:.0f} HTTP requests/s), {writes} writes ({len(stats.acknowledged)} objects), "
                  f"{swaps[0]} config reloads, zero errors; heap {warm['RssAnon'] // 1024}->{final['RssAnon'] // 1024} MiB, "
                  f"fds {warm['fds']}->{final['fds']} after warm-up")
            ok = True
    finally:
        stop.set()
        server.kill()
        if not ok:
            with open(log_path, "rb") as f:
                sys.stderr.write(f.read().decode(errors="replace")[-4000:])
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
