//! The producer against the real brokers: routing, ordering, refresh,
//! delays, batches, transactions and async sends, each read back.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use rocketmq_blocking::producer::{
    split_batch, LocalTransactionState, Producer, RoutingStrategy, SelectByHash, TransactionProducer,
};
use rocketmq_blocking::{Error, Message, MessageExt, MessageQueue};

fn started(group: &str) -> Producer {
    let p = Producer::new(producer_config(group).build().unwrap()).unwrap();
    p.start().unwrap();
    p
}

#[test]
fn round_robin_spreads_800_sends_over_16_queues() {
    let topic = unique("rr");
    create_topic(&topic, 8);
    // Latency awareness off: one slow send on a loaded machine would pause a
    // broker for 30 s and skew the counts; evenness is about the counter.
    let config = producer_config(&unique("rr_pg")).latency_aware(false).build().unwrap();
    let p = Producer::new(config).unwrap();
    p.start().unwrap();
    let mut counts: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for i in 0..800 {
        let r = p.send(&Message::new(&topic, format!("m{i}"))).unwrap();
        *counts.entry((r.queue.broker_name.clone(), r.queue.queue_id)).or_default() += 1;
    }
    assert_eq!(counts.len(), 16, "{counts:?}");
    for ((broker, qid), n) in &counts {
        assert!((49..=51).contains(n), "{broker}/{qid} got {n}");
        let max = client(broker).max_offset(&MessageQueue::new(&topic, broker.clone(), *qid)).unwrap();
        assert_eq!(max, *n, "the broker stored what the producer counted on {broker}/{qid}");
    }
    assert_eq!(p.stats().per_strategy[&RoutingStrategy::RoundRobin], 800);
}

/// Run as a child process by `message_hash_is_stable_across_processes`.
#[test]
fn hash_child() {
    let Ok(topic) = std::env::var("PRODUCER_HASH_CHILD_TOPIC") else { return };
    let p = started(&unique("hash_child_pg"));
    for key in ["alpha", "beta", "gamma", "delta"] {
        let r =
            p.send_with_strategy(&Message::new(&topic, key).with_keys([key]), RoutingStrategy::MessageHash).unwrap();
        println!("HASHED {key} {} {}", r.queue.broker_name, r.queue.queue_id);
    }
}

#[test]
fn message_hash_is_stable_across_processes() {
    let topic = unique("hash");
    create_topic(&topic, 8);
    let p = started(&unique("hash_pg"));
    let mut here: HashMap<String, (String, i32)> = HashMap::new();
    for i in 0..100 {
        let key = ["alpha", "beta", "gamma", "delta"][i % 4];
        let r =
            p.send_with_strategy(&Message::new(&topic, key).with_keys([key]), RoutingStrategy::MessageHash).unwrap();
        let q = (r.queue.broker_name.clone(), r.queue.queue_id);
        assert_eq!(here.entry(key.to_string()).or_insert_with(|| q.clone()), &q, "key {key} changed queue");
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "hash_child", "--nocapture", "--test-threads=1"])
        .env("PRODUCER_HASH_CHILD_TOPIC", &topic)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed: {stdout} {}", String::from_utf8_lossy(&out.stderr));
    let mut seen = 0;
    for line in stdout.lines().filter_map(|l| l.find("HASHED ").map(|i| &l[i + 7..])) {
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(here[f[0]], (f[1].to_string(), f[2].parse().unwrap()), "key {} in the second process", f[0]);
        seen += 1;
    }
    assert_eq!(seen, 4, "{stdout}");
}

#[test]
fn selector_orderly_send_is_pulled_back_in_order() {
    let topic = unique("orderly");
    create_topic(&topic, 4);
    let p = started(&unique("orderly_pg"));
    let mut queue = None;
    for i in 0..1000 {
        let r = p.send_with_selector(&Message::new(&topic, format!("{i}")), &SelectByHash, "customer-7").unwrap();
        assert_eq!(queue.get_or_insert_with(|| r.queue.clone()), &r.queue);
    }
    let queue = queue.unwrap();
    let got = pull_n(&client(&queue.broker_name), &queue, 0, 1000);
    let bodies: Vec<String> = got.iter().map(|m| String::from_utf8(m.body.clone()).unwrap()).collect();
    assert_eq!(bodies, (0..1000).map(|i| i.to_string()).collect::<Vec<_>>());
    // A selector's index out of range is a typed error.
    let err = p
        .send_with_selector(&Message::new(&topic, "x"), &|_: &[MessageQueue], _: &Message, _: &()| 99, &())
        .unwrap_err();
    assert!(matches!(err, Error::QueueNotAvailable { .. }), "{err:?}");
}

