//! Foundation against the real brokers: routes, raw frames through
//! `Connection`, both header serializations, batches and compression.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use rocketmq_blocking::net::{Connection, ConnectionConfig};
use rocketmq_blocking::protocol::header::{
    PullMessageRequestHeader, PullMessageResponseHeader, QueueOffsetRequestHeader, SendMessageRequestHeaderV2,
    SendMessageResponseHeader,
};
use rocketmq_blocking::protocol::message::{self, decode_messages, decode_offset_msg_id, property, sys_flag};
use rocketmq_blocking::protocol::{request, RemotingCommand, ResponseCode, SerializeType};
use rocketmq_blocking::{Message, MessageQueue};

const T: Duration = Duration::from_secs(10);

fn send_cmd(topic: &str, queue_id: i32, body: &[u8], props: &BTreeMap<String, String>) -> RemotingCommand {
    let h = SendMessageRequestHeaderV2 {
        producer_group: "raw_producer".into(),
        topic: topic.into(),
        default_topic: "TBW102".into(),
        default_topic_queue_nums: 4,
        queue_id,
        sys_flag: 0,
        born_timestamp: 1_700_000_000_123,
        flag: 7,
        properties: Some(message::encode_properties(props)),
        reconsume_times: Some(0),
        unit_mode: Some(false),
        max_reconsume_times: None,
        batch: Some(false),
        broker_name: None,
    };
    RemotingCommand::request(request::SEND_MESSAGE_V2).with_ext_fields(h.to_ext_fields()).with_body(body.to_vec())
}

fn pull_cmd(topic: &str, queue_id: i32, offset: i64) -> RemotingCommand {
    let h = PullMessageRequestHeader {
        consumer_group: "raw_consumer".into(),
        topic: topic.into(),
        queue_id,
        queue_offset: offset,
        max_msg_nums: 32,
        sys_flag: 0x4, // SUBSCRIPTION: the expression below, no heartbeat needed
        commit_offset: 0,
        suspend_timeout_millis: 0,
        subscription: Some("*".into()),
        sub_version: 0,
        expression_type: Some("TAG".into()),
        max_msg_bytes: None,
        broker_name: None,
    };
    RemotingCommand::request(request::PULL_MESSAGE).with_ext_fields(h.to_ext_fields())
}

#[test]
fn route_of_created_topic_lists_both_brokers_and_queues() {
    let topic = unique("route");
    create_topic(&topic, 6);
    let route = namesrv().topic_route(&topic).unwrap();
    let mut names: Vec<_> = route.broker_datas.iter().map(|b| b.broker_name.clone()).collect();
    names.sort();
    assert_eq!(names, ["broker-a", "broker-b"]);
    for b in &route.broker_datas {
        let addr = b.master_addr().expect("master address");
        assert!(addr.starts_with("127.0.0.1:"), "brokers must advertise loopback, got {addr}");
        assert_eq!(b.cluster, CLUSTER);
    }
    for q in &route.queue_datas {
        assert_eq!((q.read_queue_nums, q.write_queue_nums, q.perm), (6, 6, 6), "{q:?}");
    }
    let err = namesrv().topic_route(&unique("missing")).unwrap_err();
    assert!(matches!(err, rocketmq_blocking::Error::TopicNotFound { .. }), "{err:?}");
}

