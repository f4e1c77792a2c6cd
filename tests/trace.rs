//! Message traces against the real brokers: records in Java's format (checked
//! against the official encoder), read back by the release's own `mqadmin
//! queryMsgTraceById`, both ways with a Java producer that has tracing on,
//! transaction ends, a custom trace topic, and nothing started when off.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use common::*;
use rocketmq_blocking::consumer::{ConsumeConcurrentlyStatus, ConsumeFromWhere, PushConsumer};
use rocketmq_blocking::producer::{LocalTransactionState, Producer, TransactionProducer};
use rocketmq_blocking::protocol::trace::{encode, index_keys, MessageType, TraceBean, TraceContext, TraceType};
use rocketmq_blocking::trace::{query_traces, TraceHop, DEFAULT_TRACE_TOPIC};
use rocketmq_blocking::{ClientConfig, Message, MessageExt};

/// Traces reach the broker within a second of a shutdown (it flushes); the
/// index is updated shortly after. Polled, with room for a loaded machine.
const TRACE_WAIT: Duration = Duration::from_secs(60);

/// One test at a time: the thread-count test counts the process's trace threads.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn java_cp() -> &'static str {
    static CP: OnceLock<String> = OnceLock::new();
    CP.get_or_init(|| common::java::build_peer("interop-java", &common::java::broker_version(&client("broker-a")), &[]))
}

/// Runs `interop.Trace ARGS`; its stdout.
fn java_trace(args: &[&str]) -> String {
    let logs = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("interop-java-logs");
    let mut java = Command::new("java");
    java.arg("-cp")
        .arg(java_cp())
        .arg(format!("-Drocketmq.log.root={}", logs.display()))
        .arg("interop.Trace")
        .args(args)
        .env("ROCKETMQ_NAMESRV_ADDR", namesrv_addr());
    common::java::run_bounded(java, common::java::RUN_LIMIT, &format!("java interop.Trace {}", args.join(" "))).stdout
}

fn mqadmin(args: &[&str]) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/broker/rocketmq.sh");
    let out = Command::new("timeout").arg("120").arg("bash").arg(script).arg("mqadmin").args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "mqadmin {args:?} failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

/// The hops of `msg_id`'s trace once `done` holds for them.
fn wait_hops(topic: &str, msg_id: &str, what: &str, done: impl Fn(&[TraceHop]) -> bool) -> Vec<TraceHop> {
    let ns = namesrv();
    let config = ClientConfig::default();
    wait_for(TRACE_WAIT, what, || {
        let hops = query_traces(&ns, &config, topic, msg_id, 64).ok()?;
        done(&hops).then_some(hops)
    })
}

fn has(hops: &[TraceHop], ty: TraceType, group: &str) -> bool {
    hops.iter().any(|h| h.record.trace_type == ty && h.record.group == group)
}

/// A push consumer with tracing on that consumes from the first offset and
/// counts messages.
fn traced_consumer(group: &str, topic: &str, seen: Arc<AtomicUsize>) -> PushConsumer {
    let config =
        consumer_config(group).consume_from_where(ConsumeFromWhere::FirstOffset).enable_trace(true).build().unwrap();
    let c = PushConsumer::new(config).unwrap();
    c.subscribe(topic, "*").unwrap();
    c.register_concurrently(move |msgs: &[MessageExt], _: &mut _| {
        seen.fetch_add(msgs.len(), Ordering::SeqCst);
        ConsumeConcurrentlyStatus::ConsumeSuccess
    })
    .unwrap();
    c
}

fn unvisible(s: &str) -> String {
    s.replace("\\1", "\u{1}").replace("\\2", "\u{2}")
}

