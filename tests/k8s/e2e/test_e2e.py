#!/usr/bin/env python3
"""End to end on a real Kubernetes cluster (issue 10, tests 1-11; issue 19, tests 12-15).

Runs against the single-node cluster of tests/k8s/cluster.sh with the images of
tests/k8s/images.sh; driven by tests/run.d/60-e2e-cluster.sh, which provides:

  KUBECONFIG, KUBECTL, HELM   the cluster and the clients
  TAXIWAY_REPO                the checkout (charts/taxiway, examples/k8s)
  TAXIWAY_IMAGE_TAG           tag of taxiway/operator and taxiway/server
  TAXIWAY_E2E_WORKDIR         scratch space (certificates, nginx)
  NODE_IP                     the node (docker0) address; also the cluster DNS server
  TAXIWAY_E2E_SERVER_BIN      the host's taxiway-server, the build the image holds (test 12)

Every consumer is a real client: taxii2-client (and requests under it) from the host,
openssl s_client from a pod, Debian's nginx as the Ingress controller would be. The
host resolves *.cluster.local through the cluster's DNS (as a pod does), so names and
certificates are checked the way users see them.

Prints one line per check and ends with "N passed, N failed[, N skipped]".
"""

import base64
import hashlib
import json
import os
import re
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone

import requests
import stix2
from taxii2client.common import TokenAuth
from taxii2client.v21 import ApiRoot, Collection, Server, as_pages

KUBECTL = os.environ["KUBECTL"]
HELM = os.environ["HELM"]
REPO = os.environ["TAXIWAY_REPO"]
TAG = os.environ.get("TAXIWAY_IMAGE_TAG", "e2e")
WORK = os.environ["TAXIWAY_E2E_WORKDIR"]
NODE_IP = os.environ.get("NODE_IP", "172.17.0.1")
BASE_IMAGE = os.environ.get("TAXIWAY_E2E_CLIENT_IMAGE", "taxiway-base:bookworm")

OP_NS = "taxiway-system"
RELEASE = "taxiway"
NS = "threat-intel"  # the examples' namespace
SVC = "taxii"  # the examples' TaxiiService
SVC_DNS = f"{SVC}.{NS}.svc"
SVC_FQDN = f"{SVC_DNS}.cluster.local"
INGRESS_HOST = "taxii.example.com"
INGRESS_PATH = "/threat-intel"
SETTLE = float(os.environ.get("TAXIWAY_E2E_SETTLE", "30"))  # "within seconds"

# requests lets these override a Session's `verify` (which is how taxii2-client passes
# the CA): with them set, the clients would check our certificates against the system
# bundle instead of the test's CA.
for _var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
    os.environ.pop(_var, None)

RESULTS = {"passed": 0, "failed": 0, "skipped": 0}
CLEANUPS = []


# ----------------------------------------------------------------------- reporting

def log(msg):
    print(f"[e2e {datetime.now():%H:%M:%S}] {msg}", flush=True)


class Skip(Exception):
    pass


def check(cond, what):
    """One assertion a user would notice; counted, and fatal for the test it is in."""
    if not cond:
        raise AssertionError(what)
    RESULTS["passed"] += 1
    log(f"  ok: {what}")


KNOWN_GAPS = []


def known_gap(cond, what, gap):
    """A check the issue asks for that the product does not meet yet, by a recorded
    decision: reported on every run (and counted as skipped), never silently dropped.
    When it starts to pass it counts as passed, and the gap should be removed here."""
    if cond:
        check(True, what)
    else:
        RESULTS["skipped"] += 1
        KNOWN_GAPS.append(f"{what}: {gap}")
        log(f"  KNOWN GAP: {what} -- {gap}")


def run_test(number, title, fn):
    log(f"test {number}: {title}")
    started = time.monotonic()
    try:
        fn()
        log(f"test {number}: done in {time.monotonic() - started:.1f} s")
        return True
    except Skip as e:
        RESULTS["skipped"] += 1
        log(f"  SKIPPED: {e}")
        return True
    except Exception as e:  # noqa: BLE001 - every failure is reported, then the next test runs
        RESULTS["failed"] += 1
        log(f"  FAILED: {e or repr(e)}")
        traceback.print_exc(file=sys.stdout)
        print_state(number)
        return False


def print_state(number):
    """What the operator and the server said when a test failed (later tests delete
    them, so the harness's debug dump at the end would find nothing)."""
    out = [f"----- state after the failure of test {number} -----"]
    for args in (["get", "taxiiservices,taxiicollections", "-n", NS, "-o", "wide"],
                 ["get", "taxiiservices,taxiicollections", "-n", NS, "-o",
                  "jsonpath={range .items[*]}{.kind}/{.metadata.name}: {.status.conditions}{'\\n'}{end}"],
                 ["get", "pods", "-n", NS, "-o", "wide"],
                 ["logs", "-n", NS, "-l", "app.kubernetes.io/name=taxiway-server", "--tail=30",
                  "--all-containers", "--prefix"],
                 ["logs", "-n", OP_NS, "-l", f"app.kubernetes.io/instance={RELEASE}", "--tail=30",
                  "--prefix"]):
        p = subprocess.run([KUBECTL, *args], capture_output=True, text=True, timeout=30)
        out.append(f"$ kubectl {' '.join(args)}\n{p.stdout}{p.stderr}")
    print("\n".join(out), flush=True)


# ----------------------------------------------------------------------- kubectl

def kubectl(*args, input=None, check=True, timeout=90):
    p = subprocess.run([KUBECTL, *args], input=input, capture_output=True, text=True,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {p.stderr.strip() or p.stdout.strip()}")
    return p.stdout


def kget(kind, name=None, ns=NS, selector=None, check=True):
    args = ["get", kind, "-o", "json"]
    if name:
        args.insert(2, name)
    if ns:
        args += ["-n", ns]
    if selector:
        args += ["-l", selector]
    out = kubectl(*args, check=check)
    return json.loads(out) if out.strip() else None


def exists(kind, name, ns=NS):
    p = subprocess.run([KUBECTL, "get", kind, name, "-n", ns, "-o", "name"],
                       capture_output=True, text=True)
    return p.returncode == 0


def apply(yaml_text):
    return kubectl("apply", "-f", "-", input=yaml_text)


def patch(kind, name, body, ns=NS, type_="merge"):
    return kubectl("patch", kind, name, "-n", ns, "--type", type_, "-p", json.dumps(body))


def wait_for(what, fn, timeout=SETTLE, interval=0.25):
    """Poll fn until it returns something truthy; returns it and how long it took."""
    start = time.monotonic()
    last_error = None
    while True:
        try:
            value = fn()
            if value:
                return value, time.monotonic() - start
        except Exception as e:  # noqa: BLE001 - keep polling; the last error is reported
            last_error = e
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}"
                                 + (f" (last error: {last_error})" if last_error else ""))
        time.sleep(interval)


def condition(obj, type_):
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c["type"] == type_:
            return c
    return None


