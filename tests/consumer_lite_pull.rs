//! `LitePullConsumer` against the real brokers: assign + seek, subscribe
//! with rebalancing, commit and restart, tag and SQL92 filters, and where
//! a new group starts.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use rocketmq_blocking::consumer::{ConsumeFromWhere, LitePullConsumer, MessageSelector};
use rocketmq_blocking::{Message, MessageExt, MessageQueue};

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Polls until `count` messages arrived (bounded), then a little more to catch extras.
fn poll_n(c: &LitePullConsumer, count: usize, limit: Duration) -> Vec<MessageExt> {
    let deadline = Instant::now() + limit;
    let mut out = Vec::new();
    while out.len() < count {
        assert!(Instant::now() < deadline, "polled only {} of {count} messages", out.len());
        out.extend(c.poll(Duration::from_millis(500)).unwrap());
    }
    out.extend(c.poll(Duration::from_millis(300)).unwrap());
    out
}

fn bodies(msgs: &[MessageExt]) -> Vec<String> {
    msgs.iter().map(|m| String::from_utf8_lossy(&m.body).into_owned()).collect()
}

#[test]
fn assign_and_seek_returns_the_chosen_message_first() {
    let topic = unique("lite_seek");
    create_topic_on("broker-a", &topic, 2);
    let c = client("broker-a");
    let q = MessageQueue::new(&topic, "broker-a", 1);
    let msgs: Vec<Message> = (0..20).map(|i| Message::new(&topic, format!("m{i}"))).collect();
    send_in_batches(&c, &q, &msgs);
    // The consume queue is built asynchronously: seek checks against it.
    wait_for(Duration::from_secs(10), "20 messages in the queue", || (c.max_offset(&q).ok() == Some(20)).then_some(()));

    let consumer = LitePullConsumer::new(consumer_config(&unique("lite_seek_cg")).build().unwrap()).unwrap();
    assert_eq!(consumer.fetch_message_queues(&topic).unwrap().len(), 2);
    consumer.assign(std::slice::from_ref(&q)).unwrap();
    assert!(consumer.seek(&q, 21).is_err(), "offset past the max offset is refused");
    assert!(consumer.seek(&MessageQueue::new(&topic, "broker-a", 0), 0).is_err(), "queue not assigned");
    consumer.seek(&q, 13).unwrap();
    consumer.start().unwrap();
    let got = poll_n(&consumer, 7, Duration::from_secs(20));
    assert_eq!(got[0].queue_offset, 13);
    assert_eq!(bodies(&got), (13..20).map(|i| format!("m{i}")).collect::<Vec<_>>());
    assert_eq!(consumer.assignment(), vec![q.clone()]);

    // Pause holds the queue back; resume lets it go again.
    consumer.pause(std::slice::from_ref(&q)).unwrap();
    send_in_batches(&c, &q, &[Message::new(&topic, "after-pause")]);
    assert!(consumer.poll(Duration::from_millis(1500)).unwrap().is_empty(), "paused queue delivers nothing");
    consumer.resume(std::slice::from_ref(&q)).unwrap();
    let got = poll_n(&consumer, 1, Duration::from_secs(30));
    assert_eq!(bodies(&got), vec!["after-pause".to_string()]);
    consumer.shutdown();
    assert!(consumer.poll(Duration::from_millis(10)).is_err(), "poll after shutdown is an error");
}

#[test]
fn subscribe_splits_queues_between_two_instances() {
    let topic = unique("lite_split");
    create_topic(&topic, 4);
    let group = unique("lite_split_cg");
    let a = LitePullConsumer::new(consumer_config(&group).build().unwrap()).unwrap();
    let b = LitePullConsumer::new(consumer_config(&group).build().unwrap()).unwrap();
    for c in [&a, &b] {
        c.subscribe(&topic, "*").unwrap();
        c.start().unwrap();
    }
    let all: BTreeSet<MessageQueue> = topic_queues(&topic).into_iter().collect();
    assert_eq!(all.len(), 8);
    wait_for(Duration::from_secs(30), "each instance to hold 4 of the 8 queues", || {
        let (qa, qb) = (a.assignment(), b.assignment());
        let union: BTreeSet<MessageQueue> = qa.iter().chain(qb.iter()).cloned().collect();
        (qa.len() == 4 && qb.len() == 4 && union == all).then_some(())
    });

    // Messages to every queue reach exactly one of them.
    let ca = client("broker-a");
    let cb = client("broker-b");
    for q in &all {
        let c = if q.broker_name == "broker-a" { &ca } else { &cb };
        send_in_batches(c, q, &[Message::new(&topic, format!("{}-{}", q.broker_name, q.queue_id))]);
    }
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < 8 {
        assert!(Instant::now() < deadline, "saw only {seen:?}");
        seen.extend(bodies(&a.poll(Duration::from_millis(200)).unwrap()));
        seen.extend(bodies(&b.poll(Duration::from_millis(200)).unwrap()));
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 8);

    // B leaves: A takes all 8.
    b.shutdown();
    wait_for(Duration::from_secs(30), "A to take all queues", || (a.assignment().len() == 8).then_some(()));
}

