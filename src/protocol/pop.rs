//! Pop consumption (RocketMQ 5.x): the broker hands out messages, not
//! queues. Pure encoding and decoding of what the requests carry:
//!
//! - QUERY_ASSIGNMENT (400): a JSON body naming topic, group, client id,
//!   allocation strategy and message model; the answer lists the queues
//!   assigned to this client, each with its request mode (`PULL` or `POP`).
//!   In `POP` mode with the broker's default share number (-1) every client
//!   gets every broker with queue id -1 (pop from all queues of that broker).
//! - POP_MESSAGE (200050): [`PopMessageRequestHeader`]; the answer is
//!   SUCCESS with the messages (the pull body format) and a
//!   [`PopMessageResponseHeader`], or POLLING_TIMEOUT / PULL_NOT_FOUND
//!   (nothing), or an error.
//! - every popped message gets a receipt ([`ExtraInfo`], Java's
//!   `ExtraInfoUtil` "extra info", stored in the `POP_CK` property): eight
//!   fields separated by spaces that ACK_MESSAGE (200051) and
//!   CHANGE_MESSAGE_INVISIBLETIME (200053) send back.
//!
//! A message redelivered after its invisible time comes from the pop retry
//! topic `%RETRY%<group>_<topic>` (`+` instead of `_` with the broker's
//! retry topic v2); its receipt says so (field 5: `0` normal, `1` retry
//! v1, `2` retry v2) and the ack names that topic.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::header::{ExtFields, ExtValue};
use super::message::{MessageExt, MessageQueue};
use crate::error::ProtocolError;

/// Property with a popped message's receipt (Java's `PROPERTY_POP_CK`).
pub const PROPERTY_POP_CK: &str = "POP_CK";
/// Property with the time a message was first popped (`PROPERTY_FIRST_POP_TIME`).
pub const PROPERTY_FIRST_POP_TIME: &str = "1ST_POP_TIME";
/// Request mode name of pop consumption in QUERY_ASSIGNMENT answers.
pub const MODE_POP: &str = "POP";
/// Request mode name of pull consumption.
pub const MODE_PULL: &str = "PULL";
/// `initMode` of a pop: a new group starts at the queue's first message.
pub const INIT_MODE_MIN: i32 = 0;
/// `initMode` of a pop: a new group starts at the queue's end (Java's default).
pub const INIT_MODE_MAX: i32 = 1;
/// Most assignments accepted from one QUERY_ASSIGNMENT answer: the route
/// limits' 128 brokers × 1,024 queues.
pub const MAX_ASSIGNMENTS: usize = 128 * 1024;

crate::protocol::header::ext_header! {
    /// POP_MESSAGE request header.
    pub struct PopMessageRequestHeader {
        /// Consumer group.
        pub consumer_group: String = "consumerGroup",
        /// Topic.
        pub topic: String = "topic",
        /// Queue id; -1 pops from every queue of the broker.
        pub queue_id: i32 = "queueId",
        /// Most messages in the answer.
        pub max_msg_nums: i32 = "maxMsgNums",
        /// How long the popped messages stay invisible to others, ms.
        pub invisible_time: i64 = "invisibleTime",
        /// Long poll at the broker, ms.
        pub poll_time: i64 = "pollTime",
        /// When the request was made, ms since the epoch.
        pub born_time: i64 = "bornTime",
        /// Where a new group starts: [`INIT_MODE_MIN`] or [`INIT_MODE_MAX`].
        pub init_mode: i32 = "initMode",
        /// Filter type (`TAG`, `SQL92`).
        pub exp_type: Option<String> = "expType",
        /// Filter expression.
        pub exp: Option<String> = "exp",
        /// Orderly pop.
        pub order: Option<bool> = "order",
        /// Attempt id (5.x proxy retries).
        pub attempt_id: Option<String> = "attemptId",
        /// Broker name.
        pub broker_name: Option<String> = "bname",
    }
}

