//! Which TAXII resource a request path names.

/// A TAXII resource, parsed from a request path (trailing `/` optional).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// `/taxii2/` (TAXII 2.1) discovery.
    Discovery21,
    /// `/taxii/` (TAXII 2.0) discovery.
    Discovery20,
    /// `/{root}/`.
    ApiRoot { root: String },
    /// `/{root}/collections/`.
    Collections { root: String },
    /// `/{root}/collections/{id}/`.
    Collection { root: String, collection: String },
    /// `/{root}/collections/{id}/objects/`.
    Objects { root: String, collection: String },
    /// `/{root}/collections/{id}/objects/{object}/`.
    Object {
        root: String,
        collection: String,
        object: String,
    },
    /// `/{root}/collections/{id}/objects/{object}/versions/`.
    Versions {
        root: String,
        collection: String,
        object: String,
    },
    /// `/{root}/collections/{id}/manifest/`.
    Manifest { root: String, collection: String },
    /// `/{root}/status/{id}/`.
    Status { root: String, status: String },
}

impl Resource {
    /// Parse a request path; `None` if it names no TAXII resource.
    pub fn parse(path: &str) -> Option<Resource> {
        let inner = path.strip_prefix('/')?;
        let inner = inner.strip_suffix('/').unwrap_or(inner);
        let segments: Vec<&str> = if inner.is_empty() {
            Vec::new()
        } else {
            inner.split('/').collect()
        };
        if segments
            .iter()
            .any(|s| s.is_empty() || *s == "." || *s == "..")
        {
            return None;
        }
        let s = |i: usize| segments[i].to_string();
        Some(match segments.as_slice() {
            ["taxii2"] => Resource::Discovery21,
            ["taxii"] => Resource::Discovery20,
            [_] => Resource::ApiRoot { root: s(0) },
            [_, "collections"] => Resource::Collections { root: s(0) },
            [_, "collections", _] => Resource::Collection {
                root: s(0),
                collection: s(2),
            },
            [_, "collections", _, "objects"] => Resource::Objects {
                root: s(0),
                collection: s(2),
            },
            [_, "collections", _, "manifest"] => Resource::Manifest {
                root: s(0),
                collection: s(2),
            },
            [_, "collections", _, "objects", _] => Resource::Object {
                root: s(0),
                collection: s(2),
                object: s(4),
            },
            [_, "collections", _, "objects", _, "versions"] => Resource::Versions {
                root: s(0),
                collection: s(2),
                object: s(4),
            },
            [_, "status", _] => Resource::Status {
                root: s(0),
                status: s(2),
            },
            _ => return None,
        })
    }

    /// A low-cardinality name for metrics and logs.
    pub fn endpoint(&self) -> &'static str {
        match self {
            Resource::Discovery21 | Resource::Discovery20 => "discovery",
            Resource::ApiRoot { .. } => "api_root",
            Resource::Collections { .. } => "collections",
            Resource::Collection { .. } => "collection",
            Resource::Objects { .. } => "objects",
            Resource::Object { .. } => "object",
            Resource::Versions { .. } => "versions",
            Resource::Manifest { .. } => "manifest",
            Resource::Status { .. } => "status",
        }
    }

    /// The API root the resource lives in.
    pub fn root(&self) -> Option<&str> {
        match self {
            Resource::Discovery21 | Resource::Discovery20 => None,
            Resource::ApiRoot { root }
            | Resource::Collections { root }
            | Resource::Collection { root, .. }
            | Resource::Objects { root, .. }
            | Resource::Object { root, .. }
            | Resource::Versions { root, .. }
            | Resource::Manifest { root, .. }
            | Resource::Status { root, .. } => Some(root),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_with_and_without_trailing_slash() {
        let id = "91a7b528-80eb-42ed-a74d-c6fbd5a26116";
        let cases = [
            ("/taxii2/", Resource::Discovery21),
            ("/taxii/", Resource::Discovery20),
            (
                "/feeds/",
                Resource::ApiRoot {
                    root: "feeds".into(),
                },
            ),
            (
                "/feeds/collections/",
                Resource::Collections {
                    root: "feeds".into(),
                },
            ),
        ];
        for (path, expected) in cases {
            assert_eq!(Resource::parse(path), Some(expected.clone()), "{path}");
            assert_eq!(
                Resource::parse(path.trim_end_matches('/')),
                Some(expected),
                "{path}"
            );
        }
        let p = format!("/feeds/collections/{id}/objects/indicator--{id}/versions");
        assert_eq!(
            Resource::parse(&p),
            Some(Resource::Versions {
                root: "feeds".into(),
                collection: id.into(),
                object: format!("indicator--{id}")
            })
        );
        assert_eq!(
            Resource::parse(&format!("/feeds/collections/{id}/manifest/")).map(|r| r.endpoint()),
            Some("manifest")
        );
        assert_eq!(
            Resource::parse("/feeds/status/abc/"),
            Some(Resource::Status {
                root: "feeds".into(),
                status: "abc".into()
            })
        );
    }

    #[test]
    fn unknown_and_traversal_paths_name_nothing() {
        for path in [
            "",
            "/",
            "//",
            "/feeds//collections/",
            "/feeds/../taxii2/",
            "/feeds/other/",
            "/a/collections/b/objects/c/versions/d/",
            "feeds/",
        ] {
            assert_eq!(Resource::parse(path), None, "{path}");
        }
    }
}