#[test]
fn raw_send_and_pull_round_trip_every_field() {
    let topic = unique("raw");
    create_topic_on("broker-a", &topic, 4);
    let addr = broker_addr("broker-a");
    let conn = Connection::connect(&addr, &ConnectionConfig::default()).unwrap();

    let body = "héllo wörld ✓".as_bytes();
    let mut props = BTreeMap::new();
    props.insert(property::TAGS.to_string(), "TagÄ".to_string());
    props.insert(property::KEYS.to_string(), "key-1 ключ".to_string());
    props.insert("user.prop".to_string(), "värde ✓ 值".to_string());
    props.insert(property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX.to_string(), message::new_unique_id());
    let resp = conn.invoke(send_cmd(&topic, 2, body, &props), T).unwrap();
    assert_eq!(resp.response_code(), ResponseCode::Success, "remark {:?}", resp.remark);
    let sent = SendMessageResponseHeader::from_ext_fields(&resp.ext_fields).unwrap();
    assert_eq!(sent.queue_id, 2);
    assert_eq!(sent.queue_offset, 0);

    // The consume queue is built from the commit log asynchronously.
    let resp = wait_for(Duration::from_secs(10), "the message in the consume queue", || {
        let resp = conn.invoke(pull_cmd(&topic, 2, 0), T).unwrap();
        (resp.response_code() != ResponseCode::PullNotFound).then_some(resp)
    });
    assert_eq!(resp.response_code(), ResponseCode::Success, "remark {:?}", resp.remark);
    let h = PullMessageResponseHeader::from_ext_fields(&resp.ext_fields).unwrap();
    assert_eq!(h.next_begin_offset, 1);
    let msgs = decode_messages(&resp.body).unwrap();
    assert_eq!(msgs.len(), 1);
    let m = &msgs[0];
    assert_eq!(m.body, body);
    assert_eq!(m.topic, topic);
    assert_eq!(m.flag, 7);
    assert_eq!(m.queue_id, 2);
    assert_eq!(m.queue_offset, 0);
    assert_eq!(m.born_timestamp, 1_700_000_000_123);
    assert_eq!(m.tags(), Some("TagÄ"));
    assert_eq!(m.keys(), vec!["key-1", "ключ"]);
    assert_eq!(m.property("user.prop"), Some("värde ✓ 值"));
    assert_eq!(m.msg_id, props[property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX]);
    let store: SocketAddr = addr.parse().unwrap();
    assert_eq!(m.store_host, store);
    assert_eq!(m.born_host.ip(), store.ip());
    assert!(m.store_timestamp > 1_700_000_000_123);
    assert_eq!(m.offset_msg_id, sent.msg_id);
    let (host, offset) = decode_offset_msg_id(&sent.msg_id).unwrap();
    assert_eq!(host, store);
    assert_eq!(offset, m.commit_log_offset);
}

#[test]
fn oneway_send_is_stored() {
    let topic = unique("oneway");
    create_topic_on("broker-a", &topic, 1);
    let conn = Connection::connect(&broker_addr("broker-a"), &ConnectionConfig::default()).unwrap();
    let mut props = BTreeMap::new();
    props.insert(property::KEYS.to_string(), "oneway-key".to_string());
    conn.invoke_oneway(send_cmd(&topic, 0, b"fire and forget", &props)).unwrap();
    let client = client("broker-a");
    let got = pull_n(&client, &MessageQueue::new(&topic, "broker-a", 0), 0, 1);
    assert_eq!(got[0].body, b"fire and forget");
    assert_eq!(got[0].keys(), vec!["oneway-key"]);
}

/// A request with the ROCKETMQ binary header is understood by both brokers.
/// 5.x brokers answer in their own serialization: broker-a in JSON (the
/// default), broker-b, started with `-Drocketmq.serialize.type=ROCKETMQ`, in
/// the binary header; 4.x brokers answer in the request's serialization.
#[test]
fn rocketmq_serialize_type_request_gets_decodable_response() {
    let a_answer = if brokers_are_4x() { SerializeType::RocketMq } else { SerializeType::Json };
    for (broker, answer) in [("broker-a", a_answer), ("broker-b", SerializeType::RocketMq)] {
        let topic = unique("binhdr");
        create_topic_on(broker, &topic, 1);
        let config = ConnectionConfig { serialize_type: SerializeType::RocketMq, ..ConnectionConfig::default() };
        let conn = Connection::connect(&broker_addr(broker), &config).unwrap();
        let mut props = BTreeMap::new();
        props.insert(property::TAGS.to_string(), "bin".to_string());
        props.insert("ключ".to_string(), "значение".to_string());
        let resp = conn.invoke(send_cmd(&topic, 0, b"binary header", &props), T).unwrap();
        assert_eq!(resp.response_code(), ResponseCode::Success, "remark {:?}", resp.remark);
        assert_eq!(resp.serialize_type, answer, "{broker}");
        let sent = SendMessageResponseHeader::from_ext_fields(&resp.ext_fields).unwrap();
        assert_eq!(sent.queue_offset, 0);
        let resp = wait_for(Duration::from_secs(10), "the message in the consume queue", || {
            let resp = conn.invoke(pull_cmd(&topic, 0, 0), T).unwrap();
            (resp.response_code() == ResponseCode::Success).then_some(resp)
        });
        assert_eq!(resp.serialize_type, answer, "{broker}");
        let msgs = decode_messages(&resp.body).unwrap();
        assert_eq!(msgs[0].body, b"binary header");
        assert_eq!(msgs[0].property("ключ"), Some("значение"));
        let h = QueueOffsetRequestHeader { topic: topic.clone(), queue_id: 0, broker_name: None };
        let cmd = RemotingCommand::request(request::GET_MAX_OFFSET).with_ext_fields(h.to_ext_fields());
        assert_eq!(conn.invoke(cmd, T).unwrap().ext_fields.get("offset").map(String::as_str), Some("1"));
    }
}

