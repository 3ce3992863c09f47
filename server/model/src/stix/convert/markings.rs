//! Marking definitions across versions. TLP 1.0 markings are the same objects in
//! STIX 2.0 and 2.1. TLP 2.0 markings exist only as a STIX 2.1 extension, so on the
//! 2.0 side references to them become the TLP 1.0 marking with the same meaning, and
//! the TLP 2.0 definitions themselves are served as `statement` markings.

use serde_json::{json, Map, Value};

use super::unservable::Unservable;

const TLP1_WHITE: &str = "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9";
const TLP1_GREEN: &str = "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da";
const TLP1_AMBER: &str = "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82";
const TLP1_RED: &str = "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed";
const TLP2_AMBER_STRICT: &str = "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003";

/// TLP 2.0 marking definitions: id, name, and the TLP 1.0 marking 2.0 clients get.
const TLP2: &[(&str, &str, &str)] = &[
    (
        "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
        "TLP:CLEAR",
        TLP1_WHITE,
    ),
    (
        "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
        "TLP:GREEN",
        TLP1_GREEN,
    ),
    (
        "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
        "TLP:AMBER",
        TLP1_AMBER,
    ),
    (TLP2_AMBER_STRICT, "TLP:AMBER+STRICT", TLP1_AMBER),
    (
        "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
        "TLP:RED",
        TLP1_RED,
    ),
];

fn tlp2(id: &str) -> Option<&'static (&'static str, &'static str, &'static str)> {
    TLP2.iter().find(|(tlp2, _, _)| *tlp2 == id)
}

/// The marking references a 2.0 client gets for one 2.1 reference: a TLP 2.0 marking
/// becomes its TLP 1.0 equivalent; AMBER+STRICT, stricter than TLP 1.0 AMBER, keeps
/// its own (statement) marking beside AMBER so the restriction is not lost.
pub fn refs_for_stix20(id: &str) -> Vec<&str> {
    match tlp2(id) {
        Some((tlp2, _, tlp1)) if *tlp2 == TLP2_AMBER_STRICT => vec![tlp1, tlp2],
        Some((_, _, tlp1)) => vec![tlp1],
        None => vec![id],
    }
}

/// Give a 2.1 marking definition the `definition_type`/`definition` 2.0 requires:
/// TLP 2.0 and other extension-based markings become a `statement` of their name.
pub fn definition_to_stix20(map: &mut Map<String, Value>) -> Result<(), Unservable> {
    let id = map.get("id").and_then(Value::as_str).unwrap_or("");
    let statement = match tlp2(id) {
        Some((_, name, _)) => Some((*name).to_string()),
        None if map.contains_key("definition_type") && map.contains_key("definition") => None,
        None => match map.get("name").and_then(Value::as_str) {
            Some(name) if !name.is_empty() => Some(name.to_string()),
            _ => {
                return Err(Unservable(
                    "a marking definition with neither a definition nor a name".into(),
                ))
            }
        },
    };
    if let Some(statement) = statement {
        map.insert("definition_type".into(), json!("statement"));
        map.insert("definition".into(), json!({ "statement": statement }));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tlp2_references_become_tlp1() {
        assert_eq!(refs_for_stix20(TLP2[1].0), vec![TLP1_GREEN]);
        assert_eq!(refs_for_stix20(TLP2[0].0), vec![TLP1_WHITE]);
        assert_eq!(
            refs_for_stix20(TLP2_AMBER_STRICT),
            vec![TLP1_AMBER, TLP2_AMBER_STRICT]
        );
        assert_eq!(refs_for_stix20(TLP1_RED), vec![TLP1_RED]);
    }

    #[test]
    fn definitions_get_a_2_0_form() {
        let mut tlp = json!({"id": TLP2[1].0, "name": "TLP:GREEN"});
        let map = tlp.as_object_mut().expect("object");
        definition_to_stix20(map).expect("tlp 2.0");
        assert_eq!(map["definition"], json!({"statement": "TLP:GREEN"}));

        let mut tlp1 =
            json!({"id": TLP1_RED, "definition_type": "tlp", "definition": {"tlp": "red"}});
        let map = tlp1.as_object_mut().expect("object");
        definition_to_stix20(map).expect("tlp 1.0");
        assert_eq!(map["definition_type"], "tlp");

        let mut bare = json!({"id": "marking-definition--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"});
        assert!(definition_to_stix20(bare.as_object_mut().expect("object")).is_err());
    }
}
