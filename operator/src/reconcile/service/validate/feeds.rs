//! TaxiiFeeds: each turned into a `[[feeds]]` entry of the server's configuration,
//! its Secrets copied into the generated feeds Secret, and judged by the server's
//! validator together with the feeds admitted before it (by name order). One the
//! server would reject is left out and reported; the others keep running.

use std::collections::BTreeMap;
use std::path::PathBuf;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use kube::ResourceExt;
use taxiway_model::config::{self as server_config, Config, ConfigError, Feed};

use super::{CollectionVerdict, BASIC_AUTH, TLS};
use crate::crd::{interval_seconds, FeedAdmission, FeedFormat, TaxiiFeed};
use crate::reconcile::service::build::FEEDS_DIR;

/// The key of a Secret holding an API key for a feed.
pub const API_KEY_KEY: &str = "api-key";

/// The reason of an accepted feed.
pub const RENDERED: &str = "Rendered";

/// The label a Secret must carry (`"true"`) before a TaxiiFeed may send what it holds
/// (a password, an API key, a client key) to its upstream. Whoever may create a
/// TaxiiFeed chooses the URL: without this opt-in by whoever manages the Secret, a
/// TaxiiFeed could make the server hand any basic-auth Secret of the namespace to a
/// server of its author's choosing. CA bundles are public and need no label.
pub const FEED_CREDENTIALS_LABEL: &str = "taxiway.dev/feed-credentials";

/// What became of the TaxiiFeeds of a service.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FeedsPlan {
    /// One decision per TaxiiFeed, by name.
    pub admissions: Vec<FeedAdmission>,
    /// The generated feeds Secret's data: the credential files of accepted feeds.
    pub files: BTreeMap<String, ByteString>,
}

impl FeedsPlan {
    /// The names of the TaxiiFeeds left out.
    pub fn rejected(&self) -> Vec<&str> {
        self.admissions
            .iter()
            .filter(|a| !a.accepted)
            .map(|a| a.name.as_str())
            .collect()
    }
}

/// The name a TaxiiFeed runs under in the server (`[[feeds]].name`, the `feed:<name>`
/// owner of what it stores, the metrics' `feed` label): its `metadata.name` with `.`
/// (allowed in Kubernetes names, not in feed names) as `_`.
pub fn server_name(feed: &TaxiiFeed) -> String {
    feed.name_any().replace('.', "_")
}

/// Admit `feeds` into `config` (which already holds the admitted collections).
pub fn admit_feeds(
    mut config: Config,
    feeds: &[TaxiiFeed],
    collections: &[CollectionVerdict],
    secrets: &BTreeMap<String, Secret>,
) -> (Config, FeedsPlan) {
    let mut plan = FeedsPlan::default();
    for feed in feeds {
        let decided = |accepted: bool, reason: &str, message: String| FeedAdmission {
            name: feed.name_any(),
            observed_generation: feed.metadata.generation,
            accepted,
            reason: reason.to_string(),
            message,
        };
        let rendered =
            render(feed, collections, secrets).and_then(|r| granted(r, &feed.spec.into, &config));
        let (entry, files) = match rendered {
            Ok(rendered) => rendered,
            Err(Refusal { reason, message }) => {
                plan.admissions.push(decided(false, reason, message));
                continue;
            }
        };
        config.feeds.push(entry);
        match server_config::validate(config.clone()) {
            Ok(_) => {
                plan.files.extend(files);
                plan.admissions.push(decided(true, RENDERED, String::new()));
            }
            Err(error) => {
                let at = format!("feeds[{}]", config.feeds.len() - 1);
                config.feeds.pop();
                plan.admissions
                    .push(decided(false, "InvalidFeed", feed_problems(error, &at)));
            }
        }
    }
    (config, plan)
}

/// Why a TaxiiFeed cannot be rendered at all.
struct Refusal {
    reason: &'static str,
    message: String,
}

fn refuse(reason: &'static str, message: String) -> Refusal {
    Refusal { reason, message }
}

