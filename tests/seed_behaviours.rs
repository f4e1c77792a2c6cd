//! Behaviours of the original design checked against the real brokers: a
//! suspended broker is never used, routing statistics count failures, the
//! producer stops refreshing topics it no longer uses, and pull and offset
//! errors name their topic and queue.

mod common;

use std::time::Duration;

use common::*;
use rocketmq_blocking::broker::PullRequest;
use rocketmq_blocking::producer::Producer;
use rocketmq_blocking::protocol::ResponseCode;
use rocketmq_blocking::{Error, Message, MessageQueue};

#[test]
fn a_suspended_broker_is_never_chosen() {
    let topic = unique("suspend");
    create_topic(&topic, 2);
    let config = producer_config(&unique("suspend_pg")).latency_aware(false).build().unwrap();
    let p = Producer::new(config).unwrap();
    p.start().unwrap();
    let before: Vec<i64> = ["broker-a", "broker-b"]
        .iter()
        .map(|b| (0..2).map(|q| client(b).max_offset(&MessageQueue::new(&topic, *b, q)).unwrap()).sum())
        .collect();
    p.router().suspend_broker("broker-a");
    for i in 0..20 {
        let r = p.send(&Message::new(&topic, format!("m{i}"))).unwrap();
        assert_eq!(r.queue.broker_name, "broker-b", "send #{i}");
    }
    let after: Vec<i64> = ["broker-a", "broker-b"]
        .iter()
        .map(|b| (0..2).map(|q| client(b).max_offset(&MessageQueue::new(&topic, *b, q)).unwrap()).sum())
        .collect();
    assert_eq!(after[0], before[0], "broker-a stored nothing while suspended");
    assert_eq!(after[1], before[1] + 20, "broker-b stored all 20");

    // Both suspended: a typed error, no send, and a failed routing counted.
    p.router().suspend_broker("broker-b");
    let failed_before = p.stats().failed;
    let err = p.send(&Message::new(&topic, "nowhere")).unwrap_err();
    assert!(matches!(err, Error::QueueNotAvailable { topic: ref t, .. } if *t == topic), "{err:?}");
    assert_eq!(p.stats().failed, failed_before + 1);
    assert_eq!(p.stats().successful, 20);
    let rate = p.stats().success_rate("broker-b").expect("broker-b has results");
    assert!(rate > 0.99, "every send and heartbeat to broker-b succeeded: {rate}");

    p.router().recover_broker("broker-a");
    let r = p.send(&Message::new(&topic, "back")).unwrap();
    assert_eq!(r.queue.broker_name, "broker-a");
    let q = MessageQueue::new(&topic, "broker-a", r.queue.queue_id);
    let stored = pull_n(&client("broker-a"), &q, r.queue_offset, 1);
    assert_eq!(stored[0].body, b"back");
}

#[test]
fn topics_no_longer_used_stop_being_refreshed() {
    let used = unique("refresh_used");
    let idle = unique("refresh_idle");
    create_topic(&used, 1);
    create_topic(&idle, 1);
    let config = producer_config(&unique("refresh_pg"))
        .poll_namesrv_interval(Duration::from_millis(100))
        .route_expiry(Duration::from_millis(800))
        .build()
        .unwrap();
    let p = Producer::new(config).unwrap();
    p.start().unwrap();
    p.send(&Message::new(&used, "u")).unwrap();
    p.send(&Message::new(&idle, "i")).unwrap();
    let mut both = vec![used.clone(), idle.clone()];
    both.sort();
    assert_eq!(p.route_topics(), both);
    // Keep sending to one topic only: the other drops out of the refresh set.
    let mut sent = 1;
    wait_for(Duration::from_secs(20), "the idle topic to leave the refresh set", || {
        p.send(&Message::new(&used, "u")).unwrap();
        sent += 1;
        (p.route_topics() == [used.clone()]).then_some(())
    });
    // The used topic stayed; the broker holds every send to it.
    let stored: i64 =
        ["broker-a", "broker-b"].iter().map(|b| client(b).max_offset(&MessageQueue::new(&used, *b, 0)).unwrap()).sum();
    assert_eq!(stored, sent);
    // Sending to the idle topic again brings it back.
    p.send(&Message::new(&idle, "again")).unwrap();
    assert_eq!(p.route_topics(), both);
}

#[test]
fn pull_and_offset_errors_name_topic_and_queue() {
    let c = client("broker-a");
    let topic = unique("errq");
    create_topic_on("broker-a", &topic, 4);
    // A pull without a subscription by a group that never sent a heartbeat.
    let mut req = PullRequest::new(unique("errq_cg"), MessageQueue::new(&topic, "broker-a", 2), 0);
    req.expression = None;
    let err = c.pull(&req).unwrap_err();
    match &err {
        Error::MessagePull { code, topic: t, queue_id, .. } => {
            assert_eq!((*code, t.as_str(), *queue_id), (ResponseCode::SubscriptionNotExist, topic.as_str(), 2));
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains(&format!("{topic:?} queue 2")), "{err}");

    // Offsets of a group the broker does not know: refused by 5.x, stored by 4.x.
    let result = c.update_consumer_offset(&unique("errq_nogroup"), &MessageQueue::new(&topic, "broker-a", 3), 1);
    if brokers_are_4x() {
        assert!(result.is_ok(), "{result:?}");
    } else {
        match result.unwrap_err() {
            Error::Offset { code, topic: t, queue_id, .. } => {
                assert_eq!((code, t.as_str(), queue_id), (ResponseCode::SubscriptionGroupNotExist, topic.as_str(), 3));
            }
            other => panic!("{other:?}"),
        }
    }
}
