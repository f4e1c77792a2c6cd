//! Interop with the official Apache RocketMQ Java client, both ways, on the
//! real brokers: messages sent by `BrokerClient::send` are read by the Java
//! `DefaultLitePullConsumer`, and messages sent by the Java
//! `DefaultMQProducer` are pulled by `BrokerClient::pull`; ids, tags, keys,
//! bodies (binary, and one 10 KiB body each client compresses with zlib),
//! flags and properties (non-ASCII too) must come out identical.
//!
//! The Java peer is `tests/interop/java` (`interop.Interop`), built once
//! per run with `mvn compile` into Cargo's target dir, against the client
//! version the brokers report. Maven and a JDK are required: without them
//! the test fails, it does not skip.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use common::java::{java_props, unhex};
use common::*;
use rocketmq_blocking::broker::SendResult;
use rocketmq_blocking::protocol::compress::ZLIB_TYPE_BITS;
use rocketmq_blocking::protocol::message::{property, sys_flag};
use rocketmq_blocking::{Message, MessageExt, MessageQueue};

/// Messages per direction: every queue gets some, message 1 has the 10 KiB
/// compressed body, messages 3 and 7 have no tags, keys or user properties.
const N: usize = 8;
/// Properties the Java consumer adds to every pulled message on the client side.
const JAVA_CLIENT_PROPS: [&str; 2] = [property::MIN_OFFSET, property::MAX_OFFSET];

/// The class path of the built Java peer; built once per test run.
fn java_classpath() -> &'static str {
    static CP: OnceLock<String> = OnceLock::new();
    CP.get_or_init(|| java::build_peer("interop-java", &java::broker_version(&client("broker-a")), &[]))
}

/// Runs `interop.Interop ARGS` and returns its stdout lines starting with `tag|`.
fn java_interop(args: &[&str], tag: &str) -> Vec<String> {
    // Generous timeouts: the first requests of a cold JVM on a busy 2-core machine can take seconds.
    java::run_interop(java_classpath(), args, &[("INTEROP_TIMEOUT_MS", "10000")], tag)
}

/// A message as the Java consumer decoded it (one `MSG|...` line).
#[derive(Debug)]
struct JavaMsg {
    msg_id: String,
    offset_msg_id: String,
    broker: String,
    queue_id: i32,
    queue_offset: i64,
    commit_log_offset: i64,
    store_size: i32,
    body_crc: i32,
    flag: i32,
    sys_flag: i32,
    born_timestamp: i64,
    born_host: String,
    store_timestamp: i64,
    store_host: String,
    reconsume_times: i32,
    tags: String,
    keys: String,
    body: Vec<u8>,
    props: BTreeMap<String, String>,
}

fn parse_msg(line: &str) -> JavaMsg {
    let f: Vec<&str> = line.split('|').collect();
    assert_eq!(f.len(), 20, "MSG line with {} fields: {line}", f.len());
    let num = |i: usize| f[i].parse::<i64>().unwrap_or_else(|_| panic!("field {i} of {line} is not a number"));
    JavaMsg {
        msg_id: f[1].into(),
        offset_msg_id: f[2].into(),
        broker: f[3].into(),
        queue_id: num(4) as i32,
        queue_offset: num(5),
        commit_log_offset: num(6),
        store_size: num(7) as i32,
        body_crc: num(8) as i32,
        flag: num(9) as i32,
        sys_flag: num(10) as i32,
        born_timestamp: num(11),
        born_host: f[12].into(),
        store_timestamp: num(13),
        store_host: f[14].into(),
        reconsume_times: num(15) as i32,
        tags: f[16].into(),
        keys: f[17].into(),
        body: unhex(f[18]),
        props: java_props(f[19]),
    }
}

/// A message as the Java producer sent it (one `SENT|...` line).
#[derive(Debug)]
struct JavaSent {
    msg_id: String,
    offset_msg_id: String,
    broker: String,
    queue_id: i32,
    queue_offset: i64,
    flag: i32,
    tags: String,
    keys: String,
    body: Vec<u8>,
    props: BTreeMap<String, String>,
}

fn parse_sent(line: &str) -> JavaSent {
    let f: Vec<&str> = line.split('|').collect();
    assert_eq!(f.len(), 11, "SENT line with {} fields: {line}", f.len());
    let num = |i: usize| f[i].parse::<i64>().unwrap_or_else(|_| panic!("field {i} of {line} is not a number"));
    JavaSent {
        msg_id: f[1].into(),
        offset_msg_id: f[2].into(),
        broker: f[3].into(),
        queue_id: num(4) as i32,
        queue_offset: num(5),
        flag: num(6) as i32,
        tags: f[7].into(),
        keys: f[8].into(),
        body: unhex(f[9]),
        props: java_props(f[10]),
    }
}

