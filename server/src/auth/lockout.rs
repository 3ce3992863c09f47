//! Temporary lockout after repeated authentication failures, per client address and
//! per (user name, client address) pair. State is in memory: each replica counts what
//! it sees, and a restart forgives.
//!
//! Nothing an attacker does from their own addresses locks a user out anywhere else:
//! a user name is only ever locked *for the address that failed*. A subject that is
//! locked out again soon after its lockout ended gets twice the previous lockout, up
//! to a maximum; a quiet period forgives.
//!
//! The table is bounded and never stops counting: it is split into shards (by a keyed
//! hash of the subject, so an attacker cannot aim at one), and each shard keeps two
//! generations. New subjects go into the current one; when it is full it becomes the
//! previous one and the old previous one is dropped — except for the subjects still
//! locked out, which are carried over while there is room. Looking a subject up in
//! the previous generation moves it back into the current one. Every operation is
//! O(1) amortized under one shard's lock; nothing scans the whole table.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::listener::clients::client_network;

/// Most subjects tracked at once (about: see [`Lockouts::with_capacity`]).
pub const MAX_TRACKED: usize = 100_000;

/// Shards of a full-size table.
const SHARDS: usize = 16;

/// Who failures are counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    /// A client address (an IPv6 address stands for its /64).
    Address(IpAddr),
    /// A configured user name (unknown names are never tracked), from one client
    /// address.
    UserAt(String, IpAddr),
}

impl Subject {
    /// The subject of a client address.
    pub fn address(ip: IpAddr) -> Subject {
        Subject::Address(client_network(ip))
    }

    /// The subject of user `name` trying from `ip`.
    pub fn user_at(name: &str, ip: IpAddr) -> Subject {
        Subject::UserAt(name.to_string(), client_network(ip))
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Address(addr) => write!(f, "address {}", Network(*addr)),
            Subject::UserAt(name, addr) => write!(f, "user {name} from {}", Network(*addr)),
        }
    }
}

struct Network(IpAddr);

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
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
    /// How long a first lockout lasts; each further one, while the subject has not
    /// been quiet for `max_lockout` + `window`, lasts twice the one before.
    pub lockout: Duration,
    /// The longest a lockout lasts.
    pub max_lockout: Duration,
}

impl Limit {
    /// The lockout after `strikes` lockouts (the first is 1).
    fn duration(&self, strikes: u32) -> Duration {
        let doubled = self
            .lockout
            .checked_mul(1u32 << strikes.saturating_sub(1).min(20))
            .unwrap_or(Duration::MAX);
        doubled.min(self.max_lockout.max(self.lockout))
    }

    /// How long after its last failure a subject is forgiven its past lockouts.
    fn forgiveness(&self) -> Duration {
        self.max_lockout.max(self.lockout) + self.window
    }
}

#[derive(Debug, Clone, Copy)]
struct Record {
    window_start: Instant,
    failures: u32,
    locked_until: Option<Instant>,
    /// Lockouts so far (growing durations).
    strikes: u32,
    last_failure: Instant,
    /// Until when the record says something worth keeping through a generation change.
    keep_until: Instant,
}

impl Record {
    fn new(now: Instant) -> Record {
        Record {
            window_start: now,
            failures: 0,
            locked_until: None,
            strikes: 0,
            last_failure: now,
            keep_until: now,
        }
    }

    fn is_locked(&self, now: Instant) -> bool {
        self.locked_until.is_some_and(|t| now < t)
    }
}

/// One shard: two generations of records.
#[derive(Debug, Default)]
struct Shard {
    current: HashMap<Subject, Record>,
    previous: HashMap<Subject, Record>,
}

impl Shard {
    /// The record of `subject`, moved into the current generation.
    fn find(&mut self, subject: &Subject) -> Option<&mut Record> {
        if !self.current.contains_key(subject) {
            let record = self.previous.remove(subject)?;
            self.current.insert(subject.clone(), record);
        }
        self.current.get_mut(subject)
    }

    /// The record of `subject`, a new one if it has none (which may start a new generation).
    fn find_or_insert(&mut self, subject: Subject, now: Instant, generation: usize) -> &mut Record {
        if self.find(&subject).is_none() {
            if self.current.len() >= generation {
                self.rotate(now, generation);
            }
            self.current.insert(subject.clone(), Record::new(now));
        }
        self.current
            .entry(subject)
            .or_insert_with(|| Record::new(now))
    }

