//! Producer shutdown: fast, no thread left, unregistered at the brokers.
//! Alone in its binary so that no other test's threads are counted.

mod common;

use std::time::{Duration, Instant};

use common::*;
use rocketmq_blocking::producer::Producer;
use rocketmq_blocking::Message;

#[test]
fn shutdown_is_fast_leaves_no_thread_and_unregisters() {
    let topic = unique("pshut");
    create_topic(&topic, 2);
    let group = unique("pshut_pg");
    let p = Producer::new(producer_config(&group).build().unwrap()).unwrap();
    p.start().unwrap();
    for i in 0..10 {
        p.send(&Message::new(&topic, format!("{i}"))).unwrap();
    }
    let id = p.client_id().to_string();
    for broker in ["broker-a", "broker-b"] {
        wait_for(Duration::from_secs(10), "the producer registered", || {
            producer_connections(broker, &group).contains(&id).then_some(())
        });
    }
    assert!(crate_threads().iter().any(|t| t.starts_with("rocketmq-produc")));
    let t = Instant::now();
    p.shutdown();
    assert!(t.elapsed() < Duration::from_secs(1), "shutdown took {:?}", t.elapsed());
    assert_eq!(crate_threads(), Vec::<String>::new(), "threads left after shutdown");
    for broker in ["broker-a", "broker-b"] {
        assert!(!producer_connections(broker, &group).contains(&id), "{broker} still lists the producer");
    }
    assert!(p.send(&Message::new(&topic, "late")).is_err());
}
