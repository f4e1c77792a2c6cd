//! JSON bodies: heartbeats, queue locks, consumer lists.

use serde::{Deserialize, Serialize};

use super::message::{java_string_hash, MessageQueue};
use super::now_ms;

/// Whether a consumer pulls by itself or is pushed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConsumeType {
    /// Pull / lite pull consumer.
    #[serde(rename = "CONSUME_ACTIVELY")]
    Pull,
    /// Push consumer.
    #[serde(rename = "CONSUME_PASSIVELY")]
    Push,
}

/// How a group shares messages.
///
/// ```
/// use rocketmq_blocking::consumer::{ConsumerConfig, MessageModel};
///
/// let config = ConsumerConfig::builder()
///     .group("cache-invalidation")
///     .namesrv_addr("127.0.0.1:9876")
///     .message_model(MessageModel::Broadcasting) // every instance sees every message
///     .build()?;
/// assert_eq!(config.message_model(), MessageModel::Broadcasting);
/// assert_eq!(MessageModel::default(), MessageModel::Clustering);
/// # Ok::<(), rocketmq_blocking::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MessageModel {
    /// Every consumer of the group gets every message.
    Broadcasting,
    /// Each message goes to one consumer of the group.
    #[default]
    Clustering,
}

/// Where a new group starts consuming (a group with stored offsets goes on
/// from them).
///
/// ```
/// use rocketmq_blocking::consumer::{ConsumeFromWhere, ConsumerConfig};
///
/// let config = ConsumerConfig::builder()
///     .group("replay")
///     .namesrv_addr("127.0.0.1:9876")
///     .consume_from_where(ConsumeFromWhere::Timestamp)
///     .consume_timestamp_ms(1_700_000_000_000)
///     .build()?;
/// assert_eq!(config.consume_timestamp_ms(), Some(1_700_000_000_000));
/// # Ok::<(), rocketmq_blocking::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum ConsumeFromWhere {
    /// From the end of each queue (Java's default).
    #[default]
    #[serde(rename = "CONSUME_FROM_LAST_OFFSET")]
    LastOffset,
    /// From the start of each queue.
    #[serde(rename = "CONSUME_FROM_FIRST_OFFSET")]
    FirstOffset,
    /// From the first message stored at or after a time.
    #[serde(rename = "CONSUME_FROM_TIMESTAMP")]
    Timestamp,
}

/// Expression type `TAG`.
pub const EXPRESSION_TAG: &str = "TAG";
/// Expression type `SQL92`.
pub const EXPRESSION_SQL92: &str = "SQL92";
/// Subscribe to every tag.
pub const SUB_ALL: &str = "*";

/// One subscription of a consumer group, as sent in heartbeats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionData {
    /// Class filter mode (always false here).
    #[serde(default)]
    pub class_filter_mode: bool,
    /// Topic.
    pub topic: String,
    /// Expression text.
    pub sub_string: String,
    /// Tags of a tag expression.
    #[serde(default)]
    pub tags_set: Vec<String>,
    /// Java hash codes of the tags.
    #[serde(default)]
    pub code_set: Vec<i32>,
    /// Version (a timestamp).
    #[serde(default)]
    pub sub_version: i64,
    /// `TAG` or `SQL92`.
    #[serde(default = "default_expression_type")]
    pub expression_type: String,
}

fn default_expression_type() -> String {
    EXPRESSION_TAG.to_string()
}

impl SubscriptionData {
    /// A tag subscription: `*`, `A`, or `A || B`.
    pub fn tag(topic: impl Into<String>, expression: &str) -> Self {
        let expression = expression.trim();
        let (sub_string, tags): (String, Vec<String>) = if expression.is_empty() || expression == SUB_ALL {
            (SUB_ALL.to_string(), Vec::new())
        } else {
            let tags = expression.split("||").map(str::trim).filter(|t| !t.is_empty()).map(str::to_string).collect();
            (expression.to_string(), tags)
        };
        SubscriptionData {
            class_filter_mode: false,
            topic: topic.into(),
            sub_string,
            code_set: tags.iter().map(|t| java_string_hash(t)).collect(),
            tags_set: tags,
            sub_version: now_ms(),
            expression_type: EXPRESSION_TAG.to_string(),
        }
    }

