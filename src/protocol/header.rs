//! Typed request and response headers, mapped to and from `extFields`.
//!
//! Each header is a plain struct; `to_ext_fields` writes the wire names and
//! `from_ext_fields` reads them back, reporting a missing or unparsable
//! field as a [`ProtocolError`] that names it. Optional fields are `Option`.

use std::collections::BTreeMap;

use crate::error::ProtocolError;

/// Ext fields of a frame.
pub type ExtFields = BTreeMap<String, String>;

/// A value that can live in an ext field.
pub trait ExtValue: Sized {
    /// The wire text, or `None` to leave the field out.
    fn to_ext(&self) -> Option<String>;
    /// Parses the wire text (`None` when the field is absent).
    fn from_ext(value: Option<&str>, field: &'static str) -> Result<Self, ProtocolError>;
}

macro_rules! parsed_ext_value {
    ($($t:ty),*) => {$(
        impl ExtValue for $t {
            fn to_ext(&self) -> Option<String> {
                Some(self.to_string())
            }
            fn from_ext(value: Option<&str>, field: &'static str) -> Result<Self, ProtocolError> {
                let value = value.ok_or(ProtocolError::MissingField(field))?;
                value.trim().parse().map_err(|_| ProtocolError::BadField { field, value: value.to_string() })
            }
        }
    )*};
}
parsed_ext_value!(i32, i64, bool);

impl ExtValue for String {
    fn to_ext(&self) -> Option<String> {
        Some(self.clone())
    }
    fn from_ext(value: Option<&str>, field: &'static str) -> Result<Self, ProtocolError> {
        value.map(str::to_string).ok_or(ProtocolError::MissingField(field))
    }
}

impl<T: ExtValue> ExtValue for Option<T> {
    fn to_ext(&self) -> Option<String> {
        self.as_ref().and_then(T::to_ext)
    }
    fn from_ext(value: Option<&str>, field: &'static str) -> Result<Self, ProtocolError> {
        match value {
            None => Ok(None),
            // Java writes nothing for null, but an empty string is also absent.
            Some("") => Ok(None),
            Some(v) => T::from_ext(Some(v), field).map(Some),
        }
    }
}

macro_rules! ext_header {
    ($(#[$meta:meta])* pub struct $name:ident {
        $($(#[$fmeta:meta])* pub $field:ident : $ty:ty = $wire:literal,)*
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
        }

        impl $name {
            /// Writes the fields under their wire names.
            pub fn to_ext_fields(&self) -> ExtFields {
                let mut map = ExtFields::new();
                $(if let Some(v) = ExtValue::to_ext(&self.$field) {
                    map.insert($wire.to_string(), v);
                })*
                map
            }

            /// Reads the fields from their wire names.
            pub fn from_ext_fields(map: &ExtFields) -> Result<Self, ProtocolError> {
                Ok($name {
                    $($field: ExtValue::from_ext(map.get($wire).map(String::as_str), $wire)?,)*
                })
            }
        }
    };
}

pub(crate) use ext_header;

ext_header! {
    /// SEND_MESSAGE_V2 / SEND_BATCH_MESSAGE request header (short names).
    pub struct SendMessageRequestHeaderV2 {
        /// Producer group.
        pub producer_group: String = "a",
        /// Topic.
        pub topic: String = "b",
        /// Template topic for auto-creation (`TBW102`).
        pub default_topic: String = "c",
        /// Queue count of auto-created topics.
        pub default_topic_queue_nums: i32 = "d",
        /// Target queue.
        pub queue_id: i32 = "e",
        /// Message sys flag.
        pub sys_flag: i32 = "f",
        /// Born time, ms since the epoch.
        pub born_timestamp: i64 = "g",
        /// User flag.
        pub flag: i32 = "h",
        /// Properties string.
        pub properties: Option<String> = "i",
        /// Reconsume times.
        pub reconsume_times: Option<i32> = "j",
        /// Unit mode.
        pub unit_mode: Option<bool> = "k",
        /// Max reconsume times.
        pub max_reconsume_times: Option<i32> = "l",
        /// Batch body.
        pub batch: Option<bool> = "m",
        /// Broker name (5.x).
        pub broker_name: Option<String> = "n",
    }
}

ext_header! {
    /// Response header of a send.
    pub struct SendMessageResponseHeader {
        /// Offset message id (store host + commit-log offset), comma-joined for a batch.
        pub msg_id: String = "msgId",
        /// Queue the message went to.
        pub queue_id: i32 = "queueId",
        /// Queue offset of the (first) message.
        pub queue_offset: i64 = "queueOffset",
        /// Transaction id, for half messages.
        pub transaction_id: Option<String> = "transactionId",
        /// Region id.
        pub msg_region: Option<String> = "MSG_REGION",
        /// Whether tracing is on.
        pub trace_on: Option<String> = "TRACE_ON",
    }
}

ext_header! {
    /// PULL_MESSAGE request header.
    pub struct PullMessageRequestHeader {
        /// Consumer group.
        pub consumer_group: String = "consumerGroup",
        /// Topic.
        pub topic: String = "topic",
        /// Queue.
        pub queue_id: i32 = "queueId",
        /// First offset wanted.
        pub queue_offset: i64 = "queueOffset",
        /// At most this many messages.
        pub max_msg_nums: i32 = "maxMsgNums",
        /// Pull sys flag.
        pub sys_flag: i32 = "sysFlag",
        /// Consumer offset to commit along with the pull.
        pub commit_offset: i64 = "commitOffset",
        /// Long-poll suspend time in ms.
        pub suspend_timeout_millis: i64 = "suspendTimeoutMillis",
        /// Subscription expression.
        pub subscription: Option<String> = "subscription",
        /// Subscription version.
        pub sub_version: i64 = "subVersion",
        /// `TAG` or `SQL92`.
        pub expression_type: Option<String> = "expressionType",
        /// Byte limit (5.x).
        pub max_msg_bytes: Option<i32> = "maxMsgBytes",
        /// Broker name (5.x).
        pub broker_name: Option<String> = "bname",
    }
}

ext_header! {
    /// Response header of a pull.
    pub struct PullMessageResponseHeader {
        /// Broker id to pull from next time.
        pub suggest_which_broker_id: i64 = "suggestWhichBrokerId",
        /// Offset to pull from next.
        pub next_begin_offset: i64 = "nextBeginOffset",
        /// Queue's minimum offset.
        pub min_offset: i64 = "minOffset",
        /// Queue's maximum offset.
        pub max_offset: i64 = "maxOffset",
        /// Offset delta (5.x).
        pub offset_delta: Option<i64> = "offsetDelta",
        /// Topic sys flag.
        pub topic_sys_flag: Option<i32> = "topicSysFlag",
        /// Group sys flag.
        pub group_sys_flag: Option<i32> = "groupSysFlag",
        /// Forbidden type.
        pub forbidden_type: Option<i32> = "forbiddenType",
    }
}

ext_header! {
    /// QUERY_CONSUMER_OFFSET request header.
    pub struct QueryConsumerOffsetRequestHeader {
        /// Consumer group.
        pub consumer_group: String = "consumerGroup",
        /// Topic.
        pub topic: String = "topic",
        /// Queue.
        pub queue_id: i32 = "queueId",
        /// 5.x: answer 0 instead of QUERY_NOT_FOUND for a new group.
        pub set_zero_if_not_found: Option<bool> = "setZeroIfNotFound",
        /// Broker name (5.x `bname`; a 5.x proxy needs it to pick the broker).
        pub broker_name: Option<String> = "bname",
    }
}

ext_header! {
    /// UPDATE_CONSUMER_OFFSET request header.
    pub struct UpdateConsumerOffsetRequestHeader {
        /// Consumer group.
        pub consumer_group: String = "consumerGroup",
        /// Topic.
        pub topic: String = "topic",
        /// Queue.
        pub queue_id: i32 = "queueId",
        /// Offset to store.
        pub commit_offset: i64 = "commitOffset",
        /// Broker name (5.x `bname`; a 5.x proxy needs it to pick the broker).
        pub broker_name: Option<String> = "bname",
    }
}

ext_header! {
    /// Response header with one offset (query offset, search, max, min).
    pub struct OffsetResponseHeader {
        /// The offset.
        pub offset: i64 = "offset",
    }
}

ext_header! {
    /// SEARCH_OFFSET_BY_TIMESTAMP request header.
    pub struct SearchOffsetRequestHeader {
        /// Topic.
        pub topic: String = "topic",
        /// Queue.
        pub queue_id: i32 = "queueId",
        /// Time, ms since the epoch.
        pub timestamp: i64 = "timestamp",
        /// Broker name (5.x `bname`; a 5.x proxy needs it to pick the broker).
        pub broker_name: Option<String> = "bname",
    }
}

ext_header! {
    /// GET_MAX_OFFSET / GET_MIN_OFFSET request header.
    pub struct QueueOffsetRequestHeader {
        /// Topic.
        pub topic: String = "topic",
        /// Queue.
        pub queue_id: i32 = "queueId",
        /// Broker name (5.x `bname`; a 5.x proxy needs it to pick the broker).
        pub broker_name: Option<String> = "bname",
    }
}

ext_header! {
    /// UNREGISTER_CLIENT request header.
    pub struct UnregisterClientRequestHeader {
        /// Client id.
        pub client_id: String = "clientID",
        /// Producer group, if unregistering a producer.
        pub producer_group: Option<String> = "producerGroup",
        /// Consumer group, if unregistering a consumer.
        pub consumer_group: Option<String> = "consumerGroup",
    }
}

ext_header! {
    /// END_TRANSACTION request header.
    pub struct EndTransactionRequestHeader {
        /// Producer group.
        pub producer_group: String = "producerGroup",
        /// Queue offset of the half message.
        pub tran_state_table_offset: i64 = "tranStateTableOffset",
        /// Commit-log offset of the half message.
        pub commit_log_offset: i64 = "commitLogOffset",
        /// Commit (8), rollback (12) or unknown (0).
        pub commit_or_rollback: i32 = "commitOrRollback",
        /// Whether this answers a check-back.
        pub from_transaction_check: bool = "fromTransactionCheck",
        /// Message id (unique key).
        pub msg_id: String = "msgId",
        /// Transaction id.
        pub transaction_id: Option<String> = "transactionId",
    }
}

ext_header! {
    /// PUSH_REPLY_MESSAGE_TO_CLIENT request header (broker to the requesting
    /// client): the reply message's send header as the responder sent it,
    /// plus the born and store hosts and the store time. Java's
    /// `ReplyMessageRequestHeader`.
    pub struct ReplyMessageRequestHeader {
        /// Producer group of the responder.
        pub producer_group: String = "producerGroup",
        /// Topic of the reply (`<cluster>_REPLY_TOPIC`).
        pub topic: String = "topic",
        /// Template topic of the responder's send.
        pub default_topic: Option<String> = "defaultTopic",
        /// Queue count of auto-created topics.
        pub default_topic_queue_nums: Option<i32> = "defaultTopicQueueNums",
        /// Queue id.
        pub queue_id: i32 = "queueId",
        /// Message sys flag (compression bits for the body).
        pub sys_flag: i32 = "sysFlag",
        /// Born time, ms since the epoch.
        pub born_timestamp: i64 = "bornTimestamp",
        /// User flag.
        pub flag: i32 = "flag",
        /// Properties string.
        pub properties: Option<String> = "properties",
        /// Reconsume times.
        pub reconsume_times: Option<i32> = "reconsumeTimes",
        /// Unit mode.
        pub unit_mode: Option<bool> = "unitMode",
        /// Responder's address as the broker saw it (`ip:port`).
        pub born_host: Option<String> = "bornHost",
        /// Broker address (`ip:port`).
        pub store_host: Option<String> = "storeHost",
        /// When the broker pushed the reply, ms since the epoch.
        pub store_timestamp: Option<i64> = "storeTimestamp",
    }
}

ext_header! {
    /// CHECK_TRANSACTION_STATE request header (broker to client).
    pub struct CheckTransactionStateRequestHeader {
        /// Queue offset of the half message.
        pub tran_state_table_offset: Option<i64> = "tranStateTableOffset",
        /// Commit-log offset of the half message.
        pub commit_log_offset: i64 = "commitLogOffset",
        /// Message id.
        pub msg_id: Option<String> = "msgId",
        /// Transaction id.
        pub transaction_id: Option<String> = "transactionId",
        /// Offset message id.
        pub offset_msg_id: Option<String> = "offsetMsgId",
    }
}

ext_header! {
    /// CONSUMER_SEND_MSG_BACK request header.
    pub struct ConsumerSendMsgBackRequestHeader {
        /// Commit-log offset of the message.
        pub offset: i64 = "offset",
        /// Consumer group.
        pub group: String = "group",
        /// Delay level for the retry.
        pub delay_level: i32 = "delayLevel",
        /// Original message id.
        pub origin_msg_id: Option<String> = "originMsgId",
        /// Original topic.
        pub origin_topic: Option<String> = "originTopic",
        /// Unit mode.
        pub unit_mode: bool = "unitMode",
        /// Max reconsume times before the dead-letter queue.
        pub max_reconsume_times: Option<i32> = "maxReconsumeTimes",
        /// Broker name (5.x `bname`; a 5.x proxy needs it to pick the broker).
        pub broker_name: Option<String> = "bname",
    }
}

ext_header! {
    /// A request header with only a consumer group (consumer list, ids changed).
    pub struct ConsumerGroupHeader {
        /// Consumer group.
        pub consumer_group: String = "consumerGroup",
    }
}

ext_header! {
    /// GET_ROUTEINFO_BY_TOPIC request header.
    pub struct GetRouteInfoRequestHeader {
        /// Topic.
        pub topic: String = "topic",
    }
}

ext_header! {
    /// UPDATE_AND_CREATE_TOPIC request header.
    pub struct CreateTopicRequestHeader {
        /// Topic.
        pub topic: String = "topic",
        /// Template topic.
        pub default_topic: String = "defaultTopic",
        /// Read queue count.
        pub read_queue_nums: i32 = "readQueueNums",
        /// Write queue count.
        pub write_queue_nums: i32 = "writeQueueNums",
        /// Permission bits (read 4, write 2, inherit 1).
        pub perm: i32 = "perm",
        /// `SINGLE_TAG` or `MULTI_TAG`.
        pub topic_filter_type: String = "topicFilterType",
        /// Topic sys flag.
        pub topic_sys_flag: Option<i32> = "topicSysFlag",
        /// Whether the topic is ordered.
        pub order: bool = "order",
    }
}

ext_header! {
    /// RESET_CONSUMER_CLIENT_OFFSET request header (broker to client).
    pub struct ResetOffsetRequestHeader {
        /// Topic.
        pub topic: String = "topic",
        /// Group.
        pub group: String = "group",
        /// Time to reset to.
        pub timestamp: i64 = "timestamp",
        /// Whether to force.
        pub is_force: bool = "isForce",
    }
}

ext_header! {
    /// GET_CONSUMER_RUNNING_INFO request header (broker to client).
    pub struct GetConsumerRunningInfoRequestHeader {
        /// Consumer group.
        pub consumer_group: String = "consumerGroup",
        /// Client id.
        pub client_id: String = "clientId",
        /// Whether a stack trace is wanted.
        pub jstack_enable: Option<bool> = "jstackEnable",
    }
}

ext_header! {
    /// CONSUME_MESSAGE_DIRECTLY request header (broker to client).
    pub struct ConsumeMessageDirectlyHeader {
        /// Consumer group.
        pub consumer_group: String = "consumerGroup",
        /// Client id.
        pub client_id: Option<String> = "clientId",
        /// Message id.
        pub msg_id: Option<String> = "msgId",
        /// Broker name.
        pub broker_name: Option<String> = "brokerName",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_header_uses_short_names_and_round_trips() {
        let h = SendMessageRequestHeaderV2 {
            producer_group: "pg".into(),
            topic: "t".into(),
            default_topic: "TBW102".into(),
            default_topic_queue_nums: 4,
            queue_id: 3,
            sys_flag: 0,
            born_timestamp: 1_700_000_000_000,
            flag: 0,
            properties: Some("KEYS\u{1}k\u{2}".into()),
            reconsume_times: Some(0),
            unit_mode: Some(false),
            max_reconsume_times: None,
            batch: Some(false),
            broker_name: None,
        };
        let map = h.to_ext_fields();
        assert_eq!(map["a"], "pg");
        assert_eq!(map["e"], "3");
        assert_eq!(map["k"], "false");
        assert!(!map.contains_key("l"));
        assert_eq!(SendMessageRequestHeaderV2::from_ext_fields(&map).unwrap(), h);
    }

    #[test]
    fn missing_and_bad_fields_are_named() {
        let mut map = ExtFields::new();
        map.insert("msgId".into(), "X".into());
        map.insert("queueId".into(), "1".into());
        assert_eq!(
            SendMessageResponseHeader::from_ext_fields(&map).unwrap_err(),
            ProtocolError::MissingField("queueOffset")
        );
        map.insert("queueOffset".into(), "ten".into());
        assert_eq!(
            SendMessageResponseHeader::from_ext_fields(&map).unwrap_err(),
            ProtocolError::BadField { field: "queueOffset", value: "ten".into() }
        );
    }
}
