//! `PushConsumer` against the real brokers: two consumers sharing a
//! topic, restart from persisted offsets, retries and dead letters,
//! orderly consumption across a rebalance, broadcasting.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use rocketmq_blocking::consumer::{
    ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus, ConsumeFromWhere, ConsumeOrderlyContext,
    ConsumeOrderlyStatus, LocalOffsetStore, MessageModel, PushConsumer,
};
use rocketmq_blocking::{Message, MessageExt, MessageQueue};

type Seen = Arc<Mutex<HashMap<String, usize>>>;

/// A concurrent consumer that counts every body it sees in `seen`.
fn counting_consumer(config: rocketmq_blocking::ConsumerConfig, topic: &str, seen: &Seen) -> PushConsumer {
    let consumer = PushConsumer::new(config).unwrap();
    consumer.subscribe(topic, "*").unwrap();
    let seen = Arc::clone(seen);
    consumer
        .register_concurrently(move |msgs: &[MessageExt], _: &mut ConsumeConcurrentlyContext| {
            let mut s = seen.lock().unwrap();
            for m in msgs {
                *s.entry(String::from_utf8_lossy(&m.body).into_owned()).or_default() += 1;
            }
            ConsumeConcurrentlyStatus::ConsumeSuccess
        })
        .unwrap();
    consumer
}

fn topic_assignment(c: &PushConsumer, topic: &str) -> BTreeSet<MessageQueue> {
    c.assignment().into_iter().filter(|q| q.topic == topic).collect()
}

/// Sends `bodies` round robin over `queues` (batches of 25 per queue).
fn produce(queues: &[MessageQueue], topic: &str, range: std::ops::Range<usize>) {
    let ca = client("broker-a");
    let cb = client("broker-b");
    let ids: Vec<usize> = range.collect();
    for (i, chunk) in ids.chunks(25).enumerate() {
        let q = &queues[i % queues.len()];
        let msgs: Vec<Message> = chunk.iter().map(|n| Message::new(topic, format!("m{n}"))).collect();
        let c = if q.broker_name == "broker-a" { &ca } else { &cb };
        send_in_batches(c, q, &msgs);
    }
}

#[test]
fn two_consumers_share_sixteen_queues_and_lose_nothing_when_one_leaves() {
    let topic = unique("push_share");
    create_topic(&topic, 8);
    let queues = topic_queues(&topic);
    assert_eq!(queues.len(), 16);
    let group = unique("push_share_cg");
    // A long rebalance interval: the changes below must come from NOTIFY_CONSUMER_IDS_CHANGED.
    let config = consumer_config(&group)
        .rebalance_interval(Duration::from_secs(120))
        .consume_from_where(ConsumeFromWhere::FirstOffset)
        .build()
        .unwrap();
    let seen: Seen = Arc::default();
    let first = counting_consumer(config.clone(), &topic, &seen);
    first.start().unwrap();
    wait_for(Duration::from_secs(30), "the first consumer to take all 16 queues", || {
        (topic_assignment(&first, &topic).len() == 16).then_some(())
    });
    let second = counting_consumer(config, &topic, &seen);
    second.start().unwrap();
    let all: BTreeSet<MessageQueue> = queues.iter().cloned().collect();
    wait_for(Duration::from_secs(20), "8 queues each", || {
        let (a, b) = (topic_assignment(&first, &topic), topic_assignment(&second, &topic));
        (a.len() == 8 && b.len() == 8 && a.union(&b).cloned().collect::<BTreeSet<_>>() == all).then_some(())
    });

    produce(&queues, &topic, 0..5000);
    wait_for(Duration::from_secs(60), "the first 5,000 messages", || {
        (seen.lock().unwrap().len() >= 5000).then_some(())
    });

    second.shutdown();
    let left = Instant::now();
    wait_for(Duration::from_secs(10), "the first consumer to take all 16 queues again", || {
        (topic_assignment(&first, &topic).len() == 16).then_some(())
    });
    println!("takeover after the second consumer left: {:?}", left.elapsed());

    produce(&queues, &topic, 5000..10_000);
    wait_for(Duration::from_secs(120), "all 10,000 messages", || (seen.lock().unwrap().len() >= 10_000).then_some(()));
    let s = seen.lock().unwrap();
    let missing: Vec<String> = (0..10_000).map(|n| format!("m{n}")).filter(|b| !s.contains_key(b)).collect();
    assert!(missing.is_empty(), "lost {} messages, e.g. {:?}", missing.len(), &missing[..missing.len().min(5)]);
    let duplicates: usize = s.values().map(|n| n - 1).sum();
    println!("10,000 messages consumed, {duplicates} duplicate deliveries");
}

