//! Authentication and per-collection access over HTTP, in process.

mod common;
mod fixtures;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, StatusCode};
use fixtures::*;
use taxiway_server::access::Policy;
use taxiway_server::auth::{self, CredentialsDir};
use taxiway_server::clock::ManualClock;
use taxiway_server::reload;
use taxiway_server::tls::CertificateNames;

/// Reload the users from `dir` once, as the credentials directory's watcher does.
async fn reload_users(s: &common::TestApp, dir: &Path) -> bool {
    let source = CredentialsDir::new(s.state.auth.clone(), dir);
    reload::once(&source, &s.state.metrics).await
}

fn auth_header(value: &str) -> [(&'static str, &str); 1] {
    [("authorization", value)]
}

#[tokio::test]
async fn without_users_everyone_reads_and_writes() {
    let s = service(&config_toml(""), "").await;
    assert_eq!(s.state.policy(), Policy::Open);
    let titles = listed_titles(&s, &[]).await;
    assert_eq!(titles, ["inbox", "soc only", "alice only", "everyone"]);
    assert_eq!(post_objects(&s, INBOX, 1, &[]).await, StatusCode::ACCEPTED);
    // Credentials sent to an open server are not an error.
    let (status, _) = get_json(&s, "/taxii2/", &auth_header(&basic("x", "y"))).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn anonymous_callers_are_challenged() {
    let s = service(&config_toml(""), &users_toml()).await;
    assert_eq!(s.state.policy(), Policy::Rules);
    for path in [
        "/taxii2/",
        "/feeds/",
        "/feeds/collections/",
        &format!("/feeds/collections/{EVERYONE}/objects/"),
    ] {
        let request = from_address(get(path), "192.0.2.1")
            .body(Body::empty())
            .expect("request");
        let (status, headers, body) = s.send(request).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        let challenge = headers[header::WWW_AUTHENTICATE].to_str().expect("ascii");
        assert!(
            challenge.starts_with("Basic realm=\"taxiway\""),
            "{challenge}"
        );
        assert_eq!(headers[header::CONTENT_TYPE], TAXII);
        let error: serde_json::Value = serde_json::from_slice(&body).expect("TAXII error");
        assert_eq!(error["http_status"], "401");
        assert!(error["title"].is_string());
    }
}

#[tokio::test]
async fn basic_auth_in_any_case_of_the_scheme() {
    let s = service(&config_toml(""), &users_toml()).await;
    let encoded = basic("alice", "alice-pw");
    let b64 = encoded.trim_start_matches("Basic ");
    for scheme in ["Basic", "basic", "BASIC"] {
        let value = format!("{scheme} {b64}");
        let titles = listed_titles(&s, &auth_header(&value)).await;
        assert!(
            titles.contains(&"alice only".to_string()),
            "{scheme}: {titles:?}"
        );
    }
}

#[tokio::test]
async fn wrong_unknown_disabled_and_locked_look_the_same() {
    let s = service(&config_toml(""), &users_toml()).await;
    let path = "/feeds/collections/";
    let mut answers = Vec::new();
    for (user, password) in [
        ("alice", "wrong"),
        ("mallory", "alice-pw"),
        ("carol", "carol-pw"), // disabled, right password
        ("dave", "dave-pw"),   // locked, right password
    ] {
        let request = from_address(get(path), "192.0.2.9")
            .header(header::AUTHORIZATION, basic(user, password))
            .body(Body::empty())
            .expect("request");
        let (status, headers, body) = s.send(request).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{user}");
        let mut headers: Vec<_> = headers.iter().map(|(k, v)| format!("{k}: {v:?}")).collect();
        headers.sort();
        let body = String::from_utf8(body).expect("utf-8");
        assert!(!body.contains(password), "no secret in the body");
        answers.push((headers, body));
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:#?}");
    let metrics = s.state.metrics.render(None);
    for reason in ["invalid", "disabled", "locked"] {
        assert!(
            metrics.contains(&format!(
                "taxiway_auth_failures_total{{reason=\"{reason}\"}}"
            )),
            "{reason} counted: {metrics}"
        );
    }
    assert!(!metrics.contains("alice-pw") && !metrics.contains("wrong"));
}

#[tokio::test]
async fn api_keys_in_every_form() {
    let s = service(&config_toml(""), &users_toml()).await;
    let forms = [
        ("authorization", "Bearer bob-key".to_string()),
        ("authorization", "bearer bob-key".to_string()),
        ("authorization", "Token bob-key".to_string()),
        ("x-api-key", "bob-key".to_string()),
        ("authorization", basic("", "bob-key")),
        ("authorization", basic("apikey", "bob-key")),
        ("authorization", basic("bob", "bob-key")),
        ("authorization", "Bearer erin-key".to_string()),
    ];
    for (name, value) in &forms {
        let (status, body) = get_json(
            &s,
            &format!("/feeds/collections/{INBOX}/"),
            &[(name, value)],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{name}: {value}");
        assert_eq!(body["can_write"], true, "a producer: {name}: {value}");
    }
    for (name, value) in [
        ("authorization", "Bearer nope".to_string()),
        ("x-api-key", "alice-pw".to_string()),
        ("authorization", basic("alice", "bob-key")),
        ("authorization", "Digest bob-key".to_string()),
    ] {
        let (status, _) = get_json(&s, "/feeds/collections/", &[(name, &value)]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}: {value}");
    }
}

#[tokio::test]
async fn verified_credentials_are_cached_until_the_file_changes() {
    let s = service(&config_toml(""), &users_toml()).await;
    let alice = basic("alice", "alice-pw");
    assert_eq!(s.state.auth.cached(), 0);
    for _ in 0..3 {
        let (status, _) = get_json(&s, "/feeds/", &auth_header(&alice)).await;
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(s.state.auth.cached(), 1, "verified once, then remembered");
    let (status, _) = get_json(&s, "/feeds/", &auth_header(&basic("alice", "x"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(s.state.auth.cached(), 1, "failures are not remembered");

    // A new password in the file: the old one stops working at once.
    let dir = tempfile::tempdir().expect("tempdir");
    let changed = users_toml().replace(&quick_hash("alice-pw"), &quick_hash("alice-new"));
    std::fs::write(dir.path().join("users.toml"), changed).expect("write");
    assert!(reload_users(&s, dir.path()).await);
    assert_eq!(s.state.auth.cached(), 0);
    let (status, _) = get_json(&s, "/feeds/", &auth_header(&alice)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let new = basic("alice", "alice-new");
    let (status, _) = get_json(&s, "/feeds/", &auth_header(&new)).await;
    assert_eq!(status, StatusCode::OK);

    // The same file again changes nothing and keeps the cache.
    assert!(!reload_users(&s, dir.path()).await);
    assert_eq!(s.state.auth.cached(), 1);
}

#[tokio::test]
async fn a_removed_or_disabled_user_is_refused_after_reload() {
    let s = service(&config_toml(""), &users_toml()).await;
    let bob = basic("bob", "bob-pw");
    let (status, _) = get_json(&s, "/feeds/", &auth_header(&bob)).await;
    assert_eq!(status, StatusCode::OK);
    let dir = tempfile::tempdir().expect("tempdir");
    let disabled = users_toml().replace(
        "groups = [\"producers\"]\n\n[[users]]\nname = \"carol\"",
        "groups = [\"producers\"]\ndisabled = true\n\n[[users]]\nname = \"carol\"",
    );
    assert_ne!(disabled, users_toml());
    std::fs::write(dir.path().join("users.toml"), disabled).expect("write");
    assert!(reload_users(&s, dir.path()).await);
    let (status, _) = get_json(&s, "/feeds/", &auth_header(&bob)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "cached success dropped");
    let (status, _) = get_json(&s, "/feeds/", &[("authorization", "Bearer bob-key")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the API key too");
}

#[tokio::test]
async fn losing_every_user_does_not_open_the_server() {
    let s = service(&config_toml(""), &users_toml()).await;
    let empty = tempfile::tempdir().expect("tempdir");
    assert!(!reload_users(&s, empty.path()).await);
    std::fs::write(empty.path().join("users.toml"), "users = []\n").expect("write");
    assert!(!reload_users(&s, empty.path()).await);
    std::fs::write(empty.path().join("users.toml"), "not toml [").expect("write");
    assert!(!reload_users(&s, empty.path()).await);
    assert_eq!(s.state.policy(), Policy::Rules);
    let (status, _) = get_json(&s, "/feeds/", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let metrics = s.state.metrics.render(None);
    assert!(
        metrics.contains("taxiway_credentials_reloads_total{result=\"error\"} 3"),
        "{metrics}"
    );
}

const FAST_LOCKOUT: &str = r#"
[auth]
max_failures_per_user = 3
max_failures_per_address = 5
failure_window_secs = 60
lockout_secs = 1
"#;

async fn status_from(s: &common::TestApp, address: &str, authorization: &str) -> StatusCode {
    let request = from_address(get("/feeds/"), address)
        .header(header::AUTHORIZATION, authorization)
        .body(Body::empty())
        .expect("request");
    s.send(request).await.0
}

#[tokio::test]
async fn repeated_failures_lock_the_user_out_from_that_address_until_it_expires() {
    // Issue 20: a user name is locked out only for the address that failed, so that
    // nobody can lock a user out of everywhere.
    let clock = Arc::new(ManualClock::new());
    let s = service_with_clock(&config_toml(FAST_LOCKOUT), &users_toml(), clock.clone()).await;
    let right = basic("alice", "alice-pw");
    for _ in 0..3 {
        assert_eq!(
            status_from(&s, "198.51.100.1", &basic("alice", "guess")).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        status_from(&s, "198.51.100.1", &right).await,
        StatusCode::UNAUTHORIZED,
        "locked out there: even the right password is refused"
    );
    assert_eq!(
        status_from(&s, "198.51.100.1", &basic("bob", "bob-pw")).await,
        StatusCode::OK,
        "other users are not affected"
    );
    assert_eq!(
        status_from(&s, "198.51.100.200", &right).await,
        StatusCode::OK,
        "nor is alice from another address"
    );
    let metrics = s.state.metrics.render(None);
    assert!(
        metrics.contains("taxiway_auth_lockouts_total{subject=\"user\"} 1"),
        "{metrics}"
    );
    clock.advance(Duration::from_millis(1100));
    assert_eq!(
        status_from(&s, "198.51.100.1", &right).await,
        StatusCode::OK,
        "the lockout expired"
    );
}

#[tokio::test]
async fn repeated_failures_lock_the_address_out() {
    let s = service(&config_toml(FAST_LOCKOUT), &users_toml()).await;
    // Unknown users and bad keys: nothing to count per user, everything per address.
    for i in 0..5 {
        let guess = format!("Bearer guess-{i}");
        assert_eq!(
            status_from(&s, "203.0.113.7", &guess).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        status_from(&s, "203.0.113.7", &basic("alice", "alice-pw")).await,
        StatusCode::UNAUTHORIZED,
        "the address is locked out"
    );
    assert_eq!(
        status_from(&s, "203.0.113.8", &basic("alice", "alice-pw")).await,
        StatusCode::OK,
        "other addresses are not"
    );
    let metrics = s.state.metrics.render(None);
    assert!(metrics.contains("taxiway_auth_lockouts_total{subject=\"address\"} 1"));
    assert!(metrics.contains("taxiway_auth_failures_total{reason=\"locked-out\"} 1"));
}

#[tokio::test]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    let trusting = config_toml(FAST_LOCKOUT).replace(
        "title = \"Auth tests\"",
        "title = \"Auth tests\"\ntrusted_proxies = [\"10.0.0.0/8\"]",
    );
    let s = service(&trusting, &users_toml()).await;
    let request = |peer: &str, forwarded: &str, auth: &str| {
        from_address(get("/feeds/"), peer)
            .header("x-forwarded-for", forwarded)
            .header(header::AUTHORIZATION, auth)
            .body(Body::empty())
            .expect("request")
    };
    let alice = basic("alice", "alice-pw");
    // Through two proxies of ours: the client is the nearest untrusted entry.
    for i in 0..5 {
        let guess = format!("Bearer guess-{i}");
        let r = request("10.0.0.1", "1.1.1.1, 203.0.113.50, 10.0.0.2", &guess);
        assert_eq!(s.send(r).await.0, StatusCode::UNAUTHORIZED);
    }
    let r = request("10.0.0.1", "203.0.113.51", &alice);
    assert_eq!(
        s.send(r).await.0,
        StatusCode::OK,
        "the proxy is not locked out"
    );
    let r = request("10.0.0.1", "203.0.113.50", &alice);
    assert_eq!(s.send(r).await.0, StatusCode::UNAUTHORIZED, "the client is");
    // Garbage the client puts in front does not hide it behind the proxy.
    let r = request("10.0.0.1", "not-an-address, 203.0.113.50", &alice);
    assert_eq!(
        s.send(r).await.0,
        StatusCode::UNAUTHORIZED,
        "still the client"
    );
    let r = request("10.0.0.1", "not-an-address, 203.0.113.52", &alice);
    assert_eq!(s.send(r).await.0, StatusCode::OK, "and not the proxy");

    // From anyone else the header is ignored: a locked-out client cannot escape by it.
    for i in 0..5 {
        let guess = format!("Bearer guess-{i}");
        let r = request("203.0.113.60", &format!("198.51.100.{i}"), &guess);
        assert_eq!(s.send(r).await.0, StatusCode::UNAUTHORIZED);
    }
    let r = request("203.0.113.60", "198.51.100.99", &alice);
    assert_eq!(s.send(r).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn groups_and_names_decide_who_sees_what() {
    let s = service(&config_toml(""), &users_toml()).await;
    let alice = basic("alice", "alice-pw");
    let bob = basic("bob", "bob-pw");
    assert_eq!(
        listed_titles(&s, &auth_header(&alice)).await,
        ["inbox", "soc only", "alice only", "everyone"]
    );
    assert_eq!(
        listed_titles(&s, &auth_header(&bob)).await,
        ["inbox", "everyone"],
        "collections bob cannot read are hidden"
    );
    // can_read/can_write are the caller's.
    let inbox = format!("/feeds/collections/{INBOX}/");
    let (_, as_alice) = get_json(&s, &inbox, &auth_header(&alice)).await;
    assert_eq!(
        (&as_alice["can_read"], &as_alice["can_write"]),
        (&true.into(), &false.into())
    );
    let (_, as_bob) = get_json(&s, &inbox, &auth_header(&bob)).await;
    assert_eq!(
        (&as_bob["can_read"], &as_bob["can_write"]),
        (&true.into(), &true.into())
    );
    let (_, soc) = get_json(
        &s,
        &format!("/feeds/collections/{SOC_ONLY}/"),
        &auth_header(&alice),
    )
    .await;
    assert_eq!(
        (&soc["can_read"], &soc["can_write"]),
        (&true.into(), &false.into())
    );
    // A hidden collection is a 404 for bob, everywhere under it.
    for path in [
        format!("/feeds/collections/{SOC_ONLY}/"),
        format!("/feeds/collections/{SOC_ONLY}/objects/"),
        format!("/feeds/collections/{SOC_ONLY}/manifest/"),
        format!("/feeds/collections/{ALICE_ONLY}/objects/"),
    ] {
        let (status, body) = get_json(&s, &path, &auth_header(&bob)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(body["http_status"], "404");
    }
}

#[tokio::test]
async fn writes_need_the_write_right() {
    let s = service(&config_toml(""), &users_toml()).await;
    let alice = basic("alice", "alice-pw");
    let bob = basic("bob", "bob-pw");
    assert_eq!(
        post_objects(&s, INBOX, 1, &auth_header(&alice)).await,
        StatusCode::FORBIDDEN,
        "alice reads the inbox but may not write it"
    );
    assert_eq!(
        post_objects(&s, INBOX, 1, &auth_header(&bob)).await,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        post_objects(&s, INBOX, 1, &[("x-api-key", "erin-key")]).await,
        StatusCode::ACCEPTED,
        "group members write with an API key too"
    );
    assert_eq!(
        post_objects(&s, INBOX, 1, &[]).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn anonymous_read_is_per_collection() {
    let s = service(&config_toml(PUBLIC_COLLECTION), &users_toml()).await;
    assert_eq!(listed_titles(&s, &[]).await, ["public"]);
    let (status, _) = get_json(&s, &format!("/feeds/collections/{PUBLIC}/objects/"), &[]).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = get_json(&s, &format!("/feeds/collections/{PUBLIC}/"), &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&body["can_read"], &body["can_write"]),
        (&true.into(), &false.into())
    );
    for c in [EVERYONE, SOC_ONLY] {
        let (status, _) = get_json(&s, &format!("/feeds/collections/{c}/objects/"), &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{c}");
    }
    assert_eq!(
        post_objects(&s, INBOX, 1, &[]).await,
        StatusCode::UNAUTHORIZED
    );
    // Wrong credentials are refused even where anonymous reads are allowed.
    let (status, _) = get_json(
        &s,
        &format!("/feeds/collections/{PUBLIC}/objects/"),
        &auth_header(&basic("alice", "wrong")),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_cursor_grants_nothing_to_another_user() {
    let s = service(&config_toml(""), &users_toml()).await;
    let bob = basic("bob", "bob-pw");
    assert_eq!(
        post_objects(&s, INBOX, 3, &auth_header(&bob)).await,
        StatusCode::ACCEPTED
    );
    let alice = basic("alice", "alice-pw");
    let objects = format!("/feeds/collections/{INBOX}/objects/");
    let (status, page) = get_json(&s, &format!("{objects}?limit=1"), &auth_header(&alice)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["more"], true);
    let next = page["next"].as_str().expect("next").to_string();
    let (status, _) = get_json(&s, &format!("{objects}?next={next}"), &auth_header(&alice)).await;
    assert_eq!(status, StatusCode::OK, "alice continues her own paging");
    let (status, body) = get_json(&s, &format!("{objects}?next={next}"), &auth_header(&bob)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

fn with_certificate(common_name: &str) -> axum::http::request::Builder {
    from_address(get("/feeds/collections/"), "192.0.2.20").extension(Arc::new(CertificateNames {
        common_names: vec![common_name.into()],
        alt_names: vec![format!("{common_name}.example.com")],
    }))
}

#[tokio::test]
async fn client_certificates_name_users() {
    let s = service(&config_toml(""), &users_toml()).await;
    let request = with_certificate("alice")
        .body(Body::empty())
        .expect("request");
    let (status, _, body) = s.send(request).await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&body).contains("alice only"));
    for cn in ["carol", "mallory"] {
        let request = with_certificate(cn).body(Body::empty()).expect("request");
        assert_eq!(s.send(request).await.0, StatusCode::UNAUTHORIZED, "{cn}");
    }
    // Credentials in headers take precedence over the certificate.
    let request = with_certificate("alice")
        .header(header::AUTHORIZATION, basic("bob", "bob-pw"))
        .body(Body::empty())
        .expect("request");
    let (_, _, body) = s.send(request).await;
    assert!(!String::from_utf8_lossy(&body).contains("alice only"));
}

#[tokio::test]
async fn client_certificate_names_are_configurable() {
    let by_san = "[auth]\nclient_cert_user = \"san\"\n";
    let s = service(&config_toml(by_san), &users_toml()).await;
    let request = with_certificate("alice")
        .body(Body::empty())
        .expect("request");
    assert_eq!(
        s.send(request).await.0,
        StatusCode::UNAUTHORIZED,
        "the SAN alice.example.com names no user"
    );
    let off = format!("{PUBLIC_COLLECTION}[auth]\nclient_cert_user = \"none\"\n");
    let s = service(&config_toml(&off), &users_toml()).await;
    let request = with_certificate("alice")
        .body(Body::empty())
        .expect("request");
    let (status, _, body) = s.send(request).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "certificates identify nobody: anonymous"
    );
    let listed: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(listed["collections"].as_array().map(Vec::len), Some(1));
}

#[test]
fn auth_settings_reject_nonsense() {
    for bad in [
        "[auth]\nfailure_window_secs = 0\n",
        "[auth]\nlockout_secs = 0\n",
        "[auth]\nclient_cert_user = \"email\"\n",
        "[auth]\nmax_failures = 3\n",
    ] {
        assert!(
            taxiway_server::config::parse(&config_toml(bad)).is_err(),
            "{bad}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_with_a_new_credential_verifies_it_a_few_times_not_every_time() {
    let s = Arc::new(service(&config_toml(""), &users_toml()).await);
    let bursts: Vec<_> = (0..32)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move {
                let alice = basic("alice", "alice-pw");
                get_json(&s, "/feeds/", &auth_header(&alice)).await.0
            })
        })
        .collect();
    for b in bursts {
        assert_eq!(b.await.expect("task"), StatusCode::OK);
    }
    let metrics = s.state.metrics.render(None);
    let verifications: usize = metrics
        .lines()
        .find_map(|l| l.strip_prefix("taxiway_auth_verifications_total "))
        .and_then(|n| n.trim().parse().ok())
        .expect("the counter");
    let slots = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert!(
        (1..=slots).contains(&verifications),
        "{verifications} argon2 runs for 32 requests (at most one per slot)"
    );
}

#[test]
fn hash_password_reads_stdin_never_argv() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let bin = env!("CARGO_BIN_EXE_taxiway-server");
    let mut child = Command::new(bin)
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"s3cret pass\n")
        .expect("write");
    let out = child.wait_with_output().expect("output");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let phc = String::from_utf8(out.stdout).expect("utf-8");
    let hash = auth::password::SecretHash::parse(phc.trim()).expect("an argon2id PHC string");
    assert!(
        hash.verify(b"s3cret pass"),
        "the whole line, spaces included, without the newline"
    );
    assert!(!hash.verify(b"s3cret pass\n"));

    let empty = Command::new(bin)
        .arg("hash-password")
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert!(!empty.status.success(), "an empty secret is refused");
    let argv = Command::new(bin)
        .args(["hash-password", "hunter2"])
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert!(
        !argv.status.success(),
        "a secret on the command line is refused"
    );
}

#[test]
fn hash_password_api_key_tags_the_hash() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let bin = env!("CARGO_BIN_EXE_taxiway-server");
    let run = |key: &[u8]| {
        let mut child = Command::new(bin)
            .args(["hash-password", "--api-key"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(key)
            .expect("write");
        child.wait_with_output().expect("output")
    };
    let key = b"Zm9vYmFyYmF6cXV4LXJhbmRvbS1rZXk";
    let out = run(&[key.as_slice(), b"\n"].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let phc = String::from_utf8(out.stdout).expect("utf-8");
    let hash = auth::password::SecretHash::parse(phc.trim()).expect("PHC");
    assert!(hash.verify(key));
    assert_eq!(hash.tag(), Some(auth::password::api_key_tag(key)));
    let short = run(b"short-key\n");
    assert!(!short.status.success(), "a short key is refused");
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 20"));
}

#[tokio::test]
async fn tagged_api_keys_work_in_every_form() {
    let key = "tagged-key-for-frank-0123456789";
    let other = "tagged-key-for-gina-0123456789";
    let users = format!(
        "{}\n[[users]]\nname = \"frank\"\npassword_hash = \"{}\"\napi_key_hash = \"{}\"\ngroups = [\"producers\"]\n\
         \n[[users]]\nname = \"gina\"\napi_key_hash = \"{}\"\ndisabled = true\n",
        users_toml(),
        quick_hash("frank-pw"),
        auth::password::hash_api_key(key.as_bytes()).expect("hash"),
        auth::password::hash_api_key(other.as_bytes()).expect("hash"),
    );
    let s = service(&config_toml(""), &users).await;
    let inbox = format!("/feeds/collections/{INBOX}/");
    for (name, value) in [
        ("authorization", format!("Bearer {key}")),
        ("x-api-key", key.to_string()),
        ("authorization", basic("", key)),
        ("authorization", basic("anyone", key)),
        ("authorization", basic("frank", key)),
        ("authorization", basic("frank", "frank-pw")),
        ("authorization", "Bearer bob-key".to_string()),
    ] {
        let (status, body) = get_json(&s, &inbox, &[(name, &value)]).await;
        assert_eq!(status, StatusCode::OK, "{name}: {value}");
        assert_eq!(body["can_write"], true, "{name}: {value}");
    }
    for (name, value) in [
        ("authorization", format!("Bearer {other}")),
        ("authorization", basic("alice", key)),
        ("authorization", format!("Bearer {key}x")),
    ] {
        let (status, _) = get_json(&s, &inbox, &[(name, &value)]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}: {value}");
    }
}
