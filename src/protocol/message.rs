//! Messages: the user's [`Message`], the stored [`MessageExt`], properties,
//! batch bodies, and the two message id formats.
//!
//! # Limits
//! Compressed bodies are inflated incrementally and never past a limit
//! (see [`crate::protocol::compress`]):
//!
//! | limit | default | over it |
//! |---|---|---|
//! | inflated body of one message (pull, transaction check-back) | [`MAX_INFLATED_BODY`] = 64 MiB | [`ProtocolError::InflateLimit`] with scope `"message"` |
//! | inflated bodies of one pull response, all messages together | [`MAX_INFLATED_PER_RESPONSE`] = 64 MiB | [`ProtocolError::InflateLimit`] with scope `"response"` |
//!
//! Uncompressed bodies are bounded by the frame limit
//! ([`DEFAULT_MAX_FRAME_SIZE`](crate::protocol::DEFAULT_MAX_FRAME_SIZE),
//! 16 MiB): they are copied out of a frame that was already accepted.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use super::compress;
use super::frame::Reader;
use crate::error::ProtocolError;

/// Well-known property keys (Java's `MessageConst`).
pub mod property {
    /// Space-separated keys.
    pub const KEYS: &str = "KEYS";
    /// Tag.
    pub const TAGS: &str = "TAGS";
    /// Whether the broker should wait for the store before answering.
    pub const WAIT_STORE_MSG_OK: &str = "WAIT";
    /// Delay level (1..=18).
    pub const DELAY_TIME_LEVEL: &str = "DELAY";
    /// Retry topic.
    pub const RETRY_TOPIC: &str = "RETRY_TOPIC";
    /// Real topic of a delayed or transactional message.
    pub const REAL_TOPIC: &str = "REAL_TOPIC";
    /// Real queue id of a delayed or transactional message.
    pub const REAL_QUEUE_ID: &str = "REAL_QID";
    /// Transaction prepared marker.
    pub const TRANSACTION_PREPARED: &str = "TRAN_MSG";
    /// Producer group.
    pub const PRODUCER_GROUP: &str = "PGROUP";
    /// Queue min offset (set on pulled messages).
    pub const MIN_OFFSET: &str = "MIN_OFFSET";
    /// Queue max offset (set on pulled messages).
    pub const MAX_OFFSET: &str = "MAX_OFFSET";
    /// Original message id of a retried message.
    pub const ORIGIN_MESSAGE_ID: &str = "ORIGIN_MESSAGE_ID";
    /// Reconsume count of a retried message.
    pub const RECONSUME_TIME: &str = "RECONSUME_TIME";
    /// Client-generated unique message id.
    pub const UNIQ_CLIENT_MESSAGE_ID_KEYIDX: &str = "UNIQ_KEY";
    /// Max reconsume times.
    pub const MAX_RECONSUME_TIMES: &str = "MAX_RECONSUME_TIMES";
    /// Consume start time.
    pub const CONSUME_START_TIME: &str = "CONSUME_START_TIME";
    /// Sharding key for ordered routing.
    pub const SHARDING_KEY: &str = "__SHARDINGKEY";
    /// Request-reply: the id that pairs a reply with its request (a UUID in Java).
    pub const CORRELATION_ID: &str = "CORRELATION_ID";
    /// Request-reply: the client id of the requester, where the broker pushes the reply.
    pub const MESSAGE_REPLY_TO_CLIENT: &str = "REPLY_TO_CLIENT";
    /// Request-reply: the requester's timeout in ms.
    pub const MESSAGE_TTL: &str = "TTL";
    /// Request-reply: when the reply reached the requester (ms, set by the requester).
    pub const REPLY_MESSAGE_ARRIVE_TIME: &str = "ARRIVE_TIME";
    /// Request-reply: when the broker pushed the reply (ms, set by the broker).
    pub const PUSH_REPLY_TIME: &str = "PUSH_REPLY_TIME";
    /// Request-reply: `reply` on a reply message (sent with SEND_REPLY_MESSAGE_V2).
    pub const MESSAGE_TYPE: &str = "MSG_TYPE";
    /// 5.x timed delivery: absolute time in ms.
    pub const TIMER_DELIVER_MS: &str = "TIMER_DELIVER_MS";
    /// 5.x timed delivery: delay in seconds.
    pub const TIMER_DELAY_SEC: &str = "TIMER_DELAY_SEC";
    /// 5.x timed delivery: delay in ms.
    pub const TIMER_DELAY_MS: &str = "TIMER_DELAY_MS";
    /// Region of the message.
    pub const MSG_REGION: &str = "MSG_REGION";
    /// Trace switch.
    pub const TRACE_SWITCH: &str = "TRACE_ON";
    /// Transaction check immunity time.
    pub const CHECK_IMMUNITY_TIME_IN_SECONDS: &str = "CHECK_IMMUNITY_TIME_IN_SECONDS";
    /// Cluster name.
    pub const CLUSTER: &str = "CLUSTER";
}

