//! [`MessageSelector`]: which messages of a topic a consumer wants, and
//! [`prepare_messages`]: what the client itself checks and restores on
//! pulled messages before the user sees them.

use crate::error::{Error, Result};
use crate::protocol::body::SubscriptionData;
use crate::protocol::message::property;
use crate::protocol::MessageExt;

/// Which messages of a topic a consumer wants.
///
/// ```
/// use rocketmq_blocking::consumer::MessageSelector;
///
/// let tags: MessageSelector = "TagA || TagB".into();
/// let sql = MessageSelector::sql92("a > 5 AND color = 'red'");
/// assert_eq!(tags, MessageSelector::tag("TagA || TagB"));
/// assert_ne!(tags, sql);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageSelector {
    /// A tag expression: `*`, `A`, `A || B`. The broker filters by the tags'
    /// hash codes and the client checks the tag itself again.
    Tag(String),
    /// An SQL92 expression over message properties (needs
    /// `enablePropertyFilter=true` on the broker).
    Sql92(String),
}

impl MessageSelector {
    /// Every message.
    pub fn all() -> Self {
        MessageSelector::Tag("*".into())
    }
    /// A tag expression.
    pub fn tag(expression: impl Into<String>) -> Self {
        MessageSelector::Tag(expression.into())
    }
    /// An SQL92 property expression.
    pub fn sql92(expression: impl Into<String>) -> Self {
        MessageSelector::Sql92(expression.into())
    }

    pub(crate) fn subscription(&self, wire_topic: &str) -> Result<SubscriptionData> {
        match self {
            MessageSelector::Tag(e) => Ok(SubscriptionData::tag(wire_topic, e)),
            MessageSelector::Sql92(e) if e.trim().is_empty() => {
                Err(Error::invalid("selector", "an SQL92 expression is empty"))
            }
            MessageSelector::Sql92(e) => Ok(SubscriptionData::sql92(wire_topic, e)),
        }
    }
}

impl From<&str> for MessageSelector {
    fn from(s: &str) -> Self {
        MessageSelector::Tag(s.to_string())
    }
}

impl From<String> for MessageSelector {
    fn from(s: String) -> Self {
        MessageSelector::Tag(s)
    }
}

/// Prepares pulled messages for the user: drops those the tag subscription
/// does not match (the broker filters by hash code only), puts the original
/// topic back on retried messages and takes the namespace off.
pub(crate) fn prepare_messages(
    msgs: Vec<MessageExt>,
    sub: &SubscriptionData,
    retry_topic: &str,
    strip_namespace: impl Fn(&str) -> String,
) -> Vec<MessageExt> {
    msgs.into_iter()
        .filter(|m| sub.matches_tag(m.tags()))
        .map(|mut m| {
            if m.topic == retry_topic {
                if let Some(t) = m.property(property::RETRY_TOPIC) {
                    m.topic = t.to_string();
                }
            }
            m.topic = strip_namespace(&m.topic);
            m
        })
        .collect()
}
