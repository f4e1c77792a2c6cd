//! Every `BrokerClient` operation against the real brokers, checked by
//! reading the broker's answer back.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use rocketmq_blocking::broker::{EndTransaction, PullRequest, PullStatus, SendStatus, TransactionResolution};
use rocketmq_blocking::error::{OperationKind, ResponseContext};
use rocketmq_blocking::protocol::body::{
    ConsumeFromWhere, ConsumeType, ConsumerData, HeartbeatData, MessageModel, ProducerData, SubscriptionData,
};
use rocketmq_blocking::protocol::message::{decode_offset_msg_id, property};
use rocketmq_blocking::protocol::route::PERM_WRITE;
use rocketmq_blocking::protocol::{RemotingCommand, ResponseCode};
use rocketmq_blocking::{Error, Message, MessageQueue, TopicConfig};

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

#[test]
fn send_then_max_min_offsets_and_pull_statuses() {
    let topic = unique("offsets");
    create_topic_on("broker-a", &topic, 2);
    let c = client("broker-a");
    let q = MessageQueue::new(&topic, "broker-a", 1);
    assert_eq!(c.min_offset(&q).unwrap(), 0);
    assert_eq!(c.max_offset(&q).unwrap(), 0);
    for i in 0..5 {
        let r = c.send("offsets_pg", &q, &Message::new(&topic, format!("m{i}")).with_tags("A")).unwrap();
        assert_eq!(r.status, SendStatus::SendOk);
        assert_eq!(r.queue_offset, i);
        assert_eq!(r.queue, q);
        assert_eq!(r.msg_id.len(), 32);
        assert!(decode_offset_msg_id(&r.offset_msg_id).is_ok());
    }
    // The consume queue is built from the commit log asynchronously.
    wait_for(Duration::from_secs(10), "max offset 5", || (c.max_offset(&q).unwrap() == 5).then_some(()));
    assert_eq!(c.min_offset(&q).unwrap(), 0);

    let found = c.pull(&PullRequest::new("offsets_cg", q.clone(), 0)).unwrap();
    assert_eq!(found.status, PullStatus::Found);
    assert_eq!(found.messages.len(), 5);
    assert_eq!(found.next_begin_offset, 5);
    assert_eq!(found.max_offset, 5);
    let none = c.pull(&PullRequest::new("offsets_cg", q.clone(), 5)).unwrap();
    assert_eq!(none.status, PullStatus::NoNewMsg);
    let illegal = c.pull(&PullRequest::new("offsets_cg", q.clone(), 50)).unwrap();
    assert_eq!(illegal.status, PullStatus::OffsetIllegal);
    let mut unmatched = PullRequest::new("offsets_cg", q.clone(), 0);
    unmatched.expression = Some("B".into());
    let r = c.pull(&unmatched).unwrap();
    assert_eq!(r.status, PullStatus::NoMatchedMsg, "{r:?}");
    assert_eq!(r.next_begin_offset, 5);
    let mut matched = PullRequest::new("offsets_cg", q, 0);
    matched.expression = Some("A || B".into());
    assert_eq!(c.pull(&matched).unwrap().messages.len(), 5);
}

#[test]
fn update_then_query_consumer_offset() {
    let topic = unique("cofs");
    create_topic_on("broker-a", &topic, 1);
    let c = client("broker-a");
    let q = MessageQueue::new(&topic, "broker-a", 0);
    for i in 0..3 {
        c.send("cofs_pg", &q, &Message::new(&topic, format!("m{i}"))).unwrap();
    }
    let group = unique("cofs_cg");
    // A pull creates the subscription group (autoCreateSubscriptionGroup), as
    // a consumer's heartbeat would; 5.x refuses offsets of unknown groups.
    c.pull(&PullRequest::new(&group, q.clone(), 0)).unwrap();
    let before = c.query_consumer_offset(&group, &q).unwrap();
    assert!(matches!(before, None | Some(0)), "a new group has no offset, got {before:?}");
    c.update_consumer_offset(&group, &q, 2).unwrap();
    assert_eq!(c.query_consumer_offset(&group, &q).unwrap(), Some(2));
    c.update_consumer_offset_oneway(&group, &q, 3).unwrap();
    wait_for(Duration::from_secs(10), "oneway offset update", || {
        (c.query_consumer_offset(&group, &q).unwrap() == Some(3)).then_some(())
    });
}

