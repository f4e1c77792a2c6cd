//! Captures response frames from the real name server and broker into
//! `tests/data/`, byte for byte as they came off the socket, for the codec
//! tests in `tests/codec.rs`.
//!
//! ```text
//! eval "$(tests/broker/rocketmq.sh start)"
//! cargo run --example capture_frames
//! ```
//! Requests are encoded with this crate's codec and written to a plain
//! `TcpStream`; each response is read as raw bytes (4-byte length, then
//! that many bytes) and saved without being decoded.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use rocketmq_blocking::protocol::header::{PullMessageRequestHeader, SendMessageRequestHeaderV2};
use rocketmq_blocking::protocol::message::{encode_properties, property};
use rocketmq_blocking::protocol::{request, RemotingCommand, SerializeType};
use rocketmq_blocking::{NameServerClient, TopicConfig};

fn exchange(addr: &str, mut cmd: RemotingCommand, opaque: i32) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    cmd.opaque = opaque;
    s.write_all(&cmd.encode()).unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut rest = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut rest).unwrap();
    let mut frame = len.to_vec();
    frame.extend(rest);
    frame
}

fn save(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).unwrap();
    println!("saved tests/data/{name} ({} bytes)", bytes.len());
}

fn send(topic: &str, body: &[u8], props: &BTreeMap<String, String>, sys_flag: i32) -> RemotingCommand {
    let h = SendMessageRequestHeaderV2 {
        producer_group: "capture_pg".into(),
        topic: topic.into(),
        default_topic: "TBW102".into(),
        default_topic_queue_nums: 4,
        queue_id: 0,
        sys_flag,
        born_timestamp: 1_700_000_000_000,
        flag: 0,
        properties: Some(encode_properties(props)),
        reconsume_times: Some(0),
        unit_mode: Some(false),
        max_reconsume_times: None,
        batch: Some(false),
        broker_name: None,
    };
    RemotingCommand::request(request::SEND_MESSAGE_V2).with_ext_fields(h.to_ext_fields()).with_body(body.to_vec())
}

fn main() {
    let ns_addr = std::env::var("ROCKETMQ_NAMESRV_ADDR").unwrap_or_else(|_| "127.0.0.1:19876".into());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    std::fs::create_dir_all(&dir).unwrap();
    let ns = NameServerClient::new(&ns_addr).unwrap();
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    let topic = &format!("CaptureTopic_{ms}");
    let info = ns.cluster_info().unwrap();
    let broker = info.broker_addr_table["broker-a"].master_addr().unwrap().to_string();
    ns.create_topic_on_broker(&broker, &TopicConfig::new(topic).queues(1)).unwrap();

    // Route with integer map keys, and cluster info.
    let mut route = RemotingCommand::request(request::GET_ROUTEINFO_BY_TOPIC);
    route.ext_fields.insert("topic".into(), topic.into());
    let mut frame = exchange(&ns_addr, route.clone(), 1);
    for _ in 0..100 {
        if String::from_utf8_lossy(&frame).contains("queueDatas") {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        frame = exchange(&ns_addr, route.clone(), 1);
    }
    save(&dir, "namesrv_route_response.bin", &frame);
    save(
        &dir,
        "namesrv_cluster_info_response.bin",
        &exchange(&ns_addr, RemotingCommand::request(request::GET_BROKER_CLUSTER_INFO), 2),
    );

    // A send with non-ASCII properties, and a pull of it.
    let mut props = BTreeMap::new();
    props.insert(property::TAGS.to_string(), "TagA".to_string());
    props.insert(property::KEYS.to_string(), "key1 key2".to_string());
    props.insert(property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX.to_string(), "7F00000100012A9F0000000000000001".to_string());
    props.insert("prop".to_string(), "värde ✓".to_string());
    save(&dir, "broker_send_response.bin", &exchange(&broker, send(topic, "hello ✓".as_bytes(), &props, 0), 3));
    let pull = |offset: i64| {
        let h = PullMessageRequestHeader {
            consumer_group: "capture_cg".into(),
            topic: topic.into(),
            queue_id: 0,
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
    };
    save(&dir, "broker_pull_found_response.bin", &exchange(&broker, pull(0), 4));
    save(&dir, "broker_pull_not_found_response.bin", &exchange(&broker, pull(1), 5));

    // broker-b runs with -Drocketmq.serialize.type=ROCKETMQ: its answer has the binary header.
    let broker_b = info.broker_addr_table["broker-b"].master_addr().unwrap().to_string();
    ns.create_topic_on_broker(&broker_b, &TopicConfig::new(topic).queues(1)).unwrap();
    let mut bin = send(topic, "hello ✓".as_bytes(), &props, 0);
    bin.serialize_type = SerializeType::RocketMq;
    exchange(&broker_b, bin, 6);
    let mut bin = pull(0);
    bin.serialize_type = SerializeType::RocketMq;
    save(&dir, "broker_pull_found_binary_response.bin", &exchange(&broker_b, bin, 7));
}