crate::protocol::header::ext_header! {
    /// POP_MESSAGE response header.
    pub struct PopMessageResponseHeader {
        /// When the broker popped the messages, ms since the epoch.
        pub pop_time: i64 = "popTime",
        /// Invisible time granted, ms.
        pub invisible_time: i64 = "invisibleTime",
        /// The broker's revive queue of the checkpoint.
        pub revive_qid: i32 = "reviveQid",
        /// Messages left in the queues.
        pub rest_num: i64 = "restNum",
        /// `mark queueId startOffset` per queue, `;`-separated.
        pub start_offset_info: Option<String> = "startOffsetInfo",
        /// `mark queueId offset,offset,...` per queue, `;`-separated.
        pub msg_offset_info: Option<String> = "msgOffsetInfo",
        /// Orderly pop: delivery counts.
        pub order_count_info: Option<String> = "orderCountInfo",
    }
}

crate::protocol::header::ext_header! {
    /// ACK_MESSAGE request header.
    pub struct AckMessageRequestHeader {
        /// Consumer group.
        pub consumer_group: String = "consumerGroup",
        /// The real topic of the message (the pop retry topic for a redelivery).
        pub topic: String = "topic",
        /// Queue id.
        pub queue_id: i32 = "queueId",
        /// The message's receipt ([`ExtraInfo`]).
        pub extra_info: String = "extraInfo",
        /// The message's queue offset.
        pub offset: i64 = "offset",
        /// Broker name.
        pub broker_name: Option<String> = "bname",
    }
}

crate::protocol::header::ext_header! {
    /// CHANGE_MESSAGE_INVISIBLETIME request header.
    pub struct ChangeInvisibleTimeRequestHeader {
        /// Consumer group.
        pub consumer_group: String = "consumerGroup",
        /// The real topic of the message.
        pub topic: String = "topic",
        /// Queue id.
        pub queue_id: i32 = "queueId",
        /// The message's receipt ([`ExtraInfo`]).
        pub extra_info: String = "extraInfo",
        /// The message's queue offset.
        pub offset: i64 = "offset",
        /// New invisible time from now, ms.
        pub invisible_time: i64 = "invisibleTime",
        /// Broker name.
        pub broker_name: Option<String> = "bname",
    }
}

/// QUERY_ASSIGNMENT request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryAssignmentRequest {
    /// Topic.
    pub topic: String,
    /// Consumer group.
    pub consumer_group: String,
    /// Client id.
    pub client_id: String,
    /// Allocation strategy name (Java's, e.g. `AVG`).
    pub strategy_name: String,
    /// `CLUSTERING` or `BROADCASTING`.
    pub message_model: super::body::MessageModel,
}

impl QueryAssignmentRequest {
    /// The JSON body.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// One queue of a QUERY_ASSIGNMENT answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageQueueAssignment {
    /// The queue (queue id -1: every queue of the broker).
    pub message_queue: Option<MessageQueue>,
    /// `PULL` or `POP`.
    #[serde(default = "default_mode")]
    pub mode: String,
}

fn default_mode() -> String {
    MODE_PULL.to_string()
}

