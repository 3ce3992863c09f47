//! TLS over a real socket: versions, certificate rotation, client certificates and
//! graceful shutdown, with certificates generated here.

mod common;
mod fixtures;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::wait::eventually;
use fixtures::*;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ProtocolVersion, RootCertStore, SupportedProtocolVersion};
use taxiway_server::reload::{self, DirWatcher};
use taxiway_server::serve;
use taxiway_server::tls::{self, Tls};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

type Issuer = CertifiedIssuer<'static, KeyPair>;

fn ca(name: &str) -> Issuer {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA")
}

/// A certificate and key signed by `issuer`: a server certificate for `localhost`, or
/// a client certificate with this common name.
struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

fn leaf(issuer: &Issuer, common_name: &str, client: bool) -> Leaf {
    leaf_with(issuer, common_name, client, |_| {})
}

/// [`leaf`] with its parameters changed by `adjust` before signing.
fn leaf_with(
    issuer: &Issuer,
    common_name: &str,
    client: bool,
    adjust: impl FnOnce(&mut CertificateParams),
) -> Leaf {
    let names = if client {
        vec![]
    } else {
        vec!["localhost".to_string()]
    };
    let mut params = CertificateParams::new(names).expect("params");
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.extended_key_usages = vec![if client {
        ExtendedKeyUsagePurpose::ClientAuth
    } else {
        ExtendedKeyUsagePurpose::ServerAuth
    }];
    adjust(&mut params);
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, issuer).expect("sign");
    Leaf {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        der: cert.der().clone(),
    }
}

impl Leaf {
    fn client_auth(&self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        use rustls::pki_types::pem::PemObject;
        (
            vec![self.der.clone()],
            PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).expect("key"),
        )
    }
}

/// Lay out `files` the way Kubernetes mounts a Secret: a timestamped directory, a
/// `..data` symlink to it, and one symlink per key. Calling it again swaps `..data`.
fn mount_secret(dir: &Path, version: u32, files: &[(&str, &str)]) {
    let data = dir.join(format!("..v{version}"));
    std::fs::create_dir(&data).expect("mkdir");
    for (name, content) in files {
        std::fs::write(data.join(name), content).expect("write");
    }
    let tmp = dir.join("..data_tmp");
    std::os::unix::fs::symlink(format!("..v{version}"), &tmp).expect("symlink");
    std::fs::rename(&tmp, dir.join("..data")).expect("swap ..data");
    for (name, _) in files {
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(format!("..data/{name}"), &link).expect("symlink");
        }
    }
}

/// Mount `leaf` as the server certificate, as version `version` of the Secret.
fn mount_certificate(dir: &Path, version: u32, leaf: &Leaf) {
    mount_secret(
        dir,
        version,
        &[("tls.crt", &leaf.cert_pem), ("tls.key", &leaf.key_pem)],
    );
}

struct Running {
    addr: SocketAddr,
    service: common::TestApp,
    stop: Option<oneshot::Sender<()>>,
    handle: JoinHandle<()>,
    _watcher: DirWatcher,
}

async fn start(tls_dir: &Path, users: &str) -> Running {
    let service = service(&config_toml(""), users).await;
    let tls = Arc::new(Tls::load(tls_dir).expect("TLS files"));
    let watcher = reload::watch(tls.clone(), service.state.metrics.clone()).expect("watch");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(serve::run(
        listener,
        service.router.clone(),
        Some(tls),
        async move {
            let _ = stopped.await;
        },
    ));
    Running {
        addr,
        service,
        stop: Some(stop),
        handle,
        _watcher: watcher,
    }
}

/// A server for `localhost` with a certificate from `ca`, with no users; the TLS
/// directory lives as long as the returned guard.
async fn start_open(ca: &Issuer) -> (tempfile::TempDir, Running) {
    let dir = tempfile::tempdir().expect("tempdir");
    mount_certificate(dir.path(), 1, &leaf(ca, "taxiway", false));
    let running = start(dir.path(), "").await;
    (dir, running)
}

