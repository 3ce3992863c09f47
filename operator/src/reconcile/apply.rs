//! Apply: server-side apply under one field manager, but only when something would
//! change. A reconcile of unchanged inputs must write nothing (no new resourceVersion,
//! no watch event, no reload in the server), so each object is compared with the live
//! one first: it is applied when the live object lacks a desired field (drift) or when
//! the desired object differs from the one applied last time (recorded as a
//! fingerprint annotation, which also catches fields the operator stopped setting).

use std::fmt::Debug;

use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::Error;
use crate::names::MANAGER;

/// The annotation holding the fingerprint of what was applied.
pub const FINGERPRINT: &str = "taxiway.dev/applied";

/// What an apply did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The live object already matched.
    Unchanged,
    /// The object did not exist.
    Created,
    /// The object was changed.
    Updated,
    /// The object is no longer wanted and was deleted.
    Deleted,
}

/// Make the live object match `desired` (owned by `owner_uid`); returns the live object.
pub async fn apply<K>(api: &Api<K>, desired: &K, owner_uid: &str) -> Result<(Applied, K), Error>
where
    K: Resource<DynamicType = ()> + Serialize + DeserializeOwned + Clone + Debug,
{
    apply_as(api, desired, owner_uid, &()).await
}

/// [`apply`] for a resource whose type is known at run time (`dt`), e.g. an API
/// version chosen by discovery.
pub async fn apply_as<K>(
    api: &Api<K>,
    desired: &K,
    owner_uid: &str,
    dt: &K::DynamicType,
) -> Result<(Applied, K), Error>
where
    K: Resource + Serialize + DeserializeOwned + Clone + Debug,
{
    let name = desired.name_any();
    let mut wanted = serde_json::to_value(desired)?;
    let fingerprint = fingerprint(&wanted);
    if let Some(meta) = wanted.get_mut("metadata").and_then(Value::as_object_mut) {
        let annotations = meta
            .entry("annotations")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(annotations) = annotations.as_object_mut() {
            annotations.insert(FINGERPRINT.into(), Value::String(fingerprint.clone()));
        }
    }
    let live = api.get_opt(&name).await?;
    if let Some(live) = &live {
        if !controlled_by(live, owner_uid) {
            return Err(Error::NotOwned {
                kind: K::kind(dt).into_owned(),
                name,
            });
        }
        if live.annotations().get(FINGERPRINT) != Some(&fingerprint) {
            tracing::debug!(kind = %K::kind(dt), %name, "the desired object changed");
        } else if let Some(path) = difference(&serde_json::to_value(live)?, &wanted) {
            tracing::debug!(kind = %K::kind(dt), %name, %path, "the live object drifted");
        } else {
            return Ok((Applied::Unchanged, live.clone()));
        }
    }
    let params = PatchParams::apply(MANAGER).force();
    let result = api.patch(&name, &params, &Patch::Apply(&wanted)).await?;
    let applied = if live.is_some() {
        Applied::Updated
    } else {
        Applied::Created
    };
    Ok((applied, result))
}

/// Delete the object `name` if it exists and `owner_uid` controls it; whether it did.
pub async fn delete_owned<K>(api: &Api<K>, name: &str, owner_uid: &str) -> Result<bool, Error>
where
    K: Resource + DeserializeOwned + Clone + Debug,
{
    match api.get_opt(name).await? {
        Some(live) if controlled_by(&live, owner_uid) => {
            api.delete(name, &DeleteParams::background()).await?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Whether `owner_uid` is the controller owner of `object`.
pub fn controlled_by<K: Resource>(object: &K, owner_uid: &str) -> bool {
    object
        .owner_references()
        .iter()
        .any(|o| o.uid == owner_uid && o.controller == Some(true))
}

/// The first field of `wanted` missing from or different in `live` (as a path like
/// `spec.template.spec.containers[0].image`), or `None` when `live` has them all.
/// Objects may have more fields (defaults, status); lists must match element by element.
pub fn difference(live: &Value, wanted: &Value) -> Option<String> {
    match (live, wanted) {
        (Value::Object(l), Value::Object(w)) => w.iter().find_map(|(k, wv)| match l.get(k) {
            None => Some(k.clone()),
            Some(lv) => difference(lv, wv).map(|rest| join(k, &rest)),
        }),
        (Value::Array(l), Value::Array(w)) if l.len() == w.len() => {
            l.iter().zip(w).enumerate().find_map(|(i, (lv, wv))| {
                difference(lv, wv).map(|rest| join(&format!("[{i}]"), &rest))
            })
        }
        _ if live == wanted => None,
        _ => Some(String::new()),
    }
}

fn join(head: &str, rest: &str) -> String {
    match rest {
        "" => head.to_string(),
        _ if rest.starts_with('[') => format!("{head}{rest}"),
        _ => format!("{head}.{rest}"),
    }
}

/// A stable fingerprint of a JSON value: FNV-1a (64 bit) of its serialisation
/// (serde_json writes object keys in sorted order).
pub fn fingerprint(value: &Value) -> String {
    let text = value.to_string();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_added_by_the_api_do_not_count_as_drift() {
        let wanted = json!({"spec": {"ports": [{"name": "taxii", "port": 443}]}});
        let live = json!({
            "spec": {"ports": [{"name": "taxii", "port": 443, "protocol": "TCP"}], "clusterIP": "10.0.0.7"},
            "status": {}
        });
        assert_eq!(difference(&live, &wanted), None);
    }

    #[test]
    fn a_changed_or_missing_field_is_drift_and_named() {
        let wanted = json!({"spec": {"replicas": 1, "ports": [{"port": 443}]}});
        let differs = |live: Value| difference(&live, &wanted);
        assert_eq!(
            differs(json!({"spec": {"replicas": 2, "ports": [{"port": 443}]}})).as_deref(),
            Some("spec.replicas")
        );
        assert_eq!(
            differs(json!({"spec": {"ports": [{"port": 443}]}})).as_deref(),
            Some("spec.replicas")
        );
        assert_eq!(
            differs(json!({"spec": {"replicas": 1, "ports": [{"port": 8443}]}})).as_deref(),
            Some("spec.ports[0].port")
        );
        assert_eq!(
            differs(json!({"spec": {"replicas": 1, "ports": [{"port": 443}, {"port": 80}]}}))
                .as_deref(),
            Some("spec.ports")
        );
    }

    #[test]
    fn fingerprints_are_stable_and_sensitive() {
        let a = json!({"b": 1, "a": [1, 2]});
        assert_eq!(fingerprint(&a), fingerprint(&json!({"a": [1, 2], "b": 1})));
        assert_ne!(fingerprint(&a), fingerprint(&json!({"a": [2, 1], "b": 1})));
        assert_eq!(fingerprint(&a).len(), 16);
    }
}
