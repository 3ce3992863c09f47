#!/usr/bin/env python3
"""Generate examples/standalone/sample-bundle.json, a deterministic STIX 2.1 bundle.

The output only depends on SEED: running this script twice gives the same bytes.
Standard library only. Usage:

    python3 examples/standalone/make_sample.py [OUTPUT]   # default: sample-bundle.json beside this file

What is in it (about a hundred objects), chosen to exercise the example query
collections in config/taxiway.toml and the interop test (tests/interop):

- the producer's identity and the five TLP 2.0 marking definitions (OASIS
  extension-definition--60a3c5c5-...); TLP 1.0 markings are referenced by their
  well-known ids (STIX 2.1 section 7.2.1.4) and not repeated;
- malware families and MITRE ATT&CK attack patterns;
- indicators with simple canonical patterns (IPv4, IPv6, domain, URL, SHA-256,
  MD5), confidence spread over 10-100 (including the 69/70 boundary and one with
  no confidence at all), TLP 1.0 and 2.0 markings mixed;
- `indicates` and `uses` relationships;
- objects with two versions (same id, later `modified`): an IPv4 indicator whose
  confidence is raised 50 -> 90, one lowered 85 -> 30, a malware whose description
  is updated, and a relationship whose second version is revoked.

Documentation address ranges only (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
2001:db8::/32, example.com/.net/.org): nothing here points at a real host.
"""

import datetime as dt
import json
import os
import random
import sys
import uuid

SEED = 20250303

# TLP 2.0 (OASIS cti-stix-common-objects, extension-definition-specifications/tlp-2.0).
TLP2_EXTENSION = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
TLP2 = {
    "clear": ("marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487", "TLP:CLEAR"),
    "green": ("marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb", "TLP:GREEN"),
    "amber": ("marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421", "TLP:AMBER"),
    "amber+strict": ("marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003", "TLP:AMBER+STRICT"),
    "red": ("marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1", "TLP:RED"),
}
# TLP 1.0, predefined by STIX 2.1 (section 7.2.1.4).
TLP1 = {
    "white": "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
    "green": "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
    "amber": "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
    "red": "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
}
# (marking ids or None, weight)
MARKING_CHOICES = [
    ([TLP2["clear"][0]], 14),
    ([TLP2["green"][0]], 24),
    ([TLP1["white"]], 10),
    ([TLP1["green"]], 16),
    ([TLP2["amber"][0]], 12),
    ([TLP1["amber"]], 8),
    ([TLP2["amber+strict"][0]], 5),
    ([TLP2["red"][0]], 4),
    ([TLP1["red"]], 2),
    (None, 5),
]

BASE = dt.datetime(2025, 2, 3, 8, 0, 0, tzinfo=dt.timezone.utc)

rng = random.Random(SEED)


def new_id(stix_type):
    return "%s--%s" % (stix_type, uuid.UUID(int=rng.getrandbits(128), version=4))


