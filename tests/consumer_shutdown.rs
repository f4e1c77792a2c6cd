//! `shutdown` of every consumer kind: within a second when idle, no crate
//! thread left, and no message handed to the listener once it began.
//! One test in its own binary, so the thread list is this test's alone.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use rocketmq_blocking::consumer::{
    ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus, ConsumeFromWhere, ConsumeOrderlyContext,
    ConsumeOrderlyStatus, LitePullConsumer, PushConsumer,
};
use rocketmq_blocking::{Message, MessageExt, MessageQueue};

fn assert_quick_clean_shutdown(what: &str, shutdown: impl FnOnce()) {
    let t = Instant::now();
    shutdown();
    let took = t.elapsed();
    assert!(took < Duration::from_secs(1), "{what}: shutdown took {took:?}");
    let left = crate_threads();
    assert!(left.is_empty(), "{what}: threads left after shutdown: {left:?}");
    println!("{what}: shutdown in {took:?}");
}

#[test]
fn shutdown_is_quick_leaves_no_thread_and_starts_no_listener_call() {
    let topic = unique("shutdown");
    create_topic(&topic, 4);
    let queues = topic_queues(&topic);

    // Concurrent push consumer, idle: its pulls are parked at the brokers.
    let push = PushConsumer::new(consumer_config(&unique("shutdown_push")).build().unwrap()).unwrap();
    push.subscribe(&topic, "*").unwrap();
    push.register_concurrently(|_: &[MessageExt], _: &mut ConsumeConcurrentlyContext| {
        ConsumeConcurrentlyStatus::ConsumeSuccess
    })
    .unwrap();
    push.start().unwrap();
    wait_for(Duration::from_secs(30), "the push consumer to hold 8 queues", || {
        (push.assignment().iter().filter(|q| q.topic == topic).count() == 8).then_some(())
    });
    assert!(crate_threads().iter().any(|t| t.starts_with("rocketmq-consum")), "{:?}", crate_threads());
    assert_quick_clean_shutdown("push concurrently", || push.shutdown());
    drop(push);

    // Orderly push consumer, holding broker locks.
    let orderly = PushConsumer::new(consumer_config(&unique("shutdown_orderly")).build().unwrap()).unwrap();
    orderly.subscribe(&topic, "*").unwrap();
    orderly.register_orderly(|_: &[MessageExt], _: &mut ConsumeOrderlyContext| ConsumeOrderlyStatus::Success).unwrap();
    orderly.start().unwrap();
    wait_for(Duration::from_secs(30), "the orderly consumer to hold 8 queues", || {
        (orderly.assignment().iter().filter(|q| q.topic == topic).count() == 8).then_some(())
    });
    assert_quick_clean_shutdown("push orderly", || orderly.shutdown());
    drop(orderly);

    // Lite pull consumer.
    let lite = LitePullConsumer::new(consumer_config(&unique("shutdown_lite")).build().unwrap()).unwrap();
    lite.subscribe(&topic, "*").unwrap();
    lite.start().unwrap();
    wait_for(Duration::from_secs(30), "the lite consumer to hold 8 queues", || {
        (lite.assignment().len() == 8).then_some(())
    });
    assert!(lite.poll(Duration::from_millis(200)).unwrap().is_empty());
    assert_quick_clean_shutdown("lite pull", || lite.shutdown());
    drop(lite);

    // A listener call running when shutdown begins is waited for; no call starts after.
    let q: MessageQueue = queues.iter().find(|q| q.broker_name == "broker-a").unwrap().clone();
    let c = client("broker-a");
    let msgs: Vec<Message> = (0..100).map(|i| Message::new(&topic, format!("m{i}"))).collect();
    send_in_batches(&c, &q, &msgs);
    drop(c); // the test's own connection
    let calls = Arc::new(AtomicUsize::new(0));
    let in_listener = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicBool::new(false));
    let started_after: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let busy = PushConsumer::new(
        consumer_config(&unique("shutdown_busy"))
            .consume_from_where(ConsumeFromWhere::FirstOffset)
            .consume_threads(1)
            .build()
            .unwrap(),
    )
    .unwrap();
    busy.subscribe(&topic, "*").unwrap();
    let (n, inside, log) = (Arc::clone(&calls), Arc::clone(&in_listener), Arc::clone(&started_after));
    let done = Arc::clone(&finished);
    busy.register_concurrently(move |_: &[MessageExt], _: &mut ConsumeConcurrentlyContext| {
        log.lock().unwrap().push(Instant::now());
        if n.fetch_add(1, Ordering::SeqCst) == 10 {
            inside.store(true, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(1500));
            done.store(true, Ordering::SeqCst);
        }
        ConsumeConcurrentlyStatus::ConsumeSuccess
    })
    .unwrap();
    busy.start().unwrap();
    wait_for(Duration::from_secs(30), "the slow listener call", || in_listener.load(Ordering::SeqCst).then_some(()));
    let began = Instant::now();
    busy.shutdown();
    let took = began.elapsed();
    assert!(took < Duration::from_millis(1500) + Duration::from_secs(1), "waited {took:?} for the running call");
    assert!(finished.load(Ordering::SeqCst), "shutdown returned before the running listener call ended");
    let late = started_after.lock().unwrap().iter().filter(|t| **t > began).count();
    assert_eq!(late, 0, "no listener call starts after shutdown began");
    let left = crate_threads();
    assert!(left.is_empty(), "threads left: {left:?}");
}
