#!/usr/bin/env python3
"""Several server replicas on one PostgreSQL database, with the real binary.

Three `taxiway-server serve` processes (A, B, C), each with its own port and its own
config directory (laid out like a mounted ConfigMap: a writable inbox and a query
collection), share one database:

1. write/read     POST through A; B and C serve the same bytes, the same date_added
                  headers, and the status resource.
2. paging         `next` cursors followed alternating A, B, C give every object once,
                  in date_added order (objects, manifest, query collection).
3. concurrent     writers on A and B (threads, many small POSTs) while incremental
                  pollers on C and B (inbox, resuming from X-TAXII-Date-Added-Last with
                  added_after, or following `next`) and on C (query collection): every
                  poller sees every object exactly once, nothing missed.
4. sigkill        SIGKILL A mid-ingest (writers on B go on): every object (and status)
                  A acknowledged is readable through B and C; A restarts and serves.
5. query-change   the query collection's query rewritten in all three config dirs (hot
                  reload): rebuilt exactly once across the replicas (the "query
                  collection rebuilt" log line), every replica serves the old or the new
                  membership while it runs, then the new one; a second change under
                  concurrent writes ends with the exact membership, rebuilt once.
6. rebuilder-killed  a change seen first by A only; A is SIGKILLed while it rebuilds;
                  B or C (reloading the same change) takes the rebuild over, once.
7. db-outage      on a dedicated cluster (so the shared one is left alone) with three
                  fresh replicas D, E, F: the database stopped (pg_ctl stop -m fast) and
                  started again mid-traffic: 503 TAXII errors and not-ready meanwhile,
                  recovery without restarting a server, nothing acknowledged lost; a
                  replica J started during the outage waits and becomes ready after it.
8. fresh-cursor   right after three replicas start on a fresh database, `next` across
                  replicas gives every object (reads resolve the serving view in the
                  database, so no replica serves a view it has not heard of yet).

    REPLICAS_DATABASE_URL=postgresql://.../fresh_db \\
        TAXIWAY_BIN=target/debug/taxiway-server python3 tests/reliability/replicas_test.py

REPLICAS_DATABASE_URL is an empty database (tests/run.d/45-postgres-replicas.sh creates
one on the instance of tests/pg/provision.sh, whose TAXIWAY_TEST_POSTGRES_URL scenario 8
uses for a second fresh database). Scenario 7 starts a cluster of its own
(provision.sh with TAXIWAY_PG_NAME=replicas-outage; tests/reliability/pgcluster.py) and
removes it afterwards; REPLICAS_SKIP_OUTAGE=1 skips it. REPLICAS_ONLY=a,b runs only
those scenarios (names as printed). Prints one line per scenario; exits non-zero on
any failure; every process it started is stopped on any exit. Standard library only.
"""
import atexit
import collections
import datetime
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BIN, HIGH_CONFIDENCE, INBOX, TAXII, ConfigMount, free_port  # noqa: E402
import pgcluster  # noqa: E402

QUERY = HIGH_CONFIDENCE
DATABASE_URL = os.environ.get("REPLICAS_DATABASE_URL")
WRITE_SECONDS = float(os.environ.get("REPLICAS_WRITE_SECONDS", "12"))
OUTAGE_SECONDS = float(os.environ.get("REPLICAS_OUTAGE_SECONDS", "10"))
# A 503 during the outage should come promptly, not after a request timeout.
MAX_503_SECONDS = float(os.environ.get("REPLICAS_MAX_503_SECONDS", "15"))
RECOVERY_SECONDS = float(os.environ.get("REPLICAS_RECOVERY_SECONDS", "30"))
# The log line (JSON `fields.message`, substring) a replica writes when it has rebuilt
# a query collection's membership.
REBUILD_MESSAGE = os.environ.get("REPLICAS_REBUILD_MESSAGE", "query collection rebuilt")
POOL_SIZE = int(os.environ.get("REPLICAS_POOL_SIZE", "8"))
CLIENT_TIMEOUT = 45
TIMEOUT = float(os.environ.get("REPLICAS_TIMEOUT", "900"))
# Replicas read the view registry through a cache refreshed at least every second
# (REGISTRY_MAX_AGE): a view built by one replica is served by the others within it.
SETTLE_SECONDS = float(os.environ.get("REPLICAS_SETTLE_SECONDS", "1.5"))
CONFIDENCES = [30, 55, 60, 80, 95]
OLD_THRESHOLD, NEW_THRESHOLD, THIRD_THRESHOLD, FOURTH_THRESHOLD = 70, 50, 80, 60

LIVE = []       # every Replica started, stopped on exit
CLUSTERS = []   # dedicated clusters, destroyed on exit


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


def config_text(threshold):
    return f"""
[service]
title = "Taxiway replicas test"
default_api_root = "feeds"

[limits]
max_page_size = 20000

[store]
backend = "postgres"

[store.postgres]
url_env = "TAXIWAY_DATABASE_URL"
pool_size = {POOL_SIZE}
tls = "disable"

[[api_roots]]
path = "feeds"
title = "Feeds"

[[collections]]
id = "{INBOX}"
api_root = "feeds"
title = "inbox"
alias = "inbox"
writable = true

[[collections]]
id = "{QUERY}"
api_root = "feeds"
title = "High confidence"
alias = "high-confidence"
description = "Indicators with a confidence of {threshold} or more"
query = "type:indicator and confidence:>={threshold}"
"""


def objects_path(collection, query=""):
    return f"/feeds/collections/{collection}/objects/" + (f"?{query}" if query else "")


def manifest_path(collection, query=""):
    return f"/feeds/collections/{collection}/manifest/" + (f"?{query}" if query else "")


