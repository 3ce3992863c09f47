#!/usr/bin/env python3
"""TAXII 2.1 interop test: drive a real taxiway-server with the real OASIS clients.

    tests/interop/run.sh                      # sets up the venv, then runs this
    python tests/interop/test_taxii21.py      # with taxii2-client, stix2, stix2-validator importable

Builds nothing. It takes an already built binary, makes a temporary config dir (a
copy of examples/standalone/config) and data dir, imports
examples/standalone/sample-bundle.json into `inbox` with `taxiway-server import`,
starts `taxiway-server serve` on free loopback ports, waits for /readyz, and then
talks TAXII 2.1 to it with taxii2client.v21 (Server, ApiRoot, Collection,
as_pages), stix2.TAXIICollectionSource and stix2validator. Expected contents are
computed here from the bundle, independently of the server.

Environment (all optional):
  TAXIWAY_BIN              server binary (default target/debug/taxiway-server, relative to
                           the current directory, else to the repository root)
  TAXII_USER, TAXII_PASSWORD   HTTP Basic credentials for every TAXII request
  TAXII_CA                 CA bundle to verify the server certificate (https)
  TAXIWAY_CREDENTIALS_DIR  passed to `serve --credentials-dir`
  TAXIWAY_TLS_DIR          passed to `serve --tls-dir`; the TAXII URLs become https
  TAXIWAY_KEEP_TMP=1       keep the temporary directories (their path is printed)

Prints PASS/FAIL per check and, last, "N passed, N failed"; on any failure it prints
the server log and exits 1. The server is stopped at the end, on failure too.
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
    from stix2 import Filter, TAXIICollectionSource
    from stix2validator import ValidationOptions, validate_instance, validate_string
    from taxii2client.v21 import ApiRoot, Collection, Server, as_pages
except ImportError as e:  # pragma: no cover
    sys.exit("missing Python dependency (%s): run tests/interop/run.sh, or install "
             "tests/interop/requirements.txt" % e)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
EXAMPLE = REPO / "examples" / "standalone"
BUNDLE_PATH = EXAMPLE / "sample-bundle.json"

TAXII21 = "application/taxii+json;version=2.1"
PAGE = 7  # per_request for as_pages: small and prime, so pages cut everywhere

# Titles in examples/standalone/config/taxiway.toml.
INBOX = "inbox"
HIGH_IPV4 = "High-confidence IPv4"
SHAREABLE = "Shareable last 30 days"
MALWARE = "Malware and relationships"

TLP_LEVEL = {  # marking-definition id -> rank (0 clear/white, 1 green, 2 amber, 3 amber+strict, 4 red)
    "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": 0,  # TLP 1.0 white
    "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": 1,  # TLP 1.0 green
    "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": 2,  # TLP 1.0 amber
    "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": 4,  # TLP 1.0 red
    "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487": 0,  # TLP 2.0 clear
    "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb": 1,  # TLP 2.0 green
    "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421": 2,  # TLP 2.0 amber
    "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003": 3,  # TLP 2.0 amber+strict
    "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1": 4,  # TLP 2.0 red
}
TLP2_GREEN = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"

TAXII_TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


# --- small helpers ----------------------------------------------------------------------

class CheckFailed(AssertionError):
    pass


def ensure(cond, msg, *args):
    if not cond:
        raise CheckFailed(msg % args if args else msg)


def parse_ts(s):
    """RFC 3339 UTC timestamp with 0-9 fractional digits -> (datetime, nanoseconds)."""
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$", s)
    if not m:
        raise CheckFailed("not a UTC timestamp: %r" % (s,))
    base = dt.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.timezone.utc)
    return base, int((m.group(2) or "").ljust(9, "0"))


def version_of(obj):
    return obj.get("modified", obj.get("created"))


def key(obj):
    return (obj["id"], parse_ts(version_of(obj)))


def fmt_keys(keys, limit=12):
    keys = sorted(keys, key=lambda k: (k[0], k[1]))
    shown = ["%s@%s" % (i, v[0].strftime("%Y-%m-%dT%H:%M:%S") + ".%09dZ" % v[1]) for i, v in keys[:limit]]
    more = "" if len(keys) <= limit else " ... (+%d more)" % (len(keys) - limit)
    return "[" + ", ".join(shown) + "]" + more


def diff_msg(what, got, expected):
    missing, extra = expected - got, got - expected
    parts = ["%s: got %d, expected %d" % (what, len(got), len(expected))]
    if missing:
        parts.append("missing %d %s" % (len(missing), fmt_keys(missing)))
    if extra:
        parts.append("unexpected %d %s" % (len(extra), fmt_keys(extra)))
        superseded = {k for k in extra if k in ALL_VERSIONS and LATEST[k[0]] is not ALL_VERSIONS[k]}
        if superseded:
            parts.append("%d of the unexpected are superseded versions (a later version of the same id "
                         "exists) %s" % (len(superseded), fmt_keys(superseded)))
    return "; ".join(parts)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def die_with_parent():
    """In the child before exec: get SIGTERM if this test process dies, even by SIGKILL (Linux)."""
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


# --- bundle-derived expectations ----------------------------------------------------------

BUNDLE = json.loads(BUNDLE_PATH.read_text(encoding="utf-8"))
ALL_VERSIONS = {}  # key -> object
LATEST = {}  # id -> latest version object
for _o in BUNDLE["objects"]:
    ALL_VERSIONS[key(_o)] = _o
    cur = LATEST.get(_o["id"])
    if cur is None or parse_ts(version_of(_o)) > parse_ts(version_of(cur)):
        LATEST[_o["id"]] = _o
MULTI_VERSION_IDS = sorted(i for i in LATEST if sum(1 for k in ALL_VERSIONS if k[0] == i) > 1)
PRODUCER = next(o["id"] for o in BUNDLE["objects"] if o["type"] == "identity")


def is_high_ipv4(o):
    return (o["type"] == "indicator" and o.get("pattern", "").startswith("[ipv4-addr:value")
            and o.get("confidence", -1) >= 70)


def is_malware_context(o):
    return o["type"] in ("malware", "relationship") and not o.get("revoked", False)


def tlp_rank(o):
    ranks = [TLP_LEVEL[m] for m in o.get("object_marking_refs", []) if m in TLP_LEVEL]
    return max(ranks) if ranks else None


def expected(pred):
    return {key(o) for o in LATEST.values() if pred(o)}


# --- the server under test ----------------------------------------------------------------

class Harness:
    def __init__(self):
        binary = os.environ.get("TAXIWAY_BIN", "target/debug/taxiway-server")
        path = Path(binary)
        if not path.is_absolute() and not path.exists():
            path = REPO / binary
        self.bin = str(path.resolve())
        self.tmp = Path(tempfile.mkdtemp(prefix="taxiway-interop-"))
        self.config_dir = self.tmp / "config"
        self.data_dir = self.tmp / "data"
        self.log_path = self.tmp / "server.log"
        self.proc = None
        self.log_file = None
        self.user = os.environ.get("TAXII_USER") or None
        self.password = os.environ.get("TAXII_PASSWORD") or None
        self.ca = os.environ.get("TAXII_CA") or None
        self.verify = self.ca if self.ca else True
        self.tls_dir = os.environ.get("TAXIWAY_TLS_DIR") or None
        self.credentials_dir = os.environ.get("TAXIWAY_CREDENTIALS_DIR") or None
        self.session = requests.Session()
        self.session.verify = self.verify
        if self.user is not None:
            self.session.auth = (self.user, self.password or "")

    # client keyword arguments shared by every taxii2client endpoint
    @property
    def client_kwargs(self):
        return {"user": self.user, "password": self.password, "verify": self.verify}

    def run_cli(self, *args, timeout=60):
        cmd = [self.bin, *map(str, args)]
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                           text=True, env=self.env())
        return p.returncode, p.stdout

    def env(self):
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "info")
        env.setdefault("RUST_BACKTRACE", "1")
        return env

    def prepare(self):
        shutil.copytree(EXAMPLE / "config", self.config_dir)
        self.data_dir.mkdir()

    def start(self):
        self.port = free_port()
        self.admin_port = free_port()
        while self.admin_port == self.port:
            self.admin_port = free_port()
        scheme = "https" if self.tls_dir else "http"
        self.base = "%s://127.0.0.1:%d" % (scheme, self.port)
        self.admin = "http://127.0.0.1:%d" % self.admin_port
        cmd = [self.bin, "serve", "--config-dir", str(self.config_dir), "--data-dir", str(self.data_dir),
               "--listen", "127.0.0.1:%d" % self.port, "--admin-listen", "127.0.0.1:%d" % self.admin_port]
        if self.credentials_dir:
            cmd += ["--credentials-dir", self.credentials_dir]
        if self.tls_dir:
            cmd += ["--tls-dir", self.tls_dir]
        self.log_file = open(self.log_path, "ab")
        self.log_file.write(("$ %s\n" % " ".join(cmd)).encode())
        self.log_file.flush()
        self.proc = subprocess.Popen(cmd, stdout=self.log_file, stderr=subprocess.STDOUT, env=self.env(),
                                     stdin=subprocess.DEVNULL, start_new_session=True,
                                     preexec_fn=die_with_parent)
        deadline = time.monotonic() + 20
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise CheckFailed("server exited with code %s before /readyz answered" % self.proc.returncode)
            try:
                r = requests.get(self.admin + "/readyz", timeout=1)
                if r.status_code == 200:
                    return
                last = "HTTP %d %s" % (r.status_code, r.text[:200])
            except requests.RequestException as e:
                last = repr(e)
            time.sleep(0.1)
        raise CheckFailed("GET %s/readyz not 200 within 20 s (last: %s)" % (self.admin, last))

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

    # raw HTTP, for what taxii2client does not expose (headers, status codes)
    def get(self, url, params=None, accept=TAXII21, auth=True, **headers):
        h = dict(headers)
        if accept is not None:
            h["Accept"] = accept
        if auth:
            return self.session.get(url, params=params, headers=h, timeout=10)
        return requests.get(url, params=params, headers=h, timeout=10, verify=self.verify)


# --- the checks ---------------------------------------------------------------------------

CHECKS = []


def check(name):
    def register(fn):
        CHECKS.append((name, fn))
        return fn
    return register


class Ctx:
    """State shared between checks (filled in as they run)."""
    server = None
    api_root = None
    collections = {}  # title -> Collection
    served = {}  # title -> {key: object} from the one-shot reads
    last_added = {}  # title -> X-TAXII-Date-Added-Last before the add
    added = []  # the three indicators added by the test
    capped = []  # one-shot reads the server cut below limit=1000


def coll(title):
    c = Ctx.collections.get(title)
    ensure(c is not None, "collection %r not found in the API root (earlier check failed?)", title)
    return c


def one_shot(c, **filters):
    """The whole collection in one GET with limit=1000 (TAXII-NOTES: honour limit up to at least 1,000).

    If the server cuts it anyway, follow next so that the other checks still see
    everything, and record the cut for the "limit=1000" check.
    """
    env = c.get_objects(limit=1000, **filters)
    objs = list(env.get("objects", []))
    ensure("objects" not in env or objs, "GET %s answered \"objects\": [] (TAXII 2.1 section 3.7)", c.objects_url)
    requests_made = 1
    while env.get("more", False):
        ensure(env.get("next"), "GET %s?limit=1000: more=true without next", c.objects_url)
        ensure(requests_made < 100, "GET %s: still more=true after 100 requests", c.objects_url)
        env = c.get_objects(limit=1000, next=env["next"], **filters)
        objs.extend(env.get("objects", []))
        requests_made += 1
    if requests_made > 1:
        Ctx.capped.append("GET %s?limit=1000%s: %d objects took %d requests" % (
            c.objects_url, "".join("&%s=%s" % kv for kv in sorted(filters.items())), len(objs), requests_made))
    return objs


def paged(func, url, **filters):
    """Everything from as_pages(func, per_request=PAGE); checks the paging contract on the way."""
    items, pages = [], 0
    for env in as_pages(func, per_request=PAGE, **filters):
        pages += 1
        ensure(pages < 500, "paging %s did not end after 500 pages", url)
        got = env.get("objects", [])  # manifests list their records under "objects" too
        ensure(len(got) <= PAGE, "page %d of %s: %d items for limit=%d", pages, url, len(got), PAGE)
        if env.get("more", False):
            ensure(got, "page %d of %s: more=true on an empty page", pages, url)
            ensure(isinstance(env.get("next"), str) and env.get("next"),
                   "page %d of %s: more=true without a string next", pages, url)
        else:
            ensure("next" not in env, "last page %d of %s carries next=%r", pages, url, env.get("next"))
        ensure("objects" not in env or got, "page %d of %s: \"objects\": [] (section 3.7)", pages, url)
        items.extend(got)
    return items, pages


@check("check-config accepts the example config")
def _check_config_ok():
    rc, out = H.run_cli("check-config", "--config-dir", EXAMPLE / "config")
    ensure(rc == 0, "check-config --config-dir examples/standalone/config: exit %d, output:\n%s", rc, out)


@check("check-config rejects a broken query and a duplicate title")
def _check_config_bad():
    bad = H.tmp / "bad-config"
    shutil.copytree(EXAMPLE / "config", bad)
    toml = (bad / "taxiway.toml").read_text()
    (bad / "taxiway.toml").write_text(toml.replace(
        'query = "type:indicator and ioc_type:ipv4-addr and confidence:>=70"',
        'query = "type:indicator and (ioc_type:ipv4-addr"'))
    rc, out = H.run_cli("check-config", "--config-dir", bad)
    ensure(rc != 0, "check-config accepted an unbalanced parenthesis in a query (exit 0): %s", out)
    ensure(out.strip(), "check-config failed without printing why")
    (bad / "taxiway.toml").write_text(toml.replace('title = "Shareable last 30 days"', 'title = "inbox"'))
    rc, out = H.run_cli("check-config", "--config-dir", bad)
    ensure(rc != 0, "check-config accepted two collections titled 'inbox' in one API root (exit 0): %s", out)


@check("admin /healthz and /metrics")
def _admin():
    for path in ("/healthz", "/metrics"):
        r = requests.get(H.admin + path, timeout=5)
        ensure(r.status_code == 200, "GET %s%s -> HTTP %d %s", H.admin, path, r.status_code, r.text[:200])
        ensure(r.text.strip() or path == "/healthz", "GET %s%s: empty body", H.admin, path)


@check("discovery (taxii2client Server)")
def _discovery():
    server = Server(H.base + "/taxii2/", **H.client_kwargs)
    ensure(server.title == "Taxiway standalone", "discovery title %r", server.title)
    ensure(server.description == "Example threat-intelligence feeds", "discovery description %r",
           server.description)
    ensure(server.contact == "soc@example.com", "discovery contact %r", server.contact)
    raw = server._raw
    roots = raw.get("api_roots", [])
    want = H.base + "/feeds/"
    ensure(roots == [want], "discovery api_roots %r, expected [%r] (absolute, trailing slash)", roots, want)
    ensure(raw.get("default") == want, "discovery default %r, expected %r", raw.get("default"), want)
    ensure(server.default is not None and server.default.url == want, "taxii2client found no default API root")
    Ctx.server = server
    Ctx.api_root = server.default


@check("API root information (taxii2client ApiRoot)")
def _api_root():
    root = Ctx.api_root or ApiRoot(H.base + "/feeds/", **H.client_kwargs)
    Ctx.api_root = root
    ensure(root.title == "Threat feeds", "API root title %r", root.title)
    ensure(TAXII21 in [v.replace(" ", "") for v in root.versions], "API root versions %r lack %s",
           root.versions, TAXII21)
    ensure(isinstance(root.max_content_length, int) and root.max_content_length > 0,
           "max_content_length %r", root.max_content_length)


@check("collections: titles, UUIDv4 ids, can_read/can_write")
def _collections():
    import tomllib  # Python 3.11+
    conf = tomllib.loads((EXAMPLE / "config" / "taxiway.toml").read_text())
    want = {c["title"]: c for c in conf["collections"]}
    got = {c.title: c for c in Ctx.api_root.collections}
    Ctx.collections = got
    ensure(set(got) == set(want), "collection titles %r, expected %r", sorted(got), sorted(want))
    for title, c in got.items():
        w = want[title]
        ensure(c.id == w["id"], "%r: id %r, config says %r", title, c.id, w["id"])
        ensure(UUID4.match(c.id) and str(uuid.UUID(c.id)) == c.id, "%r: id %r is not a lowercase UUIDv4",
               title, c.id)
        ensure(c.can_read is True, "%r: can_read %r", title, c.can_read)
        writable = bool(w.get("writable", False))
        ensure(c.can_write is writable, "%r: can_write %r, expected %r", title, c.can_write, writable)
        if "alias" in w:
            ensure(c.alias == w["alias"], "%r: alias %r, config says %r", title, c.alias, w["alias"])
        ensure(c.description == w.get("description"), "%r: description %r", title, c.description)
        if c.media_types:
            ensure(any(m.replace(" ", "").startswith("application/stix+json") for m in c.media_types),
                   "%r: media_types %r", title, c.media_types)


def _paging_check(title):
    c = coll(title)
    once = one_shot(c)
    once_keys = [key(o) for o in once]
    ensure(len(once_keys) == len(set(once_keys)), "%s: one-shot read has duplicate versions", title)
    pages, n = paged(c.get_objects, c.objects_url)
    page_keys = [key(o) for o in pages]
    dups = {k for k in page_keys if page_keys.count(k) > 1}
    ensure(not dups, "%s: as_pages(per_request=%d) returned duplicates %s", title, PAGE, fmt_keys(dups))
    ensure(set(page_keys) == set(once_keys), diff_msg("%s: as_pages(per_request=%d) vs one-shot" % (title, PAGE),
                                                      set(page_keys), set(once_keys)))
    ensure(page_keys == once_keys, "%s: paged order differs from the one-shot order (both must be by date_added)",
           title)
    # manifests page the same way and list the same versions, in date_added order
    man, _ = paged(c.get_manifest, c.url + "manifest/")
    man_keys = [(m["id"], parse_ts(m["version"])) for m in man]
    ensure(man_keys == once_keys, diff_msg("%s: manifest (paged) vs objects" % title, set(man_keys), set(once_keys))
           + " (or same set in another order)")
    added = [parse_ts(m["date_added"]) for m in man]
    ensure(added == sorted(added), "%s: manifest not sorted by date_added", title)
    for m in man:
        ensure(TAXII_TS.match(m["date_added"]), "%s: manifest date_added %r not a TAXII timestamp",
               title, m["date_added"])
    Ctx.served[title] = {key(o): o for o in once}
    return n


for _title in (INBOX, HIGH_IPV4, SHAREABLE, MALWARE):
    check("paging %r with as_pages(per_request=%d): no duplicates, full coverage" % (_title, PAGE))(
        lambda t=_title: _paging_check(t))


@check("limit=1000 is honoured in one request")
def _limit_1000():
    for title in (INBOX, HIGH_IPV4, SHAREABLE, MALWARE):
        if title not in Ctx.served:
            one_shot(coll(title))
    ensure(not Ctx.capped, "the server cut limit=1000 (TAXII-NOTES: honour limit up to at least 1,000): %s",
           " | ".join(Ctx.capped))


@check("inbox holds the bundle: latest versions by default, every version with match[version]=all")
def _inbox_contents():
    served = Ctx.served.get(INBOX) or {key(o): o for o in one_shot(coll(INBOX))}
    want = {key(o) for o in LATEST.values()}
    ensure(set(served) == want, diff_msg("inbox (match[version]=last)", set(served), want))
    for k, o in served.items():
        ensure(o == ALL_VERSIONS[k], "inbox serves %s@%s with content different from the bundle: %s",
               k[0], version_of(o), json.dumps(o)[:400])
    allv = {key(o) for o in one_shot(coll(INBOX), version="all")}
    ensure(allv == set(ALL_VERSIONS), diff_msg("inbox (match[version]=all)", allv, set(ALL_VERSIONS)))


@check("High-confidence IPv4 holds exactly what the bundle predicts")
def _high_ipv4():
    got = set(Ctx.served.get(HIGH_IPV4) or {key(o) for o in one_shot(coll(HIGH_IPV4))})
    want = expected(is_high_ipv4)
    ensure(len(want) >= 8, "sample bundle has too few high-confidence IPv4 indicators (%d)", len(want))
    ensure(got == want, diff_msg("High-confidence IPv4 (latest version of each indicator with an ipv4 "
                                 "pattern and confidence >= 70)", got, want))


@check("Malware and relationships holds exactly what the bundle predicts")
def _malware():
    got = set(Ctx.served.get(MALWARE) or {key(o) for o in one_shot(coll(MALWARE))})
    want = expected(is_malware_context)
    ensure(got == want, diff_msg("Malware and relationships (latest malware/relationship versions, "
                                 "not revoked)", got, want))


@check("Shareable last 30 days: TLP clear/white/green in, amber/red out")
def _shareable():
    got = set(Ctx.served.get(SHAREABLE) or {key(o) for o in one_shot(coll(SHAREABLE))})
    must = expected(lambda o: tlp_rank(o) is not None and tlp_rank(o) <= 1)
    must_not = expected(lambda o: tlp_rank(o) is not None and tlp_rank(o) >= 2)
    ensure(must <= got, "Shareable is missing %d TLP clear/white/green objects %s",
           len(must - got), fmt_keys(must - got))
    ensure(not (must_not & got), "Shareable serves %d amber/red objects %s",
           len(must_not & got), fmt_keys(must_not & got))
    latest = {key(o) for o in LATEST.values()}
    older = {k for k in got if k not in latest}
    ensure(not older, "Shareable serves superseded versions %s", fmt_keys(older))


@check("object by id, versions endpoint, match[version]=all on a two-version object")
def _object_versions():
    c = coll(INBOX)
    ensure(MULTI_VERSION_IDS, "sample bundle has no multi-version objects")
    for oid in MULTI_VERSION_IDS:
        env = c.get_object(oid)
        objs = env.get("objects", [])
        ensure(len(objs) == 1 and objs[0] == LATEST[oid], "GET objects/%s/ returned %s, expected only the "
               "latest version %s", oid, [version_of(o) for o in objs], version_of(LATEST[oid]))
        env = c.get_object(oid, version="all")
        got = {key(o) for o in env.get("objects", [])}
        want = {k for k in ALL_VERSIONS if k[0] == oid}
        ensure(got == want, diff_msg("GET objects/%s/?match[version]=all" % oid, got, want))
        env = c.object_versions(oid)
        got = {(oid, parse_ts(v)) for v in env.get("versions", [])}
        ensure(got == want, diff_msg("GET objects/%s/versions/" % oid, got, want))
    missing = "indicator--%s" % uuid.uuid4()
    r = H.get(c.objects_url + missing + "/")
    ensure(r.status_code == 404, "GET objects/<unknown id>/ -> HTTP %d, expected 404", r.status_code)
    ensure(r.headers.get("Content-Type", "").replace(" ", "").startswith("application/taxii+json"),
           "404 Content-Type %r is not a TAXII media type", r.headers.get("Content-Type"))
    ensure("title" in r.json(), "404 body is not a TAXII error object: %s", r.text[:300])


@check("stix2.TAXIICollectionSource get/query/all_versions")
def _stix2_source():
    src = TAXIICollectionSource(coll(INBOX))
    oid = next(i for i in MULTI_VERSION_IDS if i.startswith("indicator--"))
    obj = src.get(oid)
    ensure(obj is not None, "TAXIICollectionSource.get(%s) returned None", oid)
    ensure(obj["id"] == oid and parse_ts(stix2.utils.format_datetime(obj["modified"]))
           == parse_ts(LATEST[oid]["modified"]),
           "get(%s) returned version %s, expected the latest %s", oid, obj.get("modified"),
           LATEST[oid]["modified"])
    inds = src.query([Filter("type", "=", "indicator")])
    got = {(o["id"], parse_ts(stix2.utils.format_datetime(o["modified"]))) for o in inds}
    want = expected(lambda o: o["type"] == "indicator")
    ensure(got == want, diff_msg("TAXIICollectionSource.query(type=indicator)", got, want))
    versions = src.all_versions(oid)
    ensure(len(versions) == 2, "all_versions(%s) returned %d versions", oid, len(versions))
    hi = TAXIICollectionSource(coll(HIGH_IPV4)).query([Filter("type", "=", "indicator")])
    ensure({o["id"] for o in hi} == {k[0] for k in expected(is_high_ipv4)},
           "TAXIICollectionSource.query on High-confidence IPv4 returned %d indicators, expected %d",
           len(hi), len(expected(is_high_ipv4)))


def date_added_headers(url, **params):
    """Raw GET of url with params, following next to the end.

    Returns (objects, X-TAXII-Date-Added-First of the first page, X-TAXII-Date-Added-Last of
    the last page), checking both headers on every non-empty page.
    """
    objs, first, last, pages = [], None, None, 0
    q = dict(params)
    while True:
        r = H.get(url, params=q)
        pages += 1
        ensure(r.status_code == 200, "GET %s %r -> HTTP %d %s", url, q, r.status_code, r.text[:300])
        env = r.json()
        got = env.get("objects", [])
        f, l = r.headers.get("X-TAXII-Date-Added-First"), r.headers.get("X-TAXII-Date-Added-Last")
        if got:
            ensure(f and l, "GET %s %r: X-TAXII-Date-Added-First/Last missing (got %r / %r)", url, q, f, l)
            for h in (f, l):
                ensure(TAXII_TS.match(h), "GET %s %r: header timestamp %r is not YYYY-MM-DDTHH:MM:SS[.ffffff]Z",
                       url, q, h)
            ensure(parse_ts(f) <= parse_ts(l), "GET %s %r: First %s after Last %s", url, q, f, l)
            if last is not None:
                ensure(parse_ts(f) > parse_ts(last), "GET %s %r: page %d starts at %s, not after the previous "
                       "page's Last %s", url, q, pages, f, last)
            first = first or f
            last = l
        objs.extend(got)
        if not env.get("more", False):
            return objs, first, last
        ensure(pages < 100, "GET %s: more=true after 100 pages", url)
        q = dict(params, next=env["next"])


@check("X-TAXII-Date-Added-Last as added_after returns nothing new (before the add)")
def _added_after_empty():
    for title in (INBOX, HIGH_IPV4, SHAREABLE):
        c = coll(title)
        objs, first, last = date_added_headers(c.objects_url, limit=1000)
        ensure(objs and first and last, "%s: no objects or no X-TAXII-Date-Added headers", title)
        Ctx.last_added[title] = last
        env = c.get_objects(added_after=last)
        ensure(not env.get("objects"), "%s: added_after=<its own Last %s> returned %d objects",
               title, last, len(env.get("objects", [])))
        ensure("objects" not in env, "%s: empty result carries \"objects\": [] (section 3.7): %s",
               title, json.dumps(env)[:200])
        ensure(not env.get("more", False), "%s: empty result says more=true", title)
        env = c.get_manifest(added_after=last)
        ensure(not env.get("objects"), "%s: manifest?added_after=<Last %s> not empty: %s", title, last,
               json.dumps(env)[:200])


def new_indicators():
    now = dt.datetime.now(dt.timezone.utc)
    values = [("198.51.100.250", 80), ("203.0.113.251", 95), ("192.0.2.252", 75)]
    inds = []
    for ip, conf in values:
        ensure(not any(ip in o.get("pattern", "") for o in LATEST.values()), "test IP %s is in the bundle", ip)
        inds.append(stix2.v21.Indicator(
            name="Interop test C2 %s" % ip,
            indicator_types=["malicious-activity"],
            pattern="[ipv4-addr:value = '%s']" % ip,
            pattern_type="stix",
            pattern_version="2.1",
            valid_from=now,
            confidence=conf,
            labels=["c2", "interop-test"],
            created_by_ref=PRODUCER,
            object_marking_refs=[TLP2_GREEN],
        ))
    return [json.loads(i.serialize()) for i in inds]


@check("add_objects: 3 indicators to inbox, get_status until complete, read back")
def _add_objects():
    c = coll(INBOX)
    objs = new_indicators()
    envelope = {"objects": objs}
    status = c.add_objects(envelope, wait_for_completion=False)
    deadline = time.monotonic() + 10
    while status.status != "complete" and time.monotonic() < deadline:
        time.sleep(0.1)
        status = Ctx.api_root.get_status(status.id)
    ensure(status.status == "complete", "status %s still %r after 10 s", status.id, status.status)
    ensure((status.total_count, status.success_count, status.failure_count, status.pending_count) == (3, 3, 0, 0),
           "status counts total/success/failure/pending = %s/%s/%s/%s, expected 3/3/0/0",
           status.total_count, status.success_count, status.failure_count, status.pending_count)
    if status.successes:
        got = {s.get("id") for s in status.successes}
        ensure(got == {o["id"] for o in objs}, "status successes ids %r", sorted(got))
    again = Ctx.api_root.get_status(status.id)  # a status resource stays readable
    ensure(again.id == status.id, "GET status/%s/ returned id %r", status.id, again.id)
    Ctx.added = objs
    for o in objs:
        env = c.get_object(o["id"])
        got = env.get("objects", [])
        ensure(len(got) == 1 and got[0] == o, "GET objects/%s/ after add returned %s", o["id"],
               json.dumps(got)[:300])


@check("added_after = previous X-TAXII-Date-Added-Last returns exactly the new objects")
def _added_after_new():
    ensure(Ctx.added and Ctx.last_added.get(INBOX), "needs the add_objects and the earlier added_after check")
    want = {key(o) for o in Ctx.added}
    c = coll(INBOX)
    prev = Ctx.last_added[INBOX]
    objs, first, last = date_added_headers(c.objects_url, added_after=prev)
    got = {key(o) for o in objs}
    ensure(got == want, diff_msg("inbox objects?added_after=%s" % prev, got, want))
    ensure(first and parse_ts(first) > parse_ts(prev), "X-TAXII-Date-Added-First %r not after added_after %r",
           first, prev)
    # the new Last, fed back, gives nothing
    env = c.get_objects(added_after=last)
    ensure(not env.get("objects"), "added_after=<new Last %s> returned %d objects", last,
           len(env.get("objects", [])))
    # taxii2client paging with the filter repeated on every page
    items, _ = paged(c.get_objects, c.objects_url, added_after=prev)
    ensure({key(o) for o in items} == want, diff_msg("as_pages(added_after=%s)" % prev,
                                                      {key(o) for o in items}, want))


def wait_for(c, want, prev, timeout=5.0):
    """Poll c with added_after=prev until it holds want; returns what it last saw."""
    deadline = time.monotonic() + timeout
    while True:
        env = c.get_objects(added_after=prev) if prev else c.get_objects(limit=1000)
        got = {key(o) for o in env.get("objects", [])}
        if want <= got or time.monotonic() >= deadline:
            return got
        time.sleep(0.2)


@check("new indicators appear in High-confidence IPv4 and Shareable, not in Malware")
def _query_collections_follow():
    ensure(Ctx.added, "needs the add_objects check")
    want = {key(o) for o in Ctx.added}
    for title in (HIGH_IPV4, SHAREABLE):
        prev = Ctx.last_added.get(title)
        got = wait_for(coll(title), want, prev)
        ensure(want <= got, "%s: added_after=%s after the add shows %s, missing the new %s", title, prev,
               fmt_keys(got), fmt_keys(want - got))
        ensure(got == want, diff_msg("%s added_after=%s" % (title, prev), got, want))
    got = {key(o) for o in one_shot(coll(MALWARE))}
    ensure(not (got & want), "Malware and relationships serves the new indicators %s", fmt_keys(got & want))
    got = {key(o) for o in one_shot(coll(HIGH_IPV4))}
    full = expected(is_high_ipv4) | want
    ensure(got == full, diff_msg("High-confidence IPv4 after the add", got, full))


@check("adding the same envelope again is not an error and creates no version")
def _add_duplicate():
    ensure(Ctx.added, "needs the add_objects check")
    c = coll(INBOX)
    status = c.add_objects({"objects": Ctx.added}, wait_for_completion=True, poll_interval=0.2, timeout=10)
    ensure(status.status == "complete" and status.failure_count == 0,
           "re-adding: status %r, failures %r", status.status, status.failures)
    allv = {key(o) for o in one_shot(c, version="all")}
    want = set(ALL_VERSIONS) | {key(o) for o in Ctx.added}
    ensure(allv == want, diff_msg("inbox match[version]=all after re-adding", allv, want))


@check("stix2-validator accepts every object served")
def _validate_served():
    seen = {}
    for objs in Ctx.served.values():
        seen.update(objs)
    for title in (INBOX, HIGH_IPV4, SHAREABLE, MALWARE):
        seen.update({key(o): o for o in one_shot(coll(title), version="all")})
    ensure(seen, "nothing served (earlier checks failed)")
    opts = ValidationOptions(version="2.1")
    bad = []
    for k, o in seen.items():
        res = validate_instance(o, opts)
        if not res.is_valid:
            bad.append("%s: %s" % (o["id"], "; ".join(str(e) for e in res.errors)[:300]))
    ensure(not bad, "%d invalid objects: %s", len(bad), " | ".join(bad[:5]))
    # and a whole page as a bundle string, as a consumer that re-wraps an envelope would
    objs = list(Ctx.served.get(HIGH_IPV4, {}).values()) or list(seen.values())[:20]
    res = validate_string(json.dumps({"type": "bundle", "id": "bundle--%s" % uuid.uuid4(), "objects": objs}),
                          opts)
    ensure(res.is_valid, "validate_string on a bundle of served objects: %s",
           "; ".join(str(e) for e in res.errors)[:600])


@check("HTTP conformance basics (media types, trailing slash, bad filters)")
def _http_basics():
    c = coll(INBOX)
    ct = lambda r: (r.headers.get("Content-Type") or "").replace(" ", "")
    r = H.get(H.base + "/taxii2/", accept="application/taxii+json")
    ensure(r.status_code == 200, "GET /taxii2/ Accept: application/taxii+json -> HTTP %d", r.status_code)
    r = H.get(H.base + "/taxii2/", accept="application/xml")
    ensure(r.status_code == 406, "GET /taxii2/ Accept: application/xml -> HTTP %d, expected 406", r.status_code)
    ensure(ct(r).startswith("application/taxii+json"), "406 Content-Type %r", ct(r))
    r = H.get(c.objects_url.rstrip("/"), params={"limit": 2})
    ensure(r.status_code == 200 and len(r.json().get("objects", [])) == 2,
           "GET %s?limit=2 (no trailing slash) -> HTTP %d %s", c.objects_url.rstrip("/"), r.status_code,
           r.text[:200])
    ensure(ct(r) == TAXII21, "objects Content-Type %r, expected %s", ct(r), TAXII21)
    for params in ({"added_after": "yesterday"}, {"match[version]": "sometime"}, {"limit": "0"},
                   {"limit": "-3"}, {"next": "not-a-cursor"}):
        r = H.get(c.objects_url, params=params)
        ensure(r.status_code == 400, "GET %s %r -> HTTP %d, expected 400: %s", c.objects_url, params,
               r.status_code, r.text[:200])
        ensure(ct(r).startswith("application/taxii+json") and "title" in r.json(),
               "400 for %r is not a TAXII error object (Content-Type %r): %s", params, ct(r), r.text[:200])
    r = H.get(H.base + "/feeds/collections/%s/objects/" % uuid.uuid4())
    ensure(r.status_code == 404, "unknown collection -> HTTP %d, expected 404", r.status_code)


@check("authentication: anonymous request refused with 401 + WWW-Authenticate")
def _auth():
    if H.user is None:
        return "skipped (no TAXII_USER)"
    r = H.get(coll(INBOX).objects_url, auth=False)
    ensure(r.status_code == 401, "anonymous GET %s -> HTTP %d, expected 401", coll(INBOX).objects_url,
           r.status_code)
    ensure(r.headers.get("WWW-Authenticate"), "401 without WWW-Authenticate")
    ensure("title" in r.json(), "401 body is not a TAXII error object: %s", r.text[:200])


# --- runner -------------------------------------------------------------------------------

H = None


def main():
    global H
    H = Harness()
    atexit.register(H.cleanup)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(130))
    started = time.monotonic()
    passed, failed, skipped = 0, 0, 0
    fatal = None

    print("taxiway interop: %s" % H.bin)
    try:
        if not os.access(H.bin, os.X_OK):
            raise CheckFailed("no executable at %s (build it, or set TAXIWAY_BIN)" % H.bin)
        H.prepare()
        rc, out = H.run_cli("import", "--config-dir", H.config_dir, "--data-dir", H.data_dir,
                            "--collection", "inbox", BUNDLE_PATH)
        H.log_path.write_text("$ taxiway-server import ... (exit %d)\n%s\n" % (rc, out))
        if rc != 0:
            raise CheckFailed("taxiway-server import --collection inbox %s: exit %d:\n%s" % (BUNDLE_PATH, rc, out))
        H.start()
    except Exception as e:  # setup failed: nothing else can run
        fatal = e

    if fatal is None:
        for name, fn in CHECKS:
            t0 = time.monotonic()
            try:
                note = fn()
                if isinstance(note, str) and note.startswith("skipped"):
                    skipped += 1
                    print("SKIP %s: %s" % (name, note))
                else:
                    passed += 1
                    print("PASS %s (%.2fs)" % (name, time.monotonic() - t0))
            except CheckFailed as e:
                failed += 1
                print("FAIL %s: %s" % (name, e))
            except requests.HTTPError as e:
                failed += 1
                print("FAIL %s: %s" % (name, describe_http_error(e)))
            except Exception as e:
                failed += 1
                print("FAIL %s: %s: %s" % (name, type(e).__name__, e))
                traceback.print_exc(file=sys.stdout)
            sys.stdout.flush()
            if H.proc is not None and H.proc.poll() is not None:
                failed += 1
                print("FAIL server exited with code %s during %r" % (H.proc.returncode, name))
                break
    else:
        failed += 1
        print("FAIL setup: %s" % fatal)

    H.stop()
    if failed:
        print("\n----- server log (%s) -----" % H.log_path)
        print(H.server_log()[-20000:])
        print("----- end of server log -----\n")
    print("took %.1fs" % (time.monotonic() - started))
    line = "%d passed, %d failed" % (passed, failed)
    if skipped:
        line += ", %d skipped" % skipped
    print(line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
