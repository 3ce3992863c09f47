//! Traffic Light Protocol levels from STIX marking definitions (TLP 1.0 and 2.0).

use std::fmt;

use serde_json::Value;

/// A TLP level, ordered from least to most restrictive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tlp {
    /// TLP:CLEAR (TLP 1.0 WHITE): no limit on disclosure.
    Clear,
    /// TLP:GREEN: the recipient's community.
    Green,
    /// TLP:AMBER: the recipient's organisation and its clients.
    Amber,
    /// TLP:AMBER+STRICT: the recipient's organisation only.
    AmberStrict,
    /// TLP:RED: the named recipients only.
    Red,
}

/// Marking-definition ids with a fixed TLP meaning.
///
/// TLP 1.0 ids come from STIX 2.1 §7.2.1.4; TLP 2.0 ids from the OASIS TLP 2.0
/// extension (extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d).
const KNOWN_MARKINGS: [(&str, Tlp); 9] = [
    // TLP 1.0
    (
        "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
        Tlp::Clear,
    ),
    (
        "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
        Tlp::Green,
    ),
    (
        "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
        Tlp::Amber,
    ),
    (
        "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
        Tlp::Red,
    ),
    // TLP 2.0
    (
        "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
        Tlp::Clear,
    ),
    (
        "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
        Tlp::Green,
    ),
    (
        "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
        Tlp::Amber,
    ),
    (
        "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
        Tlp::AmberStrict,
    ),
    (
        "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
        Tlp::Red,
    ),
];

const TLP2_EXTENSION: &str = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d";

impl Tlp {
    /// Parses `clear`, `white`, `green`, `amber`, `amber+strict` or `red`, any case, optional `tlp:` prefix.
    pub fn parse(s: &str) -> Option<Tlp> {
        let s = s.trim();
        let level = match s.get(..4) {
            Some(prefix) if prefix.eq_ignore_ascii_case("tlp:") => &s[4..],
            _ => s,
        };
        [
            ("clear", Tlp::Clear),
            ("white", Tlp::Clear),
            ("green", Tlp::Green),
            ("amber", Tlp::Amber),
            ("amber+strict", Tlp::AmberStrict),
            ("red", Tlp::Red),
        ]
        .into_iter()
        .find(|(name, _)| level.eq_ignore_ascii_case(name))
        .map(|(_, tlp)| tlp)
    }

    /// The TLP 2.0 name in lower case, e.g. `amber+strict`.
    pub fn as_str(self) -> &'static str {
        match self {
            Tlp::Clear => "clear",
            Tlp::Green => "green",
            Tlp::Amber => "amber",
            Tlp::AmberStrict => "amber+strict",
            Tlp::Red => "red",
        }
    }

    /// The level a well-known TLP marking-definition id stands for.
    pub fn from_marking_id(id: &str) -> Option<Tlp> {
        KNOWN_MARKINGS
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(id))
            .map(|&(_, tlp)| tlp)
    }
}

impl fmt::Display for Tlp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The most restrictive TLP level among an object's `object_marking_refs`, if any is a known TLP marking.
pub fn tlp_of(object: &Value) -> Option<Tlp> {
    object
        .get("object_marking_refs")?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .filter_map(Tlp::from_marking_id)
        .max()
}