fn client(
    ca: &Issuer,
    versions: &[&'static SupportedProtocolVersion],
    cert: Option<&Leaf>,
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.der().clone()).expect("root");
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)
            .expect("versions")
            .with_root_certificates(roots);
    Arc::new(match cert {
        Some(leaf) => {
            let (chain, key) = leaf.client_auth();
            builder
                .with_client_auth_cert(chain, key)
                .expect("client cert")
        }
        None => builder.with_no_client_auth(),
    })
}

async fn connect(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").expect("name");
    TlsConnector::from(config).connect(name, tcp).await
}

/// One HTTP/1.1 request on a kept-alive connection: status and body.
async fn request<S>(
    stream: &mut S,
    path: &str,
    authorization: Option<&str>,
) -> std::io::Result<(u16, String)>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let head = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept: {TAXII}\r\n{auth}\r\n");
    stream.write_all(head.as_bytes()).await?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or(std::io::ErrorKind::InvalidData)?;
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < header_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok((
        status,
        String::from_utf8_lossy(&buf[header_end..header_end + length]).to_string(),
    ))
}

fn served_certificate(stream: &TlsStream<TcpStream>) -> Option<CertificateDer<'static>> {
    stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.clone().into_owned())
}

#[tokio::test]
async fn tls_12_and_13_are_served_and_nothing_older() {
    assert_eq!(
        tls::PROTOCOL_VERSIONS
            .iter()
            .map(|v| v.version)
            .collect::<Vec<_>>(),
        [ProtocolVersion::TLSv1_3, ProtocolVersion::TLSv1_2]
    );
    let ca = ca("Test CA");
    let (_dir, running) = start_open(&ca).await;
    for (version, expected) in [
        (&rustls::version::TLS13, ProtocolVersion::TLSv1_3),
        (&rustls::version::TLS12, ProtocolVersion::TLSv1_2),
    ] {
        let mut stream = connect(running.addr, client(&ca, &[version], None))
            .await
            .expect("handshake");
        assert_eq!(stream.get_ref().1.protocol_version(), Some(expected));
        let (status, body) = request(&mut stream, "/taxii2/", None)
            .await
            .expect("response");
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("https://localhost"), "URLs say https: {body}");
    }

    // TLS 1.1 ClientHellos (no supported_versions extension) are refused with an
    // alert: as real 1.1 clients send them (handshake_failure: no signature_algorithms),
    // and with signature_algorithms added, so only the version is wrong (protocol_version).
    for (with_signature_algorithms, alert) in [(false, 40), (true, 70)] {
        let mut tcp = TcpStream::connect(running.addr).await.expect("connect");
        tcp.write_all(&tls11_client_hello(with_signature_algorithms))
            .await
            .expect("hello");
        let mut answer = [0u8; 7];
        tcp.read_exact(&mut answer).await.expect("an alert");
        assert_eq!(answer[0], 0x15, "an alert record: {answer:?}");
        assert_eq!(answer[6], alert, "{answer:?}");
        let mut rest = Vec::new();
        let _ = tcp.read_to_end(&mut rest).await;
        assert!(rest.is_empty(), "nothing after the alert");
    }
}

fn tls11_client_hello(with_signature_algorithms: bool) -> Vec<u8> {
    let mut hello = vec![0x03, 0x02]; // client_version: TLS 1.1
    hello.extend([0x42; 32]); // random
    hello.push(0); // no session id
    hello.extend([0x00, 0x06, 0xc0, 0x2b, 0xc0, 0x13, 0x00, 0x2f]); // cipher suites
    hello.extend([0x01, 0x00]); // compression: null
    if with_signature_algorithms {
        // ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256, rsa_pkcs1_sha256
        let schemes = [0x04, 0x03, 0x08, 0x04, 0x04, 0x01];
        let mut extension = vec![
            0x00,
            0x0d,
            0x00,
            schemes.len() as u8 + 2,
            0x00,
            schemes.len() as u8,
        ];
        extension.extend(schemes);
        hello.extend((extension.len() as u16).to_be_bytes());
        hello.extend(extension);
    }
    let mut handshake = vec![0x01, 0x00];
    handshake.extend((hello.len() as u16).to_be_bytes());
    handshake.extend(hello);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend((handshake.len() as u16).to_be_bytes());
    record.extend(handshake);
    record
}

