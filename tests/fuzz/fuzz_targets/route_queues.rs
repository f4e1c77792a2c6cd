//! Route → publish info → queue allocation: any bytes as a route (JSON from
//! the name server, and numbers read straight from the bytes), checked
//! against route limits, then the producer's queue list and every consumer
//! allocation strategy built from what passed. Nothing may panic, the
//! queue lists stay within the limits, and the strategies hand every
//! readable queue to exactly one consumer.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use rocketmq_blocking::consumer::AllocateStrategy;
use rocketmq_blocking::producer::TopicPublishInfo;
use rocketmq_blocking::protocol::route::{BrokerData, QueueData, RouteLimits, TopicRouteData};
use rocketmq_blocking::MessageQueue;

fn i32_at(data: &[u8], i: usize) -> i32 {
    let mut b = [0u8; 4];
    for (k, slot) in b.iter_mut().enumerate() {
        *slot = data.get(i + k).copied().unwrap_or(0);
    }
    i32::from_be_bytes(b)
}

/// A route of up to 6 brokers whose numbers come from the bytes.
fn route_from_numbers(data: &[u8]) -> TopicRouteData {
    let brokers = usize::from(data.first().copied().unwrap_or(0) % 6);
    let mut route = TopicRouteData::default();
    for i in 0..brokers {
        let at = 1 + i * 12;
        let name = format!("b{}", data.get(at).copied().unwrap_or(0) % 8);
        route.queue_datas.push(QueueData {
            broker_name: name.clone(),
            write_queue_nums: i32_at(data, at + 1),
            read_queue_nums: i32_at(data, at + 5),
            perm: i32_at(data, at + 9) & 7,
            topic_sys_flag: 0,
        });
        if data.get(at + 11).copied().unwrap_or(0) & 1 == 0 {
            let addrs = BTreeMap::from([(0, format!("127.0.0.{i}:10911"))]);
            route.broker_datas.push(BrokerData { cluster: "C".into(), broker_name: name, broker_addrs: addrs });
        }
    }
    route
}

fn exercise(route: TopicRouteData, limits: RouteLimits, consumers: usize) {
    if limits.check("T", &route).is_err() {
        return;
    }
    let max_queues = route.queue_datas.len() * limits.max_queues_per_broker() as usize;
    // The producer's writable queues.
    let info = TopicPublishInfo::new("T", route.clone());
    assert!(info.queues.len() <= max_queues);
    // The consumer's readable queues, as the consumer lists them.
    let mut queues: Vec<MessageQueue> = route
        .queue_datas
        .iter()
        .filter(|q| q.is_readable())
        .flat_map(|q| (0..q.read_queue_nums).map(move |id| MessageQueue::new("T", q.broker_name.clone(), id)))
        .collect();
    assert!(queues.len() <= max_queues);
    queues.sort();
    queues.dedup();
    let ids: Vec<String> = (0..consumers).map(|i| format!("127.0.0.1@{i}")).collect();
    for strategy in
        [AllocateStrategy::Averagely, AllocateStrategy::AveragelyByCircle, AllocateStrategy::ConsistentHash { virtual_nodes: 3 }]
    {
        let mut all: Vec<MessageQueue> = ids.iter().flat_map(|id| strategy.allocate(id, &queues, &ids)).collect();
        all.sort();
        if ids.is_empty() {
            assert!(all.is_empty());
        } else {
            assert_eq!(all, queues, "{}", strategy.name());
        }
    }
    assert!(strategy_for_stranger(&queues, &ids).is_empty());
}

fn strategy_for_stranger(queues: &[MessageQueue], ids: &[String]) -> Vec<MessageQueue> {
    AllocateStrategy::Averagely.allocate("not-a-member", queues, ids)
}

fuzz_target!(|data: &[u8]| {
    let small = RouteLimits::default().with_max_queues_per_broker(16).with_max_brokers(4);
    let consumers = usize::from(data.last().copied().unwrap_or(0) % 6);
    exercise(route_from_numbers(data), small, consumers);
    if let Ok(route) = TopicRouteData::from_json(data) {
        let _ = RouteLimits::default().check("T", &route);
        exercise(route, small, consumers);
    }
});
