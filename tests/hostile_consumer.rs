//! Consumers against hostile or broken peers (issue 10, items 2, 6, 7): a
//! fake name server announcing thousands of queues or ten silent brokers,
//! and a fake broker that answers every pull at once with OFFSET_MOVED or
//! NOT_FOUND. The real-broker behaviour of the consumers is proven in
//! `consumer_push.rs` / `consumer_lite_pull.rs`; these tests only bound
//! threads, time and CPU.

mod common;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::peer::{await_crate_threads_at_most, FakePeer, Reply};
use common::{crate_threads, wait_for};
use rocketmq_blocking::consumer::{ConsumeConcurrentlyStatus, ConsumerConfig, LitePullConsumer, PushConsumer};
use rocketmq_blocking::protocol::{request, RemotingCommand, ResponseCode};
use rocketmq_blocking::MessageExt;

/// Crate threads may only be started and stopped by one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const CLIENT_ID: &str = "127.0.0.1@hostile";

/// A route of `brokers` (name, address), each with `queues` read and write queues.
fn route_json(brokers: &[(String, String)], queues: i32) -> String {
    let bd: Vec<String> = brokers
        .iter()
        .map(|(n, a)| format!(r#"{{"cluster":"c","brokerName":"{n}","brokerAddrs":{{0:"{a}"}}}}"#))
        .collect();
    let qd: Vec<String> = brokers
        .iter()
        .map(|(n, _)| {
            format!(
                r#"{{"brokerName":"{n}","readQueueNums":{queues},"writeQueueNums":{queues},"perm":6,"topicSysFlag":0}}"#
            )
        })
        .collect();
    format!(r#"{{"brokerDatas":[{}],"queueDatas":[{}]}}"#, bd.join(","), qd.join(","))
}

/// A fake name server answering every route request with `route`.
fn namesrv(route: String) -> FakePeer {
    FakePeer::start(move |req| match req.code {
        request::GET_ROUTEINFO_BY_TOPIC => Reply::ok_body(req, route.clone().into_bytes()),
        _ => Reply::code(req, ResponseCode::SystemError),
    })
}

fn fields(pairs: &[(&str, String)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

/// What the fake broker answers to a pull.
#[derive(Clone, Copy)]
enum PullAnswer {
    /// Never (a long poll that never returns).
    Park,
    /// At once: PULL_OFFSET_MOVED to the same offset.
    OffsetMoved,
    /// At once: PULL_NOT_FOUND with no progress.
    NotFound,
}

/// A fake broker that lets the consumer in (heartbeat, consumer list with
/// only us, offset 0) and answers pulls as told.
fn broker(answer: PullAnswer) -> FakePeer {
    FakePeer::start(move |req: &RemotingCommand| match req.code {
        request::HEART_BEAT | request::UNREGISTER_CLIENT | request::UPDATE_CONSUMER_OFFSET => {
            Reply::code(req, ResponseCode::Success)
        }
        request::GET_CONSUMER_LIST_BY_GROUP => {
            Reply::ok_body(req, format!(r#"{{"consumerIdList":["{CLIENT_ID}"]}}"#).into_bytes())
        }
        request::QUERY_CONSUMER_OFFSET | request::GET_MAX_OFFSET | request::SEARCH_OFFSET_BY_TIMESTAMP => {
            Reply::Respond(
                RemotingCommand::response_to(req, ResponseCode::Success, None)
                    .with_ext_fields(fields(&[("offset", "0".into())])),
            )
        }
        request::PULL_MESSAGE => {
            let offset = req.ext_fields.get("queueOffset").cloned().unwrap_or_else(|| "0".into());
            let code = match answer {
                PullAnswer::Park => return Reply::Silence,
                PullAnswer::OffsetMoved => ResponseCode::PullOffsetMoved,
                PullAnswer::NotFound => ResponseCode::PullNotFound,
            };
            Reply::Respond(RemotingCommand::response_to(req, code, None).with_ext_fields(fields(&[
                ("nextBeginOffset", offset),
                ("minOffset", "0".into()),
                ("maxOffset", "0".into()),
                ("suggestWhichBrokerId", "0".into()),
            ])))
        }
        _ => Reply::code(req, ResponseCode::Success),
    })
}

fn config(ns: &FakePeer, group: &str, timeout: Duration) -> ConsumerConfig {
    ConsumerConfig::builder()
        .group(group)
        .namesrv_addr(ns.addr())
        .client_id(CLIENT_ID)
        .request_timeout(timeout)
        .build()
        .unwrap()
}

fn push(config: ConsumerConfig, topic: &str) -> PushConsumer {
    let c = PushConsumer::new(config).unwrap();
    c.subscribe(topic, "*").unwrap();
    c.register_concurrently(|_: &[MessageExt], _: &mut _| ConsumeConcurrentlyStatus::ConsumeSuccess).unwrap();
    c
}

/// Item 2: the number of threads does not grow with the queues announced.
#[test]
fn threads_do_not_grow_with_the_queues_of_the_route() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let b = broker(PullAnswer::Park);
    // Two broker names on one fake broker, 1,000 queues each: 2,000 queues
    // for the topic and 2,000 more for the group's retry topic.
    let brokers = vec![("b0".to_string(), b.addr()), ("b1".to_string(), b.addr())];
    let ns = namesrv(route_json(&brokers, 1000));
    let before = crate_threads().len();

    let c = push(config(&ns, "hostile_threads", Duration::from_secs(3)), "hostile_topic");
    c.start().unwrap();
    let held = wait_for(Duration::from_secs(20), "4,000 queues assigned", || {
        let n = c.assignment().len();
        (n == 4000).then_some(n)
    });
    wait_for(Duration::from_secs(20), "a pull on every queue", || {
        (b.count(request::PULL_MESSAGE) >= 4000).then_some(())
    });
    let push_threads = crate_threads().len() - before;
    println!("push consumer: {held} queues, {push_threads} crate threads");
    c.shutdown();

    let lite = LitePullConsumer::new(config(&ns, "hostile_threads_lite", Duration::from_secs(3))).unwrap();
    lite.subscribe("hostile_topic", "*").unwrap();
    lite.start().unwrap();
    let lite_held = wait_for(Duration::from_secs(20), "2,000 queues assigned", || {
        let n = lite.assignment().len();
        (n == 2000).then_some(n)
    });
    let lite_threads = crate_threads().len() - before;
    println!("lite pull consumer: {lite_held} queues, {lite_threads} crate threads");
    lite.shutdown();

    let defaults = ConsumerConfig::builder().group("g").namesrv_addr("127.0.0.1:9876").build().unwrap();
    // rebalance + pull threads + consume threads + name server and broker connections.
    let bound = 1 + defaults.pull_threads() + defaults.consume_threads() + 2;
    assert!(push_threads <= bound, "push consumer started {push_threads} threads for 4,000 queues (bound {bound})");
    assert!(lite_threads <= 1 + defaults.pull_threads() + 2, "lite pull consumer started {lite_threads} threads");
    let left = await_crate_threads_at_most(before, Duration::from_secs(2));
    assert!(left.len() <= before, "threads left after shutdown: {left:?}");
}

/// Item 6: start and shutdown do not grow with the number of (silent) brokers.
#[test]
fn start_and_shutdown_are_bounded_with_ten_silent_brokers() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let silent: Vec<FakePeer> = (0..10).map(|_| FakePeer::start(|_| Reply::Silence)).collect();
    let brokers: Vec<(String, String)> = silent.iter().enumerate().map(|(i, p)| (format!("s{i}"), p.addr())).collect();
    let ns = namesrv(route_json(&brokers, 4));
    let timeout = Duration::from_secs(1);
    let before = crate_threads().len();
    let bound = Duration::from_secs(1) + timeout + timeout / 10;

    let c = push(config(&ns, "hostile_silent", timeout), "hostile_silent_topic");
    let t = Instant::now();
    c.start().unwrap();
    let start = t.elapsed();
    // Every broker got the heartbeat (none answers it), then stop.
    wait_for(Duration::from_secs(5), "heartbeats sent", || {
        silent.iter().all(|p| p.count(request::HEART_BEAT) >= 1).then_some(())
    });
    let t = Instant::now();
    c.shutdown();
    let shutdown = t.elapsed();
    println!("push: start {start:?}, shutdown {shutdown:?} with 10 silent brokers");
    assert!(start <= bound, "start took {start:?} (bound {bound:?})");
    assert!(shutdown <= bound, "shutdown took {shutdown:?} (bound {bound:?})");

    let lite = LitePullConsumer::new(config(&ns, "hostile_silent_lite", timeout)).unwrap();
    lite.subscribe("hostile_silent_topic", "*").unwrap();
    let t = Instant::now();
    lite.start().unwrap();
    let start = t.elapsed();
    wait_for(Duration::from_secs(5), "heartbeats sent", || {
        silent.iter().all(|p| p.count(request::HEART_BEAT) >= 2).then_some(())
    });
    let t = Instant::now();
    lite.shutdown();
    let shutdown = t.elapsed();
    println!("lite: start {start:?}, shutdown {shutdown:?} with 10 silent brokers");
    assert!(start <= bound, "lite start took {start:?} (bound {bound:?})");
    assert!(shutdown <= bound, "lite shutdown took {shutdown:?} (bound {bound:?})");
    let left = await_crate_threads_at_most(before, Duration::from_secs(2));
    assert!(left.len() <= before, "threads left after shutdown: {left:?}");
}

/// Pulls per second on one queue whose broker answers at once with `answer`.
fn pull_rate(answer: PullAnswer, lite: bool) -> f64 {
    let b = broker(answer);
    let ns = namesrv(route_json(&[("b0".to_string(), b.addr())], 1));
    let group = if lite { "hostile_hot_lite" } else { "hostile_hot" };
    let cfg = ConsumerConfig::builder()
        .group(group)
        .namesrv_addr(ns.addr())
        .client_id(CLIENT_ID)
        .message_model(rocketmq_blocking::consumer::MessageModel::Broadcasting)
        .offset_store_dir(std::env::temp_dir().join(common::unique("hostile_hot")))
        .build()
        .unwrap();
    let (push_c, lite_c);
    if lite {
        lite_c = Some(LitePullConsumer::new(cfg).unwrap());
        let c = lite_c.as_ref().unwrap();
        c.subscribe("hot", "*").unwrap();
        c.start().unwrap();
        push_c = None;
    } else {
        push_c = Some(push(cfg, "hot"));
        push_c.as_ref().unwrap().start().unwrap();
        lite_c = None;
    }
    // Wait for the first pull, then count over a fixed window.
    wait_for(Duration::from_secs(10), "first pull", || (b.count(request::PULL_MESSAGE) > 0).then_some(()));
    let first = b.count(request::PULL_MESSAGE);
    let window = Duration::from_secs(4);
    std::thread::sleep(window);
    let n = b.count(request::PULL_MESSAGE) - first;
    drop(push_c);
    drop(lite_c);
    n as f64 / window.as_secs_f64()
}

/// Item 7: a broken queue costs about nothing: no re-pull at once on
/// OFFSET_MOVED or an immediate NOT_FOUND (Java waits 3 s).
#[test]
fn a_queue_answering_at_once_is_not_pulled_in_a_hot_loop() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    for (answer, name) in [(PullAnswer::OffsetMoved, "OFFSET_MOVED"), (PullAnswer::NotFound, "NOT_FOUND")] {
        for lite in [false, true] {
            let rate = pull_rate(answer, lite);
            let kind = if lite { "lite pull" } else { "push" };
            println!("{kind}, {name} at once: {rate:.1} pulls/s");
            assert!(rate <= 2.0, "{kind} consumer pulls a queue answering {name} at once {rate:.1} times a second");
        }
    }
}