/// A push consumer of `group` on `topic` that records what its listener
/// processed into `tally` (1 ms per message), concurrently or orderly.
fn recording_consumer(group: &str, topic: &str, orderly: bool, tally: Arc<restart::Tally>) -> PushConsumer {
    // Offsets are persisted every 10 ms: a stale periodic persist racing
    // with the one at shutdown shows at once.
    let config = consumer_config(group)
        .consume_from_where(ConsumeFromWhere::FirstOffset)
        .persist_interval(Duration::from_millis(10))
        .build()
        .unwrap();
    let consumer = PushConsumer::new(config).unwrap();
    consumer.subscribe(topic, "*").unwrap();
    if orderly {
        consumer
            .register_orderly(move |msgs: &[MessageExt], _: &mut ConsumeOrderlyContext| {
                std::thread::sleep(Duration::from_millis(1));
                tally.record(msgs);
                ConsumeOrderlyStatus::Success
            })
            .unwrap();
    } else {
        consumer
            .register_concurrently(move |msgs: &[MessageExt], _: &mut ConsumeConcurrentlyContext| {
                std::thread::sleep(Duration::from_millis(1));
                tally.record(msgs);
                ConsumeConcurrentlyStatus::ConsumeSuccess
            })
            .unwrap();
    }
    consumer
}

/// Restarts a push consumer of each of 4 groups 20 times, side by side: no
/// restart delivers anything again (at shutdown the listener calls running
/// finish and count; the messages never handed to a consume thread are the
/// last ones of their queues).
fn restart_push_consumer(orderly: bool) {
    let topic = unique(if orderly { "push_restart_order" } else { "push_restart" });
    create_topic_on("broker-a", &topic, 4);
    let queues: Vec<MessageQueue> = (0..4).map(|i| MessageQueue::new(&topic, "broker-a", i)).collect();
    restart::fill(&queues, 1500);
    let groups: Vec<String> = (0..4).map(|_| unique("push_restart_cg")).collect();
    let counts = restart::restart_rounds(&groups, 20, 60, 0, |group, tally| {
        let consumer = recording_consumer(group, &topic, orderly, tally);
        consumer.start().unwrap();
        Box::new(move || consumer.shutdown())
    });
    println!("redelivered per restart: {counts:?}");
}

#[test]
fn a_restarted_consumer_continues_from_the_persisted_offset() {
    restart_push_consumer(false);
}

#[test]
fn a_restarted_orderly_consumer_continues_from_the_persisted_offset() {
    restart_push_consumer(true);
}