#[test]
fn search_offset_by_timestamp_finds_the_first_later_message() {
    let topic = unique("search");
    create_topic_on("broker-a", &topic, 1);
    let c = client("broker-a");
    let q = MessageQueue::new(&topic, "broker-a", 0);
    c.send("search_pg", &q, &Message::new(&topic, "before")).unwrap();
    let first = pull_n(&c, &q, 0, 1);
    let stored = first[0].store_timestamp;
    wait_for(Duration::from_secs(5), "the clock to pass the first store time", || {
        (now_ms() > stored + 5).then_some(())
    });
    let t = now_ms();
    c.send("search_pg", &q, &Message::new(&topic, "after-1")).unwrap();
    c.send("search_pg", &q, &Message::new(&topic, "after-2")).unwrap();
    let msgs = pull_n(&c, &q, 0, 3);
    assert!(msgs[1].store_timestamp >= t);
    assert_eq!(c.search_offset(&q, t).unwrap(), 1);
    assert_eq!(c.search_offset(&q, stored).unwrap(), 0);
}

fn consumer_heartbeat(client_id: &str, group: &str, topic: &str) -> HeartbeatData {
    HeartbeatData {
        client_id: client_id.to_string(),
        producer_data_set: vec![ProducerData { group_name: "CLIENT_INNER_PRODUCER".into() }],
        consumer_data_set: vec![ConsumerData {
            group_name: group.to_string(),
            consume_type: ConsumeType::Push,
            message_model: MessageModel::Clustering,
            consume_from_where: ConsumeFromWhere::LastOffset,
            subscription_data_set: vec![SubscriptionData::tag(topic, "*")],
            unit_mode: false,
        }],
    }
}

#[test]
fn heartbeat_registers_and_unregister_removes_the_consumer() {
    let topic = unique("hb");
    create_topic_on("broker-a", &topic, 1);
    let c = client("broker-a");
    let group = unique("hb_cg");
    let id = format!("127.0.0.1@{}", unique("hbclient"));
    assert!(c.consumer_ids(&group).unwrap().is_empty());
    c.heartbeat(&consumer_heartbeat(&id, &group, &topic)).unwrap();
    assert_eq!(c.consumer_ids(&group).unwrap(), vec![id.clone()]);
    c.unregister_client(&id, None, Some(&group)).unwrap();
    wait_for(Duration::from_secs(10), "the consumer to leave", || {
        c.consumer_ids(&group).unwrap().is_empty().then_some(())
    });
}

#[test]
fn lock_held_by_a_is_refused_to_b_until_a_unlocks() {
    let topic = unique("lock");
    create_topic_on("broker-a", &topic, 2);
    let c = client("broker-a");
    let group = unique("lock_cg");
    let queues = vec![MessageQueue::new(&topic, "broker-a", 0), MessageQueue::new(&topic, "broker-a", 1)];
    let a = "127.0.0.1@clientA";
    let b = "127.0.0.1@clientB";
    let locked: BTreeSet<_> = c.lock_batch_mq(&group, a, &queues).unwrap().into_iter().collect();
    assert_eq!(locked, queues.iter().cloned().collect());
    assert!(c.lock_batch_mq(&group, b, &queues).unwrap().is_empty(), "B must not get A's locks");
    assert_eq!(c.lock_batch_mq(&group, a, &queues[..1]).unwrap(), queues[..1].to_vec(), "A renews its lock");
    c.unlock_batch_mq(&group, a, &queues[..1]).unwrap();
    assert_eq!(c.lock_batch_mq(&group, b, &queues).unwrap(), queues[..1].to_vec());
}

fn half_message(topic: &str, group: &str, body: &str) -> Message {
    Message::new(topic, body)
        .with_property(property::TRANSACTION_PREPARED, "true")
        .with_property(property::PRODUCER_GROUP, group)
}

