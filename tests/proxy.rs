//! Through the RocketMQ 5.x proxy (cluster mode) with the remoting
//! protocol: the proxy's remoting port stands in for the name server and
//! for every broker. Runs when the harness started the proxy
//! (`ROCKETMQ_PROXY=1 tests/broker/rocketmq.sh start` exports
//! `ROCKETMQ_PROXY_ADDR`); skipped with a message otherwise.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use rocketmq_blocking::broker::{BrokerClient, ClientConfig, PullRequest, PullStatus};
use rocketmq_blocking::consumer::{
    ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus, ConsumeFromWhere, LitePullConsumer, PushConsumer,
};
use rocketmq_blocking::producer::LocalTransactionState;
use rocketmq_blocking::protocol::ResponseCode;
use rocketmq_blocking::{
    Error, Message, MessageExt, MessageQueue, NameServerClient, Producer, SendStatus, TransactionProducer,
};

const N: usize = 200;

/// The proxy's remoting address, or `None` (with a message) when it is not running.
fn proxy_addr(test: &str) -> Option<String> {
    match std::env::var("ROCKETMQ_PROXY_ADDR") {
        Ok(a) if !a.is_empty() => Some(a),
        _ => {
            eprintln!("{test}: skipped, no proxy (start it with `ROCKETMQ_PROXY=1 tests/broker/rocketmq.sh start`)");
            None
        }
    }
}

/// A topic on both brokers, once the proxy serves its route (the proxy
/// caches routes, so a new topic can take a moment).
fn proxy_topic(proxy: &str, prefix: &str) -> String {
    let topic = unique(prefix);
    create_topic(&topic, 4);
    let ns = NameServerClient::new(proxy).unwrap();
    let route = wait_for(Duration::from_secs(60), "the proxy to serve the new topic's route", || {
        ns.topic_route(&topic).ok().filter(|r| r.queue_datas.len() >= 2)
    });
    // Every broker in the proxy's route is the proxy itself.
    for b in &route.broker_datas {
        assert_eq!(b.master_addr(), Some(proxy), "{route:?}");
    }
    topic
}

/// A consumer of a new group (from the first offset) whose name server is the proxy.
fn proxy_consumer_config(proxy: &str, group_prefix: &str) -> rocketmq_blocking::ConsumerConfig {
    consumer_config(&unique(group_prefix))
        .namesrv_addr(proxy)
        .consume_from_where(ConsumeFromWhere::FirstOffset)
        .build()
        .unwrap()
}

/// Sends `N` messages through the proxy; returns their bodies.
fn send_through(proxy: &str, topic: &str) -> Vec<String> {
    let p = Producer::new(producer_config(&unique("proxy_pg")).namesrv_addr(proxy).build().unwrap()).unwrap();
    p.start().unwrap();
    let bodies: Vec<String> = (0..N).map(|i| format!("via-proxy-{i}")).collect();
    for b in &bodies {
        let r = p.send(&Message::new(topic, b.clone()).with_keys([b])).expect("send through the proxy");
        assert_eq!(r.status, SendStatus::SendOk, "{r:?}");
        assert!(!r.msg_id.is_empty(), "{r:?}");
    }
    p.shutdown();
    bodies
}

#[test]
fn producer_sends_through_the_proxy() {
    let Some(proxy) = proxy_addr("producer_sends_through_the_proxy") else { return };
    let topic = proxy_topic(&proxy, "proxy_send");
    let sent = send_through(&proxy, &topic);
    // Read back from the brokers themselves.
    let stored = pull_all(&topic);
    assert_eq!(
        body_strings(&stored).into_iter().collect::<BTreeSet<_>>(),
        sent.iter().cloned().collect::<BTreeSet<_>>()
    );
    println!("stored {} messages", stored.len());
}

#[test]
fn lite_pull_consumer_reads_through_the_proxy() {
    let Some(proxy) = proxy_addr("lite_pull_consumer_reads_through_the_proxy") else { return };
    let topic = proxy_topic(&proxy, "proxy_lite");
    let sent: HashSet<String> = send_through(&proxy, &topic).into_iter().collect();
    let c = LitePullConsumer::new(proxy_consumer_config(&proxy, "proxy_lite_cg")).unwrap();
    c.subscribe(&topic, "*").unwrap();
    c.start().unwrap();
    let mut got = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while got.len() < sent.len() {
        assert!(Instant::now() < deadline, "polled {} of {N} through the proxy", got.len());
        got.extend(body_strings(&c.poll(Duration::from_millis(500)).expect("poll through the proxy")));
    }
    assert_eq!(got, sent);
    c.shutdown();
}