class Replica:
    """One `taxiway-server serve` on loopback with its own config dir, on the database
    at `db_url` (given in TAXIWAY_DATABASE_URL)."""

    def __init__(self, name, work, db_url, threshold=OLD_THRESHOLD):
        self.name = name
        self.config = ConfigMount(os.path.join(work, f"config-{name}"), config_text(threshold))
        self.data_dir = os.path.join(work, f"data-{name}")
        os.makedirs(self.data_dir, exist_ok=True)
        self.log_path = os.path.join(work, f"{name}.log")
        self.env = dict(os.environ, TAXIWAY_DATABASE_URL=db_url)
        self.env.pop("TAXIWAY_LOG_JSON", None)
        self.port, self.admin = free_port(), free_port()
        self.proc = None
        self.starts = 0
        LIVE.append(self)

    def start(self, timeout=90, wait=True):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [BIN, "--log-json", "serve", "--config-dir", self.config.path, "--data-dir", self.data_dir,
             "--listen", f"127.0.0.1:{self.port}", "--admin-listen", f"127.0.0.1:{self.admin}"],
            stdout=log, stderr=log, env=self.env)
        log.close()
        self.starts += 1
        return self.wait_ready(timeout) if wait else self

    def wait_ready(self, timeout=90):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise Failure(f"replica {self.name} exited with {self.proc.returncode} at start; "
                              f"log: {self.log_tail(1500)}")
            if self.readyz() == 200:
                return self
            time.sleep(0.1)
        raise Failure(f"replica {self.name} not ready after {timeout}s; log: {self.log_tail(1500)}")

    def readyz(self, timeout=2):
        """The /readyz status code, or None when it does not answer."""
        conn = http.client.HTTPConnection("127.0.0.1", self.admin, timeout=timeout)
        try:
            conn.request("GET", "/readyz")
            r = conn.getresponse()
            r.read()
            return r.status
        except OSError:
            return None
        finally:
            conn.close()

    def metrics(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.admin, timeout=10)
        try:
            conn.request("GET", "/metrics")
            return conn.getresponse().read().decode()
        finally:
            conn.close()

    def metric(self, name, labels=""):
        """A sample's value (`name{labels}` exactly as exposed, labels without braces)."""
        key = f"{name}{{{labels}}}" if labels else name
        for line in self.metrics().splitlines():
            if line.startswith(key + " "):
                return float(line.split()[-1])
        return 0.0

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()

    def log_lines(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace").splitlines()

    def log_tail(self, n=3000):
        try:
            return "\n".join(self.log_lines())[-n:]
        except OSError:
            return ""

    def client(self):
        return Client(self)


def log_messages(replica):
    """(message, fields) of every JSON log line of a replica."""
    out = []
    for line in replica.log_lines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        fields = rec.get("fields", {}) if isinstance(rec, dict) else {}
        out.append((str(fields.get("message", "")), fields))
    return out


def rebuild_lines(replica):
    return [f for m, f in log_messages(replica) if REBUILD_MESSAGE in m]


class Response:
    def __init__(self, status, headers, data, seconds):
        self.status = status
        self.headers = headers
        self.data = data
        self.seconds = seconds
        try:
            self.json = json.loads(data) if data else None
        except ValueError:
            self.json = None

    def header(self, name):
        return self.headers.get(name)

    def is_taxii_error(self):
        ctype = self.headers.get("Content-Type", "")
        return (ctype.startswith("application/taxii+json") and isinstance(self.json, dict)
                and isinstance(self.json.get("title"), str))

    def describe(self):
        return f"HTTP {self.status} {self.headers.get('Content-Type')} {self.data[:200]!r}"


class Client:
    """A kept-alive connection to one replica; a request that fails on a reused
    connection (the server closed it while idle) is retried once on a new one."""

    def __init__(self, replica):
        self.replica = replica
        self.conn = None
        self.used = False

    def close(self):
        if self.conn is not None:
            self.conn.close()
        self.conn = None

    def call(self, method, path, body=None):
        headers = {"Accept": TAXII}
        if body is not None:
            if not isinstance(body, bytes):
                body = json.dumps({"objects": body}).encode()
            headers["Content-Type"] = TAXII
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.replica.port, timeout=CLIENT_TIMEOUT)
                self.used = False
            reused = self.used
            started = time.time()
            try:
                self.conn.request(method, path, body=body, headers=headers)
                r = self.conn.getresponse()
                data = r.read()
                self.used = True
                if r.getheader("Connection", "").lower() == "close":
                    self.close()
                return Response(r.status, r.headers, data, time.time() - started)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt == 0 and reused:
                    continue
                raise
            except (OSError, http.client.HTTPException):
                self.close()
                raise

    def get(self, path):
        return self.call("GET", path)

    def post(self, collection, objects):
        return self.call("POST", objects_path(collection), objects)


class Ledger:
    """What the test wrote: every generated object's confidence, the acknowledged ids
    (202 with every object a success) and their status ids."""

    def __init__(self):
        self.lock = threading.Lock()
        self.confidence = {}
        self.acked = set()
        self.statuses = {}
        self.rng = random.Random(11)

    def indicator(self, confidence=None):
        with self.lock:
            if confidence is None:
                confidence = self.rng.choice(CONFIDENCES)
            oid = f"indicator--{uuid.uuid4()}"
            self.confidence[oid] = confidence
        n = uuid.uuid4().int
        return {
            "type": "indicator", "spec_version": "2.1", "id": oid,
            "created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z",
            "pattern": f"[ipv4-addr:value = '10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}']",
            "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z", "confidence": confidence,
        }

    def ack(self, ids, status_id):
        with self.lock:
            self.acked.update(ids)
            self.statuses[status_id] = list(ids)

    def members(self, ids, threshold):
        return {i for i in ids if self.confidence.get(i, -1) >= threshold}


