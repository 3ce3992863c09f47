//! Hostile clients against the real accept loop on a loopback socket: oversized and
//! too many headers, slowloris, a body that stalls, pipelining, the connection limit,
//! the per-client limit, idle connections and graceful shutdown. After each, a normal
//! request on a new connection still succeeds.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use taxiway_server::config::{self, ServerSettings};
use taxiway_server::{limits, listener};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The accept loop serving a fresh [`TestApp`] within `settings`.
struct Server {
    addr: SocketAddr,
    app: TestApp,
    stop: Option<oneshot::Sender<()>>,
    handle: JoinHandle<()>,
}

impl Server {
    async fn start(settings: ServerSettings) -> Server {
        Self::start_with(common::config("type:indicator"), settings).await
    }

    async fn start_with(config: config::ServiceConfig, settings: ServerSettings) -> Server {
        let app = TestApp::with_config(config).await;
        let router = limits::apply(app.router.clone(), &settings, app.state.clone());
        let socket = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = socket.local_addr().expect("addr");
        let metrics = app.state.metrics.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            listener::run(socket, router, None, &settings, metrics, async move {
                let _ = stopped.await;
            })
            .await;
        });
        Server {
            addr,
            app,
            stop: Some(stop),
            handle,
        }
    }

    async fn connect(&self) -> Conn {
        Conn {
            stream: TcpStream::connect(self.addr).await.expect("connect"),
            buf: Vec::new(),
        }
    }

    /// A normal request on a new connection succeeds.
    async fn still_serving(&self) {
        let mut conn = self.connect().await;
        let response = conn.get("/taxii2/").await.expect("a response");
        assert_eq!(response.status, 200, "still serving");
    }

    fn metric(&self, name: &str) -> u64 {
        let text = self.app.state.metrics.render(None);
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0)
    }
}

struct Response {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// A raw HTTP/1.1 connection; what was read past one response stays for the next.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    async fn get(&mut self, path: &str) -> std::io::Result<Response> {
        self.send(request("GET", path, "").as_bytes()).await?;
        self.response().await
    }

    async fn fill(&mut self) -> std::io::Result<()> {
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// Read one response (Content-Length bodies only: all this server sends here).
    async fn response(&mut self) -> std::io::Result<Response> {
        let end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            self.fill().await?;
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).to_string();
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or(std::io::ErrorKind::InvalidData)?;
        let mut response = Response {
            status,
            head,
            body: Vec::new(),
        };
        let length: usize = response
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while self.buf.len() < end + length {
            self.fill().await?;
        }
        response.body = self.buf[end..end + length].to_vec();
        self.buf.drain(..end + length);
        Ok(response)
    }

    /// Whether the server closes the connection (EOF or reset) within `within`,
    /// ignoring any response it sends first.
    async fn closed_within(&mut self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        let mut chunk = [0u8; 8192];
        loop {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Err(_) => return false,
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

fn request(method: &str, path: &str, extra_headers: &str) -> String {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAccept: {TAXII21}\r\n{extra_headers}\r\n"
    )
}

/// The head of a POST of `length` bytes to the inbox (the body follows separately).
fn post_head(length: usize) -> String {
    request(
        "POST",
        &objects_url(INBOX),
        &format!("Content-Type: {TAXII21}\r\nContent-Length: {length}\r\n"),
    )
}

fn envelope() -> Vec<u8> {
    serde_json::json!({ "objects": [indicator(1, 1, "198.51.100.7", 90)] })
        .to_string()
        .into_bytes()
}

fn settings() -> ServerSettings {
    ServerSettings {
        max_header_bytes: 16 * 1024,
        max_headers: 50,
        header_read_timeout_secs: 1,
        request_timeout_secs: 2,
        ..ServerSettings::default()
    }
}

/// A TAXII error object in the 2.1 media type with this status.
fn assert_taxii_error(response: &Response, status: u16) {
    assert_eq!(response.status, status, "{}", response.head);
    assert_eq!(response.header("content-type"), Some(TAXII21));
    let error = response.json();
    assert_eq!(error["http_status"], status.to_string());
    assert!(error["title"].is_string(), "{error}");
}

#[tokio::test]
async fn a_very_long_header_gets_431_and_the_server_keeps_serving() {
    let server = Server::start(settings()).await;
    let mut conn = server.connect().await;
    let huge = format!("X-Padding: {}\r\n", "a".repeat(100 * 1024));
    // The server may answer and close before the whole header is written.
    let _ = conn
        .send(request("GET", "/taxii2/", &huge).as_bytes())
        .await;
    match conn.response().await {
        Ok(response) => assert_eq!(response.status, 431),
        Err(e) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
            ),
            "{e}"
        ),
    }
    assert!(conn.closed_within(Duration::from_secs(2)).await);
    server.still_serving().await;
}