#[test]
fn batch_of_100_is_stored_in_order() {
    let topic = unique("batch");
    create_topic_on("broker-a", &topic, 2);
    let client = client("broker-a");
    let queue = MessageQueue::new(&topic, "broker-a", 1);
    let msgs: Vec<Message> =
        (0..100).map(|i| Message::new(&topic, format!("batch-{i}")).with_keys([format!("k{i}")])).collect();
    let sent = client.send_batch("batch_producer", &queue, &msgs).unwrap();
    assert_eq!(sent.queue_offset, 0);
    assert_eq!(sent.msg_id.split(',').count(), 100);
    let got = pull_n(&client, &queue, 0, 100);
    assert_eq!(got.len(), 100);
    for (i, m) in got.iter().enumerate() {
        assert_eq!(m.body, format!("batch-{i}").as_bytes());
        assert_eq!(m.queue_offset, i as i64);
        assert_eq!(m.keys(), vec![format!("k{i}")]);
    }
    let ids: Vec<&str> = sent.msg_id.split(',').collect();
    assert_eq!(got.iter().map(|m| m.msg_id.as_str()).collect::<Vec<_>>(), ids);
}

#[cfg(feature = "compression")]
#[test]
fn body_over_4k_round_trips_compressed() {
    let topic = unique("zlib");
    create_topic_on("broker-a", &topic, 1);
    let client = client("broker-a");
    let queue = MessageQueue::new(&topic, "broker-a", 0);
    let body: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    client.send("zlib_producer", &queue, &Message::new(&topic, body.clone())).unwrap();
    let got = pull_n(&client, &queue, 0, 1);
    assert_ne!(got[0].sys_flag & sys_flag::COMPRESSED, 0, "stored compressed");
    assert!(got[0].store_size < 20_000, "stored size {} shows the body was compressed", got[0].store_size);
    assert_eq!(got[0].body, body);
}

/// Java and Go compress a body of exactly `compressMsgBodyOverHowmuch`
/// (4096) bytes; so do we, and one byte less is sent as is.
#[cfg(feature = "compression")]
#[test]
fn body_of_exactly_4k_is_compressed_like_java() {
    let topic = unique("zlib4k");
    create_topic_on("broker-a", &topic, 1);
    let client = client("broker-a");
    let queue = MessageQueue::new(&topic, "broker-a", 0);
    let at: Vec<u8> = (0..4096u32).map(|i| b'a' + (i % 26) as u8).collect();
    let below = at[..4095].to_vec();
    client.send("zlib_producer", &queue, &Message::new(&topic, at.clone())).unwrap();
    client.send("zlib_producer", &queue, &Message::new(&topic, below.clone())).unwrap();
    let got = pull_n(&client, &queue, 0, 2);
    assert_ne!(got[0].sys_flag & sys_flag::COMPRESSED, 0, "4096 bytes stored compressed");
    assert_eq!(got[0].body, at);
    assert_eq!(got[1].sys_flag & sys_flag::COMPRESSED, 0, "4095 bytes stored as is");
    assert_eq!(got[1].body, below);
}

#[test]
fn name_server_list_skips_a_dead_address_and_remembers_the_live_one() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let live = namesrv_addr();
    let ns = rocketmq_blocking::NameServerClient::new(&format!("{dead};{live}")).unwrap();
    assert_eq!(ns.addresses(), [dead.clone(), live.clone()]);
    let info = ns.cluster_info().unwrap();
    assert!(info.broker_addr_table.contains_key("broker-a"));
    assert_eq!(ns.active_address(), live, "the address that answered is remembered");
    ns.topic_route("TBW102").unwrap();
    assert_eq!(ns.active_address(), live);
    let err = rocketmq_blocking::NameServerClient::new(&dead).unwrap().cluster_info().unwrap_err();
    assert!(err.is_connection(), "{err:?}");
}