/// Message sys flag bits.
pub mod sys_flag {
    /// Body is compressed.
    pub const COMPRESSED: i32 = 0x1;
    /// Multiple tags.
    pub const MULTI_TAGS: i32 = 0x2;
    /// Transaction not a transaction.
    pub const TRANSACTION_NOT_TYPE: i32 = 0;
    /// Half (prepared) message.
    pub const TRANSACTION_PREPARED: i32 = 0x4;
    /// Committed.
    pub const TRANSACTION_COMMIT: i32 = 0x8;
    /// Rolled back.
    pub const TRANSACTION_ROLLBACK: i32 = 0xC;
    /// Born host is IPv6.
    pub const BORNHOST_V6: i32 = 0x10;
    /// Store host is IPv6.
    pub const STOREHOST_V6: i32 = 0x20;
    /// Needs unwrapping (5.x).
    pub const NEED_UNWRAP: i32 = 0x40;
    /// Inner batch (5.x).
    pub const INNER_BATCH: i32 = 0x80;
    /// Mask of the compression type bits 8..=10.
    pub const COMPRESSION_TYPE_MASK: i32 = 0x700;
    /// Transaction type bits.
    pub const TRANSACTION_MASK: i32 = 0xC;
}

/// Pull request sys flag bits.
pub mod pull_flag {
    /// Commit the consumer offset along with the pull.
    pub const COMMIT_OFFSET: i32 = 0x1;
    /// Long-poll: suspend until messages arrive.
    pub const SUSPEND: i32 = 0x2;
    /// The request carries a subscription expression.
    pub const SUBSCRIPTION: i32 = 0x4;
    /// Class filter.
    pub const CLASS_FILTER: i32 = 0x8;
    /// Lite pull.
    pub const LITE_PULL: i32 = 0x10;
}

/// The keys of a space-separated `KEYS` property.
fn split_keys(keys: Option<&str>) -> Vec<&str> {
    keys.map(|k| k.split(' ').filter(|s| !s.is_empty()).collect()).unwrap_or_default()
}

const NAME_VALUE_SEPARATOR: char = '\u{1}';
const PROPERTY_SEPARATOR: char = '\u{2}';

/// Encodes properties as `name 0x01 value 0x02 ...`.
pub fn encode_properties(props: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    for (k, v) in props {
        out.push_str(k);
        out.push(NAME_VALUE_SEPARATOR);
        out.push_str(v);
        out.push(PROPERTY_SEPARATOR);
    }
    out
}

/// Decodes a properties string. An item without a name/value separator or
/// with an empty name is an error.
pub fn decode_properties(s: &str) -> Result<BTreeMap<String, String>, ProtocolError> {
    let mut map = BTreeMap::new();
    for item in s.split(PROPERTY_SEPARATOR) {
        if item.is_empty() {
            continue;
        }
        let (name, value) =
            item.split_once(NAME_VALUE_SEPARATOR).ok_or(ProtocolError::BadProperties("item without separator"))?;
        if name.is_empty() {
            return Err(ProtocolError::BadProperties("empty property name"));
        }
        map.insert(name.to_string(), value.to_string());
    }
    Ok(map)
}

/// Java's `String.hashCode` over UTF-16 code units.
///
/// Used for tag codes (the broker filters on it) and for hashing sharding
/// keys: the same value in every process, run and platform, and the same
/// as the Java client's.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32))
}

/// A message to send.
///
/// ```
/// use rocketmq_blocking::Message;
///
/// let msg = Message::new("OrderTopic", b"hello".to_vec())
///     .with_tags("created")
///     .with_keys(["order-1", "user-7"])
///     .with_property("region", "eu");
/// assert_eq!(msg.tags(), Some("created"));
/// assert_eq!(msg.keys(), vec!["order-1", "user-7"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    topic: String,
    body: Vec<u8>,
    flag: i32,
    properties: BTreeMap<String, String>,
}

impl Message {
    /// A message for `topic` with `body`, waiting for the store (Java default).
    pub fn new(topic: impl Into<String>, body: impl Into<Vec<u8>>) -> Self {
        let mut m = Message { topic: topic.into(), body: body.into(), flag: 0, properties: BTreeMap::new() };
        m.properties.insert(property::WAIT_STORE_MSG_OK.into(), "true".into());
        m
    }

    /// Sets the tag.
    pub fn with_tags(mut self, tags: impl Into<String>) -> Self {
        self.properties.insert(property::TAGS.into(), tags.into());
        self
    }