def server_pods(service=SVC):
    pods = kget("pods", selector=f"app.kubernetes.io/instance={service},"
                                 "app.kubernetes.io/name=taxiway-server")["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def server_pod(service=SVC):
    """(uid, restartCount, name) of the one ready server pod, or None."""
    ready = []
    for p in server_pods(service):
        st = p.get("status") or {}
        cs = st.get("containerStatuses") or []
        if st.get("phase") == "Running" and cs and all(c.get("ready") for c in cs):
            ready.append((p["metadata"]["uid"], sum(c["restartCount"] for c in cs),
                          p["metadata"]["name"]))
    return ready[0] if len(ready) == 1 else None


# ----------------------------------------------------------------------- DNS and TLS

def dns_a(name, server=NODE_IP):
    """An A record from the cluster's DNS (what a pod's resolver asks)."""
    q = struct.pack(">HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\0"
    q += struct.pack(">HH", 1, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    try:
        s.sendto(q, (server, 53))
        r = s.recv(1024)
    finally:
        s.close()
    an = struct.unpack(">H", r[6:8])[0]
    i = len(q)
    for _ in range(an):
        if r[i] & 0xC0 == 0xC0:
            i += 2
        else:
            i = r.index(b"\0", i) + 1
        typ, _, _, ln = struct.unpack(">HHIH", r[i:i + 10])
        i += 10
        if typ == 1:
            return socket.inet_ntoa(r[i:i + ln])
        i += ln
    raise OSError(f"{name}: no A record from {server}")


# The host answers names the way a pod would (cluster.local through the cluster DNS),
# plus a static entry for the Ingress host, like a DNS record pointing at the
# ingress controller. Only the address changes: TLS still checks the name.
STATIC_HOSTS = {}
_getaddrinfo = socket.getaddrinfo


def _resolve(host, *args, **kwargs):
    if isinstance(host, str):
        if host in STATIC_HOSTS:
            host = STATIC_HOSTS[host]
        elif host.endswith(".cluster.local") or host.endswith(".svc"):
            host = dns_a(host if host.endswith(".cluster.local") else host + ".cluster.local")
    return _getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = _resolve


def openssl(*args, input=None):
    subprocess.run(["openssl", *args], input=input, check=True, capture_output=True)


class Pki:
    """A CA and server certificates, made with openssl."""

    def __init__(self, root):
        self.dir = root
        os.makedirs(root, exist_ok=True)
        self.ca_crt = os.path.join(root, "ca.crt")
        self.ca_key = os.path.join(root, "ca.key")
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.ca_key,
                "-out", self.ca_crt, "-days", "30", "-subj", "/CN=taxiway-e2e-ca")

    def issue(self, name, sans):
        key, csr, crt = (os.path.join(self.dir, f"{name}.{x}") for x in ("key", "csr", "crt"))
        ext = os.path.join(self.dir, f"{name}.ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=" + ",".join(sans) + "\nextendedKeyUsage=serverAuth\n")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
                "-subj", f"/CN={name}")
        openssl("x509", "-req", "-in", csr, "-CA", self.ca_crt, "-CAkey", self.ca_key,
                "-CAcreateserial", "-days", "30", "-extfile", ext, "-out", crt)
        return crt, key


def fingerprint_pem(path):
    with open(path) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    return hashlib.sha256(der).hexdigest()


def served_fingerprint(host, port, server_name):
    ctx = ssl.create_default_context(cafile=PKI.ca_crt)
    with socket.create_connection((host, port), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname=server_name) as t:
            return hashlib.sha256(t.getpeercert(binary_form=True)).hexdigest()


# ----------------------------------------------------------------------- TAXII helpers

USERS = {
    # the examples' users (examples/k8s/users.yaml)
    "alice": {"secret": "taxii-user-alice", "password": "change-me-alice",
              "api_key": "alice-0f8e2d3c9b7a"},
    "sentinel": {"secret": "taxii-user-sentinel", "password": "change-me-sentinel"},
    "partner": {"secret": "taxii-user-partner", "username": "partner-cert",
                "password": "change-me-partner"},
}


def read_users_from_examples():
    """Take usernames, passwords and API keys from examples/k8s/users.yaml as applied."""
    for user in USERS.values():
        s = kget("secret", user["secret"], check=False)
        if not s:
            continue
        data = {k: base64.b64decode(v).decode() for k, v in (s.get("data") or {}).items()}
        user["username"] = data.get("username", user.get("username"))
        user["password"] = data.get("password", user["password"])
        for k, v in data.items():
            if k not in ("username", "password"):
                user["api_key"] = v


def basic(name):
    u = USERS[name]
    return {"user": u.get("username", name), "password": u["password"]}


def api_key(name):
    return {"auth": TokenAuth(USERS[name]["api_key"])}


def taxii_get(url, who="alice", headers=None):
    u = USERS[who]
    return requests.get(url, auth=(u.get("username", who), u["password"]), verify=PKI.ca_crt,
                        headers={"Accept": "application/taxii+json;version=2.1", **(headers or {})},
                        timeout=10)


def collection_ids():
    """{CR name: TAXII collection id} from the TaxiiCollections' status."""
    out = {}
    for c in kget("taxiicollections")["items"]:
        cid = (c.get("status") or {}).get("id")
        if cid:
            out[c["metadata"]["name"]] = cid
    return out


def all_objects(collection, **filters):
    objs = []
    for envelope in as_pages(collection.get_objects, per_request=200, **filters):
        objs.extend(envelope.get("objects", []))
    return objs


def indicator(ip, confidence, **extra):
    return json.loads(stix2.Indicator(
        name=f"e2e {ip}", pattern=f"[ipv4-addr:value = '{ip}']", pattern_type="stix",
        valid_from=datetime.now(timezone.utc), confidence=confidence, **extra).serialize())


def walk(discovery_url, expect_base, credentials, verify=True):
    """taxii2-client from discovery through API root and collections to objects,
    following only the URLs the server gives; every one must start with expect_base."""
    server = Server(discovery_url, verify=verify, **credentials)
    roots = server.api_roots
    check(roots, f"{discovery_url}: discovery lists API roots")
    urls = [r.url for r in roots] + ([server.default.url] if server.default else [])
    check(all(u.startswith(expect_base) for u in urls),
          f"{discovery_url}: API root URLs are the consumer's ({expect_base}...): {urls}")
    root = next(r for r in roots if r.url.rstrip("/").endswith("/feeds"))
    cols = root.collections
    check(cols, f"{root.url}: collections listed")
    # The inbox when this user may see it, else the first collection they may read.
    col = next((c for c in cols if c.id == IDS.get("inbox")), None) or \
        next(c for c in cols if c.can_read)
    check(col.url.startswith(expect_base), f"collection URL is the consumer's: {col.url}")
    env = col.get_objects()
    check(isinstance(env, dict), f"{col.url}objects/: an envelope")
    return server, root, cols


# ----------------------------------------------------------------------- the tests

IDS = {}
PKI = None
TLS_SECRET = "taxii-tls"
NODE_PORT = None


def test_1_helm_install():
    chart = os.path.join(REPO, "charts", "taxiway")
    if not os.path.isdir(chart):
        raise Skip("charts/taxiway is not in this checkout")
    kubectl("create", "namespace", OP_NS, check=False)
    wait_for("the default ServiceAccount", lambda: exists("serviceaccount", "default", OP_NS))
    p = subprocess.run([HELM, "install", RELEASE, chart, "-n", OP_NS,
                        "--set", f"image.tag={TAG}", "--set", "image.pullPolicy=Never",
                        "--set", f"serverImage.tag={TAG}", "--wait", "--timeout", "120s"],
                       capture_output=True, text=True, timeout=180)
    check(p.returncode == 0, f"helm install: {p.stderr.strip() or 'ok'}")
    pods = kget("pods", ns=OP_NS, selector=f"app.kubernetes.io/instance={RELEASE}")["items"]
    check(len(pods) >= 1, "the operator pod exists")
    pod = pods[0]
    check(all(c["ready"] for c in pod["status"]["containerStatuses"]), "the operator pod is Ready")
    check(pod["spec"]["containers"][0]["image"] == f"taxiway/operator:{TAG}",
          f"it runs the locally built image taxiway/operator:{TAG}")
    sa = pod["spec"]["serviceAccountName"]
    check(sa != "default" and exists("serviceaccount", sa, OP_NS),
          f"it runs as the chart's ServiceAccount {sa}")


OPERATOR_LOGS = []


def operator_log():
    """Every operator pod's log so far (kept, since test 9 uninstalls the operator)."""
    pods = kget("pods", ns=OP_NS, selector=f"app.kubernetes.io/instance={RELEASE}", check=False)
    for p in (pods or {}).get("items", []):
        OPERATOR_LOGS.append(kubectl("logs", "-n", OP_NS, p["metadata"]["name"], "--tail=-1",
                                     check=False))
    return "\n".join(OPERATOR_LOGS)


def apply_examples():
    """examples/k8s as a user applies it, except resources of kinds this cluster lacks
    (cert-manager's Certificate): the TLS Secret it would issue is made here."""
    ex = os.path.join(REPO, "examples", "k8s")
    if not os.path.isdir(ex):
        raise Skip("examples/k8s is not in this checkout")
    files = sorted(os.listdir(ex))
    ns_files = [f for f in files if "namespace" in f]
    for f in ns_files + [f for f in files if f not in ns_files]:
        path = os.path.join(ex, f)
        if not f.endswith((".yaml", ".yml")):
            continue
        text = open(path).read()
        if re.search(r"^apiVersion:\s*cert-manager\.io/", text, re.M):
            log(f"  ({f}: cert-manager is not installed; making its Secret with openssl)")
            continue
        kubectl("apply", "-f", path)
        if f in ns_files:
            wait_for(f"the default ServiceAccount in {NS}",
                     lambda: exists("serviceaccount", "default", NS))


def test_2_examples():
    global PKI
    PKI = Pki(os.path.join(WORK, "e2e-pki"))
    crt, key = PKI.issue("taxii", [f"DNS:{SVC_DNS}", f"DNS:{SVC_FQDN}", "DNS:localhost",
                                   "IP:127.0.0.1"])
    apply_examples()
    read_users_from_examples()
    ts = kget("taxiiservice", SVC)
    # The TLS Secret the example names (cert-manager would issue it).
    global TLS_SECRET
    TLS_SECRET = ((ts["spec"].get("tls") or {}).get("secretName")) or TLS_SECRET
    if not exists("secret", TLS_SECRET):
        kubectl("create", "secret", "tls", TLS_SECRET, "-n", NS, f"--cert={crt}", f"--key={key}")
    if not ts["spec"].get("tls"):
        patch("taxiiservice", SVC, {"spec": {"tls": {"secretName": TLS_SECRET}}})
    # Both TAXII versions side by side (the example may serve only 2.1).
    versions = ts["spec"].get("versions") or ["2.1"]
    if "2.0" not in versions:
        patch("taxiiservice", SVC, {"spec": {"versions": ["2.1", "2.0"]}})
    _, took = wait_for("TaxiiService Ready",
                       lambda: (condition(kget("taxiiservice", SVC), "Ready") or {})
                       .get("status") == "True", timeout=120)
    check(True, f"TaxiiService {SVC} Ready in {took:.1f} s")
    ts = kget("taxiiservice", SVC)
    check(ts["status"].get("observedGeneration") == ts["metadata"]["generation"],
          "its status describes the current generation")
    pod, _ = wait_for("the server pod Running and ready", server_pod, timeout=60)
    check(pod, f"server pod {pod[2]} Running")
    cols = kget("taxiicollections")["items"]
    check(len(cols) >= 2, f"{len(cols)} TaxiiCollections")
    for c in cols:
        name = c["metadata"]["name"]
        st = c.get("status") or {}
        check(re.fullmatch(r"[0-9a-f-]{36}", st.get("id") or ""), f"{name} has its id {st.get('id')}")
        if c["spec"].get("query"):
            check((condition(c, "QueryValid") or {}).get("status") == "True",
                  f"{name}: QueryValid=True")
    IDS.update(collection_ids())
    check("inbox" in IDS, "the writable collection `inbox` is there")
    spec = kget("taxiiservice", SVC)["spec"]
    if spec.get("ingress"):
        ing = kget("ingress", SVC)
        check(ing["spec"]["rules"][0]["host"] == spec["ingress"]["host"],
              f"the Ingress routes {spec['ingress']['host']}")


def drop_external_url():
    """Tests 3-9 reach the server by its Service; an Ingress host would make every URL
    the Ingress's (test 10 puts one back)."""
    spec = kget("taxiiservice", SVC)["spec"]
    ops = [{"op": "remove", "path": f"/spec/{k}"} for k in ("ingress", "externalUrl") if k in spec]
    if ops:
        patch("taxiiservice", SVC, ops, type_="json")


def test_3_consumers():
    before = server_pod()
    drop_external_url()
    base = f"https://{SVC_FQDN}"
    wait_for("URLs to follow the request's Host", lambda: all(
        r.startswith(base) for r in taxii_get(f"{base}/taxii2/").json().get("api_roots", [])))

    # 1. From the host, through the ClusterIP, by the Service's DNS name.
    cluster_ip = kget("service", SVC)["spec"]["clusterIP"]
    check(dns_a(SVC_FQDN) == cluster_ip, f"{SVC_FQDN} resolves to the ClusterIP {cluster_ip}")
    walk(f"{base}/taxii2/", base, basic("alice"), verify=PKI.ca_crt)
    walk(f"{base}/taxii2/", base, api_key("alice"), verify=PKI.ca_crt)

    # 2. A NodePort on 127.0.0.1.
    global NODE_PORT
    patch("taxiiservice", SVC, {"spec": {"service": {"type": "NodePort"}}})
    svc, _ = wait_for("a NodePort", lambda: (lambda s: s if s["spec"]["type"] == "NodePort"
                                             else None)(kget("service", SVC)))
    NODE_PORT = svc["spec"]["ports"][0]["nodePort"]
    # kube-proxy programs the port a moment after the Service has it.
    wait_for(f"127.0.0.1:{NODE_PORT} to answer",
             lambda: taxii_get(f"https://127.0.0.1:{NODE_PORT}/taxii2/").status_code == 200)
    walk(f"https://127.0.0.1:{NODE_PORT}/taxii2/", f"https://127.0.0.1:{NODE_PORT}/",
         basic("alice"), verify=PKI.ca_crt)

    # 3. kubectl port-forward.
    with port_forward() as port:
        walk(f"https://localhost:{port}/taxii2/", f"https://localhost:{port}/", basic("sentinel"),
             verify=PKI.ca_crt)

    # 4. From a pod, by the Service's DNS name, verifying the certificate with the CA.
    body = in_cluster_discovery()
    check(f'"https://{SVC_DNS}/feeds/"' in body,
          f"from a pod: discovery over verified HTTPS names https://{SVC_DNS}/feeds/")

    check(server_pod()[:2] == before[:2], "the same pod served every change (no restart)")


def test_3b_taxii20():
    """TAXII 2.0 beside 2.1 (the TaxiiService asks for both)."""
    base = f"https://{SVC_FQDN}"
    r = requests.get(f"{base}/taxii/", auth=(USERS["alice"].get("username", "alice"),
                                             USERS["alice"]["password"]),
                     headers={"Accept": "application/vnd.oasis.taxii+json; version=2.0"},
                     verify=PKI.ca_crt, timeout=10)
    if r.status_code in (404, 406) and os.environ.get("TAXIWAY_E2E_REQUIRE_TAXII20") != "1":
        raise Skip(f"the server image does not serve TAXII 2.0 yet ({r.status_code} at /taxii/)")
    check(r.status_code == 200 and r.json().get("api_roots"), f"TAXII 2.0 discovery: {r.status_code}")
    from taxii2client.v20 import Server as Server20
    s20 = Server20(f"{base}/taxii/", verify=PKI.ca_crt, **basic("alice"))
    check(all(u.url.startswith(base) for u in s20.api_roots), "2.0 API root URLs are the consumer's")
    cols = [c for root in s20.api_roots for c in root.collections]
    check(any(c.id == IDS["inbox"] for c in cols), "taxii2-client 2.0 lists the collections")


@contextmanager
def port_forward():
    p = subprocess.Popen([KUBECTL, "port-forward", "-n", NS, f"service/{SVC}", ":443"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = p.stdout.readline()
        m = re.search(r"127\.0\.0\.1:(\d+)", line)
        if not m:
            raise AssertionError(f"kubectl port-forward: {line}{p.stdout.read(2000) if p.poll() is not None else ''}")
        yield int(m.group(1))
    finally:
        p.terminate()
        p.wait(timeout=10)


def in_cluster_discovery():
    """openssl s_client in a pod: resolve the Service name, verify the certificate
    against the CA (mounted from a ConfigMap), GET /taxii2/ with Basic auth."""
    kubectl("create", "configmap", "e2e-ca", "-n", NS, f"--from-file=ca.crt={PKI.ca_crt}",
            check=False)
    u = USERS["sentinel"]
    token = base64.b64encode(f"{u.get('username', 'sentinel')}:{u['password']}".encode()).decode()
    request = (f"GET /taxii2/ HTTP/1.1\\r\\nHost: {SVC_DNS}\\r\\nAuthorization: Basic {token}\\r\\n"
               "Accept: application/taxii+json;version=2.1\\r\\nConnection: close\\r\\n\\r\\n")
    script = (f"printf '{request}' | openssl s_client -quiet -connect {SVC_DNS}:443 "
              f"-servername {SVC_DNS} -verify_hostname {SVC_DNS} -CAfile /ca/ca.crt "
              "-verify_return_error 2>&1")
    name = f"e2e-client-{uuid.uuid4().hex[:6]}"
    apply(json.dumps({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "client", "image": BASE_IMAGE, "imagePullPolicy": "Never",
                            "command": ["sh", "-c", script],
                            "volumeMounts": [{"name": "ca", "mountPath": "/ca"}]}],
            "volumes": [{"name": "ca", "configMap": {"name": "e2e-ca"}}],
        }}))
    try:
        wait_for("the client pod to finish", lambda: kget("pod", name)["status"].get("phase")
                 in ("Succeeded", "Failed"), timeout=60)
        out = kubectl("logs", "-n", NS, name)
        check(kget("pod", name)["status"]["phase"] == "Succeeded" and "200 OK" in out.split("\n")[0]
              + out, f"from a pod: HTTP 200 over TLS verified for {SVC_DNS}")
        return out
    finally:
        kubectl("delete", "pod", name, "-n", NS, "--wait=false", check=False)