#[test]
fn commit_sync_then_restart_resumes_after_the_committed_offset() {
    let topic = unique("lite_commit");
    create_topic_on("broker-a", &topic, 1);
    let c = client("broker-a");
    let q = MessageQueue::new(&topic, "broker-a", 0);
    let msgs: Vec<Message> = (0..40).map(|i| Message::new(&topic, format!("m{i}"))).collect();
    send_in_batches(&c, &q, &msgs);
    let group = unique("lite_commit_cg");
    let config = consumer_config(&group)
        .auto_commit(false)
        .pull_batch_size(4)
        .consume_from_where(ConsumeFromWhere::FirstOffset)
        .build()
        .unwrap();

    let first = LitePullConsumer::new(config.clone()).unwrap();
    first.subscribe(&topic, "*").unwrap();
    first.start().unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.len() < 10 {
        assert!(Instant::now() < deadline, "polled only {}", got.len());
        got.extend(first.poll(Duration::from_millis(500)).unwrap());
    }
    let next = got.last().unwrap().queue_offset + 1;
    first.commit_sync().unwrap();
    assert_eq!(first.committed(&q).unwrap(), Some(next));
    // Polled but not committed: these come again after the restart.
    let extra = first.poll(Duration::from_millis(500)).unwrap();
    first.shutdown();
    drop(first);

    let second = LitePullConsumer::new(config).unwrap();
    second.subscribe(&topic, "*").unwrap();
    second.start().unwrap();
    let rest = poll_n(&second, (40 - next) as usize, Duration::from_secs(30));
    assert_eq!(rest[0].queue_offset, next, "resumes right after the committed offset ({} extra polled)", extra.len());
    assert_eq!(bodies(&rest), (next..40).map(|i| format!("m{i}")).collect::<Vec<_>>());
}

/// Restarts an auto-committing lite-pull consumer of each of 4 groups 20
/// times, side by side: what `poll`
/// returned counts as consumed, so no restart delivers any of it again.
#[test]
fn a_restarted_consumer_continues_after_what_poll_returned() {
    let topic = unique("lite_restart");
    create_topic_on("broker-a", &topic, 4);
    let queues: Vec<MessageQueue> = (0..4).map(|i| MessageQueue::new(&topic, "broker-a", i)).collect();
    restart::fill(&queues, 1500);
    let groups: Vec<String> = (0..4).map(|_| unique("lite_restart_cg")).collect();
    let counts = restart::restart_rounds(&groups, 20, 60, 0, |group, tally| {
        let config = consumer_config(group)
            .consume_from_where(ConsumeFromWhere::FirstOffset)
            .persist_interval(Duration::from_millis(10))
            .build()
            .unwrap();
        let consumer = Arc::new(LitePullConsumer::new(config).unwrap());
        consumer.subscribe(&topic, "*").unwrap();
        consumer.start().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let poller = {
            let (consumer, stop) = (Arc::clone(&consumer), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    tally.record(&consumer.poll(Duration::from_millis(100)).unwrap());
                }
            })
        };
        Box::new(move || {
            stop.store(true, Ordering::SeqCst);
            poller.join().unwrap();
            consumer.shutdown();
        })
    });
    println!("redelivered per restart: {counts:?}");
}

#[test]
fn tag_filter_returns_only_and_all_matching_messages() {
    let topic = unique("lite_tags");
    create_topic_on("broker-a", &topic, 2);
    let c = client("broker-a");
    for qid in 0..2 {
        let q = MessageQueue::new(&topic, "broker-a", qid);
        let msgs: Vec<Message> =
            (0..30).map(|i| Message::new(&topic, format!("{qid}-{i}")).with_tags(["A", "B", "C"][i % 3])).collect();
        send_in_batches(&c, &q, &msgs);
    }
    let config = consumer_config(&unique("lite_tags_cg")).consume_from_where(ConsumeFromWhere::FirstOffset);
    let consumer = LitePullConsumer::new(config.build().unwrap()).unwrap();
    consumer.subscribe(&topic, "A || B").unwrap();
    consumer.start().unwrap();
    let got = poll_n(&consumer, 40, Duration::from_secs(30));
    assert_eq!(got.len(), 40, "exactly the A and B messages: {:?}", bodies(&got));
    assert!(got.iter().all(|m| matches!(m.tags(), Some("A") | Some("B"))));
    let unique_bodies: BTreeSet<String> = bodies(&got).into_iter().collect();
    assert_eq!(unique_bodies.len(), 40);
}