    /// Sets the keys (joined with spaces, as Java does).
    pub fn with_keys<I, S>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let joined: Vec<String> = keys.into_iter().map(|k| k.as_ref().to_string()).collect();
        self.properties.insert(property::KEYS.into(), joined.join(" "));
        self
    }

    /// Sets a user property.
    pub fn with_property(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.insert(name.into(), value.into());
        self
    }

    /// Sets the delay level (1..=18: 1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h).
    pub fn with_delay_level(mut self, level: i32) -> Self {
        self.properties.insert(property::DELAY_TIME_LEVEL.into(), level.to_string());
        self
    }

    /// Delivers at this time, ms since the epoch (5.x brokers).
    pub fn with_deliver_time_ms(mut self, at_ms: i64) -> Self {
        self.properties.insert(property::TIMER_DELIVER_MS.into(), at_ms.to_string());
        self
    }

    /// Sets the user flag.
    pub fn with_flag(mut self, flag: i32) -> Self {
        self.flag = flag;
        self
    }

    /// Replaces the topic.
    pub fn set_topic(&mut self, topic: impl Into<String>) {
        self.topic = topic.into();
    }

    /// Replaces the body.
    pub fn set_body(&mut self, body: impl Into<Vec<u8>>) {
        self.body = body.into();
    }

    /// Sets or replaces a property.
    pub fn set_property(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.properties.insert(name.into(), value.into());
    }

    /// Removes a property.
    pub fn remove_property(&mut self, name: &str) -> Option<String> {
        self.properties.remove(name)
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The user flag.
    pub fn flag(&self) -> i32 {
        self.flag
    }

    /// All properties (system and user).
    pub fn properties(&self) -> &BTreeMap<String, String> {
        &self.properties
    }

    /// A property.
    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties.get(name).map(String::as_str)
    }

    /// The tag.
    pub fn tags(&self) -> Option<&str> {
        self.property(property::TAGS)
    }

    /// The keys.
    pub fn keys(&self) -> Vec<&str> {
        split_keys(self.property(property::KEYS))
    }

    /// The delay level, if set.
    pub fn delay_level(&self) -> Option<i32> {
        self.property(property::DELAY_TIME_LEVEL).and_then(|v| v.parse().ok())
    }

    /// The client-generated unique id, if set.
    pub fn unique_id(&self) -> Option<&str> {
        self.property(property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX)
    }
}

/// A message as the broker stores it, with every stored field.
///
/// Consumers and pulls hand these out:
///
/// ```
/// use rocketmq_blocking::MessageExt;
///
/// fn describe(m: &MessageExt) -> String {
///     format!(
///         "{} queue {} offset {} tag {:?} keys {:?} stored at {} ms by {}: {}",
///         m.msg_id,
///         m.queue_id,
///         m.queue_offset,
///         m.tags(),
///         m.keys(),
///         m.store_timestamp,
///         m.store_host,
///         String::from_utf8_lossy(&m.body)
///     )
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageExt {
    /// Topic.
    pub topic: String,
    /// Body (inflated when it was stored compressed).
    pub body: Vec<u8>,
    /// User flag.
    pub flag: i32,
    /// Properties.
    pub properties: BTreeMap<String, String>,
    /// Stored size in bytes.
    pub store_size: i32,
    /// Body CRC as stored.
    pub body_crc: i32,
    /// Queue id.
    pub queue_id: i32,
    /// Offset in the queue.
    pub queue_offset: i64,
    /// Offset in the commit log.
    pub commit_log_offset: i64,
    /// Message sys flag as stored.
    pub sys_flag: i32,
    /// Born time, ms since the epoch.
    pub born_timestamp: i64,
    /// Host that sent the message.
    pub born_host: SocketAddr,
    /// Store time, ms since the epoch.
    pub store_timestamp: i64,
    /// Broker that stored the message.
    pub store_host: SocketAddr,
    /// Times the message was consumed again.
    pub reconsume_times: i32,
    /// Prepared transaction offset.
    pub prepared_transaction_offset: i64,
    /// The message id: the client's unique id when present, else the offset message id.
    pub msg_id: String,
    /// Store host + commit-log offset, as hex.
    pub offset_msg_id: String,
}

impl MessageExt {
    /// A property.
    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties.get(name).map(String::as_str)
    }

    /// The tag.
    pub fn tags(&self) -> Option<&str> {
        self.property(property::TAGS)
    }

    /// The keys.
    pub fn keys(&self) -> Vec<&str> {
        split_keys(self.property(property::KEYS))
    }
}

/// Magic code of stored messages, version 1 (1-byte topic length).
pub const MESSAGE_MAGIC_CODE_V1: i32 = -626843481;
/// Magic code of stored messages, version 2 (2-byte topic length).
pub const MESSAGE_MAGIC_CODE_V2: i32 = -626843477;

/// Largest inflated body accepted from one compressed message (64 MiB;
/// the Java producer refuses bodies over 4 MiB before compressing them, and
/// the broker's `maxMessageSize` is 4 MiB by default).
pub const MAX_INFLATED_BODY: usize = 64 * 1024 * 1024;

/// Largest total of inflated bodies accepted from one pull response
/// (64 MiB): four times the frame limit, and 32 messages (the default
/// pull batch) of 2 MiB each. A response past it fails as a whole.
pub const MAX_INFLATED_PER_RESPONSE: usize = 64 * 1024 * 1024;

/// Decodes the concatenated stored messages of a pull body, with the
/// default inflation limits ([`MAX_INFLATED_BODY`] per message,
/// [`MAX_INFLATED_PER_RESPONSE`] in all).
pub fn decode_messages(body: &[u8]) -> Result<Vec<MessageExt>, ProtocolError> {
    decode_messages_limited(body, MAX_INFLATED_BODY, MAX_INFLATED_PER_RESPONSE)
}