def inbox(who="alice"):
    base = f"https://{SVC_FQDN}"
    return Collection(f"{base}/feeds/collections/{IDS['inbox']}/", verify=PKI.ca_crt, **basic(who))


def view(cr_name, who="alice"):
    base = f"https://{SVC_FQDN}"
    return Collection(f"{base}/feeds/collections/{IDS[cr_name]}/", verify=PKI.ca_crt,
                      **basic(who))


SEEN = {}


def test_4_ingest_and_views():
    high = indicator("198.51.100.70", 85)
    low = indicator("198.51.100.71", 50)
    mal = json.loads(stix2.Malware(name="e2e-emotet", is_family=True).serialize())
    status = inbox().add_objects({"objects": [high, low, mal]})
    check(status.status == "complete" and status.success_count == 3,
          f"POST to the writable collection: {status.success_count} of 3 added")
    SEEN.update(high=high["id"], low=low["id"], mal=mal["id"])

    def ids_in(cr, who="alice"):
        return {o["id"] for o in all_objects(view(cr, who))}
    if "high-confidence-ipv4" in IDS:
        got, took = wait_for("the IPv4 view", lambda: (lambda s: s if high["id"] in s else None)(
            ids_in("high-confidence-ipv4")))
        check(high["id"] in got and low["id"] not in got,
              f"high-confidence-ipv4 has the confidence-85 indicator, not the 50 one ({took:.1f} s)")
        got = ids_in("high-confidence-ipv4", "sentinel")
        check(high["id"] in got, "sentinel (group siem) reads the view")
    if "malware-context" in IDS:
        got, _ = wait_for("the malware view", lambda: (lambda s: s if mal["id"] in s else None)(
            ids_in("malware-context")))
        check(mal["id"] in got and high["id"] not in got, "malware-context has the malware only")
    r = taxii_get(f"https://{SVC_FQDN}/feeds/collections/{IDS['inbox']}/objects/", who="sentinel")
    check(r.status_code in (401, 403, 404), f"sentinel may not read the inbox: {r.status_code}")
    check_access_log(high_view="high-confidence-ipv4" in IDS)


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def access_log_lines():
    """The access-log lines (target taxiway::access) of every server pod, escapes removed."""
    lines = []
    for p in server_pods():
        out = kubectl("logs", "-n", NS, p["metadata"]["name"], "--tail=-1", check=False)
        lines += [ANSI.sub("", line) for line in out.splitlines() if "taxiway::access" in line]
    return lines


def access_logged(lines, **fields):
    """Whether one line has every field: a JSON line (`--log-json`, as the operator runs
    the server) by its `fields`, a text line by name=value or name="value"."""
    def has(line, name, value):
        if line.lstrip().startswith("{"):
            try:
                got = (json.loads(line).get("fields") or {}).get(name)
            except ValueError:
                return False
            return got is not None and str(got) == str(value)
        return re.search(rf'\b{name}="?{re.escape(str(value))}"?(\s|$)', line) is not None
    return any(all(has(line, k, v) for k, v in fields.items()) for line in lines)


def check_access_log(high_view):
    """The taxii2-client requests above are in the access log with their user and collection."""
    lines = access_log_lines()
    check(access_logged(lines, user="alice", method="POST", collection=IDS["inbox"], status=202,
                        objects_accepted=3),
          "access log: alice's POST of 3 objects to the inbox (202) with her name and the collection")
    if high_view:
        check(access_logged(lines, user="sentinel", method="GET", endpoint="objects",
                            collection=IDS["high-confidence-ipv4"], status=200),
              "access log: sentinel's page of high-confidence-ipv4 (200)")
    check(access_logged(lines, user="sentinel", collection=IDS["inbox"], status=404)
          or access_logged(lines, user="sentinel", collection=IDS["inbox"], status=403),
          "access log: sentinel's refused read of the inbox")
    check(not any("Authorization" in line or "Basic " in line for line in lines),
          "access log: no credentials in it")


def served_collections():
    root = ApiRoot(f"https://{SVC_FQDN}/feeds/", verify=PKI.ca_crt, **basic("alice"))
    return {c.id: c for c in root.collections}


def test_5_change_collections():
    before = server_pod()
    col = kget("taxiicollection", "high-confidence-ipv4")
    col["spec"]["query"] = "type:indicator and ioc_type:ipv4-addr and confidence:>=40"
    new = {"apiVersion": "taxiway.dev/v1alpha1", "kind": "TaxiiCollection",
           "metadata": {"name": "e2e-malware", "namespace": NS},
           "spec": {"service": SVC, "title": "e2e malware", "query": "type:malware",
                    "sources": ["inbox"]}}
    gone = "shareable-30d" if "shareable-30d" in IDS else None
    t0 = time.monotonic()
    apply(json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {k: col[k] for k in ("apiVersion", "kind", "spec")} | {
            "metadata": {"name": "high-confidence-ipv4", "namespace": NS}}, new]}))
    if gone:
        kubectl("delete", "taxiicollection", gone, "-n", NS)
    new_id, _ = wait_for("the new collection's id",
                         lambda: collection_ids().get("e2e-malware"))

    def served():
        cols = served_collections()
        if new_id not in cols or (gone and IDS[gone] in cols):
            return None
        got = {o["id"] for o in all_objects(view("high-confidence-ipv4"))}
        return SEEN["low"] in got
    wait_for("the changes to be served", served)
    took = time.monotonic() - t0
    check(True, f"changed query, new collection{' and deleted collection' if gone else ''} "
                f"served {took:.1f} s after kubectl apply")
    IDS["e2e-malware"] = new_id
    objs = {o["id"] for o in all_objects(view("e2e-malware"))}
    check(SEEN["mal"] in objs, "the new collection serves what matches")
    after = server_pod()
    check(after and after[:2] == before[:2] and after[1] == 0,
          f"by the same pod, never restarted (uid {after and after[0]}, restarts {after and after[1]})")


XSOAR_JSON = {
    "E2E XSOAR malicious IPs": {"query": "type:IP and verdict:Malicious",
                                "description": "XSOAR: malicious IPs"},
    "E2E XSOAR malware": "type:Malware -tags:test",
}


def xsoar_config_map(collections):
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": "e2e-xsoar", "namespace": NS},
                       "data": {"collections.json": json.dumps(collections, indent=2)}})


def titles_served(who="alice"):
    root = ApiRoot(f"https://{SVC_FQDN}/feeds/", verify=PKI.ca_crt, **basic(who))
    return {c.title: c for c in root.collections}


