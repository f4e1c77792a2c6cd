//! Namespaces end to end against the real brokers: the producer, both
//! consumers, transactions, retry and dead-letter topics and the `rmq` tool
//! with a namespace, as Java's `ClientConfig.setNamespace` does it (topics
//! `ns%topic`, groups `ns%group`, retry `%RETRY%ns%group`, DLQ
//! `%DLQ%ns%group`; the user sees names without the namespace), and the
//! official Java client with the same namespace reads what we send and the
//! other way round.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::rmq::*;
use common::*;
use rocketmq_blocking::consumer::{
    ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus, ConsumeFromWhere, LitePullConsumer, PushConsumer,
};
use rocketmq_blocking::producer::LocalTransactionState;
use rocketmq_blocking::{Message, MessageExt, MessageQueue, TransactionProducer};

/// Sends to freshly started brokers on a busy 2-core machine may be slow
/// (the Testing preset's 2 s is for warm ones).
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Deliveries seen by a listener: (body, topic as the user saw it, reconsume times).
type Deliveries = Arc<Mutex<Vec<(String, String, i32)>>>;

fn bodies(d: &Deliveries) -> BTreeSet<String> {
    d.lock().unwrap().iter().map(|(b, _, _)| b.clone()).collect()
}

/// The committed offsets of `group` (as on the wire) on every queue of `wire_topic` equal the queues' max.
fn await_offsets_committed(group: &str, wire_topic: &str) {
    let queues = topic_queues(wire_topic);
    wait_for(Duration::from_secs(30), &format!("{group}'s offsets committed to the end"), || {
        queues
            .iter()
            .all(|q| {
                let c = client(&q.broker_name);
                c.query_consumer_offset(group, q).ok().flatten() == c.max_offset(q).ok()
            })
            .then_some(())
    });
}