class Stats:
    """Outcomes of requests made by worker threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts = collections.Counter()
        self.errors = []
        self.unavailable = []   # (time, replica, seconds, well-formed TAXII error)
        self.transport = []     # (time, replica, repr)

    def count(self, what, n=1):
        with self.lock:
            self.counts[what] += n

    def error(self, what):
        with self.lock:
            self.counts["errors"] += 1
            if len(self.errors) < 20:
                self.errors.append(what)

    def outcome(self, replica, r, allow_503):
        """True if `r` is a usable success; records everything else."""
        if r.status in (200, 202):
            return True
        if r.status == 503 and allow_503:
            with self.lock:
                self.unavailable.append((time.time(), replica.name, r.seconds, r.is_taxii_error(), r.describe()))
            return False
        self.error(f"{replica.name}: unexpected {r.describe()}")
        return False

    def lost_connection(self, replica, e, allowed):
        with self.lock:
            self.transport.append((time.time(), replica.name, repr(e)))
        if not allowed:
            self.error(f"{replica.name}: no answer: {e!r}")


def post_batch(client, ledger, stats, n, allow_503=False, confidence=None):
    """POST n new indicators; True when all were acknowledged."""
    objs = [ledger.indicator(confidence) for _ in range(n)]
    r = client.post(INBOX, objs)
    if not stats.outcome(client.replica, r, allow_503):
        return False
    body = r.json or {}
    if r.status != 202 or body.get("success_count") != n or body.get("failure_count") != 0:
        stats.error(f"{client.replica.name}: POST of {n}: {r.describe()}")
        return False
    ids = [o["id"] for o in objs]
    ledger.ack(ids, body["id"])
    stats.count("acked_objects", n)
    stats.count("acked_posts")
    return ids


class Writer(threading.Thread):
    """Many small POSTs to one replica until `stop`; `died_ok`: a lost connection ends
    the thread quietly (the replica is being killed)."""

    def __init__(self, replica, ledger, stats, stop, batch=(1, 4), allow_503=False, died_ok=False, seed=0):
        super().__init__(daemon=True)
        self.replica, self.ledger, self.stats, self.stop = replica, ledger, stats, stop
        self.batch, self.allow_503, self.died_ok = batch, allow_503, died_ok
        self.rng = random.Random(seed)
        self.acked_at = []  # times of acknowledged POSTs
        self.acked_ids = []
        self.slowest = 0.0

    def run(self):
        client = self.replica.client()
        while not self.stop.is_set():
            n = self.rng.randint(*self.batch)
            try:
                started = time.time()
                ids = post_batch(client, self.ledger, self.stats, n, allow_503=self.allow_503)
                if ids:
                    self.acked_at.append(time.time())
                    self.acked_ids += ids
                    self.slowest = max(self.slowest, time.time() - started)
                elif self.allow_503:
                    time.sleep(0.2)
            except (OSError, http.client.HTTPException) as e:
                self.stats.lost_connection(self.replica, e, self.died_ok)
                if self.died_ok:
                    return
                time.sleep(0.2)
        client.close()


class Poller(threading.Thread):
    """An incremental poller of one collection through one replica: each poll asks for
    objects added after the last X-TAXII-Date-Added-Last it saw; `mode` "added_after"
    resumes every page that way, "next" follows `next` within a poll. Stops after a
    complete poll that began once `done` was set."""

    def __init__(self, name, replica, collection, stats, done, mode="added_after", limit=50, allow_503=False):
        super().__init__(daemon=True)
        self.name_, self.replica, self.collection, self.stats, self.done = name, replica, collection, stats, done
        self.mode, self.limit, self.allow_503 = mode, limit, allow_503
        self.seen = collections.Counter()
        self.last = None
        self.polls = 0
        self.pages = 0
        self.finished = False
        self.regressions = 0
        self.regression_examples = []

    def poll(self, client):
        """One poll, page by page; True when it reached the end (`more` false)."""
        self.polls += 1
        next_ = None
        start_after = self.last
        while True:
            q = f"limit={self.limit}"
            if self.mode == "next" and next_:
                q += f"&next={urllib.parse.quote(next_)}"
                if start_after:
                    q += f"&added_after={urllib.parse.quote(start_after)}"
            elif self.last:
                q += f"&added_after={urllib.parse.quote(self.last)}"
            r = client.get(objects_path(self.collection, q))
            if not self.stats.outcome(self.replica, r, self.allow_503):
                return False
            self.pages += 1
            page = r.json or {}
            for o in page.get("objects", []):
                self.seen[o["id"]] += 1
            last = r.header("X-TAXII-Date-Added-Last")
            if last:
                # An empty page echoes added_after; a page never starts before it.
                if self.last and instant(last) < instant(self.last):
                    self.regressions += 1
                    if len(self.regression_examples) < 3:
                        self.regression_examples.append(
                            f"after {self.last} got a page of {len(page.get('objects', []))} "
                            f"(first {r.header('X-TAXII-Date-Added-First')}, last {last}, query {q})")
                self.last = last
            if not page.get("more"):
                return True
            if self.mode == "next":
                next_ = page.get("next")
                if not next_:
                    self.stats.error(f"{self.name_}: more=true without next")
                    return False

    def run(self):
        client = self.replica.client()
        give_up = None
        while True:
            after_done = self.done.is_set()
            if after_done:
                give_up = give_up or time.time() + 90
                if time.time() > give_up:
                    break  # never caught up: reported as not finished
            try:
                complete = self.poll(client)
            except (OSError, http.client.HTTPException) as e:
                self.stats.lost_connection(self.replica, e, False)
                complete = False
                time.sleep(0.2)
            if complete and after_done:
                self.finished = True
                break
            if not complete:
                time.sleep(0.2)
            time.sleep(0.05)
        client.close()

    def duplicates(self):
        return [i for i, c in self.seen.items() if c > 1]


def instant(timestamp):
    """A TAXII timestamp as a comparable value (any number of fraction digits)."""
    return datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))


def listing(client, collection, version="all"):
    """Every entry of a collection in one page (max_page_size is raised)."""
    r = client.get(objects_path(collection, f"match[version]={version}&limit=20000"))
    check(r.status == 200, f"{client.replica.name}: listing {collection}: {r.describe()}")
    page = r.json or {}
    check(not page.get("more"), "listing did not fit one page")
    return [o["id"] for o in page.get("objects", [])]


def check_pollers(pollers, collection_sets):
    """Every poller saw exactly the collection's content, each object once."""
    figures = []
    for p in pollers:
        check(p.finished, f"{p.name_} did not finish")
        expected = collection_sets[p.collection]
        dupes = p.duplicates()
        missing = expected - set(p.seen)
        extra = set(p.seen) - expected
        check(not dupes, f"{p.name_}: {len(dupes)} objects seen more than once, e.g. {dupes[:3]}")
        check(not missing, f"{p.name_}: missed {len(missing)} of {len(expected)} objects, e.g. {sorted(missing)[:3]}")
        check(not extra, f"{p.name_}: {len(extra)} objects not in the collection, e.g. {sorted(extra)[:3]}")
        check(p.regressions == 0, f"{p.name_}: X-TAXII-Date-Added-Last went backwards {p.regressions} times: "
                                  f"{p.regression_examples}")
        figures.append(f"{p.name_} {len(p.seen)} in {p.polls} polls/{p.pages} pages")
    return figures


# --- scenarios ------------------------------------------------------------------


