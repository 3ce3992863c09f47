#!/usr/bin/env python3
"""`kubectl auth can-i --as=<ServiceAccount>` for many checks in one kubectl call.

    rbac.py request USER < EXPECTATIONS > sar-list.json
    kubectl create -f sar-list.json -o json | rbac.py verify EXPECTATIONS

EXPECTATIONS: one `yes|no NAMESPACE VERB RESOURCE [NAME]` per line, NAMESPACE `-` for
"in every namespace" (or a cluster-scoped resource), RESOURCE as kubectl spells it:
`secrets`, `deployments.apps`, `taxiiservices.taxiway.dev/status`; NAME for rules
limited to resourceNames.
The SubjectAccessReviews carry the groups a ServiceAccount token has, so the answer is
what the API server would decide for the operator's own requests.
"""

import json
import sys


def parse(line):
    fields = line.split()
    if len(fields) not in (4, 5) or fields[0] not in ("yes", "no"):
        sys.exit(f"bad expectation: {line}")
    expect, namespace, verb, resource = fields[:4]
    object_name = fields[4] if len(fields) == 5 else ""
    resource, _, subresource = resource.partition("/")
    name, _, group = resource.partition(".")
    return expect == "yes", "" if namespace == "-" else namespace, verb, name, group, subresource, object_name


def read_expectations(stream):
    return [parse(line) for line in stream if line.strip() and not line.startswith("#")]


def request(user):
    _, _, sa_namespace, _ = user.split(":", 3)
    items = []
    for _, namespace, verb, name, group, subresource, object_name in read_expectations(sys.stdin):
        attrs = {"namespace": namespace, "verb": verb, "group": group, "resource": name}
        if subresource:
            attrs["subresource"] = subresource
        if object_name:
            attrs["name"] = object_name
        items.append({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": user,
                "groups": ["system:serviceaccounts", f"system:serviceaccounts:{sa_namespace}", "system:authenticated"],
                "resourceAttributes": attrs,
            },
        })
    json.dump({"apiVersion": "v1", "kind": "List", "items": items}, sys.stdout)


def describe(namespace, verb, name, group, subresource, object_name):
    res = name + (f".{group}" if group else "") + (f"/{subresource}" if subresource else "")
    res += f" {object_name}" if object_name else ""
    return f"{verb} {res} in {namespace or 'every namespace'}"


def verify(path):
    with open(path) as f:
        expected = read_expectations(f)
    # kubectl prints one JSON object per created review, back to back.
    text, items, pos = sys.stdin.read(), [], 0
    decoder = json.JSONDecoder()
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos == len(text):
            break
        obj, pos = decoder.raw_decode(text, pos)
        items.extend(obj["items"] if obj.get("kind") == "List" else [obj])
    if len(items) != len(expected):
        sys.exit(f"{len(expected)} checks but {len(items)} answers")
    wrong = []
    for (allowed, *what), item in zip(expected, items):
        attrs = item["spec"]["resourceAttributes"]
        if (attrs.get("namespace", ""), attrs["verb"], attrs["resource"]) != (what[0], what[1], what[2]):
            sys.exit("answers out of order")
        got = item.get("status", {}).get("allowed", False)
        if got != allowed:
            wrong.append(f"{'denied' if allowed else 'ALLOWED'}: {describe(*what)} (expected {'yes' if allowed else 'no'})")
    for w in wrong:
        print(f"FAIL {w}")
    if wrong:
        sys.exit(1)
    print(f"ok: {len(expected)} RBAC checks ({sum(1 for e in expected if e[0])} allowed, {sum(1 for e in expected if not e[0])} denied)")


if __name__ == "__main__":
    if sys.argv[1:2] == ["request"] and len(sys.argv) == 3:
        request(sys.argv[2])
    elif sys.argv[1:2] == ["verify"] and len(sys.argv) == 3:
        verify(sys.argv[2])
    else:
        sys.exit(__doc__)
