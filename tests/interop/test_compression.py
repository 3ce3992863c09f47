#!/usr/bin/env python3
"""Compression interop test: real clients read the same objects compressed and not.

    tests/interop/run.sh                          # runs test_taxii21.py, then this
    "$venv/bin/python" tests/interop/test_compression.py

Builds nothing. Like test_taxii21.py (whose Harness it uses) it copies
examples/standalone/config, here with `service.versions = ["2.1", "2.0"]`, imports
examples/standalone/sample-bundle.json into `inbox` and starts the real binary. Then:

- taxii2client.v21 and .v20 (requests, which sends `Accept-Encoding: gzip, deflate`)
  read whole collections and pages; every page above the server's threshold must
  come back gzip-coded, and hold exactly what the same client reads when it asks for
  `identity`;
- `curl --compressed` (which offers zstd and gzip when built with them) and plain
  `curl` fetch the same URLs: the decoded body must be byte-identical to the body
  sent uncoded, with `Vary: Accept-Encoding` and the coded `Content-Length`;
- `Accept-Encoding: identity`, `br` (unknown), `*;q=0` (406) and HEAD over the wire;
- /metrics counts the coded responses.

Environment: as test_taxii21.py (TAXIWAY_BIN, TAXII_USER/TAXII_PASSWORD, TAXII_CA,
TAXIWAY_CREDENTIALS_DIR, TAXIWAY_TLS_DIR, TAXIWAY_KEEP_TMP). Prints PASS/FAIL per
check and, last, "N passed, N failed"; exits 1 on any failure, with the server log.
"""

import atexit
import json
import re
import shutil
import signal
import subprocess
import sys
import time
import traceback

try:
    import requests
    from taxii2client import v20, v21
except ImportError as e:  # pragma: no cover
    sys.exit("missing Python dependency (%s): run tests/interop/run.sh, or install "
             "tests/interop/requirements.txt" % e)

import test_taxii21 as base
from test_taxii21 import CheckFailed, ensure

TAXII21 = base.TAXII21
TAXII20 = "application/vnd.oasis.taxii+json; version=2.0"
STIX20 = "application/vnd.oasis.stix+json; version=2.0"
INBOX_ID = "e78eb331-c15a-463f-ba62-73b2a71a324a"
MIN_BYTES = 1024  # server/src/taxii/encoding.rs: smaller bodies are sent uncoded

H = None
CHECKS = []


def check(name):
    def register(fn):
        CHECKS.append((name, fn))
        return fn
    return register


class Recorder:
    """A requests response hook: the Content-Encoding and wire size of every answer."""

    def __init__(self):
        self.seen = []

    def __call__(self, response, *args, **kwargs):
        self.seen.append((response.url, response.status_code,
                          response.headers.get("Content-Encoding"),
                          response.headers.get("Vary", ""),
                          int(response.headers.get("Content-Length", "-1")),
                          len(response.content)))
        return response


def client(cls, url, accept_encoding):
    """A taxii2client endpoint whose session asks for `accept_encoding` (None: requests'
    default, gzip) and records every answer."""
    endpoint = cls(url, **H.client_kwargs)
    recorder = Recorder()
    session = endpoint._conn.session
    if accept_encoding is not None:
        session.headers["Accept-Encoding"] = accept_encoding
    session.hooks["response"].append(recorder)
    return endpoint, recorder


def inbox_url():
    return "%s/feeds/collections/%s/" % (H.base, INBOX_ID)


def assert_coded(recorder, coding, what):
    """Every answer above the threshold came in `coding`, smaller, with Vary."""
    large = [s for s in recorder.seen if s[5] >= MIN_BYTES or s[2] is not None]
    ensure(large, "%s: no answer of %d bytes or more to check", what, MIN_BYTES)
    for url, status, encoding, vary, length, decoded in recorder.seen:
        ensure("accept-encoding" in vary.lower(), "%s: %s answered without Vary: Accept-Encoding", what, url)
        if decoded >= MIN_BYTES or coding is None:
            ensure(encoding == coding, "%s: %s (%d bytes) came with Content-Encoding %r, expected %r",
                   what, url, decoded, encoding, coding)
        if encoding is not None:
            ensure(0 < length < decoded, "%s: %s: Content-Length %d for %d decoded bytes", what, url,
                   length, decoded)