#[test]
fn push_consumer_receives_through_the_proxy() {
    let Some(proxy) = proxy_addr("push_consumer_receives_through_the_proxy") else { return };
    let topic = proxy_topic(&proxy, "proxy_push");
    let sent: HashSet<String> = send_through(&proxy, &topic).into_iter().collect();
    let got: Arc<Mutex<HashSet<String>>> = Arc::default();
    let c = PushConsumer::new(proxy_consumer_config(&proxy, "proxy_push_cg")).unwrap();
    c.subscribe(&topic, "*").unwrap();
    let seen = Arc::clone(&got);
    c.register_concurrently(move |msgs: &[MessageExt], _: &mut ConsumeConcurrentlyContext| {
        seen.lock().unwrap().extend(body_strings(msgs));
        ConsumeConcurrentlyStatus::ConsumeSuccess
    })
    .unwrap();
    c.start().unwrap();
    wait_for(Duration::from_secs(60), "all messages through the proxy", || {
        (got.lock().unwrap().len() >= sent.len()).then_some(())
    });
    assert_eq!(*got.lock().unwrap(), sent);
    c.shutdown();
}

/// The broker operations the consumers use, one by one through the proxy:
/// offsets, pulls, queue locks and send-back all name the broker (`bname`),
/// since the proxy stands for every broker at one address.
#[test]
fn broker_operations_through_the_proxy_name_the_broker() {
    let Some(proxy) = proxy_addr("broker_operations_through_the_proxy_name_the_broker") else { return };
    let topic = proxy_topic(&proxy, "proxy_ops");
    let q = MessageQueue::new(&topic, "broker-a", 0);
    let bodies: Vec<String> = (0..5).map(|i| format!("op-{i}")).collect();
    let msgs: Vec<Message> = bodies.iter().map(|b| Message::new(&topic, b.clone())).collect();
    send_in_batches(&client("broker-a"), &q, &msgs);

    let config = ClientConfig::builder().request_timeout(Duration::from_secs(10)).build().unwrap();
    let c = BrokerClient::connect(&proxy, &config).unwrap();
    let group = unique("proxy_ops_cg");
    assert_eq!(c.max_offset(&q).unwrap(), 5);
    assert_eq!(c.min_offset(&q).unwrap(), 0);
    assert_eq!(c.search_offset(&q, 0).unwrap(), 0);
    let mut req = PullRequest::new(&group, q.clone(), 0);
    req.expression = Some("*".into());
    let r = c.pull(&req).unwrap();
    assert_eq!(r.status, PullStatus::Found);
    assert_eq!(body_strings(&r.messages), bodies);
    // (The pull created the group at the broker; an offset needs one.)
    assert_eq!(c.query_consumer_offset(&group, &q).unwrap(), None);
    c.update_consumer_offset(&group, &q, 3).unwrap();
    assert_eq!(c.query_consumer_offset(&group, &q).unwrap(), Some(3));
    // The offset is stored at broker-a itself.
    assert_eq!(client("broker-a").query_consumer_offset(&group, &q).unwrap(), Some(3));

    assert_eq!(c.lock_batch_mq(&group, "proxy-test@1", std::slice::from_ref(&q)).unwrap(), vec![q.clone()]);
    c.unlock_batch_mq(&group, "proxy-test@1", std::slice::from_ref(&q)).unwrap();

    // Without the broker name the proxy cannot route a send-back.
    let refused = c.send_message_back(&group, &r.messages[0], 1, 16);
    assert!(matches!(&refused, Err(Error::System { code: ResponseCode::VersionNotSupported, .. })), "{refused:?}");
    c.send_message_back_to_broker("broker-a", &group, &r.messages[0], 1, 16).unwrap();
    // After delay level 1 (1 s) the message is in the group's retry topic on broker-a.
    let retry = MessageQueue::new(format!("%RETRY%{group}"), "broker-a", 0);
    let back = pull_n(&client("broker-a"), &retry, 0, 1);
    assert_eq!(body_strings(&back), vec![bodies[0].clone()]);
}

