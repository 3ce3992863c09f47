//! Names in X.509 certificates: who a client certificate says it is.

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The names a verified client certificate carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertificateNames {
    /// Subject common names (CN).
    pub common_names: Vec<String>,
    /// Subject alternative names: DNS names, e-mail addresses and URIs, in order.
    pub alt_names: Vec<String>,
}

impl CertificateNames {
    /// The names in a DER certificate (none if it does not parse).
    pub fn from_der(der: &[u8]) -> CertificateNames {
        let Ok((_, cert)) = X509Certificate::from_der(der) else {
            return CertificateNames::default();
        };
        let common_names = cert
            .subject()
            .iter_common_name()
            .filter_map(|cn| cn.as_str().ok())
            .map(str::to_string)
            .collect();
        let alt_names = match cert.subject_alternative_name() {
            Ok(Some(san)) => san
                .value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(s) | GeneralName::RFC822Name(s) | GeneralName::URI(s) => {
                        Some(s.to_string())
                    }
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        CertificateNames {
            common_names,
            alt_names,
        }
    }
}

/// When a DER certificate expires (its notAfter), in Unix seconds; `None` if it
/// does not parse.
pub fn not_after(der: &[u8]) -> Option<i64> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    Some(cert.validity().not_after.timestamp())
}

/// `subject=…, expires=…` of a DER certificate, for logs.
pub fn describe(der: &[u8]) -> String {
    match X509Certificate::from_der(der) {
        Ok((_, cert)) => format!(
            "subject={}, expires={}",
            cert.subject(),
            cert.validity().not_after
        ),
        Err(_) => "unparsable certificate".into(),
    }
}