def test_5c_xsoar_collections_from():
    """Issue 18: an XSOAR collections JSON in a ConfigMap, served to taxii2-client;
    an edit of the ConfigMap changes the collections without a pod restart."""
    before = server_pod()
    apply(xsoar_config_map(XSOAR_JSON))
    patch("taxiiservice", SVC, {"spec": {"collectionsFrom": {
        "configMapName": "e2e-xsoar", "read": ["group:soc"], "sources": ["inbox"]}}})
    try:
        def all_served():
            t = titles_served()
            return t if all(name in t for name in XSOAR_JSON) else None
        cols, took = wait_for("the XSOAR collections", all_served)
        check(True, f"both XSOAR collections listed to taxii2-client {took:.1f} s after "
                    "kubectl patch")
        ips = cols["E2E XSOAR malicious IPs"]
        check(ips.description == "XSOAR: malicious IPs", "the JSON's description is served")

        def ids_of(title):
            return {o["id"] for o in all_objects(titles_served()[title])}
        got, _ = wait_for("the malicious IPs", lambda: (lambda s: s if SEEN["high"] in s
                                                         else None)(ids_of(ips.title)))
        check(SEEN["high"] in got and SEEN["low"] not in got and SEEN["mal"] not in got,
              "type:IP and verdict:Malicious holds the confidence-85 IPv4 indicator only")
        got, _ = wait_for("the malware", lambda: (lambda s: s if SEEN["mal"] in s else None)(
            ids_of("E2E XSOAR malware")))
        check(got == {SEEN["mal"]}, "type:Malware -tags:test holds the malware only")
        status = kget("taxiiservice", SVC).get("status", {}).get("collectionsFrom", {})
        by_name = {c["name"]: c for c in status.get("collections", [])}
        check(status.get("served") == 2 and by_name.get(ips.title, {}).get("id") == ips.id,
              "status.collectionsFrom reports both, with the ids served")
        check("ioc_type:ipv4-addr" in (by_name.get(ips.title, {}).get("query") or ""),
              "status.collectionsFrom shows the native query")
        check(titles_served("sentinel").keys().isdisjoint(XSOAR_JSON),
              "collectionsFrom.read keeps them from users outside group:soc")

        edited = {ips.title: XSOAR_JSON[ips.title],
                  "E2E XSOAR phishing": "type:URL and tags:phishing"}
        apply(xsoar_config_map(edited))

        def followed():
            t = titles_served()
            return t if "E2E XSOAR phishing" in t and "E2E XSOAR malware" not in t else None
        cols, took = wait_for("the edited ConfigMap to be served", followed)
        check(cols[ips.title].id == ips.id,
              f"edited ConfigMap served {took:.1f} s later; unchanged names keep their ids")
        after = server_pod()
        check(after and before and after[:2] == before[:2],
              "no pod restart for a ConfigMap edit")
    finally:
        patch("taxiiservice", SVC, {"spec": {"collectionsFrom": None}})
        kubectl("delete", "configmap", "e2e-xsoar", "-n", NS, check=False)
    wait_for("the XSOAR collections to go",
             lambda: not set(titles_served()).intersection(["E2E XSOAR malicious IPs",
                                                            "E2E XSOAR phishing"]))


def test_5d_user_selector():
    """Issue 18: a labelled kubernetes.io/basic-auth Secret is a user within seconds;
    annotated locked it is refused; deleted it is refused."""
    url = f"https://{SVC_FQDN}/taxii2/"
    password = "e2e-selected-" + uuid.uuid4().hex[:12]

    def get():
        return requests.get(url, auth=("e2e-selected", password), verify=PKI.ca_crt,
                            headers={"Accept": "application/taxii+json;version=2.1"},
                            timeout=10).status_code
    patch("taxiiservice", SVC, {"spec": {"userSelector": {
        "matchLabels": {"taxiway.dev/e2e-user": "true"}}}})
    try:
        kubectl("create", "secret", "generic", "e2e-selected", "-n", NS,
                "--type=kubernetes.io/basic-auth", "--from-literal=username=e2e-selected",
                f"--from-literal=password={password}")
        kubectl("label", "secret", "e2e-selected", "-n", NS, "taxiway.dev/e2e-user=true")
        _, took = wait_for("the selected user to sign in", lambda: get() == 200)
        check(True, f"a labelled basic-auth Secret signs in {took:.1f} s after kubectl label")
        kubectl("annotate", "secret", "e2e-selected", "-n", NS, "taxiway.dev/locked=true")
        _, took = wait_for("the locked user to be refused", lambda: get() == 401)
        check(True, f"annotated taxiway.dev/locked=true it is refused ({took:.1f} s)")
        kubectl("annotate", "--overwrite", "secret", "e2e-selected", "-n", NS,
                "taxiway.dev/locked=false")
        wait_for("the unlocked user to sign in", lambda: get() == 200)
        kubectl("delete", "secret", "e2e-selected", "-n", NS)
        _, took = wait_for("the deleted user to be refused", lambda: get() == 401)
        check(True, f"its Secret deleted, it is refused ({took:.1f} s)")
        check(taxii_get(url, "alice").status_code == 200, "users[] still sign in")
    finally:
        kubectl("delete", "secret", "e2e-selected", "-n", NS, "--ignore-not-found", check=False)
        patch("taxiiservice", SVC, {"spec": {"userSelector": None}})


HUB = "e2e-hub"  # the TaxiiService test 5e pulls into


def feed_condition(name, type_):
    feed = kget("taxiifeed", name, check=False) or {}
    status = feed.get("status") or {}
    if status.get("observedGeneration") != feed.get("metadata", {}).get("generation"):
        return None, {}
    return condition(feed, type_), status


def test_5e_taxii_feed():
    """Issue 17: a TaxiiFeed in a second TaxiiService pulls the examples' inbox over
    HTTPS with the private CA into its own writable collection; taxii2-client reads the
    objects through the hub's Service; status Ready with the objects stored; a wrong
    credential is Degraded/Unauthorized with nothing lost, and recovers once fixed."""
    reader_password = "e2e-hub-reader-" + uuid.uuid4().hex[:12]
    hub_inbox = str(uuid.uuid4())
    alice = USERS["alice"]
    with open(PKI.ca_crt) as f:
        ca_pem = f.read()
    apply(json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/basic-auth",
         "metadata": {"name": "e2e-hub-reader", "namespace": NS},
         "stringData": {"username": "reader", "password": reader_password}},
        {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/basic-auth",
         "metadata": {"name": "e2e-feed-login", "namespace": NS,
                      "labels": {"taxiway.dev/feed-credentials": "true"}},
         "stringData": {"username": alice.get("username", "alice"),
                        "password": alice["password"]}},
        {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
         "metadata": {"name": "e2e-feed-ca", "namespace": NS},
         "stringData": {"ca.crt": ca_pem}},
        {"apiVersion": "taxiway.dev/v1alpha1", "kind": "TaxiiService",
         "metadata": {"name": HUB, "namespace": NS},
         "spec": {"title": "E2E hub", "versions": ["2.1"],
                  "apiRoots": [{"path": "hub", "title": "Hub"}],
                  "users": [{"secretName": "e2e-hub-reader"}],
                  "storage": {"size": "64Mi"},
                  "image": f"taxiway/server:{TAG}", "imagePullPolicy": "Never"}},
        {"apiVersion": "taxiway.dev/v1alpha1", "kind": "TaxiiCollection",
         "metadata": {"name": "e2e-hub-inbox", "namespace": NS},
         "spec": {"service": HUB, "id": hub_inbox, "title": "Partner objects",
                  "writable": True, "access": {"write": ["feed:e2e-partner"]}}},
        {"apiVersion": "taxiway.dev/v1alpha1", "kind": "TaxiiFeed",
         "metadata": {"name": "e2e-partner", "namespace": NS},
         "spec": {"service": HUB, "into": "e2e-hub-inbox",
                  "url": f"https://{SVC_FQDN}/feeds/", "collection": IDS["inbox"],
                  "interval": "20s", "credentials": {"secretName": "e2e-feed-login"},
                  "caSecretName": "e2e-feed-ca"}},
    ]}))
    try:
        def hub_ready():
            d = kget("deployment", HUB, check=False) or {}
            return (d.get("status") or {}).get("readyReplicas", 0) == 1
        wait_for("the hub's pod", hub_ready, timeout=180)
        hub_pod = server_pod(HUB)

        def feed_ready():
            ready, status = feed_condition("e2e-partner", "Ready")
            return status if ready and ready["status"] == "True" else None
        status, took = wait_for("the TaxiiFeed to be Ready", feed_ready, timeout=180)
        check(status.get("objectsStored", 0) >= 3 and status.get("lastSuccessTime"),
              f"TaxiiFeed Ready {took:.1f} s after the hub's pod, {status.get('objectsStored')} "
              "objects stored, lastSuccessTime set")
        ip = kget("service", HUB)["spec"]["clusterIP"]
        collection = Collection(f"http://{ip}/hub/collections/{hub_inbox}/",
                                user="reader", password=reader_password)
        got = {o["id"] for o in all_objects(collection)}
        check({SEEN["high"], SEEN["low"], SEEN["mal"]} <= got,
              f"taxii2-client reads the pulled objects through the hub's Service ({len(got)})")
        printed = kubectl("get", "taxiifeed", "e2e-partner", "-n", NS)
        check("True" in printed and "e2e-hub-inbox" in printed,
              "kubectl get taxiifeed shows Ready and the collection")

        # A wrong user name: Degraded/Unauthorized; fixed, Ready again; no pod restart.
        patch("secret", "e2e-feed-login", {"stringData": {"username": "e2e-nobody"}})

        def degraded():
            c, status = feed_condition("e2e-partner", "Degraded")
            return c if c and c["status"] == "True" else None
        c, took = wait_for("the feed to be Degraded", degraded, timeout=240)
        check(c["reason"] == "Unauthorized" and "401" in c["message"],
              f"a refused credential is Degraded/Unauthorized {took:.1f} s after the edit: "
              f"{c['message']}")
        check("e2e-nobody" not in c["message"] and alice["password"] not in c["message"],
              "the status holds no credential")
        patch("secret", "e2e-feed-login",
              {"stringData": {"username": alice.get("username", "alice")}})
        _, took = wait_for("the feed to recover", feed_ready, timeout=240)
        check(True, f"fixed, the feed is Ready again {took:.1f} s later")
        events = kubectl("get", "events", "-n", NS, "--field-selector",
                         "involvedObject.name=e2e-partner", "-o", "json", check=False)
        reasons = {e.get("reason") for e in json.loads(events or '{"items": []}')["items"]}
        check("Unauthorized" in reasons, f"a Warning Event said so ({sorted(reasons)})")
        got_after = {o["id"] for o in all_objects(collection)}
        check(got <= got_after, "nothing pulled before is lost")
        check(hub_pod and server_pod(HUB) == hub_pod, "no pod restart for any of it")
    finally:
        for kind, name in (("taxiifeed", "e2e-partner"), ("taxiicollection", "e2e-hub-inbox"),
                           ("taxiiservice", HUB), ("secret", "e2e-feed-login"),
                           ("secret", "e2e-feed-ca"), ("secret", "e2e-hub-reader")):
            kubectl("delete", kind, name, "-n", NS, "--ignore-not-found", "--wait=false",
                    check=False)



