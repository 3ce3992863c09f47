//! Leader election with a `coordination.k8s.io/v1` Lease, so that several operator
//! replicas can run and exactly one reconciles.
//!
//! As in client-go: the holder renews the Lease every `renew_every`; a candidate takes
//! it over once it has seen the same record unchanged for `duration` (measured on its
//! own clock, so clock skew between nodes does not matter); every write is a replace
//! conditional on the `resourceVersion` read, so two candidates cannot both win.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::Client;

/// Which Lease, who we are, and the timings.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    /// Lease name.
    pub name: String,
    /// Lease namespace (the operator's own).
    pub namespace: String,
    /// This replica's identity (pod name plus a per-process suffix).
    pub identity: String,
    /// How long a Lease not renewed stays with its holder.
    pub duration: Duration,
    /// How often the holder renews.
    pub renew_every: Duration,
}

/// The last Lease record seen, and when it was first seen (on this replica's clock).
#[derive(Debug, Default)]
struct Observed {
    record: Option<(Option<String>, Option<MicroTime>, Option<String>)>,
    since: Option<Instant>,
}

/// A candidate for, or holder of, the Lease.
pub struct Elector {
    api: Api<Lease>,
    config: LeaseConfig,
    observed: Observed,
}

impl Elector {
    /// A candidate.
    pub fn new(client: Client, config: LeaseConfig) -> Elector {
        Elector {
            api: Api::namespaced(client, &config.namespace),
            config,
            observed: Observed::default(),
        }
    }

    /// This replica's identity.
    pub fn identity(&self) -> &str {
        &self.config.identity
    }

    /// Wait until this replica holds the Lease.
    pub async fn acquire(&mut self) {
        let mut logged = false;
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => return,
                Ok(false) => {
                    if !logged {
                        tracing::info!(lease = %self.config.name, "another replica leads; standing by");
                        logged = true;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot read or take the leader Lease"),
            }
            tokio::time::sleep(self.config.renew_every).await;
        }
    }

    /// Renew until the Lease is lost (another replica took it, or it could not be
    /// renewed for a whole lease duration); returns then.
    pub async fn hold(&mut self) {
        let mut renewed = Instant::now();
        loop {
            tokio::time::sleep(self.config.renew_every).await;
            match self.try_acquire_or_renew().await {
                Ok(true) => renewed = Instant::now(),
                Ok(false) => {
                    tracing::error!(lease = %self.config.name, "another replica took the leader Lease");
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot renew the leader Lease");
                    // Stop before another replica may take over.
                    if renewed.elapsed() + self.config.renew_every >= self.config.duration {
                        tracing::error!(lease = %self.config.name, "leader Lease not renewed in time");
                        return;
                    }
                }
            }
        }
    }

    /// Give the Lease up (on shutdown) so another replica takes over at once.
    pub async fn release(&mut self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.config.name).await else {
            return;
        };
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.identity()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(now());
        lease.spec = Some(spec);
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => tracing::info!(lease = %self.config.name, "released the leader Lease"),
            Err(e) => tracing::warn!(error = %e, "cannot release the leader Lease"),
        }
    }

    /// One attempt; `true` when this replica holds the Lease afterwards.
    async fn try_acquire_or_renew(&mut self) -> Result<bool, kube::Error> {
        let now_time = now();
        let me = self.config.identity.clone();
        let duration_secs = i32::try_from(self.config.duration.as_secs()).unwrap_or(i32::MAX);
        let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(me),
                    lease_duration_seconds: Some(duration_secs),
                    acquire_time: Some(now_time.clone()),
                    renew_time: Some(now_time),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return conflict_is_false(self.api.create(&PostParams::default(), &lease).await);
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let record = (
            holder.clone(),
            spec.renew_time.clone(),
            lease.metadata.resource_version.clone(),
        );
        if self.observed.record.as_ref() != Some(&record) {
            self.observed = Observed {
                record: Some(record),
                since: Some(Instant::now()),
            };
        }
        let held_for = Duration::from_secs(
            u64::try_from(spec.lease_duration_seconds.unwrap_or(duration_secs)).unwrap_or(0),
        );
        let expired = self
            .observed
            .since
            .is_some_and(|since| since.elapsed() >= held_for);
        let next = match holder.as_deref() {
            Some(h) if h == me => LeaseSpec {
                renew_time: Some(now_time),
                lease_duration_seconds: Some(duration_secs),
                ..spec
            },
            Some(_) if !expired => return Ok(false),
            _ => LeaseSpec {
                holder_identity: Some(me),
                lease_duration_seconds: Some(duration_secs),
                acquire_time: Some(now_time.clone()),
                renew_time: Some(now_time),
                lease_transitions: Some(spec.lease_transitions.unwrap_or(0).saturating_add(1)),
                ..spec
            },
        };
        lease.spec = Some(next);
        let taken = conflict_is_false(
            self.api
                .replace(&self.config.name, &PostParams::default(), &lease)
                .await,
        )?;
        if taken && holder.as_deref() != Some(self.identity()) {
            tracing::info!(lease = %self.config.name, identity = %self.identity(), "became the leader");
        }
        Ok(taken)
    }
}

fn now() -> MicroTime {
    MicroTime(Timestamp::now())
}

/// A 409 (someone else wrote first) means "not ours", not an error.
fn conflict_is_false(result: Result<Lease, kube::Error>) -> Result<bool, kube::Error> {
    match result {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}