/// Collects field mismatches, so one run reports all of them.
#[derive(Default)]
struct Diffs(Vec<String>);

impl Diffs {
    fn check<T: PartialEq + std::fmt::Debug>(&mut self, what: &str, field: &str, ours: T, java: T) {
        if ours != java {
            self.0.push(format!("{what}: {field}: rust={ours:?} java={java:?}"));
        }
    }

    fn body(&mut self, what: &str, ours: &[u8], java: &[u8]) {
        if ours != java {
            let at = ours.iter().zip(java).position(|(a, b)| a != b).unwrap_or(ours.len().min(java.len()));
            self.0.push(format!(
                "{what}: body: rust has {} bytes, java {} bytes, first difference at byte {at}",
                ours.len(),
                java.len()
            ));
        }
    }

    /// Every property of `sent` is in `got` with the same value.
    fn props_sent(
        &mut self,
        what: &str,
        reader: &str,
        sent: &BTreeMap<String, String>,
        got: &BTreeMap<String, String>,
    ) {
        for (k, v) in sent {
            // 4.x brokers drop WAIT ("wait for the store") when storing.
            if k == "WAIT" && brokers_are_4x() {
                continue;
            }
            if got.get(k) != Some(v) {
                self.0.push(format!("{what}: property {k:?}: sent {v:?}, {reader} read {:?}", got.get(k)));
            }
        }
    }

    fn assert_none(self, direction: &str) {
        assert!(self.0.is_empty(), "{direction}: {} mismatches:\n{}", self.0.len(), self.0.join("\n"));
    }
}

/// The i-th message this crate sends: tags, keys and user properties with
/// non-ASCII text (not on every fourth), a binary body, and for i = 1 a
/// 10 KiB text body that `BrokerClient` compresses with zlib.
fn rust_message(topic: &str, i: usize) -> Message {
    let body: Vec<u8> = if i == 1 {
        let mut text = String::new();
        while text.len() < 10 * 1024 {
            text.push_str(&format!("rust compressed body line {} ünïcödé\n", text.len()));
        }
        text.into_bytes()[..10 * 1024].to_vec()
    } else {
        let mut b = format!("rust-body-{i}-").into_bytes();
        b.extend(0..=255u8);
        b
    };
    let mut m = Message::new(topic, body).with_flag(i as i32);
    if i % 4 != 3 {
        m = m
            .with_tags(if i % 2 == 0 { "TagR" } else { "标签R" })
            .with_keys([format!("rkey-{i}"), format!("ключ-{i}")])
            .with_property("user_ascii", format!("v{i}"))
            .with_property("user_utf8", format!("值-ü-é-🚀-{i}"));
    }
    m
}

fn java_host(addr: std::net::SocketAddr) -> String {
    format!("{}:{}", addr.ip(), addr.port())
}

