//! Namespaces: `ns%name` on the wire for topics and groups, with Java's
//! rules (`NamespaceUtil`): a retry or dead-letter name keeps its prefix in
//! front (`%RETRY%ns%group`, `%DLQ%ns%group`), and system topics and groups
//! (`TBW102`, `RMQ_SYS_*`, `rmq_sys_*`, `CID_RMQ_SYS_*`, ...) are never wrapped.
//!
//! Producers and consumers apply them themselves (`namespace` on their
//! configs); these functions are for direct broker calls
//! ([`BrokerClient`](crate::broker::BrokerClient)) on namespaced resources.
//!
//! ```
//! use rocketmq_blocking::namespace::{unwrap, wrap};
//! assert_eq!(wrap(Some("prod"), "Orders"), "prod%Orders");
//! assert_eq!(wrap(Some("prod"), "%RETRY%billing"), "%RETRY%prod%billing");
//! assert_eq!(unwrap(Some("prod"), "prod%Orders"), "Orders");
//! ```

const RETRY_PREFIX: &str = "%RETRY%";
const DLQ_PREFIX: &str = "%DLQ%";

/// The broker's own topics and groups (Java's `TopicValidator` system topic
/// set and prefix, `MixAll.CID_RMQ_SYS_PREFIX`).
fn is_system(name: &str) -> bool {
    const SYSTEM_TOPICS: [&str; 10] = [
        "TBW102",
        "SCHEDULE_TOPIC_XXXX",
        "BenchmarkTest",
        "RMQ_SYS_TRANS_HALF_TOPIC",
        "RMQ_SYS_TRACE_TOPIC",
        "RMQ_SYS_TRANS_OP_HALF_TOPIC",
        "TRANS_CHECK_MAX_TIME_TOPIC",
        "SELF_TEST_TOPIC",
        "OFFSET_MOVED_EVENT",
        "CHECKPOINT_TOPIC",
    ];
    SYSTEM_TOPICS.contains(&name) || name.starts_with("rmq_sys_") || name.starts_with("CID_RMQ_SYS_")
}

/// Splits off a `%RETRY%` or `%DLQ%` prefix: (prefix, rest).
fn split_prefix(name: &str) -> (&str, &str) {
    for p in [RETRY_PREFIX, DLQ_PREFIX] {
        if let Some(rest) = name.strip_prefix(p) {
            return (p, rest);
        }
    }
    ("", name)
}

/// `name` with the namespace (`ns%name`, `%RETRY%ns%name`); unchanged
/// without a namespace, for a system name, or when it already has it.
pub fn wrap(namespace: Option<&str>, name: &str) -> String {
    let ns = match namespace {
        Some(ns) if !ns.is_empty() && !name.is_empty() && !is_system(name) => ns,
        _ => return name.to_string(),
    };
    let (prefix, rest) = split_prefix(name);
    if rest.strip_prefix(ns).is_some_and(|r| r.starts_with('%')) {
        return name.to_string();
    }
    format!("{prefix}{ns}%{rest}")
}

/// `name` without the namespace (`%RETRY%ns%g` becomes `%RETRY%g`);
/// unchanged when it does not carry this namespace.
pub fn unwrap<'a>(namespace: Option<&str>, name: &'a str) -> std::borrow::Cow<'a, str> {
    let Some(ns) = namespace.filter(|ns| !ns.is_empty()) else { return name.into() };
    let (prefix, rest) = split_prefix(name);
    match rest.strip_prefix(ns).and_then(|r| r.strip_prefix('%')) {
        Some(bare) if prefix.is_empty() => bare.into(),
        Some(bare) => format!("{prefix}{bare}").into(),
        None => name.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_like_java_namespace_util() {
        let ns = Some("ns1");
        assert_eq!(wrap(ns, "T"), "ns1%T");
        assert_eq!(wrap(ns, "ns1%T"), "ns1%T");
        assert_eq!(wrap(ns, "%RETRY%g"), "%RETRY%ns1%g");
        assert_eq!(wrap(ns, "%RETRY%ns1%g"), "%RETRY%ns1%g");
        assert_eq!(wrap(ns, "%DLQ%g"), "%DLQ%ns1%g");
        assert_eq!(wrap(ns, "TBW102"), "TBW102");
        assert_eq!(wrap(ns, "rmq_sys_x"), "rmq_sys_x");
        assert_eq!(wrap(ns, "CID_RMQ_SYS_TRANS"), "CID_RMQ_SYS_TRANS");
        assert_eq!(wrap(None, "T"), "T");
        assert_eq!(wrap(Some(""), "T"), "T");
        // Another namespace's name gets this one in front (as in Java).
        assert_eq!(wrap(ns, "ns2%T"), "ns1%ns2%T");
    }

    #[test]
    fn unwraps_like_java_namespace_util() {
        let ns = Some("ns1");
        assert_eq!(unwrap(ns, "ns1%T"), "T");
        assert_eq!(unwrap(ns, "%RETRY%ns1%g"), "%RETRY%g");
        assert_eq!(unwrap(ns, "%DLQ%ns1%g"), "%DLQ%g");
        assert_eq!(unwrap(ns, "ns2%T"), "ns2%T");
        assert_eq!(unwrap(ns, "ns1T"), "ns1T");
        assert_eq!(unwrap(None, "ns1%T"), "ns1%T");
        for name in ["T", "%RETRY%g", "%DLQ%g"] {
            assert_eq!(unwrap(ns, &wrap(ns, name)), name);
        }
    }
}
