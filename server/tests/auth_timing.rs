//! Issue 20: authentication costs the same whoever the caller claims to be. With 20
//! API-key users, the median time of a refusal as an unknown user, with a bad API key,
//! as a locked-out user and as a known user with a wrong password stay within 2x of
//! each other — with API key hashes that carry a lookup tag (one verification each)
//! and with legacy untagged ones (searched, and every refusal padded to the search).
//!
//! Real argon2 parameters (the crate's defaults), built with the optimised argon2 of
//! the dev profile. One test, run sequentially, so the cases do not compete for cores.

mod common;
mod fixtures;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, StatusCode};
use fixtures::*;
use taxiway_server::auth::password::{self, SecretHash};

const USERS: usize = 20;
const SAMPLES: usize = 9;

const LOCKOUT: &str = r#"
[auth]
max_failures_per_user = 3
max_failures_per_address = 100000
lockout_secs = 3600
"#;

fn users_toml(tagged: bool) -> String {
    let mut text = String::new();
    for i in 0..USERS {
        let key = format!("user{i}-api-key-0123456789abcdef");
        let key_hash = if tagged {
            password::hash_api_key(key.as_bytes())
        } else {
            password::hash(key.as_bytes())
        }
        .expect("hash");
        let pw = password::hash(format!("user{i}-pw").as_bytes()).expect("hash");
        text.push_str(&format!(
            "[[users]]\nname = \"user{i}\"\npassword_hash = \"{pw}\"\napi_key_hash = \"{key_hash}\"\n\n"
        ));
    }
    text
}

async fn timed(s: &common::TestApp, address: &str, authorization: &str) -> Duration {
    let request = from_address(get("/feeds/"), address)
        .header(header::AUTHORIZATION, authorization)
        .body(Body::empty())
        .expect("request");
    let started = Instant::now();
    let (status, _, _) = s.send(request).await;
    let took = started.elapsed();
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{authorization}");
    took
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Medians of the four refusals, in milliseconds: unknown user, bad API key,
/// locked-out user, known user with a wrong password.
async fn medians(tagged: bool) -> [f64; 4] {
    let s = service(&config_toml(LOCKOUT), &users_toml(tagged)).await;
    // Lock user0 out from one address.
    for _ in 0..3 {
        timed(&s, "192.0.2.66", &basic("user0", "guess")).await;
    }
    let mut cases: [Vec<Duration>; 4] = Default::default();
    for n in 0..SAMPLES {
        // Interleaved, each from its own address, so no case runs warmer than another
        // and only the locked-out one is locked.
        let unknown = basic(&format!("nobody{n}"), "user1-pw");
        let bad_key = format!("Bearer not-a-key-{n}-0123456789abcdef");
        let wrong = basic(&format!("user{}", 1 + n % (USERS - 1)), "wrong-pw");
        cases[0].push(timed(&s, &format!("198.51.100.{n}"), &unknown).await);
        cases[1].push(timed(&s, &format!("198.51.100.{}", 100 + n), &bad_key).await);
        cases[2].push(timed(&s, "192.0.2.66", &basic("user0", "user0-pw")).await);
        cases[3].push(timed(&s, &format!("203.0.113.{n}"), &wrong).await);
    }
    let metrics = s.state.metrics.render(None);
    assert!(
        metrics.contains(&format!(
            "taxiway_auth_failures_total{{reason=\"locked-out\"}} {SAMPLES}"
        )),
        "the locked-out case was locked out: {metrics}"
    );
    cases.map(|c| median(c).as_secs_f64() * 1000.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_take_the_same_time_whoever_is_claimed() {
    // One argon2 verification with the real parameters, for scale.
    let one = SecretHash::parse(&password::hash(b"x").expect("hash")).expect("parse");
    let started = Instant::now();
    for _ in 0..3 {
        one.verify(b"y");
    }
    let verification = started.elapsed().as_secs_f64() * 1000.0 / 3.0;

    let labels = [
        "unknown user",
        "bad API key",
        "locked-out user",
        "known user, wrong password",
    ];
    for tagged in [true, false] {
        let m = medians(tagged).await;
        let kind = if tagged {
            "tagged API key hashes"
        } else {
            "untagged API key hashes"
        };
        eprintln!("{kind}, {USERS} API-key users; one verification {verification:.1} ms; medians of {SAMPLES}:");
        for (label, ms) in labels.iter().zip(m) {
            eprintln!("  {label:<28} {ms:7.1} ms");
        }
        let (lo, hi) = m
            .iter()
            .fold((f64::MAX, 0.0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
        assert!(hi < 2.0 * lo, "{kind}: medians {m:?} differ by 2x or more");
        if tagged {
            // One verification each (plus the padding margin), never one per user.
            assert!(
                hi < 6.0 * verification,
                "{kind}: medians {m:?} vs one verification {verification:.1} ms"
            );
        }
    }
}
