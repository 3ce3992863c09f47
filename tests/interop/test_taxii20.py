#!/usr/bin/env python3
"""TAXII 2.0 interop test: drive a real taxiway-server with the real OASIS 2.0 client.

    venv=$(tests/interop/setup-venv.sh)
    "$venv/bin/python" tests/interop/test_taxii20.py

Builds nothing. It takes an already built binary and runs the same checks twice:
against a server serving TAXII 2.0 alone and against one serving 2.1 and 2.0 side by
side. For each it makes a temporary config dir (examples/standalone/config with
`service.versions` set) and data dir, imports examples/standalone/sample-bundle.json
plus a few STIX 2.1 objects 2.0 cannot express (an observable, a location, a
relationship to the observable, a Sigma indicator) and one with a UUIDv5 id into
`inbox` with `taxiway-server import`, starts `taxiway-server serve` on free loopback
ports, waits for /readyz, and talks TAXII 2.0 to it with taxii2client.v20 (Server,
ApiRoot, Collection, as_pages). Every object served is validated with
stix2-validator for STIX 2.0; objects posted as 2.0 are read back over 2.1 (when
served) and validated for STIX 2.1. Expectations are computed here from the bundles.

Environment (all optional):
  TAXIWAY_BIN              server binary (default target/debug/taxiway-server, relative to
                           the current directory, else to the repository root)
  TAXIWAY_KEEP_TMP=1       keep the temporary directories (their path is printed)

Prints PASS/FAIL per check and, last, "N passed, N failed"; on any failure it prints
the server logs and exits 1. The servers are stopped at the end, on failure too.
"""

import atexit
import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from pathlib import Path

try:
    import requests
    import stix2
    from stix2validator import ValidationOptions, validate_instance, validate_string
    from taxii2client.v20 import ApiRoot, Collection, Server, as_pages
    from taxii2client.v21 import Server as Server21
except ImportError as e:  # pragma: no cover
    sys.exit("missing Python dependency (%s): run tests/interop/setup-venv.sh and use its "
             "python, or install tests/interop/requirements.txt" % e)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
EXAMPLE = REPO / "examples" / "standalone"
BUNDLE_PATH = EXAMPLE / "sample-bundle.json"

TAXII20 = "application/vnd.oasis.taxii+json; version=2.0"
STIX20 = "application/vnd.oasis.stix+json; version=2.0"
TAXII21 = "application/taxii+json;version=2.1"
PAGE = 7  # per_request for as_pages: small and prime, so pages cut everywhere

INBOX = "inbox"
INBOX_ID = "e78eb331-c15a-463f-ba62-73b2a71a324a"
HIGH_IPV4 = "High-confidence IPv4"

