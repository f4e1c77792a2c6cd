//! Any bytes into the frame decoder, and any decoded frame's body and ext
//! fields into the decoders that read them: nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rocketmq_blocking::protocol::header::{PullMessageResponseHeader, SendMessageResponseHeader};
use rocketmq_blocking::protocol::{decode_frame, DEFAULT_MAX_FRAME_SIZE};

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Some((cmd, used))) = decode_frame(rest, DEFAULT_MAX_FRAME_SIZE) {
        let _ = SendMessageResponseHeader::from_ext_fields(&cmd.ext_fields);
        let _ = PullMessageResponseHeader::from_ext_fields(&cmd.ext_fields);
        let _ = rocketmq_blocking::protocol::message::decode_messages(&cmd.body);
        // Re-encoding what was decoded must give a frame that decodes again.
        let again = cmd.encode();
        assert!(matches!(decode_frame(&again, usize::MAX), Ok(Some(_))));
        rest = &rest[used..];
    }
});
