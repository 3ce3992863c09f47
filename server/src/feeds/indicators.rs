//! Indicators made from list entries, and what a list remembers between pulls.
//!
//! Each pattern gets a deterministic id: a UUIDv5 (in [`NAMESPACE`]) of the feed's
//! name and the pattern. Its first version has `created` = `modified` = `valid_from`
//! = when the feed first saw it. The rule for lists that change:
//!
//! - an entry that **disappears** gets a new version: `modified` = now and
//!   `valid_until` = now (it expires; it is not `revoked`, which STIX makes final);
//! - an entry that **comes back** gets a new version: `modified` = now,
//!   `valid_from` = now, no `valid_until`;
//! - an entry still listed gets nothing: a repeated pull stores nothing.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::config::Feed;
use crate::feeds::lists::ParsedList;
use crate::stix::timestamp::format_taxii;
use crate::stix::tlp::Tlp;

/// The UUIDv5 namespace of indicator ids made by feeds.
pub const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6f1e_2c35_9a7d_4b0e_8c21_5d3f_7a90_b4e6);

/// What a list feed remembers of one pattern.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remembered {
    /// The list value it was made from.
    pub value: String,
    /// When first seen (µs): `created` of every version.
    pub created: i64,
    /// `modified` of the latest version (µs).
    pub modified: i64,
    /// `valid_from` of the latest version (µs).
    pub valid_from: i64,
    /// Whether the latest pull listed it.
    pub listed: bool,
}

/// What a list feed remembers: every pattern it has ever made an indicator of.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListState {
    /// Pattern → what is remembered of it.
    pub entries: BTreeMap<String, Remembered>,
}

/// The id of the indicator of `pattern` made by the feed `feed`.
pub fn indicator_id(feed: &str, pattern: &str) -> String {
    let name = format!("{feed}\n{pattern}");
    format!(
        "indicator--{}",
        uuid::Uuid::new_v5(&NAMESPACE, name.as_bytes())
    )
}

/// Apply the latest pull of a list to `state`; returns the indicator versions to store
/// (new, gone and back entries, per the rule above). `now` is in microseconds.
pub fn reconcile(feed: &Feed, state: &mut ListState, list: &ParsedList, now: i64) -> Vec<Value> {
    let mut out = Vec::new();
    for (pattern, value) in &list.entries {
        match state.entries.get_mut(pattern) {
            Some(e) if e.listed => {}
            Some(e) => {
                e.modified = now.max(e.modified + 1000);
                e.valid_from = e.modified;
                e.listed = true;
                out.push(indicator(feed, pattern, e));
            }
            None => {
                let e = Remembered {
                    value: value.clone(),
                    created: now,
                    modified: now,
                    valid_from: now,
                    listed: true,
                };
                out.push(indicator(feed, pattern, &e));
                state.entries.insert(pattern.clone(), e);
            }
        }
    }
    let listed: HashSet<&str> = list.entries.iter().map(|(p, _)| p.as_str()).collect();
    for (pattern, e) in state.entries.iter_mut() {
        if e.listed && !listed.contains(pattern.as_str()) {
            e.modified = now.max(e.modified + 1000);
            e.listed = false;
            out.push(indicator(feed, pattern, e));
        }
    }
    out
}

/// The marking-definition of a TLP level: the STIX 2.1 TLP 1.0 ids, TLP 2.0 for
/// AMBER+STRICT (which TLP 1.0 lacks).
fn tlp_marking(tlp: Tlp) -> &'static str {
    match tlp {
        Tlp::Clear => "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
        Tlp::Green => "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
        Tlp::Amber => "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
        Tlp::AmberStrict => "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
        Tlp::Red => "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
    }
}

/// The version of the indicator of `pattern` that `e` describes.
fn indicator(feed: &Feed, pattern: &str, e: &Remembered) -> Value {
    let mut o = json!({
        "type": "indicator",
        "spec_version": "2.1",
        "id": indicator_id(&feed.name, pattern),
        "created": format_taxii(e.created),
        "modified": format_taxii(e.modified),
        "name": e.value,
        "pattern": pattern,
        "pattern_type": "stix",
        "valid_from": format_taxii(e.valid_from),
    });
    if !e.listed {
        o["valid_until"] = json!(format_taxii(e.modified));
    }
    if !feed.labels.is_empty() {
        o["labels"] = json!(feed.labels);
    }
    if let Some(c) = feed.confidence {
        o["confidence"] = json!(c);
    }
    if let Some(tlp) = feed.tlp_level() {
        o["object_marking_refs"] = json!([tlp_marking(tlp)]);
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feeds::lists::parse_lines;

    fn feed() -> Feed {
        toml::from_str(
            "name = \"blocklist\"\ninto = \"inbox\"\nurl = \"https://x/\"\nformat = \"lines\"\nconfidence = 70\ntlp = \"green\"",
        )
        .expect("feed")
    }

    #[test]
    fn new_gone_and_back_entries_follow_the_rule() {
        let feed = feed();
        let mut state = ListState::default();
        let first = reconcile(
            &feed,
            &mut state,
            &parse_lines("198.51.100.7\nevil.example\n"),
            1_000_000_000,
        );
        assert_eq!(first.len(), 2);
        assert!(first
            .iter()
            .all(|o| o["created"] == o["modified"] && o.get("valid_until").is_none()));
        assert_eq!(first[0]["confidence"], 70);
        let again = reconcile(
            &feed,
            &mut state,
            &parse_lines("evil.example\n198.51.100.7\n"),
            2_000_000_000,
        );
        assert!(again.is_empty(), "nothing twice");
        let gone = reconcile(
            &feed,
            &mut state,
            &parse_lines("evil.example\n"),
            3_000_000_000,
        );
        assert_eq!(gone.len(), 1);
        assert_eq!(
            gone[0]["id"],
            first.iter().find(|o| o["name"] == "198.51.100.7").unwrap()["id"]
        );
        assert_eq!(gone[0]["valid_until"], gone[0]["modified"]);
        assert_eq!(gone[0]["created"], format_taxii(1_000_000_000));
        let back = reconcile(
            &feed,
            &mut state,
            &parse_lines("evil.example\n198.51.100.7\n"),
            4_000_000_000,
        );
        assert_eq!(back.len(), 1);
        assert_eq!(back[0]["valid_from"], format_taxii(4_000_000_000));
        assert!(back[0].get("valid_until").is_none());
    }

    #[test]
    fn ids_are_uuid5_of_feed_and_pattern() {
        let a = indicator_id("f", "[ipv4-addr:value = '1.2.3.4']");
        assert_eq!(a, indicator_id("f", "[ipv4-addr:value = '1.2.3.4']"));
        assert_ne!(a, indicator_id("g", "[ipv4-addr:value = '1.2.3.4']"));
        let uuid = uuid::Uuid::parse_str(a.trim_start_matches("indicator--")).expect("uuid");
        assert_eq!(uuid.get_version_num(), 5);
    }
}