/// [`decode_messages`] with explicit limits: compressed bodies inflate to at
/// most `per_message` bytes each and `per_response` bytes together; past
/// either, [`ProtocolError::InflateLimit`] and nothing more is allocated.
///
/// ```
/// use rocketmq_blocking::protocol::message::decode_messages_limited;
///
/// assert!(decode_messages_limited(&[], 1024, 4096).unwrap().is_empty());
/// ```
pub fn decode_messages_limited(
    body: &[u8],
    per_message: usize,
    per_response: usize,
) -> Result<Vec<MessageExt>, ProtocolError> {
    let mut budget = per_response;
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < body.len() {
        let rest = &body[pos..];
        if rest.len() < 4 {
            return Err(ProtocolError::BadMessage { offset: pos, reason: "truncated total size" });
        }
        let size = i32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        if size < 4 || size as usize > rest.len() {
            return Err(ProtocolError::BadMessage { offset: pos, reason: "total size out of range" });
        }
        let limit = per_message.min(budget);
        let msg = decode_message_limited(&rest[..size as usize], pos, limit).map_err(|e| match e {
            ProtocolError::InflateLimit { .. } if budget < per_message => {
                ProtocolError::InflateLimit { limit: per_response, scope: "response" }
            }
            ProtocolError::InflateLimit { .. } => ProtocolError::InflateLimit { limit: per_message, scope: "message" },
            other => other,
        })?;
        if msg.sys_flag & sys_flag::COMPRESSED != 0 {
            budget -= msg.body.len();
        }
        out.push(msg);
        pos += size as usize;
    }
    Ok(out)
}

fn read_host(r: &mut Reader<'_>, v6: bool) -> Option<SocketAddr> {
    let ip = if v6 {
        let b: [u8; 16] = r.bytes(16)?.try_into().ok()?;
        IpAddr::V6(Ipv6Addr::from(b))
    } else {
        let b: [u8; 4] = r.bytes(4)?.try_into().ok()?;
        IpAddr::V4(Ipv4Addr::from(b))
    };
    let port = r.i32()?;
    Some(SocketAddr::new(ip, u16::try_from(port).ok()?))
}

/// Decodes one stored message (exactly `buf`); `at` is used in errors. A
/// compressed body inflates to at most [`MAX_INFLATED_BODY`] bytes.
pub fn decode_message(buf: &[u8], at: usize) -> Result<MessageExt, ProtocolError> {
    decode_message_limited(buf, at, MAX_INFLATED_BODY)
}

/// [`decode_message`] inflating a compressed body to at most `limit` bytes.
pub fn decode_message_limited(buf: &[u8], at: usize, limit: usize) -> Result<MessageExt, ProtocolError> {
    let bad = |reason| ProtocolError::BadMessage { offset: at, reason };
    let mut r = Reader::new(buf);
    let store_size = r.i32().ok_or(bad("truncated"))?;
    let magic = r.i32().ok_or(bad("truncated"))?;
    let v2 = match magic {
        MESSAGE_MAGIC_CODE_V1 => false,
        MESSAGE_MAGIC_CODE_V2 => true,
        _ => return Err(bad("unknown magic code")),
    };
    let body_crc = r.i32().ok_or(bad("truncated"))?;
    let queue_id = r.i32().ok_or(bad("truncated"))?;
    let flag = r.i32().ok_or(bad("truncated"))?;
    let queue_offset = r.i64().ok_or(bad("truncated"))?;
    let commit_log_offset = r.i64().ok_or(bad("truncated"))?;
    let sys_flag = r.i32().ok_or(bad("truncated"))?;
    let born_timestamp = r.i64().ok_or(bad("truncated"))?;
    let born_host = read_host(&mut r, sys_flag & sys_flag::BORNHOST_V6 != 0).ok_or(bad("bad born host"))?;
    let store_timestamp = r.i64().ok_or(bad("truncated"))?;
    let store_host = read_host(&mut r, sys_flag & sys_flag::STOREHOST_V6 != 0).ok_or(bad("bad store host"))?;
    let reconsume_times = r.i32().ok_or(bad("truncated"))?;
    let prepared_transaction_offset = r.i64().ok_or(bad("truncated"))?;
    let body_len = r.i32().ok_or(bad("truncated"))?;
    let raw_body = usize::try_from(body_len).ok().and_then(|n| r.bytes(n)).ok_or(bad("body runs past the message"))?;
    let topic_len = if v2 { r.u16().map(usize::from) } else { r.u8().map(usize::from) }.ok_or(bad("truncated"))?;
    let topic = r.bytes(topic_len).ok_or(bad("topic runs past the message"))?;
    let topic = std::str::from_utf8(topic).map_err(|_| bad("topic is not UTF-8"))?.to_string();
    let props_len = r.u16().ok_or(bad("truncated"))? as usize;
    let props = r.bytes(props_len).ok_or(bad("properties run past the message"))?;
    let props = std::str::from_utf8(props).map_err(|_| bad("properties are not UTF-8"))?;
    let properties = decode_properties(props)?;
    let body = if sys_flag & sys_flag::COMPRESSED != 0 {
        let kind = (sys_flag & sys_flag::COMPRESSION_TYPE_MASK) >> 8;
        compress::inflate(raw_body, kind, limit)?
    } else {
        raw_body.to_vec()
    };
    let offset_msg_id = encode_offset_msg_id(store_host, commit_log_offset);
    let msg_id =
        properties.get(property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX).cloned().unwrap_or_else(|| offset_msg_id.clone());
    let _ = r.pos();
    Ok(MessageExt {
        topic,
        body,
        flag,
        properties,
        store_size,
        body_crc,
        queue_id,
        queue_offset,
        commit_log_offset,
        sys_flag,
        born_timestamp,
        born_host,
        store_timestamp,
        store_host,
        reconsume_times,
        prepared_transaction_offset,
        msg_id,
        offset_msg_id,
    })
}