/// Settings with the default header limit (64 KiB).
fn default_header_settings() -> ServerSettings {
    ServerSettings {
        max_header_bytes: 64 * 1024,
        ..settings()
    }
}

fn assert_header_431(response: &Response, media_type: &str) {
    assert_eq!(response.status, 431, "{}", response.head);
    assert_eq!(response.header("content-type"), Some(media_type));
    let error = response.json();
    assert_eq!(error["http_status"], "431");
    assert!(
        error["description"]
            .as_str()
            .is_some_and(|d| d.contains("65536")),
        "the description names the limit: {error}"
    );
}

#[tokio::test]
async fn headers_over_the_limit_get_a_taxii_431() {
    let server = Server::start(default_header_settings()).await;
    let authorization = format!("Authorization: Basic {}\r\n", "a".repeat(100 * 1024));
    let other = format!("X-Padding: {}\r\n", "a".repeat(64 * 1024));
    for (what, extra) in [("authorization", &authorization), ("other", &other)] {
        let mut conn = server.connect().await;
        conn.send(request("GET", "/taxii2/", extra).as_bytes())
            .await
            .expect("send");
        let response = conn.response().await.expect("an answer");
        assert_header_431(&response, TAXII21);
        assert!(conn.closed_within(Duration::from_secs(2)).await, "{what}");
    }
    // In the version the client accepts.
    let mut conn = server.connect().await;
    let accept20 = "application/vnd.oasis.taxii+json; version=2.0";
    let head =
        format!("GET /feeds/ HTTP/1.1\r\nHost: localhost\r\nAccept: {accept20}\r\n{other}\r\n");
    conn.send(head.as_bytes()).await.expect("send");
    let response = conn.response().await.expect("an answer");
    assert_header_431(&response, accept20);
    // Just within the limit is served.
    let mut conn = server.connect().await;
    let within = format!("X-Padding: {}\r\n", "a".repeat(60 * 1024));
    conn.send(request("GET", "/taxii2/", &within).as_bytes())
        .await
        .expect("send");
    assert_eq!(conn.response().await.expect("an answer").status, 200);
    server.still_serving().await;
}

