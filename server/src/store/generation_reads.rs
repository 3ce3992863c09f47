//! Coalesced reads of a collection's page generation.
//!
//! Every objects page asks the store for the generation of the collection's serving
//! view before it looks in the page cache (see `crate::page_cache`), so a warm page
//! costs one small read of the store — on PostgreSQL a round trip to the database. When
//! many clients page through the same collection at once, their reads are shared:
//! one read per collection is in flight at a time, and every caller that arrives while
//! it runs waits for the *next* one, which all of them share.
//!
//! A caller is never answered by a read that started before it asked: the generation
//! it gets is at least as new as the moment of its request, exactly as if it had read
//! it itself (a client that has seen its own POST answered gets a generation that
//! includes it). So at most two reads per collection are outstanding, and a burst of
//! `n` concurrent requests costs two reads instead of `n`.
//!
//! Reads run in the caller that leads them. A leader that goes away (its client hung
//! up) leaves its followers to read for themselves; a failed read gives every caller
//! that shared it the same error.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Mutex, PoisonError};

use tokio::sync::watch;

use super::{PageGeneration, StoreError};

/// What one read gives.
pub type Outcome = Result<Option<PageGeneration>, StoreError>;

/// Reads of page generations shared among concurrent callers, per collection.
#[derive(Debug, Default)]
pub struct GenerationReads {
    slots: Mutex<Slots>,
}

#[derive(Debug, Default)]
struct Slots {
    /// Numbers rounds, so a round is told apart from its successor in the same slot.
    next_round: u64,
    by_collection: HashMap<String, Slot>,
}

/// The rounds of one collection: the read in flight, and the one the callers who came
/// after it started wait for.
#[derive(Debug, Default)]
struct Slot {
    running: Option<Round>,
    pending: Option<Round>,
}

#[derive(Debug, Clone)]
struct Round {
    id: u64,
    outcome: watch::Receiver<Option<Outcome>>,
}

/// A caller's part in a round.
enum Part {
    /// Wait for this round's outcome.
    Follow(watch::Receiver<Option<Outcome>>),
    /// Read for this round, after the round in flight (if any) has finished.
    Lead {
        id: u64,
        publish: watch::Sender<Option<Outcome>>,
        after: Option<watch::Receiver<Option<Outcome>>>,
    },
}

impl GenerationReads {
    /// The generation of `collection`, from a read that `read` performs — this
    /// caller's, or one started after this call by a concurrent caller of the same
    /// collection.
    pub async fn read<F, Fut>(&self, collection: &str, read: F) -> Outcome
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Outcome>,
    {
        match self.join(collection) {
            Part::Follow(mut outcome) => {
                let shared = match outcome.wait_for(Option::is_some).await {
                    Ok(shared) => shared.clone(),
                    // The leader went away without reading.
                    Err(_) => None,
                };
                match shared {
                    Some(outcome) => outcome,
                    None => read().await,
                }
            }
            Part::Lead { id, publish, after } => {
                let lead = Leading {
                    reads: self,
                    collection,
                    id,
                };
                if let Some(mut previous) = after {
                    // Finished, failed or abandoned: this round may start either way.
                    let _ = previous.wait_for(Option::is_some).await;
                    lead.start();
                }
                let outcome = read().await;
                publish.send_replace(Some(outcome.clone()));
                drop(lead);
                outcome
            }
        }
    }

    /// This caller's part: follow the round that has not started yet, else lead one.
    fn join(&self, collection: &str) -> Part {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let id = slots.next_round;
        let slot = slots
            .by_collection
            .entry(collection.to_string())
            .or_default();
        if let Some(pending) = &slot.pending {
            return Part::Follow(pending.outcome.clone());
        }
        let (publish, outcome) = watch::channel(None);
        let round = Round { id, outcome };
        let after = match &slot.running {
            Some(running) => {
                let after = running.outcome.clone();
                slot.pending = Some(round);
                Some(after)
            }
            None => {
                slot.running = Some(round);
                None
            }
        };
        slots.next_round += 1;
        Part::Lead { id, publish, after }
    }
}

/// A leader's round while it lives: when it ends (read, failed or dropped), the slot
/// forgets it, so new callers start a new round.
struct Leading<'a> {
    reads: &'a GenerationReads,
    collection: &'a str,
    id: u64,
}