#[test]
fn end_transaction_commit_shows_and_rollback_hides() {
    let topic = unique("tx");
    create_topic_on("broker-a", &topic, 1);
    let c = client("broker-a");
    let q = MessageQueue::new(&topic, "broker-a", 0);
    let group = unique("tx_pg");
    let commit = c.send(&group, &q, &half_message(&topic, &group, "commit me")).unwrap();
    let rollback = c.send(&group, &q, &half_message(&topic, &group, "roll me back")).unwrap();
    assert_eq!(c.max_offset(&q).unwrap(), 0, "half messages are not in the topic");
    for (sent, resolution) in [(&rollback, TransactionResolution::Rollback), (&commit, TransactionResolution::Commit)] {
        let (_, commit_log_offset) = decode_offset_msg_id(&sent.offset_msg_id).unwrap();
        c.end_transaction(
            &EndTransaction {
                producer_group: group.clone(),
                tran_state_table_offset: sent.queue_offset,
                commit_log_offset,
                resolution,
                from_transaction_check: false,
                msg_id: sent.msg_id.clone(),
                transaction_id: sent.transaction_id.clone(),
            },
            None,
        )
        .unwrap();
    }
    let got = pull_n(&c, &q, 0, 1);
    assert_eq!(got[0].body, b"commit me");
    assert_eq!(got[0].msg_id, commit.msg_id);
    // The rollback was sent first on the same connection: nothing else may appear.
    assert_eq!(c.max_offset(&q).unwrap(), 1);
    let after = c.pull(&PullRequest::new("tx_cg", q, 1)).unwrap();
    assert_eq!(after.status, PullStatus::NoNewMsg);
}

#[test]
fn message_sent_back_appears_in_the_retry_topic() {
    let topic = unique("back");
    create_topic_on("broker-a", &topic, 1);
    let c = client("broker-a");
    let q = MessageQueue::new(&topic, "broker-a", 0);
    c.send("back_pg", &q, &Message::new(&topic, "retry me").with_keys(["rk"])).unwrap();
    let original = pull_n(&c, &q, 0, 1).remove(0);
    let group = unique("back_cg");
    c.send_message_back(&group, &original, 1, 16).unwrap();
    let retry = MessageQueue::new(format!("%RETRY%{group}"), "broker-a", 0);
    let got = pull_n(&c, &retry, 0, 1);
    assert_eq!(got[0].body, b"retry me");
    assert_eq!(got[0].reconsume_times, 1);
    assert_eq!(got[0].property(property::RETRY_TOPIC), Some(topic.as_str()));
    assert_eq!(got[0].msg_id, original.msg_id, "the unique key survives the retry");
}