#[test]
fn route_refresh_picks_up_a_topic_created_on_broker_b_later() {
    let topic = unique("refresh");
    create_topic_on("broker-a", &topic, 2);
    let p = started(&unique("refresh_pg"));
    let first = p.send(&Message::new(&topic, "before")).unwrap();
    assert_eq!(first.queue.broker_name, "broker-a");
    create_topic_on("broker-b", &topic, 2);
    // Refresh interval 500 ms: a few sends later broker-b takes messages.
    let on_b = wait_for(Duration::from_secs(10), "a send to broker-b", || {
        let r = p.send(&Message::new(&topic, "after")).unwrap();
        (r.queue.broker_name == "broker-b").then_some(r)
    });
    let got = pull_n(&client("broker-b"), &on_b.queue, on_b.queue_offset, 1);
    assert_eq!(got[0].msg_id, on_b.msg_id);
}

fn first_visible(topic: &str, broker: &str, queue_id: i32) -> (MessageExt, Instant) {
    let q = MessageQueue::new(topic, broker, queue_id);
    let c = client(broker);
    let m = wait_for(Duration::from_secs(40), "the delayed message", || {
        let r = c.pull(&rocketmq_blocking::PullRequest::new("delay_cg", q.clone(), 0)).ok()?;
        r.messages.into_iter().next()
    });
    (m, Instant::now())
}

#[test]
fn delay_level_3_is_delivered_after_about_10_seconds() {
    let topic = unique("delay");
    create_topic_on("broker-a", &topic, 1);
    let p = started(&unique("delay_pg"));
    let sent_at = Instant::now();
    let r = p.send(&Message::new(&topic, "later").with_delay_level(3)).unwrap();
    let (m, seen_at) = first_visible(&topic, "broker-a", r.queue.queue_id);
    assert_eq!(m.body, b"later");
    assert!(seen_at - sent_at >= Duration::from_secs(9), "visible after {:?}", seen_at - sent_at);
    assert!(
        m.store_timestamp - m.born_timestamp >= 9_000,
        "re-stored {} ms after birth",
        m.store_timestamp - m.born_timestamp
    );
}

#[test]
fn timed_message_is_delivered_at_its_time() {
    if brokers_are_4x() {
        return; // Timed delivery is a 5.x broker feature.
    }
    let topic = unique("timed");
    create_topic_on("broker-a", &topic, 1);
    let p = started(&unique("timed_pg"));
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let sent_at = Instant::now();
    let r = p.send(&Message::new(&topic, "at a time").with_deliver_time_ms(now_ms + 5_000)).unwrap();
    let (m, seen_at) = first_visible(&topic, "broker-a", r.queue.queue_id);
    assert_eq!(m.body, b"at a time");
    assert!(seen_at - sent_at >= Duration::from_secs(4), "visible after {:?}", seen_at - sent_at);
}

#[test]
fn batches_are_stored_in_order_and_split_when_too_large() {
    let topic = unique("pbatch");
    create_topic(&topic, 2);
    let p = started(&unique("pbatch_pg"));
    let msgs: Vec<Message> = (0..500).map(|i| Message::new(&topic, format!("b{i}"))).collect();
    let r = p.send_batch(&msgs).unwrap();
    let got = pull_n(&client(&r.queue.broker_name), &r.queue, r.queue_offset, 500);
    let bodies: Vec<String> = got.iter().map(|m| String::from_utf8(m.body.clone()).unwrap()).collect();
    assert_eq!(bodies, (0..500).map(|i| format!("b{i}")).collect::<Vec<_>>());

    let big: Vec<Message> = (0..500).map(|i| Message::new(&topic, vec![b'a' + (i % 26) as u8; 10_000])).collect();
    assert!(matches!(p.send_batch(&big), Err(Error::InvalidArgument { what: "batch", .. })), "5 MB is over 4 MiB");
    let parts = split_batch(big, p.config().batch_max_bytes()).unwrap();
    assert!(parts.len() >= 5, "{} parts", parts.len());
    let mut stored = 0;
    for part in &parts {
        let r = p.send_batch(part).unwrap();
        stored += pull_n(&client(&r.queue.broker_name), &r.queue, r.queue_offset, part.len()).len();
    }
    assert_eq!(stored, 500);

    let huge = Message::new(&topic, vec![0u8; 4 * 1024 * 1024 + 1]);
    assert!(matches!(p.send(&huge), Err(Error::InvalidArgument { what: "message body", .. })));
}

