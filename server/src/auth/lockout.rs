//! Temporary lockout after repeated authentication failures, per user name and per
//! client address. State is in memory: each replica counts what it sees, and a
//! restart forgives.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most subjects tracked at once: beyond it (an attack from very many addresses)
/// expired records are dropped, then new subjects go uncounted until room frees up.
const MAX_TRACKED: usize = 100_000;

/// Who failures are counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    /// A configured user name (unknown names are never tracked).
    User(String),
    /// A client address.
    Address(IpAddr),
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::User(name) => write!(f, "user {name}"),
            Subject::Address(addr) => write!(f, "address {addr}"),
        }
    }
}

/// The rule failures are counted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Failures within `window` that start a lockout; 0 = never.
    pub max_failures: u32,
    /// The counting window.
    pub window: Duration,
    /// How long a lockout lasts.
    pub lockout: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Record {
    window_start: Instant,
    failures: u32,
    locked_until: Option<Instant>,
}

impl Record {
    fn is_locked(&self, now: Instant) -> bool {
        self.locked_until.is_some_and(|t| now < t)
    }
}

/// Failure counts and lockouts.
#[derive(Debug, Default)]
pub struct Lockouts {
    records: Mutex<HashMap<Subject, Record>>,
}

impl Lockouts {
    /// An empty tracker.
    pub fn new() -> Lockouts {
        Lockouts::default()
    }

    /// Whether `subject` is locked out at `now`.
    pub fn is_locked(&self, subject: &Subject, now: Instant) -> bool {
        self.lock().get(subject).is_some_and(|r| r.is_locked(now))
    }

    /// Count a failure; returns whether it started a lockout.
    pub fn failure(&self, subject: Subject, limit: Limit, now: Instant) -> bool {
        if limit.max_failures == 0 {
            return false;
        }
        let mut records = self.lock();
        if records.len() >= MAX_TRACKED && !records.contains_key(&subject) {
            records.retain(|_, r| r.is_locked(now) || now < r.window_start + limit.window);
            if records.len() >= MAX_TRACKED {
                return false;
            }
        }
        let record = records.entry(subject).or_insert(Record {
            window_start: now,
            failures: 0,
            locked_until: None,
        });
        if record.is_locked(now) {
            return false;
        }
        if now >= record.window_start + limit.window || record.locked_until.is_some() {
            *record = Record {
                window_start: now,
                failures: 0,
                locked_until: None,
            };
        }
        record.failures += 1;
        if record.failures >= limit.max_failures {
            record.locked_until = Some(now + limit.lockout);
            return true;
        }
        false
    }

    /// A success forgets the subject's failures (not a running lockout).
    pub fn success(&self, subject: &Subject, now: Instant) {
        let mut records = self.lock();
        if records.get(subject).is_some_and(|r| !r.is_locked(now)) {
            records.remove(subject);
        }
    }

    /// Subjects currently tracked.
    pub fn tracked(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Subject, Record>> {
        // A panic while holding the lock leaves counts that are still usable.
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Limit = Limit {
        max_failures: 3,
        window: Duration::from_secs(60),
        lockout: Duration::from_secs(300),
    };

    fn alice() -> Subject {
        Subject::User("alice".into())
    }

    #[test]
    fn locks_after_max_failures_within_the_window() {
        let l = Lockouts::new();
        let t0 = Instant::now();
        assert!(!l.failure(alice(), LIMIT, t0));
        assert!(!l.failure(alice(), LIMIT, t0 + Duration::from_secs(1)));
        assert!(!l.is_locked(&alice(), t0 + Duration::from_secs(2)));
        assert!(
            l.failure(alice(), LIMIT, t0 + Duration::from_secs(2)),
            "third failure locks"
        );
        assert!(l.is_locked(&alice(), t0 + Duration::from_secs(3)));
        assert!(!l.is_locked(&Subject::User("bob".into()), t0 + Duration::from_secs(3)));
    }

    #[test]
    fn lockout_expires() {
        let l = Lockouts::new();
        let t0 = Instant::now();
        for _ in 0..3 {
            l.failure(alice(), LIMIT, t0);
        }
        assert!(l.is_locked(&alice(), t0 + Duration::from_secs(299)));
        let after = t0 + Duration::from_secs(300);
        assert!(!l.is_locked(&alice(), after));
        // After expiry counting starts over: one failure does not re-lock.
        assert!(!l.failure(alice(), LIMIT, after));
        assert!(!l.is_locked(&alice(), after));
    }

    #[test]
    fn failures_outside_the_window_do_not_add_up() {
        let l = Lockouts::new();
        let t0 = Instant::now();
        l.failure(alice(), LIMIT, t0);
        l.failure(alice(), LIMIT, t0 + Duration::from_secs(30));
        assert!(!l.failure(alice(), LIMIT, t0 + Duration::from_secs(61)));
        assert!(!l.is_locked(&alice(), t0 + Duration::from_secs(62)));
    }

    #[test]
    fn success_forgets_failures_but_not_a_lockout() {
        let l = Lockouts::new();
        let t0 = Instant::now();
        l.failure(alice(), LIMIT, t0);
        l.failure(alice(), LIMIT, t0);
        l.success(&alice(), t0);
        assert!(!l.failure(alice(), LIMIT, t0), "count restarted");
        l.failure(alice(), LIMIT, t0);
        assert!(l.failure(alice(), LIMIT, t0));
        l.success(&alice(), t0);
        assert!(
            l.is_locked(&alice(), t0),
            "a lockout is not lifted by a success"
        );
    }

    #[test]
    fn zero_disables_and_addresses_count_separately() {
        let l = Lockouts::new();
        let t0 = Instant::now();
        let off = Limit {
            max_failures: 0,
            ..LIMIT
        };
        for _ in 0..10 {
            assert!(!l.failure(alice(), off, t0));
        }
        assert_eq!(l.tracked(), 0);
        let addr = Subject::Address("192.0.2.7".parse().expect("ip"));
        for _ in 0..3 {
            l.failure(addr.clone(), LIMIT, t0);
        }
        assert!(l.is_locked(&addr, t0));
        assert!(!l.is_locked(&alice(), t0));
        assert_eq!(addr.to_string(), "address 192.0.2.7");
    }
}