#[tokio::test]
async fn http2_headers_over_the_limit_get_a_taxii_431() {
    let server = Server::start(default_header_settings()).await;
    let tcp = TcpStream::connect(server.addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .expect("h2 handshake");
    tokio::spawn(conn);
    for (name, size) in [("authorization", 100 * 1024), ("x-padding", 64 * 1024)] {
        let request = axum::http::Request::get(format!("http://{}/taxii2/", server.addr))
            .header("accept", TAXII21)
            .header(name, "a".repeat(size))
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .expect("request");
        let response = sender.send_request(request).await.expect("a response");
        assert_eq!(response.status(), 431, "{name}");
        assert_eq!(
            response.headers().get("content-type").map(|v| v.as_bytes()),
            Some(TAXII21.as_bytes())
        );
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .expect("body")
            .to_bytes();
        let error: Value = serde_json::from_slice(&body).expect("a TAXII error");
        assert_eq!(error["http_status"], "431", "{error}");
    }
    // The connection serves on.
    let request = axum::http::Request::get(format!("http://{}/taxii2/", server.addr))
        .header("accept", TAXII21)
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .expect("request");
    let response = sender.send_request(request).await.expect("a response");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn too_many_headers_get_431() {
    let server = Server::start(settings()).await;
    let mut conn = server.connect().await;
    let many: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    conn.send(request("GET", "/taxii2/", &many).as_bytes())
        .await
        .expect("send");
    let response = conn.response().await.expect("an answer");
    assert_eq!(response.status, 431);
    assert!(conn.closed_within(Duration::from_secs(2)).await);
    // Within the limit is fine.
    let mut conn = server.connect().await;
    let some: String = (0..40).map(|i| format!("X-H{i}: v\r\n")).collect();
    conn.send(request("GET", "/taxii2/", &some).as_bytes())
        .await
        .expect("send");
    assert_eq!(conn.response().await.expect("answer").status, 200);
    server.still_serving().await;
}

#[tokio::test]
async fn slowloris_is_cut_off_by_the_header_timeout() {
    let server = Server::start(settings()).await;
    let mut conn = server.connect().await;
    let started = Instant::now();
    conn.send(b"GET /taxii2/ HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .expect("send");
    // One header line every 200 ms, forever: bytes keep coming, the head never ends.
    let mut cut_off = false;
    for i in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if conn
            .send(format!("X-Slow-{i}: x\r\n").as_bytes())
            .await
            .is_err()
            || conn.closed_within(Duration::from_millis(1)).await
        {
            cut_off = true;
            break;
        }
    }
    let elapsed = started.elapsed();
    assert!(cut_off, "a trickling client is cut off");
    assert!(
        elapsed < Duration::from_secs(4),
        "within about header_read_timeout_secs (1 s), not per byte: {elapsed:?}"
    );
    server.still_serving().await;
}

#[tokio::test]
async fn a_body_that_stalls_gets_408_when_the_request_times_out() {
    let server = Server::start(settings()).await;
    let mut conn = server.connect().await;
    let body = envelope();
    let started = Instant::now();
    conn.send(post_head(body.len()).as_bytes())
        .await
        .expect("send");
    conn.send(&body[..10]).await.expect("send");
    let response = tokio::time::timeout(Duration::from_secs(10), conn.response())
        .await
        .expect("answered, not hung")
        .expect("a response");
    assert_taxii_error(&response, 408);
    assert_eq!(response.header("connection"), Some("close"));
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1900) && elapsed < Duration::from_secs(5),
        "after request_timeout_secs (2 s): {elapsed:?}"
    );
    assert!(conn.closed_within(Duration::from_secs(2)).await);
    assert_eq!(
        server.metric("taxiway_limited_requests_total{reason=\"body_timeout\"}"),
        1
    );
    server.still_serving().await;
}

#[tokio::test]
async fn a_slow_but_steady_post_within_the_timeout_is_stored() {
    let server = Server::start(settings()).await;
    let mut conn = server.connect().await;
    let body = envelope();
    conn.send(post_head(body.len()).as_bytes())
        .await
        .expect("send");
    for chunk in body.chunks(body.len() / 4 + 1) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        conn.send(chunk).await.expect("send");
    }
    let response = conn.response().await.expect("a response");
    assert_eq!(
        response.status,
        202,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(response.json()["success_count"], 1);
}

#[tokio::test]
async fn an_oversized_body_is_refused_before_it_is_sent() {
    let server = Server::start(settings()).await;
    // Announced: 413 from Content-Length alone, none of the 100 MB sent.
    let mut conn = server.connect().await;
    conn.send(post_head(100_000_000).as_bytes())
        .await
        .expect("send");
    let response = tokio::time::timeout(Duration::from_secs(1), conn.response())
        .await
        .expect("answered at once, not after the request timeout")
        .expect("a response");
    assert_taxii_error(&response, 413);

    // Chunked, no length announced: 413 once the limit (64 KiB here) is passed, while
    // the client is still sending.
    let mut conn = server.connect().await;
    let head = request(
        "POST",
        &objects_url(INBOX),
        &format!("Content-Type: {TAXII21}\r\nTransfer-Encoding: chunked\r\n"),
    );
    conn.send(head.as_bytes()).await.expect("send");
    let chunk = format!("{:x}\r\n{}\r\n", 16 * 1024, "x".repeat(16 * 1024));
    let mut answered = None;
    for _ in 0..64 {
        if conn.send(chunk.as_bytes()).await.is_err() {
            break;
        }
        if let Ok(Ok(response)) =
            tokio::time::timeout(Duration::from_millis(20), conn.response()).await
        {
            answered = Some(response);
            break;
        }
    }
    let response = match answered {
        Some(response) => response,
        None => conn.response().await.expect("a response"),
    };
    assert_taxii_error(&response, 413);
    server.still_serving().await;
}

