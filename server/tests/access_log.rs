//! The access log of the real `taxiway-server serve --log-json`: one JSON line per
//! TAXII request under the target `taxiway::access`, with the caller's name (never a
//! credential), the resource, the collection, the status and the objects.

mod common;
mod fixtures;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::wait::{holds_within_blocking, wait_until, PATIENCE};
use fixtures::*;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_taxiway-server");

/// A running server; killed when dropped.
struct Server {
    child: Child,
    listen: SocketAddr,
    log: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// `serve --log-json` over `dir`, with the users of [`users_toml`] and `extra`
    /// appended to the configuration; returns once it is ready.
    fn start(dir: &Path, extra: &str) -> Server {
        let config = dir.join("config");
        let credentials = dir.join("credentials");
        std::fs::create_dir_all(&config).expect("config dir");
        std::fs::create_dir_all(&credentials).expect("credentials dir");
        std::fs::write(config.join("taxiway.toml"), config_toml(extra)).expect("config");
        std::fs::write(credentials.join("users.toml"), users_toml()).expect("users");
        let (listen, admin) = (free_port(), free_port());
        let log = dir.join("server.log");
        let child = Command::new(BIN)
            .arg("--log-json")
            .arg("serve")
            .arg("--config-dir")
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.join("data"))
            .arg("--credentials-dir")
            .arg(&credentials)
            .arg("--listen")
            .arg(listen.to_string())
            .arg("--admin-listen")
            .arg(admin.to_string())
            .env_remove("TAXIWAY_LOG")
            .env_remove("TAXIWAY_CREDENTIALS_DIR")
            .env_remove("TAXIWAY_ALLOW_ANONYMOUS_OPEN")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("run taxiway-server");
        let mut server = Server { child, listen, log };
        let ready = holds_within_blocking(Duration::from_secs(60), || {
            if let Some(status) = server.child.try_wait().expect("wait") {
                panic!("exited with {status}: {}", server.log_text());
            }
            request(admin, "GET", "/readyz", None, None).is_some_and(|r| r.0 == 200)
        });
        assert!(ready, "not ready: {}", server.log_text());
        server
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The access log lines written so far, parsed.
    fn access_lines(&self) -> Vec<Value> {
        self.log_text()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).expect("every log line is JSON"))
            .filter(|l| l["target"] == "taxiway::access")
            .collect()
    }

    /// Waits until `n` access log lines are written; returns them.
    fn wait_for_lines(&self, n: usize) -> Vec<Value> {
        wait_until("the access log lines", PATIENCE, || {
            self.access_lines().len() >= n
        });
        self.access_lines()
    }
}

fn free_port() -> SocketAddr {
    let socket = TcpListener::bind("127.0.0.1:0").expect("bind");
    socket.local_addr().expect("addr")
}

