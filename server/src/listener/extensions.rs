//! What the listener puts in every request's extensions besides the peer address
//! (`ConnectInfo`) and the names in a verified client certificate
//! (`Arc<CertificateNames>`).

/// The scheme the client used (TLS or plain): the listener puts it in every request's
/// extensions, next to the peer address (`ConnectInfo`) and the names in a verified
/// client certificate (`Arc<CertificateNames>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheme(pub &'static str);

/// The size of the request's head (request line and headers) as counted against
/// `[server] max_header_bytes`, measured as it arrived: the listener puts it in every
/// request's extensions. Heads up to twice the limit reach the application, which
/// answers those over it in its own protocol ([`crate::limits`]: a TAXII 431).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadBytes(pub usize);