#[test]
fn records_are_what_the_java_encoder_writes() {
    let _serial = serial();
    let out = java_trace(&["encode"]);
    let java: Vec<(String, String, String)> = out
        .lines()
        .filter_map(|l| l.strip_prefix("enc|"))
        .map(|l| {
            let (name, rest) = l.split_once('|').unwrap();
            let (data, keys) = rest.rsplit_once('|').unwrap();
            (name.to_string(), unvisible(data), keys.to_string())
        })
        .collect();
    assert_eq!(java.len(), 5, "{out}");
    let bean = |id: &str, tags: Option<&str>, keys: Option<&str>| TraceBean {
        topic: "Orders".into(),
        msg_id: id.into(),
        tags: tags.map(Into::into),
        keys: keys.map(Into::into),
        store_host: "127.0.0.1:20911".into(),
        ..TraceBean::default()
    };
    let ctx = |ty, group: &str, beans: Vec<TraceBean>| {
        let mut c = TraceContext::new(ty, 1_700_000_000_123, group);
        c.region_id = "DefaultRegion".into();
        c.request_id = "7F00000100002A9F0000000000000001".into();
        c.beans = beans;
        c
    };
    let id = |n: u8| format!("7F00000100002A9F000000000000000{n}");
    let mut a = bean(&id(1), Some("TagA"), Some("k1 k2"));
    a.body_length = 42;
    a.offset_msg_id = "7F00000100004F7F0000000000001234".into();
    let mut pub_ = ctx(TraceType::Pub, "pg", vec![a.clone()]);
    pub_.cost_ms = 7;
    let mut half = bean(&id(2), None, None);
    half.msg_type = MessageType::TransHalf;
    let mut pub_half = ctx(TraceType::Pub, "pg", vec![half]);
    pub_half.success = false;
    let mut b = bean(&id(3), Some("TagB"), None);
    b.retry_times = 3;
    let mut before = ctx(TraceType::SubBefore, "cg", vec![a.clone(), b.clone()]);
    before.region_id = "R1".into();
    let mut after = ctx(TraceType::SubAfter, "cg", vec![a, b]);
    after.cost_ms = 5;
    after.success = false;
    after.context_code = 4;
    let mut e = bean(&id(1), Some("TagA"), Some("k1"));
    e.msg_type = MessageType::TransCommit;
    e.transaction_id = Some(id(1));
    e.transaction_state = "COMMIT_MESSAGE".into();
    e.from_transaction_check = true;
    let end = ctx(TraceType::EndTransaction, "pg", vec![e]);
    let ours =
        [("pub", pub_), ("pub-half", pub_half), ("sub-before", before), ("sub-after", after), ("end-transaction", end)];
    for ((name, c), (jname, jdata, jkeys)) in ours.iter().zip(&java) {
        assert_eq!(name, jname);
        assert_eq!(&encode(c), jdata, "record {name}");
        let mut keys = index_keys(c);
        keys.sort();
        keys.dedup();
        assert_eq!(&keys.join(","), jkeys, "keys of {name}");
        // And what we write reads back as it was.
        let back = rocketmq_blocking::protocol::trace::decode(jdata).unwrap();
        assert_eq!(back.len(), c.beans.len());
        assert_eq!(back[0].beans[0].msg_id, c.beans[0].msg_id);
    }
}

