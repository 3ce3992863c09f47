//! The rendered `config/taxiway.toml` ConfigMap and the generated `credentials/` and
//! `feeds/` Secrets.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;
use taxiway_model::config::{Config, CONFIG_FILE};

use super::BuildError;
use crate::credentials::{CredentialsFile, FILE_NAME};

/// The config ConfigMap: `taxiway.toml` only, never a secret.
pub fn config_map(
    meta: ObjectMeta,
    config: &Config,
    namespace: &str,
    service: &str,
) -> Result<ConfigMap, BuildError> {
    let body = toml::to_string(config).map_err(|e| BuildError::Render {
        file: CONFIG_FILE,
        message: e.to_string(),
    })?;
    let text = format!(
        "# Rendered by taxiway-operator from TaxiiService {namespace}/{service} and its\n\
         # TaxiiCollections; edit those, not this file.\n\n{body}"
    );
    Ok(ConfigMap {
        metadata: meta,
        data: Some(BTreeMap::from([(CONFIG_FILE.to_string(), text)])),
        ..ConfigMap::default()
    })
}

/// The credentials Secret: the users file with hashes only.
pub fn credentials_secret(
    meta: ObjectMeta,
    credentials: &CredentialsFile,
) -> Result<Secret, BuildError> {
    let bytes = credentials.render().map_err(|e| BuildError::Render {
        file: FILE_NAME,
        message: e.to_string(),
    })?;
    Ok(Secret {
        metadata: meta,
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([(FILE_NAME.to_string(), ByteString(bytes))])),
        ..Secret::default()
    })
}

/// The feeds Secret: the credential files of the TaxiiFeeds run, copied from the
/// Secrets they name (`<feed>.password`, `<feed>.api-key`, `<feed>.ca.crt`,
/// `<feed>.tls.crt`, `<feed>.tls.key`), so the server reads them at each pull and a
/// feed added or a Secret rotated never restarts a pod.
pub fn feeds_secret(meta: ObjectMeta, files: &BTreeMap<String, ByteString>) -> Secret {
    Secret {
        metadata: meta,
        type_: Some("Opaque".into()),
        // No files: no `data` at all (the API server stores an empty map as absent,
        // and a desired `{}` would look like drift forever).
        data: (!files.is_empty()).then(|| files.clone()),
        ..Secret::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_feeds_secret_has_no_data_without_files() {
        // An empty `data` map is stored as absent: rendering `{}` would be drift forever.
        assert_eq!(
            feeds_secret(ObjectMeta::default(), &BTreeMap::new()).data,
            None
        );
        let files = BTreeMap::from([("partner.password".to_string(), ByteString(b"pw".to_vec()))]);
        let secret = feeds_secret(ObjectMeta::default(), &files);
        assert_eq!(secret.data, Some(files));
        assert_eq!(secret.type_.as_deref(), Some("Opaque"));
    }
}
