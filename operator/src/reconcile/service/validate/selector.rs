//! `spec.userSelector`: a standard Kubernetes label selector (`matchLabels`,
//! `matchExpressions`), checked as the API server checks one, matched against a
//! Secret's labels, and written as the `labelSelector` a list is filtered with.
//!
//! An empty selector matches everything in Kubernetes; here it is refused, so that no
//! `kubernetes.io/basic-auth` Secret of the namespace (a database's, a Git server's)
//! becomes a TAXII user by accident.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::pod::{label_value, qualified_name};

/// Why a selector is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSelector {
    /// Neither `matchLabels` nor `matchExpressions`.
    #[error(
        "is empty; it would select every kubernetes.io/basic-auth Secret of the namespace \
         (name a label, e.g. matchLabels: {{taxiway.dev/user: \"true\"}})"
    )]
    Empty,
    /// A `matchLabels` entry is not a valid label.
    #[error("matchLabels: {0}")]
    Label(String),
    /// A `matchExpressions` entry is not a valid requirement.
    #[error("matchExpressions[{index}]: {message}")]
    Expression {
        /// Its index.
        index: usize,
        /// What is wrong.
        message: String,
    },
}

/// One requirement on a label.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Requirement {
    /// The label is one of the values.
    In(String, BTreeSet<String>),
    /// The label is absent or none of the values.
    NotIn(String, BTreeSet<String>),
    /// The label is present.
    Exists(String),
    /// The label is absent.
    DoesNotExist(String),
}

/// A checked label selector: every requirement must hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

impl Selector {
    /// Check `selector` as the API server would, refusing an empty one.
    pub fn parse(selector: &LabelSelector) -> Result<Selector, Vec<InvalidSelector>> {
        let mut requirements = vec![];
        let mut errors = vec![];
        for (key, value) in selector.match_labels.iter().flatten() {
            match qualified_name(key).and_then(|()| label_value(value)) {
                Ok(()) => requirements.push(Requirement::In(
                    key.clone(),
                    BTreeSet::from([value.clone()]),
                )),
                Err(message) => errors.push(InvalidSelector::Label(message)),
            }
        }
        for (index, expression) in selector.match_expressions.iter().flatten().enumerate() {
            let key = expression.key.clone();
            let values: Vec<String> = expression.values.clone().unwrap_or_default();
            let checked = qualified_name(&key).and_then(|()| {
                let set: BTreeSet<String> = values.iter().cloned().collect();
                match expression.operator.as_str() {
                    "In" | "NotIn" if values.is_empty() => Err(format!(
                        "operator {} needs at least one value",
                        expression.operator
                    )),
                    "Exists" | "DoesNotExist" if !values.is_empty() => {
                        Err(format!("operator {} takes no values", expression.operator))
                    }
                    "In" | "NotIn" => {
                        for value in &values {
                            label_value(value)?;
                        }
                        Ok(if expression.operator == "In" {
                            Requirement::In(key.clone(), set)
                        } else {
                            Requirement::NotIn(key.clone(), set)
                        })
                    }
                    "Exists" => Ok(Requirement::Exists(key.clone())),
                    "DoesNotExist" => Ok(Requirement::DoesNotExist(key.clone())),
                    other => Err(format!(
                        "operator {other:?} is not one of In, NotIn, Exists, DoesNotExist"
                    )),
                }
            });
            match checked {
                Ok(requirement) => requirements.push(requirement),
                Err(message) => errors.push(InvalidSelector::Expression { index, message }),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        if requirements.is_empty() {
            return Err(vec![InvalidSelector::Empty]);
        }
        Ok(Selector { requirements })
    }

    /// Whether an object with these labels is selected.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| match r {
            Requirement::In(key, values) => labels.get(key).is_some_and(|v| values.contains(v)),
            Requirement::NotIn(key, values) => labels.get(key).is_none_or(|v| !values.contains(v)),
            Requirement::Exists(key) => labels.contains_key(key),
            Requirement::DoesNotExist(key) => !labels.contains_key(key),
        })
    }
}