fn write_host(out: &mut Vec<u8>, host: SocketAddr) {
    match host.ip() {
        IpAddr::V4(ip) => out.extend_from_slice(&ip.octets()),
        IpAddr::V6(ip) => out.extend_from_slice(&ip.octets()),
    }
    out.extend_from_slice(&i32::from(host.port()).to_be_bytes());
}

/// Encodes a message in the broker's stored format, as a pull body carries
/// it: the inverse of [`decode_message`] for test peers and tools.
///
/// `msg.body` is written as it is: for a compressed message pass the
/// compressed bytes and set [`sys_flag::COMPRESSED`] in `msg.sys_flag`. The
/// host fields follow the `BORNHOST_V6` / `STOREHOST_V6` bits of
/// `sys_flag`, which this sets from the addresses. Topics longer than 255
/// bytes use the version 2 magic code (2-byte topic length). The total size
/// is computed; `store_size`, `msg_id` and `offset_msg_id` are ignored.
///
/// ```
/// use rocketmq_blocking::protocol::message::{decode_messages, encode_stored_message};
/// # use rocketmq_blocking::MessageExt;
/// # let msg = MessageExt {
/// #     topic: "T".into(), body: b"hi".to_vec(), flag: 0, properties: Default::default(),
/// #     store_size: 0, body_crc: 0, queue_id: 1, queue_offset: 7, commit_log_offset: 0, sys_flag: 0,
/// #     born_timestamp: 0, born_host: "127.0.0.1:1".parse().unwrap(), store_timestamp: 0,
/// #     store_host: "127.0.0.1:2".parse().unwrap(), reconsume_times: 0,
/// #     prepared_transaction_offset: 0, msg_id: String::new(), offset_msg_id: String::new(),
/// # };
/// let bytes = encode_stored_message(&msg);
/// let back = decode_messages(&bytes)?;
/// assert_eq!((back[0].queue_offset, back[0].body.as_slice()), (7, &b"hi"[..]));
/// # Ok::<(), rocketmq_blocking::ProtocolError>(())
/// ```
pub fn encode_stored_message(msg: &MessageExt) -> Vec<u8> {
    let props = encode_properties(&msg.properties);
    let v2 = msg.topic.len() > usize::from(u8::MAX);
    let mut sys = msg.sys_flag & !(sys_flag::BORNHOST_V6 | sys_flag::STOREHOST_V6);
    if msg.born_host.is_ipv6() {
        sys |= sys_flag::BORNHOST_V6;
    }
    if msg.store_host.is_ipv6() {
        sys |= sys_flag::STOREHOST_V6;
    }
    let mut out = Vec::with_capacity(128 + msg.body.len() + msg.topic.len() + props.len());
    out.extend_from_slice(&0i32.to_be_bytes()); // total size, set below
    out.extend_from_slice(&if v2 { MESSAGE_MAGIC_CODE_V2 } else { MESSAGE_MAGIC_CODE_V1 }.to_be_bytes());
    out.extend_from_slice(&msg.body_crc.to_be_bytes());
    out.extend_from_slice(&msg.queue_id.to_be_bytes());
    out.extend_from_slice(&msg.flag.to_be_bytes());
    out.extend_from_slice(&msg.queue_offset.to_be_bytes());
    out.extend_from_slice(&msg.commit_log_offset.to_be_bytes());
    out.extend_from_slice(&sys.to_be_bytes());
    out.extend_from_slice(&msg.born_timestamp.to_be_bytes());
    write_host(&mut out, msg.born_host);
    out.extend_from_slice(&msg.store_timestamp.to_be_bytes());
    write_host(&mut out, msg.store_host);
    out.extend_from_slice(&msg.reconsume_times.to_be_bytes());
    out.extend_from_slice(&msg.prepared_transaction_offset.to_be_bytes());
    out.extend_from_slice(&(msg.body.len() as i32).to_be_bytes());
    out.extend_from_slice(&msg.body);
    if v2 {
        out.extend_from_slice(&(msg.topic.len() as u16).to_be_bytes());
    } else {
        out.push(msg.topic.len() as u8);
    }
    out.extend_from_slice(msg.topic.as_bytes());
    out.extend_from_slice(&(props.len() as u16).to_be_bytes());
    out.extend_from_slice(props.as_bytes());
    let total = out.len() as i32;
    out[..4].copy_from_slice(&total.to_be_bytes());
    out
}

