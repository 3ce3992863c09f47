#!/usr/bin/env python3
"""Graceful shutdown and backup/restore, with the real binary.

1. SIGTERM while a slow POST is in flight (its body still arriving): the server stops
   accepting connections and reports not-ready at once, closes idle keep-alive
   connections, lets the POST finish (202), closes the store cleanly (no write-ahead
   log left, integrity_check ok) and exits 0; after a restart the object is there.
2. With `shutdown_delay_secs`: after SIGTERM the server reports not-ready at once but
   keeps accepting and serving new connections for the delay (the time Kubernetes needs
   to take it out of a Service), then shuts down as in 1.
3. `taxiway-server backup` while the server serves concurrent writes: a consistent
   file; a second backup to the same path is refused; a server started on the backup
   (the documented restore) serves every object acknowledged before the backup began.

    TAXIWAY_BIN=target/debug/taxiway-server python3 tests/reliability/shutdown_test.py
"""
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BIN, INBOX, TAXII, ConfigMount, Server, all_ids, config_text,  # noqa: E402
                     indicator, objects_path, request)


def raw_post_head(port, length):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall((f"POST {objects_path(INBOX)} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: {TAXII}\r\n"
               f"Content-Type: {TAXII}\r\nContent-Length: {length}\r\n\r\n").encode())
    return s


def read_response(s):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("closed before a response")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("closed mid-body")
        body += chunk
    return status, json.loads(body[:length]) if length else None


def is_closed(s, within):
    s.settimeout(within)
    try:
        return s.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def shutdown_with_a_request_in_flight(work):
    config = ConfigMount(os.path.join(work, "config"), config_text(server="request_timeout_secs = 120"))
    data = os.path.join(work, "data")
    server = Server(config.path, data, os.path.join(work, "shutdown.log"))
    try:
        conn = server.connection()
        status, _, _ = request(conn, "POST", objects_path(INBOX), {"objects": [indicator() for _ in range(50)]})
        assert status == 202, status
        conn.close()

        slow_object = indicator()
        body = json.dumps({"objects": [slow_object]}).encode()
        slow = raw_post_head(server.port, len(body))
        slow.sendall(body[:20])
        idle = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        idle.sendall(f"GET /taxii2/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: {TAXII}\r\n\r\n".encode())
        assert read_response(idle)[0] == 200
        time.sleep(0.3)

        started = time.time()
        server.proc.send_signal(15)
        # New connections are refused as soon as the listener is dropped.
        deadline = time.time() + 5
        refused = False
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
                time.sleep(0.05)
            except ConnectionRefusedError:
                refused = True
                break
            except (ConnectionResetError, socket.timeout):
                # Accepted into the kernel backlog just as the listener closed:
                # the kernel resets it. Not refused yet; try again.
                time.sleep(0.05)
        assert refused, "still accepting connections after SIGTERM"
        assert not server.ready(), "ready while draining"
        assert is_closed(idle, 5), "an idle keep-alive connection is closed at once"
        time.sleep(1)
        assert server.proc.poll() is None, "exited with a request in flight"

        slow.sendall(body[20:])
        status, result = read_response(slow)
        assert status == 202 and result["success_count"] == 1, (status, result)
        code = server.proc.wait(timeout=30)
        took = time.time() - started
        server.log.close()
        assert code == 0, f"exit code {code}"
        log = server.log_text()
        assert "store closed; shut down cleanly" in log, log[-2000:]
        wal = os.path.join(data, "taxiway.db-wal")
        assert not os.path.exists(wal) or os.path.getsize(wal) == 0, "write-ahead log left behind"
        db = sqlite3.connect(os.path.join(data, "taxiway.db"))
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        db.close()
        print(f"shutdown: the in-flight POST finished (202) and the server exited 0 {took:.1f}s after SIGTERM; "
              "new connections refused, idle ones closed, no WAL left, integrity ok")

        server = Server(config.path, data, os.path.join(work, "shutdown.log"))
        conn = server.connection()
        status, _, envelope = request(conn, "GET", objects_path(INBOX) + f"{slow_object['id']}/")
        assert status == 200 and envelope["objects"][0]["id"] == slow_object["id"], status
        assert len(all_ids(conn, INBOX)) == 51
        conn.close()
        assert server.terminate() == 0
        print("shutdown: after a restart the object posted during shutdown is there")
    finally:
        server.kill()