/// The `[[feeds]]` entry of a TaxiiFeed and the files it needs in the feeds Secret.
fn render(
    feed: &TaxiiFeed,
    collections: &[CollectionVerdict],
    secrets: &BTreeMap<String, Secret>,
) -> Result<(Feed, BTreeMap<String, ByteString>), Refusal> {
    let spec = &feed.spec;
    let name = server_name(feed);
    let into = into_collection(&spec.into, collections)?;
    let interval_secs =
        interval_seconds(&spec.interval).map_err(|e| refuse("InvalidInterval", e.to_string()))?;
    let path = |suffix: &str| PathBuf::from(FEEDS_DIR).join(format!("{name}.{suffix}"));
    let mut files = BTreeMap::new();
    let mut entry = Feed {
        name: name.clone(),
        into,
        url: spec.url.clone(),
        format: match spec.format {
            FeedFormat::Taxii => server_config::FeedFormat::Taxii,
            FeedFormat::StixBundle => server_config::FeedFormat::StixBundle,
            FeedFormat::Lines => server_config::FeedFormat::Lines,
            FeedFormat::Csv => server_config::FeedFormat::Csv,
        },
        collection: spec.collection.clone(),
        interval_secs,
        timeout_secs: spec.timeout_seconds.unwrap_or(60),
        max_response_bytes: spec.max_response_bytes.map_or(64 * 1024 * 1024, |n| {
            usize::try_from(n).unwrap_or(usize::MAX)
        }),
        page_size: spec
            .page_size
            .map_or(500, |n| usize::try_from(n).unwrap_or(usize::MAX)),
        username: None,
        password_file: None,
        api_key_file: None,
        api_key_header: None,
        ca_file: None,
        client_cert_file: None,
        client_key_file: None,
        match_types: spec.match_types.clone(),
        csv_column: spec
            .csv_column
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        labels: spec.labels.clone(),
        confidence: spec.confidence,
        tlp: spec.tlp.clone(),
    };
    if let Some(credentials) = &spec.credentials {
        let secret = secret(
            secrets,
            &credentials.secret_name,
            "spec.credentials.secretName",
        )?;
        labelled_for_feeds(secret, "spec.credentials.secretName")?;
        if secret.type_.as_deref() == Some(BASIC_AUTH) {
            let username = key(secret, "username", "spec.credentials.secretName")?;
            let password = key(secret, "password", "spec.credentials.secretName")?;
            entry.username = Some(String::from_utf8(username.0.clone()).map_err(|_| {
                refuse(
                    "InvalidSecret",
                    format!(
                        "spec.credentials.secretName: the username of Secret {} is not UTF-8",
                        credentials.secret_name
                    ),
                )
            })?);
            files.insert(format!("{name}.password"), password.clone());
            entry.password_file = Some(path("password"));
        } else {
            let api_key =
                key(secret, API_KEY_KEY, "spec.credentials.secretName").map_err(|_| {
                    refuse(
                        "InvalidSecret",
                        format!(
                        "spec.credentials.secretName: Secret {} is neither of type {BASIC_AUTH} \
                         (username, password) nor holds an `{API_KEY_KEY}` key",
                        credentials.secret_name
                    ),
                    )
                })?;
            files.insert(format!("{name}.api-key"), api_key.clone());
            entry.api_key_file = Some(path("api-key"));
            entry.api_key_header = credentials.api_key_header.clone();
        }
    }
    if let Some(ca) = &spec.ca_secret_name {
        let secret = secret(secrets, ca, "spec.caSecretName")?;
        files.insert(
            format!("{name}.ca.crt"),
            key(secret, "ca.crt", "spec.caSecretName")?.clone(),
        );
        entry.ca_file = Some(path("ca.crt"));
    }
    if let Some(cert) = &spec.client_cert_secret_name {
        let secret = secret(secrets, cert, "spec.clientCertSecretName")?;
        labelled_for_feeds(secret, "spec.clientCertSecretName")?;
        if secret.type_.as_deref() != Some(TLS) {
            return Err(refuse(
                "InvalidSecret",
                format!("spec.clientCertSecretName: Secret {cert} is not of type {TLS}"),
            ));
        }
        for file in ["tls.crt", "tls.key"] {
            files.insert(
                format!("{name}.{file}"),
                key(secret, file, "spec.clientCertSecretName")?.clone(),
            );
        }
        entry.client_cert_file = Some(path("tls.crt"));
        entry.client_key_file = Some(path("tls.key"));
    }
    Ok((entry, files))
}

/// `rendered` when the collection it stores into grants it write (`feed:<name>` in the
/// TaxiiCollection's `spec.access.write`): no grant, no write — whoever owns a
/// collection decides who adds to it, a feed as much as a user.
fn granted(
    rendered: (Feed, BTreeMap<String, ByteString>),
    into: &str,
    config: &Config,
) -> Result<(Feed, BTreeMap<String, ByteString>), Refusal> {
    let owner = rendered.0.owner();
    let grants = config
        .collections
        .iter()
        .find(|c| c.id == rendered.0.into)
        .is_some_and(|c| c.access.write.contains(&owner));
    if grants {
        return Ok(rendered);
    }
    Err(refuse(
        "CollectionNotGranted",
        format!(
            "spec.into: TaxiiCollection {into} does not grant this feed write: add {owner:?} \
             to its spec.access.write"
        ),
    ))
}