@check("taxii2client v2.1 (requests, gzip) reads the inbox as it does uncompressed")
def _client21():
    coded, coded_seen = client(v21.Collection, inbox_url(), None)
    plain, plain_seen = client(v21.Collection, inbox_url(), "identity")
    ensure("gzip" in coded._conn.session.headers.get("Accept-Encoding", ""),
           "requests no longer asks for gzip by default: %r", coded._conn.session.headers)
    a = coded.get_objects(limit=1000)
    b = plain.get_objects(limit=1000)
    ensure(len(a.get("objects", [])) >= 50, "the inbox page holds %d objects", len(a.get("objects", [])))
    ensure(a == b, "the gzip page differs from the identity page")
    ensure(coded.get_manifest(limit=1000) == plain.get_manifest(limit=1000), "manifests differ")
    pages_a = [p for p in v21.as_pages(coded.get_objects, per_request=25)]
    pages_b = [p for p in v21.as_pages(plain.get_objects, per_request=25)]
    ensure(pages_a == pages_b, "paged reads differ (%d vs %d pages)", len(pages_a), len(pages_b))
    assert_coded(coded_seen, "gzip", "taxii2client v2.1")
    assert_coded(plain_seen, None, "taxii2client v2.1, identity")


@check("taxii2client v2.0 (requests, gzip) reads the inbox as it does uncompressed")
def _client20():
    coded, coded_seen = client(v20.Collection, inbox_url(), None)
    plain, plain_seen = client(v20.Collection, inbox_url(), "identity")
    # Every 2.0 bundle gets a fresh id: compare the rest.
    pages_a = [without_id(p) for p in v20.as_pages(coded.get_objects, per_request=20)]
    pages_b = [without_id(p) for p in v20.as_pages(plain.get_objects, per_request=20)]
    ensure(len(pages_a) >= 2, "the 2.0 inbox came in %d pages", len(pages_a))
    ensure(pages_a == pages_b, "2.0 pages differ between gzip and identity")
    ranged = [s for s in coded_seen.seen if s[1] == 206]
    ensure(ranged, "no 206 page among %r", coded_seen.seen)
    assert_coded(coded_seen, "gzip", "taxii2client v2.0")
    assert_coded(plain_seen, None, "taxii2client v2.0, identity")


def without_id(bundle):
    """A 2.0 bundle (a dict) without its id, which is new on every answer."""
    ensure(str(bundle.get("id", "")).startswith("bundle--"), "not a bundle: %r", str(bundle)[:200])
    return {k: v for k, v in bundle.items() if k != "id"}


def blank_bundle_id(body):
    """A 2.0 bundle's bytes with its id blanked (same length); other bodies as they are."""
    return re.sub(rb'^\{"type":"bundle","id":"bundle--[0-9a-f-]{36}"', b'{"type":"bundle","id":"bundle--"',
                  body)


