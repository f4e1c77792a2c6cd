//! Bodies of the requests that operations tools (`mqadmin`, dashboards)
//! send to a consumer through its broker: running info, reset offsets,
//! consumer status, consume a message directly.
//!
//! The broker and the tools write these with fastjson, which puts maps keyed
//! by a queue as objects keyed by JSON objects (`{{"brokerName":"a",
//! "queueId":0,"topic":"T"}:5}`) — not JSON. [`write_queue_map`] writes that
//! form and [`read_queue_map`] reads it, quoting exactly those keys before
//! handing the text to `serde_json`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::body::SubscriptionData;
use super::message::MessageQueue;
use super::route::json_string_end;
use crate::error::ProtocolError;

/// `PROP_CONSUME_TYPE` value of a push consumer.
pub const CONSUME_PASSIVELY: &str = "CONSUME_PASSIVELY";
/// `PROP_CONSUME_TYPE` value of a pull / lite pull consumer.
pub const CONSUME_ACTIVELY: &str = "CONSUME_ACTIVELY";

/// State of one queue held by a consumer (Java's `ProcessQueueInfo`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessQueueInfo {
    /// Offset committed (in memory) for the queue.
    pub commit_offset: i64,
    /// Smallest offset pulled and not yet consumed.
    pub cached_msg_min_offset: i64,
    /// Largest offset pulled and not yet consumed.
    pub cached_msg_max_offset: i64,
    /// Messages pulled and not yet consumed.
    pub cached_msg_count: i32,
    /// Their body bytes, in MiB.
    #[serde(rename = "cachedMsgSizeInMiB")]
    pub cached_msg_size_in_mib: i32,
    /// Transactional messages (always 0 here).
    pub transaction_msg_min_offset: i64,
    /// Transactional messages (always 0 here).
    pub transaction_msg_max_offset: i64,
    /// Transactional messages (always 0 here).
    pub transaction_msg_count: i32,
    /// Orderly: whether the broker lock is held.
    pub locked: bool,
    /// Orderly: failed unlock attempts.
    pub try_unlock_times: i64,
    /// Orderly: when the lock was last confirmed (ms since the epoch).
    pub last_lock_timestamp: i64,
    /// Whether the queue was given up (Java's spelling).
    pub droped: bool,
    /// Last pull (ms since the epoch).
    pub last_pull_timestamp: i64,
    /// Last listener call (ms since the epoch).
    pub last_consume_timestamp: i64,
}

/// Consume statistics of one topic (Java's `ConsumeStatus`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumeStatus {
    /// Average pull time, ms.
    #[serde(rename = "pullRT")]
    pub pull_rt: f64,
    /// Pulls per second.
    #[serde(rename = "pullTPS")]
    pub pull_tps: f64,
    /// Average listener time, ms.
    #[serde(rename = "consumeRT")]
    pub consume_rt: f64,
    /// Messages consumed per second.
    #[serde(rename = "consumeOKTPS")]
    pub consume_ok_tps: f64,
    /// Messages failed per second.
    #[serde(rename = "consumeFailedTPS")]
    pub consume_failed_tps: f64,
    /// Messages failed in the last hour.
    pub consume_failed_msgs: i64,
}

/// What a consumer answers to GET_CONSUMER_RUNNING_INFO.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConsumerRunningInfo {
    /// Settings and facts (`PROP_CONSUME_TYPE`, `PROP_CONSUMEORDERLY`,
    /// `PROP_THREADPOOL_CORE_SIZE`, `PROP_CONSUMER_START_TIMESTAMP`, ...).
    pub properties: BTreeMap<String, String>,
    /// The subscriptions.
    pub subscriptions: Vec<SubscriptionData>,
    /// The queues held.
    pub queues: BTreeMap<MessageQueue, ProcessQueueInfo>,
    /// Statistics per topic.
    pub status: BTreeMap<String, ConsumeStatus>,
}

