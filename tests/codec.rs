//! Codec tests on frames captured from the real broker and name server
//! (`tests/data/*.bin`, written by `cargo run --example capture_frames`
//! against the harness brokers), and on every kind of malformed input.

use rocketmq_blocking::error::{OperationKind, ResponseContext};
use rocketmq_blocking::protocol::header::{PullMessageResponseHeader, SendMessageResponseHeader};
use rocketmq_blocking::protocol::message::{decode_messages, decode_offset_msg_id, decode_properties};
use rocketmq_blocking::protocol::{
    decode_frame, ClusterInfo, RemotingCommand, ResponseCode, SerializeType, TopicRouteData, DEFAULT_MAX_FRAME_SIZE,
};
use rocketmq_blocking::{Error, ProtocolError};

const ROUTE: &[u8] = include_bytes!("data/namesrv_route_response.bin");
const CLUSTER: &[u8] = include_bytes!("data/namesrv_cluster_info_response.bin");
const SEND: &[u8] = include_bytes!("data/broker_send_response.bin");
const PULL_FOUND: &[u8] = include_bytes!("data/broker_pull_found_response.bin");
const PULL_NOT_FOUND: &[u8] = include_bytes!("data/broker_pull_not_found_response.bin");
const PULL_BINARY: &[u8] = include_bytes!("data/broker_pull_found_binary_response.bin");

fn decode_whole(frame: &[u8]) -> RemotingCommand {
    let (cmd, used) = decode_frame(frame, DEFAULT_MAX_FRAME_SIZE).unwrap().expect("complete frame");
    assert_eq!(used, frame.len());
    assert!(cmd.is_response());
    cmd
}

#[test]
fn captured_route_has_integer_keys_and_parses() {
    let cmd = decode_whole(ROUTE);
    assert_eq!(cmd.opaque, 1);
    assert_eq!(cmd.response_code(), ResponseCode::Success);
    let text = String::from_utf8_lossy(&cmd.body);
    assert!(text.contains("{0:\""), "the name server writes integer keys unquoted: {text}");
    assert!(serde_json::from_slice::<serde_json::Value>(&cmd.body).is_err(), "so the body is not JSON");
    let route = TopicRouteData::from_json(&cmd.body).unwrap();
    let a = route.broker("broker-a").expect("broker-a in route");
    assert!(a.master_addr().unwrap().starts_with("127.0.0.1:"));
    assert_eq!(route.queue_datas[0].read_queue_nums, 1);

    let info = ClusterInfo::from_json(&decode_whole(CLUSTER).body).unwrap();
    assert!(info.cluster_addr_table["DefaultCluster"].contains(&"broker-a".to_string()));
    assert!(info.broker_addr_table.contains_key("broker-b"));
}

#[test]
fn captured_send_response_decodes() {
    let cmd = decode_whole(SEND);
    assert_eq!(cmd.response_code(), ResponseCode::Success);
    assert_eq!(cmd.serialize_type, SerializeType::Json);
    let h = SendMessageResponseHeader::from_ext_fields(&cmd.ext_fields).unwrap();
    assert_eq!(h.queue_id, 0);
    assert_eq!(h.queue_offset, 0);
    let (host, _) = decode_offset_msg_id(&h.msg_id).unwrap();
    assert_eq!(host.ip().to_string(), "127.0.0.1");
}

fn check_pulled(cmd: &RemotingCommand) {
    assert_eq!(cmd.response_code(), ResponseCode::Success);
    let h = PullMessageResponseHeader::from_ext_fields(&cmd.ext_fields).unwrap();
    assert_eq!(h.next_begin_offset, 1);
    let msgs = decode_messages(&cmd.body).unwrap();
    assert_eq!(msgs.len(), 1);
    let m = &msgs[0];
    assert!(m.topic.starts_with("CaptureTopic_"));
    assert_eq!(m.body, "hello ✓".as_bytes());
    assert_eq!(m.tags(), Some("TagA"));
    assert_eq!(m.keys(), vec!["key1", "key2"]);
    assert_eq!(m.property("prop"), Some("värde ✓"));
    assert_eq!(m.msg_id, "7F00000100012A9F0000000000000001");
    assert_eq!(m.born_timestamp, 1_700_000_000_000);
    assert_eq!(m.store_host.ip().to_string(), "127.0.0.1");
    assert_eq!(decode_offset_msg_id(&m.offset_msg_id).unwrap(), (m.store_host, m.commit_log_offset));
}

#[test]
fn captured_pull_responses_decode() {
    let json = decode_whole(PULL_FOUND);
    check_pulled(&json);
    let binary = decode_whole(PULL_BINARY);
    assert_eq!(binary.serialize_type, SerializeType::RocketMq, "broker-b is configured to answer in ROCKETMQ");
    check_pulled(&binary);
    let none = decode_whole(PULL_NOT_FOUND);
    assert_eq!(none.response_code(), ResponseCode::PullNotFound);
    assert!(none.body.is_empty());
}

#[test]
fn every_prefix_of_a_frame_needs_more_bytes() {
    for frame in [ROUTE, SEND, PULL_FOUND, PULL_BINARY] {
        for cut in 0..frame.len() {
            assert_eq!(decode_frame(&frame[..cut], DEFAULT_MAX_FRAME_SIZE).unwrap(), None);
        }
    }
}