    /// The current generation becomes the previous one; of the old previous one, what
    /// is still worth keeping (lockouts first) is carried over while there is room.
    fn rotate(&mut self, now: Instant, generation: usize) {
        let old = std::mem::replace(&mut self.previous, std::mem::take(&mut self.current));
        let room = 2 * generation;
        let (mut locked, mut remembered): (Vec<_>, Vec<_>) = old
            .into_iter()
            .filter(|(_, r)| now < r.keep_until)
            .partition(|(_, r)| r.is_locked(now));
        for (subject, record) in locked.drain(..).chain(remembered.drain(..)) {
            if self.previous.len() >= room {
                break;
            }
            self.previous.insert(subject, record);
        }
    }

    fn remove(&mut self, subject: &Subject) {
        self.current.remove(subject);
        self.previous.remove(subject);
    }

    fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }
}

/// Failure counts and lockouts.
#[derive(Debug)]
pub struct Lockouts {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    /// Records per shard generation.
    generation: usize,
}

impl Default for Lockouts {
    fn default() -> Self {
        Lockouts::new()
    }
}

impl Lockouts {
    /// An empty tracker of about [`MAX_TRACKED`] subjects.
    pub fn new() -> Lockouts {
        Lockouts::with_capacity(MAX_TRACKED)
    }

    /// An empty tracker holding at most about `capacity` subjects (at least a few).
    pub fn with_capacity(capacity: usize) -> Lockouts {
        let shards = (capacity / 4096).clamp(1, SHARDS);
        // Each shard holds a current generation, the previous one and what was carried
        // over: never more than four generations' worth.
        let generation = (capacity / shards / 4).max(1);
        Lockouts {
            shards: (0..shards).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: RandomState::new(),
            generation,
        }
    }

    fn shard(&self, subject: &Subject) -> MutexGuard<'_, Shard> {
        let index = (self.hasher.hash_one(subject) % self.shards.len() as u64) as usize;
        // A panic while holding the lock leaves counts that are still usable.
        self.shards[index].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `subject` is locked out at `now`.
    pub fn is_locked(&self, subject: &Subject, now: Instant) -> bool {
        self.shard(subject)
            .find(subject)
            .is_some_and(|r| r.is_locked(now))
    }

    /// Count a failure; returns how long the lockout it started lasts, if it did.
    pub fn failure(&self, subject: Subject, limit: Limit, now: Instant) -> Option<Duration> {
        if limit.max_failures == 0 {
            return None;
        }
        let mut shard = self.shard(&subject);
        let record = shard.find_or_insert(subject, now, self.generation);
        if record.is_locked(now) {
            return None;
        }
        if record.strikes > 0 && now >= record.last_failure + limit.forgiveness() {
            record.strikes = 0;
        }
        if now >= record.window_start + limit.window {
            record.window_start = now;
            record.failures = 0;
        }
        record.failures += 1;
        record.last_failure = now;
        record.keep_until = record.window_start + limit.window;
        if record.failures < limit.max_failures {
            return None;
        }
        record.strikes = record.strikes.saturating_add(1);
        let lockout = limit.duration(record.strikes);
        record.locked_until = Some(now + lockout);
        record.window_start = now;
        record.failures = 0;
        record.keep_until = now + lockout + limit.forgiveness();
        Some(lockout)
    }

    /// A success forgets the subject's failures and past lockouts (not a running one).
    pub fn success(&self, subject: &Subject, now: Instant) {
        let mut shard = self.shard(subject);
        if shard.find(subject).is_some_and(|r| !r.is_locked(now)) {
            shard.remove(subject);
        }
    }