impl MessageQueueAssignment {
    /// Whether the broker assigns this queue for popping.
    pub fn is_pop(&self) -> bool {
        self.mode == MODE_POP
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryAssignmentBody {
    #[serde(default)]
    message_queue_assignments: Option<Vec<MessageQueueAssignment>>,
}

/// Decodes a QUERY_ASSIGNMENT answer body (assignments without a queue are
/// left out). More than [`MAX_ASSIGNMENTS`] is refused.
///
/// ```
/// use rocketmq_blocking::protocol::pop::decode_assignments;
///
/// let body = br#"{"messageQueueAssignments":[{"messageQueue":{"brokerName":"broker-a","queueId":-1,"topic":"T"},"mode":"POP"}]}"#;
/// let a = decode_assignments(body).unwrap();
/// assert!(a[0].is_pop());
/// assert_eq!(a[0].message_queue.as_ref().unwrap().queue_id, -1);
/// ```
pub fn decode_assignments(body: &[u8]) -> Result<Vec<MessageQueueAssignment>, ProtocolError> {
    let parsed: QueryAssignmentBody = serde_json::from_slice(body)
        .map_err(|e| ProtocolError::InvalidJson { what: "query assignment", reason: e.to_string() })?;
    let v: Vec<MessageQueueAssignment> = parsed
        .message_queue_assignments
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a.message_queue.is_some())
        .collect();
    if v.len() > MAX_ASSIGNMENTS {
        return Err(ProtocolError::BadField {
            field: "messageQueueAssignments",
            value: format!("{} entries", v.len()),
        });
    }
    Ok(v)
}

/// The SET_MESSAGE_REQUEST_MODE body (what `mqadmin setConsumeMode` sends).
///
/// ```
/// let body = rocketmq_blocking::protocol::pop::encode_request_mode("T", "G", "POP", -1);
/// assert!(String::from_utf8(body).unwrap().contains(r#""mode":"POP""#));
/// ```
pub fn encode_request_mode(topic: &str, group: &str, mode: &str, pop_share_queue_num: i32) -> Vec<u8> {
    serde_json::json!({"topic": topic, "consumerGroup": group, "mode": mode, "popShareQueueNum": pop_share_queue_num})
        .to_string()
        .into_bytes()
}

/// `0` for a normal topic, `1` for a pop retry topic (v1, or any
/// `%RETRY%` topic), `2` for a pop retry topic v2 (`%RETRY%group+topic`).
pub fn retry_mark(topic: &str) -> &'static str {
    if topic.starts_with("%RETRY%") && topic.contains('+') {
        "2"
    } else if topic.starts_with("%RETRY%") {
        "1"
    } else {
        "0"
    }
}

/// The pop retry topic of `topic` for `group`: `%RETRY%group_topic` (v1)
/// or `%RETRY%group+topic` (v2, broker option `enableRetryTopicV2`).
///
/// ```
/// use rocketmq_blocking::protocol::pop::pop_retry_topic;
/// assert_eq!(pop_retry_topic("T", "G", false), "%RETRY%G_T");
/// assert_eq!(pop_retry_topic("T", "G", true), "%RETRY%G+T");
/// ```
pub fn pop_retry_topic(topic: &str, group: &str, v2: bool) -> String {
    format!("%RETRY%{group}{}{topic}", if v2 { '+' } else { '_' })
}

/// A popped message's receipt (Java's extra info): what an ack or a change
/// of invisible time sends back.
///
/// ```
/// use rocketmq_blocking::protocol::pop::ExtraInfo;
///
/// let x = ExtraInfo::parse("5 1700000000000 60000 3 0 broker-a 2 7").unwrap();
/// assert_eq!((x.ck_queue_offset, x.queue_id, x.queue_offset), (5, 2, 7));
/// assert_eq!(x.real_topic("T", "G"), "T");
/// assert_eq!(x.to_string(), "5 1700000000000 60000 3 0 broker-a 2 7");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraInfo {
    /// The checkpoint's start offset (first offset of the popped range).
    pub ck_queue_offset: i64,
    /// Pop time, ms since the epoch.
    pub pop_time: i64,
    /// Invisible time, ms.
    pub invisible_time: i64,
    /// Revive queue id.
    pub revive_qid: i32,
    /// [`retry_mark`] of the topic the message came from.
    pub retry: String,
    /// Broker name.
    pub broker_name: String,
    /// Queue id.
    pub queue_id: i32,
    /// The message's queue offset.
    pub queue_offset: i64,
}

impl ExtraInfo {
    /// Parses the eight space-separated fields.
    pub fn parse(s: &str) -> Result<ExtraInfo, ProtocolError> {
        let bad = || ProtocolError::BadField { field: PROPERTY_POP_CK, value: s.chars().take(256).collect() };
        let f: Vec<&str> = s.split(' ').collect();
        if f.len() < 8 || !matches!(f[4], "0" | "1" | "2") {
            return Err(bad());
        }
        let num = |i: usize| f[i].parse::<i64>().map_err(|_| bad());
        let small = |i: usize| f[i].parse::<i32>().map_err(|_| bad());
        Ok(ExtraInfo {
            ck_queue_offset: num(0)?,
            pop_time: num(1)?,
            invisible_time: num(2)?,
            revive_qid: small(3)?,
            retry: f[4].to_string(),
            broker_name: f[5].to_string(),
            queue_id: small(6)?,
            queue_offset: num(7)?,
        })
    }

