//! `PopConsumer` (5.x pop consumption) against the real brokers: more
//! consumers than queues, redelivery with a higher reconsume count and the
//! dead-letter topic, a member killed with kill -9 mid-batch, a Java pop
//! consumer in the same group; on 4.x the mode is refused with a typed error.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use rocketmq_blocking::consumer::{
    ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus, ConsumeFromWhere, ConsumerConfig, PopConsumer, PopOptions,
};
use rocketmq_blocking::protocol::pop::{pop_retry_topic, MODE_POP};
use rocketmq_blocking::{Error, Message, MessageExt, MessageQueue};

/// Body → the consumers (by index) that got it, in order.
type Seen = Arc<Mutex<BTreeMap<String, Vec<usize>>>>;

fn skip_on_4x(test: &str) -> bool {
    if brokers_are_4x() {
        eprintln!("{test}: pop consumption needs RocketMQ 5.x; skipped on 4.x");
    }
    brokers_are_4x()
}

/// Switches `group` to pop for `topic` on both brokers (what `mqadmin
/// setConsumeMode -m POP -q -1` sends to each broker of the cluster).
fn switch_to_pop(topic: &str, group: &str) {
    for b in ["broker-a", "broker-b"] {
        client(b).set_message_request_mode(topic, group, MODE_POP, -1).expect("set message request mode");
    }
}

fn config(group: &str) -> ConsumerConfig {
    consumer_config(group).consume_from_where(ConsumeFromWhere::FirstOffset).build().unwrap()
}

/// A pop consumer `index` that records every body it is given in `seen`.
fn recording(config: ConsumerConfig, topic: &str, index: usize, seen: &Seen, options: PopOptions) -> PopConsumer {
    let c = PopConsumer::with_options(config, options).unwrap();
    c.subscribe(topic, "*").unwrap();
    let seen = Arc::clone(seen);
    c.register_concurrently(move |msgs: &[MessageExt], _: &mut ConsumeConcurrentlyContext| {
        for m in msgs {
            seen.lock().unwrap().entry(String::from_utf8_lossy(&m.body).into_owned()).or_default().push(index);
        }
        // A slow listener, so that the pops spread over the consumers.
        std::thread::sleep(Duration::from_millis(20));
        ConsumeConcurrentlyStatus::ConsumeSuccess
    })
    .unwrap();
    c
}

fn send(topic: &str, bodies: impl Iterator<Item = String>) {
    let queues = topic_queues(topic);
    let (a, b) = (client("broker-a"), client("broker-b"));
    let bodies: Vec<String> = bodies.collect();
    for (i, chunk) in bodies.chunks(10).enumerate() {
        let q = &queues[i % queues.len()];
        let msgs: Vec<Message> = chunk.iter().map(|s| Message::new(topic, s.clone())).collect();
        send_in_batches(if q.broker_name == "broker-a" { &a } else { &b }, q, &msgs);
    }
}

#[test]
fn more_consumers_than_queues_all_receive_messages() {
    if skip_on_4x("more_consumers_than_queues_all_receive_messages") {
        return;
    }
    let topic = unique("pop_share");
    let group = unique("pop_share_g");
    create_topic(&topic, 1); // 2 queues in all
    switch_to_pop(&topic, &group);
    let seen: Seen = Arc::default();
    // Each consumer holds at most (threshold 4 + batch 4) × 2 brokers
    // messages and works them on 2 threads: none can take all 400.
    let options = PopOptions::default().batch_size(4).threshold(4);
    let slow = || consumer_config(&group).consume_from_where(ConsumeFromWhere::FirstOffset).consume_threads(2);
    let consumers: Vec<PopConsumer> =
        (0..4).map(|i| recording(slow().build().unwrap(), &topic, i, &seen, options.clone())).collect();
    for c in &consumers {
        c.start().expect("start pop consumer");
        let assigned: BTreeSet<MessageQueue> = c.assignment().into_iter().collect();
        // Every consumer pops every broker (queue id -1).
        assert_eq!(
            assigned,
            [MessageQueue::new(&topic, "broker-a", -1), MessageQueue::new(&topic, "broker-b", -1)].into(),
            "assignment"
        );
    }
    let total = 400;
    send(&topic, (0..total).map(|n| format!("m{n}")));
    wait_for(Duration::from_secs(60), "every message consumed", || (seen.lock().unwrap().len() == total).then_some(()));
    let seen = seen.lock().unwrap().clone();
    let mut per_consumer: HashMap<usize, usize> = HashMap::new();
    for who in seen.values() {
        for i in who {
            *per_consumer.entry(*i).or_default() += 1;
        }
    }
    eprintln!("messages per consumer: {per_consumer:?}");
    assert_eq!(per_consumer.len(), 4, "all four consumers on two queues received messages: {per_consumer:?}");
    // Acked at once: nobody gets a message twice.
    let twice: Vec<_> = seen.iter().filter(|(_, w)| w.len() > 1).collect();
    assert!(twice.is_empty(), "delivered twice: {twice:?}");
    // No listener call is running: shutdown is the unregister and the join,
    // bounded by one request timeout + 1 s (+ 10 %).
    for c in consumers {
        let bound = c.config().request_timeout() + Duration::from_secs(1);
        let t0 = Instant::now();
        c.shutdown();
        assert!(t0.elapsed() <= bound + bound / 10, "shutdown took {:?} (bound {bound:?})", t0.elapsed());
    }
}