/// The collection id of the served, writable TaxiiCollection `name`.
fn into_collection(name: &str, collections: &[CollectionVerdict]) -> Result<String, Refusal> {
    let Some(collection) = collections.iter().find(|c| c.name == name) else {
        return Err(refuse(
            "CollectionNotFound",
            format!("spec.into: no TaxiiCollection {name} names this service"),
        ));
    };
    if let Some(rejection) = &collection.rejection {
        return Err(refuse(
            "CollectionNotServed",
            format!(
                "spec.into: TaxiiCollection {name} is not served ({}); see its status",
                rejection.reason
            ),
        ));
    }
    if collection.query != super::QueryVerdict::Writable {
        return Err(refuse(
            "CollectionNotWritable",
            format!("spec.into: TaxiiCollection {name} is a query collection; name a writable one"),
        ));
    }
    collection.id.clone().ok_or_else(|| {
        refuse(
            "CollectionNotServed",
            format!("spec.into: TaxiiCollection {name} has no id yet"),
        )
    })
}

fn secret<'a>(
    secrets: &'a BTreeMap<String, Secret>,
    name: &str,
    field: &str,
) -> Result<&'a Secret, Refusal> {
    secrets.get(name).ok_or_else(|| {
        refuse(
            "SecretNotFound",
            format!("{field}: Secret {name} does not exist"),
        )
    })
}

/// Refuse a Secret holding something private that is not labelled for feeds.
fn labelled_for_feeds(secret: &Secret, field: &str) -> Result<(), Refusal> {
    let labelled = secret
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(FEED_CREDENTIALS_LABEL))
        .is_some_and(|v| v == "true");
    if labelled {
        return Ok(());
    }
    Err(refuse(
        "SecretNotLabelled",
        format!(
            "{field}: Secret {} is not labelled {FEED_CREDENTIALS_LABEL}=true; label it to \
             let TaxiiFeeds send what it holds to their upstream",
            secret.name_any()
        ),
    ))
}

fn key<'a>(secret: &'a Secret, key: &str, field: &str) -> Result<&'a ByteString, Refusal> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .filter(|v| !v.0.is_empty())
        .ok_or_else(|| {
            refuse(
                "InvalidSecret",
                format!("{field}: Secret {} has no `{key}`", secret.name_any()),
            )
        })
}

/// The server's problems with one feed, in the TaxiiFeed's own vocabulary.
fn feed_problems(error: ConfigError, at: &str) -> String {
    let problems = match error {
        ConfigError::Invalid(problems) => problems,
        other => return other.to_string(),
    };
    let prefix = format!("{at}.");
    let lines: Vec<String> = problems
        .into_iter()
        .filter(|p| p.at.starts_with(&prefix))
        .map(|p| format!("spec.{}: {}", spec_field(&p.at[prefix.len()..]), p.message))
        .collect();
    if lines.is_empty() {
        "the server refuses the configuration with this feed".into()
    } else {
        lines.join("; ")
    }
}