def curl(url, *args, accept=TAXII21):
    """curl `url` with `args`: (status, headers as a dict of lists, body as bytes)."""
    cmd = ["curl", "-sS", "--max-time", "20", "-H", "Accept: " + accept]
    if "-I" not in args:  # -I prints the headers by itself
        cmd += ["-D", "-"]
    if H.user is not None:
        cmd += ["-u", "%s:%s" % (H.user, H.password or "")]
    if H.ca:
        cmd += ["--cacert", H.ca]
    out = subprocess.run(cmd + list(args) + [url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         timeout=30)
    ensure(out.returncode == 0, "curl %s %s: exit %d: %s", " ".join(args), url, out.returncode,
           out.stderr.decode(errors="replace"))
    head, _, body = out.stdout.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return status, headers, body


def one(headers, name):
    values = headers.get(name, [])
    return values[0] if values else None


def curl_supports(feature):
    out = subprocess.run(["curl", "--version"], stdout=subprocess.PIPE, text=True).stdout
    return feature in out.lower().split()


@check("curl --compressed reads pages byte-identical to plain curl (2.1 and 2.0)")
def _curl():
    cases = [
        (inbox_url() + "objects/?limit=1000", TAXII21),
        (inbox_url() + "manifest/?limit=1000", TAXII21),
        (inbox_url() + "objects/", STIX20),
    ]
    codings = [("--compressed",), ("--compressed", "-H", "Accept-Encoding: gzip")]
    for url, accept in cases:
        status, plain_headers, plain = curl(url, accept=accept)
        ensure(status in (200, 206), "curl %s: HTTP %d", url, status)
        ensure(len(plain) >= MIN_BYTES, "curl %s: only %d bytes", url, len(plain))
        ensure(one(plain_headers, "content-encoding") is None, "plain curl got a coded body")
        ensure("accept-encoding" in (one(plain_headers, "vary") or "").lower(), "no Vary on %s", url)
        for args in codings:
            status, headers, body = curl(url, *args, accept=accept)
            coding = one(headers, "content-encoding")
            want = "gzip" if "Accept-Encoding: gzip" in args else (
                "zstd" if curl_supports("zstd") else "gzip")
            ensure(coding == want, "curl %s %s: Content-Encoding %r, expected %r", " ".join(args), url,
                   coding, want)
            ensure(len(body) == len(plain) and blank_bundle_id(body) == blank_bundle_id(plain),
                   "curl %s %s: decoded body differs from the plain one (%d vs %d bytes)",
                   " ".join(args), url, len(body), len(plain))
            ensure(one(headers, "content-range") == one(plain_headers, "content-range"),
                   "Content-Range changed with the coding")
            # The coded length on the wire: ask again without letting curl decode.
            _, raw_headers, raw = curl(url, "-H", "Accept-Encoding: " + want, accept=accept)
            ensure(int(one(raw_headers, "content-length")) == len(raw) < len(plain),
                   "%s %s: Content-Length %s, %d bytes on the wire, %d decoded", want, url,
                   one(raw_headers, "content-length"), len(raw), len(plain))


@check("identity, unknown codings, *;q=0 and HEAD over the wire")
def _negotiation():
    url = inbox_url() + "objects/?limit=1000"
    _, _, plain = curl(url)
    for value in ("identity", "br", "gzip;q=0", ""):
        # curl sends an empty header when it is written `Name;`.
        header = "Accept-Encoding: " + value if value else "Accept-Encoding;"
        status, headers, body = curl(url, "-H", header)
        ensure(status == 200 and one(headers, "content-encoding") is None and body == plain,
               "Accept-Encoding %r: HTTP %d, Content-Encoding %r", value, status,
               one(headers, "content-encoding"))
    status, headers, body = curl(url, "-H", "Accept-Encoding: *;q=0")
    ensure(status == 406, "Accept-Encoding *;q=0: HTTP %d, expected 406", status)
    ensure(json.loads(body).get("http_status") == "406", "406 body is not a TAXII error: %r", body[:200])
    status, headers, body = curl(url, "-I", "--compressed")
    ensure(status == 405 and body == b"", "HEAD: HTTP %d with %d bytes of body", status, len(body))
    ensure("accept-encoding" in (one(headers, "vary") or "").lower(), "HEAD without Vary: %r", headers)


@check("/metrics counts coded responses and the bytes saved")
def _metrics():
    text = requests.get(H.admin + "/metrics", timeout=5).text
    for series in ('taxiway_response_encodings_total{encoding="gzip"}',
                   'taxiway_compression_saved_bytes_total{encoding="gzip"}'):
        values = [float(l.split()[-1]) for l in text.splitlines() if l.startswith(series)]
        ensure(values and values[0] > 0, "%s missing or zero in /metrics", series)


def main():
    global H
    H = base.Harness()
    base.H = H
    atexit.register(H.cleanup)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(130))
    started = time.monotonic()
    passed, failed = 0, 0
    print("taxiway compression interop: %s" % H.bin)
    try:
        H.prepare()
        toml = (H.config_dir / "taxiway.toml").read_text()
        (H.config_dir / "taxiway.toml").write_text(
            toml.replace("[service]\n", '[service]\nversions = ["2.1", "2.0"]\n', 1))
        rc, out = H.run_cli("import", "--config-dir", H.config_dir, "--data-dir", H.data_dir,
                            "--collection", "inbox", base.BUNDLE_PATH)
        if rc != 0:
            raise CheckFailed("import: exit %d:\n%s" % (rc, out))
        if shutil.which("curl") is None:
            raise CheckFailed("no curl on PATH")
        H.start()
        fatal = None
    except Exception as e:
        fatal = e
    if fatal is None:
        for name, fn in CHECKS:
            t0 = time.monotonic()
            try:
                fn()
                passed += 1
                print("PASS %s (%.2fs)" % (name, time.monotonic() - t0))
            except CheckFailed as e:
                failed += 1
                print("FAIL %s: %s" % (name, e))
            except Exception as e:
                failed += 1
                print("FAIL %s: %s: %s" % (name, type(e).__name__, e))
                traceback.print_exc(file=sys.stdout)
            sys.stdout.flush()
    else:
        failed += 1
        print("FAIL setup: %s" % fatal)
    H.stop()
    if failed:
        print("\n----- server log (%s) -----" % H.log_path)
        print(H.server_log()[-20000:])
        print("----- end of server log -----\n")
    print("took %.1fs" % (time.monotonic() - started))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