def write_read(ctx):
    a, b, c = ctx.replicas
    ledger = ctx.ledger
    objs = [ledger.indicator(confidence=conf) for conf in (95, 30, 80, 55, 90)]
    objs[0]["description"] = "caf\u00e9 \u2603 \"quoted\" / escaped"
    # Raw bytes the server must keep as sent: odd spacing, reversed key order, \u escapes.
    raw_objects = []
    for o in objs:
        items = list(o.items())[::-1]
        raw_objects.append(("{ " + ",\n   ".join(f"{json.dumps(k)} :  {json.dumps(v)}" for k, v in items) + "  }").encode())
    body = b'{"objects": [' + b" ,\n".join(raw_objects) + b"]}"
    r = a.client().call("POST", objects_path(INBOX), body)
    check(r.status == 202 and r.json and r.json.get("success_count") == len(objs),
          f"POST through A: {r.describe()}")
    status_id = r.json["id"]
    ledger.ack([o["id"] for o in objs], status_id)

    views = {}
    for rep in (b, c, a):
        cl = rep.client()
        for o, raw in zip(objs, raw_objects):
            g = cl.get(objects_path(INBOX) + f"{o['id']}/")
            check(g.status == 200, f"{rep.name}: GET {o['id']}: {g.describe()}")
            check(raw in g.data, f"{rep.name}: {o['id']} not served as the bytes posted: {g.data[:300]!r}")
            views.setdefault(("object", o["id"]), []).append(
                (rep.name, g.data, g.header("X-TAXII-Date-Added-First"), g.header("X-TAXII-Date-Added-Last")))
        ids = ",".join(o["id"] for o in objs)
        m = cl.get(manifest_path(INBOX, f"match[id]={ids}"))
        check(m.status == 200 and len((m.json or {}).get("objects", [])) == len(objs),
              f"{rep.name}: manifest: {m.describe()}")
        views.setdefault(("manifest",), []).append(
            (rep.name, json.dumps(m.json["objects"], sort_keys=True).encode(), None, None))
        s = cl.get(f"/feeds/status/{status_id}/")
        check(s.status == 200 and s.json.get("status") == "complete" and s.json.get("success_count") == len(objs),
              f"{rep.name}: status {status_id}: {s.describe()}")
        q = set(listing(cl, QUERY))
        want = ledger.members([o["id"] for o in objs], OLD_THRESHOLD)
        check(want <= q, f"{rep.name}: query collection lacks {len(want - q)} of the new members")
        cl.close()
    for key, seen in views.items():
        first = seen[0]
        for other in seen[1:]:
            check(other[1] == first[1], f"{key}: {first[0]} and {other[0]} serve different bytes")
            check(other[2:] == first[2:], f"{key}: date_added headers differ: {first[0]} {first[2:]} "
                                          f"vs {other[0]} {other[2:]}")
    return (f"{len(objs)} objects posted through A served byte-identical by A, B and C "
            f"(same date_added headers and manifest, status readable on all, query members on all)")


def paging(ctx):
    a, b, c = ctx.replicas
    ledger, stats = ctx.ledger, Stats()
    cl = b.client()
    for _ in range(8):
        check(post_batch(cl, ledger, stats, 15), f"POST through B: {stats.errors}")
    clients = [x.client() for x in ctx.replicas]
    figures = []
    for collection, name in ((INBOX, "inbox"), (QUERY, "query")):
        baseline = clients[0].get(manifest_path(collection, "limit=20000"))
        check(baseline.status == 200, baseline.describe())
        records = baseline.json.get("objects", [])
        want = [rec["id"] for rec in records]
        stamps = [rec["date_added"] for rec in records]
        check(all(instant(x) < instant(y) for x, y in zip(stamps, stamps[1:])),
              f"{name}: date_added not strictly increasing in the manifest")
        for kind, path in (("objects", objects_path), ("manifest", manifest_path)):
            got, got_stamps, next_, hops = [], [], None, 0
            while True:
                cl = clients[hops % 3]
                q = "limit=7" + (f"&next={urllib.parse.quote(next_)}" if next_ else "")
                r = cl.get(path(collection, q))
                check(r.status == 200, f"{name} {kind} page {hops} via {cl.replica.name}: {r.describe()}")
                page = r.json or {}
                got += [o["id"] for o in page.get("objects", [])]
                if kind == "manifest":
                    got_stamps += [o["date_added"] for o in page.get("objects", [])]
                hops += 1
                if not page.get("more"):
                    break
                next_ = page.get("next")
                check(next_, f"{name} {kind}: more without next")
                check(hops < 10000, "paging does not end")
            check(len(got) == len(set(got)), f"{name} {kind}: {len(got) - len(set(got))} objects repeated across pages")
            check(got == want, f"{name} {kind}: pages alternating replicas give {len(got)} objects, "
                               f"expected {len(want)} in date_added order "
                               f"(missing {len(set(want) - set(got))}, out of order: {got != want})")
            if kind == "manifest":
                check(got_stamps == stamps, f"{name}: date_added differs between replicas")
        figures.append(f"{name} {len(want)} objects in {hops} pages")
    for x in clients:
        x.close()
    return "`next` alternating A,B,C: every object once, in order; " + ", ".join(figures)


def concurrent(ctx):
    a, b, c = ctx.replicas
    ledger, stats = ctx.ledger, Stats()
    stop, done = threading.Event(), threading.Event()
    before = len(ledger.acked)
    writers = [Writer(rep, ledger, stats, stop, seed=i) for i, rep in enumerate((a, a, b, b))]
    pollers = [Poller("poller C/inbox", c, INBOX, stats, done, mode="added_after"),
               Poller("poller B/inbox", b, INBOX, stats, done, mode="next"),
               Poller("poller C/query", c, QUERY, stats, done, mode="added_after", limit=20)]
    for t in pollers + writers:
        t.start()
    started = time.time()
    time.sleep(WRITE_SECONDS)
    stop.set()
    for w in writers:
        w.join(60)
    wrote = time.time() - started
    done.set()
    for p in pollers:
        p.join(120)
    check(not stats.errors, f"{stats.counts['errors']} failed requests, e.g. {stats.errors[:3]}")
    inbox = listing(a.client(), INBOX)
    check(len(inbox) == len(set(inbox)), "duplicates in the inbox")
    check(ledger.acked <= set(inbox), f"{len(ledger.acked - set(inbox))} acknowledged objects not in the inbox")
    query = set(listing(a.client(), QUERY))
    check(query == ledger.members(inbox, OLD_THRESHOLD),
          f"query collection differs from the inbox's members ({len(query)} vs "
          f"{len(ledger.members(inbox, OLD_THRESHOLD))})")
    figures = check_pollers(pollers, {INBOX: set(inbox), QUERY: query})
    n = len(ledger.acked) - before
    return (f"4 writers on A,B acknowledged {n} objects in {stats.counts['acked_posts']} POSTs "
            f"({n / wrote:.0f}/s); pollers saw each exactly once, 0 missed: " + "; ".join(figures))


