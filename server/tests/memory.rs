//! Bounded memory per request, on the real binary under an address-space limit: while
//! a writer keeps posting envelopes of objects of the largest size accepted, readers
//! page through everything with the largest `limit` on TAXII 2.1 (`next`) and 2.0
//! (`Range`). The server must neither die nor swell: every page is served, within the
//! page byte budget, each object exactly once, and the peak resident memory stays far
//! below what pages of `limit` such objects would take.
//!
//! The limit is `ulimit -v` (RLIMIT_AS) set by `sh` before it execs the server, so
//! an allocation past it fails and the server aborts; `MALLOC_ARENA_MAX` keeps glibc
//! from reserving address space per thread that it never uses. The peak resident size
//! (`VmHWM`) is checked against a tighter bound.

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::wait::wait_until;
use serde::Deserialize;
use serde_json::{json, Value};

const INBOX: &str = "2f1c9a4e-8b6d-4e3f-9a7b-1c2d3e4f5a6b";
const TAXII21: &str = "application/taxii+json;version=2.1";
const STIX20: &str = "application/vnd.oasis.stix+json; version=2.0";
const MIB: usize = 1024 * 1024;
/// The defaults: the largest object accepted, and a page's byte budget.
const MAX_OBJECT: usize = MIB;
const PAGE_BUDGET: usize = 16 * MIB;
/// Objects per posted envelope: as many maximum-size objects as fit in the default
/// `max_content_length` (10 MiB).
const PER_POST: usize = 9;
/// Envelopes stored before the readers start, and posted while they read.
const SEEDED: usize = 4;
const WHILE_READING: usize = 4;
/// Address space the server may map, the (debug) binary, thread stacks and glibc's
/// reservations included: the default pod memory limit.
const ADDRESS_SPACE: usize = 512 * MIB;
/// Peak resident memory allowed. One unbounded page of the stored objects alone
/// would be more than this (and it would be built twice).
const RESIDENT: usize = 200 * MIB;

const CONFIG: &str = r#"
[service]
title = "memory"
versions = ["2.1", "2.0"]

[limits]
max_page_size = 1000
default_page_size = 1000

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
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("config");
        std::fs::create_dir(&config).expect("config dir");
        std::fs::write(config.join("taxiway.toml"), CONFIG).expect("config");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("data dir");
        let (addr, admin) = (free_port(), free_port());
        let bin = std::env::var("TAXIWAY_MEMORY_TEST_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_taxiway-server").to_string());
        let child = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -v {} && exec \"$0\" \"$@\"",
                ADDRESS_SPACE / 1024
            ))
            .arg(bin)
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
            .env("MALLOC_ARENA_MAX", "2")
            .env("TAXIWAY_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the server");
        let mut server = Server {
            child,
            addr,
            _dir: dir,
        };
        server.wait_ready(admin);
        server
    }

    fn wait_ready(&mut self, admin: SocketAddr) {
        wait_until(
            "the server to become ready",
            Duration::from_secs(20),
            || {
                assert!(self.alive(), "the server exited while starting");
                request(admin, "GET", "/readyz", &[], None).is_ok_and(|r| r.status == 200)
            },
        );
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// `VmHWM` (peak resident) and `VmPeak` (peak address space), in bytes.
    fn peaks(&self) -> (usize, usize) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
                .map_or(0, |kb| kb * 1024)
        };
        (field("VmHWM:"), field("VmPeak:"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Reply {
    status: u16,
    headers: String,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    fn parse<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "unexpected body ({e}), status {}: {}",
                self.status,
                String::from_utf8_lossy(&self.body[..self.body.len().min(300)])
            )
        })
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}), status {}: {}",
                self.status,
                String::from_utf8_lossy(&self.body[..self.body.len().min(300)])
            )
        })
    }
}

/// One HTTP/1.1 request on its own connection.
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> std::io::Result<Reply> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: memory.test\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    if let Some(body) = body {
        stream.write_all(body)?;
    }
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let headers = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = headers
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = raw[split + 4..].to_vec();
    if let Some(len) = headers.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().ok())?
    }) {
        assert_eq!(body.len(), len, "the whole body arrived");
    }
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// An indicator whose JSON is exactly `MAX_OBJECT` bytes.
fn max_size_object(n: usize) -> String {
    let mut o = json!({
        "type": "indicator", "spec_version": "2.1",
        "id": format!("indicator--{n:08x}-0000-4000-8000-000000000000"),
        "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
        "pattern": "[ipv4-addr:value = '198.51.100.1']", "pattern_type": "stix",
        "valid_from": "2024-01-01T00:00:00Z", "description": ""
    });
    let base = o.to_string().len();
    o["description"] = json!("x".repeat(MAX_OBJECT - base));
    let text = o.to_string();
    assert_eq!(text.len(), MAX_OBJECT);
    text
}

/// Post envelope `k` (objects `k * PER_POST ..`): every object stored.
fn post(addr: SocketAddr, k: usize) {
    let objects: Vec<String> = (0..PER_POST)
        .map(|i| max_size_object(k * PER_POST + i))
        .collect();
    let body = format!(r#"{{"objects":[{}]}}"#, objects.join(","));
    drop(objects);
    let r = request(
        addr,
        "POST",
        &format!("/feeds/collections/{INBOX}/objects/"),
        &[("Content-Type", TAXII21), ("Accept", TAXII21)],
        Some(body.as_bytes()),
    )
    .expect("post");
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["success_count"], PER_POST, "{}", r.json());
}