/// Messages of `%DLQ%<group>` on either broker (empty until it exists).
fn dead_letters(group: &str) -> Vec<MessageExt> {
    let mut out = Vec::new();
    for b in ["broker-a", "broker-b"] {
        let q = MessageQueue::new(format!("%DLQ%{group}"), b, 0);
        let mut req = rocketmq_blocking::PullRequest::new("pop_dlq_reader", q, 0);
        req.max_msgs = 32;
        if let Ok(r) = client(b).pull(&req) {
            out.extend(r.messages);
        }
    }
    out
}

#[test]
fn a_failed_message_comes_back_with_a_higher_reconsume_count_then_goes_to_the_dlq() {
    if skip_on_4x("a_failed_message_comes_back_with_a_higher_reconsume_count_then_goes_to_the_dlq") {
        return;
    }
    let topic = unique("pop_retry");
    let group = unique("pop_retry_g");
    create_topic(&topic, 1);
    switch_to_pop(&topic, &group);
    let deliveries: Arc<Mutex<Vec<(String, i32, Instant)>>> = Arc::default();
    let config = consumer_config(&group)
        .consume_from_where(ConsumeFromWhere::FirstOffset)
        .max_reconsume_times(2)
        .build()
        .unwrap();
    let retry = Duration::from_secs(1);
    let c = PopConsumer::with_options(config, PopOptions::default().retry_delays(vec![retry])).unwrap();
    c.subscribe(&topic, "*").unwrap();
    let d = Arc::clone(&deliveries);
    c.register_concurrently(move |msgs: &[MessageExt], _: &mut ConsumeConcurrentlyContext| {
        let mut d = d.lock().unwrap();
        for m in msgs {
            d.push((String::from_utf8_lossy(&m.body).into_owned(), m.reconsume_times, Instant::now()));
        }
        if msgs.iter().any(|m| m.body == b"bad") {
            ConsumeConcurrentlyStatus::ReconsumeLater
        } else {
            ConsumeConcurrentlyStatus::ConsumeSuccess
        }
    })
    .unwrap();
    c.start().unwrap();
    send(&topic, (0..10).map(|n| format!("good{n}")).chain(["bad".to_string()]));
    let dead = wait_for(Duration::from_secs(120), "the failing message in the DLQ", || {
        dead_letters(&group).into_iter().find(|m| m.body == b"bad")
    });
    let d = deliveries.lock().unwrap().clone();
    let bad: Vec<&(String, i32, Instant)> = d.iter().filter(|(b, _, _)| b == "bad").collect();
    let counts: Vec<i32> = bad.iter().map(|(_, n, _)| *n).collect();
    eprintln!(
        "deliveries of the failing message: reconsume times {counts:?}, gaps {:?}",
        bad.windows(2).map(|w| w[1].2 - w[0].2).collect::<Vec<_>>()
    );
    assert_eq!(counts, vec![0, 1, 2], "delivered with reconsume times 0, 1, 2, then dead-lettered");
    for w in bad.windows(2) {
        assert!(w[1].2 - w[0].2 >= retry - Duration::from_millis(100), "came back before the retry delay");
    }
    let goods: BTreeMap<&str, usize> =
        d.iter().filter(|(b, _, _)| b != "bad").fold(BTreeMap::new(), |mut m, (b, _, _)| {
            *m.entry(b.as_str()).or_default() += 1;
            m
        });
    assert_eq!(goods.len(), 10, "every good message consumed: {goods:?}");
    assert!(goods.values().all(|n| *n == 1), "acked messages delivered once: {goods:?}");
    eprintln!(
        "dead letter: topic {} RETRY_TOPIC {:?} reconsume times {}",
        dead.topic,
        dead.property("RETRY_TOPIC"),
        dead.reconsume_times
    );
    assert_eq!(dead.topic, format!("%DLQ%{group}"));
    // The pop retry topic it came back from (v1, the 5.5.0 default).
    assert_eq!(dead.property("RETRY_TOPIC"), Some(pop_retry_topic(&topic, &group, false).as_str()));
    c.shutdown();
}