/// A `[[feeds]]` field as the TaxiiFeed field that sets it.
fn spec_field(field: &str) -> String {
    match field {
        "name" => "metadata.name".into(),
        "interval_secs" => "interval".into(),
        "timeout_secs" => "timeoutSeconds".into(),
        "page_size" => "pageSize".into(),
        "max_response_bytes" => "maxResponseBytes".into(),
        "match_types" => "matchTypes".into(),
        "csv_column" => "csvColumn".into(),
        "api_key_header" => "credentials.apiKeyHeader".into(),
        "username" | "password_file" | "api_key_file" => "credentials".into(),
        "ca_file" => "caSecretName".into(),
        "client_cert_file" | "client_key_file" => "clientCertSecretName".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use taxiway_model::config::{Access, ApiRoot, Collection, Service};

    use super::*;
    use crate::crd::TaxiiFeedSpec;
    use crate::reconcile::service::validate::{QueryVerdict, Rejection};

    const INBOX: &str = "2f1c9a4e-8b6d-4e3f-9a7b-1c2d3e4f5a6b";

    fn base() -> Config {
        let mut config: Config = toml::from_str(
            "[service]\ntitle = \"t\"\n[[api_roots]]\npath = \"hub\"\ntitle = \"Hub\"\n",
        )
        .expect("base");
        config.service = Service {
            title: "t".into(),
            ..config.service
        };
        config.api_roots = vec![ApiRoot {
            path: "hub".into(),
            title: "Hub".into(),
            description: None,
        }];
        config.collections.push(Collection {
            id: INBOX.into(),
            api_root: "hub".into(),
            title: "Inbox".into(),
            description: None,
            alias: None,
            writable: true,
            query: None,
            dialect: Default::default(),
            sources: None,
            access: Access {
                write: [
                    "partner_v2",
                    "urls",
                    "a-ok",
                    "e-secret",
                    "f-keyless",
                    "g-interval",
                    "h-taxii",
                    "i-unlabelled",
                    "j-ca",
                ]
                .iter()
                .map(|f| format!("feed:{f}"))
                .collect(),
                ..Access::default()
            },
        });
        config
    }

    fn verdict(name: &str, query: QueryVerdict, rejection: Option<Rejection>) -> CollectionVerdict {
        CollectionVerdict {
            name: name.into(),
            generation: Some(1),
            id: Some(INBOX.into()),
            api_root: "hub".into(),
            url: None,
            query,
            rejection,
            previous_query: None,
            native_query: None,
            sources: vec![],
            warnings: vec![],
        }
    }

    fn feed(name: &str, spec: serde_json::Value) -> TaxiiFeed {
        let mut spec_json = serde_json::json!({"service": "hub", "into": "inbox"});
        if let (Some(all), Some(more)) = (spec_json.as_object_mut(), spec.as_object()) {
            all.extend(more.clone());
        }
        let spec: TaxiiFeedSpec = serde_json::from_value(spec_json).expect("spec");
        TaxiiFeed {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("intel".into()),
                generation: Some(3),
                ..ObjectMeta::default()
            },
            spec,
            status: None,
        }
    }

    /// A Secret labelled for feeds (see [`unlabelled`]).
    fn secret(name: &str, type_: &str, data: &[(&str, &str)]) -> (String, Secret) {
        let (name, mut secret) = unlabelled(name, type_, data);
        secret.metadata.labels =
            Some([(FEED_CREDENTIALS_LABEL.to_string(), "true".to_string())].into());
        (name, secret)
    }

    fn unlabelled(name: &str, type_: &str, data: &[(&str, &str)]) -> (String, Secret) {
        (
            name.to_string(),
            Secret {
                metadata: ObjectMeta {
                    name: Some(name.into()),
                    ..ObjectMeta::default()
                },
                type_: Some(type_.into()),
                data: Some(
                    data.iter()
                        .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                        .collect(),
                ),
                ..Secret::default()
            },
        )
    }

    #[test]
    fn a_taxii_feed_with_basic_auth_and_a_ca_is_rendered_with_files_only() {
        let feeds = [feed(
            "partner.v2",
            serde_json::json!({
                "url": "https://partner.example/taxii2/", "collection": "Partner indicators",
                "interval": "1h30m", "credentials": {"secretName": "partner"},
                "caSecretName": "partner-ca", "matchTypes": ["indicator"]
            }),
        )];
        let secrets = BTreeMap::from([
            secret(
                "partner",
                BASIC_AUTH,
                &[("username", "hub"), ("password", "s3cret")],
            ),
            secret("partner-ca", "Opaque", &[("ca.crt", "PEM")]),
        ]);
        let collections = [verdict("inbox", QueryVerdict::Writable, None)];
        let (config, plan) = admit_feeds(base(), &feeds, &collections, &secrets);
        assert_eq!(plan.admissions[0].reason, RENDERED, "{plan:?}");
        assert!(plan.admissions[0].accepted);
        let rendered = &config.feeds[0];
        assert_eq!(rendered.name, "partner_v2");
        assert_eq!(rendered.into, INBOX);
        assert_eq!(rendered.interval_secs, 5400);
        assert_eq!(rendered.username.as_deref(), Some("hub"));
        assert_eq!(
            rendered.password_file,
            Some(PathBuf::from(FEEDS_DIR).join("partner_v2.password"))
        );
        assert_eq!(
            rendered.ca_file,
            Some(PathBuf::from(FEEDS_DIR).join("partner_v2.ca.crt"))
        );
        assert_eq!(
            plan.files.keys().collect::<Vec<_>>(),
            ["partner_v2.ca.crt", "partner_v2.password"]
        );
        let toml = toml::to_string(&config).expect("toml");
        assert!(
            !toml.contains("s3cret"),
            "no secret in the ConfigMap: {toml}"
        );
    }

    #[test]
    fn an_api_key_secret_of_any_type_is_used_with_its_header() {
        let feeds = [feed(
            "urls",
            serde_json::json!({"url": "https://lists.example/urls.txt", "format": "lines",
                "credentials": {"secretName": "key", "apiKeyHeader": "X-API-Key"}}),
        )];
        let secrets = BTreeMap::from([secret("key", "Opaque", &[("api-key", "k")])]);
        let collections = [verdict("inbox", QueryVerdict::Writable, None)];
        let (config, plan) = admit_feeds(base(), &feeds, &collections, &secrets);
        assert!(plan.admissions[0].accepted, "{plan:?}");
        assert_eq!(config.feeds[0].api_key_header.as_deref(), Some("X-API-Key"));
        assert!(plan.files.contains_key("urls.api-key"));
    }

    #[test]
    fn each_refusal_names_the_field_and_leaves_the_others_running() {
        let collections = [
            verdict("inbox", QueryVerdict::Writable, None),
            verdict("view", QueryVerdict::Valid, None),
            verdict(
                "broken",
                QueryVerdict::Writable,
                Some(Rejection {
                    reason: "DuplicateTitle",
                    message: "x".into(),
                }),
            ),
        ];
        let secrets = BTreeMap::from([
            secret("plain", "Opaque", &[("token", "t")]),
            unlabelled("login", BASIC_AUTH, &[("username", "u"), ("password", "p")]),
            unlabelled("public-ca", "Opaque", &[("ca.crt", "PEM")]),
        ]);
        let list = serde_json::json!({"url": "https://l/x.txt", "format": "lines"});
        let with = |extra: serde_json::Value| {
            let mut all = list.clone();
            if let (Some(a), Some(b)) = (all.as_object_mut(), extra.as_object()) {
                a.extend(b.clone());
            }
            all
        };
        let feeds = [
            feed("a-ok", list.clone()),
            feed("b-missing", with(serde_json::json!({"into": "nowhere"}))),
            feed("c-view", with(serde_json::json!({"into": "view"}))),
            feed("d-broken", with(serde_json::json!({"into": "broken"}))),
            feed(
                "e-secret",
                with(serde_json::json!({"credentials": {"secretName": "gone"}})),
            ),
            feed(
                "f-keyless",
                with(serde_json::json!({"credentials": {"secretName": "plain"}})),
            ),
            feed("g-interval", with(serde_json::json!({"interval": "5s"}))),
            feed("h-taxii", serde_json::json!({"url": "https://t/taxii2/"})),
            feed(
                "i-unlabelled",
                with(serde_json::json!({"credentials": {"secretName": "login"}})),
            ),
            feed(
                "j-ca",
                with(serde_json::json!({"caSecretName": "public-ca"})),
            ),
            feed("k-ungranted", list.clone()),
        ];
        let (config, plan) = admit_feeds(base(), &feeds, &collections, &secrets);
        let reasons: Vec<(&str, &str)> = plan
            .admissions
            .iter()
            .map(|a| (a.name.as_str(), a.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            [
                ("a-ok", RENDERED),
                ("b-missing", "CollectionNotFound"),
                ("c-view", "CollectionNotWritable"),
                ("d-broken", "CollectionNotServed"),
                ("e-secret", "SecretNotFound"),
                ("f-keyless", "InvalidSecret"),
                ("g-interval", "InvalidFeed"),
                ("h-taxii", "InvalidFeed"),
                ("i-unlabelled", "SecretNotLabelled"),
                ("j-ca", RENDERED),
                ("k-ungranted", "CollectionNotGranted"),
            ]
        );
        assert_eq!(config.feeds.len(), 2, "a CA needs no label");
        let message = |name: &str| {
            plan.admissions
                .iter()
                .find(|a| a.name == name)
                .map(|a| a.message.clone())
                .unwrap_or_default()
        };
        assert!(
            message("g-interval").starts_with("spec.interval:"),
            "{plan:?}"
        );
        assert!(
            message("h-taxii").starts_with("spec.collection:"),
            "{plan:?}"
        );
        assert_eq!(plan.rejected().len(), 9);
        assert_eq!(
            message("k-ungranted"),
            "spec.into: TaxiiCollection inbox does not grant this feed write: add \
             \"feed:k-ungranted\" to its spec.access.write"
        );
        assert!(
            message("i-unlabelled").contains("taxiway.dev/feed-credentials=true"),
            "{plan:?}"
        );
    }
}
