//! Any bytes as a pull body, a batch body, a properties string or a message id.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rocketmq_blocking::protocol::message;

fuzz_target!(|data: &[u8]| {
    let _ = message::decode_messages(data);
    let _ = message::decode_batch(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = message::decode_properties(text);
        let _ = message::decode_offset_msg_id(text);
        let _ = message::unique_id_origin(text);
    }
});