    /// Subjects currently tracked.
    pub fn tracked(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    /// The most subjects this table holds.
    pub fn capacity(&self) -> usize {
        self.shards.len() * self.generation * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Limit = Limit {
        max_failures: 3,
        window: Duration::from_secs(60),
        lockout: Duration::from_secs(300),
        max_lockout: Duration::from_secs(1200),
    };

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn alice() -> Subject {
        Subject::user_at("alice", ip("192.0.2.1"))
    }

    #[test]
    fn locks_after_max_failures_within_the_window() {
        let l = Lockouts::new();
        let t0 = Instant::now();
        assert_eq!(l.failure(alice(), LIMIT, t0), None);
        assert_eq!(l.failure(alice(), LIMIT, t0 + Duration::from_secs(1)), None);
        assert!(!l.is_locked(&alice(), t0 + Duration::from_secs(2)));
        assert_eq!(
            l.failure(alice(), LIMIT, t0 + Duration::from_secs(2)),
            Some(Duration::from_secs(300)),
            "third failure locks"
        );
        assert!(l.is_locked(&alice(), t0 + Duration::from_secs(3)));
        assert!(!l.is_locked(
            &Subject::user_at("bob", ip("192.0.2.1")),
            t0 + Duration::from_secs(3)
        ));
        assert!(
            !l.is_locked(
                &Subject::user_at("alice", ip("192.0.2.2")),
                t0 + Duration::from_secs(3)
            ),
            "alice from elsewhere is not locked"
        );
    }

    #[test]
    fn lockout_expires_and_repeat_lockouts_grow_to_the_maximum() {
        let l = Lockouts::new();
        let mut t = Instant::now();
        let mut lengths = Vec::new();
        for _ in 0..5 {
            for _ in 0..2 {
                assert_eq!(l.failure(alice(), LIMIT, t), None);
            }
            let lockout = l.failure(alice(), LIMIT, t).expect("locks");
            assert!(l.is_locked(&alice(), t + lockout - Duration::from_secs(1)));
            assert_eq!(
                l.failure(alice(), LIMIT, t),
                None,
                "not counted while locked"
            );
            t += lockout;
            assert!(!l.is_locked(&alice(), t), "expires");
            lengths.push(lockout.as_secs());
        }
        assert_eq!(lengths, [300, 600, 1200, 1200, 1200]);
        // A quiet period forgives: the next lockout is a first one again.
        t += LIMIT.forgiveness();
        for _ in 0..2 {
            l.failure(alice(), LIMIT, t);
        }
        assert_eq!(l.failure(alice(), LIMIT, t), Some(Duration::from_secs(300)));
    }

    #[test]
    fn failures_outside_the_window_do_not_add_up() {
        let l = Lockouts::new();
        let t0 = Instant::now();
        l.failure(alice(), LIMIT, t0);
        l.failure(alice(), LIMIT, t0 + Duration::from_secs(30));
        assert_eq!(
            l.failure(alice(), LIMIT, t0 + Duration::from_secs(61)),
            None
        );
        assert!(!l.is_locked(&alice(), t0 + Duration::from_secs(62)));
    }

    #[test]
    fn success_forgets_failures_but_not_a_lockout() {
        let l = Lockouts::new();
        let t0 = Instant::now();
        l.failure(alice(), LIMIT, t0);
        l.failure(alice(), LIMIT, t0);
        l.success(&alice(), t0);
        assert_eq!(l.failure(alice(), LIMIT, t0), None, "count restarted");
        l.failure(alice(), LIMIT, t0);
        assert!(l.failure(alice(), LIMIT, t0).is_some());
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
            assert_eq!(l.failure(alice(), off, t0), None);
        }
        assert_eq!(l.tracked(), 0);
        let addr = Subject::address(ip("192.0.2.7"));
        for _ in 0..3 {
            l.failure(addr.clone(), LIMIT, t0);
        }
        assert!(l.is_locked(&addr, t0));
        assert!(!l.is_locked(&alice(), t0));
        assert_eq!(addr.to_string(), "address 192.0.2.7");
        assert_eq!(alice().to_string(), "user alice from 192.0.2.1");
    }

    #[test]
    fn ipv6_counts_by_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(
            Subject::address(ip("2001:db8:1:2:aaaa::1")),
            Subject::address(ip("2001:db8:1:2:bbbb::2"))
        );
        assert_ne!(
            Subject::address(ip("2001:db8:1:2::1")),
            Subject::address(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            Subject::address(ip("::ffff:192.0.2.7")),
            Subject::address(ip("192.0.2.7"))
        );
        assert_eq!(
            Subject::address(ip("2001:db8:1:2::1")).to_string(),
            "address 2001:db8:1:2::/64"
        );
    }

    #[test]
    fn a_full_table_keeps_counting_and_keeps_its_lockouts() {
        let l = Lockouts::with_capacity(3000);
        let t0 = Instant::now();
        let early = Subject::address(ip("198.51.100.1"));
        for _ in 0..3 {
            l.failure(early.clone(), LIMIT, t0);
        }
        assert!(l.is_locked(&early, t0));
        // A flood of new subjects, far more than the table holds.
        for i in 0..50_000u32 {
            let flood = Subject::address(IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000u32 + i)));
            l.failure(flood, LIMIT, t0);
        }
        assert!(
            l.tracked() <= l.capacity(),
            "{} > {}",
            l.tracked(),
            l.capacity()
        );
        assert!(l.is_locked(&early, t0), "a lockout survives the flood");
        // A new attacker is still counted and locked out.
        let late = Subject::address(ip("203.0.113.9"));
        for _ in 0..3 {
            l.failure(late.clone(), LIMIT, t0);
        }
        assert!(l.is_locked(&late, t0));
    }
}