/// The level a marking-definition object itself defines (TLP 1.0 `definition.tlp` or a TLP 2.0 marking).
///
/// This is what the marking *means*, not how the marking object is handled:
/// [`tlp_of`] is the level that governs sharing an object.
pub fn defined_tlp(object: &Value) -> Option<Tlp> {
    if object.get("type")?.as_str()? != "marking-definition" {
        return None;
    }
    if let Some(tlp) = object
        .get("id")
        .and_then(Value::as_str)
        .and_then(Tlp::from_marking_id)
    {
        return Some(tlp);
    }
    if object.get("definition_type").and_then(Value::as_str) == Some("tlp") {
        return object
            .get("definition")?
            .get("tlp")?
            .as_str()
            .and_then(Tlp::parse);
    }
    let tlp2 = object
        .get("extensions")
        .and_then(|e| e.get(TLP2_EXTENSION))
        .and_then(|e| e.get("tlp_2_0"))
        .and_then(Value::as_str);
    match tlp2 {
        Some(level) => Tlp::parse(level),
        None => object
            .get("name")?
            .as_str()
            .filter(|n| n.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("tlp:")))
            .and_then(Tlp::parse),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn marked(refs: &[&str]) -> Value {
        json!({"type": "indicator", "object_marking_refs": refs})
    }

    #[test]
    fn levels_are_ordered_by_restriction() {
        assert!(Tlp::Clear < Tlp::Green);
        assert!(Tlp::Green < Tlp::Amber);
        assert!(Tlp::Amber < Tlp::AmberStrict);
        assert!(Tlp::AmberStrict < Tlp::Red);
    }

    #[test]
    fn parses_names() {
        assert_eq!(Tlp::parse("white"), Some(Tlp::Clear));
        assert_eq!(Tlp::parse("CLEAR"), Some(Tlp::Clear));
        assert_eq!(Tlp::parse("TLP:Green"), Some(Tlp::Green));
        assert_eq!(Tlp::parse("tlp:amber"), Some(Tlp::Amber));
        assert_eq!(Tlp::parse("Amber+Strict"), Some(Tlp::AmberStrict));
        assert_eq!(Tlp::parse("red"), Some(Tlp::Red));
        assert_eq!(Tlp::parse("purple"), None);
        assert_eq!(Tlp::parse("amber strict"), None);
        assert_eq!(Tlp::parse("tlp:"), None);
        assert_eq!(Tlp::parse("tlp"), None);
        assert_eq!(Tlp::parse("é"), None);
        assert_eq!(Tlp::parse(""), None);
    }

    #[test]
    fn display_round_trips() {
        for tlp in [
            Tlp::Clear,
            Tlp::Green,
            Tlp::Amber,
            Tlp::AmberStrict,
            Tlp::Red,
        ] {
            assert_eq!(Tlp::parse(&tlp.to_string()), Some(tlp));
        }
    }

    #[test]
    fn reads_tlp1_markings() {
        let cases = [
            (
                "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
                Tlp::Clear,
            ),
            (
                "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
                Tlp::Green,
            ),
            (
                "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
                Tlp::Amber,
            ),
            (
                "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
                Tlp::Red,
            ),
        ];
        for (id, tlp) in cases {
            assert_eq!(tlp_of(&marked(&[id])), Some(tlp), "{id}");
        }
    }

    #[test]
    fn reads_tlp2_markings() {
        let cases = [
            (
                "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
                Tlp::Clear,
            ),
            (
                "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
                Tlp::Green,
            ),
            (
                "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
                Tlp::Amber,
            ),
            (
                "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
                Tlp::AmberStrict,
            ),
            (
                "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
                Tlp::Red,
            ),
        ];
        for (id, tlp) in cases {
            assert_eq!(tlp_of(&marked(&[id])), Some(tlp), "{id}");
        }
    }

    #[test]
    fn most_restrictive_wins() {
        let obj = marked(&[
            "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
            "marking-definition--de2a7d2b-8f0b-4b6d-9c3d-6c9c9e4a3b7a",
            "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
            "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
        ]);
        assert_eq!(tlp_of(&obj), Some(Tlp::AmberStrict));
    }

    #[test]
    fn unmarked_or_malformed_has_none() {
        assert_eq!(tlp_of(&json!({"type": "indicator"})), None);
        assert_eq!(tlp_of(&marked(&[])), None);
        assert_eq!(
            tlp_of(&marked(&[
                "marking-definition--de2a7d2b-8f0b-4b6d-9c3d-6c9c9e4a3b7a"
            ])),
            None
        );
        assert_eq!(
            tlp_of(
                &json!({"object_marking_refs": "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"})
            ),
            None
        );
        assert_eq!(tlp_of(&json!({"object_marking_refs": [1, null, {}]})), None);
        assert_eq!(tlp_of(&json!([1, 2])), None);
    }

    #[test]
    fn marking_definitions_themselves_are_not_marked() {
        let green = json!({
            "type": "marking-definition",
            "id": "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
            "definition_type": "tlp",
            "definition": {"tlp": "green"}
        });
        assert_eq!(tlp_of(&green), None);
        assert_eq!(defined_tlp(&green), Some(Tlp::Green));
    }

    #[test]
    fn reads_what_a_marking_definition_defines() {
        let tlp1_custom_id = json!({
            "type": "marking-definition",
            "id": "marking-definition--00000000-0000-4000-8000-000000000000",
            "definition_type": "tlp",
            "definition": {"tlp": "white"}
        });
        assert_eq!(defined_tlp(&tlp1_custom_id), Some(Tlp::Clear));
        let tlp2 = json!({
            "type": "marking-definition",
            "spec_version": "2.1",
            "id": "marking-definition--00000000-0000-4000-8000-000000000001",
            "name": "TLP:AMBER+STRICT",
            "extensions": {
                "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d": {
                    "extension_type": "property-extension",
                    "tlp_2_0": "amber+strict"
                }
            }
        });
        assert_eq!(defined_tlp(&tlp2), Some(Tlp::AmberStrict));
        let by_name = json!({"type": "marking-definition", "name": "TLP:RED"});
        assert_eq!(defined_tlp(&by_name), Some(Tlp::Red));
        let statement = json!({
            "type": "marking-definition",
            "definition_type": "statement",
            "definition": {"statement": "Copyright 2024"},
            "name": "red"
        });
        assert_eq!(defined_tlp(&statement), None);
        assert_eq!(
            defined_tlp(&json!({"type": "indicator", "name": "TLP:RED"})),
            None
        );
    }
}