    /// The topic the broker stores the message in: `topic` itself, or its
    /// pop retry topic for `group` (Java's `ExtraInfoUtil.getRealTopic`).
    pub fn real_topic(&self, topic: &str, group: &str) -> String {
        match self.retry.as_str() {
            "1" => pop_retry_topic(topic, group, false),
            "2" => pop_retry_topic(topic, group, true),
            _ => topic.to_string(),
        }
    }
}

impl std::fmt::Display for ExtraInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {} {} {} {} {} {}",
            self.ck_queue_offset,
            self.pop_time,
            self.invisible_time,
            self.revive_qid,
            self.retry,
            self.broker_name,
            self.queue_id,
            self.queue_offset
        )
    }
}

/// `mark queueId value;...` → `"mark@queueId"` → value text.
fn parse_info(info: Option<&str>, field: &'static str) -> Result<HashMap<String, String>, ProtocolError> {
    let mut map = HashMap::new();
    let Some(info) = info.filter(|s| !s.is_empty()) else { return Ok(map) };
    for one in info.split(';') {
        let p: Vec<&str> = one.split(' ').collect();
        if p.len() != 3 {
            return Err(ProtocolError::BadField { field, value: one.chars().take(256).collect() });
        }
        map.insert(format!("{}@{}", p[0], p[1]), p[2].to_string());
    }
    Ok(map)
}

/// Gives each popped message its receipt (the `POP_CK` property, unless
/// it has one), its first pop time, `broker_name`'s name in the receipt,
/// and `topic` (the topic popped, which a redelivery's stored topic is not):
/// what Java's `processPopResponse` does.
pub fn attach_receipts(
    msgs: &mut [MessageExt],
    h: &PopMessageResponseHeader,
    topic: &str,
    broker_name: &str,
) -> Result<(), ProtocolError> {
    let starts = parse_info(h.start_offset_info.as_deref(), "startOffsetInfo")?;
    let offsets = parse_info(h.msg_offset_info.as_deref(), "msgOffsetInfo")?;
    // Per queue key: the queue offsets of its messages in answer order.
    let mut order: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for m in msgs.iter() {
        order.entry(format!("{}@{}", retry_mark(&m.topic), m.queue_id)).or_default().push(m.queue_offset);
    }
    let mut first_of: HashMap<String, i64> = HashMap::new();
    for m in msgs.iter_mut() {
        let mark = retry_mark(&m.topic);
        let key = format!("{mark}@{}", m.queue_id);
        if m.property(PROPERTY_POP_CK).is_none() {
            let bad = |field| ProtocolError::BadField { field, value: key.clone() };
            let (ck, queue_offset) = if starts.is_empty() {
                // Old brokers: the first offset seen of the queue is the checkpoint.
                (*first_of.entry(key.clone()).or_insert(m.queue_offset), m.queue_offset)
            } else {
                let ck = starts.get(&key).and_then(|v| v.parse().ok()).ok_or_else(|| bad("startOffsetInfo"))?;
                let index = order.get(&key).and_then(|v| v.iter().position(|o| *o == m.queue_offset)).unwrap_or(0);
                let listed = offsets.get(&key).ok_or_else(|| bad("msgOffsetInfo"))?;
                let offset =
                    listed.split(',').nth(index).and_then(|v| v.parse().ok()).ok_or_else(|| bad("msgOffsetInfo"))?;
                (ck, offset)
            };
            let receipt = ExtraInfo {
                ck_queue_offset: ck,
                pop_time: h.pop_time,
                invisible_time: h.invisible_time,
                revive_qid: h.revive_qid,
                retry: mark.to_string(),
                broker_name: broker_name.to_string(),
                queue_id: m.queue_id,
                queue_offset,
            };
            m.properties.insert(PROPERTY_POP_CK.to_string(), receipt.to_string());
        }
        m.properties.entry(PROPERTY_FIRST_POP_TIME.to_string()).or_insert_with(|| h.pop_time.to_string());
        m.topic = topic.to_string();
    }
    Ok(())
}