#[test]
fn mqadmin_shows_our_producer_and_consumer_records() {
    let _serial = serial();
    let topic = unique("trace_t");
    create_topic(&topic, 2);
    let (pg, cg) = (unique("trace_pg"), unique("trace_cg"));
    let producer = Producer::new(producer_config(&pg).enable_trace(true).build().unwrap()).unwrap();
    producer.start().unwrap();
    let sent = producer.send(&Message::new(&topic, "traced").with_tags("TagT").with_keys(["order-7"])).unwrap();
    producer.shutdown();
    let stats = producer.trace_stats().unwrap();
    assert_eq!((stats.sent, stats.dropped, stats.failed), (1, 0, 0), "{stats:?}");

    let seen = Arc::new(AtomicUsize::new(0));
    let consumer = traced_consumer(&cg, &topic, Arc::clone(&seen));
    consumer.start().unwrap();
    wait_for(TRACE_WAIT, "the message consumed", || (seen.load(Ordering::SeqCst) >= 1).then_some(()));
    consumer.shutdown();
    let stats = consumer.trace_stats().unwrap();
    assert_eq!((stats.sent, stats.dropped, stats.failed), (2, 0, 0), "consumer trace: {stats:?}");

    let hops = wait_hops(DEFAULT_TRACE_TOPIC, &sent.msg_id, "Pub, SubBefore and SubAfter", |h| {
        has(h, TraceType::Pub, &pg) && has(h, TraceType::SubBefore, &cg) && has(h, TraceType::SubAfter, &cg)
    });
    let p = hops.iter().find(|h| h.record.trace_type == TraceType::Pub).unwrap();
    let b = &p.record.beans[0];
    assert_eq!(
        (b.topic.as_str(), b.tags.as_deref(), b.keys.as_deref()),
        (topic.as_str(), Some("TagT"), Some("order-7"))
    );
    assert_eq!((b.offset_msg_id.as_str(), b.body_length, p.record.success), (sent.offset_msg_id.as_str(), 6, true));
    assert_eq!(b.store_host, broker_addr(&sent.queue.broker_name));
    let after = hops.iter().find(|h| h.record.trace_type == TraceType::SubAfter).unwrap();
    let before = hops.iter().find(|h| h.record.trace_type == TraceType::SubBefore).unwrap();
    assert_eq!(after.record.request_id, before.record.request_id);
    assert!(after.record.success);

    let out = mqadmin(&["queryMsgTraceById", "-i", &sent.msg_id]);
    let pub_line = out.lines().find(|l| l.starts_with("Pub ")).unwrap_or_else(|| panic!("no Pub line:\n{out}"));
    assert!(pub_line.contains(&pg) && pub_line.contains("success"), "{out}");
    let sub_line = out.lines().find(|l| l.starts_with("Sub ")).unwrap_or_else(|| panic!("no Sub line:\n{out}"));
    assert!(sub_line.contains(&cg) && sub_line.contains("success"), "{out}");
}

#[test]
fn a_java_traced_send_consumed_by_us_shows_both_sides() {
    let _serial = serial();
    let topic = unique("trace_java_t");
    create_topic(&topic, 2);
    // Java's trace dispatcher drops a batch whose topic has no route yet (a
    // fresh cluster) and the peer exits right after its send: a traced send
    // of ours makes the default trace topic first (a system topic: it
    // cannot be created by hand).
    let warm = Producer::new(producer_config(&unique("trace_warm_pg")).enable_trace(true).build().unwrap()).unwrap();
    warm.start().unwrap();
    let first = warm.send(&Message::new(&topic, "warm-up")).unwrap();
    warm.shutdown();
    let warm_pg = warm.config().group().to_string();
    wait_hops(DEFAULT_TRACE_TOPIC, &first.msg_id, "our warm-up Pub", |h| has(h, TraceType::Pub, &warm_pg));
    let out = java_trace(&["send", &topic, "1"]);
    let line = out.lines().find(|l| l.starts_with("sent|")).unwrap_or_else(|| panic!("nothing sent:\n{out}"));
    let msg_id = line.split('|').nth(1).unwrap().to_string();

    let cg = unique("trace_cg_j");
    let seen = Arc::new(AtomicUsize::new(0));
    let consumer = traced_consumer(&cg, &topic, Arc::clone(&seen));
    consumer.start().unwrap();
    wait_for(TRACE_WAIT, "the Java message consumed", || (seen.load(Ordering::SeqCst) >= 1).then_some(()));
    consumer.shutdown();

    let hops = wait_hops(DEFAULT_TRACE_TOPIC, &msg_id, "Java's Pub and our SubAfter", |h| {
        h.iter().any(|x| x.record.trace_type == TraceType::Pub && x.record.group.starts_with("java_trace_pg"))
            && has(h, TraceType::SubAfter, &cg)
    });
    assert!(hops.iter().any(|h| h.record.trace_type == TraceType::SubBefore && h.record.group == cg));
    let out = mqadmin(&["queryMsgTraceById", "-i", &msg_id]);
    assert!(out.lines().any(|l| l.starts_with("Pub ") && l.contains("java_trace_pg")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("Sub ") && l.contains(&cg)), "{out}");
}