#[test]
fn refused_with_a_typed_error_when_pop_is_not_available() {
    let topic = unique("pop_refused");
    let group = unique("pop_refused_g");
    create_topic(&topic, 1);
    // Not switched to pop: 5.x assigns the queues in PULL mode; 4.x does not know pop.
    let c = PopConsumer::new(config(&group)).unwrap();
    c.subscribe(&topic, "*").unwrap();
    c.register_concurrently(|_: &[MessageExt], _: &mut ConsumeConcurrentlyContext| {
        ConsumeConcurrentlyStatus::ConsumeSuccess
    })
    .unwrap();
    let t0 = Instant::now();
    let err = c.start().expect_err("pop must be refused");
    eprintln!("refused in {:?}: {err}", t0.elapsed());
    match &err {
        Error::PopNotAvailable { topic: t, group: g, reason, .. } => {
            assert_eq!((t, g), (&topic, &group));
            if brokers_are_4x() {
                assert!(reason.contains("QUERY_ASSIGNMENT"), "{reason}");
            } else {
                assert!(reason.contains("PULL mode") && reason.contains("setConsumeMode"), "{reason}");
            }
        }
        other => panic!("expected PopNotAvailable, got {other:?}"),
    }
    assert!(t0.elapsed() < Duration::from_secs(15), "refused within the start deadline");
    assert!(c.start().is_err(), "a refused consumer stays stopped");
}

/// A child process whose stdout lines are collected by a thread.
struct Child {
    child: std::process::Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Child {
    fn spawn(mut cmd: Command) -> Child {
        let mut child =
            cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("spawn child");
        let out = child.stdout.take().expect("stdout");
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let l = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(|l| l.ok()) {
                l.lock().unwrap().push(line);
            }
        });
        Child { child, lines }
    }
    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_member_killed_mid_batch_loses_nothing() {
    if skip_on_4x("a_member_killed_mid_batch_loses_nothing") {
        return;
    }
    let topic = unique("pop_kill");
    let group = unique("pop_kill_g");
    create_topic(&topic, 1);
    switch_to_pop(&topic, &group);
    let total = 300;
    send(&topic, (0..total).map(|n| format!("k{n}")));
    // The member: 20 consume threads at 100 ms per message; it pops far
    // more than it has processed, so a kill leaves popped messages unacked.
    let mut cmd = Command::new(example_binary("pop_consumer"));
    cmd.args([&topic, &group, "100"]).env("ROCKETMQ_NAMESRV_ADDR", namesrv_addr());
    let mut member = Child::spawn(cmd);
    wait_for(Duration::from_secs(60), "the member consuming", || (member.lines().len() >= 30).then_some(()));
    member.child.kill().expect("kill -9 the member");
    member.child.wait().expect("reap the member");
    let done_by_member: BTreeSet<String> =
        member.lines().iter().filter_map(|l| l.split('\t').next().map(str::to_string)).collect();
    let t_kill = Instant::now();
    // The survivor gets the rest, including what the member popped and did
    // not ack, after its 5 s invisible time, with reconsume times 1.
    let seen: Seen = Arc::default();
    let reconsumed: Arc<Mutex<Vec<(String, i32)>>> = Arc::default();
    let survivor = PopConsumer::new(config(&group)).unwrap();
    survivor.subscribe(&topic, "*").unwrap();
    let (s, r) = (Arc::clone(&seen), Arc::clone(&reconsumed));
    survivor
        .register_concurrently(move |msgs: &[MessageExt], _: &mut ConsumeConcurrentlyContext| {
            for m in msgs {
                let body = String::from_utf8_lossy(&m.body).into_owned();
                if m.reconsume_times > 0 {
                    r.lock().unwrap().push((body.clone(), m.reconsume_times));
                }
                s.lock().unwrap().entry(body).or_default().push(0);
            }
            ConsumeConcurrentlyStatus::ConsumeSuccess
        })
        .unwrap();
    survivor.start().unwrap();
    let all: BTreeSet<String> = (0..total).map(|n| format!("k{n}")).collect();
    wait_for(Duration::from_secs(90), "every message consumed by the member or the survivor", || {
        let seen = seen.lock().unwrap();
        all.iter().all(|b| done_by_member.contains(b) || seen.contains_key(b)).then_some(())
    });
    let reconsumed = reconsumed.lock().unwrap().clone();
    eprintln!(
        "member consumed {} before kill -9; survivor {} ({} redelivered after the invisible time, {:?} after the kill)",
        done_by_member.len(),
        seen.lock().unwrap().len(),
        reconsumed.len(),
        t_kill.elapsed()
    );
    assert!(done_by_member.len() < total, "the member was killed before the end");
    assert!(!reconsumed.is_empty(), "messages the member popped and did not ack came back");
    assert!(reconsumed.iter().all(|(_, n)| *n == 1), "once redelivered: {reconsumed:?}");
    survivor.shutdown();
}

