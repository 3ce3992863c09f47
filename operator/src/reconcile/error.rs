//! The reconcilers' error type.

/// Why a reconcile failed (it is retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Kubernetes API refused or failed a request.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// An object lacks a field every stored object has.
    #[error("object has no {0}")]
    MissingField(&'static str),
    /// The desired objects could not be built.
    #[error(transparent)]
    Build(#[from] crate::reconcile::service::build::BuildError),
    /// A credential could not be hashed.
    #[error(transparent)]
    Hash(#[from] crate::credentials::HashError),
    /// An object could not be (de)serialised.
    #[error("serialisation: {0}")]
    Serde(#[from] serde_json::Error),
    /// A live object with a rendered object's name is not owned by the TaxiiService.
    #[error("{kind} {name} exists and is not owned by this TaxiiService; rename or delete it")]
    NotOwned {
        /// Its kind.
        kind: String,
        /// Its name.
        name: String,
    },
}

impl Error {
    /// A short label for the `error` dimension of metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::MissingField(_) => "missing_field",
            Error::Build(_) => "build",
            Error::Hash(_) => "hash",
            Error::Serde(_) => "serde",
            Error::NotOwned { .. } => "not_owned",
        }
    }
}
