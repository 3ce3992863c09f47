//! `[[feeds]]`: upstream TAXII collections, STIX bundles and IOC lists the server
//! pulls into a writable collection on a schedule (rules in `validate/feeds.rs`).
//!
//! Credentials are never written in `taxiway.toml`: only the files holding them
//! (mounted Secrets) are named, and read at each pull.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::stix::tlp::Tlp;

/// The shortest interval between two pulls of a feed (seconds).
pub const MIN_INTERVAL_SECS: u64 = 10;

/// One feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Feed {
    /// Unique name: letters, digits, `-` and `_`. Objects are stored as posted by the
    /// user `feed:<name>`; metrics and logs carry it.
    pub name: String,
    /// The writable collection (id, alias or title) the feed stores into.
    pub into: String,
    /// A TAXII discovery or API root URL (`format = "taxii"`), or the URL of the
    /// list or bundle.
    pub url: String,
    /// What `url` serves.
    #[serde(default)]
    pub format: FeedFormat,
    /// TAXII only: the upstream collection, by id or title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    /// Seconds between the start of two pulls; at least [`MIN_INTERVAL_SECS`].
    #[serde(default = "default_interval")]
    pub interval_secs: u64,
    /// Seconds one HTTP request may take, connection included.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Largest response body accepted (bytes): a page of a TAXII collection, or a
    /// whole list or bundle. Larger responses fail the pull.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: usize,
    /// TAXII only: objects asked for per page (`limit`).
    #[serde(default = "default_page_size")]
    pub page_size: usize,
    /// HTTP basic authentication: the user name (with `password_file`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// HTTP basic authentication: a file holding the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// A file holding an API key, sent as `Authorization: Bearer <key>` or in
    /// `api_key_header`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_file: Option<PathBuf>,
    /// The header carrying the API key as is (e.g. `X-API-Key`), instead of
    /// `Authorization: Bearer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_header: Option<String>,
    /// CA bundle (PEM) the upstream's certificate must chain to, instead of the
    /// system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM chain) presented to the upstream, with `client_key_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert_file: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key_file: Option<PathBuf>,
    /// Keep only objects of these STIX types (empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_types: Vec<String>,
    /// `csv` only: the 1-based column holding the indicator value (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv_column: Option<usize>,
    /// `lines`/`csv`: `labels` of the indicators made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// `lines`/`csv`: `confidence` (0-100) of the indicators made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<u8>,
    /// `lines`/`csv`: the TLP marking of the indicators made (`clear`, `green`,
    /// `amber`, `amber+strict`, `red`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tlp: Option<String>,
}

/// What a feed's URL serves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FeedFormat {
    /// A TAXII 2.1 or 2.0 server (the version is negotiated).
    #[default]
    Taxii,
    /// A STIX bundle (or anything with an `objects` array).
    StixBundle,
    /// One indicator per line: IPv4/IPv6 address or CIDR, domain, URL or hash; `#`
    /// starts a comment.
    Lines,
    /// CSV with the indicator in one column (`csv_column`).
    Csv,
}

impl FeedFormat {
    /// The name as written in `taxiway.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            FeedFormat::Taxii => "taxii",
            FeedFormat::StixBundle => "stix-bundle",
            FeedFormat::Lines => "lines",
            FeedFormat::Csv => "csv",
        }
    }

    /// Whether the feed's entries become generated indicators (a list).
    pub fn is_list(self) -> bool {
        matches!(self, FeedFormat::Lines | FeedFormat::Csv)
    }
}

fn default_interval() -> u64 {
    900
}

fn default_timeout() -> u64 {
    60
}

fn default_max_response_bytes() -> usize {
    64 * 1024 * 1024
}

fn default_page_size() -> usize {
    500
}

impl Feed {
    /// The caller key objects of this feed are stored under (status owner).
    pub fn owner(&self) -> String {
        format!("feed:{}", self.name)
    }

