#!/usr/bin/env python3
"""The data path of the operator's Kubernetes test, as a TAXII client sees it.

Talks to a taxiway-server started on the files the operator rendered, with the real
taxii2-client: discovery, the API root's collections (ids and titles as the operator
reported them), add objects to the writable collection, then read them back from the
query collection. Prints one JSON object on stdout; exits 1 with a message on failure.

    taxii_fetch.py --base URL --user U --password P [--ca FILE] \
        --inbox ID --view ID --title TITLE
"""

import argparse
import json
import os
import sys
import time

from taxii2client.v21 import Server, as_pages

INDICATORS = [
    {
        "type": "indicator",
        "spec_version": "2.1",
        "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
        "created": "2026-01-01T00:00:00.000Z",
        "modified": "2026-01-01T00:00:00.000Z",
        "name": "C2 address",
        "pattern": "[ipv4-addr:value = '198.51.100.7']",
        "pattern_type": "stix",
        "valid_from": "2026-01-01T00:00:00Z",
        "confidence": 90,
    },
    {
        "type": "indicator",
        "spec_version": "2.1",
        "id": "indicator--1f4a2c6e-5b3d-4e8f-9a0b-7c6d5e4f3a2b",
        "created": "2026-01-02T00:00:00.000Z",
        "modified": "2026-01-02T00:00:00.000Z",
        "name": "Phishing domain",
        "pattern": "[domain-name:value = 'login.example.net']",
        "pattern_type": "stix",
        "valid_from": "2026-01-02T00:00:00Z",
    },
]
MALWARE = {
    "type": "malware",
    "spec_version": "2.1",
    "id": "malware--0c7b5b88-8ff7-4a4d-aa9d-feb398cd0061",
    "created": "2026-01-01T00:00:00.000Z",
    "modified": "2026-01-01T00:00:00.000Z",
    "name": "Example RAT",
    "is_family": True,
}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--base", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--ca", default="")
    p.add_argument("--inbox", required=True)
    p.add_argument("--view", required=True)
    p.add_argument("--title", required=True)
    a = p.parse_args()
    verify = a.ca if a.ca else True
    if a.ca:
        # requests lets these override a session's own `verify` (psf/requests#3829).
        for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
            os.environ.pop(name, None)

    server = Server(a.base + "/taxii2/", user=a.user, password=a.password, verify=verify)
    if server.title != a.title:
        sys.exit("discovery title %r, expected %r" % (server.title, a.title))
    root = server.default or server.api_roots[0]
    collections = {c.id: c for c in root.collections}
    for wanted in (a.inbox, a.view):
        if wanted not in collections:
            sys.exit("collection %s not in %s" % (wanted, sorted(collections)))
    inbox, view = collections[a.inbox], collections[a.view]
    if not inbox.can_write or view.can_write:
        sys.exit("inbox must be writable and the view read-only")

    envelope = {"objects": INDICATORS + [MALWARE]}
    status = inbox.add_objects(json.dumps(envelope))
    if status.success_count != 3:
        sys.exit("add_objects: %s" % status)

    want = sorted(o["id"] for o in INDICATORS)
    got = []
    for _ in range(50):
        got = sorted(
            obj["id"]
            for page in as_pages(view.get_objects, per_request=1)
            for obj in page.get("objects", [])
        )
        if got == want:
            break
        time.sleep(0.1)
    print(json.dumps({
        "title": server.title,
        "collections": {c.id: c.title for c in root.collections},
        "view_ids": got,
    }))
    if got != want:
        sys.exit("the query collection served %s, expected %s" % (got, want))


if __name__ == "__main__":
    main()
