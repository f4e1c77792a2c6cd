//! Apache RocketMQ's own admin tool (`mqadmin`, from the release the
//! harness runs) against our running consumers: consumerStatus and
//! consumerProgress read GET_CONSUMER_RUNNING_INFO, queryMsgById -d sends
//! CONSUME_MESSAGE_DIRECTLY, resetOffsetByTime makes the broker send
//! RESET_CONSUMER_CLIENT_OFFSET; consumerConnection shows what the broker
//! learnt from our heartbeats after `unsubscribe`.

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use rocketmq_blocking::consumer::{ConsumeConcurrentlyStatus, ConsumeFromWhere, LitePullConsumer, PushConsumer};
use rocketmq_blocking::{Message, MessageExt, MessageQueue};

/// Runs `mqadmin` through the harness (bounded: the tool connects with its
/// own timeouts and exits); returns its standard output.
fn mqadmin(args: &[&str]) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/broker/rocketmq.sh");
    let out = Command::new("timeout")
        .arg("120")
        .arg("bash")
        .arg(script)
        .arg("mqadmin")
        .args(args)
        .output()
        .expect("run mqadmin");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "mqadmin {args:?} failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

/// Sends `n` messages with bodies `<prefix>-<i>` over the topic's queues;
/// returns the offset message id of each and the time just before.
fn send(topic: &str, prefix: &str, n: usize) -> (Vec<String>, i64) {
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64 - 1000;
    let queues = topic_queues(topic);
    let mut ids = Vec::new();
    for i in 0..n {
        let q = &queues[i % queues.len()];
        let c = client(&q.broker_name);
        let r = c.send("ops_pg", q, &Message::new(topic, format!("{prefix}-{i}").into_bytes())).expect("send");
        ids.push(r.offset_msg_id);
    }
    (ids, before)
}

fn client_ip(client_id: &str) -> &str {
    client_id.split('@').next().unwrap()
}

/// Lines of `text` naming this queue.
fn queue_line<'a>(text: &'a str, q: &MessageQueue) -> Option<&'a str> {
    text.lines().find(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() >= 3 && f[0] == q.topic && f[1] == q.broker_name && f[2] == q.queue_id.to_string()
    })
}