def sigkill(ctx):
    a, b, c = ctx.replicas
    ledger, stats = ctx.ledger, Stats()
    stop = threading.Event()
    acked_before = set(ledger.acked)
    statuses_before = set(ledger.statuses)
    writers = [Writer(a, ledger, stats, stop, batch=(10, 10), died_ok=True, seed=20 + i) for i in range(4)]
    # Writers on B go on through the kill: a transaction A had open (holding the
    # clock row) must not stall them.
    stats_b, stop_b = Stats(), threading.Event()
    writers_b = [Writer(b, ledger, stats_b, stop_b, seed=30 + i) for i in range(2)]
    try:
        for w in writers + writers_b:
            w.start()
        time.sleep(1.0 + random.random())
        a.kill()
        killed_at = time.time()
        stop.set()
        for w in writers:
            w.join(60)
        time.sleep(2)
    finally:
        stop.set()
        stop_b.set()
        for w in writers + writers_b:
            w.join(60)
    check(not stats.errors, f"failed requests before the kill: {stats.errors[:3]}")
    check(not stats_b.errors, f"writes through B failed around A's kill: {stats_b.errors[:3]}")
    b_after = sum(1 for w in writers_b for t in w.acked_at if t > killed_at)
    check(b_after > 0, "B acknowledged no write after A was killed")
    slowest_b = max(w.slowest for w in writers_b)
    by_a = {i for w in writers for i in w.acked_ids}
    check(by_a, "A acknowledged nothing before the kill")
    for rep in (b, c):
        cl = rep.client()
        ids = listing(cl, INBOX)
        check(len(ids) == len(set(ids)), f"{rep.name}: duplicates after the kill")
        lost = by_a - set(ids)
        check(not lost, f"{rep.name}: {len(lost)} of {len(by_a)} objects acknowledged by A lost, e.g. {sorted(lost)[:3]}")
        new_statuses = sorted(set(ledger.statuses) - statuses_before)
        for sid in random.sample(new_statuses, min(15, len(new_statuses))):
            s = cl.get(f"/feeds/status/{sid}/")
            check(s.status == 200 and s.json.get("status") == "complete"
                  and s.json.get("success_count") == len(ledger.statuses[sid]),
                  f"{rep.name}: status {sid} of a request A acknowledged: {s.describe()}")
        cl.close()
    posts = stats.counts.get("acked_posts", 0)
    restarting = time.time()
    a.start()
    restarted = time.time() - restarting
    cl = a.client()
    ids_a = set(listing(cl, INBOX))
    check(ledger.acked <= ids_a, "restarted A does not serve everything acknowledged")
    stats2 = Stats()
    check(post_batch(cl, ledger, stats2, 3), f"POST through restarted A: {stats2.errors}")
    last = list(ledger.statuses)[-1]
    for rep in (b, c):
        got = set(listing(rep.client(), INBOX))
        check(set(ledger.statuses[last]) <= got, f"{rep.name} does not serve what restarted A acknowledged")
    cl.close()
    return (f"A killed with SIGKILL after acknowledging {len(by_a)} objects in {posts} POSTs "
            f"(4 writers): all readable through B and C with their statuses; writers on B went on "
            f"({b_after} POSTs acknowledged after the kill, slowest {slowest_b:.2f}s); A restarted, ready "
            f"in {restarted:.1f}s, serves everything and takes writes")


def query_change(ctx):
    replicas = ctx.replicas
    ledger = ctx.ledger
    inbox = listing(replicas[1].client(), INBOX)
    old = ledger.members(inbox, OLD_THRESHOLD)
    new = ledger.members(inbox, NEW_THRESHOLD)
    check(new != old, "the change would not change membership")
    for rep in replicas:
        got = set(listing(rep.client(), QUERY))
        check(got == old, f"{rep.name}: query collection before the change has {len(got)} objects, expected {len(old)}")
    rebuilds_before = {rep.name: len(rebuild_lines(rep)) for rep in replicas}
    reloads_before = {rep.name: rep.metric("taxiway_config_reloads_total", 'result="ok"') for rep in replicas}
    for rep in replicas:
        rep.config.swap(config_text(NEW_THRESHOLD))
    changed = time.time()
    clients = [rep.client() for rep in replicas]
    switched = {}
    samples = collections.Counter()
    deadline = changed + 120
    while len(switched) < len(replicas):
        check(time.time() < deadline, f"not every replica serves the new membership after 120s: switched {switched}")
        for rep, cl in zip(replicas, clients):
            got = set(listing(cl, QUERY))
            if got == new:
                switched.setdefault(rep.name, time.time() - changed)
                samples["new"] += 1
            elif got == old:
                check(rep.name not in switched, f"{rep.name} went back to the old membership")
                samples["old"] += 1
            else:
                raise Failure(f"{rep.name} serves {len(got)} objects, neither the old membership ({len(old)}) "
                              f"nor the new ({len(new)}): {len(got - new - old)} unexpected, "
                              f"{len(new - got)} of the new missing")
        time.sleep(0.1)
    for rep in replicas:
        check(rep.metric("taxiway_config_reloads_total", 'result="ok"') > reloads_before[rep.name],
              f"{rep.name} did not reload its config")
    time.sleep(3)  # a second (duplicate) rebuild would show up by now
    rebuilt = {rep.name: len(rebuild_lines(rep)) - rebuilds_before[rep.name] for rep in replicas}
    total = sum(rebuilt.values())
    check(total == 1, f"query collection rebuilt {total} times after one change "
                      f"(log lines with {REBUILD_MESSAGE!r} per replica: {rebuilt})")
    # The new query applies to new objects too, through every replica.
    stats = Stats()
    cl = replicas[0].client()
    check(post_batch(cl, ledger, stats, 4, confidence=55), f"POST after the change: {stats.errors}")
    fresh = set(ledger.statuses[list(ledger.statuses)[-1]])
    for rep, c in zip(replicas, clients):
        check(fresh <= set(listing(c, QUERY)), f"{rep.name}: new objects matching the new query not in it")
        c.close()
    who = [n for n, k in rebuilt.items() if k]
    second = change_under_writes(ctx)
    return (f"query changed in 3 config dirs: rebuilt once (by {who[0]}), {len(old)} -> {len(new)} members; "
            f"replicas served the old then the new view ({samples['old']} old / {samples['new']} new samples, "
            f"never a partial one), switched after " +
            ", ".join(f"{n} {t:.1f}s" for n, t in sorted(switched.items())) + "; " + second)


