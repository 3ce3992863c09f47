//! The operator's image allow-list (`--allowed-image-prefixes`).

use super::{Inputs, Problem, ProblemKind, Settings};

/// Whether `image` starts with one of `prefixes` at a boundary of the reference (the
/// prefix ends in `/`, `:` or `@`, or the image continues with one of them), so that
/// `ghcr.io/acme` allows `ghcr.io/acme/server:1` but not `ghcr.io/acme-evil/server`.
/// Every image is allowed when `prefixes` is empty.
pub fn image_allowed(image: &str, prefixes: &[String]) -> bool {
    const BOUNDARY: [char; 3] = ['/', ':', '@'];
    prefixes.is_empty()
        || prefixes.iter().filter(|p| !p.is_empty()).any(|prefix| {
            image.strip_prefix(prefix.as_str()).is_some_and(|rest| {
                prefix.ends_with(BOUNDARY) || rest.is_empty() || rest.starts_with(BOUNDARY)
            })
        })
}

/// A problem when `spec.image` is outside the allow-list (the operator's own
/// `--server-image`, used when `spec.image` is unset, is always allowed).
pub(super) fn validate_image(
    inputs: &Inputs,
    settings: &Settings,
    problems: &mut Vec<Problem>,
) -> bool {
    let Some(image) = inputs.service.spec.image.as_deref() else {
        return true;
    };
    if image_allowed(image, &settings.allowed_image_prefixes) {
        return true;
    }
    problems.push(Problem {
        kind: ProblemKind::ImageNotAllowed,
        message: format!(
            "spec.image {image:?} is not allowed by the operator (allowed prefixes: {}); \
             nothing is rendered or changed until it is",
            settings.allowed_image_prefixes.join(", ")
        ),
    });
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(image: &str, prefixes: &[&str]) -> bool {
        let prefixes: Vec<String> = prefixes.iter().map(|p| p.to_string()).collect();
        image_allowed(image, &prefixes)
    }

    #[test]
    fn prefixes_match_at_reference_boundaries_only() {
        assert!(allowed("anything:latest", &[]));
        let list = ["ghcr.io/acme", "registry.example:5000/security/"];
        assert!(allowed("ghcr.io/acme/taxiway-server:1.0", &list));
        assert!(allowed("ghcr.io/acme/taxiway-server@sha256:0123", &list));
        assert!(allowed(
            "registry.example:5000/security/taxiway-server",
            &list
        ));
        assert!(!allowed("ghcr.io/acme-evil/taxiway-server:1.0", &list));
        assert!(!allowed("ghcr.io/acme.evil.example/x:1", &list));
        assert!(!allowed("docker.io/acme/taxiway-server:1.0", &list));
        assert!(!allowed("registry.example:5000/securityx/server", &list));
        assert!(allowed(
            "ghcr.io/acme/taxiway-server:1.0",
            &["ghcr.io/acme/taxiway-server"]
        ));
        assert!(!allowed(
            "ghcr.io/acme/taxiway-server-debug:1.0",
            &["ghcr.io/acme/taxiway-server"]
        ));
        assert!(
            !allowed("evil/image", &[""]),
            "an empty prefix allows nothing"
        );
    }
}