impl ConsumerRunningInfo {
    /// The body as fastjson writes it (queue-keyed maps with object keys).
    ///
    /// ```
    /// use rocketmq_blocking::protocol::admin::{ConsumerRunningInfo, ProcessQueueInfo};
    /// use rocketmq_blocking::MessageQueue;
    ///
    /// let mut info = ConsumerRunningInfo::default();
    /// info.queues.insert(MessageQueue::new("T", "broker-a", 0), ProcessQueueInfo { commit_offset: 7, ..Default::default() });
    /// let json = String::from_utf8(info.encode()).unwrap();
    /// assert!(json.contains(r#""mqTable":{{"brokerName":"broker-a","queueId":0,"topic":"T"}:{"commitOffset":7,"#));
    /// ```
    pub fn encode(&self) -> Vec<u8> {
        let mut out = String::from("{\"properties\":");
        out.push_str(&json(&self.properties));
        out.push_str(",\"subscriptionSet\":");
        out.push_str(&json(&self.subscriptions));
        out.push_str(",\"mqTable\":");
        out.push_str(&write_queue_map(&self.queues));
        out.push_str(",\"mqPopTable\":{},\"statusTable\":");
        out.push_str(&json(&self.status));
        out.push_str(",\"userConsumerInfo\":{}}");
        out.into_bytes()
    }
}

/// What a consumer answers to CONSUME_MESSAGE_DIRECTLY.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumeMessageDirectlyResult {
    /// Whether an orderly listener consumed it.
    pub order: bool,
    /// Always true (Java's orderly auto-commit).
    pub auto_commit: bool,
    /// `CR_SUCCESS`, `CR_LATER`, `CR_THROW_EXCEPTION`, ...
    pub consume_result: String,
    /// Free text.
    pub remark: String,
    /// Listener time in ms.
    pub spent_time_mills: i64,
}

impl ConsumeMessageDirectlyResult {
    /// The JSON body.
    pub fn encode(&self) -> Vec<u8> {
        json(self).into_bytes()
    }
}

/// The GET_CONSUMER_STATUS_FROM_CLIENT answer: the offsets held per queue.
pub fn encode_consumer_status(offsets: &BTreeMap<MessageQueue, i64>) -> Vec<u8> {
    format!("{{\"messageQueueTable\":{},\"consumerTable\":{{}}}}", write_queue_map(offsets)).into_bytes()
}

/// Reads the body of RESET_CONSUMER_CLIENT_OFFSET: the offset per queue.
///
/// ```
/// use rocketmq_blocking::protocol::admin::decode_reset_offset_body;
///
/// let body = br#"{"offsetTable":{{"brokerName":"broker-a","queueId":1,"topic":"T"}:42}}"#;
/// let table = decode_reset_offset_body(body).unwrap();
/// assert_eq!(table.values().copied().collect::<Vec<_>>(), vec![42]);
/// ```
pub fn decode_reset_offset_body(body: &[u8]) -> Result<BTreeMap<MessageQueue, i64>, ProtocolError> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Body {
        #[serde(default)]
        offset_table: BTreeMap<String, i64>,
    }
    let what = "reset offset body";
    let text =
        std::str::from_utf8(body).map_err(|_| ProtocolError::InvalidJson { what, reason: "not UTF-8".into() })?;
    let parsed: Body = serde_json::from_str(&quote_object_keys(text))
        .map_err(|e| ProtocolError::InvalidJson { what, reason: e.to_string() })?;
    read_queue_map(parsed.offset_table, what)
}

/// Turns a map read with quoted object keys back into a queue-keyed map.
pub fn read_queue_map<V>(
    map: BTreeMap<String, V>,
    what: &'static str,
) -> Result<BTreeMap<MessageQueue, V>, ProtocolError> {
    map.into_iter()
        .map(|(k, v)| {
            let mq: MessageQueue = serde_json::from_str(&k)
                .map_err(|e| ProtocolError::InvalidJson { what, reason: format!("queue key {k:?}: {e}") })?;
            Ok((mq, v))
        })
        .collect()
}

/// Writes a queue-keyed map the way fastjson does: each key as a JSON object.
pub fn write_queue_map<V: Serialize>(map: &BTreeMap<MessageQueue, V>) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        // Field order as fastjson writes it (alphabetical).
        out.push_str(&format!(
            "{{\"brokerName\":{},\"queueId\":{},\"topic\":{}}}:",
            json(&k.broker_name),
            k.queue_id,
            json(&k.topic)
        ));
        out.push_str(&json(v));
    }
    out.push('}');
    out
}