#[test]
fn mqadmin_reads_resets_and_drives_a_push_consumer() {
    let topic = unique("ops_push");
    let group = unique("ops_push_g");
    create_topic(&topic, 2);
    let (ids, before) = send(&topic, "p", 20);

    let seen: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let config = consumer_config(&group).consume_from_where(ConsumeFromWhere::FirstOffset).build().unwrap();
    let consumer = PushConsumer::new(config).unwrap();
    consumer.subscribe(&topic, "*").unwrap();
    let s = Arc::clone(&seen);
    consumer
        .register_concurrently(move |msgs: &[MessageExt], _: &mut _| {
            for m in msgs {
                *s.lock().unwrap().entry(String::from_utf8_lossy(&m.body).to_string()).or_default() += 1;
            }
            ConsumeConcurrentlyStatus::ConsumeSuccess
        })
        .unwrap();
    consumer.start().unwrap();
    let all = |times: usize| {
        let seen = Arc::clone(&seen);
        move || {
            let s = seen.lock().unwrap();
            ((0..20).all(|i| s.get(&format!("p-{i}")).copied().unwrap_or(0) >= times)).then_some(())
        }
    };
    wait_for(Duration::from_secs(60), "20 messages consumed", all(1));
    let queues = topic_queues(&topic);
    // Every queue's offset committed to the broker (persist every 500 ms).
    wait_for(Duration::from_secs(30), "offsets committed", || {
        queues
            .iter()
            .all(|q| {
                let c = client(&q.broker_name);
                c.query_consumer_offset(&group, q).ok().flatten() == c.max_offset(q).ok()
            })
            .then_some(())
    });
    let id = consumer.client_id().to_string();

    // consumerStatus -i: our GET_CONSUMER_RUNNING_INFO answer, as Java prints it.
    let status = mqadmin(&["consumerStatus", "-g", &group, "-i", &id]);
    assert!(status.contains("CONSUME_PASSIVELY"), "{status}");
    assert!(status.contains("PROP_CONSUMEORDERLY") && status.contains("PROP_THREADPOOL_CORE_SIZE"), "{status}");
    assert!(status.contains(&format!("Topic: {topic}")), "subscription missing: {status}");
    for q in &queues {
        let line = queue_line(&status, q).unwrap_or_else(|| panic!("{q:?} missing in {status}"));
        let offset: i64 = line.split_whitespace().nth(3).unwrap().parse().unwrap();
        assert_eq!(offset, client(&q.broker_name).max_offset(q).unwrap(), "{line}");
    }

    // consumerProgress -s: the client of every queue comes from our running info.
    let progress = mqadmin(&["consumerProgress", "-g", &group, "-s", "true"]);
    for q in &queues {
        let line = queue_line(&progress, q).unwrap_or_else(|| panic!("{q:?} missing in {progress}"));
        assert!(line.contains(client_ip(&id)), "no client for {q:?}: {line}");
    }

    // queryMsgById -d: the broker has us consume one message directly.
    // 4.x's queryMsgById has no topic option.
    let mut args = vec!["queryMsgById", "-i", &ids[3], "-g", &group, "-d", &id];
    if !brokers_are_4x() {
        args.extend(["-t", topic.as_str()]);
    }
    let direct = mqadmin(&args);
    assert!(direct.contains("CR_SUCCESS"), "{direct}");
    assert_eq!(seen.lock().unwrap().get("p-3").copied(), Some(2), "the listener got p-3 again");

    // resetOffsetByTime: the running consumer goes back and consumes all again.
    let reset = mqadmin(&["resetOffsetByTime", "-g", &group, "-t", &topic, "-s", &before.to_string()]);
    println!("{reset}");
    wait_for(Duration::from_secs(60), "20 messages consumed again after the reset", all(2));

    // unsubscribe: the broker learns it from the next heartbeat, the queues go.
    consumer.unsubscribe(&topic).unwrap();
    wait_for(Duration::from_secs(20), "queues given up", || {
        consumer.assignment().iter().all(|q| q.topic != topic).then_some(())
    });
    wait_for(Duration::from_secs(60), "broker sees the unsubscribe", || {
        let conn = mqadmin(&["consumerConnection", "-g", &group]);
        (!conn.lines().any(|l| l.split_whitespace().next() == Some(topic.as_str()))).then_some(())
    });
    consumer.shutdown();
}

#[test]
fn mqadmin_reads_and_resets_a_lite_pull_consumer() {
    let topic = unique("ops_lite");
    let group = unique("ops_lite_g");
    create_topic(&topic, 2);
    let (_, before) = send(&topic, "l", 12);
    let config = consumer_config(&group).consume_from_where(ConsumeFromWhere::FirstOffset).build().unwrap();
    let consumer = LitePullConsumer::new(config).unwrap();
    consumer.subscribe(&topic, "*").unwrap();
    consumer.start().unwrap();
    let mut got: HashMap<String, usize> = HashMap::new();
    let poll_until = |times: usize, got: &mut HashMap<String, usize>| {
        wait_for(Duration::from_secs(60), "messages polled", || {
            for m in consumer.poll(Duration::from_millis(200)).unwrap() {
                *got.entry(String::from_utf8_lossy(&m.body).to_string()).or_default() += 1;
            }
            ((0..12).all(|i| got.get(&format!("l-{i}")).copied().unwrap_or(0) >= times)).then_some(())
        })
    };
    poll_until(1, &mut got);
    consumer.commit_sync().unwrap();
    let id = consumer.client_id().to_string();

    let status = mqadmin(&["consumerStatus", "-g", &group, "-i", &id]);
    assert!(status.contains("CONSUME_ACTIVELY"), "{status}");
    for q in topic_queues(&topic) {
        let line = queue_line(&status, &q).unwrap_or_else(|| panic!("{q:?} missing in {status}"));
        let offset: i64 = line.split_whitespace().nth(3).unwrap().parse().unwrap();
        assert_eq!(offset, client(&q.broker_name).max_offset(&q).unwrap(), "{line}");
    }

    mqadmin(&["resetOffsetByTime", "-g", &group, "-t", &topic, "-s", &before.to_string()]);
    poll_until(2, &mut got);

    consumer.unsubscribe(&topic).unwrap();
    wait_for(Duration::from_secs(20), "queues given up", || consumer.assignment().is_empty().then_some(()));
    consumer.shutdown();
}
