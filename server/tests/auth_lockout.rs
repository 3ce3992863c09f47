//! Issue 20: a lockout that cannot deny a user forever. An attacker failing from one
//! address locks that address (and the user there) out, never the real user from
//! elsewhere; the lockout table stays bounded and keeps locking attackers out when an
//! attack has filled it.

mod common;
mod fixtures;

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, StatusCode};
use fixtures::*;
use taxiway_server::auth::lockout::{Limit, Lockouts, Subject, MAX_TRACKED};

const STRICT: &str = r#"
[auth]
max_failures_per_user = 3
max_failures_per_address = 5
failure_window_secs = 600
lockout_secs = 600
"#;

async fn status_from(s: &common::TestApp, address: &str, authorization: &str) -> StatusCode {
    let request = from_address(get("/feeds/"), address)
        .header(header::AUTHORIZATION, authorization)
        .body(Body::empty())
        .expect("request");
    s.send(request).await.0
}

#[tokio::test]
async fn an_attacker_at_one_address_does_not_lock_the_real_user_out_elsewhere() {
    let s = service(&config_toml(STRICT), &users_toml()).await;
    let attacker = "203.0.113.66";
    // Far more failures than either limit, against alice by name, by key, unknown names.
    for i in 0..20 {
        let guesses = [
            basic("alice", &format!("guess-{i}")),
            format!("Bearer guess-{i}"),
            basic(&format!("nobody-{i}"), "x"),
        ];
        for guess in &guesses {
            assert_eq!(
                status_from(&s, attacker, guess).await,
                StatusCode::UNAUTHORIZED
            );
        }
    }
    let alice = basic("alice", "alice-pw");
    assert_eq!(
        status_from(&s, attacker, &alice).await,
        StatusCode::UNAUTHORIZED,
        "the attacker's address is locked out, right password or not"
    );
    for real in ["198.51.100.7", "2001:db8:7::1"] {
        assert_eq!(
            status_from(&s, real, &alice).await,
            StatusCode::OK,
            "alice from {real} still gets in"
        );
    }
    assert_eq!(
        status_from(&s, "198.51.100.8", "Bearer bob-key").await,
        StatusCode::OK
    );
    let metrics = s.state.metrics.render(None);
    assert!(
        metrics.contains("taxiway_auth_lockouts_total{subject=\"address\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_ipv6_attacker_cannot_step_around_its_lockout_within_its_64() {
    let s = service(&config_toml(STRICT), &users_toml()).await;
    for i in 0..5 {
        let from = format!("2001:db8:66:1::{:x}", i + 1);
        assert_eq!(
            status_from(&s, &from, &format!("Bearer guess-{i}")).await,
            StatusCode::UNAUTHORIZED
        );
    }
    let alice = basic("alice", "alice-pw");
    assert_eq!(
        status_from(&s, "2001:db8:66:1:ffff::9", &alice).await,
        StatusCode::UNAUTHORIZED,
        "the whole /64 is locked out"
    );
    assert_eq!(
        status_from(&s, "2001:db8:66:2::1", &alice).await,
        StatusCode::OK,
        "the next /64 is not"
    );
}

#[tokio::test]
async fn a_flood_of_addresses_through_a_trusted_proxy_still_locks_the_attacker_out() {
    let trusting = config_toml(STRICT).replace(
        "title = \"Auth tests\"",
        "title = \"Auth tests\"\ntrusted_proxies = [\"10.0.0.0/8\"]",
    );
    let s = service(&trusting, &users_toml()).await;
    let through_proxy = |client: String, auth: &str| {
        from_address(get("/feeds/"), "10.0.0.1")
            .header("x-forwarded-for", client)
            .header(header::AUTHORIZATION, auth)
            .body(Body::empty())
            .expect("request")
    };
    // Many one-off failures from different clients, then one persistent attacker.
    for i in 0..2000u32 {
        let client = Ipv4Addr::from(0xc633_0000 + i).to_string(); // 198.51.0.0/16
        let r = through_proxy(client, "Bearer spray");
        assert_eq!(s.send(r).await.0, StatusCode::UNAUTHORIZED);
    }
    assert!(s.state.auth.lockouts_tracked() >= 2000);
    for i in 0..5 {
        let r = through_proxy("203.0.113.99".into(), &format!("Bearer guess-{i}"));
        assert_eq!(s.send(r).await.0, StatusCode::UNAUTHORIZED);
    }
    let alice = basic("alice", "alice-pw");
    let r = through_proxy("203.0.113.99".into(), &alice);
    assert_eq!(s.send(r).await.0, StatusCode::UNAUTHORIZED, "locked out");
    let r = through_proxy("203.0.113.100".into(), &alice);
    assert_eq!(s.send(r).await.0, StatusCode::OK, "others are not");
}

#[test]
fn a_full_table_keeps_locking_attackers_out_in_constant_time() {
    let table = Lockouts::new();
    let limit = Limit {
        max_failures: 5,
        window: Duration::from_secs(600),
        lockout: Duration::from_secs(900),
        max_lockout: Duration::from_secs(3600),
    };
    let now = Instant::now();
    let early = Subject::address("192.0.2.1".parse().expect("ip"));
    for _ in 0..5 {
        table.failure(early.clone(), limit, now);
    }
    assert!(table.is_locked(&early, now));

    // Attacker entries: three times what the table holds, each failing once.
    let flood = 3 * MAX_TRACKED as u32;
    let started = Instant::now();
    for i in 0..flood {
        let address = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
        table.failure(Subject::address(address), limit, now);
    }
    let per_failure = started.elapsed() / flood;
    assert!(
        table.tracked() <= table.capacity() && table.capacity() <= MAX_TRACKED,
        "bounded: {} of {}",
        table.tracked(),
        table.capacity()
    );
    assert!(
        per_failure < Duration::from_micros(100),
        "{per_failure:?} per failure: no scan of the table"
    );
    assert!(table.is_locked(&early, now), "a running lockout survives");

    // A new attacker, with the table full: still counted, still locked out.
    let late = Subject::user_at("alice", "203.0.113.5".parse().expect("ip"));
    for _ in 0..4 {
        assert_eq!(table.failure(late.clone(), limit, now), None);
    }
    assert_eq!(
        table.failure(late.clone(), limit, now),
        Some(Duration::from_secs(900))
    );
    assert!(table.is_locked(&late, now));
    assert!(
        !table.is_locked(
            &Subject::user_at("alice", "198.51.100.5".parse().expect("ip")),
            now
        ),
        "alice elsewhere is not"
    );
}
