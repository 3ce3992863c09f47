//! The CRD YAML checked in under `crds/` is exactly what the types generate.

use std::path::Path;

#[test]
fn checked_in_crds_match_the_types() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds");
    let mut stale = vec![];
    for crd in taxiway_operator::crd::definitions() {
        let name = taxiway_operator::crd::file_name(&crd);
        let generated = taxiway_operator::crd::to_yaml(&crd).expect("CRD renders as YAML");
        let checked_in = std::fs::read_to_string(dir.join(&name)).unwrap_or_default();
        if checked_in != generated {
            stale.push(name);
        }
    }
    assert!(
        stale.is_empty(),
        "crds/ is out of sync with operator/src/crd/ ({}); regenerate with\n    \
         cargo run -p taxiway-operator -- crds --dir crds",
        stale.join(", ")
    );
}

#[test]
fn crds_parse_back_as_yaml() {
    let yaml = taxiway_operator::crd::all_yaml().expect("renders");
    let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple(&yaml).expect("valid YAML");
    let kinds: Vec<&str> = documents
        .iter()
        .filter_map(|d| d["spec"]["names"]["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["TaxiiService", "TaxiiCollection", "TaxiiFeed"]);
    for doc in &documents {
        assert_eq!(doc["kind"], "CustomResourceDefinition");
        assert_eq!(doc["spec"]["group"], "taxiway.dev");
        let version = &doc["spec"]["versions"][0];
        assert_eq!(version["name"], "v1alpha1");
        assert!(version["subresources"]["status"].is_object());
    }
}