#[tokio::test]
async fn an_oversized_body_sent_anyway_is_read_and_the_connection_kept() {
    let server = Server::start(settings()).await;
    let mut conn = server.connect().await;
    let body = vec![b'x'; 1024 * 1024];
    conn.send(post_head(body.len()).as_bytes())
        .await
        .expect("send");
    // The answer comes at once, before the body...
    let response = tokio::time::timeout(Duration::from_secs(1), conn.response())
        .await
        .expect("answered at once")
        .expect("a response");
    assert_taxii_error(&response, 413);
    assert!(
        response.json()["description"]
            .as_str()
            .is_some_and(|d| d.contains("65536")),
        "the description names the limit"
    );
    // ...and a client that sends it anyway is read to the end (not reset), and its
    // connection serves the next request.
    conn.send(&body).await.expect("the whole body is read");
    let next = conn
        .get("/taxii2/")
        .await
        .expect("the connection serves on");
    assert_eq!(next.status, 200);
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let server = Server::start(settings()).await;
    let mut conn = server.connect().await;
    let body = envelope();
    let mut pipelined = Vec::new();
    pipelined.extend_from_slice(request("GET", "/taxii2/", "").as_bytes());
    pipelined.extend_from_slice(post_head(body.len()).as_bytes());
    pipelined.extend_from_slice(&body);
    pipelined.extend_from_slice(request("GET", "/feeds/", "").as_bytes());
    pipelined.extend_from_slice(request("GET", &objects_url(INBOX), "").as_bytes());
    conn.send(&pipelined).await.expect("one write");
    let discovery = conn.response().await.expect("first");
    assert_eq!(discovery.status, 200);
    assert_eq!(discovery.json()["title"], "Taxiway test");
    let status = conn.response().await.expect("second");
    assert_eq!(status.status, 202);
    assert_eq!(status.json()["success_count"], 1);
    let root = conn.response().await.expect("third");
    assert_eq!(root.status, 200);
    assert!(root.json()["max_content_length"].is_number());
    let objects = conn.response().await.expect("fourth");
    assert_eq!(objects.status, 200);
    assert_eq!(
        ids(&objects.json()),
        ["indicator--00000001-0000-4000-8000-000000000000"],
        "the POST before it was applied first"
    );
    server.still_serving().await;
}

#[tokio::test]
async fn over_max_connections_a_connection_waits_briefly_then_is_closed() {
    let server = Server::start(ServerSettings {
        max_connections: 2,
        connection_wait_ms: 300,
        ..settings()
    })
    .await;
    let mut first = server.connect().await;
    let mut second = server.connect().await;
    for conn in [&mut first, &mut second] {
        assert_eq!(conn.get("/taxii2/").await.expect("served").status, 200);
    }
    // A third: the kernel accepts it, the server closes it unserved after the wait.
    let mut third = server.connect().await;
    let started = Instant::now();
    let _ = third.send(request("GET", "/taxii2/", "").as_bytes()).await;
    assert!(third.response().await.is_err(), "not served");
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert_eq!(server.metric("taxiway_connections_refused_total"), 1);
    assert_eq!(server.metric("taxiway_connections_open"), 2);

    // One waiting while a slot frees up is served.
    let mut waiting = server.connect().await;
    waiting
        .send(request("GET", "/taxii2/", "").as_bytes())
        .await
        .expect("send");
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(first);
    assert_eq!(waiting.response().await.expect("served").status, 200);
    // The kept-alive connections were never disturbed.
    assert_eq!(second.get("/feeds/").await.expect("served").status, 200);
    drop((second, waiting));
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.still_serving().await;
    assert_eq!(server.metric("taxiway_connections_refused_total"), 1);
}

