//! Identifiers on the 2.0 side. STIX 2.0 requires UUIDv4 in every id and reference;
//! 2.1 allows other UUID versions (producers such as OpenCTI use UUIDv5). Such an id
//! is served with its version digit set to 4: deterministic, so the object and every
//! reference to it map alike, and reversible by trying each version digit, which is
//! how a 2.0 client's `match[id]` or object URL finds the stored object.

use uuid::{Uuid, Variant};

/// UUID versions a stored id may have been generated with (tried when resolving).
const VERSIONS: [u8; 7] = [4, 5, 1, 3, 6, 7, 8];

fn split(id: &str) -> Option<(&str, Uuid)> {
    let (kind, uuid) = id.split_once("--")?;
    let uuid = Uuid::try_parse(uuid).ok()?;
    (uuid.get_variant() == Variant::RFC4122).then_some((kind, uuid))
}

fn with_version(kind: &str, uuid: Uuid, version: u8) -> String {
    let mut bytes = uuid.into_bytes();
    bytes[6] = (bytes[6] & 0x0f) | (version << 4);
    format!("{kind}--{}", Uuid::from_bytes(bytes).hyphenated())
}

/// The id as STIX 2.0 accepts it: unchanged when its UUID is a v4, else with the
/// version digit rewritten to 4. `None` when it is not `type--<RFC 4122 UUID>`.
pub fn to_v4_id(id: &str) -> Option<String> {
    let (kind, uuid) = split(id)?;
    if uuid.get_version_num() == 4 {
        return Some(id.to_string());
    }
    Some(with_version(kind, uuid, 4))
}

/// The stored ids a 2.0 client's id may stand for: itself and the same UUID with
/// every other version digit.
pub fn id_candidates(id: &str) -> Vec<String> {
    let mut out = vec![id.to_string()];
    if let Some((kind, uuid)) = split(id) {
        for v in VERSIONS {
            let candidate = with_version(kind, uuid, v);
            if !out.contains(&candidate) {
                out.push(candidate);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const V5: &str = "indicator--a4d70b75-6f4a-5d19-9137-da863edd33d7";
    const AS_V4: &str = "indicator--a4d70b75-6f4a-4d19-9137-da863edd33d7";

    #[test]
    fn v4_ids_are_kept_and_others_get_version_4() {
        assert_eq!(to_v4_id(AS_V4).as_deref(), Some(AS_V4));
        assert_eq!(to_v4_id(V5).as_deref(), Some(AS_V4));
        // Not RFC 4122 (variant bits), not an id at all.
        assert_eq!(
            to_v4_id("indicator--a4d70b75-6f4a-4d19-c137-da863edd33d7"),
            None
        );
        assert_eq!(to_v4_id("indicator"), None);
    }

    #[test]
    fn a_served_id_resolves_to_the_stored_one() {
        let candidates = id_candidates(AS_V4);
        assert_eq!(candidates[0], AS_V4);
        assert!(candidates.contains(&V5.to_string()));
        assert_eq!(candidates.len(), 7);
        assert_eq!(id_candidates("nonsense"), vec!["nonsense".to_string()]);
    }
}