#[test]
fn transactions_commit_rollback_and_check_back() {
    let topic = unique("ptx");
    create_topic_on("broker-a", &topic, 1);
    let checked = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&checked);
    let listener = move |m: &MessageExt| {
        seen.lock().unwrap().push(m.msg_id.clone());
        LocalTransactionState::CommitMessage
    };
    let tp = TransactionProducer::new(producer_config(&unique("ptx_pg")).build().unwrap(), listener).unwrap();
    tp.start().unwrap();
    let mut ids = HashMap::new();
    for (body, state) in [
        ("commit", LocalTransactionState::CommitMessage),
        ("rollback", LocalTransactionState::RollbackMessage),
        ("unknown", LocalTransactionState::Unknown),
    ] {
        let r = tp.send_message_in_transaction(&Message::new(&topic, body), |_, _| state).unwrap();
        assert_eq!(r.local_state, state);
        ids.insert(body, r.send_result.msg_id.clone());
    }
    let q = MessageQueue::new(&topic, "broker-a", 0);
    let got = pull_n(&client("broker-a"), &q, 0, 2);
    let bodies: HashSet<Vec<u8>> = got.iter().map(|m| m.body.clone()).collect();
    assert_eq!(bodies, [b"commit".to_vec(), b"unknown".to_vec()].into_iter().collect());
    assert!(checked.lock().unwrap().contains(&ids["unknown"]), "the check-back reached the listener");
    assert!(!checked.lock().unwrap().contains(&ids["commit"]), "a committed message is never asked about");
    assert!(!checked.lock().unwrap().contains(&ids["rollback"]), "a rolled-back message is never asked about");
    assert_eq!(client("broker-a").max_offset(&q).unwrap(), 2, "the rolled-back message never shows");
    tp.shutdown();
}

#[test]
fn send_async_calls_back_10000_times() {
    let topic = unique("async");
    create_topic(&topic, 4);
    let p = started(&unique("async_pg"));
    let (tx, rx) = mpsc::channel();
    let calls = Arc::new(AtomicUsize::new(0));
    for i in 0..10_000 {
        let tx = tx.clone();
        let calls = Arc::clone(&calls);
        p.send_async(Message::new(&topic, format!("a{i}")), move |r| {
            calls.fetch_add(1, Ordering::SeqCst);
            let _ = tx.send(r.map(|r| r.msg_id));
        });
    }
    drop(tx);
    let mut ids = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while ids.len() < 10_000 {
        let r = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())).expect("all callbacks in time");
        assert!(ids.insert(r.expect("acknowledged")));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 10_000);
    let stored: i64 = topic_queues(&topic).iter().map(|q| client(&q.broker_name).max_offset(q).unwrap()).sum();
    assert_eq!(stored, 10_000);
}

#[test]
fn namespace_prefixes_topic_and_group_on_the_wire_and_is_stripped_for_the_user() {
    let ns = unique("pns");
    let topic = unique("nstopic");
    let wire_topic = format!("{ns}%{topic}");
    create_topic_on("broker-a", &wire_topic, 1);
    let (checked_tx, checked) = mpsc::channel();
    let listener = move |m: &MessageExt| {
        let _ = checked_tx.send(m.topic.clone());
        LocalTransactionState::CommitMessage
    };
    let group = unique("nspg");
    let config = producer_config(&group).namespace(&ns).build().unwrap();
    let tp = TransactionProducer::new(config, listener).unwrap();
    tp.start().unwrap();

    let r = tp.producer().send(&Message::new(&topic, "plain")).unwrap();
    assert_eq!(r.queue.topic, topic, "the user sees the topic without the namespace");
    let r = tp.send_message_in_transaction(&Message::new(&topic, "unknown"), |_, _| LocalTransactionState::Unknown);
    assert_eq!(r.unwrap().send_result.queue.topic, topic);
    let asked = checked.recv_timeout(Duration::from_secs(60)).expect("a check-back");
    assert_eq!(asked, topic, "the check listener sees the topic without the namespace");

    // Stored under `ns%topic`; the group is registered as `ns%group`.
    let got = pull_n(&client("broker-a"), &MessageQueue::new(&wire_topic, "broker-a", 0), 0, 2);
    let bodies: Vec<&[u8]> = got.iter().map(|m| m.body.as_slice()).collect();
    assert_eq!(bodies, [&b"plain"[..], &b"unknown"[..]]);
    assert!(got.iter().all(|m| m.topic == wire_topic));
    let id = tp.producer().client_id().to_string();
    wait_for(Duration::from_secs(10), "the namespaced group registered", || {
        producer_connections("broker-a", &format!("{ns}%{group}")).contains(&id).then_some(())
    });
    tp.shutdown();
}
