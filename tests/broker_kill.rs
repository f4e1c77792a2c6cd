//! A request waiting on a broker that dies wakes at once with a
//! connection error. Kept in its own test binary: it kills broker-b.

mod common;

use std::time::{Duration, Instant};

use common::*;
use rocketmq_blocking::broker::PullRequest;
use rocketmq_blocking::{Error, MessageQueue};

#[test]
fn killing_the_broker_wakes_a_waiting_request() {
    let topic = unique("kill");
    create_topic_on("broker-b", &topic, 1);
    let client = client("broker-b");
    let queue = MessageQueue::new(&topic, "broker-b", 0);
    let _restart = RestartOnDrop("broker-b");

    // A long-poll pull on an empty queue: the broker holds it for 20 s.
    let waiter = std::thread::spawn(move || {
        let mut req = PullRequest::new("kill_group", queue, 0);
        req.suspend = Some(Duration::from_secs(20));
        let started = Instant::now();
        (client.pull(&req), started.elapsed(), client.is_connected())
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(!waiter.is_finished(), "the long poll should still be waiting");
    let killed_at = Instant::now();
    harness(&["stop-broker", "broker-b"]);
    let (result, _, connected) = waiter.join().unwrap();
    let woke_after = killed_at.elapsed();
    assert!(matches!(result, Err(Error::ConnectionClosed { .. })), "{result:?}");
    assert!(woke_after < Duration::from_secs(5), "woke {woke_after:?} after the kill; the timeout was 30 s");
    assert!(!connected, "the connection reports itself closed");
}
