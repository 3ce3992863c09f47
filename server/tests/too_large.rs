//! A POST larger than `max_content_length`, on the real binary: the client reads the
//! TAXII 413 (its description naming the limit) whether it speaks HTTP/1.1 over TLS
//! (Python `requests`, which used to see `SSLEOFError`: the server closed while the
//! client was still sending), HTTP/2 over TLS (`curl --http2`) or plain HTTP/1.1.
//!
//! The Python client is the interop venv's (`TAXIWAY_VENV`, else
//! `$TAXIWAY_CACHE/venv`, else `~/.cache/taxiway/venv`; `tests/interop/setup-venv.sh`
//! makes it); without it the Python checks are skipped with a message. Likewise
//! without `curl`.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::wait::wait_until;

const INBOX: &str = "2f1c9a4e-8b6d-4e3f-9a7b-1c2d3e4f5a6b";
const TAXII21: &str = "application/taxii+json;version=2.1";
const LIMIT: usize = 65536;
/// Well past the limit and past what socket buffers absorb, within what is drained.
const BODY: usize = 4 * 1024 * 1024;

const CONFIG: &str = r#"
[service]
title = "too large"

[limits]
max_content_length = 65536

[[api_roots]]
path = "feeds"
title = "Feeds"

[[collections]]
id = "2f1c9a4e-8b6d-4e3f-9a7b-1c2d3e4f5a6b"
api_root = "feeds"
title = "inbox"
writable = true
"#;

fn free_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

struct Server {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Server {
    fn start(tls: bool) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("config");
        std::fs::create_dir(&config).expect("config dir");
        std::fs::write(config.join("taxiway.toml"), CONFIG).expect("config");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("data dir");
        let (addr, admin) = (free_port(), free_port());
        let mut command = Command::new(env!("CARGO_BIN_EXE_taxiway-server"));
        command
            .arg("serve")
            .arg("--config-dir")
            .arg(&config)
            .arg("--data-dir")
            .arg(&data)
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--admin-listen")
            .arg(admin.to_string())
            .args(["--readers", "2"])
            .env("TAXIWAY_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if tls {
            let tls_dir = dir.path().join("tls");
            std::fs::create_dir(&tls_dir).expect("tls dir");
            let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
                .expect("certificate");
            std::fs::write(tls_dir.join("tls.crt"), cert.cert.pem()).expect("tls.crt");
            std::fs::write(tls_dir.join("tls.key"), cert.signing_key.serialize_pem())
                .expect("tls.key");
            command.arg("--tls-dir").arg(&tls_dir);
        }
        let child = command.spawn().expect("start the server");
        let mut server = Server { child, addr, dir };
        server.wait_ready(admin);
        server
    }

    fn wait_ready(&mut self, admin: SocketAddr) {
        wait_until(
            "the server to become ready",
            Duration::from_secs(30),
            || {
                assert!(
                    matches!(self.child.try_wait(), Ok(None)),
                    "the server exited while starting"
                );
                readyz(admin).is_ok_and(|ok| ok)
            },
        );
    }

    fn url(&self, scheme: &str) -> String {
        format!(
            "{scheme}://localhost:{}/feeds/collections/{INBOX}/objects/",
            self.addr.port()
        )
    }

    /// An envelope of `BODY` bytes, as a file for curl.
    fn body_file(&self) -> PathBuf {
        let path = self.dir.path().join("body.json");
        std::fs::write(&path, big_envelope()).expect("body");
        path
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn readyz(admin: SocketAddr) -> std::io::Result<bool> {
    let mut s = TcpStream::connect(admin)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    Ok(raw.starts_with("HTTP/1.1 200"))
}

fn big_envelope() -> Vec<u8> {
    let mut body = br#"{"objects":[{"type":"note","x":""#.to_vec();
    body.resize(BODY - 4, b'x');
    body.extend_from_slice(br#""}]}"#);
    body
}

/// The interop venv's Python, if it was made.
fn venv_python() -> Option<PathBuf> {
    let venv = std::env::var_os("TAXIWAY_VENV")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("TAXIWAY_CACHE").map(|c| PathBuf::from(c).join("venv")))
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/taxiway/venv"))
        })?;
    let python = venv.join("bin/python");
    python.is_file().then_some(python)
}

fn has_curl() -> bool {
    Command::new("curl")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("HTTP2"))
}

/// Python `requests` posting the big envelope, announced (`Content-Length`) or
/// chunked; prints the status and the body.
const PYTHON: &str = r#"
import sys, requests, urllib3
urllib3.disable_warnings()
url, mode, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
body = b'{"objects":[{"type":"note","x":"' + b"x" * (size - 36) + b'"}]}'
data = body
if mode == "chunked":
    data = (body[i:i + 65536] for i in range(0, len(body), 65536))