def ts(when):
    """STIX timestamp, UTC, millisecond precision, 'Z'."""
    when = when.astimezone(dt.timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (when.microsecond // 1000)


def random_time(start_days=0, end_days=30):
    seconds = rng.randint(start_days * 86400, end_days * 86400)
    return BASE + dt.timedelta(seconds=seconds, milliseconds=rng.randint(0, 999))


def pick_markings():
    choices, weights = zip(*MARKING_CHOICES)
    return rng.choices(choices, weights=weights, k=1)[0]


def hexstr(nbytes):
    return "%0*x" % (nbytes * 2, rng.getrandbits(nbytes * 8))


objects = []


def emit(obj, markings="pick"):
    if markings == "pick":
        markings = pick_markings()
    if markings:
        obj["object_marking_refs"] = list(markings)
    objects.append(obj)
    return obj


def new_version(obj, days, **changes):
    """A later version of obj: same id and created, later modified."""
    later = dict(obj)
    modified = dt.datetime.strptime(obj["modified"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc)
    later["modified"] = ts(modified + dt.timedelta(days=days, seconds=rng.randint(0, 86399),
                                                    milliseconds=rng.randint(0, 999)))
    later.update(changes)
    objects.append(later)
    return later


# --- producer and markings ------------------------------------------------------------

producer_created = ts(BASE - dt.timedelta(days=400))
producer = emit({
    "type": "identity",
    "spec_version": "2.1",
    "id": new_id("identity"),
    "created": producer_created,
    "modified": producer_created,
    "name": "Example CERT",
    "description": "Computer emergency response team of the example.com group",
    "identity_class": "organization",
    "sectors": ["technology"],
    "contact_information": "cert@example.com",
}, markings=[TLP2["clear"][0]])
PRODUCER = producer["id"]

for level, (marking_id, name) in TLP2.items():
    emit({
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": marking_id,
        "created": "2022-10-01T00:00:00.000Z",
        "name": name,
        "extensions": {
            TLP2_EXTENSION: {
                "extension_type": "property-extension",
                "tlp_2_0": level,
            }
        },
    }, markings=None)


def sdo(stix_type, when=None, **props):
    created = ts(when or random_time())
    obj = {
        "type": stix_type,
        "spec_version": "2.1",
        "id": new_id(stix_type),
        "created_by_ref": PRODUCER,
        "created": created,
        "modified": created,
    }
    obj.update(props)
    return obj


# --- malware and ATT&CK ---------------------------------------------------------------

MALWARE = [
    ("FERNLOADER", ["dropper", "downloader"], "Loader delivered by invoice-themed spearphishing that fetches second stages over HTTPS."),
    ("HOLLOWBEAR", ["remote-access-trojan", "backdoor"], "Remote access trojan with a plugin system and HTTP beaconing."),
    ("ASHCRYPT", ["ransomware"], "Ransomware that encrypts network shares and drops a ransom note in every folder."),
    ("NIGHTHERON", ["bot"], "Modular botnet used for credential stuffing and proxying."),
]
malware = []
for name, types, description in MALWARE:
    malware.append(emit(sdo("malware", when=random_time(0, 5), name=name, description=description,
                            malware_types=types, is_family=True,
                            labels=["crime-ware"])))

ATTACK = [
    ("T1566.001", "Spearphishing Attachment", "initial-access", "T1566/001"),
    ("T1059.001", "PowerShell", "execution", "T1059/001"),
    ("T1071.001", "Web Protocols", "command-and-control", "T1071/001"),
    ("T1105", "Ingress Tool Transfer", "command-and-control", "T1105"),
    ("T1486", "Data Encrypted for Impact", "impact", "T1486"),
]
attack_patterns = []
for ext_id, name, phase, path in ATTACK:
    attack_patterns.append(emit(sdo(
        "attack-pattern", when=random_time(0, 5), name=name,
        external_references=[{
            "source_name": "mitre-attack",
            "external_id": ext_id,
            "url": "https://attack.mitre.org/techniques/%s/" % path,
        }],
        kill_chain_phases=[{"kill_chain_name": "mitre-attack", "phase_name": phase}],
    ), markings=[TLP2["clear"][0]]))

# --- indicators -----------------------------------------------------------------------


def unique(gen):
    seen = set()

    def draw():
        while True:
            value = gen()
            if value not in seen:
                seen.add(value)
                return value
    return draw


ipv4 = unique(lambda: "%s.%d" % (rng.choice(["192.0.2", "198.51.100", "203.0.113"]), rng.randint(1, 254)))
ipv6 = unique(lambda: "2001:db8:%x:%x::%x" % (rng.randint(1, 0xffff), rng.randint(1, 0xffff), rng.randint(1, 0xffff)))
WORDS = ["login", "secure", "update", "cdn", "invoice", "portal", "verify", "mail", "files", "sync",
         "account", "office", "drive", "static", "api", "support"]
domain = unique(lambda: "%s-%s%d.%s" % (rng.choice(WORDS), rng.choice(WORDS), rng.randint(1, 99),
                                        rng.choice(["example.com", "example.net", "example.org"])))
PATHS = ["/wp-content/plugins/cache/load.php", "/download/INV-%d.zip", "/gate.php?id=%d",
         "/static/js/jquery-%d.min.js", "/api/v1/beacon/%d", "/docs/shared/Payment_%d.doc"]


def url():
    path = rng.choice(PATHS)
    if "%d" in path:
        path = path % rng.randint(1000, 9999)
    host = rng.choice([ipv4(), domain()])
    return "%s://%s%s" % (rng.choice(["http", "https"]), host, path)


# kind -> (pattern template, name template, labels, indicator_types)
KINDS = {
    "ipv4": ("[ipv4-addr:value = '%s']", "C2 server %s", ["c2", "botnet"], ["malicious-activity"]),
    "ipv6": ("[ipv6-addr:value = '%s']", "C2 server %s", ["c2"], ["malicious-activity"]),
    "domain": ("[domain-name:value = '%s']", "Phishing domain %s", ["phishing"], ["malicious-activity", "attribution"]),
    "url": ("[url:value = '%s']", "Payload URL %s", ["malware-distribution"], ["malicious-activity"]),
    "sha256": ("[file:hashes.'SHA-256' = '%s']", "Malicious file SHA-256 %s", ["malware-sample"], ["malicious-activity"]),
    "md5": ("[file:hashes.MD5 = '%s']", "Malicious file MD5 %s", ["malware-sample"], ["malicious-activity"]),
}
VALUE = {"ipv4": ipv4, "ipv6": ipv6, "domain": domain, "url": url,
         "sha256": lambda: hexstr(32), "md5": lambda: hexstr(16)}

# Fixed confidences for the IPv4 indicators so the "High-confidence IPv4" view has
# both sides of its >= 70 boundary; None = no confidence property at all.
IPV4_CONFIDENCE = [100, 95, 90, 85, 80, 75, 72, 70, 69, 65, 55, 50, 40, 30, 20, 10, None, 88]
PLAN = [("ipv4", c) for c in IPV4_CONFIDENCE]
PLAN += [(kind, "random") for kind, n in (("ipv6", 5), ("domain", 10), ("url", 8), ("sha256", 7), ("md5", 4))
         for _ in range(n)]
rng.shuffle(PLAN)


def indicator(kind, confidence, markings="pick"):
    pattern_t, name_t, labels, types = KINDS[kind]
    value = VALUE[kind]()
    created = random_time(5, 28)
    props = {
        "name": name_t % value,
        "description": "Observed by Example CERT during incident response",
        "indicator_types": list(types),
        "pattern": pattern_t % value,
        "pattern_type": "stix",
        "pattern_version": "2.1",
        "valid_from": ts(created),
        "labels": list(labels),
    }
    if kind in ("ipv4", "ipv6", "domain", "url"):
        props["valid_until"] = ts(created + dt.timedelta(days=rng.choice([90, 180, 365])))
    if confidence == "random":
        confidence = rng.randrange(10, 101, 5)
    if confidence is not None:
        props["confidence"] = confidence
    return emit(sdo("indicator", when=created, **props), markings=markings)


indicators = [indicator(kind, conf) for kind, conf in PLAN]

# Two IPv4 indicators with a second version: confidence raised and lowered.
raised = indicator("ipv4", 50, markings=[TLP2["green"][0]])
new_version(raised, 3, confidence=90, description="Confirmed by a second sensor: confidence raised")
lowered = indicator("ipv4", 85, markings=[TLP1["green"]])
new_version(lowered, 4, confidence=30, description="Shared hosting, likely reassigned: confidence lowered")
indicators += [raised, lowered]

# A malware description update (second version).
new_version(malware[1], 10, description=malware[1]["description"] + " Version 2.3 adds a SOCKS5 proxy module.",
            aliases=["HBEAR"])

# --- relationships --------------------------------------------------------------------


def relationship(rel_type, source, target, markings="pick"):
    later = max(source["created"], target["created"])
    when = dt.datetime.strptime(later, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc)
    when += dt.timedelta(minutes=rng.randint(1, 600), milliseconds=rng.randint(0, 999))
    return emit(sdo("relationship", when=when, relationship_type=rel_type,
                    source_ref=source["id"], target_ref=target["id"]), markings=markings)


relationships = []
for ind in rng.sample(indicators, 30):
    relationships.append(relationship("indicates", ind, rng.choice(malware)))
USES = [(0, 0), (0, 1), (0, 3), (1, 2), (2, 4), (3, 3)]
for m, a in USES:
    relationships.append(relationship("uses", malware[m], attack_patterns[a], markings=[TLP2["clear"][0]]))

# One relationship turned out to be wrong: its second version is revoked.
new_version(relationships[0], 2, revoked=True)

bundle = {
    "type": "bundle",
    "id": new_id("bundle"),
    "objects": objects,
}

if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                              "sample-bundle.json")
    with open(out, "w", encoding="utf-8") as f:
        json.dump(bundle, f, indent=2, ensure_ascii=False)
        f.write("\n")
    print("wrote %s: %d objects" % (out, len(objects)), file=sys.stderr)