#[test]
fn sql92_filter_returns_only_and_all_matching_messages() {
    let topic = unique("lite_sql");
    create_topic_on("broker-a", &topic, 1);
    let c = client("broker-a");
    let q = MessageQueue::new(&topic, "broker-a", 0);
    let msgs: Vec<Message> = (0..50)
        .map(|i| {
            Message::new(&topic, format!("n{i}"))
                .with_property("n", i.to_string())
                .with_property("color", if i % 2 == 0 { "red" } else { "blue" })
        })
        .collect();
    send_in_batches(&c, &q, &msgs);
    let config = consumer_config(&unique("lite_sql_cg")).consume_from_where(ConsumeFromWhere::FirstOffset);
    let consumer = LitePullConsumer::new(config.build().unwrap()).unwrap();
    consumer.subscribe(&topic, MessageSelector::sql92("n >= 10 AND n < 30 AND color = 'red'")).unwrap();
    consumer.start().unwrap();
    let got = poll_n(&consumer, 10, Duration::from_secs(30));
    assert_eq!(bodies(&got), (10..30).filter(|i| i % 2 == 0).map(|i| format!("n{i}")).collect::<Vec<_>>());
}

#[test]
fn a_new_group_starts_at_first_last_or_timestamp_as_in_java() {
    let topic = unique("lite_from");
    create_topic_on("broker-a", &topic, 1);
    let c = client("broker-a");
    let q = MessageQueue::new(&topic, "broker-a", 0);
    let old: Vec<Message> = (0..5).map(|i| Message::new(&topic, format!("old{i}"))).collect();
    send_in_batches(&c, &q, &old);
    let last_old = pull_n(&c, &q, 0, 5)[4].store_timestamp;
    wait_for(Duration::from_secs(5), "the clock to pass the old messages", || (now_ms() > last_old + 5).then_some(()));
    let t = now_ms();
    let new: Vec<Message> = (0..5).map(|i| Message::new(&topic, format!("new{i}"))).collect();
    send_in_batches(&c, &q, &new);

    let start = |from: ConsumeFromWhere, ts: Option<i64>| {
        let mut b = consumer_config(&unique("lite_from_cg")).consume_from_where(from);
        if let Some(ts) = ts {
            b = b.consume_timestamp_ms(ts);
        }
        let consumer = LitePullConsumer::new(b.build().unwrap()).unwrap();
        consumer.subscribe(&topic, "*").unwrap();
        consumer.start().unwrap();
        consumer
    };

    // 5.x brokers answer "no offset" for a new group, so consume-from-where
    // applies; 4.x brokers answer 0 while the queue's first message is still
    // in memory, and the Java client then starts at 0 whatever the setting.
    let answers_zero = c.query_consumer_offset(&unique("lite_from_probe"), &q).unwrap() == Some(0);

    let first = start(ConsumeFromWhere::FirstOffset, None);
    assert_eq!(bodies(&poll_n(&first, 10, Duration::from_secs(30)))[0], "old0");

    let by_time = start(ConsumeFromWhere::Timestamp, Some(t));
    if answers_zero {
        assert_eq!(bodies(&poll_n(&by_time, 10, Duration::from_secs(30)))[0], "old0");
        return;
    }
    let got = poll_n(&by_time, 5, Duration::from_secs(30));
    assert_eq!(bodies(&got), (0..5).map(|i| format!("new{i}")).collect::<Vec<_>>());

    let last = start(ConsumeFromWhere::LastOffset, None);
    // The start offset (the max offset, 10) is committed by auto-commit once computed.
    wait_for(Duration::from_secs(30), "the last-offset group to settle at 10", || {
        (last.committed(&q).ok().flatten() == Some(10)).then_some(())
    });
    send_in_batches(&c, &q, &[Message::new(&topic, "late")]);
    assert_eq!(bodies(&poll_n(&last, 1, Duration::from_secs(30))), vec!["late".to_string()]);
}
