//! Namespaces: `ns%name` on the wire for topics and groups (Java's rule).

/// `name` with the namespace prefix; unchanged without a namespace or when
/// it already has the prefix.
pub(crate) fn wrap(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) if !name.starts_with(&format!("{ns}%")) => format!("{ns}%{name}"),
        _ => name.to_string(),
    }
}

/// `name` without the namespace prefix.
pub(crate) fn unwrap<'a>(namespace: Option<&str>, name: &'a str) -> &'a str {
    match namespace {
        Some(ns) => name.strip_prefix(ns).and_then(|r| r.strip_prefix('%')).unwrap_or(name),
        None => name,
    }
}
