//! `PopConsumer` against a fake broker (bounds only; the pop semantics are
//! proven on the real brokers in `consumer_pop.rs`): threads do not grow
//! with the brokers assigned, a broker answering every pop at once with
//! nothing or with a broken header is not asked in a loop, and shutdown
//! stays bounded while pops are parked at the broker.

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::crate_threads;
use common::peer::{await_crate_threads_at_most, FakePeer, Reply};
use rocketmq_blocking::consumer::{ConsumeConcurrentlyStatus, ConsumerConfig, PopConsumer};
use rocketmq_blocking::protocol::{request, RemotingCommand, ResponseCode};
use rocketmq_blocking::MessageExt;

/// Crate threads may only be started and stopped by one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const TOPIC: &str = "hostile_pop_topic";

/// What the fake broker answers to a pop.
#[derive(Clone, Copy)]
enum PopAnswer {
    /// Never (a long poll that never returns).
    Park,
    /// At once: POLLING_TIMEOUT.
    Nothing,
    /// At once: SUCCESS with a header missing its fields.
    Broken,
}

/// A fake name server announcing `brokers` names, all at `addr`.
fn namesrv(brokers: usize, addr: String) -> FakePeer {
    let bd: Vec<String> = (0..brokers)
        .map(|i| format!(r#"{{"cluster":"c","brokerName":"b{i}","brokerAddrs":{{0:"{addr}"}}}}"#))
        .collect();
    let qd: Vec<String> = (0..brokers)
        .map(|i| format!(r#"{{"brokerName":"b{i}","readQueueNums":4,"writeQueueNums":4,"perm":6,"topicSysFlag":0}}"#))
        .collect();
    let route = format!(r#"{{"brokerDatas":[{}],"queueDatas":[{}]}}"#, bd.join(","), qd.join(","));
    FakePeer::start(move |req| match req.code {
        request::GET_ROUTEINFO_BY_TOPIC => Reply::ok_body(req, route.clone().into_bytes()),
        _ => Reply::code(req, ResponseCode::SystemError),
    })
}

/// A fake broker that assigns every one of `brokers` broker names in pop mode.
fn broker(brokers: usize, answer: PopAnswer) -> FakePeer {
    let assignments: Vec<String> = (0..brokers)
        .map(|i| format!(r#"{{"messageQueue":{{"topic":"{TOPIC}","brokerName":"b{i}","queueId":-1}},"mode":"POP"}}"#))
        .collect();
    let body = format!(r#"{{"messageQueueAssignments":[{}]}}"#, assignments.join(","));
    FakePeer::start(move |req: &RemotingCommand| match req.code {
        request::QUERY_ASSIGNMENT => Reply::ok_body(req, body.clone().into_bytes()),
        request::POP_MESSAGE => match answer {
            PopAnswer::Park => Reply::Silence,
            PopAnswer::Nothing => Reply::code(req, ResponseCode::PollingTimeout),
            PopAnswer::Broken => Reply::ok_body(req, Vec::new()),
        },
        _ => Reply::code(req, ResponseCode::Success),
    })
}

fn pop_consumer(ns: &FakePeer, group: &str) -> PopConsumer {
    let config = ConsumerConfig::builder()
        .group(group)
        .namesrv_addr(ns.addr())
        .request_timeout(Duration::from_secs(1))
        .pull_error_delay(Duration::from_millis(500))
        .build()
        .unwrap();
    let c = PopConsumer::new(config).unwrap();
    c.subscribe(TOPIC, "*").unwrap();
    c.register_concurrently(|_: &[MessageExt], _: &mut _| ConsumeConcurrentlyStatus::ConsumeSuccess).unwrap();
    c
}

#[test]
fn threads_do_not_grow_with_the_brokers_assigned_and_shutdown_is_bounded() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let brokers = 100;
    let b = broker(brokers, PopAnswer::Park);
    let ns = namesrv(brokers, b.addr());
    let before = crate_threads().len();
    let c = pop_consumer(&ns, "hostile_pop_threads");
    c.start().unwrap();
    assert_eq!(c.assignment().len(), brokers);
    common::wait_for(Duration::from_secs(20), "a pop parked for every broker", || {
        (b.count(request::POP_MESSAGE) >= brokers).then_some(())
    });
    let threads = crate_threads().len() - before;
    let defaults = ConsumerConfig::builder().group("g").namesrv_addr("127.0.0.1:9876").build().unwrap();
    // rebalance + pull threads + consume threads + name server and broker connections.
    let bound = 1 + defaults.pull_threads() + defaults.consume_threads() + 2;
    println!("pop consumer: {brokers} brokers assigned, {threads} crate threads (bound {bound})");
    assert!(threads <= bound, "{threads} threads for {brokers} assigned brokers");
    let t = Instant::now();
    c.shutdown();
    let shutdown = t.elapsed();
    // One request timeout (1 s) for the unregister + 1 s to join, + 10 %.
    assert!(shutdown <= Duration::from_millis(2200), "shutdown took {shutdown:?} with {brokers} parked pops");
    let left = await_crate_threads_at_most(before, Duration::from_secs(2));
    assert!(left.len() <= before, "threads left after shutdown: {left:?}");
}

#[test]
fn a_broker_answering_pops_at_once_is_not_asked_in_a_loop() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    for (answer, what) in [(PopAnswer::Nothing, "nothing at once"), (PopAnswer::Broken, "a broken header")] {
        let b = broker(1, answer);
        let ns = namesrv(1, b.addr());
        let c = pop_consumer(&ns, "hostile_pop_loop");
        c.start().unwrap();
        let t = Instant::now();
        let first = b.count(request::POP_MESSAGE);
        std::thread::sleep(Duration::from_secs(3));
        let pops = b.count(request::POP_MESSAGE) - first;
        let elapsed = t.elapsed();
        c.shutdown();
        println!("{what}: {pops} pops in {elapsed:?}");
        // One pop per second at most (EMPTY_POP_DELAY; errors: 500 ms here), + 1.
        let bound = (elapsed.as_millis() / 500 + 1) as usize;
        assert!(pops <= bound, "{what}: {pops} pops in {elapsed:?} (bound {bound})");
    }
}