def change_under_writes(ctx):
    """A second change while writers on A and B go on: objects committed during the
    rebuild are members of the new view exactly as if it had always been there."""
    replicas, ledger = ctx.replicas, ctx.ledger
    stats, stop = Stats(), threading.Event()
    writers = [Writer(rep, ledger, stats, stop, seed=60 + i) for i, rep in enumerate(replicas[:2])]
    before = len(ledger.acked)
    rebuilds_before = {rep.name: len(rebuild_lines(rep)) for rep in replicas}
    reloads_before = {rep.name: rep.metric("taxiway_config_reloads_total", 'result="ok"') for rep in replicas}
    try:
        for w in writers:
            w.start()
        time.sleep(1)
        for rep in replicas:
            rep.config.swap(config_text(THIRD_THRESHOLD))
        changed = time.time()
        while True:
            reloaded = all(rep.metric("taxiway_config_reloads_total", 'result="ok"') > reloads_before[rep.name]
                           for rep in replicas)
            rebuilt = sum(len(rebuild_lines(rep)) - rebuilds_before[rep.name] for rep in replicas)
            if reloaded and rebuilt >= 1:
                break
            check(time.time() < changed + 120, f"no rebuild 120s after the second change (reloaded: {reloaded})")
            time.sleep(0.2)
        took = time.time() - changed
        time.sleep(1)
    finally:
        stop.set()
        for w in writers:
            w.join(60)
    check(not stats.errors, f"{stats.counts['errors']} failed writes during the rebuild, e.g. {stats.errors[:3]}")
    settle(replicas)
    inbox = listing(replicas[2].client(), INBOX)
    want = ledger.members(inbox, THIRD_THRESHOLD)
    for rep in replicas:
        got = set(listing(rep.client(), QUERY))
        check(got == want, f"{rep.name}: after a change under writes the query collection has {len(got)} objects, "
                           f"expected {len(want)} ({len(want - got)} missing, {len(got - want)} not matching)")
    rebuilt = {rep.name: len(rebuild_lines(rep)) - rebuilds_before[rep.name] for rep in replicas}
    check(sum(rebuilt.values()) == 1, f"the second change was rebuilt {sum(rebuilt.values())} times: {rebuilt}")
    return (f"a second change under writes ({len(ledger.acked) - before} objects acknowledged meanwhile) rebuilt "
            f"once in {took:.1f}s, exact membership ({len(want)}) on all")


def rebuilder_killed(ctx):
    """SIGKILL the replica rebuilding a changed query: the rebuild's advisory lock goes
    with its connection, another replica (reloading the same change) takes it over and
    finishes it exactly once; everything then serves the exact membership."""
    a, b, c = ctx.replicas
    ledger = ctx.ledger
    text = f"type:indicator and confidence:>={FOURTH_THRESHOLD}"
    # Enough objects for a rebuild of several batches (2,000 each), to be caught at it.
    stats = Stats()
    cl = b.client()
    while len(ledger.acked) < 8000:
        check(post_batch(cl, ledger, stats, 500), f"POST through B: {stats.errors[:3]}")
    cl.close()
    settle(ctx.replicas)
    rebuilds_before = {rep.name: len(rebuild_lines(rep)) for rep in ctx.replicas}
    a.config.swap(config_text(FOURTH_THRESHOLD))  # only A knows yet: it rebuilds
    changed = time.time()
    state = None
    while state != "building":
        rows = pgcluster.psql(DATABASE_URL, "SELECT state, progress_vid FROM views "
                                            f"WHERE kind = 'query' AND query = '{text}' AND state != 'retired'")
        state, _, progress = rows.strip().partition("|")
        check(state != "active", "A finished the rebuild before it could be killed; not exercised "
                                 "(more objects in the store would make the rebuild longer)")
        check(time.time() < changed + 60, "A did not start rebuilding within 60s of the change")
        if state != "building":
            time.sleep(0.02)
    a.kill()
    killed_at = time.time()
    for rep in (b, c):
        rep.config.swap(config_text(FOURTH_THRESHOLD))
    while True:
        rows = pgcluster.psql(DATABASE_URL, "SELECT state FROM views "
                                            f"WHERE kind = 'query' AND query = '{text}' AND state != 'retired'")
        if rows.strip() == "active":
            break
        check(time.time() < killed_at + 120, f"the rebuild was not finished 120s after its rebuilder died "
                                             f"(view state {rows.strip()!r})")
        time.sleep(0.1)
    took = time.time() - killed_at
    a.start()
    settle(ctx.replicas)
    inbox = listing(b.client(), INBOX)
    want = ledger.members(inbox, FOURTH_THRESHOLD)
    for rep in ctx.replicas:
        got = set(listing(rep.client(), QUERY))
        check(got == want, f"{rep.name}: after the rebuilder died the query collection has {len(got)} objects, "
                           f"expected {len(want)} ({len(want - got)} missing, {len(got - want)} not matching)")
    rebuilt = {rep.name: len(rebuild_lines(rep)) - rebuilds_before[rep.name] for rep in ctx.replicas}
    check(rebuilt["A"] == 0 and rebuilt["B"] + rebuilt["C"] == 1,
          f"completed rebuilds after the rebuilder died: {rebuilt} (expected one, by B or C)")
    who = [n for n, k in rebuilt.items() if k][0]
    return (f"A killed while rebuilding (view at progress vid {progress or 0}); {who} took the rebuild over "
            f"and finished it {took:.1f}s after the kill, once; exact membership ({len(want)}) on A (restarted), "
            f"B and C")


