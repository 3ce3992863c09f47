"""PostgreSQL for the reliability tests: a dedicated throwaway cluster, started with
tests/pg/provision.sh under its own TAXIWAY_PG_NAME (so a test that stops and starts
its database leaves the shared instance alone), that can be stopped (pg_ctl stop) and
started again on the same port; and psql helpers. Standard library only.
"""
import os
import pwd
import subprocess
import urllib.parse

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PROVISION = os.path.join(REPO, "tests", "pg", "provision.sh")
STOP = os.path.join(REPO, "tests", "pg", "stop.sh")


def psql_binary():
    """psql of the PostgreSQL that provision.sh found (TAXIWAY_PG_BIN), else PATH's."""
    candidate = os.path.join(os.environ.get("TAXIWAY_PG_BIN", ""), "psql")
    return candidate if os.environ.get("TAXIWAY_PG_BIN") and os.access(candidate, os.X_OK) else "psql"


def psql(url, sql, timeout=60):
    """Run SQL with psql against `url`; returns stdout (unaligned, tuples only)."""
    out = subprocess.run([psql_binary(), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
                         capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"psql {sql!r}: {out.stderr.strip()}")
    return out.stdout


def with_database(url, name):
    """`url` with its database (the path) replaced by `name`."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def create_database(superuser_url, name):
    """A fresh, empty database `name` (dropped first if left over); its URL."""
    psql(superuser_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    psql(superuser_url, f'CREATE DATABASE "{name}"')
    return with_database(superuser_url, name)


class Cluster:
    """A cluster of its own (tests/pg/provision.sh with TAXIWAY_PG_NAME=`name`);
    `stop()` and `start()` keep its port; `destroy()` stops it and removes its data."""

    def __init__(self, name):
        self.env = dict(os.environ, TAXIWAY_PG_NAME=name)
        out = subprocess.run(["bash", PROVISION], env=self.env, capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            raise RuntimeError(f"provision.sh ({name}): {out.stderr.strip()[-2000:]}")
        exports = {}
        for line in out.stdout.splitlines():
            if line.startswith("export ") and "=" in line:
                key, _, value = line[len("export "):].partition("=")
                exports[key] = value.strip().strip("'\"")
        self.superuser_url = exports["TAXIWAY_TEST_POSTGRES_URL"]
        self.bin = exports["TAXIWAY_PG_BIN"]
        self.data = exports["TAXIWAY_PG_DATA"]
        self.root = os.path.dirname(self.data)
        self.port = urllib.parse.urlsplit(self.superuser_url).port
        self.logfile = os.path.join(self.root, "server.log")
        owner = pwd.getpwuid(os.stat(self.data).st_uid).pw_name
        self.run_as = ["runuser", "-u", owner, "--"] if os.geteuid() == 0 else []

    def _pg_ctl(self, *args, timeout=120):
        cmd = self.run_as + [os.path.join(self.bin, "pg_ctl"), "-D", self.data] + list(args)
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if out.returncode != 0:
            raise RuntimeError(f"pg_ctl {' '.join(args)}: exit {out.returncode}: {out.stderr.strip()}"
                               f"\n{self.log_tail()}")

    def log_tail(self, n=3000):
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read()[-n:]
        except OSError:
            return ""

    def stop(self, mode="fast"):
        self._pg_ctl("-m", mode, "-w", "-t", "60", "stop")

    def start(self):
        """Start again on the same port, with provision.sh's options."""
        self._pg_ctl("-l", self.logfile, "-w", "-t", "60", "-o",
                     f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
                     "-c max_connections=300 -c shared_buffers=64MB", "start")

    def running(self):
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                os.kill(int(f.readline()), 0)
            return True
        except (OSError, ValueError):
            return False

    def destroy(self):
        subprocess.run(["bash", STOP, "--purge"], env=self.env, capture_output=True, timeout=120)