#[tokio::test]
async fn over_the_per_client_limit_requests_get_429() {
    let server = Server::start(ServerSettings {
        max_requests_per_client: 1,
        request_timeout_secs: 30,
        ..settings()
    })
    .await;
    // One request in flight: a POST whose body is still coming.
    let mut slow = server.connect().await;
    let body = envelope();
    slow.send(post_head(body.len()).as_bytes())
        .await
        .expect("send");
    slow.send(&body[..10]).await.expect("send");
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut other = server.connect().await;
    let refused = other.get("/taxii2/").await.expect("an answer");
    assert_taxii_error(&refused, 429);
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(
        server.metric("taxiway_limited_requests_total{reason=\"per_client\"}"),
        1
    );

    slow.send(&body[10..]).await.expect("send");
    assert_eq!(slow.response().await.expect("stored").status, 202);
    // Its slot is back: the same client is served again, on either connection.
    assert_eq!(other.get("/taxii2/").await.expect("served").status, 200);
    assert_eq!(slow.get("/feeds/").await.expect("served").status, 200);
    server.still_serving().await;
}

#[tokio::test]
async fn the_per_client_limit_counts_the_forwarded_client_behind_a_trusted_proxy() {
    let text = common::config_text("type:indicator").replace(
        "[service]\n",
        "[service]\ntrusted_proxies = [\"127.0.0.1\"]\n",
    );
    let server = Server::start_with(
        config::parse(&text).expect("config"),
        ServerSettings {
            max_requests_per_client: 1,
            request_timeout_secs: 30,
            ..settings()
        },
    )
    .await;
    let mut slow = server.connect().await;
    let body = envelope();
    let head = request(
        "POST",
        &objects_url(INBOX),
        &format!(
            "Content-Type: {TAXII21}\r\nContent-Length: {}\r\nX-Forwarded-For: 203.0.113.9\r\n",
            body.len()
        ),
    );
    slow.send(head.as_bytes()).await.expect("send");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut conn = server.connect().await;
    let same = request("GET", "/taxii2/", "X-Forwarded-For: 203.0.113.9\r\n");
    conn.send(same.as_bytes()).await.expect("send");
    assert_eq!(conn.response().await.expect("answer").status, 429);
    let other = request("GET", "/taxii2/", "X-Forwarded-For: 203.0.113.10\r\n");
    conn.send(other.as_bytes()).await.expect("send");
    assert_eq!(
        conn.response().await.expect("answer").status,
        200,
        "another client behind the same proxy is not limited"
    );
    slow.send(&body).await.expect("send");
    assert_eq!(slow.response().await.expect("stored").status, 202);
}

#[tokio::test]
async fn idle_connections_are_closed_busy_ones_are_not() {
    let server = Server::start(ServerSettings {
        idle_timeout_secs: 1,
        header_read_timeout_secs: 30,
        request_timeout_secs: 30,
        ..settings()
    })
    .await;
    let mut idle = server.connect().await;
    assert_eq!(idle.get("/taxii2/").await.expect("served").status, 200);
    let started = Instant::now();
    assert!(idle.closed_within(Duration::from_secs(5)).await);
    assert!(started.elapsed() >= Duration::from_millis(900));

    // A request in flight longer than the idle timeout keeps its connection.
    let mut busy = server.connect().await;
    let body = envelope();
    busy.send(post_head(body.len()).as_bytes())
        .await
        .expect("send");
    busy.send(&body[..10]).await.expect("send");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    busy.send(&body[10..]).await.expect("send");
    assert_eq!(busy.response().await.expect("stored").status, 202);
    server.still_serving().await;
}

