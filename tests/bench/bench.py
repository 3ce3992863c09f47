#!/usr/bin/env python3
"""Taxiway benchmark driver (stdlib only). Run it through tests/bench/run.sh, which
builds the binaries and installs wrk first.

For each corpus size it: generates the deterministic corpus once (cached), imports it
once into a cached store (timing `taxiway-server import`), serves a copy of that store
and measures, in this order:

  1. a sequential walk of both collections through `next` (checks every object comes
     back exactly once, and gives the positions of the deep pages);
  2. 1,000-object pages of the stored and the query collection, at the start and deep
     (through `next` and through `added_after`), with wrk at 1 and 16 connections,
     each followed by the same page as static bytes from `static_page` (same stack,
     same headers) and from nginx serving the page's bytes from a file (issue 21's
     baseline: at least 50 % of nginx; skipped without nginx);
  2b. the start pages again with `Accept-Encoding: gzip` at 16 connections, against
     nginx gzip-coding the same bytes at `gzip_comp_level 1` (skipped without nginx;
     run.sh installs Debian's nginx-light);
  3. read throughput of the start pages with every server at once (one wrk whose
     threads are spread over the servers), against as many static servers;
  4. rebuild time of the query collection after a query change (config hot reload);
  5. durable ingest over TAXII POST (1,000-object envelopes, 1 then 4 connections);
  6. peak RSS (VmHWM) per phase, on-disk size.

With `--store postgres` it then does the same on PostgreSQL, in the same run and on the
same corpus: a throwaway cluster from tests/pg/provision.sh (TAXIWAY_PG_NAME=bench), a
fresh database filled by `taxiway-server migrate --from-sqlite` from the cached store,
and 1..N server replicas (`--replicas 1,2,3`) for the throughput figures. CPU per
request then counts the PostgreSQL processes too.

Results go to stdout and tests/bench/results/<size>.md as Markdown
(postgres-<size>.md with `--store postgres`: the comparison, then both reports).
"""

import argparse
import base64
import datetime as dt
import glob
import hashlib
import http.client
import json
import os
import platform
import queue
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import zlib

PAGE = 1000
# The benchmark's PostgreSQL settings: what a production cluster on this machine would
# set (the tests' cluster keeps 64 MB of shared buffers). 2 GB of 23 GiB RAM; WAL
# compression for the full-page images a checkpoint makes every touched page write.
PG_SETTINGS = "shared_buffers=2GB wal_compression=lz4 max_wal_size=4GB"
ROOT = "feeds"
INBOX = "5b2d7a43-3e0c-4f8e-9d61-0c2f5a9b8e11"
QUERY_COLL = "8f14e45f-ceea-467f-a8f5-7c0d2b6a9e32"
QUERY = "type:indicator and ioc_type:ipv4-addr and confidence:>=97"
QUERY_CHANGED = "type:indicator and ioc_type:ipv4-addr and confidence:>=96"
STIX_MEDIA = "application/taxii+json;version=2.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Every request authenticates with HTTP Basic as this user (as TAXII clients do), unless
# --open runs the server without users. AUTH holds the header (empty when open).
USER = "bench"
PASSWORD = "bench-password-for-the-benchmark-only"
AUTH = {}

CONFIG = """\
# Benchmark configuration (written by tests/bench/bench.py).
[service]
title = "Taxiway benchmark"
default_api_root = "feeds"

[limits]
max_page_size = 1000
default_page_size = 1000
max_content_length = 104857600
{page_cache}

[store]
refresh_interval_secs = 86400
{store}

[[api_roots]]
path = "feeds"
title = "Benchmark feeds"

[[collections]]
id = "{inbox}"
api_root = "feeds"
title = "inbox"
alias = "inbox"
writable = true
{access}

[[collections]]
id = "{query_coll}"
api_root = "feeds"
title = "ipv4-high-confidence"
alias = "ipv4-high-confidence"
query = "{query}"
"""

# Known sizes: objects in the store, objects POSTed on top, wrk seconds per run.
SIZES = {
    "smoke": (2_000, 2_000, 1),
    "100k": (100_000, 50_000, 10),
    "1m": (1_000_000, 100_000, 10),
    # POSTs of 100k on top, as at 1M (a tenth would be a million objects to POST).
    "10m": (10_000_000, 100_000, 10),
}