#[test]
fn a_failed_message_comes_back_with_its_reconsume_count_then_goes_to_the_dlq() {
    let c = client("broker-a");
    // Fails twice, then succeeds: the third delivery has reconsume times 2.
    let topic = unique("push_retry");
    create_topic_on("broker-a", &topic, 1);
    let q = MessageQueue::new(&topic, "broker-a", 0);
    c.send("retry_pg", &q, &Message::new(&topic, "flaky")).unwrap();
    let group = unique("push_retry_cg");
    let deliveries: Arc<Mutex<Vec<(i32, String)>>> = Arc::default();
    let config = consumer_config(&group).consume_from_where(ConsumeFromWhere::FirstOffset).build().unwrap();
    let consumer = PushConsumer::new(config).unwrap();
    consumer.subscribe(&topic, "*").unwrap();
    let d = Arc::clone(&deliveries);
    consumer
        .register_concurrently(move |msgs: &[MessageExt], ctx: &mut ConsumeConcurrentlyContext| {
            let mut d = d.lock().unwrap();
            d.push((msgs[0].reconsume_times, msgs[0].topic.clone()));
            ctx.set_delay_level(1);
            if d.len() < 3 {
                ConsumeConcurrentlyStatus::ReconsumeLater
            } else {
                ConsumeConcurrentlyStatus::ConsumeSuccess
            }
        })
        .unwrap();
    consumer.start().unwrap();
    wait_for(Duration::from_secs(90), "three deliveries", || (deliveries.lock().unwrap().len() >= 3).then_some(()));
    let d = deliveries.lock().unwrap().clone();
    assert_eq!(d[..3].iter().map(|x| x.0).collect::<Vec<_>>(), vec![0, 1, 2]);
    assert!(d.iter().all(|x| x.1 == topic), "the original topic is restored: {d:?}");
    consumer.shutdown();

    // Always fails with max reconsume times 2: delivered 3 times, then in %DLQ%.
    let topic = unique("push_dlq");
    create_topic_on("broker-a", &topic, 1);
    let q = MessageQueue::new(&topic, "broker-a", 0);
    let sent = c.send("retry_pg", &q, &Message::new(&topic, "doomed")).unwrap();
    let group = unique("push_dlq_cg");
    let count = Arc::new(AtomicUsize::new(0));
    let config = consumer_config(&group)
        .max_reconsume_times(2)
        .consume_from_where(ConsumeFromWhere::FirstOffset)
        .build()
        .unwrap();
    let consumer = PushConsumer::new(config).unwrap();
    consumer.subscribe(&topic, "*").unwrap();
    let n = Arc::clone(&count);
    consumer
        .register_concurrently(move |_: &[MessageExt], ctx: &mut ConsumeConcurrentlyContext| {
            n.fetch_add(1, Ordering::SeqCst);
            ctx.set_delay_level(1);
            ConsumeConcurrentlyStatus::ReconsumeLater
        })
        .unwrap();
    consumer.start().unwrap();
    let dlq = MessageQueue::new(format!("%DLQ%{group}"), "broker-a", 0);
    let dead = pull_n(&c, &dlq, 0, 1);
    assert_eq!(dead[0].body, b"doomed");
    assert_eq!(dead[0].msg_id, sent.msg_id);
    assert_eq!(count.load(Ordering::SeqCst), 3, "delivered max reconsume times + 1");
    consumer.shutdown();
}

#[test]
fn orderly_consumption_keeps_send_order_per_key_across_a_rebalance() {
    let topic = unique("push_order");
    create_topic(&topic, 8);
    let queues = topic_queues(&topic);
    // Four keys on queues 0, 4, 8, 12 of the sorted 16: two per consumer once both run.
    let key_queue = |k: usize| queues[k * 4].clone();
    let group = unique("push_order_cg");
    let log: Arc<Mutex<Vec<(usize, usize, String)>>> = Arc::default();
    let make = |name: &'static str| {
        let consumer = PushConsumer::new(
            consumer_config(&group)
                .consume_from_where(ConsumeFromWhere::FirstOffset)
                .lock_renew_interval(Duration::from_secs(5))
                .build()
                .unwrap(),
        )
        .unwrap();
        consumer.subscribe(&topic, "*").unwrap();
        let log = Arc::clone(&log);
        consumer
            .register_orderly(move |msgs: &[MessageExt], _: &mut ConsumeOrderlyContext| {
                let mut l = log.lock().unwrap();
                for m in msgs {
                    let body = String::from_utf8_lossy(&m.body);
                    let (k, s) = body.split_once('-').unwrap();
                    l.push((k.parse().unwrap(), s.parse().unwrap(), name.to_string()));
                }
                ConsumeOrderlyStatus::Success
            })
            .unwrap();
        consumer
    };
    let ca = client("broker-a");
    let cb = client("broker-b");
    let send = |range: std::ops::Range<usize>| {
        for start in range.step_by(50) {
            for k in 0..4 {
                let q = key_queue(k);
                let msgs: Vec<Message> =
                    (start..start + 50).map(|s| Message::new(&topic, format!("{k}-{s}"))).collect();
                let c = if q.broker_name == "broker-a" { &ca } else { &cb };
                send_in_batches(c, &q, &msgs);
            }
        }
    };
    let first = make("first");
    first.start().unwrap();
    send(0..600);
    wait_for(Duration::from_secs(60), "some progress", || (log.lock().unwrap().len() >= 1000).then_some(()));
    let second = make("second");
    second.start().unwrap();
    // The rest is sent once the rebalance gave the second consumer its half.
    wait_for(Duration::from_secs(30), "the second consumer to take 8 queues", || {
        (topic_assignment(&second, &topic).len() == 8).then_some(())
    });
    send(600..1250);
    let expected = 4 * 1250;
    wait_for(Duration::from_secs(120), "all 5,000 messages", || {
        let l = log.lock().unwrap();
        let distinct: BTreeSet<(usize, usize)> = l.iter().map(|(k, s, _)| (*k, *s)).collect();
        (distinct.len() >= expected).then_some(())
    });
    first.shutdown();
    second.shutdown();
    let l = log.lock().unwrap();
    // In order, allowing replays after a handover: a key never jumps ahead
    // of the next message it has not seen yet.
    let mut next = [0usize; 4];
    for (k, s, who) in l.iter() {
        assert!(*s <= next[*k], "key {k}: {who} saw {s} before {}", next[*k]);
        if *s == next[*k] {
            next[*k] += 1;
        }
    }
    assert_eq!(next, [1250; 4]);
    let by_second = l.iter().filter(|x| x.2 == "second").count();
    assert!(by_second > 0, "the second consumer took over some keys");
    println!("orderly: {} deliveries for {expected} messages, {by_second} by the second consumer", l.len());
}