#[tokio::test]
async fn a_rotated_certificate_is_served_without_restart_or_dropped_connections() {
    let ca = ca("Test CA");
    let first = leaf(&ca, "taxiway-first", false);
    let dir = tempfile::tempdir().expect("tempdir");
    mount_certificate(dir.path(), 1, &first);
    let running = start(dir.path(), "").await;
    let config = client(&ca, &[&rustls::version::TLS13], None);
    let mut kept = connect(running.addr, config.clone())
        .await
        .expect("handshake");
    assert_eq!(served_certificate(&kept), Some(first.der.clone()));
    assert_eq!(
        request(&mut kept, "/taxii2/", None)
            .await
            .expect("response")
            .0,
        200
    );

    let second = leaf(&ca, "taxiway-second", false);
    mount_certificate(dir.path(), 2, &second);
    eventually("the new certificate to be served", async || {
        let stream = connect(running.addr, config.clone())
            .await
            .expect("handshake");
        served_certificate(&stream) == Some(second.der.clone())
    })
    .await;
    assert_eq!(
        request(&mut kept, "/taxii2/", None)
            .await
            .expect("still open")
            .0,
        200,
        "the connection opened before the rotation still works"
    );

    // A broken rotation (the key of another certificate) is refused; the second keeps serving.
    let other = leaf(&ca, "taxiway-other", false);
    mount_secret(
        dir.path(),
        3,
        &[("tls.crt", &second.cert_pem), ("tls.key", &other.key_pem)],
    );
    eventually("the broken rotation to be noticed", async || {
        running
            .service
            .state
            .metrics
            .render(None)
            .contains("taxiway_tls_reloads_total{result=\"error\"}")
    })
    .await;
    let stream = connect(running.addr, config).await.expect("handshake");
    assert_eq!(served_certificate(&stream), Some(second.der.clone()));
}

/// The certificate-expiry metric: the served certificate's notAfter in Unix seconds,
/// from the start and after a rotation.
#[tokio::test]
async fn the_served_certificates_expiry_is_exported_and_follows_rotation() {
    let expiry = |state: &taxiway_server::state::AppState| {
        let rendered = state.metrics.render(None);
        rendered
            .lines()
            .find_map(|l| l.strip_prefix("taxiway_tls_certificate_expiry_timestamp_seconds "))
            .and_then(|v| v.trim().parse::<i64>().ok())
    };
    let ca = ca("Test CA");
    let dir = tempfile::tempdir().expect("tempdir");
    let until =
        |y, m, d| move |p: &mut CertificateParams| p.not_after = rcgen::date_time_ymd(y, m, d);
    let first = leaf_with(&ca, "taxiway", false, until(2031, 5, 17));
    mount_certificate(dir.path(), 1, &first);
    let app = service(&config_toml(""), "").await;
    let state = &app.state;
    assert_eq!(expiry(state), Some(0), "0 before any certificate");
    let tls = Tls::load(dir.path())
        .expect("TLS files")
        .with_metrics(app.state.metrics.clone());
    let first_expiry = rcgen::date_time_ymd(2031, 5, 17).unix_timestamp();
    assert_eq!(expiry(state), Some(first_expiry));
    assert_eq!(tls.certificate_expiry(), Some(first_expiry));

    let second = leaf_with(&ca, "taxiway", false, until(2032, 1, 2));
    mount_certificate(dir.path(), 2, &second);
    assert!(tls.reload().expect("reload").certificate);
    let second_expiry = rcgen::date_time_ymd(2032, 1, 2).unix_timestamp();
    assert_eq!(expiry(state), Some(second_expiry));

    // A refused rotation leaves the served certificate's expiry.
    let other = leaf(&ca, "taxiway-other", false);
    mount_secret(
        dir.path(),
        3,
        &[("tls.crt", &first.cert_pem), ("tls.key", &other.key_pem)],
    );
    assert!(tls.reload().is_err());
    assert_eq!(expiry(state), Some(second_expiry));
}