/// A message's receipt, from its `POP_CK` property.
pub fn receipt(m: &MessageExt) -> Result<ExtraInfo, ProtocolError> {
    ExtraInfo::parse(m.property(PROPERTY_POP_CK).ok_or(ProtocolError::MissingField(PROPERTY_POP_CK))?)
}

/// The ACK_MESSAGE header for a popped message of `topic` (wire name).
pub fn ack_header(group: &str, topic: &str, x: &ExtraInfo) -> ExtFields {
    AckMessageRequestHeader {
        consumer_group: group.to_string(),
        topic: x.real_topic(topic, group),
        queue_id: x.queue_id,
        extra_info: x.to_string(),
        offset: x.queue_offset,
        broker_name: Some(x.broker_name.clone()),
    }
    .to_ext_fields()
}

/// The CHANGE_MESSAGE_INVISIBLETIME header: `x`'s message visible again in `invisible_ms`.
pub fn change_invisible_header(group: &str, topic: &str, x: &ExtraInfo, invisible_ms: i64) -> ExtFields {
    ChangeInvisibleTimeRequestHeader {
        consumer_group: group.to_string(),
        topic: x.real_topic(topic, group),
        queue_id: x.queue_id,
        extra_info: x.to_string(),
        offset: x.queue_offset,
        invisible_time: invisible_ms,
        broker_name: Some(x.broker_name.clone()),
    }
    .to_ext_fields()
}

/// Java's pop retry delays for `ReconsumeLater`, seconds, by delay level
/// (level 0: the message's reconsume times).
pub const JAVA_POP_DELAYS_SECS: [u64; 16] =
    [10, 30, 60, 120, 180, 240, 300, 360, 420, 480, 540, 600, 1200, 1800, 3600, 7200];

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(topic: &str, qid: i32, offset: i64) -> MessageExt {
        crate::protocol::message::test_message(topic, qid, offset)
    }

    #[test]
    fn receipts_follow_the_offset_infos() {
        let h = PopMessageResponseHeader {
            pop_time: 1000,
            invisible_time: 60000,
            revive_qid: 2,
            rest_num: 0,
            start_offset_info: Some("0 1 10;1 0 3".into()),
            msg_offset_info: Some("0 1 10,11;1 0 3".into()),
            order_count_info: None,
        };
        let mut msgs = vec![msg("T", 1, 10), msg("T", 1, 11), msg("%RETRY%G_T", 0, 3)];
        attach_receipts(&mut msgs, &h, "T", "broker-a").unwrap();
        let r: Vec<ExtraInfo> = msgs.iter().map(|m| receipt(m).unwrap()).collect();
        assert_eq!(r[1].to_string(), "10 1000 60000 2 0 broker-a 1 11");
        assert_eq!(r[2].to_string(), "3 1000 60000 2 1 broker-a 0 3");
        assert_eq!(r[2].real_topic("T", "G"), "%RETRY%G_T");
        assert!(msgs.iter().all(|m| m.topic == "T" && m.property(PROPERTY_FIRST_POP_TIME) == Some("1000")));
        let ack = ack_header("G", "T", &r[2]);
        assert_eq!(ack["topic"], "%RETRY%G_T");
        assert_eq!(ack["offset"], "3");
        assert_eq!(ack["bname"], "broker-a");
    }

    #[test]
    fn bad_infos_are_typed_errors() {
        assert!(ExtraInfo::parse("1 2 3").is_err());
        assert!(ExtraInfo::parse("a 2 3 4 0 b 1 2").is_err());
        assert!(ExtraInfo::parse("1 2 3 4 9 b 1 2").is_err());
        let h = PopMessageResponseHeader { start_offset_info: Some("0 1".into()), ..Default::default() };
        assert!(attach_receipts(&mut [msg("T", 1, 1)], &h, "T", "b").is_err());
        let h = PopMessageResponseHeader { start_offset_info: Some("0 2 1".into()), ..Default::default() };
        assert!(attach_receipts(&mut [msg("T", 1, 1)], &h, "T", "b").is_err());
        assert!(decode_assignments(b"{").is_err());
        assert_eq!(retry_mark("%RETRY%G+T"), "2");
    }
}
