//! Kubernetes name rules, shared by config checks and rendering.

/// An RFC 1123 DNS label: lowercase alphanumerics and `-`, starting and
/// ending alphanumeric, at most 63 characters (namespaces, most names that end
/// up in labels).
pub fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// An RFC 1123 DNS subdomain: dot-separated labels, at most 253 characters
/// (names of most kinds: ConfigMap, Deployment, CRD ...).
pub fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns1123_label)
}

/// A label value: empty, or at most 63 characters of alphanumerics, `-`,
/// `_`, `.`, starting and ending alphanumeric.
pub fn is_label_value(s: &str) -> bool {
    s.is_empty()
        || (s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && s.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric()))
}

/// A variable name usable in `${name}`: a letter or `_`, then letters,
/// digits, `_`, `-` or `.`.
pub fn is_var_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels_follow_rfc_1123() {
        assert!(is_dns1123_label("checkout-eu1"));
        assert!(!is_dns1123_label("Checkout"));
        assert!(!is_dns1123_label("-a"));
        assert!(!is_dns1123_label(&"a".repeat(64)));
        assert!(is_dns1123_subdomain("widgets.example.com"));
        assert!(!is_dns1123_subdomain("a..b"));
    }

    #[test]
    fn label_values_allow_dots_and_underscores_inside() {
        assert!(is_label_value("v1.2_beta"));
        assert!(is_label_value(""));
        assert!(!is_label_value("_x"));
    }

    #[test]
    fn var_names_are_identifiers() {
        assert!(is_var_name("replicas"));
        assert!(is_var_name("db.host"));
        assert!(!is_var_name("1x"));
        assert!(!is_var_name(""));
    }
}
