//! Issue 20: one client address holds at most `max_connections_per_address` of the
//! connection slots; its excess connections are closed unserved while other addresses
//! still connect. Exempt peers (trusted proxies) are not counted. Against the real
//! accept loop on loopback (127.0.0.1 and 127.0.0.2 are two client addresses).

mod common;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use taxiway_server::config::ServerSettings;
use taxiway_server::{limits, listener};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::oneshot;

struct Server {
    addr: SocketAddr,
    app: TestApp,
    _stop: oneshot::Sender<()>,
}

impl Server {
    async fn start(settings: ServerSettings, exempt: Option<listener::Exempt>) -> Server {
        let app = TestApp::new().await;
        let router = limits::apply(app.router.clone(), &settings, app.state.clone());
        let socket = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = socket.local_addr().expect("addr");
        let metrics = app.state.metrics.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let exempt = exempt.unwrap_or_else(|| Arc::new(|_: &IpAddr| false));
        tokio::spawn(async move {
            listener::run_exempting(socket, router, None, &settings, metrics, exempt, async {
                let _ = stopped.await;
            })
            .await;
        });
        Server {
            addr,
            app,
            _stop: stop,
        }
    }

    /// A connection from `from` (a loopback address).
    async fn connect_from(&self, from: [u8; 4]) -> TcpStream {
        let socket = TcpSocket::new_v4().expect("socket");
        socket
            .bind(SocketAddr::from((from, 0)))
            .expect("bind the client address");
        socket.connect(self.addr).await.expect("connect")
    }

    fn refused(&self) -> u64 {
        let metrics = self.app.state.metrics.render(None);
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("taxiway_connections_refused_total "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }
}

/// Send a GET on `conn` (kept alive); whether a 200 came back.
async fn served(conn: &mut TcpStream) -> bool {
    let request = format!("GET /taxii2/ HTTP/1.1\r\nHost: localhost\r\nAccept: {TAXII21}\r\n\r\n");
    if conn.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut buf = vec![0u8; 4096];
    match tokio::time::timeout(Duration::from_secs(10), conn.read(&mut buf)).await {
        Ok(Ok(n)) if n > 0 => buf[..n].starts_with(b"HTTP/1.1 200"),
        _ => false,
    }
}

fn settings(per_address: usize) -> ServerSettings {
    ServerSettings {
        max_connections: 20,
        max_connections_per_address: per_address,
        ..ServerSettings::default()
    }
}

#[tokio::test]
async fn one_address_holds_at_most_its_share_of_the_connections() {
    let server = Server::start(settings(3), None).await;
    let mut mine = Vec::new();
    for _ in 0..3 {
        let mut conn = server.connect_from([127, 0, 0, 1]).await;
        assert!(served(&mut conn).await);
        mine.push(conn);
    }
    let mut excess = server.connect_from([127, 0, 0, 1]).await;
    assert!(
        !served(&mut excess).await,
        "a fourth from one address is closed"
    );
    assert_eq!(server.refused(), 1);

    // Another address still connects, while the first keeps its three.
    let mut others = Vec::new();
    for _ in 0..3 {
        let mut conn = server.connect_from([127, 0, 0, 2]).await;
        assert!(served(&mut conn).await, "another address is served");
        others.push(conn);
    }
    for conn in &mut mine {
        assert!(served(conn).await, "kept connections are undisturbed");
    }

    // A closed connection gives its address the slot back.
    drop(mine.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = server.connect_from([127, 0, 0, 1]).await;
    assert!(served(&mut again).await);
    assert_eq!(server.refused(), 1);
}

#[tokio::test]
async fn exempt_peers_and_zero_are_not_capped() {
    let proxy: listener::Exempt = Arc::new(|ip: &IpAddr| *ip == IpAddr::from([127, 0, 0, 1]));
    let server = Server::start(settings(2), Some(proxy)).await;
    let mut conns = Vec::new();
    for _ in 0..6 {
        let mut conn = server.connect_from([127, 0, 0, 1]).await;
        assert!(
            served(&mut conn).await,
            "a trusted proxy carries many clients"
        );
        conns.push(conn);
    }
    let mut capped = Vec::new();
    for _ in 0..2 {
        let mut conn = server.connect_from([127, 0, 0, 3]).await;
        assert!(served(&mut conn).await);
        capped.push(conn);
    }
    let mut excess = server.connect_from([127, 0, 0, 3]).await;
    assert!(!served(&mut excess).await, "everyone else is capped");

    let off = Server::start(settings(0), None).await;
    let mut conns = Vec::new();
    for _ in 0..6 {
        let mut conn = off.connect_from([127, 0, 0, 1]).await;
        assert!(served(&mut conn).await, "0 turns the cap off");
        conns.push(conn);
    }
    assert_eq!(off.refused(), 0);
}
