//! Request-reply on the wire: the properties a request and its reply carry,
//! the cluster's reply topic, and the reply the broker pushes to the
//! requesting client (PUSH_REPLY_MESSAGE_TO_CLIENT). Pure functions; the
//! producer's side is [`crate::producer::Producer::request`].
//!
//! How it goes (as in the Java client 4.6 and later):
//! 1. The requester sends an ordinary message with [`property::CORRELATION_ID`]
//!    (unique per request), [`property::MESSAGE_REPLY_TO_CLIENT`] (its client
//!    id) and [`property::MESSAGE_TTL`] (its timeout in ms), see
//!    [`set_request_properties`]. The broker stores it with
//!    [`property::CLUSTER`], its cluster's name.
//! 2. A consumer of the topic makes the reply with
//!    [`crate::producer::create_reply_message`]: topic
//!    [`reply_topic`]`(cluster)`, [`property::MESSAGE_TYPE`] = `reply` and the
//!    three request properties copied; a producer sends it (a message whose
//!    type is `reply` goes with SEND_REPLY_MESSAGE_V2 instead of
//!    SEND_MESSAGE_V2).
//! 3. The broker that receives the reply finds the connection of the client
//!    named by `REPLY_TO_CLIENT` among the producers registered with it by
//!    heartbeat and pushes the reply there (PUSH_REPLY_MESSAGE_TO_CLIENT with
//!    a [`ReplyMessageRequestHeader`]); [`decode_pushed_reply`] reads it.
//!
//! # Limits
//! A pushed reply is one frame (at most the connection's frame limit,
//! 16 MiB by default); a compressed body is inflated to at most
//! [`MAX_INFLATED_BODY`] (64 MiB).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::compress;
use super::header::{ExtFields, ReplyMessageRequestHeader};
use super::message::{decode_properties, new_unique_id, property, sys_flag, Message, MessageExt, MAX_INFLATED_BODY};
use crate::error::ProtocolError;

/// The value of [`property::MESSAGE_TYPE`] on a reply (Java `MixAll.REPLY_MESSAGE_FLAG`).
pub const REPLY_MESSAGE_FLAG: &str = "reply";

/// The suffix of a cluster's reply topic (Java `MixAll.REPLY_TOPIC_POSTFIX`).
pub const REPLY_TOPIC_POSTFIX: &str = "REPLY_TOPIC";

/// The topic replies are sent to in `cluster`: `<cluster>_REPLY_TOPIC`.
/// Every broker creates it for its own cluster (one queue).
///
/// ```
/// assert_eq!(rocketmq_blocking::protocol::reply::reply_topic("DefaultCluster"), "DefaultCluster_REPLY_TOPIC");
/// ```
pub fn reply_topic(cluster: &str) -> String {
    format!("{cluster}_{REPLY_TOPIC_POSTFIX}")
}

