//! The `log` feature: background work shows up through the `log` facade.
#![cfg(feature = "log")]

mod common;

use std::sync::Mutex;
use std::time::Duration;

use common::*;
use rocketmq_blocking::consumer::{ConsumeConcurrentlyStatus, PushConsumer};
use rocketmq_blocking::MessageExt;

static RECORDS: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        if record.target() == "rocketmq_blocking" {
            RECORDS.lock().unwrap().push(format!("{} {}", record.level(), record.args()));
        }
    }
    fn flush(&self) {}
}

#[test]
fn a_rebalance_and_a_failed_route_are_logged() {
    static LOGGER: Capture = Capture;
    log::set_logger(&LOGGER).unwrap();
    log::set_max_level(log::LevelFilter::Debug);
    let topic = unique("log_topic");
    let group = unique("log_group");
    create_topic(&topic, 2);
    let consumer = PushConsumer::new(consumer_config(&group).build().unwrap()).unwrap();
    consumer.subscribe(&topic, "*").unwrap();
    // A topic the name server does not know: its route refresh fails.
    consumer.subscribe(&unique("log_missing"), "*").unwrap();
    consumer.register_concurrently(|_: &[MessageExt], _: &mut _| ConsumeConcurrentlyStatus::ConsumeSuccess).unwrap();
    consumer.start().unwrap();
    let find = |needle: String| move || RECORDS.lock().unwrap().iter().find(|r| r.contains(&needle)).cloned();
    let rebalance = wait_for(Duration::from_secs(30), "rebalance record", find(format!("topic={topic} held=0 now=4")));
    assert!(rebalance.starts_with("INFO rebalance: group="), "{rebalance}");
    let route = wait_for(Duration::from_secs(30), "route failure record", find("route refresh failed".into()));
    assert!(route.starts_with("WARN") && route.contains("log_missing"), "{route}");
    consumer.shutdown();
}