impl Leading<'_> {
    /// The round in flight has finished: this (pending) round becomes the one in
    /// flight, and callers from now on wait for the one after it.
    fn start(&self) {
        let mut slots = self
            .reads
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = slots.by_collection.get_mut(self.collection) {
            if slot.pending.as_ref().is_some_and(|r| r.id == self.id) {
                slot.running = slot.pending.take();
            }
        }
    }
}

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        let mut slots = self
            .reads
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(slot) = slots.by_collection.get_mut(self.collection) else {
            return;
        };
        for round in [&mut slot.running, &mut slot.pending] {
            if round.as_ref().is_some_and(|r| r.id == self.id) {
                *round = None;
            }
        }
        if slot.running.is_none() && slot.pending.is_none() {
            slots.by_collection.remove(self.collection);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::sync::Semaphore;

    use super::*;

    fn generation(n: i64) -> Option<PageGeneration> {
        Some(PageGeneration {
            view_id: 1,
            change_seq: n,
            last_added: None,
        })
    }

    /// Reads numbered in the order they start, each held until the gate lets it end.
    #[derive(Clone)]
    struct Reads {
        started: Arc<AtomicI64>,
        gate: Arc<Semaphore>,
    }

    impl Default for Reads {
        fn default() -> Self {
            Reads {
                started: Arc::default(),
                gate: Arc::new(Semaphore::new(0)),
            }
        }
    }

    impl Reads {
        async fn read(&self) -> Outcome {
            let n = self.started.fetch_add(1, Ordering::SeqCst) + 1;
            self.gate.acquire().await.expect("gate").forget();
            Ok(generation(n))
        }

        fn started(&self) -> i64 {
            self.started.load(Ordering::SeqCst)
        }

        async fn until_started(&self, n: i64) {
            let started = async {
                while self.started() < n {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            };
            tokio::time::timeout(Duration::from_secs(10), started)
                .await
                .unwrap_or_else(|_| panic!("read {n} never started"));
        }
    }

    async fn settle() {
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn callers_arriving_during_a_read_share_the_next_read_not_the_running_one() {
        let shared = Arc::new(GenerationReads::default());
        let reads = Reads::default();
        let call = |shared: Arc<GenerationReads>, reads: Reads| {
            tokio::spawn(async move { shared.read("c", || reads.read()).await })
        };
        let first = call(shared.clone(), reads.clone());
        reads.until_started(1).await;
        let later: Vec<_> = (0..5)
            .map(|_| call(shared.clone(), reads.clone()))
            .collect();
        settle().await;
        assert_eq!(
            reads.started(),
            1,
            "the later callers wait for the first read"
        );
        reads.gate.add_permits(1);
        assert_eq!(first.await.expect("first"), Ok(generation(1)));
        reads.until_started(2).await;
        reads.gate.add_permits(1);
        for caller in later {
            assert_eq!(
                caller.await.expect("later"),
                Ok(generation(2)),
                "a caller gets a read started after it asked"
            );
        }
        assert_eq!(reads.started(), 2, "six callers, two reads");
        assert!(shared.slots.lock().expect("slots").by_collection.is_empty());
    }

    #[tokio::test]
    async fn collections_are_read_apart() {
        let shared = Arc::new(GenerationReads::default());
        let reads = Reads::default();
        reads.gate.add_permits(2);
        let (a, b) = tokio::join!(
            shared.read("a", || reads.read()),
            shared.read("b", || reads.read())
        );
        assert_eq!(reads.started(), 2);
        assert!(a.is_ok() && b.is_ok());
    }

    #[tokio::test]
    async fn followers_of_a_leader_that_goes_away_read_for_themselves() {
        let shared = Arc::new(GenerationReads::default());
        let reads = Reads::default();
        let first = {
            let (shared, reads) = (shared.clone(), reads.clone());
            tokio::spawn(async move { shared.read("c", || reads.read()).await })
        };
        reads.until_started(1).await;
        // The pending round's leader, then a follower of it.
        let leader = {
            let (shared, reads) = (shared.clone(), reads.clone());
            tokio::spawn(async move { shared.read("c", || reads.read()).await })
        };
        settle().await;
        let follower = {
            let (shared, reads) = (shared.clone(), reads.clone());
            tokio::spawn(async move { shared.read("c", || reads.read()).await })
        };
        settle().await;
        leader.abort();
        let _ = leader.await;
        reads.gate.add_permits(2);
        assert_eq!(first.await.expect("first"), Ok(generation(1)));
        let own = tokio::time::timeout(Duration::from_secs(10), follower)
            .await
            .expect("the follower does not wait forever")
            .expect("follower");
        assert_eq!(own, Ok(generation(2)), "it read for itself");
        assert!(shared.slots.lock().expect("slots").by_collection.is_empty());
    }

    #[tokio::test]
    async fn a_failed_read_fails_every_caller_that_shared_it_and_the_next_reads_again() {
        let shared = GenerationReads::default();
        let failed = shared
            .read("c", || async {
                Err(StoreError::Unavailable("down".into()))
            })
            .await;
        assert_eq!(failed, Err(StoreError::Unavailable("down".into())));
        let next = shared.read("c", || async { Ok(generation(7)) }).await;
        assert_eq!(next, Ok(generation(7)));
    }
}
