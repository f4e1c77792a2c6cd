//! [`Refusals`]: what brokers or the name server keep refusing a consumer
//! (authentication, authorization, a topic or group that does not exist),
//! per subject (a queue, a topic, a heartbeat to a broker), so that a
//! consumer that receives nothing can say why
//! ([`PushConsumer::refusals`](super::PushConsumer::refusals),
//! [`LitePullConsumer::refusals`](super::LitePullConsumer::refusals)).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::error::{Error, TlsErrorKind};
use crate::protocol::{MessageQueue, ResponseCode};
use crate::threads::lock;

/// Subjects kept at most (bounded by the queues held anyway); a refusal of
/// one more subject is not recorded.
const MAX_SUBJECTS: usize = 4096;

/// Whether `e` is a refusal that will not go away by retrying.
pub(crate) fn is_refusal(e: &Error) -> bool {
    match e {
        Error::Authentication { .. }
        | Error::Authorization { .. }
        | Error::NoPermission { .. }
        | Error::TopicNotFound { .. } => true,
        // A certificate the client does not trust, or one the server refuses,
        // fails the same way on every try (a cut handshake may not).
        Error::Tls { kind, .. } => matches!(
            kind,
            TlsErrorKind::UnknownCa | TlsErrorKind::NameMismatch | TlsErrorKind::BadCertificate | TlsErrorKind::Refused
        ),
        Error::MessagePull { code, .. } | Error::Offset { code, .. } => {
            matches!(code, ResponseCode::SubscriptionGroupNotExist)
        }
        _ => false,
    }
}

/// The subject of the pulls of `mq`.
pub(crate) fn pull_subject(mq: &MessageQueue) -> String {
    format!("pull of {}@{}:{}", mq.topic, mq.broker_name, mq.queue_id)
}

/// The latest refusal per subject; a success on the subject clears it.
#[derive(Debug, Default)]
pub(crate) struct Refusals(Mutex<BTreeMap<String, Arc<Error>>>);

impl Refusals {
    /// Records `e` for `subject` if it is a refusal.
    pub fn refused(&self, subject: &str, e: Error) {
        if !is_refusal(&e) {
            return;
        }
        let mut m = lock(&self.0);
        if m.len() < MAX_SUBJECTS || m.contains_key(subject) {
            m.insert(subject.to_string(), Arc::new(e));
        }
    }

    /// `subject` works again.
    pub fn clear(&self, subject: &str) {
        lock(&self.0).remove(subject);
    }

    /// The subject `subject()` names works again; the name is made only
    /// when something is recorded (every answered pull calls this).
    pub fn clear_with(&self, subject: impl FnOnce() -> String) {
        let mut m = lock(&self.0);
        if !m.is_empty() {
            m.remove(&subject());
        }
    }

    /// The refusals now, by subject.
    pub fn list(&self) -> Vec<(String, Arc<Error>)> {
        lock(&self.0).iter().map(|(s, e)| (s.clone(), Arc::clone(e))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_kept_per_subject_and_cleared_by_a_success() {
        let r = Refusals::default();
        r.refused("topic T", Error::TopicNotFound { topic: "T".into(), remark: String::new() });
        r.refused("queue q", Error::NotRunning("x"));
        assert_eq!(r.list().len(), 1, "only persistent refusals are kept");
        assert!(matches!(*r.list()[0].1, Error::TopicNotFound { .. }));
        r.clear("topic T");
        assert!(r.list().is_empty());
        r.refused("topic U", Error::TopicNotFound { topic: "U".into(), remark: String::new() });
        r.clear_with(|| "topic U".to_string());
        assert!(r.list().is_empty());
    }

    #[test]
    fn an_untrusted_certificate_is_a_refusal_and_a_cut_handshake_is_not() {
        let tls = |kind| Error::Tls { addr: "b:1".into(), kind, detail: String::new() };
        assert!(is_refusal(&tls(TlsErrorKind::UnknownCa)));
        assert!(is_refusal(&tls(TlsErrorKind::Refused)));
        assert!(!is_refusal(&tls(TlsErrorKind::Handshake)));
    }
}