fn json<T: Serialize + ?Sized>(v: &T) -> String {
    // Serializing these plain types cannot fail (string keys, finite data);
    // an empty object stands in should it ever.
    serde_json::to_string(v).unwrap_or_else(|_| "{}".to_string())
}

/// Quotes object keys that are JSON objects (`{{"a":1}:2}` →
/// `{"{\"a\":1}":2}`); everything else is left as it is, so invalid JSON
/// stays invalid.
pub fn quote_object_keys(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len() + 64);
    let mut copied = 0;
    let mut i = 0;
    // The last significant byte outside strings was `{` or `,`.
    let mut key_position = false;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i = json_string_end(b, i);
                key_position = false;
                continue;
            }
            b'{' if key_position => {
                if let Some(end) = balanced_object_end(b, i) {
                    let mut k = end;
                    while k < b.len() && b[k].is_ascii_whitespace() {
                        k += 1;
                    }
                    if k < b.len() && b[k] == b':' {
                        out.push_str(&text[copied..i]);
                        out.push_str(&json(&text[i..end]));
                        copied = end;
                        i = end;
                        key_position = false;
                        continue;
                    }
                }
                key_position = true;
            }
            b'{' | b',' => key_position = true,
            c if c.is_ascii_whitespace() => {}
            _ => key_position = false,
        }
        i += 1;
    }
    out.push_str(&text[copied..]);
    out
}

/// One past the `}` closing the object that opens at `start`, if it closes.
fn balanced_object_end(b: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = start;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i = json_string_end(b, i);
                continue;
            }
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_keys_are_quoted_and_nothing_else() {
        let t = r#"{"offsetTable":{{"brokerName":"a","queueId":0,"topic":"T"}:5, {"brokerName":"b","queueId":1,"topic":"T"} : 6}}"#;
        let q = quote_object_keys(t);
        let v: serde_json::Value = serde_json::from_str(&q).unwrap();
        assert_eq!(v["offsetTable"].as_object().unwrap().len(), 2);
        for plain in [r#"{"a":{"b":1},"c":[{"d":2},{"e":3}]}"#, r#"{"s":"{{\"x\":1}:2}"}"#, "{}"] {
            assert_eq!(quote_object_keys(plain), plain);
        }
        // Unbalanced stays invalid.
        assert!(serde_json::from_str::<serde_json::Value>(&quote_object_keys(r#"{{"a":1:2}"#)).is_err());
    }

    #[test]
    fn reset_body_round_trips_through_the_fastjson_form() {
        let mut m = BTreeMap::new();
        m.insert(MessageQueue::new("T", "broker-a", 3), 17i64);
        m.insert(MessageQueue::new("T", "broker-b", 0), 0i64);
        let body = format!("{{\"offsetTable\":{}}}", write_queue_map(&m));
        assert_eq!(decode_reset_offset_body(body.as_bytes()).unwrap(), m);
        assert!(decode_reset_offset_body(b"{\"offsetTable\":{\"x\":1}}").is_err());
        assert!(decode_reset_offset_body(b"\xff").is_err());
    }

    #[test]
    fn running_info_is_valid_after_quoting() {
        let mut info = ConsumerRunningInfo::default();
        info.properties.insert("PROP_CONSUME_TYPE".into(), CONSUME_PASSIVELY.into());
        info.queues.insert(MessageQueue::new("T", "a", 0), ProcessQueueInfo::default());
        info.status.insert("T".into(), ConsumeStatus::default());
        let text = String::from_utf8(info.encode()).unwrap();
        let v: serde_json::Value = serde_json::from_str(&quote_object_keys(&text)).unwrap();
        assert_eq!(v["properties"]["PROP_CONSUME_TYPE"], CONSUME_PASSIVELY);
        assert_eq!(v["mqTable"].as_object().unwrap().len(), 1);
        assert!(v["statusTable"]["T"]["pullRT"].is_number());
    }
}
