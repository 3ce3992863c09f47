#!/usr/bin/env python3
"""Crash safety: SIGKILL the server in the middle of concurrent ingest, repeatedly,
and prove after each restart that every object acknowledged with 202 is present
exactly once, the store opens cleanly (SQLite integrity_check), and the status
resources of completed requests survive.

    TAXIWAY_BIN=target/debug/taxiway-server python3 tests/reliability/crash_test.py

Standard library only. Exit code 0 on success.
"""
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("TAXIWAY_BIN", os.path.join(REPO, "target", "debug", "taxiway-server"))
ROUNDS = int(os.environ.get("CRASH_ROUNDS", "4"))
WRITERS = 4
BATCH = 40
INBOX = "e78eb331-c15a-463f-ba62-73b2a71a324a"
TAXII = "application/taxii+json;version=2.1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, config_dir, data_dir, log):
        self.port, self.admin = free_port(), free_port()
        self.proc = subprocess.Popen(
            [BIN, "serve", "--config-dir", config_dir, "--data-dir", data_dir,
             "--listen", f"127.0.0.1:{self.port}", "--admin-listen", f"127.0.0.1:{self.admin}"],
            stdout=log, stderr=log)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/readyz", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("server did not become ready")

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def indicator(n):
    return {
        "type": "indicator", "spec_version": "2.1",
        "id": f"indicator--{uuid.UUID(int=n, version=4)}",
        "created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z",
        "pattern": f"[ipv4-addr:value = '10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}']",
        "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z", "confidence": 90,
    }


def post(server, objects):
    body = json.dumps({"objects": objects}).encode()
    req = urllib.request.Request(server.url(f"/feeds/collections/{INBOX}/objects/"), data=body, method="POST",
                                 headers={"Content-Type": TAXII, "Accept": TAXII})
    with urllib.request.urlopen(req, timeout=10) as r:
        if r.status != 202:
            raise RuntimeError(f"status {r.status}")
        return json.loads(r.read())


def get(server, path):
    req = urllib.request.Request(server.url(path), headers={"Accept": TAXII})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def all_versions(server):
    ids, next_ = [], None
    while True:
        q = "?match[version]=all&limit=1000" + (f"&next={next_}" if next_ else "")
        page = get(server, f"/feeds/collections/{INBOX}/objects/{q}")
        ids += [o["id"] for o in page.get("objects", [])]
        if not page.get("more"):
            return ids
        next_ = page["next"]


def main():
    work = tempfile.mkdtemp(prefix="taxiway-crash-")
    config_dir = os.path.join(work, "config")
    data_dir = os.path.join(work, "data")
    shutil.copytree(os.path.join(REPO, "examples", "standalone", "config"), config_dir)
    log = open(os.path.join(work, "server.log"), "ab")
    acknowledged = {}  # id -> status id
    counter = [0]
    lock = threading.Lock()
    rng = random.Random(7)
    ok = False
    try:
        for round_ in range(ROUNDS):
            server = Server(config_dir, data_dir, log)
            # Everything acknowledged so far survived the previous kill, exactly once.
            ids = all_versions(server)
            dupes = len(ids) - len(set(ids))
            missing = set(acknowledged) - set(ids)
            assert dupes == 0, f"round {round_}: {dupes} duplicated objects"
            assert not missing, f"round {round_}: {len(missing)} acknowledged objects lost, e.g. {sorted(missing)[:3]}"
            for status_id in rng.sample(sorted(set(acknowledged.values())), min(20, len(set(acknowledged.values())))):
                st = get(server, f"/feeds/status/{status_id}/")
                assert st["status"] == "complete" and st["failure_count"] == 0, st
            print(f"round {round_}: {len(acknowledged)} acknowledged objects present exactly once; statuses readable", flush=True)

            stop = threading.Event()

            def writer():
                while not stop.is_set():
                    with lock:
                        start = counter[0]
                        counter[0] += BATCH
                    objs = [indicator(n) for n in range(start, start + BATCH)]
                    try:
                        status = post(server, objs)
                    except (OSError, urllib.error.URLError, RuntimeError, ValueError):
                        return  # the server died under us: not acknowledged
                    if status.get("success_count") == BATCH:
                        with lock:
                            for o in objs:
                                acknowledged[o["id"]] = status["id"]

            threads = [threading.Thread(target=writer) for _ in range(WRITERS)]
            for t in threads:
                t.start()
            time.sleep(0.8 + rng.random())
            server.kill()
            stop.set()
            for t in threads:
                t.join()
            db = sqlite3.connect(os.path.join(data_dir, "taxiway.db"))
            check = db.execute("PRAGMA integrity_check").fetchone()[0]
            db.close()
            assert check == "ok", f"integrity_check after SIGKILL: {check}"
        server = Server(config_dir, data_dir, log)
        ids = all_versions(server)
        assert len(ids) == len(set(ids)), "duplicates after the last kill"
        assert set(acknowledged) <= set(ids), "acknowledged objects lost after the last kill"
        server.kill()
        print(f"crash test passed: {ROUNDS} SIGKILLs during concurrent ingest, {len(acknowledged)} acknowledged objects, none lost or duplicated")
        ok = True
    finally:
        log.close()
        if not ok:
            with open(os.path.join(work, "server.log"), "rb") as f:
                sys.stderr.write(f.read().decode(errors="replace")[-5000:])
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