#[test]
fn eight_threads_share_one_client() {
    let topic = unique("shared");
    create_topic_on("broker-a", &topic, 4);
    let c = Arc::new(client("broker-a"));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let c = Arc::clone(&c);
            let topic = topic.clone();
            std::thread::spawn(move || {
                (0..1000i32)
                    .map(|i| {
                        let q = MessageQueue::new(&topic, "broker-a", i % 4);
                        let r = c.send("shared_pg", &q, &Message::new(&topic, format!("{t}-{i}"))).unwrap();
                        assert_eq!(r.status, SendStatus::SendOk);
                        (r.queue.queue_id, r.queue_offset)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut offsets = HashSet::new();
    for t in threads {
        for o in t.join().unwrap() {
            assert!(offsets.insert(o), "queue offset {o:?} acknowledged twice");
        }
    }
    assert_eq!(offsets.len(), 8000);
    let mut bodies = HashSet::new();
    for qid in 0..4 {
        let q = MessageQueue::new(&topic, "broker-a", qid);
        let max = c.max_offset(&q).unwrap();
        assert_eq!(max, 2000);
        for m in pull_n(&c, &q, 0, max as usize) {
            bodies.insert(m.body);
        }
    }
    assert_eq!(bodies.len(), 8000);
}

#[test]
fn bad_input_is_refused_before_the_network() {
    let topic = unique("badinput");
    create_topic_on("broker-a", &topic, 1);
    let c = client("broker-a");
    let q = MessageQueue::new(&topic, "broker-a", 0);
    let invalid = |r: Result<_, Error>, what: &str| match r {
        Err(Error::InvalidArgument { what: w, .. }) => assert_eq!(w, what),
        other => panic!("expected InvalidArgument({what}), got {other:?}"),
    };
    invalid(c.send("", &q, &Message::new(&topic, "x")).map(|_| ()), "group");
    invalid(c.send("pg", &q, &Message::new(&topic, "")).map(|_| ()), "message body");
    invalid(c.send("pg", &q, &Message::new(&topic, vec![1u8; 4 * 1024 * 1024 + 1])).map(|_| ()), "message body");
    let long = "t".repeat(128);
    invalid(c.send("pg", &MessageQueue::new(&long, "broker-a", 0), &Message::new(&long, "x")).map(|_| ()), "topic");
    invalid(
        c.send("pg", &MessageQueue::new("bad topic", "broker-a", 0), &Message::new("bad topic", "x")).map(|_| ()),
        "topic",
    );
    invalid(c.send("bad group!", &q, &Message::new(&topic, "x")).map(|_| ()), "group");
    invalid(
        c.send("pg", &MessageQueue::new(&topic, "broker-a", -1), &Message::new(&topic, "x")).map(|_| ()),
        "queue id",
    );
    invalid(c.send("pg", &q, &Message::new(&topic, "x").with_property("a\u{1}b", "v")).map(|_| ()), "message property");
    let mixed = [Message::new(&topic, "x"), Message::new("OtherTopic", "y")];
    invalid(c.send_batch("pg", &q, &mixed).map(|_| ()), "batch");
    let delayed = [Message::new(&topic, "x"), Message::new(&topic, "y").with_delay_level(3)];
    invalid(c.send_batch("pg", &q, &delayed).map(|_| ()), "batch");
    invalid(c.send_batch("pg", &q, &[]).map(|_| ()), "batch");
    invalid(c.update_consumer_offset("", &q, 1), "group");
    invalid(c.pull(&PullRequest::new("cg", MessageQueue::new(&topic, "broker-a", -3), 0)).map(|_| ()), "queue id");
    assert_eq!(c.max_offset(&q).unwrap(), 0, "nothing was sent");
}

#[test]
fn broker_response_codes_map_to_variants() {
    let c = client("broker-a");
    // Unknown topic (pull does not auto-create).
    let missing = unique("missing");
    let err = c.pull(&PullRequest::new("map_cg", MessageQueue::new(&missing, "broker-a", 0), 0)).unwrap_err();
    assert!(matches!(err, Error::TopicNotFound { ref topic, .. } if *topic == missing), "{err:?}");
    assert_eq!(err.response_code(), Some(ResponseCode::TopicNotExist));

    // Offsets of a group the broker does not know: refused by 5.x, stored by 4.x.
    let q = MessageQueue::new(&missing, "broker-a", 0);
    let result = c.update_consumer_offset(&unique("nogroup"), &q, 1);
    if brokers_are_4x() {
        assert!(result.is_ok(), "{result:?}");
    } else {
        let err = result.unwrap_err();
        assert!(matches!(err, Error::Offset { code: ResponseCode::SubscriptionGroupNotExist, .. }), "{err:?}");
    }

    // Write-only topic: pulling is forbidden.
    let wo = unique("writeonly");
    namesrv()
        .create_topic_on_broker(&broker_addr("broker-a"), &TopicConfig::new(&wo).queues(1).perm(PERM_WRITE))
        .unwrap();
    let err = c.pull(&PullRequest::new("map_cg", MessageQueue::new(&wo, "broker-a", 0), 0)).unwrap_err();
    assert!(matches!(err, Error::NoPermission { .. }), "{err:?}");
    assert!(!err.is_retryable());

    // A pull without a subscription by a group that never sent a heartbeat.
    let topic = unique("nosub");
    create_topic_on("broker-a", &topic, 1);
    let mut req = PullRequest::new(unique("nosub_cg"), MessageQueue::new(&topic, "broker-a", 0), 0);
    req.expression = None;
    let err = c.pull(&req).unwrap_err();
    assert!(matches!(err, Error::MessagePull { code: ResponseCode::SubscriptionNotExist, .. }), "{err:?}");

    // An unknown request code.
    let resp = c.invoke(RemotingCommand::request(9999), Duration::from_secs(5)).unwrap();
    assert_eq!(resp.response_code(), ResponseCode::RequestCodeNotSupported);
    let ctx = ResponseContext { operation: "x", kind: OperationKind::Other, addr: c.addr(), topic: "", queue_id: -1 };
    let err = Error::from_response(resp.response_code(), resp.remark.as_deref(), ctx);
    assert!(matches!(err, Error::System { code: ResponseCode::RequestCodeNotSupported, .. }), "{err:?}");
}