def parse_size(label):
    if label in SIZES:
        return SIZES[label]
    m = re.fullmatch(r"(\d+)([km]?)", label.lower())
    if not m:
        raise SystemExit(f"unknown size {label!r}: use smoke, 100k, 1m or a count like 250k")
    n = int(m.group(1)) * {"": 1, "k": 1_000, "m": 1_000_000}[m.group(2)]
    return (n, max(50_000, n // 10), 10)


def log(*args):
    print(f"[bench {time.strftime('%H:%M:%S')}]", *args, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------
# processes


class Procs:
    """Every process we start, so that all of them are stopped on the way out."""

    def __init__(self):
        self.live = []

    def start(self, argv, **kw):
        p = subprocess.Popen(argv, **kw)
        self.live.append(p)
        return p

    def stop(self, p, timeout=20):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if p in self.live:
            self.live.remove(p)

    def stop_all(self):
        for p in list(self.live):
            self.stop(p, timeout=10)


PROCS = Procs()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_split(pid):
    """(utime, stime) of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def tree_cpu_split(pid):
    """(user, system) seconds of a process, its reaped children and its live children:
    for a PostgreSQL postmaster, everything the cluster has spent (one process per
    connection, reaped by the postmaster when it ends)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    user = (int(fields[11]) + int(fields[13])) / CLK_TCK
    system = (int(fields[12]) + int(fields[14])) / CLK_TCK
    for child in children(pid):
        try:
            u, s = cpu_split(child)
        except (FileNotFoundError, ProcessLookupError):
            continue  # ended between the listing and the read: now in the reaped sums
        user += u
        system += s
    return user, system


def children(pid):
    """Live child processes of a process."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError):
            continue
        if ppid == pid:
            out.append(int(entry))
    return out


class CpuMeter:
    """CPU time of the serving side of a figure: the server processes, plus the whole
    PostgreSQL cluster when there is one (its processes do the reads' work too)."""

    def __init__(self, pids, postmaster=None):
        self.pids = list(pids)
        self.postmaster = postmaster

    def split(self):
        user = system = 0.0
        for pid in self.pids:
            u, s = cpu_split(pid)
            user += u
            system += s
        if self.postmaster:
            u, s = tree_cpu_split(self.postmaster)
            user += u
            system += s
        return user, system

    def total(self):
        return sum(self.split())


def machine_ticks():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v[:8]) - idle, sum(v[:8])


def mem(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem"):
                out[k] = int(v.split()[0]) // 1024  # MiB
    return out


def reset_hwm(pid):
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def dir_bytes(path):
    return sum(os.path.getsize(p) for p in glob.glob(os.path.join(path, "*")) if os.path.isfile(p))


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:12]


def schema_key(path):
    """A cached store's key: the schema's migrations (`MIGRATIONS` in schema.rs), not
    the rest of the file, so an edit elsewhere in it keeps the cached stores."""
    with open(path) as f:
        text = f.read()
    start = text.find("const MIGRATIONS")
    end = text.find("\n];", start)
    if start < 0 or end < 0:
        return sha(path)
    return hashlib.sha256(text[start:end].encode()).hexdigest()[:12]


def run_child(argv, logfile, env=None):
    """Run to completion; returns (seconds, rusage)."""
    with open(logfile, "ab") as out:
        started = time.monotonic()
        p = PROCS.start(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        PROCS.live.remove(p)
        elapsed = time.monotonic() - started
    if p.returncode != 0:
        raise SystemExit(f"{argv[0]} failed (exit {p.returncode}); see {logfile}")
    return elapsed, ru


# ---------------------------------------------------------------------------------
# HTTP


def http_get(port, path, conn=None):
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    c.request("GET", path, headers={"Accept": STIX_MEDIA, **AUTH})
    r = c.getresponse()
    body = r.read()
    if conn is None:
        c.close()
    return r.status, r.getheaders(), body


def metrics(admin_port):
    _, _, body = http_get(admin_port, "/metrics")
    out = {}
    for line in body.decode().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, _, value = line.rpartition(" ")
        try:
            out[name] = float(value)
        except ValueError:
            pass
    return out


def wait_ready(port, admin_port, server, timeout=3600):
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if server.poll() is not None:
            raise SystemExit("the server exited while starting; see its log")
        try:
            if http_get(admin_port, "/readyz")[0] == 200:
                m = metrics(admin_port)
                if m.get("taxiway_query_rebuilds_in_progress", 1) == 0:
                    return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not become ready")


def objects_path(coll, query=""):
    return f"/{ROOT}/collections/{coll}/objects/" + (f"?{query}" if query else "")


def walk(port, coll):
    """Page through a collection with `next`; returns pages as (path, count, last, next)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    path = objects_path(coll, f"limit={PAGE}")
    pages = []
    total = 0
    ids = set()
    started = time.monotonic()
    while True:
        status, headers, body = http_get(port, path, conn)
        if status != 200:
            raise SystemExit(f"GET {path} -> {status}: {body[:300]!r}")
        env = json.loads(body)
        objs = env.get("objects", [])
        h = {k.lower(): v for k, v in headers}
        for o in objs:
            ids.add((o["id"], o.get("modified", o.get("created"))))
        total += len(objs)
        nxt = env.get("next")
        pages.append((path, len(objs), h.get("x-taxii-date-added-last"), nxt))
        if not env.get("more"):
            break
        if not nxt or not objs:
            raise SystemExit(f"more=true without next or objects at {path}")
        path = objects_path(coll, f"limit={PAGE}&next={urllib.parse.quote(nxt)}")
    elapsed = time.monotonic() - started
    conn.close()
    if len(ids) != total:
        raise SystemExit(f"walk of {coll}: {total} objects but {len(ids)} distinct versions")
    return pages, total, elapsed


# ---------------------------------------------------------------------------------
# wrk


def ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        return float("nan")
    return float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60_000}[m.group(2)]


def run_wrk(url, conns, duration, cpu, threads=None, script=None, headers=()):
    """wrk on one URL; `cpu` (a CpuMeter) is the serving side whose CPU per request is
    reported. With `script` (see spread_script) the threads connect to several ports;
    `headers` ("Name: value") are sent besides `Accept`."""
    threads = threads or (1 if conns == 1 else 2)
    argv = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s", "--timeout", "30s",
            "--latency", "-H", f"Accept: {STIX_MEDIA}"]
    for name, value in AUTH.items():
        argv += ["-H", f"{name}: {value}"]
    for header in headers:
        argv += ["-H", header]
    if script:
        argv += ["-s", script]
    argv.append(url)
    user0, sys0 = cpu.split()
    busy0, total0 = machine_ticks()
    p = PROCS.start(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = p.stdout.read().decode()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    PROCS.live.remove(p)
    busy1, total1 = machine_ticks()
    user1, sys1 = cpu.split()
    server_cpu = user1 - user0 + sys1 - sys0
    wrk_cpu = ru.ru_utime + ru.ru_stime
    if p.returncode != 0:
        raise SystemExit(f"wrk failed: {out}")
    r = {"p50": float("nan"), "p99": float("nan"), "rps": 0.0, "requests": 0, "bad": 0}
    for line in out.splitlines():
        s = line.split()
        if len(s) == 2 and s[0] in ("50%", "99%"):
            r["p" + s[0][:-1]] = ms(s[1])
        elif line.startswith("Requests/sec:"):
            r["rps"] = float(s[1])
        elif "requests in" in line:
            r["requests"] = int(s[0])
        elif line.strip().startswith("Non-2xx"):
            r["bad"] += int(s[-1])
        elif line.strip().startswith("Socket errors"):
            r["bad"] += sum(int(x.strip(",")) for x in s[3::2])
    if r["bad"]:
        raise SystemExit(f"wrk saw {r['bad']} errors or non-2xx answers:\n{out}")
    n = max(r["requests"], 1)
    r["cpu_ms"] = server_cpu * 1000 / n
    r["cpu_user_ms"] = (user1 - user0) * 1000 / n
    r["cpu_sys_ms"] = (sys1 - sys0) * 1000 / n
    ticks = max(total1 - total0, 1)
    ours = (server_cpu + wrk_cpu) * CLK_TCK
    r["others"] = max(0.0, (busy1 - busy0 - ours) / ticks)
    return r


# ---------------------------------------------------------------------------------
# POST ingest


def envelopes(files, size=PAGE):
    """1,000-object envelopes cut from the generator's one-object-per-line bundles."""
    out = []
    for path in files:
        with open(path, "rb") as f:
            lines = f.read().split(b"\n")
        objs = [l.rstrip(b",") for l in lines[1:] if l.startswith(b"{")]
        for i in range(0, len(objs), size):
            chunk = objs[i:i + size]
            out.append((b'{"objects":[' + b",".join(chunk) + b"]}", len(chunk)))
    return out


def post_all(port, bodies, conns, seconds):
    """POST envelopes over `conns` connections; no new request starts after `seconds`."""
    work = queue.Queue()
    for b in bodies:
        work.put(b)
    latencies = []
    errors = []
    posted = []
    lock = threading.Lock()
    path = objects_path(INBOX)
    deadline = time.monotonic() + seconds

    def worker():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
        while time.monotonic() < deadline:
            try:
                body, count = work.get_nowait()
            except queue.Empty:
                break
            t0 = time.monotonic()
            c.request("POST", path, body=body,
                      headers={"Content-Type": STIX_MEDIA, "Accept": STIX_MEDIA, **AUTH})
            r = c.getresponse()
            data = r.read()
            lat = time.monotonic() - t0
            ok = r.status == 202
            if ok:
                st = json.loads(data)
                ok = st.get("success_count") == count and st.get("failure_count") == 0
            with lock:
                latencies.append(lat)
                posted.append(count)
                if not ok:
                    errors.append(f"{r.status}: {data[:300]!r}")
        c.close()

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    if errors:
        raise SystemExit(f"{len(errors)} POSTs failed, first: {errors[0]}")
    objects = sum(posted)
    latencies.sort()
    return {
        "objects": objects,
        "seconds": elapsed,
        "rate": objects / elapsed,
        "p50": latencies[len(latencies) // 2] * 1000,
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "offered": sum(c for _, c in bodies),
    }


# ---------------------------------------------------------------------------------
# the run


def write_config(config_dir, query, store="", page_cache=None):
    """The benchmark configuration; `store` adds lines to `[store]` (the backend);
    `page_cache` sets `[limits] page_cache_bytes` (None: the server's default)."""
    os.makedirs(config_dir, exist_ok=True)
    tmp = os.path.join(config_dir, ".taxiway.toml.tmp")
    cache = "" if page_cache is None else f"page_cache_bytes = {page_cache}"
    with open(tmp, "w") as f:
        access = f'[collections.access]\nwrite = ["{USER}"]' if AUTH else ""
        f.write(CONFIG.format(inbox=INBOX, query_coll=QUERY_COLL, query=query, store=store,
                              page_cache=cache, access=access))
    os.replace(tmp, os.path.join(config_dir, "taxiway.toml"))


def reconfigure(config_dir, admin_port, store="", page_cache=None):
    """Rewrite the configuration (`page_cache`) and wait for the server to reload it."""
    key = 'taxiway_config_reloads_total{result="ok"}'
    before = metrics(admin_port).get(key, 0)
    write_config(config_dir, QUERY, store, page_cache)
    started = time.monotonic()
    while metrics(admin_port).get(key, 0) <= before:
        if time.monotonic() - started > 60:
            raise SystemExit("the server did not reload its configuration within 60 s")
        time.sleep(0.1)


def cache_counts(admin_port):
    """(hits, misses) of the page cache so far; None from a server without one."""
    m = metrics(admin_port)
    hits = m.get("taxiway_page_cache_hits_total")
    misses = m.get("taxiway_page_cache_misses_total")
    return None if hits is None or misses is None else (hits, misses)


def with_hit_rate(admin_port, measure):
    """Run `measure()` (a wrk figure) and add the page cache's hit rate during it."""
    before = cache_counts(admin_port)
    r = measure()
    after = cache_counts(admin_port)
    if before is not None and after is not None:
        hits, misses = after[0] - before[0], after[1] - before[1]
        r["hit_rate"] = hits / (hits + misses) if hits + misses else float("nan")
    return r


def db_facts(db):
    con = sqlite3.connect(db)
    con.execute("PRAGMA query_only = 1")
    facts = {"versions": con.execute("SELECT count(*) FROM object_versions").fetchone()[0]}
    for coll, key in ((INBOX, "stored"), (QUERY_COLL, "query")):
        row = con.execute(
            "SELECT view_id FROM views WHERE collection = ? AND state = 'active'", (coll,)
        ).fetchone()
        facts[key] = con.execute(
            "SELECT count(*) FROM entries WHERE view_id = ? AND is_last = 1", (row[0],)
        ).fetchone()[0]
    try:
        facts["tables"] = dict(con.execute(
            "SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC"
        ).fetchall())
    except sqlite3.Error:
        facts["tables"] = {}
    con.close()
    return facts


def build_corpus(args, label, n, delta, base):
    corpus = os.path.join(base, "corpus")
    key = sha(args.gen_source) + f"-{n}-{delta}"
    marker = os.path.join(corpus, ".done")
    if os.path.exists(marker) and open(marker).read().strip() == key:
        log(f"{label}: corpus cached in {corpus}")
    else:
        shutil.rmtree(corpus, ignore_errors=True)
        os.makedirs(corpus)
        log(f"{label}: generating {n} + {delta} objects into {corpus}")
        t, _ = run_child([args.gen, "--from", "0", "--to", str(n), "--chunk", "50000",
                          "--out", corpus, "--prefix", "corpus"], os.path.join(base, "gen.log"))
        run_child([args.gen, "--from", str(n), "--to", str(n + delta), "--chunk", "50000",
                   "--out", corpus, "--prefix", "delta"], os.path.join(base, "gen.log"))
        log(f"{label}: generated in {t:.1f}s")
        with open(marker, "w") as f:
            f.write(key)
    return corpus


def build_store(args, label, n, corpus, base):
    """Import the corpus into a cached store; returns (store dir, import facts)."""
    key = schema_key(os.path.join(args.repo, "server/src/store/sqlite/schema.rs"))
    store = os.path.join(base, f"store-{key}")
    facts_file = os.path.join(store, "import.json")
    if os.path.exists(facts_file) and not args.fresh_store:
        log(f"{label}: store cached in {store}")
        with open(facts_file) as f:
            return store, json.load(f)
    shutil.rmtree(store, ignore_errors=True)
    config_dir = os.path.join(base, "import-config")
    write_config(config_dir, QUERY)
    data = os.path.join(store, "data")
    files = sorted(glob.glob(os.path.join(corpus, "corpus-*.json")))
    log(f"{label}: importing {n} objects with `taxiway-server import` ({len(files)} files)")
    load0 = loadavg()
    env = dict(os.environ, TAXIWAY_LOG="warn")
    secs, ru = run_child([args.import_bin, "import", "--config-dir", config_dir, "--data-dir", data,
                          "--collection", "inbox", *files], os.path.join(base, "import.log"), env)
    facts = {
        "objects": n,
        "seconds": secs,
        "rate": n / secs,
        "cpu_seconds": ru.ru_utime + ru.ru_stime,
        "peak_rss_mib": ru.ru_maxrss // 1024,
        "disk_bytes": dir_bytes(data),
        "json_bytes": sum(os.path.getsize(f) for f in files),
        "load": f"{load0} → {loadavg()}",
        "when": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "db": db_facts(os.path.join(data, "taxiway.db")),
        "binary": args.import_bin,
        "other_binary": os.path.realpath(args.import_bin) != os.path.realpath(args.bin),
    }
    with open(facts_file, "w") as f:
        json.dump(facts, f, indent=1)
    log(f"{label}: imported in {secs:.1f}s ({facts['rate']:.0f} objects/s)")
    return store, facts


def page_targets(coll, pages):
    """(where, path, depth) of the start page and of a ~90 % deep page, reached through
    `next` and through `added_after` (a full page when there is one, never the last)."""
    targets = [("start", pages[0][0], 0)]
    k = int((len(pages) - 1) * 0.9) if len(pages) > 2 else len(pages) - 1
    if k >= 1:
        prev = pages[k - 1]
        depth = sum(p[1] for p in pages[:k])
        targets.append(("deep, `next`", objects_path(
            coll, f"limit={PAGE}&next={urllib.parse.quote(prev[3])}"), depth))
        targets.append(("deep, `added_after`", objects_path(
            coll, f"limit={PAGE}&added_after={urllib.parse.quote(prev[2])}"), depth))
    return targets


def capture_page(port, path, work):
    """GET a page once; writes its body and headers for static_page. Returns
    (body file, headers file, body, object count)."""
    status, headers, body = http_get(port, path)
    if status != 200:
        raise SystemExit(f"GET {path} -> {status}")
    count = len(json.loads(body).get("objects", []))
    body_file = os.path.join(work, "page.json")
    head_file = os.path.join(work, "page.headers")
    with open(body_file, "wb") as f:
        f.write(body)
    with open(head_file, "w") as f:
        f.writelines(f"{k}: {v}\n" for k, v in headers)
    return body_file, head_file, body, count


def start_static(args, body_file, head_file, path, body):
    """A static_page server answering every request with the captured page."""
    port = free_port()
    static = PROCS.start([args.static, "--listen", f"127.0.0.1:{port}", "--body", body_file,
                          "--headers", head_file], stdout=subprocess.PIPE)
    static.stdout.readline()  # "listening on"
    if http_get(port, path)[2] != body:
        raise SystemExit("the static server does not serve the captured page")
    return static, port


def measure_pages(args, port, admin_port, cpu, name, coll, pages, duration, work):
    """wrk on start / deep-next / deep-added_after pages of one collection (the page
    cache warm: every request after the first a hit), each against static_page and
    against nginx serving the same bytes from a file (when nginx is installed)."""
    rows = []
    for where, path, depth in page_targets(coll, pages):
        body_file, head_file, body, count = capture_page(port, path, work)
        static, sport = start_static(args, body_file, head_file, path, body)
        nginx, nport = start_nginx(work, body_file) if shutil.which("nginx") else (None, None)
        try:
            if nginx is not None and get_coded(nport, path, "identity") != (None, body):
                raise SystemExit("nginx does not serve the captured page")
            label = where if where == "start" else f"{where} (after {depth:,})"
            for conns in (1, 16):
                log(f"  {name} {where}: wrk -c{conns} ({count} objects, {len(body):,} bytes)")
                t = with_hit_rate(admin_port, lambda: run_wrk(
                    f"http://127.0.0.1:{port}{path}", conns, duration, cpu))
                s = run_wrk(f"http://127.0.0.1:{sport}{path}", conns, duration,
                            CpuMeter([static.pid]))
                n = None if nginx is None else run_wrk(
                    f"http://127.0.0.1:{nport}{path}", conns, duration,
                    CpuMeter([], postmaster=nginx.pid))
                rows.append({"collection": name, "where": label, "conns": conns,
                             "objects": count, "bytes": len(body), "path": path, "t": t,
                             "s": s, "n": n})
        finally:
            PROCS.stop(static)
            if nginx is not None:
                PROCS.stop(nginx)
    return rows


def measure_cold(port, admin_port, cpu, rows, duration, config_dir, store):
    """The same page figures with the page cache off (every page read from the store:
    the cache-miss cost), put beside the warm ones as `cold`."""
    if cache_counts(admin_port) is None:
        return
    reconfigure(config_dir, admin_port, store, page_cache=0)
    try:
        for row in rows:
            log(f"  {row['collection']} {row['where']}: wrk -c{row['conns']}, page cache off")
            row["cold"] = with_hit_rate(admin_port, lambda: run_wrk(
                f"http://127.0.0.1:{port}{row['path']}", row["conns"], duration, cpu))
    finally:
        reconfigure(config_dir, admin_port, store)


def start_nginx(work, body_file):
    """nginx (Debian's nginx-light) answering every GET with `body_file` — from the file
    with `sendfile`, as Debian's own configuration serves files, to clients that do not
    accept gzip; gzip-coded on the fly at `gzip_comp_level 1` to those that do, as a
    proxy in front of a server that does not compress would. Returns (process, port)."""
    port = free_port()
    root = os.path.abspath(os.path.join(work, "nginx"))
    os.makedirs(os.path.join(root, "tmp"), exist_ok=True)
    shutil.copyfile(body_file, os.path.join(root, "page.json"))
    conf = os.path.join(root, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""# written by tests/bench/bench.py
daemon off;
worker_processes auto;
{"user root;" if os.geteuid() == 0 else ""}
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path {root}/tmp/body;
    proxy_temp_path {root}/tmp/proxy;
    fastcgi_temp_path {root}/tmp/fastcgi;
    uwsgi_temp_path {root}/tmp/uwsgi;
    scgi_temp_path {root}/tmp/scgi;
    default_type "{STIX_MEDIA}";
    gzip on;
    gzip_comp_level 1;
    gzip_min_length 1024;
    gzip_types "{STIX_MEDIA}";
    server {{
        listen 127.0.0.1:{port};
        location / {{ root {root}; try_files /page.json =404; }}
    }}
}}
""")
    proc = PROCS.start(["nginx", "-p", root, "-c", conf], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"nginx did not start; see {root}/error.log")
            time.sleep(0.05)
    return proc, port


def get_coded(port, path, coding):
    """GET `path` asking for `coding`: (Content-Encoding, body as sent)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    c.request("GET", path, headers={"Accept": STIX_MEDIA, "Accept-Encoding": coding, **AUTH})
    r = c.getresponse()
    body = r.read()
    c.close()
    if r.status != 200:
        raise SystemExit(f"GET {path} (Accept-Encoding: {coding}) -> {r.status}")
    return r.getheader("Content-Encoding"), body


def measure_gzip(port, admin_port, cpu, name, path, duration, work, config_dir, store):
    """The start page with `Accept-Encoding: gzip` at 16 connections: Taxiway coding it
    (issue 21) against nginx gzip-coding the same bytes at level 1 (the issue's
    target: at least twice nginx's pages/s); the page cache warm, then off (`cold`)."""
    body_file, _, body, count = capture_page(port, path, work)
    coding, ours = get_coded(port, path, "gzip")
    if coding is None:
        # A server without compression (a build before issue 21, as in an A/B run
        # against an older commit): no gzip figure to take.
        log(f"  {name} start, gzip: the server answers identity; no gzip figure")
        return None
    if coding != "gzip" or zlib.decompress(ours, 31) != body:
        raise SystemExit(f"{path}: Taxiway's gzip answer does not decode to the page")
    nginx, nport = start_nginx(work, body_file)
    try:
        coding, theirs = get_coded(nport, path, "gzip")
        if coding != "gzip" or zlib.decompress(theirs, 31) != body:
            raise SystemExit("nginx does not gzip the captured page")
        log(f"  {name} start, gzip: wrk -c16 ({count} objects, {len(body):,} bytes; "
            f"Taxiway {len(ours):,}, nginx {len(theirs):,} gzip-coded)")
        gzip = ["Accept-Encoding: gzip"]
        t = with_hit_rate(admin_port, lambda: run_wrk(
            f"http://127.0.0.1:{port}{path}", 16, duration, cpu, headers=gzip))
        n = run_wrk(f"http://127.0.0.1:{nport}{path}", 16, duration,
                    CpuMeter([], postmaster=nginx.pid), headers=gzip)
        cold = None
        if cache_counts(admin_port) is not None:
            reconfigure(config_dir, admin_port, store, page_cache=0)
            try:
                log(f"  {name} start, gzip: wrk -c16, page cache off")
                cold = with_hit_rate(admin_port, lambda: run_wrk(
                    f"http://127.0.0.1:{port}{path}", 16, duration, cpu, headers=gzip))
            finally:
                reconfigure(config_dir, admin_port, store)
    finally:
        PROCS.stop(nginx)
    return {"collection": name, "objects": count, "bytes": len(body), "ours": len(ours),
            "theirs": len(theirs), "t": t, "n": n, "cold": cold}


def spread_script(work, ports):
    """A wrk Lua script that connects thread i to ports[i mod n]: one wrk process, the
    same threads and connections, drives one server or several."""
    path = os.path.join(work, f"spread-{len(ports)}.lua")
    with open(path, "w") as f:
        f.write("-- written by tests/bench/bench.py\n"
                f"local ports = {{{', '.join(str(p) for p in ports)}}}\n"
                "local started = 0\n"
                "function setup(thread)\n"
                "  started = started + 1\n"
                "  local port = ports[(started - 1) % #ports + 1]\n"
                "  thread.addr = wrk.lookup('127.0.0.1', tostring(port))[1]\n"
                "end\n")
    return path


def measure_throughput(args, ports, cpu, name, path, duration, work):
    """Pages/s of one page over every server in `ports` at once (one wrk, its threads
    spread over the servers), then the same over as many static_page servers."""
    body_file, head_file, body, count = capture_page(ports[0], path, work)
    for port in ports[1:]:
        if http_get(port, path)[2] != body:
            raise SystemExit(f"replica on :{port} serves other bytes for {path}")
    statics = [start_static(args, body_file, head_file, path, body) for _ in ports]
    threads, conns = args.wrk_threads, args.wrk_conns
    log(f"  {name}: {len(ports)} server(s), wrk -t{threads} -c{conns} ({count} objects)")
    url = f"http://127.0.0.1:{ports[0]}{path}"
    t = run_wrk(url, conns, duration, cpu, threads, spread_script(work, ports))
    s = run_wrk(f"http://127.0.0.1:{statics[0][1]}{path}", conns, duration,
                CpuMeter([p.pid for p, _ in statics]), threads,
                spread_script(work, [port for _, port in statics]))
    for static, _ in statics:
        PROCS.stop(static)
    return {"collection": name, "servers": len(ports), "conns": conns, "threads": threads,
            "objects": count, "bytes": len(body), "t": t, "s": s}


def time_rebuild(config_dir, admin_port, query, server_log, store=""):
    before = metrics(admin_port).get('taxiway_config_reloads_total{result="ok"}', 0)
    with open(server_log) as f:
        seen = len(re.findall(r"query collection rebuilt", f.read()))
    started = time.monotonic()
    write_config(config_dir, query, store)
    while True:
        time.sleep(0.25)
        m = metrics(admin_port)
        if (m.get('taxiway_config_reloads_total{result="ok"}', 0) > before
                and m.get("taxiway_query_rebuilds_in_progress", 1) == 0):
            break
        if time.monotonic() - started > 7200:
            raise SystemExit("the query rebuild did not finish within 2 hours")
    wall = time.monotonic() - started
    # The gauge drops when the view goes live; the server logs the rebuild after it
    # has purged the view it replaced, a moment later.
    deadline = time.monotonic() + 60
    while True:
        with open(server_log) as f:
            text = re.sub(r"\x1b\[[0-9;]*m", "", f.read())
        done = re.findall(r"query collection rebuilt.*?elapsed_ms=(\d+)", text)
        if len(done) > seen or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    inner = int(done[seen]) / 1000 if len(done) > seen else float("nan")
    return wall, inner


# ---------------------------------------------------------------------------------
# store backends: the same measurements on the embedded store and on PostgreSQL


class SqliteBackend:
    """The embedded store: a copy of the cached store's data directory."""

    name = "sqlite"
    store_toml = ""

    def __init__(self, args, store):
        self.args = args
        self.store = store
        self.data = None

    def prepare(self, work, config_dir):
        self.data = os.path.join(work, "data")
        shutil.copytree(os.path.join(self.store, "data"), self.data)
        return {}

    def server_env(self):
        return dict(os.environ, TAXIWAY_LOG="info", NO_COLOR="1")

    def facts(self):
        return db_facts(os.path.join(self.data, "taxiway.db"))

    def disk_bytes(self):
        return dir_bytes(self.data)

    def cpu(self, servers):
        return CpuMeter([s.pid for s in servers])

    def replica_counts(self):
        return [1]  # one process owns an embedded store

    def settings(self):
        return {}

    def close(self):
        # The copy goes before the next backend fills the disk (12 GB at 10M).
        if self.data and not self.args.keep:
            shutil.rmtree(self.data, ignore_errors=True)


def parse_pg_value(text):
    """A PostgreSQL setting as written (`2GB`, `262144` + unit `8kB`, `lz4`), memory in
    bytes, anything else as its lowercase text."""
    m = re.fullmatch(r"(\d+)\s*(\d*)(kB|MB|GB|TB)?", text.strip())
    if not m:
        return text.strip().lower()
    scale = {"kB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}.get(m.group(3), 1)
    return int(m.group(1)) * int(m.group(2) or 1) * scale


class PgCluster:
    """The throwaway PostgreSQL cluster of tests/pg/provision.sh (its own name, so the
    test cluster is untouched); stopped at the end only if this run started it."""

    def __init__(self, args):
        self.args = args
        self.env = dict(os.environ, TAXIWAY_PG_NAME=args.pg_name,
                        TAXIWAY_PG_SETTINGS=args.pg_settings)
        self.provision()
        if not self.started and not self.has_settings():
            # A cluster left running with other settings: restart it with ours.
            log(f"PostgreSQL cluster {args.pg_name!r} runs with other settings; restarting")
            subprocess.run(["bash", os.path.join(args.repo, "tests/pg/stop.sh")],
                           env=self.env, check=False)
            self.provision()
        log(f"PostgreSQL cluster {args.pg_name!r}: {self.url} "
            f"({'started' if self.started else 'already running'}; {args.pg_settings})")

    def provision(self):
        script = os.path.join(self.args.repo, "tests/pg/provision.sh")
        p = subprocess.run(["bash", script], capture_output=True, text=True, env=self.env)
        if p.returncode != 0:
            raise SystemExit(f"tests/pg/provision.sh failed:\n{p.stderr}")
        exports = dict(re.findall(r"^export (\w+)=(.*)$", p.stdout, re.M))
        self.url = exports["TAXIWAY_TEST_POSTGRES_URL"]
        self.bin = exports["TAXIWAY_PG_BIN"]
        self.data = exports["TAXIWAY_PG_DATA"]
        self.started = "reusing the running cluster" not in p.stderr

    def has_settings(self):
        """Whether the running cluster has every --pg-settings value."""
        for setting in self.args.pg_settings.split():
            name, value = setting.split("=", 1)
            p = subprocess.run([os.path.join(self.bin, "psql"), "-X", "-A", "-t", "-d",
                                self.url, "-c", f"SELECT setting, unit FROM pg_settings "
                                f"WHERE name = '{name}'"],
                               capture_output=True, text=True)
            if p.returncode != 0 or not p.stdout.strip():
                return False
            # pg_settings gives memory in units (8kB pages, MB): compare in bytes.
            got = p.stdout.strip().split("|")
            if parse_pg_value(value) != parse_pg_value(" ".join(got)):
                return False
        return True

    def url_for(self, db):
        return self.url.rsplit("/", 1)[0] + "/" + db

    def psql(self, sql, db="postgres"):
        """Rows of one statement, as lists of strings."""
        p = subprocess.run([os.path.join(self.bin, "psql"), "-X", "-q", "-A", "-t",
                            "-v", "ON_ERROR_STOP=1", "-d", self.url_for(db), "-c", sql],
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise SystemExit(f"psql failed on {sql!r}: {p.stderr.strip()}")
        return [line.split("|") for line in p.stdout.splitlines() if line]

    def postmaster(self):
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            return int(f.readline())

    def recreate(self, db):
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", db):
            raise SystemExit(f"--pg-database {db!r}: use lowercase letters, digits and _")
        self.psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        self.psql(f"CREATE DATABASE {db}")

    def settings(self):
        names = ("server_version", "shared_buffers", "synchronous_commit", "fsync",
                 "max_connections", "wal_compression", "max_wal_size")
        return {n: self.psql(f"SHOW {n}")[0][0] for n in names}

    def stop(self):
        if self.started:
            script = os.path.join(self.args.repo, "tests/pg/stop.sh")
            subprocess.run(["bash", script], env=self.env, check=False)


class PostgresBackend:
    """PostgreSQL: a fresh database filled by `taxiway-server migrate --from-sqlite`
    from a copy of the cached embedded store (the same objects, bytes and date_added)."""

    name = "postgres"
    data = None  # no data directory: the store is the database
    url_env = "TAXIWAY_BENCH_DATABASE_URL"
    store_toml = ('backend = "postgres"\n[store.postgres]\n'
                  f'url_env = "{url_env}"\ntls = "disable"\n')

    def __init__(self, args, store, cluster):
        self.args = args
        self.store = store
        self.cluster = cluster
        self.db = args.pg_database

    def prepare(self, work, config_dir):
        # `migrate` opens the store read-only: the cached store itself is the source
        # (a copy would need another 12 GB at 10M).
        source = os.path.join(self.store, "data")
        self.cluster.recreate(self.db)
        log(f"postgres: `taxiway-server migrate --from-sqlite` into database {self.db!r}")
        secs, ru = run_child([self.args.bin, "migrate", "--from-sqlite", source,
                              "--config-dir", config_dir],
                             os.path.join(work, "migrate.log"), self.server_env())
        started = time.monotonic()
        self.cluster.psql("ANALYZE", self.db)
        analyze = time.monotonic() - started
        log(f"postgres: migrated in {secs:.1f}s, ANALYZE {analyze:.1f}s")
        return {"migrate_seconds": secs, "migrate_cpu": ru.ru_utime + ru.ru_stime,
                "analyze_seconds": analyze}

    def server_env(self):
        return dict(os.environ, TAXIWAY_LOG="info", NO_COLOR="1",
                    **{self.url_env: self.cluster.url_for(self.db)})

    def facts(self):
        q = self.cluster.psql
        facts = {"versions": int(q("SELECT count(*) FROM object_versions", self.db)[0][0])}
        for coll, key in ((INBOX, "stored"), (QUERY_COLL, "query")):
            facts[key] = int(q(
                "SELECT count(*) FROM entries e JOIN views v USING (view_id) "
                f"WHERE v.collection = '{coll}' AND v.state = 'active' AND e.is_last",
                self.db)[0][0])
        facts["tables"] = {name: int(size) for name, size in q(
            "SELECT c.relname, pg_table_size(c.oid) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i') ORDER BY 2 DESC",
            self.db)}
        return facts

    def disk_bytes(self):
        return int(self.cluster.psql("SELECT pg_database_size(current_database())",
                                     self.db)[0][0])

    def cpu(self, servers):
        return CpuMeter([s.pid for s in servers], self.cluster.postmaster())

    def replica_counts(self):
        return self.args.replicas

    def settings(self):
        return self.cluster.settings()

    def close(self):
        if not self.args.keep:
            self.cluster.psql(f"DROP DATABASE IF EXISTS {self.db} WITH (FORCE)")


def backends(args, store):
    """SQLite always (the reference), then PostgreSQL with `--store postgres`."""
    yield SqliteBackend(args, store)
    if args.store == "postgres":
        cluster = PgCluster(args)
        try:
            yield PostgresBackend(args, store, cluster)
        finally:
            cluster.stop()


def credentials_args(args, work):
    """`--credentials-dir` with the benchmark's one user (none with --open)."""
    if not AUTH:
        return []
    directory = os.path.join(work, "credentials")
    if not os.path.exists(os.path.join(directory, "users.toml")):
        os.makedirs(directory, exist_ok=True)
        hashed = subprocess.run([args.bin, "hash-password"], input=PASSWORD + "\n",
                                capture_output=True, text=True, check=True).stdout.strip()
        with open(os.path.join(directory, "users.toml"), "w") as f:
            f.write(f'[[users]]\nname = "{USER}"\npassword_hash = "{hashed}"\n')
    return ["--credentials-dir", directory]


def start_server(args, backend, config_dir, work, index):
    """One `taxiway-server serve` (replica `index`); returns (process, port, admin port, log)."""
    port, admin_port = free_port(), free_port()
    server_log = os.path.join(work, f"server-{index}.log")
    data = backend.data or os.path.join(work, "unused-data")
    with open(server_log, "wb") as out:
        server = PROCS.start([args.bin, "serve", "--config-dir", config_dir, "--data-dir", data,
                              "--listen", f"127.0.0.1:{port}",
                              "--admin-listen", f"127.0.0.1:{admin_port}",
                              *credentials_args(args, work)],
                             stdout=out, stderr=subprocess.STDOUT, env=backend.server_env())
    return server, port, admin_port, server_log


def measure_replicas(args, backend, config_dir, work, first, walks, duration):
    """Read throughput of the start pages with 1..N replicas serving at once."""
    counts = backend.replica_counts()
    replicas = [first]
    rows = []
    try:
        for index in range(1, max(counts)):
            server, port, admin_port, _ = start_server(args, backend, config_dir, work, index)
            replicas.append((server, port))
            wait_ready(port, admin_port, server)
        for count in counts:
            procs = [server for server, _ in replicas[:count]]
            ports = [port for _, port in replicas[:count]]
            for name in ("stored", "query"):
                path = walks[name][0][0][0]
                rows.append(measure_throughput(args, ports, backend.cpu(procs), name, path,
                                               duration, work))
    finally:
        for server, _ in replicas[1:]:
            PROCS.stop(server)
    return rows


def run_size(args, label):
    n, delta, duration = parse_size(label)
    duration = args.duration or duration
    base = os.path.join(args.cache, label)
    os.makedirs(base, exist_ok=True)
    corpus = build_corpus(args, label, n, delta, base)
    store, imp = build_store(args, label, n, corpus, base)

    work = os.path.join(base, "run")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    results = {}
    for backend in backends(args, store):
        try:
            results[backend.name] = measure_store(args, label, n, duration, corpus, imp,
                                                  backend, os.path.join(work, backend.name))
        finally:
            backend.close()
    write_results(args, label, results)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


def measure_store(args, label, n, duration, corpus, imp, backend, work):
    """Serve the store through `backend` and take every figure of one report."""
    os.makedirs(work)
    config_dir = os.path.join(work, "config")
    write_config(config_dir, QUERY, backend.store_toml)
    prep = backend.prepare(work, config_dir)
    settings = backend.settings()
    server, port, admin_port, server_log = start_server(args, backend, config_dir, work, 0)
    load_start = loadavg()
    log(f"{label} {backend.name}: serving on :{port} (load average {load_start})")
    try:
        startup = wait_ready(port, admin_port, server)
        mem_start = mem(server.pid)
        t0 = time.monotonic()
        metrics(admin_port)
        scrape_ms = (time.monotonic() - t0) * 1000
        facts = backend.facts()
        disk = backend.disk_bytes()
        cpu = backend.cpu([server])
        reset_hwm(server.pid)

        # 1. walks
        walks = {}
        for name, coll, expect in (("stored", INBOX, facts["stored"]),
                                   ("query", QUERY_COLL, facts["query"])):
            pages, total, secs = walk(port, coll)
            if total != expect:
                raise SystemExit(f"walk of {name}: {total} objects, the store lists {expect}")
            walks[name] = (pages, total, secs)
            log(f"{label} {backend.name}: walked {name} ({total} objects, {len(pages)} pages) "
                f"in {secs:.1f}s")

        # 2. pages
        rows = []
        for name, coll in (("stored", INBOX), ("query", QUERY_COLL)):
            rows += measure_pages(args, port, admin_port, cpu, name, coll, walks[name][0],
                                  duration, work)
        measure_cold(port, admin_port, cpu, rows, duration, config_dir, backend.store_toml)

        # 2b. gzip-coded start pages against nginx compressing them (issue 21)
        gzip = []
        if shutil.which("nginx"):
            for name, coll in (("stored", INBOX), ("query", QUERY_COLL)):
                start = page_targets(coll, walks[name][0])[0][1]
                figure = measure_gzip(port, admin_port, cpu, name, start, duration, work,
                                      config_dir, backend.store_toml)
                if figure is not None:
                    gzip.append(figure)
        else:
            log(f"{label} {backend.name}: no nginx on PATH, skipping the gzip figures")

        # 3. read throughput with 1..N replicas
        throughput = measure_replicas(args, backend, config_dir, work, (server, port), walks,
                                      duration)
        mem_reads = mem(server.pid)
        reset_hwm(server.pid)

        # 4. query rebuild (changed, then changed back)
        rebuilds = []
        for q in (QUERY_CHANGED, QUERY):
            log(f"{label} {backend.name}: query change -> {q!r}")
            rebuilds.append(time_rebuild(config_dir, admin_port, q, server_log,
                                         backend.store_toml))
        after = backend.facts()
        mem_rebuild = mem(server.pid)
        reset_hwm(server.pid)

        # 5. POST ingest on top of the store
        posts = measure_posts(label, backend, port, cpu, corpus, args.post_seconds)
        mem_ingest = mem(server.pid)
        final = backend.facts()
        posted = sum(p["objects"] for p in posts)
        if final["versions"] != facts["versions"] + posted:
            raise SystemExit(f"after POST: {final['versions']} versions, expected "
                             f"{facts['versions'] + posted}")
    finally:
        PROCS.stop(server)
    load_end = loadavg()
    return {
        "label": label, "store": backend.name, "n": n, "facts": facts, "imp": imp,
        "prep": prep, "settings": settings, "disk_bytes": disk, "startup": startup,
        "scrape_ms": scrape_ms, "walks": {k: (len(v[0]), v[1], v[2]) for k, v in walks.items()},
        "rows": rows, "gzip": gzip, "throughput": throughput, "rebuilds": rebuilds, "after_rebuild": after,
        "posts": posts,
        "mem": {"start": mem_start, "reads": mem_reads, "rebuild": mem_rebuild,
                "ingest": mem_ingest},
        "load": (load_start, load_end), "duration": duration, "auth": bool(AUTH),
    }


def measure_posts(label, backend, port, cpu, corpus, seconds):
    """The delta corpus as 1,000-object POSTs: half over 1 connection, half over 4."""
    delta_files = sorted(glob.glob(os.path.join(corpus, "delta-*.json")))
    bodies = envelopes(delta_files)
    half = len(bodies) // 2
    posts = []
    for conns, part in ((1, bodies[:half]), (4, bodies[half:])):
        log(f"{label} {backend.name}: POST {sum(c for _, c in part)} objects over "
            f"{conns} connection(s)")
        cpu0 = cpu.total()
        r = post_all(port, part, conns, seconds)
        r["cpu_per_1k"] = (cpu.total() - cpu0) * 1000 / (r["objects"] / 1000)
        r["conns"] = conns
        posts.append(r)
    return posts


def write_results(args, label, results):
    """<size>.md/.json for SQLite alone; postgres-<size>.md/.json for the comparison."""
    if "postgres" in results:
        name = f"postgres-{label}"
        md = render_comparison(args, results) + "\n".join(render(args, r)
                                                             for r in results.values())
    else:
        name = label
        md = render(args, results["sqlite"])
    os.makedirs(args.results, exist_ok=True)
    with open(os.path.join(args.results, f"{name}.md"), "w") as f:
        f.write(md)
    with open(os.path.join(args.results, f"{name}.json"), "w") as f:
        json.dump(results if "postgres" in results else results["sqlite"], f, indent=1,
                  default=str)
    print(md, flush=True)


# ---------------------------------------------------------------------------------
# report


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        ram = int(f.readline().split()[1]) // 1024 // 1024
    return f"{os.cpu_count()} × {model}, {ram} GiB RAM, Linux {platform.release()}"


def source_state(repo):
    """The commit the binaries were just built from, and whether server/src had local changes."""
    try:
        commit = subprocess.run(["git", "-C", repo, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip() or "?"
        dirty = subprocess.run(["git", "-C", repo, "status", "--porcelain", "server/src"],
                               capture_output=True, text=True).stdout.strip()
    except OSError:
        commit, dirty = "?", ""
    return commit, dirty


def fmt_ms(v):
    return "—" if v != v else (f"{v:.1f}" if v >= 10 else f"{v:.2f}")


def render(args, r):
    """The full report of one store."""
    out = []
    w = out.append
    render_header(args, r, w)
    render_pages(r, w)
    render_gzip(r, w)
    render_throughput(r, w)
    render_other(r, w)
    return "\n".join(out)


def store_title(r):
    return {"sqlite": "SQLite (embedded)", "postgres": "PostgreSQL"}[r.get("store", "sqlite")]


def render_header(args, r, w):
    n, imp, facts = r["n"], r["imp"], r["facts"]
    commit, dirty = args.commit
    title = f"{r['label']}: {n:,} objects in the store"
    w(f"## {title}, {store_title(r)}\n" if r.get("store") == "postgres" else f"## {title}\n")
    w(f"- machine: {machine()}; load average {r['load'][0]} at the start, "
      f"{r['load'][1]} at the end (1/5/15 min)")
    w(f"- build: `taxiway-server` release, commit {commit}{' + local changes in server/src' if dirty else ''}; "
      f"{dt.datetime.now().strftime('%Y-%m-%d %H:%M')}; wrk {r['duration']} s per figure")
    if r.get("settings"):
        st = r["settings"]
        w(f"- PostgreSQL {st['server_version']} on loopback, same machine (throwaway cluster "
          f"of `tests/pg/provision.sh`): shared_buffers {st['shared_buffers']}, "
          f"wal_compression {st.get('wal_compression', 'off')}, max_wal_size "
          f"{st.get('max_wal_size', '1GB')}, "
          f"synchronous_commit {st['synchronous_commit']}, fsync {st['fsync']}; server "
          f"`pool_size` 16 (default), `tls = \"disable\"`")
    w(f"- store: {facts['versions']:,} object versions; stored collection lists "
      f"{facts['stored']:,} (latest versions), query collection "
      f"`{QUERY}` {facts['query']:,} ({100 * facts['query'] / max(facts['stored'], 1):.2f} %)")
    w("- requests: " + ("authenticated, HTTP Basic (one user, verified once, then cached)"
                        if r.get("auth") else "unauthenticated (server without users, `--open`)"))
    w(f"- corpus: {imp['json_bytes'] / 1e6:.0f} MB of STIX JSON "
      f"({imp['json_bytes'] / max(n, 1):.0f} bytes/object)\n")


def cpu_who(r):
    return ("server + PostgreSQL CPU time (user+system, every cluster process)"
            if r.get("store") == "postgres" else "server CPU time (user+system)")


def render_pages(r, w):
    w("### Pages of 1,000 objects (`GET …/objects/?limit=1000`)\n")
    w("*nginx*: the same response bytes served from a file by nginx (`nginx-light`, "
      "`sendfile on`, `worker_processes auto`), measured right after the Taxiway figure; "
      "*ratio to nginx* = Taxiway pages/s ÷ nginx pages/s (issue 21's target: at least "
      "50 %). *Static*: the same bytes and headers served by `static_page` (same "
      "tokio/hyper/axum stack), measured right after nginx; *ratio* = Taxiway "
      f"pages/s ÷ static pages/s. *CPU ms/page*: {cpu_who(r)} per page, "
      "Taxiway, static and nginx (master and workers); *CPU ratio* = static ÷ Taxiway CPU "
      "per page, the throughput ratio a CPU-bound dedicated machine would see — less "
      "sensitive to other load than wall-clock figures. *Others*: share of the machine's "
      "CPU used by processes other than the server and wrk during the Taxiway figure. "
      "*Hits*: the page cache's hit rate during the figure. *Cold*: the same figure with "
      "the page cache off (every page read from the store), measured after all warm "
      "figures, and its ratio to the same nginx figure (static without nginx).\n")
    w("| collection | page | conns | objects | p50 ms | p99 ms | pages/s | objects/s | "
      "nginx pages/s | **ratio to nginx** | static pages/s | **ratio** | "
      "static p50 / p99 ms | CPU ms/page | CPU ratio | hits | "
      "cold pages/s (ratio) | cold CPU ms/page | others |")
    w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
      "---:|---:|")
    for row in r["rows"]:
        t, s, n = row["t"], row["s"], row.get("n")
        base = n or s
        cold = row.get("cold")
        cold_rate = f"{cold['rps']:.0f} ({ratio(cold, base):.0%})" if cold else "–"
        cold_cpu = f"{cold['cpu_ms']:.2f}" if cold else "–"
        nginx_rate = f"{n['rps']:.0f} | **{ratio(t, n):.0%}**" if n else "– | –"
        nginx_cpu = f" / {n['cpu_ms']:.2f}" if n else ""
        w(f"| {row['collection']} | {row['where']} | {row['conns']} | {row['objects']:,} | "
          f"{fmt_ms(t['p50'])} | {fmt_ms(t['p99'])} | {t['rps']:.0f} | "
          f"{t['rps'] * row['objects']:,.0f} | {nginx_rate} | {s['rps']:.0f} | "
          f"**{ratio(t, s):.0%}** | "
          f"{fmt_ms(s['p50'])} / {fmt_ms(s['p99'])} | {t['cpu_ms']:.2f} / {s['cpu_ms']:.2f}"
          f"{nginx_cpu} | {cpu_ratio(t, s):.0%} | {fmt_rate(t)} | {cold_rate} | {cold_cpu} | "
          f"{t['others']:.0%} |")
    w("")


def fmt_rate(t):
    rate = t.get("hit_rate")
    return "–" if rate is None or rate != rate else f"{rate:.1%}"


def render_gzip(r, w):
    rows = r.get("gzip") or []
    if not rows:
        return
    w("### Compressed start pages (`Accept-Encoding: gzip`, 16 connections)\n")
    w("Taxiway against nginx (`nginx-light`, `gzip_comp_level 1`, `worker_processes auto`) "
      "gzip-coding the same bytes from a file on every request. Taxiway warm: the page "
      "cache holds the page with its objects gzip-coded once (level 6), each answer splices "
      "its head in front; *cold*: the cache off, the page read and compressed (level 2) on "
      "every request. *Ratio* = Taxiway pages/s ÷ nginx pages/s (issue 21's target: at "
      f"least 200 %). *CPU ms/page*: {cpu_who(r)} per page, Taxiway and nginx (master and "
      "workers). *Hits*: the page cache's hit rate during the figure.\n")
    w("| collection | objects | bytes | gzip bytes, Taxiway / nginx | p50 ms | p99 ms | "
      "pages/s | nginx pages/s | **ratio** | nginx p50 / p99 ms | CPU ms/page | hits | "
      "cold pages/s (ratio) | cold CPU ms/page | others |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        t, n, cold = row["t"], row["n"], row.get("cold")
        cold_rate = f"{cold['rps']:.0f} ({ratio(cold, n):.0%})" if cold else "–"
        cold_cpu = f"{cold['cpu_ms']:.2f}" if cold else "–"
        w(f"| {row['collection']} | {row['objects']:,} | {row['bytes']:,} | "
          f"{row['ours']:,} / {row['theirs']:,} | {fmt_ms(t['p50'])} | {fmt_ms(t['p99'])} | "
          f"{t['rps']:.0f} | {n['rps']:.0f} | **{ratio(t, n):.0%}** | "
          f"{fmt_ms(n['p50'])} / {fmt_ms(n['p99'])} | {t['cpu_ms']:.2f} / {n['cpu_ms']:.2f} | "
          f"{fmt_rate(t)} | {cold_rate} | {cold_cpu} | {t['others']:.0%} |")
    w("")


def ratio(t, s):
    return t["rps"] / s["rps"] if s["rps"] else float("nan")


def cpu_ratio(t, s):
    return s["cpu_ms"] / t["cpu_ms"] if t["cpu_ms"] else float("nan")


def render_throughput(r, w):
    rows = r.get("throughput") or []
    if not rows:
        return
    first = rows[0]
    w("### Read throughput, every server at once (start pages)\n")
    w(f"One `wrk -t{first['threads']} -c{first['conns']}` whose threads are spread over the "
      "servers (thread *i* connects to server *i* mod *n*), so the client is the same for "
      "every count; *static*: the same page from as many `static_page` servers, same wrk. "
      f"*CPU ms/page*: {cpu_who(r)} per page, all servers.\n")
    w("| servers | collection | pages/s | objects/s | p50 ms | p99 ms | static pages/s | "
      "**ratio** | CPU ms/page | CPU ratio | others |")
    w("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        t, s = row["t"], row["s"]
        w(f"| {row['servers']} | {row['collection']} | {t['rps']:.0f} | "
          f"{t['rps'] * row['objects']:,.0f} | {fmt_ms(t['p50'])} | {fmt_ms(t['p99'])} | "
          f"{s['rps']:.0f} | **{ratio(t, s):.0%}** | {t['cpu_ms']:.2f} / {s['cpu_ms']:.2f} | "
          f"{cpu_ratio(t, s):.0%} | {t['others']:.0%} |")
    w("")


def render_preparation(r, w):
    n, imp = r["n"], r["imp"]
    who = (f"**built with another binary: `{imp.get('binary')}`**; " if imp.get("other_binary")
           else "")
    w(f"| `taxiway-server import` into an empty embedded store | **{imp['rate']:,.0f} "
      f"objects/s** | {who}{n:,} objects in {imp['seconds']:.1f} s, {imp['cpu_seconds']:.1f} s "
      f"CPU ({n / max(imp['cpu_seconds'], 0.001):,.0f} objects per CPU-second), peak RSS "
      f"{imp['peak_rss_mib']} MiB; measured when the cached store was built ({imp['when']}, "
      f"load {imp['load']}) |")
    prep = r.get("prep") or {}
    if "migrate_seconds" in prep:
        w(f"| `taxiway-server migrate --from-sqlite` of that store | "
          f"**{r['facts']['versions'] / prep['migrate_seconds']:,.0f} object versions/s** | "
          f"{prep['migrate_seconds']:.1f} s ({prep['migrate_cpu']:.1f} s CPU in "
          f"`taxiway-server`), one transaction; then `ANALYZE` {prep['analyze_seconds']:.1f} s "
          f"(migrate does not analyse: a fresh database has no planner statistics until "
          f"autovacuum gets to it) |")


def render_other(r, w):
    n, facts = r["n"], r["facts"]
    pg = r.get("store") == "postgres"
    w("### Ingest, rebuild, memory, disk\n")
    w("| measurement | result | notes |")
    w("|---|---|---|")
    render_preparation(r, w)
    commit = ("202 after commit (synchronous_commit=on)" if pg
              else "202 after commit (WAL, synchronous=FULL)")
    for p in r["posts"]:
        w(f"| TAXII POST, 1,000-object envelopes, {p['conns']} connection(s), "
          f"on top of {n:,} | **{p['rate']:,.0f} objects/s** | {p['objects']:,} objects"
          f"{'' if p['objects'] == p['offered'] else ' (time cap reached)'} in "
          f"{p['seconds']:.1f} s; {commit}; request p50 {p['p50']:.0f} ms, p99 "
          f"{p['p99']:.0f} ms; {'server + PostgreSQL' if pg else 'server'} CPU "
          f"{p['cpu_per_1k']:.0f} ms per 1,000 objects |")
    for (wall, inner), q in zip(r["rebuilds"], (QUERY_CHANGED, QUERY)):
        w(f"| query rebuild after a change to `…{q[-15:]}` | **{wall:.1f} s** | config write "
          f"→ metrics show the rebuild done; the server logs {inner:.1f} s for the rebuild "
          f"itself over {facts['stored']:,} latest versions |")
    w(f"| query collection after the change | {r['after_rebuild']['query']:,} objects | "
      f"`confidence:>=96` then back to `>=97`: {facts['query']:,} → "
      f"{r['after_rebuild']['query']:,} |")
    render_memory(r, w)
    disk = r.get("disk_bytes") or r["imp"]["disk_bytes"]
    what = "`pg_database_size` after migrate and ANALYZE" if pg else "data directory"
    w(f"| on-disk size | **{disk / 2**20:,.0f} MiB** | {what}; {disk / n * 1e6 / 2**30:.2f} GiB "
      f"per million objects; {disk / max(r['imp']['json_bytes'], 1):.2f}× the corpus JSON |")
    tables = facts.get("tables") or r["imp"]["db"].get("tables") or {}
    if tables:
        top = ", ".join(f"{k} {v / 2**20:,.0f}" for k, v in list(tables.items())[:8])
        w(f"| on-disk by table/index (MiB) | | {top} |")
    w(f"| server start to ready | {r['startup']:.1f} s | |")
    w(f"| `GET /metrics` | {r['scrape_ms']:.0f} ms | one scrape at the start |")
    for name, (pages, total, secs) in r["walks"].items():
        w(f"| sequential walk via `next`, {name} collection | {total / secs:,.0f} objects/s | "
          f"{total:,} objects in {pages} pages, {secs:.1f} s, one Python client parsing every "
          f"page; every version seen exactly once |")
    w("")


def render_memory(r, w):
    ms_ = r["mem"]
    pg = r.get("store") == "postgres"
    peak = max(m["VmHWM"] for m in ms_.values())
    w(f"| peak RSS serving (VmHWM) | **{peak} MiB** | start {ms_['start']['VmHWM']}, "
      f"page benchmarks {ms_['reads']['VmHWM']}, rebuild {ms_['rebuild']['VmHWM']}, "
      f"POST ingest {ms_['ingest']['VmHWM']} MiB (peak reset between phases)"
      f"{'; the server process only, PostgreSQL not included' if pg else ''} |")
    w(f"| RSS at the end | {ms_['ingest']['VmRSS']} MiB | anonymous "
      f"{ms_['ingest'].get('RssAnon', 0)} MiB, file-backed"
      f"{'' if pg else ' (SQLite mmap)'} {ms_['ingest'].get('RssFile', 0)} MiB |")


def find_row(r, collection, where, conns):
    for row in r["rows"]:
        if row["collection"] == collection and row["where"].startswith(where) \
                and row["conns"] == conns:
            return row
    return None


def render_comparison(args, results):
    """The side-by-side summary that opens postgres-<size>.md."""
    lite, pg = results["sqlite"], results["postgres"]
    out = []
    w = out.append
    w(f"# PostgreSQL beside SQLite: {lite['n']:,} objects\n")
    w(f"Both stores hold the same {lite['facts']['versions']:,} object versions (PostgreSQL "
      "filled from the embedded store by `taxiway-server migrate --from-sqlite`), measured in "
      f"one run on {machine()}. **Caveat**: this machine has {os.cpu_count()} cores; the "
      "server replicas, PostgreSQL, wrk and the static baseline all share them, so the "
      "replica rows show the overhead of more processes competing for the same CPUs, not "
      "the capacity that replicas on separate machines would add. Quote the ratios to the "
      "static baseline measured in the same run, and CPU per page.\n")
    w("### Summary\n")
    w("| figure | SQLite | PostgreSQL | PostgreSQL ÷ SQLite |")
    w("|---|---:|---:|---:|")
    for lp, pp in zip(lite["posts"], pg["posts"]):
        w(f"| POST ingest, {lp['conns']} connection(s), objects/s | {lp['rate']:,.0f} | "
          f"{pp['rate']:,.0f} | {pp['rate'] / lp['rate']:.2f} |")
        w(f"| POST ingest, {lp['conns']} connection(s), CPU ms per 1,000 objects (server"
          f" + PostgreSQL) | {lp['cpu_per_1k']:,.0f} | "
          f"{pp['cpu_per_1k']:,.0f} | {pp['cpu_per_1k'] / lp['cpu_per_1k']:.2f} |")
    for coll, where in (("stored", "start"), ("stored", "deep, `added_after`"),
                        ("query", "start"), ("query", "deep, `added_after`")):
        for conns in (1, 16):
            lr, pr = find_row(lite, coll, where, conns), find_row(pg, coll, where, conns)
            if not lr or not pr:
                continue
            lt, pt = lr["t"], pr["t"]
            w(f"| {coll} {lr['where']}, {conns} conn: p50 / p99 ms | {fmt_ms(lt['p50'])} / "
              f"{fmt_ms(lt['p99'])} | {fmt_ms(pt['p50'])} / {fmt_ms(pt['p99'])} | "
              f"{pt['p50'] / lt['p50']:.2f} / {pt['p99'] / lt['p99']:.2f} |")
            w(f"| {coll} {lr['where']}, {conns} conn: ratio to static; CPU ms/page | "
              f"{ratio(lt, lr['s']):.0%}; {lt['cpu_ms']:.2f} | {ratio(pt, pr['s']):.0%}; "
              f"{pt['cpu_ms']:.2f} | {pt['cpu_ms'] / lt['cpu_ms']:.2f} (CPU) |")
            if lr.get("n") and pr.get("n"):
                w(f"| {coll} {lr['where']}, {conns} conn: ratio to nginx | "
                  f"{ratio(lt, lr['n']):.0%} | {ratio(pt, pr['n']):.0%} | "
                  f"{ratio(pt, lt):.2f} |")
    for lw, pw, q in zip(lite["rebuilds"], pg["rebuilds"], (QUERY_CHANGED, QUERY)):
        w(f"| query rebuild after a change to `…{q[-15:]}`, s (wall) | {lw[0]:.1f} | "
          f"{pw[0]:.1f} | {pw[0] / lw[0]:.2f} |")
    w("")
    w("### Read throughput by number of servers\n")
    first = pg["throughput"][0]
    w(f"Start page (1,000 objects), one `wrk -t{first['threads']} -c{first['conns']}` spread "
      "over the servers; *static*: as many `static_page` servers with the same bytes, same "
      "wrk, measured right after. CPU includes PostgreSQL for the PostgreSQL rows.\n")
    w("| store | servers | collection | pages/s | p50 / p99 ms | static pages/s | **ratio** | "
      "CPU ms/page | CPU ratio | others |")
    w("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in (lite, pg):
        for row in r["throughput"]:
            t, s = row["t"], row["s"]
            w(f"| {store_title(r)} | {row['servers']} | {row['collection']} | {t['rps']:.0f} | "
              f"{fmt_ms(t['p50'])} / {fmt_ms(t['p99'])} | {s['rps']:.0f} | "
              f"**{ratio(t, s):.0%}** | {t['cpu_ms']:.2f} | {cpu_ratio(t, s):.0%} | "
              f"{t['others']:.0%} |")
    w("")
    return "\n".join(out) + "\n"


def replica_list(text):
    counts = [int(x) for x in text.split(",") if x.strip()]
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("a list of server counts like 1,2,3")
    return counts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sizes", nargs="*", default=["100k", "1m"])
    ap.add_argument("--repo", required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--gen", required=True)
    ap.add_argument("--static", required=True)
    ap.add_argument("--cache", required=True)
    ap.add_argument("--results", required=True)
    ap.add_argument("--duration", type=int, default=0, help="wrk seconds per figure")
    ap.add_argument("--fresh-store", action="store_true", help="re-import even if cached")
    ap.add_argument("--open", action="store_true",
                    help="serve without users (default: every request authenticates, Basic)")
    ap.add_argument("--keep", action="store_true", help="keep the run's data directory")
    ap.add_argument("--import-bin", help="binary that builds the cached store (default --bin)")
    ap.add_argument("--post-seconds", type=float, default=120,
                    help="time cap of each POST phase (1 and 4 connections)")
    ap.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite",
                    help="postgres: measure PostgreSQL beside SQLite, same corpus, same run")
    ap.add_argument("--replicas", type=replica_list, default=[1, 2, 3],
                    help="PostgreSQL server counts for the read-throughput figures")
    ap.add_argument("--wrk-threads", type=int, default=6,
                    help="wrk threads of the throughput figures (spread over the servers)")
    ap.add_argument("--wrk-conns", type=int, default=12,
                    help="wrk connections of the throughput figures (all servers together)")
    ap.add_argument("--pg-name", default="bench",
                    help="cluster name for tests/pg/provision.sh (TAXIWAY_PG_NAME)")
    ap.add_argument("--pg-settings", default=PG_SETTINGS,
                    help="server settings of the benchmark's PostgreSQL cluster "
                         "(space-separated name=value)")
    ap.add_argument("--pg-database", default="taxiway_bench",
                    help="database created (dropped first) for the run")
    args = ap.parse_args()
    args.import_bin = args.import_bin or args.bin
    if not args.open:
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        AUTH["Authorization"] = f"Basic {token}"
    args.commit = source_state(args.repo)
    args.gen_source = os.path.join(args.repo, "server/examples/gen_corpus.rs")

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    try:
        for label in args.sizes:
            run_size(args, label)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        PROCS.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