/// A new correlation id: unique per process and across processes (client
/// address, process id, time and a counter), shaped like Java's UUID
/// (`8-4-4-4-12` hex digits).
pub fn new_correlation_id() -> String {
    let hex = new_unique_id();
    if hex.len() != 32 || !hex.is_ascii() {
        return hex;
    }
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// Sets the request properties on `msg` as Java's
/// `DefaultMQProducerImpl.prepareSendRequest` does: the correlation id,
/// the requester's client id and the timeout in ms.
///
/// ```
/// use std::time::Duration;
/// use rocketmq_blocking::protocol::message::property;
/// use rocketmq_blocking::protocol::reply::set_request_properties;
/// use rocketmq_blocking::Message;
///
/// let mut msg = Message::new("Prices", "GET AAPL");
/// set_request_properties(&mut msg, "c0ffee", "10.0.0.1@4242", Duration::from_secs(3));
/// assert_eq!(msg.property(property::CORRELATION_ID), Some("c0ffee"));
/// assert_eq!(msg.property(property::MESSAGE_REPLY_TO_CLIENT), Some("10.0.0.1@4242"));
/// assert_eq!(msg.property(property::MESSAGE_TTL), Some("3000"));
/// ```
pub fn set_request_properties(msg: &mut Message, correlation_id: &str, client_id: &str, timeout: std::time::Duration) {
    msg.set_property(property::CORRELATION_ID, correlation_id);
    msg.set_property(property::MESSAGE_REPLY_TO_CLIENT, client_id);
    msg.set_property(property::MESSAGE_TTL, timeout.as_millis().to_string());
}

/// The reply to a request whose (stored) properties are `request`: `None`
/// when it has no [`property::CLUSTER`] (not a message as a broker stored
/// it). As Java's `MessageUtil.createReplyMessage`: topic
/// `<cluster>_REPLY_TOPIC`, `MSG_TYPE` = `reply`, and the correlation id,
/// reply-to client and TTL of the request (each only when the request has
/// it).
pub fn reply_message(request: &BTreeMap<String, String>, body: Vec<u8>) -> Option<Message> {
    let cluster = request.get(property::CLUSTER)?;
    let mut reply = Message::new(reply_topic(cluster), body);
    // Java's reply is a `new Message()`: no WAIT property (the broker reads none as true).
    reply.remove_property(property::WAIT_STORE_MSG_OK);
    reply.set_property(property::MESSAGE_TYPE, REPLY_MESSAGE_FLAG);
    for name in [property::CORRELATION_ID, property::MESSAGE_REPLY_TO_CLIENT, property::MESSAGE_TTL] {
        if let Some(v) = request.get(name) {
            reply.set_property(name, v.clone());
        }
    }
    Some(reply)
}

/// Whether `msg` is a reply (sent with SEND_REPLY_MESSAGE_V2).
pub fn is_reply(msg: &Message) -> bool {
    msg.property(property::MESSAGE_TYPE) == Some(REPLY_MESSAGE_FLAG)
}

/// `ip:port` as Java's `InetAddress.getHostAddress() + ":" + port` writes it
/// (IPv6 without brackets); `0.0.0.0:0` when absent or unreadable.
fn parse_host(text: Option<&str>) -> SocketAddr {
    let unknown = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
    let Some((ip, port)) = text.and_then(|t| t.rsplit_once(':')) else { return unknown };
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    match (ip.parse::<IpAddr>(), port.parse::<u16>()) {
        (Ok(ip), Ok(port)) => SocketAddr::new(ip, port),
        _ => unknown,
    }
}

/// The correlation id of a PUSH_REPLY_MESSAGE_TO_CLIENT request (empty when
/// the reply has none), read from its properties only: the body is not
/// touched, so a reply nobody waits for costs no copy or inflation.
pub fn pushed_correlation_id(fields: &ExtFields) -> Result<String, ProtocolError> {
    let props = fields.get("properties").map(String::as_str).unwrap_or("");
    Ok(decode_properties(props)?.remove(property::CORRELATION_ID).unwrap_or_default())
}

/// Reads a PUSH_REPLY_MESSAGE_TO_CLIENT request (its ext fields and body)
/// into the reply message, as Java's `ClientRemotingProcessor` does: a
/// compressed body is inflated (to at most [`MAX_INFLATED_BODY`]),
/// [`property::REPLY_MESSAGE_ARRIVE_TIME`] is set to `arrived_ms`, the
/// message id is the reply's unique key (empty without one). Fields the
/// push does not carry (offsets, sizes) are 0.
pub fn decode_pushed_reply(fields: &ExtFields, body: &[u8], arrived_ms: i64) -> Result<MessageExt, ProtocolError> {
    let h = ReplyMessageRequestHeader::from_ext_fields(fields)?;
    let mut properties = match h.properties.as_deref() {
        Some(p) => decode_properties(p)?,
        None => BTreeMap::new(),
    };
    properties.insert(property::REPLY_MESSAGE_ARRIVE_TIME.to_string(), arrived_ms.to_string());
    let body = if h.sys_flag & sys_flag::COMPRESSED != 0 {
        let kind = (h.sys_flag & sys_flag::COMPRESSION_TYPE_MASK) >> 8;
        compress::inflate(body, kind, MAX_INFLATED_BODY)?
    } else {
        body.to_vec()
    };
    let msg_id = properties.get(property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX).cloned().unwrap_or_default();
    Ok(MessageExt {
        topic: h.topic,
        body,
        flag: h.flag,
        properties,
        store_size: 0,
        body_crc: 0,
        queue_id: h.queue_id,
        queue_offset: 0,
        commit_log_offset: 0,
        sys_flag: h.sys_flag,
        born_timestamp: h.born_timestamp,
        born_host: parse_host(h.born_host.as_deref()),
        store_timestamp: h.store_timestamp.unwrap_or(0),
        store_host: parse_host(h.store_host.as_deref()),
        reconsume_times: h.reconsume_times.unwrap_or(0),
        prepared_transaction_offset: 0,
        msg_id,
        offset_msg_id: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::frame::{decode_frame, RemotingCommand, SerializeType};
    use crate::protocol::message::encode_properties;
    use crate::protocol::request;

    /// The ext fields of a push as Java's broker fills the header in
    /// `ReplyMessageProcessor.pushReplyMessage` (field names of
    /// `ReplyMessageRequestHeader`, values as strings).
    fn java_push_fields(props: &str, sys_flag: i32) -> ExtFields {
        [
            ("producerGroup", "responders"),
            ("topic", "DefaultCluster_REPLY_TOPIC"),
            ("defaultTopic", "TBW102"),
            ("defaultTopicQueueNums", "4"),
            ("queueId", "0"),
            ("sysFlag", &sys_flag.to_string()),
            ("bornTimestamp", "1700000000123"),
            ("flag", "0"),
            ("properties", props),
            ("reconsumeTimes", "0"),
            ("unitMode", "false"),
            ("bornHost", "10.1.2.3:51234"),
            ("storeHost", "10.1.2.4:10911"),
            ("storeTimestamp", "1700000000456"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn request_props() -> BTreeMap<String, String> {
        [
            (property::CORRELATION_ID, "3f2a1c4e-0000-4000-8000-000000000001"),
            (property::MESSAGE_REPLY_TO_CLIENT, "10.1.2.5@4711"),
            (property::MESSAGE_TTL, "3000"),
            (property::CLUSTER, "DefaultCluster"),
            (property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX, "AAAA"),
            (property::TAGS, "price"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    #[test]
    fn the_reply_copies_what_java_copies() {
        let reply = reply_message(&request_props(), b"42".to_vec()).expect("a stored request has a cluster");
        assert_eq!(reply.topic(), "DefaultCluster_REPLY_TOPIC");
        assert_eq!(reply.body(), b"42");
        let expected: BTreeMap<String, String> = [
            (property::MESSAGE_TYPE, "reply"),
            (property::CORRELATION_ID, "3f2a1c4e-0000-4000-8000-000000000001"),
            (property::MESSAGE_REPLY_TO_CLIENT, "10.1.2.5@4711"),
            (property::MESSAGE_TTL, "3000"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(reply.properties(), &expected, "no tag, key or unique id of the request");
        assert!(is_reply(&reply));
        let mut no_cluster = request_props();
        no_cluster.remove(property::CLUSTER);
        assert!(reply_message(&no_cluster, Vec::new()).is_none());
    }

    #[test]
    fn correlation_ids_are_uuid_shaped_and_unique() {
        let ids: std::collections::HashSet<String> = (0..10_000).map(|_| new_correlation_id()).collect();
        assert_eq!(ids.len(), 10_000);
        let id = ids.iter().next().unwrap();
        let parts: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(parts, [8, 4, 4, 4, 12], "{id}");
    }

    #[test]
    fn a_java_push_frame_decodes_to_the_reply() {
        let mut props = request_props();
        props.insert(property::MESSAGE_TYPE.into(), "reply".into());
        props.insert(property::PUSH_REPLY_TIME.into(), "1700000000457".into());
        let fields = java_push_fields(&encode_properties(&props), 0);
        // The frame as the broker writes it (JSON header), read back by the codec.
        let mut cmd = RemotingCommand::request(request::PUSH_REPLY_MESSAGE_TO_CLIENT)
            .with_ext_fields(fields)
            .with_body(b"reply body".to_vec());
        cmd.serialize_type = SerializeType::Json;
        cmd.opaque = 77;
        let (cmd, _) = decode_frame(&cmd.encode(), 1 << 20).unwrap().expect("a whole frame");
        assert_eq!(pushed_correlation_id(&cmd.ext_fields).unwrap(), "3f2a1c4e-0000-4000-8000-000000000001");
        let msg = decode_pushed_reply(&cmd.ext_fields, &cmd.body, 1700000000999).unwrap();
        assert_eq!(msg.topic, "DefaultCluster_REPLY_TOPIC");
        assert_eq!(msg.body, b"reply body");
        assert_eq!(msg.property(property::CORRELATION_ID), Some("3f2a1c4e-0000-4000-8000-000000000001"));
        assert_eq!(msg.property(property::REPLY_MESSAGE_ARRIVE_TIME), Some("1700000000999"));
        assert_eq!(msg.property(property::PUSH_REPLY_TIME), Some("1700000000457"));
        assert_eq!(msg.msg_id, "AAAA");
        assert_eq!((msg.born_timestamp, msg.store_timestamp), (1700000000123, 1700000000456));
        assert_eq!(msg.born_host, "10.1.2.3:51234".parse().unwrap());
        assert_eq!(msg.store_host, "10.1.2.4:10911".parse().unwrap());
        assert_eq!(parse_host(Some("::1:10911")), "[::1]:10911".parse().unwrap());
    }

    #[test]
    fn bad_pushes_are_typed_errors() {
        let mut fields = java_push_fields("", 0);
        fields.remove("queueId");
        assert!(matches!(decode_pushed_reply(&fields, b"", 0), Err(ProtocolError::MissingField("queueId"))));
        let fields = java_push_fields("no separator", 0);
        assert!(matches!(decode_pushed_reply(&fields, b"", 0), Err(ProtocolError::BadProperties(_))));
        let fields = java_push_fields("", sys_flag::COMPRESSED);
        assert!(decode_pushed_reply(&fields, b"not zlib", 0).is_err());
        let mut fields = java_push_fields("", 0);
        fields.insert("sysFlag".into(), "x".into());
        assert!(matches!(decode_pushed_reply(&fields, b"", 0), Err(ProtocolError::BadField { field: "sysFlag", .. })));
    }

    #[cfg(feature = "compression")]
    #[test]
    fn a_compressed_reply_is_inflated() {
        let body = vec![b'z'; 10_000];
        let z = crate::protocol::compress::deflate_zlib(&body, 5).unwrap();
        let fields = java_push_fields("", sys_flag::COMPRESSED | crate::protocol::compress::ZLIB_TYPE_BITS);
        assert_eq!(decode_pushed_reply(&fields, &z, 0).unwrap().body, body);
    }
}
