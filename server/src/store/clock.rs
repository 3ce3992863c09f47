//! The `date_added` clock.

use std::sync::atomic::{AtomicI64, Ordering};

use crate::stix::timestamp::now_us;
use crate::store::micros::Micros;

/// Hands out strictly increasing `date_added` stamps, never behind the wall clock.
///
/// Stamps are taken inside the store's single write transaction, so commit order is
/// stamp order: an object committed after a poll always sorts after that poll's
/// `X-TAXII-Date-Added-Last`.
#[derive(Debug, Default)]
pub struct Clock {
    last: AtomicI64,
}

impl Clock {
    /// A clock that will never hand out a stamp at or before `last`.
    pub fn starting_after(last: Micros) -> Clock {
        Clock {
            last: AtomicI64::new(last),
        }
    }

    /// The next stamp: `max(now, previous + 1µs)`.
    pub fn stamp(&self) -> Micros {
        let now = now_us();
        let mut prev = self.last.load(Ordering::Relaxed);
        loop {
            let next = now.max(prev + 1);
            match self
                .last
                .compare_exchange_weak(prev, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return next,
                Err(actual) => prev = actual,
            }
        }
    }

    /// Hand out `n` consecutive stamps at once, as `n` calls of [`Clock::stamp`] in a
    /// row would: returns `base`, the stamps being `base + 1 ..= base + n`.
    pub fn reserve(&self, n: i64) -> Micros {
        let now = now_us();
        let mut prev = self.last.load(Ordering::Relaxed);
        loop {
            let base = (now - 1).max(prev);
            match self.last.compare_exchange_weak(
                prev,
                base + n.max(0),
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return base,
                Err(actual) => prev = actual,
            }
        }
    }

    /// Never hand out a stamp at or before `last` from now on (stamps another writer
    /// of the same store handed out).
    pub fn advance_past(&self, last: Micros) {
        self.last.fetch_max(last, Ordering::AcqRel);
    }

    /// The last stamp handed out.
    pub fn last(&self) -> Micros {
        self.last.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_strictly_increase_even_when_the_clock_is_behind() {
        let far_future = now_us() + 3_600_000_000;
        let clock = Clock::starting_after(far_future);
        let a = clock.stamp();
        let b = clock.stamp();
        assert_eq!(a, far_future + 1);
        assert_eq!(b, far_future + 2);
        let base = clock.reserve(3);
        assert_eq!(base, far_future + 2);
        assert_eq!(clock.stamp(), far_future + 6);
        let fresh = Clock::starting_after(0);
        let base = fresh.reserve(2);
        assert!(base >= now_us() - 1_000_000, "stamps at wall-clock time");
        assert_eq!(fresh.last(), base + 2);
    }

    #[test]
    fn stamps_follow_the_wall_clock() {
        let clock = Clock::default();
        let before = now_us();
        let s = clock.stamp();
        assert!(s >= before);
        assert!(clock.stamp() > s);
    }
}