def test_6_tls_rotation_and_users():
    before = server_pod()
    old = served_fingerprint("127.0.0.1", NODE_PORT, "localhost")
    crt, key = PKI.issue("taxii-rotated", [f"DNS:{SVC_DNS}", f"DNS:{SVC_FQDN}",
                                           "DNS:localhost", "IP:127.0.0.1"])
    secret = kubectl("create", "secret", "tls", TLS_SECRET, "-n", NS, f"--cert={crt}",
                     f"--key={key}", "--dry-run=client", "-o", "json")
    kubectl("apply", "-f", "-", input=secret)
    new = fingerprint_pem(crt)
    check(old != new, "a new certificate")
    _, took = wait_for("the new certificate to be served", lambda: served_fingerprint(
        "127.0.0.1", NODE_PORT, "localhost") == new, timeout=max(SETTLE, 90))
    check(True, f"the rotated certificate is served {took:.1f} s after the Secret changed")

    # A user added, then their Secret deleted; sentinel disabled; partner locked.
    apply(json.dumps({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/basic-auth",
                      "metadata": {"name": "e2e-user-bob", "namespace": NS},
                      "stringData": {"username": "bob", "password": "bob-e2e-password"}}))
    USERS["bob"] = {"secret": "e2e-user-bob", "username": "bob", "password": "bob-e2e-password"}
    users = kget("taxiiservice", SVC)["spec"].get("users", [])
    users.append({"secretName": "e2e-user-bob", "groups": ["soc"]})
    patch("taxiiservice", SVC, {"spec": {"users": users}})
    url = f"https://{SVC_FQDN}/taxii2/"
    wait_for("bob to sign in", lambda: taxii_get(url, "bob").status_code == 200)
    check(True, "a new user signs in")
    for who in ("sentinel", "partner"):
        check(taxii_get(url, who).status_code == 200, f"{who} signs in")

    try:
        refuse_users(users, url, before)
    finally:
        # Back as they were, for the tests after this one.
        for u in users:
            u.pop("disabled", None)
            u.pop("locked", None)
        users = [u for u in users if u["secretName"] != "e2e-user-bob"]
        patch("taxiiservice", SVC, {"spec": {"users": users}})
    wait_for("sentinel back", lambda: taxii_get(url, "sentinel").status_code == 200)


def refuse_users(users, url, before):
    kubectl("delete", "secret", "e2e-user-bob", "-n", NS)
    for u in users:
        if u["secretName"] == USERS["sentinel"]["secret"]:
            u["disabled"] = True
        if u["secretName"] == USERS["partner"]["secret"]:
            u["locked"] = True
    patch("taxiiservice", SVC, {"spec": {"users": users}})
    for who, how in (("bob", "whose Secret was deleted"), ("sentinel", "who is disabled"),
                     ("partner", "who is locked")):
        _, took = wait_for(f"{who} to be refused",
                           lambda: taxii_get(url, who).status_code == 401)
        check(True, f"a user {how} is refused ({took:.1f} s)")
    check(taxii_get(url, "alice").status_code == 200, "the others still sign in")
    after = server_pod()
    check(after and after[:2] == before[:2], "no restart for certificate or user changes")


def test_8_invalid_query():
    before = server_pod()
    good = kget("taxiicollection", "e2e-malware")["spec"]["query"]
    patch("taxiicollection", "e2e-malware", {"spec": {"query": "type:malware and (name:"}})
    try:
        c, took = wait_for("QueryValid=False", lambda: (lambda c: c if (condition(
            c, "QueryValid") or {}).get("status") == "False" else None)(
            kget("taxiicollection", "e2e-malware")))
        msg = condition(c, "QueryValid").get("message", "")
        check(True, f"QueryValid=False in {took:.1f} s: {msg!r}")
        check(re.search(r"position|expected|column|offset|\d", msg or ""),
              "the message is the parser's (names where and what was expected)")
        time.sleep(3)  # long enough for a bad config to have been shipped, if it were
        check(server_pod()[:2] == before[:2], "same pod, no restart")
        objs = {o["id"] for o in all_objects(view("malware-context"))}
        check(SEEN["mal"] in objs, "the other collections are served as before")
        r = taxii_get(f"https://{SVC_FQDN}/feeds/collections/{IDS['e2e-malware']}/objects/")
        check(r.status_code == 200 and SEEN["mal"] in r.text,
              f"the collection keeps its previous, valid query ({r.status_code})")
        accepted = condition(kget("taxiicollection", "e2e-malware"), "Accepted") or {}
        check(accepted.get("status") == "True" and accepted.get("reason") == "ServingPreviousQuery",
              f"Accepted=True/ServingPreviousQuery: {accepted.get('message')!r}")
    finally:
        patch("taxiicollection", "e2e-malware", {"spec": {"query": good}})
    wait_for("QueryValid=True again", lambda: (condition(kget("taxiicollection", "e2e-malware"),
                                                          "QueryValid") or {}).get("status") == "True")


def test_7_pod_deleted_mid_ingest():
    acked, errors, stop = [], [], threading.Event()
    url = f"https://{SVC_FQDN}/feeds/collections/{IDS['inbox']}/objects/"
    u = USERS["alice"]

    def writer():
        n = 0
        while not stop.is_set():
            batch = [indicator(f"203.0.113.{(n + i) % 250}", 60 + (n + i) % 40) for i in range(10)]
            n += 10
            try:
                r = requests.post(url, json={"objects": batch}, verify=PKI.ca_crt, timeout=10,
                                  auth=(u.get("username", "alice"), u["password"]),
                                  headers={"Accept": "application/taxii+json;version=2.1",
                                           "Content-Type": "application/taxii+json;version=2.1"})
                if r.status_code == 202:
                    acked.extend(o["id"] for o in batch)
                else:
                    errors.append(r.status_code)
            except requests.RequestException as e:
                errors.append(type(e).__name__)
                time.sleep(0.2)
    old = server_pod()
    t = threading.Thread(target=writer, daemon=True)
    t.start()
    wait_for("some acknowledged writes", lambda: len(acked) >= 30, timeout=60)
    kubectl("delete", "pod", old[2], "-n", NS, "--wait=false")
    new, took = wait_for("a replacement pod", lambda: (lambda p: p if p and p[0] != old[0]
                                                       else None)(server_pod()), timeout=120)
    acked_at_swap = len(acked)
    wait_for("writes through the new pod", lambda: len(acked) > acked_at_swap + 20, timeout=60)
    stop.set()
    t.join(timeout=20)
    check(True, f"replacement pod ready {took:.1f} s after the delete; {len(acked)} objects "
                f"acknowledged with 202, {len(errors)} refused or failed while it was away")
    stored = {o["id"] for o in all_objects(inbox())}
    missing = set(acked) - stored
    check(not missing, f"every acknowledged object is served by the new pod ({len(missing)} missing)")


PROXY_HOST = "feeds.example.org"  # test 10b: a proxy that forwards X-Forwarded-*
PROXY_PATH = "/partner-feeds"
NGINX = {}


