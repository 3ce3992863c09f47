//! Hand-written schemas where a derived one would be unhelpful.

use schemars::{json_schema, Schema, SchemaGenerator};

/// Container resources: a compact schema for `ResourceRequirements` (`requests` and
/// `limits` of quantities) instead of the Kubernetes one with its page-long docs.
pub fn resources(_: &mut SchemaGenerator) -> Schema {
    let quantities = |what: &str| {
        serde_json::json!({
            "description": format!("{what} by resource name (`cpu`, `memory`), as Kubernetes quantities."),
            "type": "object",
            "additionalProperties": { "x-kubernetes-int-or-string": true }
        })
    };
    json_schema!({
        "nullable": true,
        "type": "object",
        "properties": {
            "requests": quantities("Requested amounts"),
            "limits": quantities("Limits"),
        }
    })
}