#[test]
fn a_java_pop_consumer_and_ours_share_a_group() {
    if skip_on_4x("a_java_pop_consumer_and_ours_share_a_group") {
        return;
    }
    let topic = unique("pop_java");
    let group = unique("pop_java_g");
    create_topic(&topic, 1);
    // The release's own tool this time (the other tests send its request directly).
    harness(&["mqadmin", "setConsumeMode", "-c", CLUSTER, "-g", &group, "-t", &topic, "-m", "POP", "-q", "-1"]);
    let cp = java::build_peer("interop-java", &java::broker_version(&client("broker-a")), &[]);
    let logs = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("interop-java-logs");
    let mut cmd = Command::new("java");
    cmd.arg("-cp")
        .arg(&cp)
        .arg(format!("-Drocketmq.log.root={}", logs.display()))
        .args(["interop.PopPeer", &topic, &group, "4000"])
        .env("ROCKETMQ_NAMESRV_ADDR", namesrv_addr());
    let mut java = Child::spawn(cmd);
    wait_for(Duration::from_secs(60), "the Java pop consumer started", || {
        java.lines().iter().any(|l| l == "POP|ready").then_some(())
    });
    let seen: Seen = Arc::default();
    // Two consume threads and a small threshold: slow enough to leave Java its share.
    let slow =
        consumer_config(&group).consume_from_where(ConsumeFromWhere::FirstOffset).consume_threads(2).build().unwrap();
    let ours = recording(slow, &topic, 0, &seen, PopOptions::default().batch_size(4).threshold(8));
    ours.start().unwrap();
    let total = 400;
    send(&topic, (0..total).map(|n| format!("j{n}")));
    let java_bodies = |j: &Child| -> Vec<String> {
        j.lines()
            .iter()
            .filter_map(|l| l.strip_prefix("POP|"))
            .filter(|l| *l != "ready")
            .map(|l| l.to_string())
            .collect()
    };
    wait_for(Duration::from_secs(90), "every message consumed by Java or us", || {
        let got: BTreeSet<String> = java_bodies(&java)
            .iter()
            .filter_map(|l| l.split('|').next().map(str::to_string))
            .chain(seen.lock().unwrap().keys().cloned())
            .collect();
        (got.len() == total).then_some(())
    });
    ours.shutdown();
    // Java exits 4 s after its last message.
    let status = wait_for(Duration::from_secs(30), "the Java peer's exit", || java.child.try_wait().ok().flatten());
    assert!(status.success(), "Java pop peer failed: {status}");
    let by_java = java_bodies(&java);
    let by_us = seen.lock().unwrap().len();
    eprintln!("Java consumed {}, we consumed {by_us} of {total}", by_java.len());
    assert!(!by_java.is_empty() && by_us > 0, "both shared the work: java {} ours {by_us}", by_java.len());
    assert!(by_java.iter().all(|l| l.ends_with("|0")), "first deliveries only (all acked in time)");
}