#[test]
fn broadcasting_consumers_each_see_everything_and_offsets_survive_a_restart() {
    let topic = unique("push_bcast");
    create_topic_on("broker-a", &topic, 4);
    let queues: Vec<MessageQueue> = (0..4).map(|i| MessageQueue::new(&topic, "broker-a", i)).collect();
    let group = unique("push_bcast_cg");
    let base = std::env::temp_dir().join(unique("offsets"));
    let config = |dir: &str| {
        consumer_config(&group)
            .message_model(MessageModel::Broadcasting)
            .consume_from_where(ConsumeFromWhere::FirstOffset)
            .offset_store_dir(base.join(dir))
            .build()
            .unwrap()
    };
    let (seen_a, seen_b): (Seen, Seen) = (Arc::default(), Arc::default());
    let a = counting_consumer(config("a"), &topic, &seen_a);
    let b = counting_consumer(config("b"), &topic, &seen_b);
    a.start().unwrap();
    b.start().unwrap();
    let c = client("broker-a");
    for (i, q) in queues.iter().enumerate() {
        let msgs: Vec<Message> = (0..25).map(|n| Message::new(&topic, format!("m{}", i * 25 + n))).collect();
        send_in_batches(&c, q, &msgs);
    }
    for seen in [&seen_a, &seen_b] {
        wait_for(Duration::from_secs(60), "every message at both consumers", || {
            (seen.lock().unwrap().len() == 100).then_some(())
        });
    }
    a.shutdown();
    b.shutdown();
    let file = LocalOffsetStore::new(&base.join("a"), &group);
    let offsets = file.load().unwrap();
    assert_eq!(queues.iter().map(|q| offsets.get(q).copied().unwrap_or(-1)).collect::<Vec<_>>(), vec![25; 4]);
    assert!(file.path().exists());

    // Restart A: it continues from its file, seeing only the new messages.
    let again: Seen = Arc::default();
    let a2 = counting_consumer(config("a"), &topic, &again);
    a2.start().unwrap();
    for (i, q) in queues.iter().enumerate() {
        send_in_batches(&c, q, &[Message::new(&topic, format!("new{i}"))]);
    }
    wait_for(Duration::from_secs(60), "the 4 new messages", || (again.lock().unwrap().len() >= 4).then_some(()));
    std::thread::sleep(Duration::from_millis(500));
    let got: BTreeSet<String> = again.lock().unwrap().keys().cloned().collect();
    assert_eq!(got, (0..4).map(|i| format!("new{i}")).collect::<BTreeSet<_>>());
    a2.shutdown();
    let _ = std::fs::remove_dir_all(&base);
}