/// Encodes messages as a batch body (`SEND_BATCH_MESSAGE`): for each,
/// total size, magic 0, body CRC 0, flag, body length + body, properties
/// length + properties.
pub fn encode_batch(messages: &[Message]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in messages {
        let props = encode_properties(&m.properties);
        let size = 4 + 4 + 4 + 4 + 4 + m.body.len() + 2 + props.len();
        out.extend_from_slice(&(size as i32).to_be_bytes());
        out.extend_from_slice(&0i32.to_be_bytes());
        out.extend_from_slice(&0i32.to_be_bytes());
        out.extend_from_slice(&m.flag.to_be_bytes());
        out.extend_from_slice(&(m.body.len() as i32).to_be_bytes());
        out.extend_from_slice(&m.body);
        out.extend_from_slice(&(props.len() as u16).to_be_bytes());
        out.extend_from_slice(props.as_bytes());
    }
    out
}

/// Size one message takes in a batch body.
pub fn batch_entry_size(m: &Message) -> usize {
    20 + m.body.len() + 2 + encode_properties(&m.properties).len()
}

/// Decodes a batch body back into messages (topic left empty).
pub fn decode_batch(body: &[u8]) -> Result<Vec<Message>, ProtocolError> {
    let mut out = Vec::new();
    let mut r = Reader::new(body);
    while r.remaining() > 0 {
        let at = r.pos();
        let bad = |reason| ProtocolError::BadMessage { offset: at, reason };
        let size = r.i32().ok_or(bad("truncated"))?;
        let _magic = r.i32().ok_or(bad("truncated"))?;
        let _crc = r.i32().ok_or(bad("truncated"))?;
        let flag = r.i32().ok_or(bad("truncated"))?;
        let body_len = r.i32().ok_or(bad("truncated"))?;
        let body = usize::try_from(body_len).ok().and_then(|n| r.bytes(n)).ok_or(bad("body runs past the batch"))?;
        let props_len = r.u16().ok_or(bad("truncated"))? as usize;
        let props = r.bytes(props_len).ok_or(bad("properties run past the batch"))?;
        let props = std::str::from_utf8(props).map_err(|_| bad("properties are not UTF-8"))?;
        if r.pos() - at != size as usize {
            return Err(bad("size does not match the fields"));
        }
        out.push(Message { topic: String::new(), body: body.to_vec(), flag, properties: decode_properties(props)? });
    }
    Ok(out)
}

fn hex_upper(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 0xF) as usize] as char);
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || !s.is_ascii() {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect()
}

/// The offset message id: hex of store host address, port (i32) and
/// commit-log offset (i64), upper case (32 characters for IPv4, 56 for IPv6).
pub fn encode_offset_msg_id(store_host: SocketAddr, commit_log_offset: i64) -> String {
    let mut b = Vec::with_capacity(28);
    match store_host.ip() {
        IpAddr::V4(ip) => b.extend_from_slice(&ip.octets()),
        IpAddr::V6(ip) => b.extend_from_slice(&ip.octets()),
    }
    b.extend_from_slice(&(store_host.port() as i32).to_be_bytes());
    b.extend_from_slice(&commit_log_offset.to_be_bytes());
    hex_upper(&b)
}

/// Reads an offset message id back into store host and commit-log offset.
pub fn decode_offset_msg_id(id: &str) -> Result<(SocketAddr, i64), ProtocolError> {
    let bad = || ProtocolError::BadMessageId(id.to_string());
    let b = unhex(id).ok_or_else(bad)?;
    let ip_len = match b.len() {
        16 => 4,
        28 => 16,
        _ => return Err(bad()),
    };
    let ip = if ip_len == 4 {
        IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
    } else {
        let o: [u8; 16] = b[..16].try_into().map_err(|_| bad())?;
        IpAddr::V6(Ipv6Addr::from(o))
    };
    let port = i32::from_be_bytes(b[ip_len..ip_len + 4].try_into().map_err(|_| bad())?);
    let offset = i64::from_be_bytes(b[ip_len + 4..ip_len + 12].try_into().map_err(|_| bad())?);
    let port = u16::try_from(port).map_err(|_| bad())?;
    Ok((SocketAddr::new(ip, port), offset))
}

struct UniqueIdState {
    prefix: String,
    month_start_ms: i64,
    next_month_ms: i64,
}

static UNIQUE_ID: OnceLock<Mutex<UniqueIdState>> = OnceLock::new();
static UNIQUE_COUNTER: AtomicU16 = AtomicU16::new(0);

pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Start of the UTC month containing `ms`, and start of the next one.
fn month_bounds(ms: i64) -> (i64, i64) {
    let days = ms.div_euclid(86_400_000);
    let (y, m) = civil_from_days(days);
    let start = days_from_civil(y, m, 1) * 86_400_000;
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    (start, days_from_civil(ny, nm, 1) * 86_400_000)
}

