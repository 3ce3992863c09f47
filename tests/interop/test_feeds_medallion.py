#!/usr/bin/env python3
"""Feeds interop: Taxiway pulls a collection of medallion (the OASIS TAXII 2.1 reference
server, a real third-party implementation) into its `inbox`.

1. medallion (memory backend) serves an API root with one collection, holding 3 objects
   posted by its admin; basic authentication, user `feeder`.
2. taxiway-server runs with a `[[feeds]]` naming that collection by title, the password
   read from a file. It pulls the 3 objects into `inbox` (read back over TAXII).
3. 2 more objects are posted to medallion: the next pull fetches only those
   (`taxiway_feed_objects_total{result="fetched"}` goes from 3 to 5, never higher).
4. The password file is made wrong and the configuration reloaded: the pull fails with
   `taxiway_feed_errors_total{kind="auth"}`, nothing is stored; fixed and reloaded, the
   object posted meanwhile arrives, nothing twice.
5. medallion stops answering in the middle of a pull (a forwarder in front of it drops
   every request after the first page): the pull fails (`GET /feeds` says so) with the
   first page stored; once medallion answers again the next pull resumes from the last
   checkpoint that splits no instant (the 4 objects were added at one instant, so the
   first page's 2 are fetched again): nothing skipped, nothing stored twice.

Taxiway reaches medallion through that forwarder from the start (its API root URL), so
the checkpoint's source never changes.

Environment: TAXIWAY_BIN (default target/debug/taxiway-server). Exits 1 with both
servers' logs on failure; both are stopped at the end.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

TAXII21 = "application/taxii+json;version=2.1"
COLLECTION = "9d5a8c4e-2b7f-4a61-8e3d-1f0c2b4a6d8e"
INBOX = "2f1c9a4e-8b6d-4e3f-9a7b-1c2d3e4f5a6b"
FEEDER_PW = "feeder-pw"
ADMIN_PW = "admin-pw"


class CheckFailed(Exception):
    pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def indicator(n):
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": "indicator--%08x-1111-4111-8111-111111111111" % n,
        "created": "2024-02-01T00:00:00.000Z",
        "modified": "2024-02-01T00:00:00.000Z",
        "name": "medallion indicator %d" % n,
        "pattern": "[ipv4-addr:value = '192.0.2.%d']" % n,
        "pattern_type": "stix",
        "valid_from": "2024-02-01T00:00:00Z",
    }


def wait_for(what, check, timeout=45):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = check()
            if last:
                return last
        except requests.RequestException as e:
            last = e
        time.sleep(0.25)
    raise CheckFailed("timed out waiting for %s (last: %r)" % (what, last))


class Medallion:
    def __init__(self, tmp):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        data = {
            "/discovery": {
                "title": "medallion under test",
                "default": self.url + "/api1/",
                "api_roots": [self.url + "/api1/"],
            },
            "api1": {
                "information": {
                    "title": "API root 1",
                    "versions": [TAXII21],
                    "max_content_length": 9765625,
                },
                "status": [],
                "collections": [
                    {
                        "id": COLLECTION,
                        "title": "Medallion indicators",
                        "can_read": True,
                        "can_write": True,
                        "media_types": ["application/stix+json;version=2.1"],
                        "objects": [],
                        "manifest": [],
                    }
                ],
            },
        }
        (data_path, config_path) = (os.path.join(tmp, "medallion-data.json"), os.path.join(tmp, "medallion.json"))
        with open(data_path, "w") as f:
            json.dump(data, f)
        with open(config_path, "w") as f:
            json.dump({
                "backend": {"module": "medallion.backends.memory_backend", "module_class": "MemoryBackend",
                            "filename": data_path},
                "users": {"feeder": FEEDER_PW, "admin": ADMIN_PW},
                "taxii": {"max_page_size": 2},
            }, f)
        self.log_path = os.path.join(tmp, "medallion.log")
        self.log = open(self.log_path, "w")
        medallion = os.path.join(os.path.dirname(sys.executable), "medallion")
        self.proc = subprocess.Popen([medallion, "--host", "127.0.0.1", "--port", str(self.port), config_path],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_for("medallion to answer", lambda: requests.get(
            self.url + "/taxii2/", headers={"Accept": TAXII21}, auth=("admin", ADMIN_PW), timeout=2).ok)

    def post(self, objects):
        r = requests.post(
            "%s/api1/collections/%s/objects/" % (self.url, COLLECTION),
            data=json.dumps({"objects": objects}),
            headers={"Content-Type": TAXII21, "Accept": TAXII21},
            auth=("admin", ADMIN_PW), timeout=10)
        if r.status_code != 202 or r.json().get("success_count") != len(objects):
            raise CheckFailed("medallion refused the seed objects: %s %s" % (r.status_code, r.text))

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


class Forwarder:
    """medallion as Taxiway sees it: every GET forwarded as is, until `cut()`: then
    every objects request after the next one is dropped without an answer (medallion
    "stopped" mid-pull), until `heal()`."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.lock = threading.Lock()
        self.pages_left = None  # None: forward everything
        forwarder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if "/objects/" in self.path and not forwarder.take_page():
                    self.close_connection = True
                    return  # no answer at all: the connection just closes
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in ("accept", "authorization")}
                r = requests.get(forwarder.upstream + self.path, headers=headers, timeout=10)
                self.send_response(r.status_code)
                for k, v in r.headers.items():
                    if k.lower() in ("content-type",) or k.lower().startswith("x-taxii"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(r.content)))
                self.end_headers()
                self.wfile.write(r.content)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def take_page(self):
        with self.lock:
            if self.pages_left is None:
                return True
            if self.pages_left > 0:
                self.pages_left -= 1
                return True
            return False

    def cut(self, after_pages):
        with self.lock:
            self.pages_left = after_pages

    def heal(self):
        with self.lock:
            self.pages_left = None

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Taxiway:
    def __init__(self, tmp, medallion_url):
        self.bin = os.environ.get("TAXIWAY_BIN", "target/debug/taxiway-server")
        self.tmp = tmp
        self.config_dir = os.path.join(tmp, "config")
        os.makedirs(self.config_dir)
        self.password_file = os.path.join(tmp, "feeder-password")
        self.medallion_url = medallion_url
        self.port, self.admin_port = free_port(), free_port()
        self.set_password(FEEDER_PW)
        self.write_config(timeout=60)
        self.log_path = os.path.join(tmp, "taxiway.log")
        self.log = open(self.log_path, "w")
        cmd = [self.bin, "serve", "--config-dir", self.config_dir, "--data-dir", os.path.join(tmp, "data"),
               "--listen", "127.0.0.1:%d" % self.port, "--admin-listen", "127.0.0.1:%d" % self.admin_port]
        # The server's settings come from the command line alone: the HTTPS run of the
        # interop suite exports TAXIWAY_TLS_DIR / TAXIWAY_CREDENTIALS_DIR for its own
        # server, which this plain-HTTP Taxiway must not pick up.
        env = {k: v for k, v in os.environ.items() if not k.startswith("TAXIWAY_")}
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=dict(env, RUST_LOG="info"))
        wait_for("taxiway /readyz", lambda: requests.get(
            "http://127.0.0.1:%d/readyz" % self.admin_port, timeout=2).ok)

    def set_password(self, password):
        with open(self.password_file, "w") as f:
            f.write(password + "\n")

    def write_config(self, timeout):
        """The configuration; a changed `timeout` restarts the feed (it pulls at once)."""
        text = """
[service]
title = "Taxiway pulling medallion"

[[api_roots]]
path = "feeds"
title = "Feeds"

[[collections]]
id = "%s"
api_root = "feeds"
title = "inbox"
writable = true
access = { write = ["feed:medallion"] }

[[feeds]]
name = "medallion"
into = "inbox"
url = "%s/api1/"
collection = "Medallion indicators"
interval_secs = 10
timeout_secs = %d
page_size = 2
username = "feeder"
password_file = "%s"
""" % (INBOX, self.medallion_url, timeout, self.password_file)
        tmp = os.path.join(self.config_dir, ".taxiway.toml.tmp")
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, os.path.join(self.config_dir, "taxiway.toml"))

    def inbox(self):
        r = requests.get("http://127.0.0.1:%d/feeds/collections/%s/objects/?match[version]=all" % (self.port, INBOX),
                         headers={"Accept": TAXII21}, timeout=10)
        r.raise_for_status()
        return r.json().get("objects", [])

    def feed_run(self):
        r = requests.get("http://127.0.0.1:%d/feeds" % self.admin_port, timeout=5)
        r.raise_for_status()
        return r.json()["feeds"][0].get("run") or {}

    def metric(self, name, labels):
        text = requests.get("http://127.0.0.1:%d/metrics" % self.admin_port, timeout=5).text
        m = re.search(r"^%s\{%s\} (\S+)$" % (re.escape(name), re.escape(labels)), text, re.M)
        return float(m.group(1)) if m else 0.0

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def check(taxiway, medallion, forwarder):
    fetched = 'feed="medallion",result="fetched"'
    medallion.post([indicator(n) for n in (1, 2, 3)])
    wait_for("the first pull to store 3 objects", lambda: len(taxiway.inbox()) == 3)
    print("ok: pulled medallion's collection into inbox (3 objects, paged by 2)")

    medallion.post([indicator(n) for n in (4, 5)])
    wait_for("the next pull to store 2 more", lambda: len(taxiway.inbox()) == 5)
    wait_for("5 objects fetched", lambda: taxiway.metric("taxiway_feed_objects_total", fetched) == 5)
    time.sleep(11)  # one more interval: still nothing fetched again
    if taxiway.metric("taxiway_feed_objects_total", fetched) != 5:
        raise CheckFailed("objects were fetched again: %s" % taxiway.metric("taxiway_feed_objects_total", fetched))
    ids = [o["id"] for o in taxiway.inbox()]
    if len(ids) != len(set(ids)) or len(ids) != 5:
        raise CheckFailed("duplicates in inbox: %s" % ids)
    print("ok: the next pulls fetched only what was added after (5 fetched in all)")

    taxiway.set_password("wrong")
    taxiway.write_config(timeout=61)
    wait_for("the auth error", lambda: taxiway.metric(
        "taxiway_feed_errors_total", 'feed="medallion",kind="auth"') >= 1)
    medallion.post([indicator(6)])
    time.sleep(1)
    if len(taxiway.inbox()) != 5:
        raise CheckFailed("stored with wrong credentials")
    print("ok: wrong credentials counted as an auth error, nothing stored")

    taxiway.set_password(FEEDER_PW)
    taxiway.write_config(timeout=62)
    wait_for("recovery", lambda: len(taxiway.inbox()) == 6)
    ids = [o["id"] for o in taxiway.inbox()]
    if len(set(ids)) != 6:
        raise CheckFailed("duplicates after recovery: %s" % ids)
    with open(taxiway.log_path) as f:
        log = f.read()
    if FEEDER_PW in log or "wrong\n" in log:
        raise CheckFailed("a credential is in the server log")
    if "feed pulled" not in log or "feed pull failed" not in log:
        raise CheckFailed("no per-run log lines")
    print("ok: recovered once fixed; nothing lost or twice; no credential logged")

    forwarder.cut(after_pages=1)
    medallion.post([indicator(n) for n in (7, 8, 9, 10)])
    wait_for("the pull to fail midway", lambda: taxiway.feed_run().get("state") == "failed",
             timeout=90)
    run = taxiway.feed_run()
    if len(taxiway.inbox()) != 8 or taxiway.metric("taxiway_feed_objects_total", fetched) != 8:
        raise CheckFailed("the first page was not kept: inbox %d, run %s" % (len(taxiway.inbox()), run))
    print("ok: medallion gone mid-pull: the pull failed (%s), its first page kept" % run.get("errorKind"))
    forwarder.heal()
    wait_for("the rest after medallion is back", lambda: len(taxiway.inbox()) == 10, timeout=90)
    wait_for("the run to be ok again", lambda: taxiway.feed_run().get("state") == "ok")
    time.sleep(11)  # one more interval
    ids = [o["id"] for o in taxiway.inbox()]
    total = taxiway.metric("taxiway_feed_objects_total", fetched)
    if len(set(ids)) != 10 or len(ids) != 10 or total > 12:
        raise CheckFailed("after the cut: %d objects (%d distinct), %s fetched" % (len(ids), len(set(ids)), total))
    print("ok: resumed after the cut: all 10 stored once (%d fetched: the page in doubt again)" % total)


def main():
    tmp = tempfile.mkdtemp(prefix="taxiway-feeds-medallion-")
    medallion = taxiway = forwarder = None
    try:
        medallion = Medallion(tmp)
        forwarder = Forwarder(medallion.url)
        taxiway = Taxiway(tmp, forwarder.url)
        check(taxiway, medallion, forwarder)
        print("feeds interop against medallion: 6 passed, 0 failed")
        return 0
    except (CheckFailed, requests.RequestException, OSError) as e:
        print("FAILED: %s" % e, file=sys.stderr)
        for server in (medallion, taxiway):
            if server is not None:
                server.log.flush()
                with open(server.log_path) as f:
                    print("--- %s ---\n%s" % (server.log_path, f.read()[-6000:]), file=sys.stderr)
        return 1
    finally:
        for server in (taxiway, forwarder, medallion):
            if server is not None:
                server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