/// The lite-pull consumer's offsets through the proxy: `commit_sync` stores
/// them at the brokers, `committed` reads them back, and `seek` on an
/// assigned queue starts there.
#[test]
fn lite_pull_consumer_commits_and_seeks_through_the_proxy() {
    let Some(proxy) = proxy_addr("lite_pull_consumer_commits_and_seeks_through_the_proxy") else { return };
    let topic = proxy_topic(&proxy, "proxy_lite_commit");
    let sent: HashSet<String> = send_through(&proxy, &topic).into_iter().collect();
    let config = proxy_consumer_config(&proxy, "proxy_lite_commit_cg");
    let group = config.group().to_string();
    let c = LitePullConsumer::new(config).unwrap();
    c.subscribe(&topic, "*").unwrap();
    c.start().unwrap();
    let mut got = HashSet::new();
    wait_for(Duration::from_secs(60), "every message polled through the proxy", || {
        got.extend(body_strings(&c.poll(Duration::from_millis(500)).expect("poll through the proxy")));
        (got.len() >= sent.len()).then_some(())
    });
    assert_eq!(got, sent);
    c.commit_sync().unwrap();
    // Stored at the brokers themselves, and read back through the proxy.
    for q in topic_queues(&topic) {
        let max = client(&q.broker_name).max_offset(&q).unwrap();
        let at_broker = client(&q.broker_name).query_consumer_offset(&group, &q).unwrap();
        assert_eq!(at_broker, Some(max), "{q:?}");
        assert_eq!(c.committed(&q).unwrap(), Some(max), "{q:?}");
    }
    c.shutdown();

    // An assigned queue, seeked through the proxy.
    let q = topic_queues(&topic).into_iter().find(|q| client(&q.broker_name).max_offset(q).unwrap() >= 5).unwrap();
    let max = client(&q.broker_name).max_offset(&q).unwrap();
    let a = LitePullConsumer::new(proxy_consumer_config(&proxy, "proxy_lite_seek_cg")).unwrap();
    a.assign(std::slice::from_ref(&q)).unwrap();
    a.seek(&q, max - 3).unwrap();
    a.start().unwrap();
    let mut offsets = Vec::new();
    wait_for(Duration::from_secs(30), "the last 3 messages of the seeked queue", || {
        offsets.extend(a.poll(Duration::from_millis(500)).unwrap().iter().map(|m| m.queue_offset));
        (offsets.len() >= 3).then_some(())
    });
    assert_eq!(offsets, vec![max - 3, max - 2, max - 1]);
    a.shutdown();
}

/// Transactions through the proxy (remoting) are decided by the check-back
/// alone: the proxy forwards a half message to its broker as it is and
/// keeps no transaction data for it, so the END_TRANSACTION that follows
/// finds none (its `TransactionActivity` answers SUCCESS and drops it); the
/// broker then asks the producer group, the proxy forwards the check-back to
/// our connection, and the listener's answer is applied. Shown here: every
/// half message is checked back, a local commit the listener overrules is
/// rolled back, and commit and rollback by the listener work.
#[test]
fn transactions_through_the_proxy_are_decided_by_the_check_back() {
    let Some(proxy) = proxy_addr("transactions_through_the_proxy_are_decided_by_the_check_back") else { return };
    // The proxy checks a topic's message type (its enableTopicMessageTypeCheck,
    // on by default): half messages only go to a TRANSACTION topic, made
    // with the release's mqadmin (`-a +message.type=TRANSACTION`).
    let topic = unique("proxy_tx");
    harness(&[
        "mqadmin",
        "updateTopic",
        "-c",
        CLUSTER,
        "-t",
        &topic,
        "-r",
        "4",
        "-w",
        "4",
        "-a",
        "+message.type=TRANSACTION",
    ]);
    let ns = NameServerClient::new(&proxy).unwrap();
    wait_for(Duration::from_secs(60), "the proxy to serve the new topic's route", || {
        ns.topic_route(&topic).ok().filter(|r| r.queue_datas.len() >= 2)
    });
    let checked: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let seen = Arc::clone(&checked);
    let listener = move |m: &MessageExt| {
        let body = String::from_utf8_lossy(&m.body).into_owned();
        let rollback = body == "tx-rollback" || body == "tx-overruled";
        seen.lock().unwrap().insert(body);
        if rollback {
            LocalTransactionState::RollbackMessage
        } else {
            LocalTransactionState::CommitMessage
        }
    };
    let config = producer_config(&unique("proxy_tx_pg"))
        .namesrv_addr(&proxy)
        .send_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let tp = TransactionProducer::new(config, listener).unwrap();
    tp.start().unwrap();
    let local = [
        ("tx-commit", LocalTransactionState::CommitMessage),
        ("tx-rollback", LocalTransactionState::RollbackMessage),
        ("tx-unknown", LocalTransactionState::Unknown),
        ("tx-overruled", LocalTransactionState::CommitMessage),
    ];
    for (body, state) in local {
        let r = tp.send_message_in_transaction(&Message::new(&topic, body), |_, _| state).unwrap();
        assert_eq!(r.send_result.status, SendStatus::SendOk, "{r:?}");
    }
    let all: BTreeSet<String> = local.iter().map(|(b, _)| b.to_string()).collect();
    wait_for(Duration::from_secs(60), "a check-back for every half message", || {
        (*checked.lock().unwrap() == all).then_some(())
    });
    // Read back from the brokers themselves: what the listener committed.
    let stored = wait_for(Duration::from_secs(60), "the committed messages at the brokers", || {
        Some(body_strings(&pull_all(&topic)).into_iter().collect::<BTreeSet<_>>()).filter(|s| s.len() >= 2)
    });
    assert_eq!(stored, BTreeSet::from(["tx-commit".to_string(), "tx-unknown".to_string()]));
    tp.shutdown();
}