/// A page of objects (a 2.1 envelope or a 2.0 bundle), read for the ids only.
#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    more: bool,
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    objects: Vec<Listed>,
}

#[derive(Deserialize)]
struct Listed {
    id: String,
}

/// Ids of the objects of a page, checking it keeps to the budget.
fn page_ids(objects: &[Listed], body_len: usize) -> Vec<String> {
    assert!(!objects.is_empty(), "a page holds at least one object");
    assert!(
        objects.len() == 1 || body_len <= PAGE_BUDGET + 4096,
        "{} objects in {body_len} bytes",
        objects.len()
    );
    objects.iter().map(|o| o.id.clone()).collect()
}

/// Page through everything on TAXII 2.1 with `limit=1000`; the ids, in order.
fn read_all_21(addr: SocketAddr) -> Vec<String> {
    let base = format!("/feeds/collections/{INBOX}/objects/");
    let mut path = format!("{base}?limit=1000");
    let mut ids = Vec::new();
    loop {
        let r = request(addr, "GET", &path, &[("Accept", TAXII21)], None).expect("get");
        assert_eq!(r.status, 200);
        let page: Page = r.parse();
        if page.objects.is_empty() {
            assert!(!page.more);
            return ids;
        }
        ids.extend(page_ids(&page.objects, r.body.len()));
        if !page.more {
            return ids;
        }
        let next = page.next.expect("next with more");
        path = format!("{base}?next={next}&limit=1000");
    }
}

/// Page through everything on TAXII 2.0 with `Range`, resuming after each page's end.
fn read_all_20(addr: SocketAddr) -> Vec<String> {
    let path = format!("/feeds/collections/{INBOX}/objects/");
    let mut start = 0usize;
    let mut ids = Vec::new();
    loop {
        let range = format!("items {start}-{}", start + 999);
        let r = request(
            addr,
            "GET",
            &path,
            &[("Accept", STIX20), ("Range", &range)],
            None,
        )
        .expect("get");
        if r.status == 416 {
            return ids;
        }
        assert_eq!(r.status, 206, "{}", String::from_utf8_lossy(&r.body));
        let bundle: Page = r.parse();
        ids.extend(page_ids(&bundle.objects, r.body.len()));
        let content_range = r.header("content-range").unwrap_or_default().to_string();
        let (span, total) = content_range
            .trim_start_matches("items ")
            .split_once('/')
            .expect("items a-b/n");
        let last: usize = span
            .split_once('-')
            .and_then(|(_, l)| l.parse().ok())
            .expect("last");
        let total: usize = total.parse().expect("total");
        start = last + 1;
        if start >= total {
            return ids;
        }
    }
}

fn assert_once(ids: &[String], what: &str) {
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "{what}: an object served twice");
}

#[test]
fn pages_of_maximum_size_objects_stay_within_memory_while_writes_go_on() {
    let started = Instant::now();
    let mut server = Server::start();
    let addr = server.addr;
    for k in 0..SEEDED {
        post(addr, k);
    }
    let stored_before = SEEDED * PER_POST;
    eprintln!("seeded in {:.1} s", started.elapsed().as_secs_f64());

    let writing = Arc::new(AtomicBool::new(true));
    let writer = {
        let writing = writing.clone();
        thread::spawn(move || {
            for k in SEEDED..SEEDED + WHILE_READING {
                post(addr, k);
            }
            writing.store(false, Ordering::Release);
        })
    };
    let reader = |v20: bool| {
        let writing = writing.clone();
        thread::spawn(move || {
            let mut passes = 0;
            loop {
                let ids = if v20 {
                    read_all_20(addr)
                } else {
                    read_all_21(addr)
                };
                assert_once(&ids, if v20 { "2.0" } else { "2.1" });
                assert!(
                    ids.len() >= stored_before,
                    "{} < {stored_before}",
                    ids.len()
                );
                passes += 1;
                if !writing.load(Ordering::Acquire) {
                    return passes;
                }
            }
        })
    };
    let readers = [reader(false), reader(false), reader(true)];
    writer.join().expect("the writer");
    for r in readers {
        assert!(r.join().expect("a reader") >= 1);
    }
    assert!(server.alive(), "the server died");
    eprintln!(
        "read while writing until {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Everything written, paged through once more on both versions.
    let total = (SEEDED + WHILE_READING) * PER_POST;
    let all = read_all_21(addr);
    assert_eq!(all.len(), total);
    assert_once(&all, "2.1");
    assert_eq!(
        read_all_20(addr),
        all,
        "2.0 serves the same objects in order"
    );

    let (resident, address_space) = server.peaks();
    eprintln!(
        "{total} objects of {} KiB: peak resident {} MiB, peak address space {} MiB, {:.1} s",
        MAX_OBJECT / 1024,
        resident / MIB,
        address_space / MIB,
        started.elapsed().as_secs_f64()
    );
    assert!(server.alive(), "the server died");
    assert!(
        resident < RESIDENT,
        "peak resident {} MiB, more than {} MiB",
        resident / MIB,
        RESIDENT / MIB
    );
}
