//! The consumer's stored-message decoding with compressed bodies: any bytes
//! as a pull body under small inflation limits, and any bytes as the body
//! of a message marked compressed (raw, as a broken zlib stream, and
//! deflated, as a valid one). Nothing may panic; a valid stream inflates to
//! exactly its input when that fits the limits and fails with
//! `InflateLimit` when it does not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rocketmq_blocking::protocol::message::{decode_messages_limited, encode_stored_message, sys_flag};
use rocketmq_blocking::{MessageExt, ProtocolError};

fn stored(body: Vec<u8>, flag: i32) -> Vec<u8> {
    encode_stored_message(&MessageExt {
        topic: "T".into(),
        body,
        flag: 0,
        properties: Default::default(),
        store_size: 0,
        body_crc: 0,
        queue_id: 0,
        queue_offset: 0,
        commit_log_offset: 0,
        sys_flag: flag,
        born_timestamp: 0,
        born_host: "127.0.0.1:1".parse().unwrap(),
        store_timestamp: 0,
        store_host: "127.0.0.1:2".parse().unwrap(),
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        msg_id: String::new(),
        offset_msg_id: String::new(),
    })
}

/// A valid zlib stream of `data` in stored (uncompressed) deflate blocks:
/// cheap to build, so the fuzzer spends its time in the decoder.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let mut chunks = data.chunks(0xFFFF).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xFF, 0xFF]);
    }
    while let Some(c) = chunks.next() {
        out.push(u8::from(chunks.peek().is_none()));
        let len = c.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(c);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a = (a + u32::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let per_message = usize::from(data[0]) * 64;
    let per_response = usize::from(data[1]) * 128;
    let rest = &data[2..];
    // Any bytes as a whole pull body.
    let _ = decode_messages_limited(rest, per_message, per_response);
    // Any bytes as a compressed body (zlib, and the 5.x type bits).
    for kind in [0, 3 << 8, 1 << 8] {
        let _ = decode_messages_limited(&stored(rest.to_vec(), sys_flag::COMPRESSED | kind), per_message, per_response);
    }
    // A valid stream, twice in one response: inflates exactly, or hits a limit.
    {
        let one = stored(zlib_stored(rest), sys_flag::COMPRESSED);
        let body = [one.clone(), one].concat();
        match decode_messages_limited(&body, per_message, per_response) {
            Ok(msgs) => {
                assert!(rest.len() <= per_message && 2 * rest.len() <= per_response);
                assert_eq!(msgs.len(), 2);
                assert!(msgs.iter().all(|m| m.body == rest));
            }
            Err(ProtocolError::InflateLimit { scope: "message", limit }) => {
                assert_eq!(limit, per_message);
                assert!(rest.len() > per_message);
            }
            Err(ProtocolError::InflateLimit { scope: "response", limit }) => {
                assert_eq!(limit, per_response);
                assert!(2 * rest.len() > per_response);
            }
            Err(e) => panic!("a valid stream failed: {e}"),
        }
    }
});