/// The `labelSelector` query parameter (`k=v,k in (a,b),k notin (c),k,!k`).
impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let values = |set: &BTreeSet<String>| set.iter().cloned().collect::<Vec<_>>().join(",");
        for (i, requirement) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            match requirement {
                Requirement::In(key, set) if set.len() == 1 => write!(f, "{key}={}", values(set))?,
                Requirement::In(key, set) => write!(f, "{key} in ({})", values(set))?,
                Requirement::NotIn(key, set) => write!(f, "{key} notin ({})", values(set))?,
                Requirement::Exists(key) => write!(f, "{key}")?,
                Requirement::DoesNotExist(key) => write!(f, "!{key}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
    use serde_json::json;

    use super::*;

    fn selector(value: serde_json::Value) -> LabelSelector {
        serde_json::from_value(value).expect("a LabelSelector")
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn match_labels_and_expressions_all_must_hold() {
        let s = Selector::parse(&selector(json!({
            "matchLabels": {"taxiway.dev/user": "true"},
            "matchExpressions": [
                {"key": "team", "operator": "In", "values": ["soc", "cti"]},
                {"key": "tier", "operator": "NotIn", "values": ["test"]},
                {"key": "owner", "operator": "Exists"},
                {"key": "retired", "operator": "DoesNotExist"}
            ]
        })))
        .expect("valid");
        let base = [
            ("taxiway.dev/user", "true"),
            ("team", "soc"),
            ("owner", "x"),
        ];
        assert!(s.matches(&labels(&base)));
        let mut with = base.to_vec();
        with.push(("tier", "prod"));
        assert!(s.matches(&labels(&with)), "NotIn holds for another value");
        for (what, pairs) in [
            (
                "wrong matchLabels value",
                vec![
                    ("taxiway.dev/user", "false"),
                    ("team", "soc"),
                    ("owner", "x"),
                ],
            ),
            ("no matchLabels key", vec![("team", "soc"), ("owner", "x")]),
            (
                "In: another value",
                vec![
                    ("taxiway.dev/user", "true"),
                    ("team", "red"),
                    ("owner", "x"),
                ],
            ),
            (
                "NotIn: an excluded value",
                vec![
                    ("taxiway.dev/user", "true"),
                    ("team", "soc"),
                    ("owner", "x"),
                    ("tier", "test"),
                ],
            ),
            (
                "Exists: absent",
                vec![("taxiway.dev/user", "true"), ("team", "soc")],
            ),
            (
                "DoesNotExist: present",
                vec![
                    ("taxiway.dev/user", "true"),
                    ("team", "soc"),
                    ("owner", "x"),
                    ("retired", ""),
                ],
            ),
        ] {
            assert!(!s.matches(&labels(&pairs)), "{what}");
        }
        assert_eq!(
            s.to_string(),
            "taxiway.dev/user=true,team in (cti,soc),tier notin (test),owner,!retired"
        );
    }

    #[test]
    fn an_empty_selector_is_refused_not_a_match_for_everything() {
        for empty in [
            json!({}),
            json!({"matchLabels": {}}),
            json!({"matchExpressions": []}),
        ] {
            assert_eq!(
                Selector::parse(&selector(empty.clone())),
                Err(vec![InvalidSelector::Empty]),
                "{empty}"
            );
        }
    }

    #[test]
    fn invalid_selectors_are_refused_with_every_reason() {
        let errors = Selector::parse(&selector(json!({
            "matchLabels": {"bad key!": "x", "ok": "-bad-value-"},
            "matchExpressions": [
                {"key": "a", "operator": "In", "values": []},
                {"key": "b", "operator": "Exists", "values": ["x"]},
                {"key": "c", "operator": "Equals", "values": ["x"]},
                {"key": "d", "operator": "NotIn", "values": ["has space"]},
                {"key": "Upper.Prefix/x", "operator": "Exists"}
            ]
        })))
        .expect_err("invalid");
        let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(messages.len(), 7, "{messages:#?}");
        assert!(messages[0].starts_with("matchLabels: the key \"bad key!\""));
        assert!(messages[1].contains("\"-bad-value-\" is not a valid label value"));
        assert_eq!(
            messages[2],
            "matchExpressions[0]: operator In needs at least one value"
        );
        assert_eq!(
            messages[3],
            "matchExpressions[1]: operator Exists takes no values"
        );
        assert!(messages[4].contains("\"Equals\" is not one of In, NotIn"));
        assert!(messages[5].contains("\"has space\" is not a valid label value"));
        assert!(messages[6].starts_with("matchExpressions[4]: the key's prefix"));
    }

    #[test]
    fn the_query_round_trips_through_the_api_servers_syntax() {
        let s = Selector::parse(&LabelSelector {
            match_labels: Some(BTreeMap::from([("app".into(), "taxii".into())])),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "role".into(),
                operator: "In".into(),
                values: Some(vec!["reader".into(), "writer".into()]),
            }]),
        })
        .expect("valid");
        assert_eq!(s.to_string(), "app=taxii,role in (reader,writer)");
    }
}