UUID4 = re.compile(r"^[a-z0-9-]+--[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
MS_TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
CONTENT_RANGE = re.compile(r"^items (\d+)-(\d+)/(\d+)$")

# Types STIX 2.1 has and 2.0 lacks (docs/taxii-versions.md): never served, never counted.
NOT_IN_STIX20 = {
    "artifact", "autonomous-system", "directory", "domain-name", "email-addr", "email-message",
    "file", "ipv4-addr", "ipv6-addr", "mac-addr", "mutex", "network-traffic", "process",
    "software", "url", "user-account", "windows-registry-key", "x509-certificate",
    "extension-definition", "grouping", "incident", "infrastructure", "language-content",
    "location", "malware-analysis", "note", "opinion",
}
TLP1 = {"clear": "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
        "green": "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
        "amber": "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
        "red": "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"}
TLP2 = {"marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487": "clear",
        "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb": "green",
        "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421": "amber",
        "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003": "amber+strict",
        "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1": "red"}


class CheckFailed(AssertionError):
    pass


def ensure(cond, msg, *args):
    if not cond:
        raise CheckFailed(msg % args if args else msg)


def kind(stix_id):
    return stix_id.split("--", 1)[0]


def v4(stix_id):
    """The id as served on 2.0: the UUID's version digit set to 4."""
    k, u = stix_id.split("--", 1)
    return "%s--%s4%s" % (k, u[:14], u[15:])


def version_of(obj):
    return obj.get("modified", obj.get("created"))


def ms(ts):
    """A STIX timestamp cut to milliseconds, as 2.0 requires for created/modified."""
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z$", ts)
    ensure(m, "not a UTC timestamp: %r", ts)
    return "%s.%sZ" % (m.group(1), (m.group(2) or "").ljust(3, "0")[:3])


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def die_with_parent():
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def describe_http_error(e):
    resp, req = getattr(e, "response", None), getattr(e, "request", None)
    if resp is None:
        return repr(e)
    req = req or resp.request
    return "%s %s -> HTTP %s, Content-Type %r, body %s" % (
        req.method, req.url, resp.status_code, resp.headers.get("Content-Type"), resp.text[:600])


# --- what the server holds, and what 2.0 should see of it --------------------------------

def stix21(kind_, id_, **props):
    o = {"type": kind_, "spec_version": "2.1", "id": id_,
         "created": "2025-03-01T00:00:00.000Z", "modified": "2025-03-01T00:00:00.000Z"}
    o.update(props)
    return o


SAMPLE = json.loads(BUNDLE_PATH.read_text(encoding="utf-8"))["objects"]
SAMPLE_MALWARE = next(o["id"] for o in SAMPLE if o["type"] == "malware")
SCO_ID = "ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd"
V5_INDICATOR = "indicator--a4d70b75-6f4a-5d19-9137-da863edd33d7"
EXTRA = [
    {"type": "ipv4-addr", "spec_version": "2.1", "id": SCO_ID, "value": "198.51.100.77"},
    stix21("location", "location--5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d", country="BE"),
    stix21("indicator", "indicator--0c9d8e7f-6a5b-4c3d-9e2f-1a0b9c8d7e6f",
           pattern="[ipv4-addr:value = '198.51.100.77']", pattern_type="stix",
           valid_from="2025-03-01T00:00:00Z", indicator_types=["malicious-activity"]),
    stix21("relationship", "relationship--1d2c3b4a-5f6e-4d7c-8b9a-0f1e2d3c4b5a",
           relationship_type="based-on", source_ref="indicator--0c9d8e7f-6a5b-4c3d-9e2f-1a0b9c8d7e6f",
           target_ref=SCO_ID),
    stix21("indicator", "indicator--2e3f4a5b-6c7d-4e8f-9a0b-1c2d3e4f5a6b",
           pattern="title: suspicious\ndetection: {}", pattern_type="sigma",
           valid_from="2025-03-01T00:00:00Z"),
    stix21("indicator", V5_INDICATOR, name="deterministic id (UUIDv5)",
           pattern="[domain-name:value = 'evil.example']", pattern_type="stix",
           valid_from="2025-03-01T00:00:00Z", confidence=90, lang="en",
           modified="2025-03-01T00:00:00.123456Z"),
    stix21("relationship", "relationship--3f4a5b6c-7d8e-4f9a-8b1c-2d3e4f5a6b7c",
           relationship_type="indicates", source_ref=V5_INDICATOR, target_ref=SAMPLE_MALWARE),
]
STORED = SAMPLE + EXTRA  # in import order


def latest(objects):
    out = {}
    for o in objects:
        cur = out.get(o["id"])
        if cur is None or version_of(o) > version_of(cur):
            out[o["id"]] = o
    return out


LATEST = latest(STORED)
ALL_VERSIONS = {(o["id"], version_of(o)) for o in STORED}
MULTI_VERSION_IDS = sorted(i for i in LATEST if sum(1 for k in ALL_VERSIONS if k[0] == i) > 1)


def counted(o):
    """Whether the object takes a place in 2.0 listings (its type exists in 2.0)."""
    return o["type"] not in NOT_IN_STIX20


def servable(o):
    """Whether 2.0 can express it (else it keeps its place but is left out)."""
    if not counted(o):
        return False
    if o["type"] == "indicator" and o.get("pattern_type", "stix") != "stix":
        return False
    if o["type"] == "relationship":
        return kind(o["source_ref"]) not in NOT_IN_STIX20 and kind(o["target_ref"]) not in NOT_IN_STIX20
    return True


EXPECTED_COUNT = sum(1 for o in LATEST.values() if counted(o))
EXPECTED_IDS = {v4(o["id"]) for o in LATEST.values() if servable(o)}


# --- one server under test ----------------------------------------------------------------

class Harness:
    def __init__(self, versions):
        self.versions = versions
        self.label = "+".join(versions)
        binary = os.environ.get("TAXIWAY_BIN", "target/debug/taxiway-server")
        path = Path(binary)
        if not path.is_absolute() and not path.exists():
            path = REPO / binary
        self.bin = str(path.resolve())
        self.tmp = Path(tempfile.mkdtemp(prefix="taxiway-interop20-"))
        self.config_dir = self.tmp / "config"
        self.data_dir = self.tmp / "data"
        self.log_path = self.tmp / "server.log"
        self.proc = None
        self.log_file = None

    def run_cli(self, *args, timeout=60):
        p = subprocess.run([self.bin, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout, text=True)
        return p.returncode, p.stdout

    def prepare(self):
        shutil.copytree(EXAMPLE / "config", self.config_dir)
        toml_path = self.config_dir / "taxiway.toml"
        toml = toml_path.read_text()
        versions = "versions = [%s]\n" % ", ".join('"%s"' % v for v in self.versions)
        toml = toml.replace("[service]\n", "[service]\n" + versions, 1)
        toml_path.write_text(toml)
        self.data_dir.mkdir()
        extra = self.tmp / "extra-bundle.json"
        extra.write_text(json.dumps({"type": "bundle", "id": "bundle--%s" % uuid.uuid4(), "objects": EXTRA}))
        with open(self.log_path, "a") as log:
            for bundle in (BUNDLE_PATH, extra):
                rc, out = self.run_cli("import", "--config-dir", self.config_dir, "--data-dir", self.data_dir,
                                       "--collection", INBOX, bundle)
                log.write("$ taxiway-server import %s (exit %d)\n%s\n" % (bundle, rc, out))
                if rc != 0:
                    raise CheckFailed("taxiway-server import %s: exit %d:\n%s" % (bundle, rc, out))

    def start(self):
        self.port = free_port()
        self.admin_port = free_port()
        while self.admin_port == self.port:
            self.admin_port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        admin = "http://127.0.0.1:%d" % self.admin_port
        cmd = [self.bin, "serve", "--config-dir", str(self.config_dir), "--data-dir", str(self.data_dir),
               "--listen", "127.0.0.1:%d" % self.port, "--admin-listen", "127.0.0.1:%d" % self.admin_port]
        self.log_file = open(self.log_path, "ab")
        self.log_file.write(("$ %s\n" % " ".join(cmd)).encode())
        self.log_file.flush()
        self.proc = subprocess.Popen(cmd, stdout=self.log_file, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True,
                                     preexec_fn=die_with_parent)
        deadline = time.monotonic() + 20
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise CheckFailed("server exited with code %s before /readyz answered" % self.proc.returncode)
            try:
                r = requests.get(admin + "/readyz", timeout=1)
                if r.status_code == 200:
                    return
                last = "HTTP %d" % r.status_code
            except requests.RequestException as e:
                last = repr(e)
            time.sleep(0.1)
        raise CheckFailed("GET %s/readyz not 200 within 20 s (last: %s)" % (admin, last))

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.log_file is not None:
            self.log_file.close()
            self.log_file = None

    def server_log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return "(no server log)"

    def cleanup(self):
        self.stop()
        if os.environ.get("TAXIWAY_KEEP_TMP"):
            print("kept %s" % self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def get(self, url, accept=STIX20, params=None, **headers):
        h = dict(headers)
        if accept is not None:
            h["Accept"] = accept
        return requests.get(url, params=params, headers=h, timeout=10)

    @property
    def serves21(self):
        return "2.1" in self.versions


# --- the checks ---------------------------------------------------------------------------

CHECKS = []


def check(name):
    def register(fn):
        CHECKS.append((name, fn))
        return fn
    return register


class Run:
    """State shared by the checks of one server (filled in as they run)."""

    def __init__(self, harness):
        self.h = harness
        self.api_root = None
        self.collections = {}
        self.served = {}  # served id -> object, from the paged read
        self.order = []  # served ids in listing order
        self.added = []  # the 2.0 objects posted
        self.last_added = None


def coll(run, title):
    c = run.collections.get(title)
    ensure(c is not None, "collection %r not found (earlier check failed?)", title)
    return c


def paged(func, url, **filters):
    """Everything from as_pages(func, per_request=PAGE), checking Content-Range on the way."""
    items, pages, expect_start = [], 0, 0
    total = None
    for resp in _pages(func, **filters):
        pages += 1
        ensure(pages < 500, "paging %s did not end after 500 pages", url)
        ensure(resp.status_code == 206, "page %d of %s: HTTP %d, expected 206", pages, url, resp.status_code)
        cr = resp.headers.get("Content-Range", "")
        m = CONTENT_RANGE.match(cr)
        ensure(m, "page %d of %s: Content-Range %r is not `items a-b/N`", pages, url, cr)
        first, last, n = map(int, m.groups())
        ensure(first == expect_start, "page %d of %s: starts at %d, expected %d", pages, url, first, expect_start)
        ensure(last - first + 1 <= PAGE, "page %d of %s: %r is more than %d items", pages, url, cr, PAGE)
        ensure(total is None or n == total, "page %d of %s: total changed from %s to %d", pages, url, total, n)
        total = n
        body = resp.json()
        got = body.get("objects", [])
        ensure(len(got) <= last - first + 1, "page %d of %s: %d objects for %r", pages, url, len(got), cr)
        ensure("objects" not in body or got, "page %d of %s: \"objects\": []", pages, url)
        items.extend(got)
        expect_start = last + 1
    return items, pages, total


def _pages(func, **filters):
    """as_pages, yielding the raw responses (as_pages itself yields parsed JSON)."""
    responses = []

    def recording(*args, **kwargs):
        resp = func(*args, **kwargs)
        responses.append(resp)
        return resp

    for _ in as_pages(recording, per_request=PAGE, **filters):
        yield responses[-1]


@check("discovery at /taxii/ (taxii2client.v20 Server)")
def _discovery(run):
    server = Server(run.h.base + "/taxii/")
    ensure(server.title == "Taxiway standalone", "discovery title %r", server.title)
    ensure(server.contact == "soc@example.com", "discovery contact %r", server.contact)
    want = run.h.base + "/feeds/"
    roots = server._raw.get("api_roots")
    ensure(roots == [want], "api_roots %r, expected [%r]", roots, want)
    ensure(server.default is not None and server.default.url == want, "no default API root (raw %r)",
           server._raw.get("default"))
    run.api_root = server.default


@check("API root (taxii2client.v20 ApiRoot)")
def _api_root(run):
    root = run.api_root or ApiRoot(run.h.base + "/feeds/")
    run.api_root = root
    ensure(root.title == "Threat feeds", "API root title %r", root.title)
    ensure(root.versions == ["taxii-2.0"], "API root versions %r, expected ['taxii-2.0']", root.versions)
    ensure(isinstance(root.max_content_length, int) and root.max_content_length > 0,
           "max_content_length %r", root.max_content_length)


@check("collections: ids, titles, rights, STIX 2.0 media type")
def _collections(run):
    import tomllib
    conf = tomllib.loads((EXAMPLE / "config" / "taxiway.toml").read_text())
    want = {c["title"]: c for c in conf["collections"]}
    got = {c.title: c for c in run.api_root.collections}
    run.collections = got
    ensure(set(got) == set(want), "collection titles %r, expected %r", sorted(got), sorted(want))
    for title, c in got.items():
        ensure(c.id == want[title]["id"], "%r: id %r", title, c.id)
        ensure(c.can_read is True, "%r: can_read %r", title, c.can_read)
        ensure(c.can_write is bool(want[title].get("writable")), "%r: can_write %r", title, c.can_write)
        ensure(c.media_types == [STIX20], "%r: media_types %r", title, c.media_types)
        ensure("alias" not in c._raw, "%r: alias is TAXII 2.1, not 2.0", title)
    single = Collection(run.h.base + "/feeds/collections/%s/" % INBOX_ID)
    ensure(single.title == INBOX, "GET collections/<inbox id>/: title %r", single.title)


@check("as_pages(get_objects, per_request=%d): every item once, in order, numbered" % PAGE)
def _paging(run):
    c = coll(run, INBOX)
    items, pages, total = paged(c.get_objects, c.objects_url)
    ids = [o["id"] for o in items]
    dups = sorted({i for i in ids if ids.count(i) > 1})
    ensure(not dups, "duplicates across pages: %s", dups[:10])
    ensure(total == EXPECTED_COUNT, "Content-Range total %s, expected %d (latest versions of types 2.0 has)",
           total, EXPECTED_COUNT)
    ensure(set(ids) == EXPECTED_IDS, "served ids: missing %s, unexpected %s",
           sorted(EXPECTED_IDS - set(ids))[:10], sorted(set(ids) - EXPECTED_IDS)[:10])
    one = c.get_objects()  # no Range: everything fits in one 200
    ensure([o["id"] for o in one.get("objects", [])] == ids, "one-shot read differs from the paged one")
    run.served = {o["id"]: o for o in items}
    run.order = ids


@check("served objects are STIX 2.0 (stix2-validator --version 2.0), converted as documented")
def _valid20(run):
    ensure(run.served, "nothing served (earlier check failed)")
    opts = ValidationOptions(version="2.0")
    bad = []
    for o in run.served.values():
        res = validate_instance(o, opts)
        if not res.is_valid:
            bad.append("%s: %s" % (o["id"], "; ".join(str(e) for e in res.errors)[:300]))
    ensure(not bad, "%d invalid objects: %s", len(bad), " | ".join(bad[:5]))
    for o in run.served.values():
        ensure(UUID4.match(o["id"]), "%s: not a UUIDv4 id", o["id"])
        ensure("spec_version" not in o and "confidence" not in o, "%s keeps 2.1 properties", o["id"])
        for f in ("created", "modified"):
            ensure(f not in o or MS_TS.match(o[f]), "%s: %s %r is not millisecond precision", o["id"], f, o.get(f))
        if o["type"] in ("indicator", "malware", "tool", "report", "threat-actor"):
            ensure(o.get("labels"), "%s: 2.0 requires labels", o["id"])
    for stored in LATEST.values():
        sid = v4(stored["id"])
        if sid not in run.served:
            continue
        o = run.served[sid]
        if stored["type"] == "indicator":
            want = list(dict.fromkeys(stored.get("indicator_types", []) + stored.get("labels", []))) or ["unknown"]
            ensure(o["labels"] == want, "%s: labels %r, expected %r", sid, o["labels"], want)
        refs = set(o.get("object_marking_refs", []))
        for m in stored.get("object_marking_refs", []):
            level = TLP2.get(m)
            if level is None:
                ensure(m in refs, "%s: marking %s lost", sid, m)
            elif level == "amber+strict":
                ensure({TLP1["amber"], m} <= refs, "%s: TLP:AMBER+STRICT became %r", sid, sorted(refs))
            else:
                ensure(TLP1[level] in refs and m not in refs, "%s: TLP:%s became %r", sid, level.upper(),
                       sorted(refs))
    ensure(v4(V5_INDICATOR) in run.served, "the UUIDv5 indicator is not served under its v4 id")
    # and whole served bundles, as a SIEM receives them
    c = coll(run, INBOX)
    for rng in ("items 0-%d" % (PAGE - 1), "items=%d-%d" % (EXPECTED_COUNT - 3, EXPECTED_COUNT + 10)):
        r = run.h.get(c.objects_url, Range=rng)
        ensure(r.status_code == 206, "GET objects Range %r -> %d", rng, r.status_code)
        res = validate_string(r.text, opts)
        ensure(res.is_valid, "validate_string on the bundle for %r: %s", rng,
               "; ".join(str(e) for e in res.errors)[:600])
        b = r.json()
        ensure(b.get("type") == "bundle" and b.get("spec_version") == "2.0" and UUID4.match(b.get("id", "")),
               "not a STIX 2.0 bundle: %s", r.text[:200])


@check("as_pages(get_manifest): the served versions, in date_added order")
def _manifest(run):
    c = coll(run, INBOX)
    entries, _, total = paged(c.get_manifest, c.manifest_url)
    ensure(total == EXPECTED_COUNT, "manifest Content-Range total %s, expected %d", total, EXPECTED_COUNT)
    ids = [e["id"] for e in entries]
    ensure(ids == run.order, "manifest ids differ from the objects' (or their order)")
    for e in entries:
        o = run.served.get(e["id"], {})
        ensure(e.get("versions") == [version_of(o)], "%s: manifest versions %r, object %r", e["id"],
               e.get("versions"), version_of(o))
        ensure(e.get("media_types") == [STIX20], "%s: media_types %r", e["id"], e.get("media_types"))
    added = [e["date_added"] for e in entries]
    ensure(added == sorted(added), "manifest not sorted by date_added")


@check("Range: both spellings, last page, 416 past the end, empty pages numbered")
def _ranges(run):
    c = coll(run, INBOX)
    n = EXPECTED_COUNT
    for rng in ("items 0-4", "items=0-4"):
        r = run.h.get(c.objects_url, Range=rng)
        ensure(r.status_code == 206 and r.headers.get("Content-Range") == "items 0-4/%d" % n,
               "Range %r -> HTTP %d, Content-Range %r", rng, r.status_code, r.headers.get("Content-Range"))
    r = run.h.get(c.objects_url, Range="items %d-%d" % (n - 2, n + 50))
    ensure(r.headers.get("Content-Range") == "items %d-%d/%d" % (n - 2, n - 1, n),
           "last page Content-Range %r", r.headers.get("Content-Range"))
    r = run.h.get(c.objects_url, Range="items %d-%d" % (n, n + 5))
    ensure(r.status_code == 416, "Range past the end -> HTTP %d, expected 416", r.status_code)
    ensure(r.headers.get("Content-Range") == "items */%d" % n, "416 Content-Range %r", r.headers.get("Content-Range"))
    r = run.h.get(c.objects_url, params={"match[type]": "tool"}, Range="items 0-9")
    ensure(r.status_code == 206 and r.headers.get("Content-Range") == "items 0-0/0",
           "empty page -> HTTP %d, Content-Range %r", r.status_code, r.headers.get("Content-Range"))
    ensure("objects" not in r.json(), "empty page lists objects: %s", r.text[:200])
    for lacking in ("ipv4-addr", "location"):
        env = c.get_objects(type=lacking)
        ensure(not env.get("objects"), "match[type]=%s served %d objects", lacking, len(env.get("objects", [])))


@check("object by id and match[version]")
def _object(run):
    c = coll(run, INBOX)
    ensure(MULTI_VERSION_IDS, "sample bundle has no multi-version objects")
    for oid in MULTI_VERSION_IDS:
        env = c.get_object(oid)
        objs = env.get("objects", [])
        ensure(len(objs) == 1 and objs[0]["modified"] == ms(LATEST[oid]["modified"]),
               "GET objects/%s/ returned versions %r", oid, [version_of(o) for o in objs])
        env = c.get_object(oid, version="all")
        got = sorted(o["modified"] for o in env.get("objects", []))
        want = sorted(ms(v) for i, v in ALL_VERSIONS if i == oid)
        ensure(got == want, "match[version]=all on %s: %r, expected %r", oid, got, want)
    env = c.get_object(v4(V5_INDICATOR))
    ensure([o["id"] for o in env.get("objects", [])] == [v4(V5_INDICATOR)], "v4 id of the v5 indicator")
    for missing in ("indicator--%s" % uuid.uuid4(), SCO_ID, EXTRA[1]["id"]):
        r = run.h.get(c.objects_url + missing + "/")
        ensure(r.status_code == 404, "GET objects/%s/ -> HTTP %d, expected 404", missing, r.status_code)
        ensure("title" in r.json(), "404 is not a TAXII error object: %s", r.text[:200])


def new_indicators():
    now = dt.datetime.now(dt.timezone.utc)
    out = []
    for ip in ("198.51.100.240", "203.0.113.241", "192.0.2.242"):
        out.append(json.loads(stix2.v20.Indicator(
            name="Interop 2.0 %s" % ip, labels=["malicious-activity"],
            pattern="[ipv4-addr:value = '%s']" % ip, valid_from=now,
            object_marking_refs=[TLP1["green"]]).serialize()))
    return out


@check("add_objects (2.0 bundle) -> status; read back as posted on 2.0")
def _add(run):
    c = coll(run, INBOX)
    r = run.h.get(c.objects_url, Range="items %d-%d" % (EXPECTED_COUNT - 1, EXPECTED_COUNT - 1))
    run.last_added = r.headers.get("X-TAXII-Date-Added-Last")
    ensure(run.last_added, "no X-TAXII-Date-Added-Last on the last page")
    objs = new_indicators()
    bundle = json.dumps({"type": "bundle", "id": "bundle--%s" % uuid.uuid4(), "spec_version": "2.0",
                         "objects": objs})
    status = c.add_objects(bundle, wait_for_completion=True, poll_interval=0.2, timeout=10)
    ensure(status.status == "complete", "status %r", status.status)
    ensure((status.total_count, status.success_count, status.failure_count, status.pending_count) == (3, 3, 0, 0),
           "status counts %s/%s/%s/%s", status.total_count, status.success_count, status.failure_count,
           status.pending_count)
    ensure(sorted(status.successes) == sorted(o["id"] for o in objs), "status successes %r", status.successes)
    again = run.api_root.get_status(status.id)
    ensure(again.id == status.id and again.success_count == 3, "GET status/%s/", status.id)
    for o in objs:
        env = c.get_object(o["id"])
        got = env.get("objects", [])
        ensure(len(got) == 1 and got[0] == o, "GET objects/%s/ after the add returned %s, posted %s", o["id"],
               json.dumps(got)[:400], json.dumps(o)[:400])
    run.added = objs
    ro = coll(run, HIGH_IPV4)
    r = requests.post(ro.objects_url, data=bundle, timeout=10,
                      headers={"Accept": TAXII20, "Content-Type": STIX20})
    ensure(r.status_code == 403, "POST to a query collection -> HTTP %d, expected 403", r.status_code)
    r = requests.post(c.objects_url, data=bundle, timeout=10,
                      headers={"Accept": TAXII20, "Content-Type": "application/json"})
    ensure(r.status_code == 415, "POST as application/json -> HTTP %d, expected 415", r.status_code)


@check("added_after = the last X-TAXII-Date-Added-Last returns exactly the new objects")
def _added_after(run):
    ensure(run.added and run.last_added, "needs the add_objects check")
    c = coll(run, INBOX)
    items, _, total = paged(c.get_objects, c.objects_url, added_after=run.last_added)
    got = {o["id"] for o in items}
    want = {o["id"] for o in run.added}
    ensure(got == want and total == 3, "added_after=%s: %r (total %s), expected the 3 new %r",
           run.last_added, sorted(got), total, sorted(want))


@check("objects posted as 2.0 are stored as valid STIX 2.1 (read over 2.1)")
def _read21(run):
    ensure(run.added, "needs the add_objects check")
    c = coll(run, INBOX)
    r = run.h.get(c.objects_url, accept=TAXII21, params={"match[id]": ",".join(o["id"] for o in run.added)})
    if not run.h.serves21:
        ensure(r.status_code == 406, "TAXII 2.1 asked of a 2.0-only server -> HTTP %d, expected 406",
               r.status_code)
        return "skipped (2.1 not served; 406 checked)"
    ensure(r.status_code == 200, "GET objects over 2.1 -> HTTP %d %s", r.status_code, r.text[:200])
    ensure(r.headers.get("Content-Type", "").replace(" ", "") == TAXII21, "Content-Type %r",
           r.headers.get("Content-Type"))
    objs = r.json().get("objects", [])
    ensure(len(objs) == 3, "2.1 read returned %d objects", len(objs))
    opts = ValidationOptions(version="2.1")
    for o in objs:
        res = validate_instance(o, opts)
        ensure(res.is_valid, "%s is not valid 2.1: %s", o["id"], "; ".join(str(e) for e in res.errors)[:400])
        ensure(o.get("spec_version") == "2.1" and o.get("pattern_type") == "stix"
               and o.get("indicator_types") == ["malicious-activity"] and "labels" not in o,
               "%s as stored: %s", o["id"], json.dumps(o)[:400])


@check("one URL, both versions: the collection answers 2.0 or 2.1 by Accept")
def _shared(run):
    if not run.h.serves21:
        r = run.h.get(run.h.base + "/taxii2/", accept=TAXII21)
        ensure(r.status_code in (404, 406), "GET /taxii2/ on a 2.0-only server -> HTTP %d", r.status_code)
        return "skipped (2.1 not served)"
    server = Server21(run.h.base + "/taxii2/")
    root = server.default
    ensure(root is not None and root.url == run.h.base + "/feeds/", "2.1 default API root %r",
           root and root.url)
    c21 = {c.title: c for c in root.collections}
    ensure(set(c21) == set(run.collections), "2.1 collections %r", sorted(c21))
    inbox21 = c21[INBOX]
    ensure(inbox21.url == coll(run, INBOX).url, "2.1 and 2.0 collection URLs differ: %s vs %s",
           inbox21.url, coll(run, INBOX).url)
    env = inbox21.get_object(V5_INDICATOR)
    got = env.get("objects", [])
    ensure(len(got) == 1 and got[0]["id"] == V5_INDICATOR and got[0].get("confidence") == 90,
           "2.1 serves the stored object unchanged: %s", json.dumps(got)[:300])


# --- runner -------------------------------------------------------------------------------

def run_suite(versions):
    h = Harness(versions)
    atexit.register(h.cleanup)
    run = Run(h)
    passed = failed = skipped = 0
    print("== taxiway serving TAXII %s: %s" % (" and ".join(versions), h.bin))
    try:
        if not os.access(h.bin, os.X_OK):
            raise CheckFailed("no executable at %s (build it, or set TAXIWAY_BIN)" % h.bin)
        h.prepare()
        h.start()
    except Exception as e:
        print("FAIL [%s] setup: %s" % (h.label, e))
        print(h.server_log()[-20000:])
        h.stop()
        return 0, 1, 0
    for name, fn in CHECKS:
        t0 = time.monotonic()
        try:
            note = fn(run)
            if isinstance(note, str) and note.startswith("skipped"):
                skipped += 1
                print("SKIP [%s] %s: %s" % (h.label, name, note))
            else:
                passed += 1
                print("PASS [%s] %s (%.2fs)" % (h.label, name, time.monotonic() - t0))
        except CheckFailed as e:
            failed += 1
            print("FAIL [%s] %s: %s" % (h.label, name, e))
        except requests.HTTPError as e:
            failed += 1
            print("FAIL [%s] %s: %s" % (h.label, name, describe_http_error(e)))
        except Exception as e:
            failed += 1
            print("FAIL [%s] %s: %s: %s" % (h.label, name, type(e).__name__, e))
            traceback.print_exc(file=sys.stdout)
        sys.stdout.flush()
        if h.proc is not None and h.proc.poll() is not None:
            failed += 1
            print("FAIL [%s] server exited with code %s during %r" % (h.label, h.proc.returncode, name))
            break
    h.stop()
    if failed:
        print("\n----- server log (%s) -----\n%s\n----- end of server log -----\n"
              % (h.log_path, h.server_log()[-20000:]))
    return passed, failed, skipped


def main():
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(130))
    started = time.monotonic()
    totals = [0, 0, 0]
    for versions in (["2.0"], ["2.1", "2.0"]):
        for i, n in enumerate(run_suite(versions)):
            totals[i] += n
    print("took %.1fs" % (time.monotonic() - started))
    line = "%d passed, %d failed" % (totals[0], totals[1])
    if totals[2]:
        line += ", %d skipped" % totals[2]
    print(line)
    return 1 if totals[1] else 0


if __name__ == "__main__":
    sys.exit(main())