#[test]
fn messages_sent_by_this_crate_are_read_by_the_java_client() {
    java_classpath(); // build first: a build failure is reported as such
    let topic = unique("interop_r2j");
    create_topic(&topic, 2);
    let queues = topic_queues(&topic);
    let clients: HashMap<String, _> = ["broker-a", "broker-b"].iter().map(|b| (b.to_string(), client(b))).collect();

    // Send, and pull each back with this crate too: the Java decoding of
    // the same stored message is compared with ours field by field.
    let mut sent: Vec<(Message, SendResult, MessageExt)> = Vec::new();
    for i in 0..N {
        let queue = &queues[i % queues.len()];
        let c = &clients[&queue.broker_name];
        let msg = rust_message(&topic, i);
        let r = c.send("interop_r2j_pg", queue, &msg).expect("send");
        let ours = pull_n(c, queue, r.queue_offset, 1)
            .into_iter()
            .find(|m| m.queue_offset == r.queue_offset)
            .expect("our own message at its offset");
        sent.push((msg, r, ours));
    }
    let compressed = &sent[1].2;
    assert_ne!(compressed.sys_flag & sys_flag::COMPRESSED, 0, "the 10 KiB body was stored compressed");

    let java: HashMap<String, JavaMsg> = java_interop(&["consume", &topic, &N.to_string()], "MSG")
        .iter()
        .map(|l| parse_msg(l))
        .map(|m| (m.msg_id.clone(), m))
        .collect();
    let mut d = Diffs::default();
    for (i, (msg, r, ours)) in sent.iter().enumerate() {
        let what = format!("message {i} ({})", r.msg_id);
        let Some(j) = java.get(&r.msg_id) else {
            d.0.push(format!("{what}: not read by the Java consumer (read: {:?})", java.keys().collect::<Vec<_>>()));
            continue;
        };
        // What we sent and what the broker told us.
        d.check(&what, "offsetMsgId", &r.offset_msg_id, &j.offset_msg_id);
        d.check(&what, "brokerName", &r.queue.broker_name, &j.broker);
        d.check(&what, "queueId", r.queue.queue_id, j.queue_id);
        d.check(&what, "queueOffset", r.queue_offset, j.queue_offset);
        d.check(&what, "flag", msg.flag(), j.flag);
        d.check(&what, "tags", msg.tags().unwrap_or(""), &j.tags);
        d.check(&what, "keys", msg.property(property::KEYS).unwrap_or(""), &j.keys);
        d.body(&what, msg.body(), &j.body);
        let mut sent_props = msg.properties().clone();
        sent_props.insert(property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX.into(), r.msg_id.clone());
        d.props_sent(&what, "java", &sent_props, &j.props);
        // Our decoding of the same stored message against Java's.
        d.check(&what, "msgId (decoded)", &ours.msg_id, &j.msg_id);
        d.check(&what, "offsetMsgId (decoded)", &ours.offset_msg_id, &j.offset_msg_id);
        d.check(&what, "commitLogOffset", ours.commit_log_offset, j.commit_log_offset);
        d.check(&what, "storeSize", ours.store_size, j.store_size);
        d.check(&what, "bodyCRC", ours.body_crc, j.body_crc);
        // The 5.x Java client clears COMPRESSED once it has inflated the body
        // (4.x keeps it, like us): we keep the flag as stored.
        let java_flag = if brokers_are_4x() { j.sys_flag & !sys_flag::COMPRESSED } else { j.sys_flag };
        d.check(&what, "sysFlag (COMPRESSED cleared)", ours.sys_flag & !sys_flag::COMPRESSED, java_flag);
        d.check(&what, "bornTimestamp", ours.born_timestamp, j.born_timestamp);
        d.check(&what, "bornHost", java_host(ours.born_host), j.born_host.clone());
        d.check(&what, "storeTimestamp", ours.store_timestamp, j.store_timestamp);
        d.check(&what, "storeHost", java_host(ours.store_host), j.store_host.clone());
        d.check(&what, "reconsumeTimes", ours.reconsume_times, j.reconsume_times);
        d.body(&format!("{what} (decoded)"), &ours.body, &j.body);
        let mut java_props = j.props.clone();
        for k in JAVA_CLIENT_PROPS {
            java_props.remove(k);
        }
        d.check(&what, "properties (decoded)", &ours.properties, &java_props);
    }
    d.assert_none("rust -> java");
}

#[test]
fn messages_sent_by_the_java_client_are_pulled_by_this_crate() {
    java_classpath();
    let topic = unique("interop_j2r");
    create_topic(&topic, 2);
    let clients: HashMap<String, _> = ["broker-a", "broker-b"].iter().map(|b| (b.to_string(), client(b))).collect();

    let java: Vec<JavaSent> =
        java_interop(&["produce", &topic, &N.to_string()], "SENT").iter().map(|l| parse_sent(l)).collect();
    assert_eq!(java.len(), N, "the Java producer reported {} of {N} messages", java.len());
    let mut d = Diffs::default();
    for (i, j) in java.iter().enumerate() {
        let what = format!("message {i} ({})", j.msg_id);
        let queue = MessageQueue::new(&topic, j.broker.clone(), j.queue_id);
        let c = clients.get(&j.broker).unwrap_or_else(|| panic!("unknown broker {:?}", j.broker));
        let Some(m) = pull_n(c, &queue, j.queue_offset, 1).into_iter().find(|m| m.queue_offset == j.queue_offset)
        else {
            d.0.push(format!("{what}: nothing at {queue:?} offset {}", j.queue_offset));
            continue;
        };
        d.check(&what, "msgId", &m.msg_id, &j.msg_id);
        d.check(&what, "offsetMsgId", &m.offset_msg_id, &j.offset_msg_id);
        d.check(&what, "topic", m.topic.as_str(), topic.as_str());
        d.check(&what, "flag", m.flag, j.flag);
        d.check(&what, "tags", m.tags().unwrap_or(""), &j.tags);
        d.check(&what, "keys", m.property(property::KEYS).unwrap_or(""), &j.keys);
        d.body(&what, &m.body, &j.body);
        d.props_sent(&what, "rust", &j.props, &m.properties);
        if i == 1 {
            // Java compressed the 10 KiB body: same marks as ours (COMPRESSED + zlib type bits).
            let marks = sys_flag::COMPRESSED | sys_flag::COMPRESSION_TYPE_MASK;
            d.check(&what, "sysFlag compression bits", m.sys_flag & marks, sys_flag::COMPRESSED | ZLIB_TYPE_BITS);
            d.check(&what, "body length", m.body.len(), 10 * 1024);
        }
    }
    d.assert_none("java -> rust");
}