headers = {"Content-Type": "application/taxii+json;version=2.1",
           "Accept": "application/taxii+json;version=2.1"}
r = requests.post(url, data=data, headers=headers, verify=False, timeout=60)
print(r.status_code)
print(r.headers.get("Content-Type"))
print(r.text)
"#;

fn python_post(python: &Path, url: &str, mode: &str) -> Output {
    Command::new(python)
        .arg("-c")
        .arg(PYTHON)
        .arg(url)
        .arg(mode)
        .arg(BODY.to_string())
        .output()
        .expect("run python")
}

/// The status line, content type and TAXII error of a client's output; it must be
/// the 413 whose description names the limit.
fn assert_taxii_413(what: &str, out: &Output, status_line: &str, rest: &str) {
    assert!(
        out.status.success(),
        "{what}: the client failed instead of reading the answer: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(status_line.trim(), "413", "{what}: {rest}");
    let error: serde_json::Value = serde_json::from_str(rest.trim())
        .unwrap_or_else(|e| panic!("{what}: not a TAXII error ({e}): {rest}"));
    assert_eq!(error["http_status"], "413", "{what}: {error}");
    let description = error["description"].as_str().unwrap_or_default();
    assert!(
        description.contains(&LIMIT.to_string()),
        "{what}: the description names the limit: {error}"
    );
}

/// Whether a missing client fails the test instead of skipping its checks
/// (`tests/run-all.sh` provisions both and sets `TAXIWAY_REQUIRE_CLIENTS=1`).
fn clients_required() -> bool {
    std::env::var_os("TAXIWAY_REQUIRE_CLIENTS").is_some_and(|v| v == "1")
}

fn check_python(server: &Server, scheme: &str) {
    let Some(python) = venv_python() else {
        assert!(
            !clients_required(),
            "TAXIWAY_REQUIRE_CLIENTS=1 but there is no venv with Python requests"
        );
        eprintln!(
            "SKIPPED the Python requests checks: no venv (run tests/interop/setup-venv.sh or set TAXIWAY_VENV)"
        );
        return;
    };
    for mode in ["announced", "chunked"] {
        let out = python_post(&python, &server.url(scheme), mode);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let mut lines = text.splitn(3, '\n');
        let status = lines.next().unwrap_or_default();
        let content_type = lines.next().unwrap_or_default();
        let rest = lines.next().unwrap_or_default();
        let what = format!("requests over {scheme}, {mode}");
        assert_taxii_413(&what, &out, status, rest);
        assert_eq!(content_type.trim(), TAXII21, "{what}");
    }
}

/// curl posting the big envelope; the body, then `<status> <http version>`.
fn curl_post(server: &Server, scheme: &str, http: &str) -> Output {
    let body = server.body_file();
    Command::new("curl")
        .args(["-sS", "-k", http, "-X", "POST", "--max-time", "60"])
        .arg("-H")
        .arg(format!("Content-Type: {TAXII21}"))
        .arg("-H")
        .arg(format!("Accept: {TAXII21}"))
        // Send the body at once (no 100-continue wait), as most clients do.
        .args(["-H", "Expect:"])
        .arg("--data-binary")
        .arg(format!("@{}", body.display()))
        .args(["-w", "\n%{http_code} %{http_version}"])
        .arg(server.url(scheme))
        .output()
        .expect("run curl")
}

fn check_curl(server: &Server, scheme: &str, http: &str, version: &str) {
    if !has_curl() {
        assert!(
            !clients_required(),
            "TAXIWAY_REQUIRE_CLIENTS=1 but there is no curl with HTTP/2"
        );
        eprintln!("SKIPPED the curl {http} check: no curl with HTTP/2");
        return;
    }
    let out = curl_post(server, scheme, http);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, last) = text.rsplit_once('\n').unwrap_or(("", &text));
    let (status, got_version) = last.split_once(' ').unwrap_or((last, ""));
    let what = format!("curl {http} over {scheme}");
    assert_taxii_413(&what, &out, status, body);
    assert_eq!(got_version, version, "{what}");
}

#[test]
fn an_oversized_post_over_https_gets_the_413() {
    let server = Server::start(true);
    check_python(&server, "https");
    check_curl(&server, "https", "--http2", "2");
    check_curl(&server, "https", "--http1.1", "1.1");
}

#[test]
fn an_oversized_post_over_plain_http_gets_the_413() {
    let server = Server::start(false);
    check_python(&server, "http");
    check_curl(&server, "http", "--http1.1", "1.1");
}