#[test]
fn producer_consumers_transactions_retry_and_dlq_use_the_namespace() {
    let ns = unique("ns");
    let topic = unique("nstopic");
    let wire = format!("{ns}%{topic}");
    create_topic_on("broker-a", &wire, 2);

    // Producer and transactions with the namespace.
    let pg = unique("ns_pg");
    let listener = |_: &MessageExt| LocalTransactionState::CommitMessage;
    let tp = TransactionProducer::new(
        producer_config(&pg).namespace(&ns).send_timeout(SEND_TIMEOUT).build().unwrap(),
        listener,
    )
    .unwrap();
    tp.start().unwrap();
    let mut sent: BTreeSet<String> = BTreeSet::new();
    for i in 0..20 {
        let body = format!("m-{i}");
        let r = tp.producer().send(&Message::new(&topic, body.clone())).unwrap();
        assert_eq!(r.queue.topic, topic, "the send result names the topic without the namespace");
        sent.insert(body);
    }
    for (body, state) in [
        ("tx-commit", LocalTransactionState::CommitMessage),
        ("tx-rollback", LocalTransactionState::RollbackMessage),
        ("tx-unknown", LocalTransactionState::Unknown), // committed by the check-back listener
    ] {
        let r = tp.send_message_in_transaction(&Message::new(&topic, body), |_, _| state).unwrap();
        assert_eq!(r.send_result.queue.topic, topic);
    }
    sent.extend(["tx-commit".to_string(), "tx-unknown".to_string()]);
    // Stored under ns%topic, the group registered as ns%group.
    let stored = wait_for(Duration::from_secs(60), "22 messages stored under ns%topic", || {
        Some(pull_all(&wire)).filter(|m| m.len() >= sent.len())
    });
    assert_eq!(body_strings(&stored).into_iter().collect::<BTreeSet<_>>(), sent, "rolled back one absent");
    assert!(stored.iter().all(|m| m.topic == wire), "stored under {wire}");
    let id = tp.producer().client_id().to_string();
    wait_for(Duration::from_secs(10), "the producer group registered as ns%group", || {
        producer_connections("broker-a", &format!("{ns}%{pg}")).contains(&id).then_some(())
    });
    tp.shutdown();

    // Push consumer: m-3 fails once (comes back from %RETRY%ns%group), m-7
    // always fails and ends in %DLQ%ns%group after max_reconsume_times 1.
    let cg = unique("ns_cg");
    let seen: Deliveries = Arc::default();
    let config = consumer_config(&cg)
        .namespace(&ns)
        .max_reconsume_times(1)
        .consume_from_where(ConsumeFromWhere::FirstOffset)
        .build()
        .unwrap();
    let push = PushConsumer::new(config).unwrap();
    push.subscribe(&topic, "*").unwrap();
    let s = Arc::clone(&seen);
    push.register_concurrently(move |msgs: &[MessageExt], ctx: &mut ConsumeConcurrentlyContext| {
        let mut s = s.lock().unwrap();
        let mut fail = false;
        for m in msgs {
            let body = String::from_utf8_lossy(&m.body).into_owned();
            fail |= body == "m-7" || (body == "m-3" && m.reconsume_times == 0);
            s.push((body, m.topic.clone(), m.reconsume_times));
        }
        ctx.set_delay_level(1);
        if fail {
            ConsumeConcurrentlyStatus::ReconsumeLater
        } else {
            ConsumeConcurrentlyStatus::ConsumeSuccess
        }
    })
    .unwrap();
    push.start().unwrap();
    let retried = |body: &str, times: i32| seen.lock().unwrap().iter().any(|(b, _, n)| b == body && *n == times);
    wait_for(Duration::from_secs(90), "every message, m-3 and m-7 redelivered", || {
        (bodies(&seen) == sent && retried("m-3", 1) && retried("m-7", 1)).then_some(())
    });
    let dlq = MessageQueue::new(format!("%DLQ%{ns}%{cg}"), "broker-a", 0);
    let dead = pull_n(&client("broker-a"), &dlq, 0, 1);
    assert_eq!(dead[0].body, b"m-7", "m-7 is in %DLQ%ns%group");
    let retry_route = namesrv().topic_route(&format!("%RETRY%{ns}%{cg}"));
    assert!(retry_route.is_ok(), "the retry topic is %RETRY%ns%group: {retry_route:?}");
    assert!(namesrv().topic_route(&format!("%RETRY%{cg}")).is_err(), "no retry topic without the namespace");
    let topics: BTreeSet<String> = seen.lock().unwrap().iter().map(|(_, t, _)| t.clone()).collect();
    assert_eq!(topics, BTreeSet::from([topic.clone()]), "the listener sees the topic without the namespace");
    await_offsets_committed(&format!("{ns}%{cg}"), &wire);
    push.shutdown();

    // Lite pull consumer with the namespace.
    let lg = unique("ns_lg");
    let config = consumer_config(&lg).namespace(&ns).consume_from_where(ConsumeFromWhere::FirstOffset).build().unwrap();
    let lite = LitePullConsumer::new(config).unwrap();
    lite.subscribe(&topic, "*").unwrap();
    lite.start().unwrap();
    let polled: Deliveries = Arc::default();
    wait_for(Duration::from_secs(60), "the lite pull consumer to read every message", || {
        for m in lite.poll(Duration::from_millis(500)).unwrap() {
            polled.lock().unwrap().push((String::from_utf8_lossy(&m.body).into_owned(), m.topic.clone(), 0));
        }
        (bodies(&polled) == sent).then_some(())
    });
    assert!(polled.lock().unwrap().iter().all(|(_, t, _)| *t == topic), "polled messages name the user's topic");
    assert!(lite.assignment().iter().all(|q| q.topic == topic), "queues as the user names them");
    lite.commit_sync().unwrap();
    await_offsets_committed(&format!("{ns}%{lg}"), &wire);
    lite.shutdown();
}

#[test]
fn rmq_with_a_namespace() {
    let ns = unique("rns");
    let topic = unique("rmq_ns");
    let wire = format!("{ns}%{topic}");
    let with_ns = |args: &[&str]| {
        let mut a = vec!["--namespace", ns.as_str()];
        a.extend_from_slice(args);
        ok(&a)
    };
    // create-topic and send: stored under ns%topic.
    with_ns(&["create-topic", "--topic", &topic, "--queues", "2"]);
    assert!(namesrv().topic_route(&wire).is_ok(), "create-topic made {wire}");
    let out = with_ns(&["send", "--topic", &topic, "--count", "6", "--body", "rmq-ns-{n}"]);
    assert_eq!(out.lines().count(), 6, "{out}");
    let stored: BTreeSet<String> = body_strings(&pull_all(&wire)).into_iter().collect();
    let want: BTreeSet<String> = (0..6).map(|i| format!("rmq-ns-{i}")).collect();
    assert_eq!(stored, want);
    // route and offsets name the namespaced topic.
    let route = with_ns(&["route", "--topic", &topic]);
    assert_eq!(route.lines().count(), 3, "header and two brokers: {route}");
    // consume (pull, and push with a group that commits).
    let mut args = vec!["consume", "--topic", &topic, "--count", "6", "--timeout", "60", "--format", "body"];
    let out = with_ns(&args);
    assert_eq!(out.lines().map(str::to_string).collect::<BTreeSet<_>>(), want);
    let group = unique("rmq_ns_cg");
    args.extend(["--mode", "push", "--group", &group, "--from-begin"]);
    let out = with_ns(&args);
    assert_eq!(out.lines().map(str::to_string).collect::<BTreeSet<_>>(), want);
    await_offsets_committed(&format!("{ns}%{group}"), &wire);
    let offsets = with_ns(&["offsets", "--topic", &topic, "--group", &group]);
    let consumed: i64 = offsets.lines().skip(1).map(|l| l.split('\t').nth(4).unwrap().parse::<i64>().unwrap()).sum();
    assert_eq!(consumed, 6, "offsets of ns%group: {offsets}");
}