    /// The TLP level of `tlp`, when set and known.
    pub fn tlp_level(&self) -> Option<Tlp> {
        self.tlp.as_deref().and_then(Tlp::parse)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{parse, ConfigError, FeedFormat};

    const BASE: &str = r#"
[service]
title = "t"

[[api_roots]]
path = "feeds"
title = "Feeds"

[[collections]]
id = "2f1c9a4e-8b6d-4e3f-9a7b-1c2d3e4f5a6b"
api_root = "feeds"
title = "Inbox"
alias = "inbox"
writable = true
access = { write = ["feed:partner", "feed:urlhaus", "feed:blocklist", "feed:dup", "feed:a"] }

[[collections]]
id = "3f1c9a4e-8b6d-4e3f-9a7b-1c2d3e4f5a6b"
api_root = "feeds"
title = "View"
query = "type:indicator"
"#;

    fn problems(feeds: &str) -> Vec<String> {
        match parse(&format!("{BASE}\n{feeds}")) {
            Ok(_) => Vec::new(),
            Err(ConfigError::Invalid(p)) => p.iter().map(|p| p.to_string()).collect(),
            Err(e) => vec![e.to_string()],
        }
    }

    #[test]
    fn the_documented_feeds_parse() {
        let c = parse(&format!(
            "{BASE}\n[[feeds]]\nname = \"partner\"\ninto = \"inbox\"\nurl = \"https://partner.example/taxii2/\"\n\
             collection = \"Partner indicators\"\nformat = \"taxii\"\ninterval_secs = 900\n\
             username = \"taxiway\"\npassword_file = \"/var/run/secrets/partner/password\"\n\
             ca_file = \"/var/run/secrets/partner/ca.crt\"\nmatch_types = [\"indicator\", \"malware\"]\n\n\
             [[feeds]]\nname = \"urlhaus\"\ninto = \"Inbox\"\nurl = \"https://lists.example/urls.txt\"\n\
             format = \"lines\"\nlabels = [\"malicious-activity\"]\nconfidence = 70\ntlp = \"green\"\n\n\
             [[feeds]]\nname = \"blocklist\"\ninto = \"2f1c9a4e-8b6d-4e3f-9a7b-1c2d3e4f5a6b\"\n\
             url = \"http://lists.example/ips.csv\"\nformat = \"csv\"\ncsv_column = 2\n"
        ))
        .expect("valid");
        let feeds = &c.config.feeds;
        assert_eq!(feeds.len(), 3);
        assert_eq!(feeds[0].format, FeedFormat::Taxii);
        assert_eq!(feeds[0].owner(), "feed:partner");
        assert_eq!(feeds[1].format, FeedFormat::Lines);
        assert_eq!(feeds[1].interval_secs, 900);
        assert_eq!(feeds[2].csv_column, Some(2));
        // Round trip: the operator renders feeds with these types.
        let text = toml::to_string(&c.config).expect("serialise");
        let again = parse(&text).expect("re-parse");
        assert_eq!(again.config.feeds, c.config.feeds);
    }

    #[test]
    fn no_feeds_renders_nothing() {
        let c = parse(BASE).expect("valid");
        assert!(!toml::to_string(&c.config)
            .expect("toml")
            .contains("[[feeds]]"));
    }

    #[test]
    fn every_rule_is_reported() {
        let p = problems(
            "[[feeds]]\nname = \"a b\"\ninto = \"View\"\nurl = \"ftp://x\"\ninterval_secs = 1\n\
             username = \"u\"\nclient_cert_file = \"/c\"\ncsv_column = 2\nconfidence = 101\ntlp = \"pink\"\n\n\
             [[feeds]]\nname = \"dup\"\ninto = \"nowhere\"\nurl = \"https://u:p@h/\"\nformat = \"lines\"\ncollection = \"c\"\n\n\
             [[feeds]]\nname = \"dup\"\ninto = \"inbox\"\nurl = \"https://h/\"\nformat = \"stix-bundle\"\nlabels = [\"x\"]\n\
             api_key_header = \"X-Key\"\n",
        );
        for needle in [
            "feeds[0].name",
            "feeds[0].into: \"View\" is a query collection",
            "feeds[0].url",
            "feeds[0].interval_secs",
            "feeds[0].password_file",
            "feeds[0].client_key_file",
            "feeds[0].collection",
            "feeds[0].csv_column",
            "feeds[0].confidence",
            "feeds[0].tlp",
            "feeds[1].into: names no configured collection",
            "feeds[1].url: must not hold credentials",
            "feeds[1].collection: only TAXII feeds",
            "feeds[2].name: duplicate",
            "feeds[2].labels",
            "feeds[2].api_key_header",
        ] {
            assert!(p.iter().any(|p| p.starts_with(needle)), "{needle}: {p:#?}");
        }
        assert!(
            p.iter().all(|p| !p.contains("u:p@")),
            "a URL with credentials is not echoed: {p:?}"
        );
    }

    #[test]
    fn a_feed_writes_only_where_it_is_granted_write() {
        let p = problems(
            "[[feeds]]\nname = \"stranger\"\ninto = \"inbox\"\nurl = \"https://h/\"\nformat = \"lines\"\n",
        );
        assert_eq!(
            p,
            [
                "feeds[0].into: \"inbox\" does not grant this feed write: add \"feed:stranger\" \
                 to its access.write"
            ],
        );
        // A group grant does not name a feed: feeds belong to no group.
        let granted = parse(&format!(
            "{}\n[[feeds]]\nname = \"partner\"\ninto = \"inbox\"\nurl = \"https://h/\"\nformat = \"lines\"\n",
            BASE.replace("\"feed:partner\"", "\"group:feed\"")
        ));
        assert!(granted.is_err(), "a group entry grants no feed");
    }

    #[test]
    fn credentials_are_never_inline() {
        let p = problems(
            "[[feeds]]\nname = \"a\"\ninto = \"inbox\"\nurl = \"https://h/\"\nformat = \"lines\"\npassword = \"secret\"\n",
        );
        assert!(!p.is_empty());
        assert!(p.iter().all(|p| !p.contains("secret")), "{p:?}");
    }
}