def start_nginx():
    """Debian's nginx as an Ingress controller runs: TLS terminated with the Ingress's
    certificate, Host and path prefix kept, X-Forwarded-* set, re-encrypting to the
    server's NodePort (verified against the test CA). One server block per host."""
    if NGINX:
        return
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(nginx):
        raise Skip("Debian's nginx is not installed")
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 443)) == 0:
            raise AssertionError("127.0.0.1:443 is taken; the stand-in Ingress controller needs it")
    crt, key = PKI.issue("ingress", [f"DNS:{INGRESS_HOST}", f"DNS:{PROXY_HOST}"])
    root = os.path.join(WORK, "nginx")
    os.makedirs(os.path.join(root, "logs"), exist_ok=True)

    def server(host, prefix):
        return f"""
  server {{
    listen 127.0.0.1:443 ssl;
    server_name {host};
    ssl_certificate {crt};
    ssl_certificate_key {key};
    location {prefix}/ {{
      proxy_pass https://127.0.0.1:{NODE_PORT};
      proxy_ssl_verify on;
      proxy_ssl_trusted_certificate {PKI.ca_crt};
      proxy_ssl_name localhost;
      proxy_ssl_server_name on;
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-Host $host;
      proxy_set_header X-Forwarded-Proto https;
      proxy_set_header X-Forwarded-Prefix {prefix};
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }}
  }}"""
    conf = os.path.join(root, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""
daemon off;
worker_processes 1;
error_log {root}/logs/error.log warn;
pid {root}/nginx.pid;
events {{ worker_connections 64; }}
http {{
  access_log {root}/logs/access.log;
  client_body_temp_path {root}/body; proxy_temp_path {root}/proxy;
  fastcgi_temp_path {root}/fastcgi; uwsgi_temp_path {root}/uwsgi; scgi_temp_path {root}/scgi;
{server(INGRESS_HOST, INGRESS_PATH)}
{server(PROXY_HOST, PROXY_PATH)}
}}
""")
    proc = subprocess.Popen([nginx, "-c", conf, "-p", root], stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(root, "logs", "stderr.log"), "w"))

    def stop():
        proc.terminate()
        proc.wait(timeout=10)
        NGINX.clear()
    CLEANUPS.append(stop)
    NGINX.update(proc=proc, crt=crt, key=key)
    # Like DNS records pointing at the ingress controller.
    STATIC_HOSTS[INGRESS_HOST] = STATIC_HOSTS[PROXY_HOST] = "127.0.0.1"
    wait_for("nginx on 127.0.0.1:443", lambda: socket.create_connection(("127.0.0.1", 443), 1),
             timeout=10)


def test_10_ingress():
    start_nginx()
    kubectl("create", "secret", "tls", "taxii-example-com-tls", "-n", NS,
            f"--cert={NGINX['crt']}", f"--key={NGINX['key']}", check=False)
    external = f"https://{INGRESS_HOST}{INGRESS_PATH}"
    patch("taxiiservice", SVC, {"spec": {"ingress": {
        "className": "nginx", "host": INGRESS_HOST, "path": INGRESS_PATH,
        "tlsSecretName": "taxii-example-com-tls",
        "annotations": {"nginx.ingress.kubernetes.io/backend-protocol": "HTTPS"}}}})
    ing, _ = wait_for("the Ingress", lambda: kget("ingress", SVC, check=False))
    rule = ing["spec"]["rules"][0]
    check(rule["host"] == INGRESS_HOST, f"Ingress host {rule['host']}")
    paths = [p["path"] for p in rule["http"]["paths"]]
    check(any(p.rstrip("/") == INGRESS_PATH for p in paths), f"Ingress path {paths}")
    tls = ing["spec"].get("tls") or [{}]
    check(tls[0].get("secretName") == "taxii-example-com-tls" and INGRESS_HOST in tls[0].get("hosts", []),
          f"Ingress TLS Secret {tls[0].get('secretName')} for {tls[0].get('hosts')}")
    check(ing["spec"].get("ingressClassName") == "nginx", "IngressClass nginx")

    def external_urls():
        roots = taxii_get(f"{external}/taxii2/").json().get("api_roots") or []
        return roots and all(r.startswith(external) for r in roots)
    wait_for("discovery through nginx with external URLs", external_urls)
    _, _, cols = walk(f"{external}/taxii2/", f"{external}/", basic("alice"), verify=PKI.ca_crt)
    inbox_ = next(c for c in cols if c.id == IDS["inbox"])
    status = inbox_.add_objects({"objects": [indicator("192.0.2.10", 90)]})
    check(status.status == "complete" and status.url.startswith(external),
          f"add_objects and its status through the Ingress: {status.url}")
    eps = json.dumps((kget("taxiiservice", SVC).get("status") or {}).get("endpoints") or {})
    check(external in eps, f"the TaxiiService status names the external URL: {eps}")


def test_10b_forwarded_headers():
    """Without an external URL, X-Forwarded-* count only from a configured trusted proxy."""
    start_nginx()
    drop_external_url()
    direct = f"https://127.0.0.1:{NODE_PORT}"
    forged = {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http",
              "X-Forwarded-Prefix": "/evil"}

    def host_based():
        r = taxii_get(f"{direct}/taxii2/", headers=forged)
        roots = r.json().get("api_roots") or []
        return roots and all(u.startswith(f"{direct}/") for u in roots)
    wait_for("URLs from the Host header, forged X-Forwarded-* ignored", host_based)
    check(True, "X-Forwarded-* from an untrusted peer are ignored (not trusted by default)")

    # NodePort traffic from the host reaches the pod from the node's address.
    patch("taxiiservice", SVC, {"spec": {"trustedProxies": [f"{NODE_IP}/32"]}})
    proxied = f"https://{PROXY_HOST}{PROXY_PATH}"

    def forwarded():
        roots = taxii_get(f"{proxied}/taxii2/").json().get("api_roots") or []
        return roots and all(u.startswith(f"{proxied}/") for u in roots)
    _, took = wait_for("URLs from X-Forwarded-* of the trusted proxy", forwarded)
    check(True, f"with trustedProxies, the proxy's X-Forwarded-Host/Proto/Prefix make the URLs "
                f"({took:.1f} s)")
    walk(f"{proxied}/taxii2/", f"{proxied}/", basic("alice"), verify=PKI.ca_crt)


SCALE = "scale"  # test 11's TaxiiService


def test_11_postgres_rolling_update():
    """Three replicas on PostgreSQL (on the host, reached at the docker0 address), then
    a rolling image update while a writer POSTs and a taxii2-client poller pulls the
    manifest incrementally from X-TAXII-Date-Added order: no request fails, the poller
    sees every acknowledged object."""
    pod_url = os.environ.get("TAXIWAY_E2E_PG_POD_URL")
    if not pod_url:
        raise AssertionError("TAXIWAY_E2E_PG_POD_URL is not set: host PostgreSQL did not start")
    kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": f"{SCALE}-db", "namespace": NS},
        "stringData": {"uri": pod_url}}))
    inbox_id = str(uuid.uuid4())
    auth_user = USERS["alice"].get("username", "alice")
    kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "taxiway.dev/v1alpha1", "kind": "TaxiiService",
        "metadata": {"name": SCALE, "namespace": NS},
        "spec": {
            "title": "Scale-out feeds", "versions": ["2.1"],
            "apiRoots": [{"path": "feeds", "title": "Feeds"}],
            "users": [{"secretName": USERS["alice"]["secret"]}],
            "storage": {"type": "postgres",
                        "postgres": {"secretName": f"{SCALE}-db", "tls": "disable", "poolSize": 4}},
            "replicas": 3,
            "image": f"taxiway/server:{TAG}", "imagePullPolicy": "Never"}}))
    kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "taxiway.dev/v1alpha1", "kind": "TaxiiCollection",
        "metadata": {"name": f"{SCALE}-inbox", "namespace": NS},
        "spec": {"service": SCALE, "id": inbox_id, "title": "Scale inbox", "writable": True,
                 "access": {"read": [auth_user], "write": [auth_user]}}}))

    def ready_replicas():
        d = kget("deployment", SCALE, check=False) or {}
        st = d.get("status") or {}
        return st.get("readyReplicas", 0) == 3 and st.get("updatedReplicas", 0) == 3 \
            and st.get("replicas", 0) == 3
    _, took = wait_for("3 ready replicas on PostgreSQL", ready_replicas, timeout=180)
    check(True, f"3 replicas ready on PostgreSQL in {took:.1f} s")
    check(not exists("persistentvolumeclaim", f"{SCALE}-data"), "no PVC on PostgreSQL")
    pdb = kubectl("get", "poddisruptionbudget", SCALE, "-n", NS, "-o", "json", check=False)
    check(pdb and json.loads(pdb)["spec"].get("maxUnavailable") == 1,
          "a PodDisruptionBudget allows one pod down at a time")

    ip = kget("service", SCALE)["spec"]["clusterIP"]
    base = f"http://{ip}/feeds/collections/{inbox_id}/"
    u = USERS["alice"]
    auth = (u.get("username", "alice"), u["password"])
    acked, write_errors, poll_errors, seen, stop = [], [], [], set(), threading.Event()
    polls = [0]

    def writer():
        session = requests.Session()
        n = 0
        while not stop.is_set():
            batch = [indicator(f"198.18.{(n + i) // 250 % 250}.{(n + i) % 250}", 70)
                     for i in range(5)]
            n += 5
            try:
                r = session.post(base + "objects/", json={"objects": batch}, auth=auth, timeout=15,
                                 headers={"Accept": "application/taxii+json;version=2.1",
                                          "Content-Type": "application/taxii+json;version=2.1"})
                if r.status_code == 202 and r.json().get("success_count") == 5:
                    acked.extend(o["id"] for o in batch)
                else:
                    write_errors.append(f"{r.status_code} {r.text[:200]}")
            except requests.RequestException as e:
                write_errors.append(repr(e))
            time.sleep(0.05)

    col = Collection(base, user=auth[0], password=auth[1])
    position = {"last": None}

    def poll_once():
        filters = {"added_after": position["last"]} if position["last"] else {}
        for page in as_pages(col.get_manifest, per_request=500, **filters):
            for entry in page.get("objects", []):
                seen.add(entry["id"])
                if position["last"] is None or entry["date_added"] > position["last"]:
                    position["last"] = entry["date_added"]
        polls[0] += 1

    def poller():
        while not stop.is_set():
            try:
                poll_once()
            except Exception as e:  # noqa: BLE001 - every failed poll is counted
                poll_errors.append(repr(e))
            time.sleep(0.3)

    threads = [threading.Thread(target=writer, daemon=True),
               threading.Thread(target=poller, daemon=True)]
    for t in threads:
        t.start()
    wait_for("traffic before the update", lambda: len(acked) >= 50 and polls[0] >= 3, timeout=60)
    before = {p["metadata"]["name"] for p in kget("pods", selector=f"app.kubernetes.io/instance={SCALE}")["items"]}
    subprocess.run(["docker", "tag", f"taxiway/server:{TAG}", f"taxiway/server:{TAG}-rolled"],
                   check=True, capture_output=True)
    patch("taxiiservice", SCALE, {"spec": {"image": f"taxiway/server:{TAG}-rolled"}})

    def rolled():
        pods = kget("pods", selector=f"app.kubernetes.io/instance={SCALE}")["items"]
        names = {p["metadata"]["name"] for p in pods}
        return ready_replicas() and not (names & before) and all(
            p["spec"]["containers"][0]["image"].endswith("-rolled") for p in pods)
    _, took = wait_for("the rolling update", rolled, timeout=300)
    acked_at_end = len(acked)
    wait_for("traffic after the update", lambda: len(acked) > acked_at_end + 30, timeout=60)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    poll_once()  # one last pass after the writer stopped
    check(True, f"rolled 3 pods in {took:.1f} s under traffic: {len(acked)} objects acknowledged")
    check(not write_errors, f"no failed write during the rollout ({len(write_errors)}: {write_errors[:3]})")
    check(not poll_errors, f"no failed poll during the rollout ({len(poll_errors)}: {poll_errors[:3]})")
    missed = set(acked) - seen
    check(not missed, f"the incremental poller saw every acknowledged object ({len(missed)} missed)")
    # Test 14 scales it, then deletes it.


# ----------------------------------------------------------------------- issue 19

SERVER_IN_POD = "/usr/local/bin/taxiway-server"  # the image's binary
DATA_DIR = "/var/lib/taxiway"  # where the operator mounts the store (`<name>-data`)
CONFIG_DIR = "/etc/taxiway/config"  # and the rendered configuration
HOST_SERVER = os.environ.get("TAXIWAY_E2E_SERVER_BIN") or os.path.join(
    REPO, "target", "release", "taxiway-server")


def readable_collections():
    """{collection id: set of object ids} of every collection alice may read, as the
    examples' server serves them now."""
    return {cid: {o["id"] for o in all_objects(col)}
            for cid, col in served_collections().items() if col.can_read}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def host_server(config_dir, credentials_dir, data_dir):
    """The host's release binary serving a data directory on loopback (plain HTTP),
    until the block ends."""
    port, admin = free_port(), free_port()
    log_path = os.path.join(os.path.dirname(data_dir), "serve.log")
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen(
            [HOST_SERVER, "serve", f"--config-dir={config_dir}",
             f"--credentials-dir={credentials_dir}", f"--data-dir={data_dir}",
             f"--listen=127.0.0.1:{port}", f"--admin-listen=127.0.0.1:{admin}"],
            stdout=log_file, stderr=subprocess.STDOUT)
    try:
        def ready():
            if proc.poll() is not None:
                raise AssertionError(f"the host server exited {proc.returncode}: "
                                     + open(log_path).read()[-2000:])
            return requests.get(f"http://127.0.0.1:{admin}/readyz", timeout=2).status_code == 200
        wait_for("the host server's /readyz", ready, timeout=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_12_backup_streamed_out_of_the_pod():
    """`kubectl exec deploy/<name> -- taxiway-server backup --output=-` streams a snapshot
    out of the scratch image; the host's binary restores it into a fresh data directory
    and, with the service's rendered configuration and credentials, serves the same
    objects in every collection."""
    if not os.access(HOST_SERVER, os.X_OK):
        raise AssertionError(f"no host binary at {HOST_SERVER} (TAXIWAY_E2E_SERVER_BIN)")
    before = readable_collections()
    check(before.get(IDS["inbox"]), f"objects to back up: {sum(map(len, before.values()))} "
                                    f"in {len(before)} collections")
    root = tempfile.mkdtemp(prefix="backup-", dir=WORK)
    backup = os.path.join(root, f"taxiway-{SVC}.db")
    # docs/operations.md, "Backup > On Kubernetes", as written there.
    with open(backup, "wb") as out:
        p = subprocess.run([KUBECTL, "-n", NS, "exec", f"deploy/{SVC}", "--",
                            SERVER_IN_POD, "backup", f"--data-dir={DATA_DIR}", "--output=-"],
                           stdout=out, stderr=subprocess.PIPE, timeout=120)
    err = p.stderr.decode(errors="replace").strip()
    size = os.path.getsize(backup)
    check(p.returncode == 0 and "backed up" in err,
          f"kubectl exec ... backup --output=- exits 0 ({size} bytes): {err[-300:]}")
    with open(backup, "rb") as f:
        check(f.read(16) == b"SQLite format 3\x00",
              "standard output carried the database and nothing else")

    # A fresh store from the backup, served by the host's binary with the service's
    # configuration and credentials (docs/operations.md, "Check a backup").
    config, creds, data = (os.path.join(root, d) for d in ("config", "credentials", "data"))
    os.makedirs(config)
    os.makedirs(creds)
    with open(os.path.join(config, "taxiway.toml"), "w") as f:
        f.write(kubectl("-n", NS, "get", "configmap", f"{SVC}-config",
                        "-o", "jsonpath={.data.taxiway\\.toml}"))
    with open(os.path.join(creds, "users.toml"), "wb") as f:
        f.write(base64.b64decode(kubectl("-n", NS, "get", "secret", f"{SVC}-credentials",
                                         "-o", "jsonpath={.data.users\\.toml}")))
    p = subprocess.run([HOST_SERVER, "restore", f"--data-dir={data}", f"--input={backup}"],
                       capture_output=True, text=True, timeout=120)
    check(p.returncode == 0 and "restored" in p.stderr + p.stdout,
          f"taxiway-server restore --input=<the backup> into a fresh data directory: "
          f"{(p.stderr + p.stdout).strip()[-300:]}")
    with host_server(config, creds, data) as base:
        root_ = ApiRoot(f"{base}/feeds/", **basic("alice"))
        after = {c.id: {o["id"] for o in all_objects(c)} for c in root_.collections if c.can_read}
    check(after.keys() == before.keys(), f"the restored store serves the same collections "
                                         f"({len(after)})")
    differ = [cid for cid in before if before[cid] != after.get(cid)]
    check(not differ, f"and the same objects in each ({sum(map(len, after.values()))} in all; "
                      f"differing: {differ})")
    BACKUP["file"], BACKUP["objects"] = backup, before


BACKUP = {}


def test_12b_restore_on_kubernetes():
    """docs/operations.md, "Restore > On Kubernetes": the TaxiiService scaled to 0, the
    backup restored from standard input by a one-off pod of the server image mounting
    `<name>-data`, scaled back to 1: the pod serves what the backup held."""
    if not BACKUP:
        raise Skip("test 12 made no backup")
    image = kubectl("-n", NS, "get", f"deploy/{SVC}", "-o",
                    "jsonpath={.spec.template.spec.containers[0].image}")
    # Something stored after the backup: the restore takes the store back before it.
    later = indicator("192.0.2.99", 10)
    check(inbox().add_objects({"objects": [later]}).success_count == 1,
          "an object stored after the backup")
    selector = f"app.kubernetes.io/name=taxiway-server,app.kubernetes.io/instance={SVC}"
    kubectl("-n", NS, "scale", f"taxiiservice/{SVC}", "--replicas=0")
    try:
        # (kubectl wait says "no matching resources" if they are gone already.)
        kubectl("-n", NS, "wait", "--for=delete", "pod", "-l", selector, "--timeout=120s",
                timeout=150, check=False)
        wait_for("no server pod", lambda: not kget("pods", selector=selector)["items"],
                 timeout=60)
        overrides = {"spec": {
            "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532,
                                "fsGroup": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": f"{SVC}-restore", "image": image,
                "args": ["restore", f"--data-dir={DATA_DIR}", "--input=-"],
                "stdin": True, "stdinOnce": True,
                "securityContext": {"allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]}},
                "volumeMounts": [{"name": "data", "mountPath": DATA_DIR}]}],
            "volumes": [{"name": "data",
                         "persistentVolumeClaim": {"claimName": f"{SVC}-data"}}]}}
        with open(BACKUP["file"], "rb") as backup:
            p = subprocess.run([KUBECTL, "-n", NS, "run", f"{SVC}-restore", "-i", "--rm",
                                "--restart=Never", f"--image={image}",
                                f"--overrides={json.dumps(overrides)}"],
                               stdin=backup, capture_output=True, timeout=180)
        out = (p.stdout + p.stderr).decode(errors="replace").strip()
        check(p.returncode == 0 and "restored" in out,
              f"kubectl run -i --rm ... restore --input=- < backup: {out[-400:]}")
    finally:
        kubectl("-n", NS, "delete", "pod", f"{SVC}-restore", "--ignore-not-found",
                "--wait=false", check=False)
        kubectl("-n", NS, "scale", f"taxiiservice/{SVC}", "--replicas=1")
    wait_for("the server pod back", server_pod, timeout=120)
    # Reachable through the Service once kube-proxy has the new endpoint.
    inbox_now, _ = wait_for("the Service to route to the pod",
                            lambda: {o["id"] for o in all_objects(inbox())}, timeout=60)
    check(inbox_now == BACKUP["objects"][IDS["inbox"]],
          f"the pod serves the backup's inbox ({len(inbox_now)} objects), without the later one")


def test_13_import_from_stdin():
    """`kubectl exec -i deploy/<name> -- taxiway-server import ... -` loads a bundle sent
    on standard input into the running pod's store; taxii2-client then gets it, from
    the inbox and from the view its query matches."""
    objs = [indicator("198.51.100.130", 95), indicator("198.51.100.131", 20),
            json.loads(stix2.Malware(name="e2e-import-malware", is_family=True).serialize())]
    bundle = os.path.join(WORK, "import-bundle.json")
    with open(bundle, "w") as f:
        json.dump({"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": objs}, f)
    # docs/operations.md, "Bulk load > On Kubernetes", as written there.
    with open(bundle, "rb") as f:
        p = subprocess.run([KUBECTL, "-n", NS, "exec", "-i", f"deploy/{SVC}", "--",
                            SERVER_IN_POD, "import", f"--config-dir={CONFIG_DIR}",
                            f"--data-dir={DATA_DIR}", "--collection=inbox", "-"],
                           stdin=f, capture_output=True, timeout=120)
    out = (p.stdout + p.stderr).decode(errors="replace").strip()
    check(p.returncode == 0 and re.search(r"imported 3 objects into .*inbox.* \(0 rejected\)", out),
          f"kubectl exec -i ... import - < bundle.json: {out[-300:]}")
    wanted = {o["id"] for o in objs}
    got, took = wait_for("the imported objects served", lambda: (lambda s: s if wanted <= s
                         else None)({o["id"] for o in all_objects(inbox())}))
    check(True, f"taxii2-client gets the 3 imported objects from the inbox ({took:.1f} s)")
    if "high-confidence-ipv4" in IDS:
        got, _ = wait_for("the view", lambda: (lambda s: s if objs[0]["id"] in s else None)(
            {o["id"] for o in all_objects(view("high-confidence-ipv4", "sentinel"))}))
        check(objs[1]["id"] not in got,
              "the imported confidence-95 indicator is in high-confidence-ipv4, the 20 one is not")
    bad = subprocess.run([KUBECTL, "-n", NS, "exec", "-i", f"deploy/{SVC}", "--",
                          SERVER_IN_POD, "import", f"--config-dir={CONFIG_DIR}",
                          f"--data-dir={DATA_DIR}", "--collection=inbox", "-"],
                         input=b'{"type": "bundle", "objects": [', capture_output=True,
                         timeout=120)
    check(bad.returncode != 0, "a bundle cut short is refused (non-zero exit)")


def test_14_kubectl_scale():
    """`kubectl scale taxiiservice` on test 11's service on PostgreSQL: the scale
    subresource moves spec.replicas, the Deployment and status.replicas follow, the
    PodDisruptionBudget goes at one replica and comes back at two."""
    if not exists("taxiiservice", SCALE):
        raise AssertionError(f"test 11's TaxiiService {SCALE} is not there")
    scale_url = f"/apis/taxiway.dev/v1alpha1/namespaces/{NS}/taxiiservices/{SCALE}/scale"

    def at(n):
        def settled():
            ts = kget("taxiiservice", SCALE)
            d = kget("deployment", SCALE)
            st = d.get("status") or {}
            return (ts["spec"].get("replicas") == n and d["spec"].get("replicas") == n
                    and st.get("replicas", 0) == n and st.get("readyReplicas", 0) == n
                    and st.get("updatedReplicas", 0) == n
                    and (ts.get("status") or {}).get("replicas") == n)
        return settled
    try:
        for n in (1, 2):
            out = kubectl("-n", NS, "scale", "taxiiservice", SCALE, f"--replicas={n}")
            check("scaled" in out, f"kubectl scale taxiiservice {SCALE} --replicas={n}: {out.strip()}")
            _, took = wait_for(f"{n} ready replicas", at(n), timeout=120)
            check(True, f"spec.replicas, the Deployment and status.replicas at {n} ({took:.1f} s)")
            scale = json.loads(kubectl("get", "--raw", scale_url))
            check(scale["spec"]["replicas"] == n and scale["status"]["replicas"] == n
                  and f"app.kubernetes.io/instance={SCALE}" in scale["status"].get("selector", ""),
                  f"the Scale subresource: {scale['spec']} {scale['status']}")
            wait_for(f"the PodDisruptionBudget {'there' if n > 1 else 'gone'}",
                     lambda: has_budget(SCALE) == (n > 1))
            check(True, f"a PodDisruptionBudget {'at 2 replicas' if n > 1 else 'no more at 1 replica'}")
    finally:
        kubectl("delete", "taxiiservice", SCALE, "-n", NS, "--wait=false", check=False)
        kubectl("delete", "taxiicollection", f"{SCALE}-inbox", "-n", NS, "--wait=false",
                check=False)


def has_budget(name):
    return bool(kubectl("get", "poddisruptionbudget", name, "-n", NS, "-o", "name",
                        "--ignore-not-found").strip())


TAINT_KEY = "taxiway.dev/e2e-dedicated"
PLACED = "placed"  # test 15's TaxiiService


def test_15_placement():
    """A custom NoSchedule taint on the (only) node: a pod without a matching toleration
    stays Pending; a TaxiiService with the toleration and the other placement and
    identity fields gets a Ready pod that carries them. The taint goes in any case."""
    node = kget("nodes", ns=None)["items"][0]
    node_name = node["metadata"]["name"]
    hostname = node["metadata"]["labels"].get("kubernetes.io/hostname", node_name)
    apply(json.dumps({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                      "metadata": {"name": "taxiway-e2e"}, "value": 1000,
                      "description": "test 15 of the end-to-end test"}))
    apply(json.dumps({"apiVersion": "v1", "kind": "ServiceAccount",
                      "metadata": {"name": f"{PLACED}-server", "namespace": NS}}))
    kubectl("-n", NS, "create", "secret", "docker-registry", "e2e-registry",
            "--docker-server=registry.example", "--docker-username=e2e",
            "--docker-password=e2e", check=False)
    unplaced = f"e2e-untolerated-{uuid.uuid4().hex[:6]}"
    kubectl("taint", "nodes", node_name, f"{TAINT_KEY}=taxii:NoSchedule")
    try:
        apply(json.dumps({"apiVersion": "v1", "kind": "Pod",
                          "metadata": {"name": unplaced, "namespace": NS},
                          "spec": {"restartPolicy": "Never", "containers": [{
                              "name": "c", "image": BASE_IMAGE, "imagePullPolicy": "Never",
                              "command": ["sleep", "60"]}]}}))
        apply(json.dumps({
            "apiVersion": "taxiway.dev/v1alpha1", "kind": "TaxiiService",
            "metadata": {"name": PLACED, "namespace": NS},
            "spec": {
                "title": "Placed feeds", "versions": ["2.1"],
                "apiRoots": [{"path": "feeds", "title": "Feeds"}],
                "users": [{"secretName": USERS["alice"]["secret"]}],
                "storage": {"size": "100Mi"},
                "image": f"taxiway/server:{TAG}", "imagePullPolicy": "Never",
                "nodeSelector": {"kubernetes.io/hostname": hostname},
                "tolerations": [{"key": TAINT_KEY, "operator": "Equal", "value": "taxii",
                                 "effect": "NoSchedule"}],
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [{
                        "key": "kubernetes.io/hostname", "operator": "In",
                        "values": [hostname]}]}]}}},
                "topologySpreadConstraints": [{
                    "maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                    "whenUnsatisfiable": "DoNotSchedule",
                    "labelSelector": {"matchLabels": {"app.kubernetes.io/instance": PLACED}}}],
                "podLabels": {"team": "soc"},
                "podAnnotations": {"sidecar.istio.io/inject": "false"},
                "priorityClassName": "taxiway-e2e",
                "imagePullSecrets": [{"name": "e2e-registry"}],
                "serviceAccountName": f"{PLACED}-server"}}))

        def ready_pod():
            pods = kget("pods", selector=f"app.kubernetes.io/instance={PLACED}")["items"]
            for p in pods:
                cs = (p.get("status") or {}).get("containerStatuses") or []
                if cs and all(c.get("ready") for c in cs) and not p["metadata"].get("deletionTimestamp"):
                    return p
            return None
        pod, took = wait_for("the tolerating server pod Ready on the tainted node", ready_pod,
                             timeout=120)
        check(pod["spec"].get("nodeName") == node_name,
              f"the pod with the toleration runs on the tainted node {node_name} ({took:.1f} s)")
        spec, meta = pod["spec"], pod["metadata"]
        check(any(t.get("key") == TAINT_KEY and t.get("value") == "taxii"
                  and t.get("effect") == "NoSchedule" for t in spec.get("tolerations") or []),
              "it carries the toleration")
        check(spec.get("nodeSelector") == {"kubernetes.io/hostname": hostname}, "the nodeSelector")
        check("nodeAffinity" in (spec.get("affinity") or {}), "the node affinity")
        check((spec.get("topologySpreadConstraints") or [{}])[0].get("topologyKey")
              == "kubernetes.io/hostname", "the topologySpreadConstraints")
        check(meta["labels"].get("team") == "soc"
              and meta["labels"].get("app.kubernetes.io/instance") == PLACED,
              "the podLabels beside the operator's own")
        check(meta.get("annotations", {}).get("sidecar.istio.io/inject") == "false",
              "the podAnnotations")
        check(spec.get("priorityClassName") == "taxiway-e2e" and spec.get("priority") == 1000,
              f"priorityClassName, resolved to priority {spec.get('priority')}")
        check(spec.get("serviceAccountName") == f"{PLACED}-server", "the serviceAccountName")
        check(spec.get("imagePullSecrets") == [{"name": "e2e-registry"}], "the imagePullSecrets")

        cond, _ = wait_for("the scheduler's verdict on the untolerated pod",
                           lambda: condition(kget("pod", unplaced), "PodScheduled"))
        phase = kget("pod", unplaced)["status"].get("phase")
        check(phase == "Pending" and cond["status"] == "False"
              and cond.get("reason") == "Unschedulable",
              f"a pod without the toleration stays {phase}: {cond.get('message')}")
    finally:
        kubectl("taint", "nodes", node_name, f"{TAINT_KEY}:NoSchedule-", check=False)
        kubectl("delete", "pod", unplaced, "-n", NS, "--wait=false", check=False)
        kubectl("delete", "taxiiservice", PLACED, "-n", NS, "--wait=false", check=False)
    taints = kget("node", node_name, ns=None)["spec"].get("taints") or []
    check(not any(t.get("key") == TAINT_KEY for t in taints), "the taint is removed again")
    kubectl("delete", "priorityclass", "taxiway-e2e", "--wait=false", check=False)