/// The Java peer's class path (built once; rocketmq-client of the broker's release).
fn java_classpath() -> &'static str {
    static CP: OnceLock<String> = OnceLock::new();
    CP.get_or_init(|| java::build_peer("interop-java", &java::broker_version(&client("broker-a")), &[]))
}

#[test]
fn the_java_client_with_the_same_namespace_reads_ours_and_we_read_its() {
    let ns = unique("jns");
    let topic = unique("java_ns");
    let wire = format!("{ns}%{topic}");
    create_topic(&wire, 2);

    // Ours → Java's DefaultMQPushConsumer with setNamespace.
    let p = rocketmq_blocking::Producer::new(
        producer_config(&unique("jns_pg")).namespace(&ns).send_timeout(SEND_TIMEOUT).build().unwrap(),
    )
    .unwrap();
    p.start().unwrap();
    let ours: BTreeSet<String> = (0..10).map(|i| format!("rust-ns-{i}")).collect();
    for b in &ours {
        p.send(&Message::new(&topic, b.clone())).unwrap();
    }
    p.shutdown();
    let jgroup = unique("jns_cg");
    let lines = java::run_class(
        java_classpath(),
        "interop.NamespacePeer",
        &["consume", &ns, &topic, &jgroup, "10"],
        &[],
        "MSG",
    );
    let got: HashMap<String, String> = lines
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            (f[1].to_string(), f[2].to_string())
        })
        .collect();
    assert_eq!(got.keys().cloned().collect::<BTreeSet<_>>(), ours, "Java read what we sent");
    assert!(got.values().all(|t| *t == topic), "Java's listener sees {topic}: {got:?}");
    // Java committed under ns%group, as we do.
    await_offsets_committed(&format!("{ns}%{jgroup}"), &wire);

    // Java's DefaultMQProducer with setNamespace → our push consumer.
    let lines = java::run_class(
        java_classpath(),
        "interop.NamespacePeer",
        &["produce", &ns, &topic, &unique("jns_jpg"), "10"],
        &[],
        "SENT",
    );
    assert_eq!(lines.len(), 10);
    assert!(lines.iter().all(|l| l.ends_with(&format!("|{topic}"))), "Java's send results name {topic}: {lines:?}");
    let theirs: BTreeSet<String> = (0..10).map(|i| format!("java-ns-{i}")).collect();
    let stored: BTreeSet<String> = body_strings(&pull_all(&wire)).into_iter().collect();
    assert!(stored.is_superset(&theirs), "Java stored under {wire}");
    let seen: Deliveries = Arc::default();
    let config = consumer_config(&unique("jns_rcg"))
        .namespace(&ns)
        .consume_from_where(ConsumeFromWhere::FirstOffset)
        .build()
        .unwrap();
    let c = PushConsumer::new(config).unwrap();
    c.subscribe(&topic, "*").unwrap();
    let s = Arc::clone(&seen);
    c.register_concurrently(move |msgs: &[MessageExt], _: &mut ConsumeConcurrentlyContext| {
        let mut s = s.lock().unwrap();
        for m in msgs {
            s.push((String::from_utf8_lossy(&m.body).into_owned(), m.topic.clone(), m.reconsume_times));
        }
        ConsumeConcurrentlyStatus::ConsumeSuccess
    })
    .unwrap();
    c.start().unwrap();
    wait_for(Duration::from_secs(60), "our consumer to read Java's messages", || {
        bodies(&seen).is_superset(&theirs).then_some(())
    });
    c.shutdown();
    assert!(seen.lock().unwrap().iter().all(|(_, t, _)| *t == topic));
}