// Howard Hinnant's civil calendar algorithms.
fn civil_from_days(z: i64) -> (i64, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 } as i64;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn unique_prefix(ip: IpAddr) -> String {
    let mut b = Vec::with_capacity(22);
    match ip {
        IpAddr::V4(v4) => b.extend_from_slice(&v4.octets()),
        IpAddr::V6(v6) => b.extend_from_slice(&v6.octets()),
    }
    b.extend_from_slice(&(std::process::id() as u16).to_be_bytes());
    // Java uses the class loader's hash code here; any per-process value
    // keeps ids of two processes with the same pid apart.
    let seed = (now_ms() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (std::process::id() as u64) << 17;
    b.extend_from_slice(&((seed >> 32) as u32).to_be_bytes());
    hex_upper(&b)
}

/// A new client message id (`UNIQ_KEY`) in the Java format: hex of client
/// IP, pid (2 bytes), a per-process value (4 bytes), ms since the start of
/// the month (4 bytes) and a counter (2 bytes); 32 characters with IPv4.
pub fn new_unique_id() -> String {
    let now = now_ms();
    let lock = UNIQUE_ID.get_or_init(|| {
        let (start, next) = month_bounds(now);
        UNIQUE_COUNTER.store((now as u16).wrapping_mul(7919), Ordering::Relaxed);
        Mutex::new(UniqueIdState {
            prefix: unique_prefix(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            month_start_ms: start,
            next_month_ms: next,
        })
    });
    let mut state = lock.lock().unwrap_or_else(|p| p.into_inner());
    if now >= state.next_month_ms {
        let (start, next) = month_bounds(now);
        state.month_start_ms = start;
        state.next_month_ms = next;
    }
    let mut tail = [0u8; 6];
    tail[..4].copy_from_slice(&((now - state.month_start_ms) as i32).to_be_bytes());
    tail[4..].copy_from_slice(&UNIQUE_COUNTER.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    let mut id = state.prefix.clone();
    id.push_str(&hex_upper(&tail));
    id
}

/// Reads the client IP and pid out of a unique id made by [`new_unique_id`]
/// or a Java client: 32 hex characters with an IPv4 client, 56 with IPv6.
pub fn unique_id_origin(id: &str) -> Result<(IpAddr, u16), ProtocolError> {
    let b = unhex(id).ok_or_else(|| ProtocolError::BadMessageId(id.to_string()))?;
    let (ip, rest) = match b.len() {
        16 => (IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3])), &b[4..]),
        28 => {
            let o: [u8; 16] = b[..16].try_into().map_err(|_| ProtocolError::BadMessageId(id.to_string()))?;
            (IpAddr::V6(Ipv6Addr::from(o)), &b[16..])
        }
        _ => return Err(ProtocolError::BadMessageId(id.to_string())),
    };
    Ok((ip, u16::from_be_bytes([rest[0], rest[1]])))
}

/// A queue of a topic on a broker.
///
/// ```
/// use rocketmq_blocking::MessageQueue;
///
/// let q = MessageQueue::new("Orders", "broker-a", 3);
/// assert_eq!((q.topic.as_str(), q.broker_name.as_str(), q.queue_id), ("Orders", "broker-a", 3));
/// assert!(q < MessageQueue::new("Orders", "broker-b", 0), "ordered by topic, broker, queue id");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageQueue {
    /// Topic.
    pub topic: String,
    /// Broker name.
    pub broker_name: String,
    /// Queue id.
    pub queue_id: i32,
}

impl MessageQueue {
    /// A queue.
    pub fn new(topic: impl Into<String>, broker_name: impl Into<String>, queue_id: i32) -> Self {
        MessageQueue { topic: topic.into(), broker_name: broker_name.into(), queue_id }
    }
}