def test_9_rollout_upgrade_gc_uninstall():
    before = server_pod()
    patch("taxiiservice", SVC, {"spec": {"resources": {
        "requests": {"cpu": "150m", "memory": "200Mi"}, "limits": {"memory": "900Mi"}}}})
    new, took = wait_for("the rolled pod", lambda: (lambda p: p if p and p[0] != before[0]
                                                    else None)(server_pod()), timeout=120)
    pod = kget("pod", new[2])
    check(pod["spec"]["containers"][0]["resources"]["limits"]["memory"] == "900Mi",
          f"a resources change rolled the Deployment ({took:.1f} s)")
    if SEEN:
        # The Service reaches the rolled pod once kube-proxy has its endpoint, a moment
        # after the pod is ready (until then: "No route to host" to the old pod's IP).
        objs, _ = wait_for("the Service to route to the rolled pod",
                           lambda: {o["id"] for o in all_objects(inbox())}, timeout=60)
        check(SEEN["high"] in objs, "the rolled pod serves the stored objects")

    chart = os.path.join(REPO, "charts", "taxiway")
    operator_log()
    op_before = {p["metadata"]["uid"] for p in kget("pods", ns=OP_NS,
                 selector=f"app.kubernetes.io/instance={RELEASE}")["items"]}
    p = subprocess.run([HELM, "upgrade", RELEASE, chart, "-n", OP_NS, "--reuse-values",
                        "--set", "log.level=debug", "--wait", "--timeout", "120s"],
                       capture_output=True, text=True, timeout=180)
    check(p.returncode == 0, f"helm upgrade: {p.stderr.strip() or 'ok'}")
    ops = kget("pods", ns=OP_NS, selector=f"app.kubernetes.io/instance={RELEASE}")["items"]
    check(any(o["metadata"]["uid"] not in op_before for o in ops), "the operator was rolled")
    wait_for("the TaxiiService still Ready after the upgrade", lambda: (condition(
        kget("taxiiservice", SVC), "Ready") or {}).get("status") == "True")

    owned = [("deployment", SVC), ("service", SVC), ("configmap", f"{SVC}-config"),
             ("secret", f"{SVC}-credentials"), ("persistentvolumeclaim", f"{SVC}-data")]
    if exists("ingress", SVC):
        owned.append(("ingress", SVC))
    owned = [o for o in owned if exists(*o)]
    check(len(owned) >= 4, f"owned objects before the delete: {[o[1] + ' ' + o[0] for o in owned]}")
    kubectl("delete", "taxiiservice", SVC, "-n", NS)
    _, took = wait_for("garbage collection", lambda: not any(exists(*o) for o in owned), timeout=60)
    check(True, f"deleting the TaxiiService removed everything it owned ({took:.1f} s)")
    check(exists("secret", USERS["alice"]["secret"]), "users' Secrets are theirs and stay")

    operator_log()
    p = subprocess.run([HELM, "uninstall", RELEASE, "-n", OP_NS, "--wait", "--timeout", "60s"],
                       capture_output=True, text=True, timeout=120)
    check(p.returncode == 0, f"helm uninstall: {p.stderr.strip() or 'ok'}")
    wait_for("the operator to go", lambda: not kget("pods", ns=OP_NS,
             selector=f"app.kubernetes.io/instance={RELEASE}")["items"], timeout=60)
    crds = kubectl("get", "crd", "-o", "name")
    check("taxiiservices.taxiway.dev" in crds and "taxiicollections.taxiway.dev" in crds,
          "helm uninstall keeps the CRDs")
    check(bool(kget("taxiicollections")["items"]), "and the users' TaxiiCollections")


