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
     same headers) — the limit the figures are quoted against;
  3. rebuild time of the query collection after a query change (config hot reload);
  4. durable ingest over TAXII POST (1,000-object envelopes, 1 then 4 connections);
  5. peak RSS (VmHWM) per phase, on-disk size.

Results go to stdout and tests/bench/results/<size>.md as Markdown.
"""

import argparse
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

PAGE = 1000
ROOT = "feeds"
INBOX = "5b2d7a43-3e0c-4f8e-9d61-0c2f5a9b8e11"
QUERY_COLL = "8f14e45f-ceea-467f-a8f5-7c0d2b6a9e32"
QUERY = "type:indicator and ioc_type:ipv4-addr and confidence:>=97"
QUERY_CHANGED = "type:indicator and ioc_type:ipv4-addr and confidence:>=96"
STIX_MEDIA = "application/taxii+json;version=2.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")

CONFIG = """\
# Benchmark configuration (written by tests/bench/bench.py).
[service]
title = "Taxiway benchmark"
default_api_root = "feeds"

[limits]
max_page_size = 1000
default_page_size = 1000
max_content_length = 104857600

[store]
refresh_interval_secs = 86400

[[api_roots]]
path = "feeds"
title = "Benchmark feeds"

[[collections]]
id = "{inbox}"
api_root = "feeds"
title = "inbox"
alias = "inbox"
writable = true

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


def cpu_secs(pid):
    """utime + stime of a process, in seconds."""
    return sum(cpu_split(pid))


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
    c.request("GET", path, headers={"Accept": STIX_MEDIA})
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


def run_wrk(url, conns, duration, server_pid):
    threads = 1 if conns == 1 else 2
    argv = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s", "--timeout", "30s",
            "--latency", "-H", f"Accept: {STIX_MEDIA}", url]
    user0, sys0 = cpu_split(server_pid)
    busy0, total0 = machine_ticks()
    p = PROCS.start(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = p.stdout.read().decode()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    PROCS.live.remove(p)
    busy1, total1 = machine_ticks()
    user1, sys1 = cpu_split(server_pid)
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
                      headers={"Content-Type": STIX_MEDIA, "Accept": STIX_MEDIA})
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


def write_config(config_dir, query):
    os.makedirs(config_dir, exist_ok=True)
    tmp = os.path.join(config_dir, ".taxiway.toml.tmp")
    with open(tmp, "w") as f:
        f.write(CONFIG.format(inbox=INBOX, query_coll=QUERY_COLL, query=query))
    os.replace(tmp, os.path.join(config_dir, "taxiway.toml"))


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
    key = sha(os.path.join(args.repo, "server/src/store/sqlite/schema.rs"))
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


def measure_pages(args, port, server, name, coll, pages, duration, work):
    """wrk on start / deep-next / deep-added_after pages of one collection."""
    rows = []
    start_path = pages[0][0]
    targets = [("start", start_path)]
    # ~90 % deep, but a full page when there is one (never the last, partial page).
    k = int((len(pages) - 1) * 0.9) if len(pages) > 2 else len(pages) - 1
    if k >= 1:
        prev = pages[k - 1]
        targets.append(("deep, `next`", objects_path(
            coll, f"limit={PAGE}&next={urllib.parse.quote(prev[3])}")))
        targets.append(("deep, `added_after`", objects_path(
            coll, f"limit={PAGE}&added_after={urllib.parse.quote(prev[2])}")))
        depth = sum(p[1] for p in pages[:k])
    for where, path in targets:
        status, headers, body = http_get(port, path)
        if status != 200:
            raise SystemExit(f"GET {path} -> {status}")
        count = len(json.loads(body).get("objects", []))
        body_file = os.path.join(work, "page.json")
        head_file = os.path.join(work, "page.headers")
        with open(body_file, "wb") as f:
            f.write(body)
        with open(head_file, "w") as f:
            f.writelines(f"{k_}: {v}\n" for k_, v in headers)
        sport = free_port()
        static = PROCS.start([args.static, "--listen", f"127.0.0.1:{sport}", "--body", body_file,
                              "--headers", head_file], stdout=subprocess.PIPE)
        static.stdout.readline()  # "listening on"
        if http_get(sport, path)[2] != body:
            raise SystemExit("the static server does not serve the captured page")
        label = where if where == "start" else f"{where} (after {depth:,})"
        for conns in (1, 16):
            log(f"  {name} {where}: wrk -c{conns} ({count} objects, {len(body):,} bytes)")
            t = run_wrk(f"http://127.0.0.1:{port}{path}", conns, duration, server.pid)
            s = run_wrk(f"http://127.0.0.1:{sport}{path}", conns, duration, static.pid)
            rows.append({"collection": name, "where": label, "conns": conns, "objects": count,
                         "bytes": len(body), "t": t, "s": s})
        PROCS.stop(static)
    return rows