/// A stored message for unit tests: this topic, queue and offset, the rest empty.
#[cfg(test)]
pub(crate) fn test_message(topic: &str, queue_id: i32, queue_offset: i64) -> MessageExt {
    MessageExt {
        topic: topic.into(),
        body: Vec::new(),
        flag: 0,
        properties: BTreeMap::new(),
        store_size: 0,
        body_crc: 0,
        queue_id,
        queue_offset,
        commit_log_offset: 0,
        sys_flag: 0,
        born_timestamp: 0,
        born_host: "127.0.0.1:1".parse().expect("address"),
        store_timestamp: 0,
        store_host: "[::1]:2".parse().expect("address"),
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        msg_id: String::new(),
        offset_msg_id: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_round_trip_and_errors() {
        let m = Message::new("t", "b").with_tags("TagA").with_keys(["k1", "k2"]).with_property("ü", "✓ value");
        let s = encode_properties(m.properties());
        assert_eq!(decode_properties(&s).unwrap(), *m.properties());
        assert_eq!(decode_properties("a\u{1}b").unwrap()["a"], "b");
        assert!(decode_properties("abc\u{2}").is_err());
        assert!(decode_properties("\u{1}v\u{2}").is_err());
        assert!(decode_properties("").unwrap().is_empty());
    }

    #[test]
    fn java_hash_matches_java() {
        // Values computed by java.lang.String.hashCode.
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("TagA"), 2598919);
        assert_eq!(java_string_hash("hello"), 99162322);
        assert_eq!(java_string_hash("Hello, world!"), -1880044555);
    }

    #[test]
    fn offset_msg_id_round_trip() {
        let v4: SocketAddr = "127.0.0.1:20911".parse().unwrap();
        let id = encode_offset_msg_id(v4, 0x1234_5678);
        assert_eq!(id, "7F000001000051AF0000000012345678");
        assert_eq!(decode_offset_msg_id(&id).unwrap(), (v4, 0x1234_5678));
        let v6: SocketAddr = "[::1]:10911".parse().unwrap();
        let id6 = encode_offset_msg_id(v6, 99);
        assert_eq!(id6.len(), 56);
        assert_eq!(decode_offset_msg_id(&id6).unwrap(), (v6, 99));
        assert!(decode_offset_msg_id("XYZ").is_err());
        assert!(decode_offset_msg_id("7F000001").is_err());
    }

    #[test]
    fn unique_ids_are_distinct_and_java_shaped() {
        let a = new_unique_id();
        let b = new_unique_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase()));
        let (ip, pid) = unique_id_origin(&a).unwrap();
        assert_eq!(ip, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(pid, std::process::id() as u16);
        // A Java client on an IPv6 host (id seen from the 5.3.3 Java client).
        let (ip, pid) = unique_id_origin("FD000000000000000000000000000002149630946E097606763A0000").unwrap();
        assert_eq!(ip, "fd00::2".parse::<IpAddr>().unwrap());
        assert_eq!(pid, 0x1496);
        assert!(unique_id_origin("ABC").is_err());
        assert_eq!(&a[..20], &b[..20]);
    }

    #[test]
    fn month_bounds_are_right() {
        // 2024-02-15T00:00:00Z -> Feb 1 and Mar 1 (leap year).
        let (s, n) = month_bounds(1_707_955_200_000);
        assert_eq!(s, 1_706_745_600_000);
        assert_eq!(n, 1_709_251_200_000);
        // 2023-12-31T23:59:59Z -> Dec 1 and Jan 1.
        let (s, n) = month_bounds(1_704_067_199_000);
        assert_eq!(s, 1_701_388_800_000);
        assert_eq!(n, 1_704_067_200_000);
    }

    fn stored(body: Vec<u8>, sys_flag: i32) -> MessageExt {
        let mut m = test_message("T", 0, 0);
        m.body = body;
        m.sys_flag = sys_flag;
        m
    }

    #[test]
    fn stored_messages_round_trip() {
        let mut m = stored(b"body".to_vec(), 0);
        m.topic = "t".repeat(300);
        m.properties.insert("K".into(), "V".into());
        let bytes = [encode_stored_message(&m), encode_stored_message(&stored(Vec::new(), 0))].concat();
        let back = decode_messages(&bytes).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!((back[0].topic.as_str(), back[0].body.as_slice()), (m.topic.as_str(), &b"body"[..]));
        assert_eq!(back[0].property("K"), Some("V"));
        assert_eq!(back[0].store_host, m.store_host);
        assert_eq!(back[0].store_size as usize, bytes.len() - encode_stored_message(&stored(Vec::new(), 0)).len());
    }

    #[cfg(feature = "compression")]
    #[test]
    fn inflated_bytes_are_capped_per_message_and_per_response() {
        let z = compress::deflate_zlib(&[7u8; 10_000], 5).unwrap();
        let one = encode_stored_message(&stored(z, sys_flag::COMPRESSED));
        let three = [one.clone(), one.clone(), one.clone()].concat();
        assert_eq!(decode_messages_limited(&three, 10_000, 30_000).unwrap().len(), 3);
        assert_eq!(
            decode_messages_limited(&three, 9_999, 30_000),
            Err(ProtocolError::InflateLimit { limit: 9_999, scope: "message" })
        );
        assert_eq!(
            decode_messages_limited(&three, 10_000, 29_999),
            Err(ProtocolError::InflateLimit { limit: 29_999, scope: "response" })
        );
        // Uncompressed bodies do not count against the inflation budget.
        let plain = encode_stored_message(&stored(vec![1; 50_000], 0));
        assert_eq!(decode_messages_limited(&[plain, one].concat(), 10_000, 10_000).unwrap().len(), 2);
        assert_eq!(
            decode_message_limited(&three[..three.len() / 3], 0, 10).unwrap_err().to_string(),
            "compressed bodies inflate past the limit of 10 bytes per message"
        );
    }

    #[test]
    fn batch_round_trip() {
        let msgs: Vec<Message> =
            (0..3).map(|i| Message::new("t", vec![i as u8; i * 10]).with_keys([format!("k{i}")])).collect();
        let body = encode_batch(&msgs);
        assert_eq!(body.len(), msgs.iter().map(batch_entry_size).sum::<usize>());
        let back = decode_batch(&body).unwrap();
        assert_eq!(back.len(), 3);
        for (a, b) in msgs.iter().zip(&back) {
            assert_eq!(a.body(), b.body());
            assert_eq!(a.properties(), b.properties());
        }
        assert!(decode_batch(&body[..body.len() - 1]).is_err());
    }
}
