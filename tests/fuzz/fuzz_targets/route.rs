//! Any bytes as a name server route or cluster-info body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rocketmq_blocking::protocol::{ClusterInfo, TopicRouteData};

fuzz_target!(|data: &[u8]| {
    let _ = TopicRouteData::from_json(data);
    let _ = ClusterInfo::from_json(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = rocketmq_blocking::protocol::route::quote_integer_keys(text);
    }
});