#[tokio::test]
async fn idle_http2_connections_are_closed() {
    use http_body_util::BodyExt;
    let server = Server::start(ServerSettings {
        idle_timeout_secs: 1,
        ..settings()
    })
    .await;
    let tcp = TcpStream::connect(server.addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .expect("h2 handshake (prior knowledge)");
    let driver = tokio::spawn(conn);
    let request = axum::http::Request::get(format!("http://{}/taxii2/", server.addr))
        .header("accept", TAXII21)
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .expect("request");
    let response = sender.send_request(request).await.expect("response");
    assert_eq!(response.status(), 200);
    response.into_body().collect().await.expect("body");
    let _ = tokio::time::timeout(Duration::from_secs(5), driver)
        .await
        .expect("the server ends an idle HTTP/2 connection (GOAWAY)")
        .expect("driver");
    server.still_serving().await;
}

#[tokio::test]
async fn an_oversized_http2_header_list_is_refused_and_the_connection_survives_or_closes() {
    let server = Server::start(settings()).await;
    let tcp = TcpStream::connect(server.addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .expect("h2 handshake");
    tokio::spawn(conn);
    let request = axum::http::Request::get(format!("http://{}/taxii2/", server.addr))
        .header("accept", TAXII21)
        .header("x-padding", "a".repeat(64 * 1024))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .expect("request");
    match sender.send_request(request).await {
        Ok(response) => assert_eq!(response.status(), 431),
        Err(e) => assert!(!e.is_user(), "refused by the server: {e}"),
    }
    server.still_serving().await;
}

#[tokio::test]
async fn a_malformed_2_0_range_on_the_wire_is_a_400() {
    let text = common::config_text("type:indicator")
        .replace("[service]\n", "[service]\nversions = [\"2.1\", \"2.0\"]\n");
    let server = Server::start_with(config::parse(&text).expect("config"), settings()).await;
    let mut conn = server.connect().await;
    let accept20 = "application/vnd.oasis.taxii+json; version=2.0";
    let long = format!("items {}-1", "9".repeat(4000));
    let mut ranges: Vec<Vec<u8>> = vec![b"items \xff-\xfe".to_vec(), long.into_bytes()];
    ranges.push(b"items 1-0".to_vec());
    for range in ranges {
        let mut raw = format!(
            "GET {} HTTP/1.1\r\nHost: localhost\r\nAccept: {accept20}\r\nRange: ",
            objects_url(INBOX)
        )
        .into_bytes();
        raw.extend_from_slice(&range);
        raw.extend_from_slice(b"\r\n\r\n");
        conn.send(&raw).await.expect("send");
        let response = conn.response().await.expect("an answer");
        assert_eq!(response.status, 400, "{}", String::from_utf8_lossy(&range));
        assert!(response
            .header("content-type")
            .is_some_and(|t| t.contains("version=2.0")));
        assert_eq!(response.json()["http_status"], "400");
    }
    server.still_serving().await;
}

#[tokio::test]
async fn shutdown_lets_a_request_in_flight_finish_and_refuses_new_connections() {
    let mut server = Server::start(ServerSettings {
        request_timeout_secs: 30,
        ..settings()
    })
    .await;
    let mut in_flight = server.connect().await;
    let body = envelope();
    in_flight
        .send(post_head(body.len()).as_bytes())
        .await
        .expect("send");
    in_flight.send(&body[..10]).await.expect("send");
    let mut idle = server.connect().await;
    assert_eq!(idle.get("/taxii2/").await.expect("served").status, 200);
    tokio::time::sleep(Duration::from_millis(100)).await;

    if let Some(stop) = server.stop.take() {
        let _ = stop.send(());
    }
    assert!(
        idle.closed_within(Duration::from_secs(2)).await,
        "idle connections are closed at once"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        TcpStream::connect(server.addr).await.is_err(),
        "no new connections"
    );
    assert!(
        !server.handle.is_finished(),
        "draining the request in flight"
    );
    in_flight.send(&body[10..]).await.expect("send");
    let response = in_flight.response().await.expect("answered");
    assert_eq!(response.status, 202);
    tokio::time::timeout(Duration::from_secs(5), &mut server.handle)
        .await
        .expect("the loop returns once the last request is done")
        .expect("task");
    assert_eq!(
        server
            .app
            .store
            .stats()
            .await
            .expect("stats")
            .object_versions,
        1
    );
}