#[tokio::test]
async fn client_certificates_from_the_client_ca_identify_users() {
    let server_ca = ca("Server CA");
    let client_ca = ca("Client CA");
    let rogue_ca = ca("Rogue CA");
    let server = leaf(&server_ca, "taxiway", false);
    let dir = tempfile::tempdir().expect("tempdir");
    mount_secret(
        dir.path(),
        1,
        &[
            ("tls.crt", &server.cert_pem),
            ("tls.key", &server.key_pem),
            ("ca.crt", &client_ca.pem()),
        ],
    );
    let running = start(dir.path(), &users_toml()).await;
    let collections = "/feeds/collections/";
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let alice = leaf(&client_ca, "alice", true);
        let mut stream = connect(running.addr, client(&server_ca, &[version], Some(&alice)))
            .await
            .expect("handshake with a client certificate");
        let (status, body) = request(&mut stream, collections, None)
            .await
            .expect("response");
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("alice only"), "alice's collections: {body}");

        // No certificate: the handshake succeeds, and the request is challenged.
        let mut stream = connect(running.addr, client(&server_ca, &[version], None))
            .await
            .expect("handshake without a client certificate");
        let (status, _) = request(&mut stream, collections, None)
            .await
            .expect("response");
        assert_eq!(status, 401);
        let (status, _) = request(&mut stream, collections, Some(&basic("bob", "bob-pw")))
            .await
            .expect("response");
        assert_eq!(status, 200, "passwords still work over TLS");

        // A certificate from another CA is refused by the TLS layer.
        let forged = leaf(&rogue_ca, "alice", true);
        let outcome = async {
            let mut s =
                connect(running.addr, client(&server_ca, &[version], Some(&forged))).await?;
            request(&mut s, collections, None).await
        }
        .await;
        assert!(outcome.is_err(), "{version:?}: {outcome:?}");

        // A certificate for a disabled user is refused like a wrong password.
        let carol = leaf(&client_ca, "carol", true);
        let mut stream = connect(running.addr, client(&server_ca, &[version], Some(&carol)))
            .await
            .expect("handshake");
        assert_eq!(
            request(&mut stream, collections, None)
                .await
                .expect("response")
                .0,
            401
        );
    }
}

#[tokio::test]
async fn shutdown_stops_accepting_and_closes_idle_connections() {
    let ca = ca("Test CA");
    let (_dir, mut running) = start_open(&ca).await;
    let mut idle = connect(running.addr, client(&ca, &[&rustls::version::TLS13], None))
        .await
        .expect("handshake");
    assert_eq!(
        request(&mut idle, "/taxii2/", None)
            .await
            .expect("response")
            .0,
        200
    );
    if let Some(stop) = running.stop.take() {
        let _ = stop.send(());
    }
    tokio::time::timeout(Duration::from_secs(5), &mut running.handle)
        .await
        .expect("an idle keep-alive connection does not hold up shutdown")
        .expect("listener task");
    assert!(
        TcpStream::connect(running.addr).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn http2_over_tls_emits_urls_with_the_authority() {
    use http_body_util::BodyExt;
    let ca = ca("Test CA");
    let (_dir, running) = start_open(&ca).await;
    let mut config = (*client(&ca, &[&rustls::version::TLS13], None)).clone();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let stream = connect(running.addr, Arc::new(config))
        .await
        .expect("handshake");
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .expect("h2 handshake");
    tokio::spawn(conn);
    let authority = format!("localhost:{}", running.addr.port());
    let request = axum::http::Request::get(format!("https://{authority}/taxii2/"))
        .header("accept", TAXII)
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .expect("request");
    let response = sender.send_request(request).await.expect("response");
    assert_eq!(response.status(), 200);
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let discovery: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(
        discovery["default"],
        format!("https://{authority}/feeds/"),
        "HTTP/2 has no Host header: the :authority is used"
    );
}

#[tokio::test]
async fn plain_http_takes_the_same_path() {
    let service = service(&config_toml(""), &users_toml()).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(serve::run(
        listener,
        service.router.clone(),
        None,
        std::future::pending(),
    ));
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    let (status, body) = request(&mut tcp, "/taxii2/", Some(&basic("alice", "alice-pw")))
        .await
        .expect("response");
    assert_eq!(status, 200);
    assert!(body.contains("http://localhost"), "{body}");
    let (status, _) = request(&mut tcp, "/feeds/", None).await.expect("response");
    assert_eq!(status, 401);
}