def time_rebuild(config_dir, admin_port, query, server_log):
    before = metrics(admin_port).get('taxiway_config_reloads_total{result="ok"}', 0)
    with open(server_log) as f:
        seen = len(re.findall(r"query collection rebuilt", f.read()))
    started = time.monotonic()
    write_config(config_dir, query)
    while True:
        time.sleep(0.25)
        m = metrics(admin_port)
        if (m.get('taxiway_config_reloads_total{result="ok"}', 0) > before
                and m.get("taxiway_query_rebuilds_in_progress", 1) == 0):
            break
        if time.monotonic() - started > 7200:
            raise SystemExit("the query rebuild did not finish within 2 hours")
    wall = time.monotonic() - started
    with open(server_log) as f:
        text = re.sub(r"\x1b\[[0-9;]*m", "", f.read())
    done = re.findall(r"query collection rebuilt.*?elapsed_ms=(\d+)", text)
    inner = int(done[seen]) / 1000 if len(done) > seen else float("nan")
    return wall, inner


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
    data = os.path.join(work, "data")
    shutil.copytree(os.path.join(store, "data"), data)
    config_dir = os.path.join(work, "config")
    write_config(config_dir, QUERY)
    port, admin_port = free_port(), free_port()
    server_log = os.path.join(work, "server.log")
    load_start = loadavg()
    log(f"{label}: serving a copy of the store on :{port} (load average {load_start})")
    with open(server_log, "wb") as out:
        server = PROCS.start([args.bin, "serve", "--config-dir", config_dir, "--data-dir", data,
                              "--listen", f"127.0.0.1:{port}",
                              "--admin-listen", f"127.0.0.1:{admin_port}"],
                             stdout=out, stderr=subprocess.STDOUT,
                             env=dict(os.environ, TAXIWAY_LOG="info", NO_COLOR="1"))
    try:
        startup = wait_ready(port, admin_port, server)
        mem_start = mem(server.pid)
        t0 = time.monotonic()
        metrics(admin_port)
        scrape_ms = (time.monotonic() - t0) * 1000
        facts = db_facts(os.path.join(data, "taxiway.db"))
        reset_hwm(server.pid)

        # 1. walks
        walks = {}
        for name, coll, expect in (("stored", INBOX, facts["stored"]),
                                   ("query", QUERY_COLL, facts["query"])):
            pages, total, secs = walk(port, coll)
            if total != expect:
                raise SystemExit(f"walk of {name}: {total} objects, the store lists {expect}")
            walks[name] = (pages, total, secs)
            log(f"{label}: walked {name} ({total} objects, {len(pages)} pages) in {secs:.1f}s")

        # 2. pages
        rows = []
        for name, coll in (("stored", INBOX), ("query", QUERY_COLL)):
            rows += measure_pages(args, port, server, name, coll, walks[name][0], duration, work)
        mem_reads = mem(server.pid)
        reset_hwm(server.pid)

        # 3. query rebuild (changed, then changed back)
        rebuilds = []
        for q in (QUERY_CHANGED, QUERY):
            log(f"{label}: query change -> {q!r}")
            rebuilds.append(time_rebuild(config_dir, admin_port, q, server_log))
        after = db_facts(os.path.join(data, "taxiway.db"))
        mem_rebuild = mem(server.pid)
        reset_hwm(server.pid)

        # 4. POST ingest on top of the store
        delta_files = sorted(glob.glob(os.path.join(corpus, "delta-*.json")))
        bodies = envelopes(delta_files)
        half = len(bodies) // 2
        posts = []
        for conns, part in ((1, bodies[:half]), (4, bodies[half:])):
            log(f"{label}: POST {sum(c for _, c in part)} objects over {conns} connection(s)")
            cpu0 = cpu_secs(server.pid)
            r = post_all(port, part, conns, args.post_seconds)
            r["cpu_per_1k"] = (cpu_secs(server.pid) - cpu0) * 1000 / (r["objects"] / 1000)
            r["conns"] = conns
            posts.append(r)
        mem_ingest = mem(server.pid)
        final = db_facts(os.path.join(data, "taxiway.db"))
        posted = sum(p["objects"] for p in posts)
        if final["versions"] != facts["versions"] + posted:
            raise SystemExit(f"after POST: {final['versions']} versions, expected "
                             f"{facts['versions'] + posted}")
    finally:
        PROCS.stop(server)
    load_end = loadavg()

    result = {
        "label": label, "n": n, "facts": facts, "imp": imp, "startup": startup,
        "scrape_ms": scrape_ms, "walks": {k: (len(v[0]), v[1], v[2]) for k, v in walks.items()},
        "rows": rows, "rebuilds": rebuilds, "after_rebuild": after, "posts": posts,
        "mem": {"start": mem_start, "reads": mem_reads, "rebuild": mem_rebuild,
                "ingest": mem_ingest},
        "load": (load_start, load_end), "duration": duration,
    }
    md = render(args, result)
    os.makedirs(args.results, exist_ok=True)
    with open(os.path.join(args.results, f"{label}.md"), "w") as f:
        f.write(md)
    with open(os.path.join(args.results, f"{label}.json"), "w") as f:
        json.dump(result, f, indent=1, default=str)
    print(md, flush=True)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


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
    n, imp, facts = r["n"], r["imp"], r["facts"]
    out = []
    w = out.append
    commit, dirty = args.commit
    w(f"## {r['label']}: {n:,} objects in the store\n")
    w(f"- machine: {machine()}; load average {r['load'][0]} at the start, "
      f"{r['load'][1]} at the end (1/5/15 min)")
    w(f"- build: `taxiway-server` release, commit {commit}{' + local changes in server/src' if dirty else ''}; "
      f"{dt.datetime.now().strftime('%Y-%m-%d %H:%M')}; wrk {r['duration']} s per figure")
    w(f"- store: {facts['versions']:,} object versions; stored collection lists "
      f"{facts['stored']:,} (latest versions), query collection "
      f"`{QUERY}` {facts['query']:,} ({100 * facts['query'] / max(facts['stored'], 1):.2f} %)")
    w(f"- corpus: {imp['json_bytes'] / 1e6:.0f} MB of STIX JSON "
      f"({imp['json_bytes'] / max(n, 1):.0f} bytes/object)\n")

    w("### Pages of 1,000 objects (`GET …/objects/?limit=1000`)\n")
    w("*Static*: the same response bytes and headers served by `static_page` (same "
      "tokio/hyper/axum stack), measured right after the Taxiway figure; *ratio* = Taxiway "
      "pages/s ÷ static pages/s. *CPU ms/page*: server CPU time (user+system) per page, "
      "Taxiway and static; *CPU ratio* = static ÷ Taxiway CPU per page, the throughput ratio "
      "a CPU-bound dedicated machine would see — less sensitive to other load than "
      "wall-clock figures. *Others*: share of the machine's CPU used by processes other than "
      "the server and wrk during the Taxiway figure.\n")
    w("| collection | page | conns | objects | p50 ms | p99 ms | pages/s | objects/s | "
      "static pages/s | **ratio** | static p50 / p99 ms | CPU ms/page | CPU ratio | others |")
    w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in r["rows"]:
        t, s = row["t"], row["s"]
        ratio = t["rps"] / s["rps"] if s["rps"] else float("nan")
        cpu_ratio = s["cpu_ms"] / t["cpu_ms"] if t["cpu_ms"] else float("nan")
        w(f"| {row['collection']} | {row['where']} | {row['conns']} | {row['objects']:,} | "
          f"{fmt_ms(t['p50'])} | {fmt_ms(t['p99'])} | {t['rps']:.0f} | "
          f"{t['rps'] * row['objects']:,.0f} | {s['rps']:.0f} | **{ratio:.0%}** | "
          f"{fmt_ms(s['p50'])} / {fmt_ms(s['p99'])} | {t['cpu_ms']:.2f} / {s['cpu_ms']:.2f} | "
          f"{cpu_ratio:.0%} | {t['others']:.0%} |")
    w("")

    w("### Ingest, rebuild, memory, disk\n")
    w("| measurement | result | notes |")
    w("|---|---|---|")
    who = (f"**built with another binary: `{imp.get('binary')}`**; " if imp.get("other_binary")
           else "")
    w(f"| `taxiway-server import` into an empty store | **{imp['rate']:,.0f} objects/s** | "
      f"{who}{n:,} objects in {imp['seconds']:.1f} s, {imp['cpu_seconds']:.1f} s CPU "
      f"({n / max(imp['cpu_seconds'], 0.001):,.0f} objects per CPU-second), peak RSS "
      f"{imp['peak_rss_mib']} MiB; measured when the cached store was built ({imp['when']}, "
      f"load {imp['load']}) |")
    for p in r["posts"]:
        w(f"| TAXII POST, 1,000-object envelopes, {p['conns']} connection(s), "
          f"on top of {n:,} | **{p['rate']:,.0f} objects/s** | {p['objects']:,} objects"
          f"{'' if p['objects'] == p['offered'] else ' (time cap reached)'} in "
          f"{p['seconds']:.1f} s; 202 after commit (WAL, synchronous=FULL); request p50 "
          f"{p['p50']:.0f} ms, p99 {p['p99']:.0f} ms; server CPU {p['cpu_per_1k']:.0f} ms per "
          f"1,000 objects |")
    for (wall, inner), q in zip(r["rebuilds"], (QUERY_CHANGED, QUERY)):
        w(f"| query rebuild after a change to `…{q[-15:]}` | **{wall:.1f} s** | config write "
          f"→ metrics show the rebuild done; the server logs {inner:.1f} s for the rebuild "
          f"itself over {facts['stored']:,} latest versions |")
    w(f"| query collection after the change | {r['after_rebuild']['query']:,} objects | "
      f"`confidence:>=96` then back to `>=97`: {facts['query']:,} → "
      f"{r['after_rebuild']['query']:,} |")
    ms_ = r["mem"]
    peak = max(m["VmHWM"] for m in ms_.values())
    w(f"| peak RSS serving (VmHWM) | **{peak} MiB** | start {ms_['start']['VmHWM']}, "
      f"page benchmarks {ms_['reads']['VmHWM']}, rebuild {ms_['rebuild']['VmHWM']}, "
      f"POST ingest {ms_['ingest']['VmHWM']} MiB (peak reset between phases) |")
    w(f"| RSS at the end | {ms_['ingest']['VmRSS']} MiB | anonymous "
      f"{ms_['ingest'].get('RssAnon', 0)} MiB, file-backed (SQLite mmap) "
      f"{ms_['ingest'].get('RssFile', 0)} MiB |")
    disk = imp["disk_bytes"]
    w(f"| on-disk size | **{disk / 2**20:,.0f} MiB** | {disk / n * 1e6 / 2**30:.2f} GiB per "
      f"million objects; {disk / max(imp['json_bytes'], 1):.2f}× the corpus JSON |")
    tables = facts.get("tables") or imp["db"].get("tables") or {}
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
    return "\n".join(out)


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
    ap.add_argument("--keep", action="store_true", help="keep the run's data directory")
    ap.add_argument("--import-bin", help="binary that builds the cached store (default --bin)")
    ap.add_argument("--post-seconds", type=float, default=120,
                    help="time cap of each POST phase (1 and 4 connections)")
    args = ap.parse_args()
    args.import_bin = args.import_bin or args.bin
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
