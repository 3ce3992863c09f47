//! Issue 20: the real `taxiway-server serve` fails closed. A credentials directory
//! without users refuses to start unless `--allow-anonymous-open` is given; without a
//! credentials directory the server runs open only on a loopback address; a reload to
//! zero users keeps the users loaded before.

mod common;
mod fixtures;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::wait::{holds_within_blocking, wait_until, PATIENCE};
use fixtures::*;

const BIN: &str = env!("CARGO_BIN_EXE_taxiway-server");

/// A directory with a config, a data directory and room for credentials and logs.
struct Place {
    dir: tempfile::TempDir,
}

impl Place {
    fn new() -> Place {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("config");
        std::fs::create_dir_all(&config).expect("config dir");
        std::fs::write(config.join("taxiway.toml"), config_toml("")).expect("config");
        std::fs::create_dir_all(dir.path().join("credentials")).expect("credentials dir");
        Place { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn credentials(&self) -> PathBuf {
        self.path("credentials")
    }

    /// `serve` with these extra arguments, listening on `listen` (admin on a free
    /// loopback port), logging to a file.
    fn serve(&self, listen: SocketAddr, extra: &[&str]) -> Server {
        let admin = free_port();
        let log = self.path(&format!("server-{}.log", listen.port()));
        let child = Command::new(BIN)
            .arg("serve")
            .arg("--config-dir")
            .arg(self.path("config"))
            .arg("--data-dir")
            .arg(self.path("data"))
            .arg("--listen")
            .arg(listen.to_string())
            .arg("--admin-listen")
            .arg(admin.to_string())
            .args(extra)
            .env_remove("TAXIWAY_CREDENTIALS_DIR")
            .env_remove("TAXIWAY_ALLOW_ANONYMOUS_OPEN")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("run taxiway-server");
        Server {
            child,
            listen,
            admin,
            log,
        }
    }
}

struct Server {
    child: Child,
    listen: SocketAddr,
    admin: SocketAddr,
    log: PathBuf,
}

impl Server {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for the server to exit on its own; its status and log.
    fn refused(mut self) -> String {
        let exited = holds_within_blocking(Duration::from_secs(30), || {
            match self.child.try_wait().expect("wait") {
                Some(status) => {
                    assert!(!status.success(), "must fail: {}", self.log());
                    true
                }
                None => false,
            }
        });
        assert!(exited, "still running, not refused: {}", self.log());
        self.log()
    }

    /// Waits until the server is ready.
    fn ready(mut self) -> Server {
        let ready = holds_within_blocking(Duration::from_secs(60), || {
            if let Some(status) = self.child.try_wait().expect("wait") {
                panic!("exited with {status}: {}", self.log());
            }
            http_status(self.admin, "/readyz", None) == Some(200)
        });
        assert!(ready, "not ready: {}", self.log());
        self
    }

    /// How many credentials changes the server has rejected so far.
    fn rejections(&self) -> usize {
        self.log().matches("credentials change rejected").count()
    }

    /// Waits until the server has rejected one more credentials change than `before`.
    fn rejected_after(&self, before: usize) {
        wait_until("the credentials change to be rejected", PATIENCE, || {
            self.rejections() > before
        });
    }

    fn status(&self, path: &str, authorization: Option<&str>) -> Option<u16> {
        let target = match self.listen.ip().is_unspecified() {
            true => SocketAddr::from(([127, 0, 0, 1], self.listen.port())),
            false => self.listen,
        };
        http_status(target, path, authorization)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> SocketAddr {
    let socket = TcpListener::bind("127.0.0.1:0").expect("bind");
    socket.local_addr().expect("addr")
}

/// The status of a GET, or `None` when nothing answers.
fn http_status(to: SocketAddr, path: &str, authorization: Option<&str>) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&to, Duration::from_secs(2)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept: {TAXII}\r\n{auth}Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

fn write_users(dir: &Path, text: &str) {
    // Written aside and renamed in, as a deployment tool would.
    let aside = dir.join(".users.toml.new");
    std::fs::write(&aside, text).expect("write");
    std::fs::rename(&aside, dir.join("users.toml")).expect("rename");
}

#[test]
fn a_credentials_directory_without_users_refuses_to_start_unless_told_to_run_open() {
    let place = Place::new();
    let credentials = place.credentials();
    let dir = credentials.to_str().expect("utf-8 path");
    for contents in [None, Some(""), Some("users = []\n")] {
        if let Some(text) = contents {
            write_users(&credentials, text);
        }
        let log = place
            .serve(free_port(), &["--credentials-dir", dir])
            .refused();
        assert!(log.contains("holds no users"), "{contents:?}: {log}");
        assert!(log.contains("--allow-anonymous-open"), "{log}");
    }
    let open = place
        .serve(
            free_port(),
            &["--credentials-dir", dir, "--allow-anonymous-open"],
        )
        .ready();
    assert_eq!(open.status("/feeds/collections/", None), Some(200));
    assert!(open.log().contains("NO USERS ARE CONFIGURED"));
}

#[test]
fn without_a_credentials_directory_only_loopback_serves_open() {
    let place = Place::new();
    let everywhere = SocketAddr::from(([0, 0, 0, 0], free_port().port()));
    let log = place.serve(everywhere, &[]).refused();
    assert!(log.contains("not a loopback address"), "{log}");
    // Standalone evaluation on one machine keeps working as before.
    let local = place.serve(free_port(), &[]).ready();
    assert_eq!(local.status("/feeds/collections/", None), Some(200));
    drop(local);
    // And open on the network only when asked for.
    let everywhere = SocketAddr::from(([0, 0, 0, 0], free_port().port()));
    let asked = place.serve(everywhere, &["--allow-anonymous-open"]).ready();
    assert_eq!(asked.status("/feeds/collections/", None), Some(200));
}

#[test]
fn a_reload_to_zero_users_keeps_the_users_loaded_before() {
    let place = Place::new();
    let credentials = place.credentials();
    write_users(&credentials, &users_toml());
    let dir = credentials.to_str().expect("utf-8 path");
    let server = place
        .serve(free_port(), &["--credentials-dir", dir])
        .ready();
    let alice = basic("alice", "alice-pw");
    let collections = "/feeds/collections/";
    assert_eq!(server.status(collections, Some(&alice)), Some(200));
    assert_eq!(server.status(collections, None), Some(401));

    for emptied in ["users = []\n", ""] {
        let before = server.rejections();
        write_users(&credentials, emptied);
        server.rejected_after(before);
        assert_eq!(
            server.status(collections, None),
            Some(401),
            "{emptied:?}: still closed"
        );
        assert_eq!(
            server.status(collections, Some(&alice)),
            Some(200),
            "{emptied:?}: alice still gets in"
        );
    }
    let before = server.rejections();
    std::fs::remove_file(credentials.join("users.toml")).expect("remove");
    server.rejected_after(before);
    assert_eq!(server.status(collections, None), Some(401));
    assert_eq!(server.status(collections, Some(&alice)), Some(200));
    let log = server.log();
    assert!(
        log.matches("credentials change rejected").count() >= 3,
        "{log}"
    );
}