def main():
    started = time.monotonic()
    ok = run_test(1, "helm install: operator Ready under the chart's ServiceAccount and RBAC",
                  test_1_helm_install)
    if ok:
        ok = run_test(2, "examples/k8s: TaxiiService Ready, pod Running, collections valid",
                      test_2_examples)
    if ok:
        if run_test(3, "consumers: ClusterIP, NodePort, port-forward, in-cluster pod",
                    test_3_consumers):
            run_test("3b", "TAXII 2.0 side by side with 2.1", test_3b_taxii20)
            run_test(4, "objects POSTed to the writable collection appear in the views",
                     test_4_ingest_and_views)
            run_test(5, "changed, new and deleted collections served by the same pod",
                     test_5_change_collections)
            run_test("5c", "an XSOAR collections JSON in a ConfigMap, served and followed "
                     "without a restart", test_5c_xsoar_collections_from)
            run_test("5d", "spec.userSelector: a labelled Secret signs in, locked or deleted "
                     "it is refused", test_5d_user_selector)
            run_test("5e", "a TaxiiFeed pulls the inbox over HTTPS into another service; "
                     "Degraded on a refused credential, Ready again once fixed",
                     test_5e_taxii_feed)
            run_test(6, "TLS rotation and user changes without a restart",
                     test_6_tls_rotation_and_users)
            run_test(8, "an invalid query: QueryValid=False, the old config keeps serving",
                     test_8_invalid_query)
            run_test(7, "server pod deleted mid-ingest: nothing acknowledged is lost",
                     test_7_pod_deleted_mid_ingest)
            run_test(10, "Ingress and a reverse proxy in front: external URLs",
                     test_10_ingress)
            run_test("10b", "X-Forwarded-* only from a trusted proxy", test_10b_forwarded_headers)
            run_test(12, "backup streamed out of the pod restores into a fresh store with the "
                     "same objects", test_12_backup_streamed_out_of_the_pod)
            run_test("12b", "the documented restore on Kubernetes (scaled to 0, a one-off pod)",
                     test_12b_restore_on_kubernetes)
            run_test(13, "import - loads a bundle into the pod's store", test_13_import_from_stdin)
            run_test(11, "3 replicas on PostgreSQL: a rolling update under a writer and a "
                     "poller fails no request and misses no object", test_11_postgres_rolling_update)
            run_test(14, "kubectl scale on the TaxiiService on PostgreSQL", test_14_kubectl_scale)
            run_test(15, "placement: a toleration lets the pod run on a tainted node; the "
                     "placement and identity fields reach the pod", test_15_placement)
        run_test(9, "rollout, helm upgrade, garbage collection, helm uninstall",
                 test_9_rollout_upgrade_gc_uninstall)
    # The operator must never have been refused anything by RBAC.
    logs = operator_log() if RESULTS["passed"] else ""
    if logs:
        forbidden = [line for line in logs.splitlines() if "forbidden" in line.lower()]
        if forbidden:
            RESULTS["failed"] += 1
            log("FAILED: the operator log has Forbidden errors:\n" + "\n".join(forbidden[:10]))
        else:
            RESULTS["passed"] += 1
            log("ok: no Forbidden in the operator's log")
    for fn in reversed(CLEANUPS):
        try:
            fn()
        except Exception:  # noqa: BLE001 - cleanup is best effort
            pass
    for gap in KNOWN_GAPS:
        log(f"KNOWN GAP: {gap}")
    log(f"finished in {time.monotonic() - started:.0f} s")
    summary = f"{RESULTS['passed']} passed, {RESULTS['failed']} failed"
    if RESULTS["skipped"]:
        summary += f", {RESULTS['skipped']} skipped"
    print(summary, flush=True)
    return 1 if RESULTS["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