#[test]
fn a_transaction_end_is_traced_on_a_custom_topic() {
    let _serial = serial();
    let topic = unique("trace_tx_t");
    create_topic(&topic, 2);
    let trace_topic = unique("trace_custom");
    let pg = unique("trace_tx_pg");
    let config = producer_config(&pg).enable_trace(true).trace_topic(&trace_topic).build().unwrap();
    let producer = TransactionProducer::new(config, |_: &MessageExt| LocalTransactionState::CommitMessage).unwrap();
    producer.start().unwrap();
    let msg = Message::new(&topic, "tx").with_tags("TagX").with_keys(["tx-1"]);
    let r = producer.send_message_in_transaction(&msg, |_, _| LocalTransactionState::CommitMessage).unwrap();
    producer.shutdown();
    let msg_id = r.send_result.msg_id.clone();

    let hops = wait_hops(&trace_topic, &msg_id, "Pub and EndTransaction on the custom topic", |h| {
        has(h, TraceType::Pub, &pg) && has(h, TraceType::EndTransaction, &pg)
    });
    let p = hops.iter().find(|h| h.record.trace_type == TraceType::Pub).unwrap();
    assert_eq!(p.record.beans[0].msg_type, MessageType::TransHalf);
    let e = &hops.iter().find(|h| h.record.trace_type == TraceType::EndTransaction).unwrap().record.beans[0];
    assert_eq!(e.transaction_state, "COMMIT_MESSAGE");
    assert_eq!((e.msg_type, e.from_transaction_check), (MessageType::TransCommit, false));
    assert_eq!((e.transaction_id.as_deref(), e.keys.as_deref()), (Some(msg_id.as_str()), Some("tx-1")));
    // Nothing went to the default trace topic.
    let ns = namesrv();
    let default = query_traces(&ns, &ClientConfig::default(), DEFAULT_TRACE_TOPIC, &msg_id, 64).unwrap_or_default();
    assert!(default.is_empty(), "{default:?}");
}

#[test]
fn trace_off_starts_nothing_and_on_starts_one_thread_each() {
    let _serial = serial();
    let topic = unique("trace_off_t");
    create_topic(&topic, 1);
    let trace_threads = || crate_threads().iter().filter(|n| n.starts_with("rocketmq-trace")).count();
    let before = trace_threads();
    let producer = Producer::new(producer_config(&unique("trace_off_pg")).build().unwrap()).unwrap();
    producer.start().unwrap();
    producer.send(&Message::new(&topic, "untraced")).unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let config = consumer_config(&unique("trace_off_cg")).consume_from_where(ConsumeFromWhere::FirstOffset).build();
    let consumer = PushConsumer::new(config.unwrap()).unwrap();
    consumer.subscribe(&topic, "*").unwrap();
    let s = Arc::clone(&seen);
    consumer
        .register_concurrently(move |m: &[MessageExt], _: &mut _| {
            s.fetch_add(m.len(), Ordering::SeqCst);
            ConsumeConcurrentlyStatus::ConsumeSuccess
        })
        .unwrap();
    consumer.start().unwrap();
    wait_for(TRACE_WAIT, "the untraced message consumed", || (seen.load(Ordering::SeqCst) >= 1).then_some(()));
    assert_eq!(trace_threads(), before, "{:?}", crate_threads());
    assert_eq!(producer.trace_stats(), None);
    consumer.shutdown();
    producer.shutdown();

    let traced = Producer::new(producer_config(&unique("trace_on_pg")).enable_trace(true).build().unwrap()).unwrap();
    traced.start().unwrap();
    // (A new thread names itself once it runs: wait for it to show.)
    wait_for(Duration::from_secs(5), "one trace thread", || (trace_threads() == before + 1).then_some(()));
    let t0 = std::time::Instant::now();
    traced.shutdown();
    // The trace thread and producer stop within a second; the host producer's own bound follows.
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    wait_for(Duration::from_secs(2), "the trace thread gone", || (trace_threads() == before).then_some(()));
}