/// One HTTP/1.1 request; the status and the body, or `None` when nothing answers.
fn request(
    to: SocketAddr,
    method: &str,
    path: &str,
    authorization: Option<&str>,
    body: Option<&str>,
) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&to, Duration::from_secs(2)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let content = body
        .map(|b| format!("Content-Type: {TAXII}\r\nContent-Length: {}\r\n", b.len()))
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAccept: {TAXII}\r\n{auth}{content}Connection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).ok()?;
    stream.write_all(body.unwrap_or("").as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

#[test]
fn every_taxii_request_is_one_json_access_log_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), "");
    let to = server.listen;

    // A POST of three objects by bob (producers may write to the inbox).
    let bob = basic("bob", "bob-pw");
    let inbox = format!("/feeds/collections/{INBOX}/objects/");
    let (status, body) =
        request(to, "POST", &inbox, Some(&bob), Some(&envelope(3))).expect("POST answered");
    assert_eq!(status, 202, "{body}");
    // A page read by alice.
    let alice = basic("alice", "alice-pw");
    let everyone = format!("/feeds/collections/{EVERYONE}/objects/");
    let (status, body) = request(to, "GET", &everyone, Some(&alice), None).expect("answered");
    assert_eq!(status, 200, "{body}");
    // A wrong password: refused before the resource's handler.
    let wrong = basic("alice", "not-alices-password");
    let (status, _) = request(to, "GET", &everyone, Some(&wrong), None).expect("answered");
    assert_eq!(status, 401);

    let lines = server.wait_for_lines(3);
    assert_eq!(lines.len(), 3, "{lines:#?}");
    for line in &lines {
        let fields = &line["fields"];
        assert_eq!(fields["message"], "request", "{line}");
        assert_eq!(line["level"], "INFO", "{line}");
        assert!(line["timestamp"].is_string(), "{line}");
        assert_eq!(fields["client"], "127.0.0.1", "{line}");
        assert_eq!(fields["api_root"], "feeds", "{line}");
        assert_eq!(fields["endpoint"], "objects", "{line}");
        assert!(fields["duration_ms"].as_f64().is_some(), "{line}");
    }

    let post = &lines[0]["fields"];
    assert_eq!(post["method"], "POST", "{post}");
    assert_eq!(post["user"], "bob", "{post}");
    assert_eq!(post["collection"], INBOX, "{post}");
    assert_eq!(post["status"], 202, "{post}");
    assert_eq!(post["objects_accepted"], 3, "{post}");
    assert!(post["bytes"].as_u64().is_some_and(|b| b > 0), "{post}");

    let page = &lines[1]["fields"];
    assert_eq!(page["method"], "GET", "{page}");
    assert_eq!(page["user"], "alice", "{page}");
    assert_eq!(page["collection"], EVERYONE, "{page}");
    assert_eq!(page["status"], 200, "{page}");
    assert!(page["objects_served"].as_u64().is_some(), "{page}");
    assert!(page.get("objects_accepted").is_none(), "{page}");

    let refused = &lines[2]["fields"];
    assert_eq!(refused["method"], "GET", "{refused}");
    assert_eq!(refused["user"], "anonymous", "{refused}");
    assert_eq!(refused["collection"], EVERYONE, "{refused}");
    assert_eq!(refused["status"], 401, "{refused}");
    assert!(refused.get("objects_served").is_none(), "{refused}");

    // No credential reaches the log.
    let log = server.log_text();
    for secret in [
        "bob-pw",
        "alice-pw",
        "not-alices-password",
        "Basic ",
        "Authorization",
    ] {
        assert!(!log.contains(secret), "{secret} in the log: {log}");
    }
}

#[test]
fn the_access_log_can_be_switched_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), "\n[server]\naccess_log = false\n");
    let alice = basic("alice", "alice-pw");
    let (status, _) = request(
        server.listen,
        "GET",
        "/feeds/collections/",
        Some(&alice),
        None,
    )
    .expect("answered");
    assert_eq!(status, 200);
    // Nor is a request refused before its handler.
    let (status, _) =
        request(server.listen, "GET", "/feeds/collections/", None, None).expect("answered");
    assert_eq!(status, 401);
    assert!(server.access_lines().is_empty(), "{}", server.log_text());
}

#[test]
fn requests_refused_before_their_handler_are_logged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), "\n[server]\nmax_header_bytes = 8192\n");
    let alice = basic("alice", "alice-pw");
    // No such resource: 404.
    let (status, _) =
        request(server.listen, "GET", "/feeds/nothing/", Some(&alice), None).expect("answered");
    assert_eq!(status, 404);
    // A head over max_header_bytes (but under twice it): a TAXII 431 from the limits.
    let long = format!("/feeds/collections/?pad={}", "x".repeat(9000));
    let (status, _) = request(server.listen, "GET", &long, None, None).expect("answered");
    assert_eq!(status, 431);

    let lines = server.wait_for_lines(2);
    let fields: Vec<&Value> = lines.iter().map(|l| &l["fields"]).collect();
    assert_eq!(fields[0]["status"], 404, "{lines:#?}");
    assert_eq!(fields[0]["endpoint"], "unknown", "{lines:#?}");
    assert_eq!(fields[0]["user"], "alice", "{lines:#?}");
    assert_eq!(fields[1]["status"], 431, "{lines:#?}");
    assert_eq!(fields[1]["endpoint"], "limited", "{lines:#?}");
    assert_eq!(fields[1]["user"], "anonymous", "{lines:#?}");
    assert_eq!(fields[1]["client"], "127.0.0.1", "{lines:#?}");
    assert!(fields[1]["bytes"].as_u64().is_some(), "{lines:#?}");
}
