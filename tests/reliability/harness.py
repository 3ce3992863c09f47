"""Shared by the reliability tests: start the real binary on loopback ports, lay out a
config directory the way Kubernetes mounts a ConfigMap (a ``..data`` symlink swapped on
every change), talk TAXII over raw sockets and http.client. Standard library only.
"""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
import uuid

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("TAXIWAY_BIN", os.path.join(REPO, "target", "debug", "taxiway-server"))
TAXII = "application/taxii+json;version=2.1"

INBOX = "e78eb331-c15a-463f-ba62-73b2a71a324a"
HIGH_CONFIDENCE = "1032cbac-1483-48ad-b107-b3b6a12c65ad"
SHAREABLE = "a06e7029-0c3f-46ed-acc3-8194d3ca5b20"
MALWARE = "3e4430a3-9379-4610-9c67-04eb248acd6e"
COLLECTIONS = [INBOX, HIGH_CONFIDENCE, SHAREABLE, MALWARE]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config_text(threshold=70, server=""):
    """The standalone example's collections; `threshold` changes one query, `server`
    is the body of a [server] table."""
    with open(os.path.join(REPO, "examples", "standalone", "config", "taxiway.toml")) as f:
        text = f.read()
    text = text.replace("confidence:>=70", f"confidence:>={threshold}")
    if server:
        text += "\n[server]\n" + server + "\n"
    return text


class ConfigMount:
    """A config directory laid out like a mounted ConfigMap: ``..vN/taxiway.toml``, a
    ``..data`` symlink to the current version and ``taxiway.toml -> ..data/taxiway.toml``."""

    def __init__(self, path, text):
        self.path = path
        self.version = 0
        os.makedirs(path, exist_ok=True)
        self.swap(text)
        os.symlink("..data/taxiway.toml", os.path.join(path, "taxiway.toml"))

    def swap(self, text):
        self.version += 1
        new = f"..v{self.version}"
        os.mkdir(os.path.join(self.path, new))
        with open(os.path.join(self.path, new, "taxiway.toml"), "w") as f:
            f.write(text)
        tmp = os.path.join(self.path, "..data_tmp")
        os.symlink(new, tmp)
        os.rename(tmp, os.path.join(self.path, "..data"))
        if self.version > 1:  # the kubelet removes the previous version right away
            shutil.rmtree(os.path.join(self.path, f"..v{self.version - 1}"), ignore_errors=True)


class Server:
    """The real binary, plain HTTP on loopback."""

    def __init__(self, config_dir, data_dir, log_path):
        self.port, self.admin = free_port(), free_port()
        self.log_path = log_path
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            [BIN, "serve", "--config-dir", config_dir, "--data-dir", data_dir,
             "--listen", f"127.0.0.1:{self.port}", "--admin-listen", f"127.0.0.1:{self.admin}"],
            stdout=self.log, stderr=self.log)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; see {log_path}")
            if self.ready():
                return
            time.sleep(0.05)
        raise RuntimeError("server did not become ready")

    def ready(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/readyz", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def metrics(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/metrics", timeout=10) as r:
            return r.read().decode()

    def metric(self, name):
        for line in self.metrics().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
        return 0.0

    def connection(self, timeout=30):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def terminate(self, timeout=60):
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self.log.close()
        return code

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")


def request(conn, method, path, body=None):
    """One request on a kept-alive http.client connection: (status, headers, JSON or None)."""
    headers = {"Accept": TAXII}
    if body is not None:
        body = json.dumps(body).encode()
        headers["Content-Type"] = TAXII
    conn.request(method, path, body=body, headers=headers)
    r = conn.getresponse()
    data = r.read()
    parsed = json.loads(data) if data else None
    return r.status, r.headers, parsed


def indicator(confidence=90):
    n = uuid.uuid4().int
    return {
        "type": "indicator", "spec_version": "2.1", "id": f"indicator--{uuid.uuid4()}",
        "created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z",
        "pattern": f"[ipv4-addr:value = '10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}']",
        "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z", "confidence": confidence,
        "object_marking_refs": ["marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"],
    }


def malware():
    return {
        "type": "malware", "spec_version": "2.1", "id": f"malware--{uuid.uuid4()}",
        "created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z",
        "name": "soak family", "is_family": True,
    }


def relationship(source, target):
    return {
        "type": "relationship", "spec_version": "2.1", "id": f"relationship--{uuid.uuid4()}",
        "created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z",
        "relationship_type": "indicates", "source_ref": source, "target_ref": target,
    }


def objects_path(collection, query=""):
    return f"/feeds/collections/{collection}/objects/" + (f"?{query}" if query else "")


def all_ids(conn, collection):
    """Every object version's id in a collection, paging with `next`."""
    ids, next_ = [], None
    while True:
        q = "match[version]=all&limit=1000" + (f"&next={next_}" if next_ else "")
        status, _, page = request(conn, "GET", objects_path(collection, q))
        assert status == 200, status
        ids += [o["id"] for o in (page or {}).get("objects", [])]
        if not (page or {}).get("more"):
            return ids
        next_ = page["next"]


def proc_status(pid):
    """VmRSS and RssAnon (KiB) and open file descriptors of a process."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "Threads"):
                fields[key] = int(value.split()[0])
    fields["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return fields