    /// An SQL92 property filter subscription.
    pub fn sql92(topic: impl Into<String>, expression: &str) -> Self {
        SubscriptionData {
            class_filter_mode: false,
            topic: topic.into(),
            sub_string: expression.to_string(),
            tags_set: Vec::new(),
            code_set: Vec::new(),
            sub_version: now_ms(),
            expression_type: EXPRESSION_SQL92.to_string(),
        }
    }

    /// Whether a message with this tag passes the (tag) subscription; SQL92
    /// subscriptions are filtered by the broker and always pass here.
    pub fn matches_tag(&self, tag: Option<&str>) -> bool {
        if self.expression_type != EXPRESSION_TAG || self.sub_string == SUB_ALL || self.tags_set.is_empty() {
            return true;
        }
        tag.is_some_and(|t| self.tags_set.iter().any(|s| s == t))
    }
}

/// A producer group in a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProducerData {
    /// Producer group.
    pub group_name: String,
}

/// A consumer group in a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerData {
    /// Consumer group.
    pub group_name: String,
    /// Pull or push.
    pub consume_type: ConsumeType,
    /// Clustering or broadcasting.
    pub message_model: MessageModel,
    /// Where a new group starts.
    pub consume_from_where: ConsumeFromWhere,
    /// Subscriptions (`subscriptionDataSet` on the wire).
    pub subscription_data_set: Vec<SubscriptionData>,
    /// Unit mode.
    #[serde(default)]
    pub unit_mode: bool,
}

/// The body of HEART_BEAT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatData {
    /// Client id.
    #[serde(rename = "clientID")]
    pub client_id: String,
    /// Producer groups of this client.
    pub producer_data_set: Vec<ProducerData>,
    /// Consumer groups of this client.
    pub consumer_data_set: Vec<ConsumerData>,
}

/// Body of LOCK_BATCH_MQ and UNLOCK_BATCH_MQ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockBatchRequestBody {
    /// Consumer group.
    pub consumer_group: String,
    /// Client id.
    pub client_id: String,
    /// Only lock queues of this broker.
    #[serde(default)]
    pub only_this_broker: bool,
    /// Queues.
    pub mq_set: Vec<MessageQueue>,
}

/// Response body of LOCK_BATCH_MQ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct LockBatchResponseBody {
    /// Queues now locked by the client.
    #[serde(default, rename = "lockOKMQSet")]
    pub lock_ok_mq_set: Vec<MessageQueue>,
}

/// Response body of GET_CONSUMER_LIST_BY_GROUP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerListBody {
    /// Client ids.
    #[serde(default)]
    pub consumer_id_list: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_json_uses_java_names() {
        let hb = HeartbeatData {
            client_id: "c1".into(),
            producer_data_set: vec![ProducerData { group_name: "pg".into() }],
            consumer_data_set: vec![ConsumerData {
                group_name: "cg".into(),
                consume_type: ConsumeType::Push,
                message_model: MessageModel::Clustering,
                consume_from_where: ConsumeFromWhere::FirstOffset,
                subscription_data_set: vec![SubscriptionData::tag("T", "A || B")],
                unit_mode: false,
            }],
        };
        let json = serde_json::to_string(&hb).unwrap();
        for needle in [
            "\"clientID\":\"c1\"",
            "\"subscriptionDataSet\"",
            "\"CONSUME_PASSIVELY\"",
            "\"CLUSTERING\"",
            "\"CONSUME_FROM_FIRST_OFFSET\"",
            "\"tagsSet\":[\"A\",\"B\"]",
            "\"codeSet\":[65,66]",
        ] {
            assert!(json.contains(needle), "{needle} missing in {json}");
        }
    }

    #[test]
    fn tag_matching() {
        let s = SubscriptionData::tag("T", "A || B");
        assert!(s.matches_tag(Some("A")) && s.matches_tag(Some("B")));
        assert!(!s.matches_tag(Some("C")) && !s.matches_tag(None));
        assert!(SubscriptionData::tag("T", "*").matches_tag(None));
    }
}