fn frame(serialize: u8, header: &[u8], body: &[u8]) -> Vec<u8> {
    let mut out = ((4 + header.len() + body.len()) as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&(((serialize as u32) << 24) | header.len() as u32).to_be_bytes());
    out.extend_from_slice(header);
    out.extend_from_slice(body);
    out
}

#[test]
fn malformed_frames_are_typed_errors() {
    let max = DEFAULT_MAX_FRAME_SIZE;
    // Header length beyond the frame.
    let mut bad = SEND.to_vec();
    bad[5..8].copy_from_slice(&[0xFF, 0xFF, 0xFF]);
    assert!(matches!(decode_frame(&bad, max), Err(ProtocolError::HeaderBeyondFrame { .. })));
    // Bad serialize type.
    let mut bad = SEND.to_vec();
    bad[4] = 7;
    assert_eq!(decode_frame(&bad, max), Err(ProtocolError::UnknownSerializeType(7)));
    // Invalid JSON header.
    assert!(matches!(decode_frame(&frame(0, b"{\"code\":", b""), max), Err(ProtocolError::InvalidJson { .. })));
    assert!(matches!(decode_frame(&frame(0, b"[1,2]", b""), max), Err(ProtocolError::InvalidJson { .. })));
    // Truncated binary header.
    assert!(matches!(decode_frame(&frame(1, &[0, 1, 12], b""), max), Err(ProtocolError::BadHeader(_))));
    // Negative and tiny frame lengths.
    assert_eq!(decode_frame(&(-5i32).to_be_bytes(), max), Err(ProtocolError::BadFrameLength(-5)));
    assert_eq!(decode_frame(&2i32.to_be_bytes(), max), Err(ProtocolError::BadFrameLength(2)));
    // Oversize frame: refused as soon as the length is read.
    assert_eq!(
        decode_frame(&(64 * 1024 * 1024i32).to_be_bytes(), max),
        Err(ProtocolError::FrameTooLarge { len: 64 * 1024 * 1024, max })
    );
    assert!(matches!(decode_frame(PULL_FOUND, 100), Err(ProtocolError::FrameTooLarge { .. })));
}

#[test]
fn unknown_response_code_is_kept_and_mapped() {
    let mut cmd = decode_whole(SEND);
    cmd.code = 4242;
    let back = decode_whole(&cmd.encode());
    assert_eq!(back.response_code(), ResponseCode::Unknown(4242));
    let ctx = ResponseContext { operation: "send", kind: OperationKind::Send, addr: "a:1", topic: "t", queue_id: 0 };
    let err = Error::from_response(back.response_code(), back.remark.as_deref(), ctx);
    assert!(matches!(err, Error::Broker { code: ResponseCode::Unknown(4242), .. }), "{err:?}");
}

#[test]
fn malformed_properties_and_messages_are_typed_errors() {
    assert!(matches!(decode_properties("novalue\u{2}"), Err(ProtocolError::BadProperties(_))));
    let body = decode_whole(PULL_FOUND).body;
    // Truncated message.
    assert!(matches!(decode_messages(&body[..body.len() - 3]), Err(ProtocolError::BadMessage { .. })));
    // Bad magic code.
    let mut bad = body.clone();
    bad[4] ^= 0xFF;
    assert!(matches!(decode_messages(&bad), Err(ProtocolError::BadMessage { reason: "unknown magic code", .. })));
    // Total size larger than the body.
    let mut bad = body.clone();
    bad[0..4].copy_from_slice(&((body.len() + 1) as i32).to_be_bytes());
    assert!(matches!(decode_messages(&bad), Err(ProtocolError::BadMessage { .. })));
    // Body length running past the message.
    let mut bad = body.clone();
    // size, magic, crc, queue id, flag (5 x 4 = 20), queue and commit-log offsets (16), sys flag (4),
    // born time (8), IPv4 born host + port (8), store time (8), store host + port (8),
    // reconsume times (4), prepared offset (8): 84 bytes before the body length.
    let body_len_at = 84;
    bad[body_len_at..body_len_at + 4].copy_from_slice(&i32::MAX.to_be_bytes());
    assert!(matches!(decode_messages(&bad), Err(ProtocolError::BadMessage { .. })));
    // A route body cut short is not JSON.
    let route = decode_whole(ROUTE).body;
    assert!(TopicRouteData::from_json(&route[..route.len() - 1]).is_err());
}

/// A small deterministic fuzz loop over mutations of the captured frames:
/// the decoders must return, never panic. (`cargo test` runs it on every
/// build; it is not a substitute for coverage-guided fuzzing.)
#[test]
fn mutated_frames_never_panic() {
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for base in [ROUTE, CLUSTER, SEND, PULL_FOUND, PULL_NOT_FOUND, PULL_BINARY] {
        for _ in 0..3000 {
            let mut f = base.to_vec();
            for _ in 0..(1 + next() % 4) {
                let i = (next() as usize) % f.len();
                match next() % 3 {
                    0 => f[i] = next() as u8,
                    1 => f.truncate(i.max(1)),
                    _ => f.insert(i, next() as u8),
                }
            }
            if let Ok(Some((cmd, _))) = decode_frame(&f, DEFAULT_MAX_FRAME_SIZE) {
                let _ = decode_messages(&cmd.body);
                let _ = TopicRouteData::from_json(&cmd.body);
                let _ = PullMessageResponseHeader::from_ext_fields(&cmd.ext_fields);
            }
            let body_start = 8.min(f.len());
            let _ = decode_messages(&f[body_start..]);
        }
    }
}
