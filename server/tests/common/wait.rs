//! Waiting in tests: poll a condition until it holds, instead of sleeping for a
//! guessed time. A condition that never holds fails the test, naming what was awaited.
//!
//! [`eventually`] is for async tests, [`wait_until`] its blocking twin for tests that
//! drive a server process or plain threads. Both check at once, then every [`EVERY`],
//! for up to [`PATIENCE`] (or the time given). Where a failure should say more than
//! what was awaited (a server's log), [`holds_within`] and [`holds_within_blocking`]
//! answer whether the condition came to hold, and the test asserts with its message.
//! What a condition asserts inside stays asserted: only *when* it is checked changes.
//!
//! Expiry is not waited for at all: code that measures time takes a
//! `taxiway_server::clock::Clock`, and the test moves a `ManualClock` instead.

use std::time::{Duration, Instant};

/// How long a condition may take to hold before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// How often a condition is checked.
pub const EVERY: Duration = Duration::from_millis(20);

/// Wait until `check` holds (at most [`PATIENCE`]); panics naming `what` otherwise.
pub async fn eventually(what: &str, check: impl AsyncFnMut() -> bool) {
    assert!(
        holds_within(PATIENCE, check).await,
        "timed out waiting for: {what}"
    );
}

/// Block until `check` holds (at most `within`); panics naming `what` otherwise.
pub fn wait_until(what: &str, within: Duration, check: impl FnMut() -> bool) {
    assert!(
        holds_within_blocking(within, check),
        "timed out waiting for: {what}"
    );
}

/// Poll `check` until it holds or `within` has passed: whether it held.
pub async fn holds_within(within: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(EVERY).await;
    }
}

/// [`holds_within`], blocking the thread between checks.
pub fn holds_within_blocking(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(EVERY);
    }
}