def backup_and_restore_under_load(work):
    config = ConfigMount(os.path.join(work, "config-b"), config_text())
    data = os.path.join(work, "data-b")
    server = Server(config.path, data, os.path.join(work, "backup.log"))
    acknowledged = []
    lock = threading.Lock()
    stop = threading.Event()
    errors = []

    def writer():
        conn = server.connection()
        while not stop.is_set():
            objs = [indicator() for _ in range(20)]
            try:
                status, _, result = request(conn, "POST", objects_path(INBOX), {"objects": objs})
            except OSError as e:
                errors.append(repr(e))
                return
            if status != 202 or result["success_count"] != 20:
                errors.append(f"{status} {result}")
                return
            with lock:
                acknowledged.extend(o["id"] for o in objs)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    try:
        for t in threads:
            t.start()
        time.sleep(2)
        with lock:
            before = set(acknowledged)
        target = os.path.join(work, "taxiway-backup.db")
        out = subprocess.run([BIN, "backup", "--data-dir", data, "--output", target],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert "backed up" in out.stdout, out.stdout
        time.sleep(1)
        stop.set()
        for t in threads:
            t.join()
        assert not errors, errors[:3]
        again = subprocess.run([BIN, "backup", "--data-dir", data, "--output", target],
                               capture_output=True, text=True, timeout=60)
        assert again.returncode != 0 and "refusing to overwrite" in again.stderr, again
        missing = subprocess.run([BIN, "backup", "--data-dir", os.path.join(work, "nothing"),
                                  "--output", os.path.join(work, "x.db")], capture_output=True, text=True)
        assert missing.returncode != 0 and "no store" in missing.stderr, missing
        assert server.terminate() == 0

        db = sqlite3.connect(target)
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        db.close()
        restored = os.path.join(work, "restored")
        os.mkdir(restored)
        shutil.copy(target, os.path.join(restored, "taxiway.db"))
        server = Server(config.path, restored, os.path.join(work, "backup.log"))
        conn = server.connection()
        ids = all_ids(conn, INBOX)
        assert len(ids) == len(set(ids)), "duplicates in the backup"
        assert before <= set(ids), f"{len(before - set(ids))} objects acknowledged before the backup missing"
        assert set(ids) <= set(acknowledged), "objects nobody posted"
        conn.close()
        assert server.terminate() == 0
        print(f"backup: taken under concurrent ingest ({len(acknowledged)} objects acknowledged in all); "
              f"restored store serves {len(ids)} objects, all {len(before)} acknowledged before the backup, no duplicates; "
              "overwrite and missing store refused")
    finally:
        stop.set()
        server.kill()


def shutdown_delay_keeps_serving(work):
    config = ConfigMount(os.path.join(work, "config-delay"), config_text(server="shutdown_delay_secs = 3"))
    server = Server(config.path, os.path.join(work, "data-delay"), os.path.join(work, "delay.log"))
    try:
        server.proc.send_signal(15)
        started = time.time()
        deadline = started + 1.5
        while server.ready():
            assert time.time() < deadline, "still ready after SIGTERM"
            time.sleep(0.05)
        served = 0
        while time.time() < started + 2:
            conn = server.connection()
            conn.request("GET", "/taxii2/", headers={"Accept": TAXII})
            response = conn.getresponse()
            response.read()
            assert response.status == 200, response.status
            assert response.getheader("Connection", "").lower() == "close", \
                "keep-alive clients are told to reconnect while the server drains"
            conn.close()
            served += 1
            time.sleep(0.1)
        code = server.proc.wait(timeout=30)
        took = time.time() - started
        assert code == 0, f"exit code {code}"
        assert took >= 3, f"exited {took:.1f}s after SIGTERM, before the 3 s delay"
        print(f"shutdown delay: not ready at once, {served} new connections served during the delay, "
              f"exit 0 after {took:.1f}s")
    finally:
        server.kill()


def main():
    work = tempfile.mkdtemp(prefix="taxiway-shutdown-")
    ok = False
    try:
        shutdown_with_a_request_in_flight(work)
        shutdown_delay_keeps_serving(work)
        backup_and_restore_under_load(work)
        ok = True
    finally:
        if not ok:
            for name in ("shutdown.log", "delay.log", "backup.log"):
                path = os.path.join(work, name)
                if os.path.exists(path):
                    with open(path, "rb") as f:
                        sys.stderr.write(f"--- {name}\n" + f.read().decode(errors="replace")[-4000:])
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