def fresh_cursor(ctx):
    """Right after replicas start on a fresh database, a `next` cursor minted by one
    replica and followed on another must still give every object, even while the query
    collection's first build is only moments old."""
    superuser = os.environ.get("TAXIWAY_TEST_POSTGRES_URL")
    check(superuser, "TAXIWAY_TEST_POSTGRES_URL (tests/pg/provision.sh) is needed for a second database")
    name = f"taxiway_replicas_fresh_{os.getpid()}"
    url = pgcluster.create_database(superuser, name)
    replicas = [Replica(n, ctx.work, url) for n in ("G", "H", "I")]
    try:
        threads = [threading.Thread(target=r.start) for r in replicas]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        check(all(r.alive() and r.readyz() == 200 for r in replicas), "G, H, I did not all start")
        started = time.time()
        ledger, stats = Ledger(), Stats()
        cl = replicas[0].client()
        for _ in range(4):
            check(post_batch(cl, ledger, stats, 15, confidence=90), f"POST through G: {stats.errors}")
        sizes = {r.name: len(listing(r.client(), QUERY)) for r in replicas}
        got, pages, next_, trace = [], 0, None, []
        while True:
            rep = replicas[pages % 3]
            r = rep.client().get(objects_path(QUERY, "limit=10" + (f"&next={urllib.parse.quote(next_)}" if next_ else "")))
            check(r.status == 200, f"page {pages} via {rep.name}: {r.describe()}")
            objs = (r.json or {}).get("objects", [])
            got += [o["id"] for o in objs]
            trace.append(f"{rep.name}:{len(objs)}{'+' if r.json.get('more') else '.'}")
            pages += 1
            if not r.json.get("more"):
                break
            next_ = r.json["next"]
        window = time.time() - started
        if len(got) != 60 or len(set(got)) != 60 or any(v != 60 for v in sizes.values()):
            raise Failure(f"{window:.2f}s after 3 replicas started at once on a fresh database and 60 matching "
                          f"objects were posted through G, the query collection has {sizes} objects per replica, "
                          f"and `next` alternating G,H,I gives {len(got)} of 60 (pages {' '.join(trace)})")
        return f"60 objects posted through G {window:.2f}s after a fresh start: all replicas and `next` across them give all 60"
    finally:
        for r in replicas:
            r.kill()
        try:
            pgcluster.psql(superuser, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except RuntimeError:
            pass


def settle(replicas, timeout=60):
    """Wait until no replica is rebuilding a query collection, then for the replicas'
    registry caches (reads may use one up to 1 s old) to catch up."""
    deadline = time.time() + timeout
    while any(r.metric("taxiway_query_rebuilds_in_progress") for r in replicas):
        check(time.time() < deadline, f"query collections still rebuilding after {timeout}s")
        time.sleep(0.1)
    time.sleep(SETTLE_SECONDS)


def db_outage(ctx):
    cluster = pgcluster.Cluster("replicas-outage")
    CLUSTERS.append(cluster)
    url = pgcluster.create_database(cluster.superuser_url, "taxiway_outage")
    d, e, f = [Replica(n, ctx.work, url).start() for n in ("D", "E", "F")]
    replicas = (d, e, f)
    settle(replicas)
    pids = {r.name: r.proc.pid for r in replicas}
    ledger, stats = Ledger(), Stats()
    stop, done = threading.Event(), threading.Event()
    writers = [Writer(d, ledger, stats, stop, allow_503=True, seed=40),
               Writer(e, ledger, stats, stop, allow_503=True, seed=41)]
    pollers = [Poller("poller F/inbox", f, INBOX, stats, done, allow_503=True),
               Poller("poller E/inbox", e, INBOX, stats, done, mode="next", allow_503=True),
               Poller("poller F/query", f, QUERY, stats, done, allow_503=True, limit=20)]
    readiness = []  # (time, replica, code)
    sampling = threading.Event()

    def sampler():
        while not sampling.is_set():
            for r in replicas:
                readiness.append((time.time(), r.name, r.readyz(timeout=2)))
            time.sleep(0.2)

    sampler_thread = threading.Thread(target=sampler, daemon=True)
    sampler_thread.start()
    try:
        for t in writers + pollers:
            t.start()
        time.sleep(3)
        acked_before_outage = len(ledger.acked)
        stopped_at = time.time()
        cluster.stop("fast")
        stop_took = time.time() - stopped_at
        # A replica starting while the database is down waits for it (not ready).
        time.sleep(2)
        late_starter = Replica("J", ctx.work, url).start(wait=False)
        time.sleep(max(0.0, OUTAGE_SECONDS - 2))
        late_ready_during = late_starter.readyz() == 200
        started_at = time.time()
        cluster.start()
        # Traffic goes on until every replica is ready again and every writer has been
        # acknowledged a few times since.
        deadline = started_at + RECOVERY_SECONDS
        recovered = {}
        while True:
            for t, name, code in list(readiness):
                if t > started_at and code == 200:
                    recovered.setdefault(name, t - started_at)
            writes_back = [sum(1 for x in w.acked_at if x > started_at) for w in writers]
            if len(recovered) == len(replicas) and min(writes_back) >= 10:
                break
            check(time.time() < deadline,
                  f"no recovery {RECOVERY_SECONDS:.0f}s after the database came back: ready again "
                  f"{sorted(recovered)}, acknowledged POSTs per writer since {writes_back}; "
                  f"errors {stats.errors[:3]}")
            time.sleep(0.2)
        time.sleep(2)
    finally:
        stop.set()
        for w in writers:
            w.join(60)
        done.set()
        for p in pollers:
            p.join(120)
        sampling.set()
        sampler_thread.join(10)

    check(not stats.errors, f"{stats.counts['errors']} requests answered other than 200/202/503 or not at "
                            f"all, e.g. {stats.errors[:3]}")
    outage = [u for u in stats.unavailable]
    check(outage, "no request got a 503 while the database was down")
    malformed = [u for u in outage if not u[3]]
    check(not malformed, f"{len(malformed)} of {len(outage)} 503s are not TAXII errors "
                         f"(application/taxii+json with a title), e.g. {malformed[0][4] if malformed else ''}")
    slowest = max(u[2] for u in outage)
    check(slowest <= MAX_503_SECONDS, f"a 503 took {slowest:.1f}s (limit {MAX_503_SECONDS:.0f}s)")
    per_replica = collections.Counter(u[1] for u in outage)
    check(set(per_replica) == {"D", "E", "F"}, f"503s only from {dict(per_replica)}")
    late = [u for u in outage if u[0] > started_at + RECOVERY_SECONDS or u[0] < stopped_at]
    check(not late, f"{len(late)} 503s outside the outage")
    during = [(name, code) for t, name, code in readiness if stopped_at < t < started_at]
    not_ready = {name for name, code in during if code == 503}
    check(not_ready == {"D", "E", "F"}, f"readyz not-ready (503) during the outage only on {sorted(not_ready)}; "
                                        f"answers seen: {dict(collections.Counter(during))}")
    check(all(r.alive() and r.proc.pid == pids[r.name] and r.starts == 1 for r in replicas),
          "a replica exited or was restarted")
    check(late_starter.alive(), f"J, started during the outage, exited: {late_starter.log_tail(800)}")
    check(not late_ready_during, "J, started during the outage, was ready before the database came back")
    late_starter.wait_ready(max(5.0, started_at + 90 - time.time()))
    late_took = time.time() - started_at
    replicas = replicas + (late_starter,)
    sets = {}
    for r in replicas:
        cl = r.client()
        ids = listing(cl, INBOX)
        check(len(ids) == len(set(ids)), f"{r.name}: duplicates after the outage")
        lost = ledger.acked - set(ids)
        check(not lost, f"{r.name}: {len(lost)} acknowledged objects lost, e.g. {sorted(lost)[:3]}")
        sets[r.name] = (set(ids), set(listing(cl, QUERY)))
        cl.close()
    check(len({frozenset(s[0]) for s in sets.values()}) == 1, "replicas disagree on the inbox")
    check(len({frozenset(s[1]) for s in sets.values()}) == 1, "replicas disagree on the query collection")
    inbox, query = sets["F"]
    check(query == ledger.members(inbox, OLD_THRESHOLD), "query collection differs from the inbox's members")
    figures = check_pollers(pollers, {INBOX: inbox, QUERY: query})
    for r in replicas:
        r.kill()
    return (f"database down {OUTAGE_SECONDS + stop_took:.1f}s mid-traffic: {len(outage)} 503 TAXII errors "
            f"({dict(sorted(per_replica.items()))}, slowest {slowest:.2f}s), readyz 503 on D,E,F; "
            f"ready again after " + ", ".join(f"{n} {t:.1f}s" for n, t in sorted(recovered.items())) +
            f" without restarts; J, started during the outage, ready {late_took:.1f}s after it; "
            f"{len(ledger.acked)} acknowledged ({acked_before_outage} before the outage), "
            f"none lost; " + "; ".join(figures))


SCENARIOS = [("write/read", write_read), ("paging", paging), ("concurrent", concurrent),
             ("sigkill", sigkill), ("query-change", query_change), ("rebuilder-killed", rebuilder_killed),
             ("db-outage", db_outage), ("fresh-cursor", fresh_cursor)]


class Context:
    def __init__(self, work, replicas, ledger):
        self.work, self.replicas, self.ledger = work, replicas, ledger


def cleanup():
    for r in LIVE:
        try:
            r.kill()
        except Exception:  # noqa: BLE001 - best effort on the way out
            pass
    for c in CLUSTERS:
        c.destroy()
    CLUSTERS.clear()


def on_signal(signum, _frame):
    if signum == signal.SIGALRM:
        print(f"FAIL the whole test took more than {TIMEOUT:.0f}s (REPLICAS_TIMEOUT)", flush=True)
    raise SystemExit(128 + signum)


def main():
    if not DATABASE_URL:
        print("REPLICAS_DATABASE_URL (an empty PostgreSQL database) is required; "
              "tests/run.d/45-postgres-replicas.sh provides one", file=sys.stderr)
        return 2
    if not os.path.exists(BIN):
        print(f"no binary at {BIN} (cargo build -p taxiway-server, or set TAXIWAY_BIN)", file=sys.stderr)
        return 2
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGALRM):
        signal.signal(s, on_signal)
    signal.alarm(int(TIMEOUT))
    atexit.register(cleanup)
    work = tempfile.mkdtemp(prefix="taxiway-replicas-")
    failed = []
    started = time.time()
    try:
        ledger = Ledger()
        replicas = [Replica(n, work, DATABASE_URL) for n in ("A", "B", "C")]
        # Start them together: migrations must be safe when several replicas start at once.
        errors = []

        def start(r):
            try:
                r.start()
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(f"{r.name}: {e}")

        threads = [threading.Thread(target=start, args=(r,)) for r in replicas]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            print(f"FAIL start: {errors}")
            return 1
        ready_in = time.time() - started
        settle(replicas)
        print(f"start: 3 replicas ready on one database (started at once) in {ready_in:.1f}s; "
              f"query collection built, registries settled after {time.time() - started:.1f}s", flush=True)
        ctx = Context(work, replicas, ledger)
        skip = {"db-outage"} if os.environ.get("REPLICAS_SKIP_OUTAGE") == "1" else set()
        only = set(filter(None, os.environ.get("REPLICAS_ONLY", "").split(",")))
        for name, fn in SCENARIOS:
            if name in skip or (only and name not in only):
                print(f"SKIP {name}", flush=True)
                continue
            t0 = time.time()
            try:
                summary = fn(ctx)
                print(f"PASS {name}: {summary} [{time.time() - t0:.1f}s]", flush=True)
            except Exception as e:  # noqa: BLE001 - every scenario is reported
                failed.append(name)
                print(f"FAIL {name}: {e} [{time.time() - t0:.1f}s]", flush=True)
                if not isinstance(e, Failure):
                    traceback.print_exc()
                for r in LIVE:
                    sys.stderr.write(f"--- {r.name} ({'alive' if r.alive() else 'exited'}) log tail ---\n"
                                     f"{r.log_tail(2500)}\n")
                for r in ctx.replicas:
                    if not r.alive():
                        try:
                            r.start()
                        except Failure as e2:
                            print(f"FAIL cannot restart {r.name}: {e2}")
                            return 1
    finally:
        cleanup()
        if failed:
            print(f"logs kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    took = time.time() - started
    if failed:
        print(f"replicas test FAILED ({', '.join(failed)}) in {took:.0f}s")
        return 1
    print(f"replicas test passed in {took:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
