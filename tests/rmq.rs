//! The `rmq` command line (examples/rmq.rs) against the real brokers: every
//! subcommand runs at least once, and what it prints is checked against what
//! the name server and the brokers hold.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::rmq::*;
use common::*;
use rocketmq_blocking::MessageQueue;

/// Tab-separated rows of a table, header checked and dropped.
fn table(out: &str, header: &str) -> Vec<Vec<String>> {
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some(header), "header of {out}");
    lines.map(|l| l.split('\t').map(str::to_string).collect()).collect()
}

/// `offsets` as (broker, queue) -> (min, max, consumer, lag).
type Offsets = BTreeMap<(String, i32), (i64, i64, String, String)>;

fn offsets(topic: &str, group: Option<&str>) -> Offsets {
    let mut args = vec!["offsets", "--topic", topic];
    if let Some(g) = group {
        args.extend(["--group", g]);
    }
    table(&ok(&args), "broker\tqueue_id\tmin\tmax\tconsumer\tlag")
        .into_iter()
        .map(|r| {
            assert_eq!(r.len(), 6, "{r:?}");
            (
                (r[0].clone(), r[1].parse().unwrap()),
                (r[2].parse().unwrap(), r[3].parse().unwrap(), r[4].clone(), r[5].clone()),
            )
        })
        .collect()
}

fn max_sum(o: &Offsets) -> i64 {
    o.values().map(|v| v.1).sum()
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    for args in [
        &[][..],
        &["bogus"],
        &["send"],
        &["send", "--topic"],
        &["send", "--topic", "T", "--count", "ten"],
        &["send", "--topic", "T", "--count", "0"],
        &["send", "--topic", "T", "--unknown"],
        &["consume", "--topic", "T", "--mode", "poll"],
        &["consume", "--topic", "T", "--mode", "push", "--from-offset", "3"],
        &["consume", "--topic", "T", "--from-begin", "--from-end"],
        &["offsets"],
        &["route", "stray-positional"],
        &["create-topic", "--topic", "T", "--perm", "7"],
        &["bench", "--topic", "T", "--threads", "0"],
    ] {
        let run = rmq(args);
        assert_eq!(run.code, 2, "rmq {args:?}: {} {}", run.stdout, run.stderr);
        assert!(run.stderr.starts_with("rmq: usage error: "), "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
    }
    // No name server anywhere: a usage error naming the variable.
    let run = rmq_with(&["cluster"], None, &[("ROCKETMQ_NAMESRV_ADDR", None), ("NAMESRV_ADDR", None)]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("ROCKETMQ_NAMESRV_ADDR"), "{}", run.stderr);

    let main = ok(&["--help"]);
    for needle in
        ["send", "consume", "route", "cluster", "offsets", "create-topic", "bench", "Exit codes", "0  success"]
    {
        assert!(main.contains(needle), "--help lacks {needle:?}");
    }
    assert!(main.contains("2  usage error") && main.contains("1  runtime error"), "{main}");
    for cmd in ["send", "consume", "route", "cluster", "offsets", "create-topic", "bench"] {
        let help = ok(&[cmd, "--help"]);
        assert!(help.starts_with(&format!("Usage: rmq {cmd}")), "{cmd} --help: {help}");
        assert_eq!(ok(&["help", cmd]), help);
    }
}

#[test]
fn runtime_errors_exit_1() {
    let missing = unique("rmq_missing");
    let run = rmq(&["route", "--topic", &missing]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.starts_with("rmq: error: ") && run.stderr.contains(&missing), "{}", run.stderr);
    // --namesrv wins over the environment; nothing listens on port 1.
    let run = rmq(&["--namesrv", "127.0.0.1:1", "cluster"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("127.0.0.1:1"), "{}", run.stderr);
    // The name server may also come from NAMESRV_ADDR.
    let run = rmq_with(&["cluster"], None, &[("ROCKETMQ_NAMESRV_ADDR", None), ("NAMESRV_ADDR", Some(&namesrv_addr()))]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn cluster_and_route_match_the_name_server() {
    let info = namesrv().cluster_info().unwrap();
    let rows = table(&ok(&["cluster"]), "cluster\tbroker\tbroker_id\taddr");
    let listed: BTreeSet<(String, String)> =
        rows.iter().filter(|r| r[0] == CLUSTER && r[2] == "0").map(|r| (r[1].clone(), r[3].clone())).collect();
    for broker in ["broker-a", "broker-b"] {
        let addr = info.broker_addr_table[broker].master_addr().unwrap().to_string();
        assert!(listed.contains(&(broker.to_string(), addr)), "{broker} missing from {rows:?}");
    }

    let topic = unique("rmq_create");
    let created = ok(&["create-topic", "--topic", &topic, "--queues", "3"]);
    assert_eq!(created.lines().collect::<Vec<_>>(), ["broker-a", "broker-b"]);
    // create-topic waited for the route: the name server has it now.
    let route = namesrv().topic_route(&topic).unwrap();
    let rows = table(&ok(&["route", "--topic", &topic]), "broker\taddr\tread_queues\twrite_queues\tperm");
    assert_eq!(rows.len(), 2, "{rows:?}");
    for r in &rows {
        let q = route.queue_datas.iter().find(|q| q.broker_name == r[0]).expect("broker of the route");
        let addr = route.broker(&r[0]).and_then(|b| b.master_addr()).unwrap();
        assert_eq!(r[1..], [addr.to_string(), "3".into(), "3".into(), q.perm.to_string()]);
        assert_eq!((q.read_queue_nums, q.write_queue_nums, q.perm), (3, 3, 6));
    }

    // One broker only, read-only.
    let ro = unique("rmq_create_ro");
    let addr = broker_addr("broker-b");
    let created = ok(&["create-topic", "--topic", &ro, "--queues", "1", "--perm", "4", "--broker", &addr]);
    assert_eq!(created.trim(), "broker-b");
    let route = namesrv().topic_route(&ro).unwrap();
    assert_eq!(route.queue_datas.len(), 1);
    assert_eq!((route.queue_datas[0].broker_name.as_str(), route.queue_datas[0].perm), ("broker-b", 4));
}

#[test]
fn send_offsets_and_consume_agree_with_the_brokers() {
    let topic = unique("rmq_flow");
    create_topic(&topic, 2);
    let before = offsets(&topic, None);
    assert_eq!(before.len(), 4, "{before:?}");
    assert!(before.values().all(|(_, _, c, l)| c == "-" && l == "-"));

    // send: one line per message, each checked at the broker.
    let out = ok(&["send", "--topic", &topic, "--count", "10", "--body", "body-{n}", "--tag", "T1", "--keys", "k{n}"]);
    let lines: Vec<Vec<&str>> = out.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(lines.len(), 10, "{out}");
    let mut ids = BTreeSet::new();
    for (n, l) in lines.iter().enumerate() {
        assert_eq!(l.len(), 5, "{l:?}");
        assert_eq!(l[4], "SEND_OK");
        let q = MessageQueue::new(&topic, l[1], l[2].parse().unwrap());
        let stored = pull_n(&client(l[1]), &q, l[3].parse().unwrap(), 1);
        assert_eq!(stored[0].body, format!("body-{n}").as_bytes());
        assert_eq!(stored[0].msg_id, l[0]);
        assert_eq!((stored[0].tags(), stored[0].keys()), (Some("T1"), vec![format!("k{n}").as_str()]));
        ids.insert(l[0].to_string());
    }
    assert_eq!(ids.len(), 10);

    // offsets: max offsets sum to 10 more, and each equals the broker's.
    let after = offsets(&topic, None);
    assert_eq!(max_sum(&after), max_sum(&before) + 10);
    for ((broker, qid), (min, max, _, _)) in &after {
        let q = MessageQueue::new(&topic, broker.clone(), *qid);
        let c = client(broker);
        assert_eq!((*min, *max), (c.min_offset(&q).unwrap(), c.max_offset(&q).unwrap()), "{broker}/{qid}");
    }

    // consume --mode pull --from-offset 0: the ten bodies, with their ids.
    let out = ok(&["consume", "--topic", &topic, "--from-offset", "0", "--count", "10", "--timeout", "60"]);
    let rows: Vec<Vec<&str>> = out.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), 10, "{out}");
    let bodies: BTreeSet<&str> = rows.iter().map(|r| r[5]).collect();
    let expected: BTreeSet<String> = (0..10).map(|n| format!("body-{n}")).collect();
    assert_eq!(bodies, expected.iter().map(String::as_str).collect());
    assert_eq!(rows.iter().map(|r| r[3].to_string()).collect::<BTreeSet<_>>(), ids);
    assert!(rows.iter().all(|r| r[4] == "T1"));

    // One queue only, from its last message: exactly that message.
    let ((broker, qid), (_, max, _, _)) = after.iter().find(|(_, v)| v.1 > 0).unwrap();
    let queue = format!("{broker}:{qid}");
    let from = (max - 1).to_string();
    let out = ok(&[
        "consume",
        "--topic",
        &topic,
        "--queue",
        &queue,
        "--from-offset",
        &from,
        "--idle",
        "2",
        "--format",
        "body",
    ]);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(expected.contains(out.trim()), "{out}");

    // push, with a group: all ten, then the group's offsets have no lag.
    let group = unique("rmq_push_cg");
    let out = ok(&[
        "consume",
        "--topic",
        &topic,
        "--mode",
        "push",
        "--group",
        &group,
        "--from-begin",
        "--count",
        "10",
        "--timeout",
        "90",
        "--format",
        "body",
    ]);
    assert_eq!(out.lines().map(str::to_string).collect::<BTreeSet<_>>(), expected);
    let with_group = offsets(&topic, Some(&group));
    for ((broker, qid), (_, max, consumer, lag)) in &with_group {
        let q = MessageQueue::new(&topic, broker.clone(), *qid);
        let committed = client(broker).query_consumer_offset(&group, &q).unwrap();
        assert_eq!(consumer.parse::<i64>().ok(), committed, "{broker}/{qid}");
        assert_eq!((consumer.as_str(), lag.as_str()), (max.to_string().as_str(), "0"), "{broker}/{qid}");
    }

    // A count not reached before --idle: exit 1, what came is printed.
    let run = rmq(&["consume", "--topic", &topic, "--from-offset", "0", "--count", "11", "--idle", "2"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.stdout.lines().count(), 10);
    assert!(run.stderr.contains("received 10 of 11"), "{}", run.stderr);
}

#[test]
fn consume_from_a_time_and_send_from_stdin() {
    let topic = unique("rmq_time");
    create_topic(&topic, 1);
    ok(&["send", "--topic", &topic, "--count", "4", "--body", "old-{n}"]);
    // Every old message is stored before `since`, every new one after it.
    let since = now_ms() + 1;
    wait_for(Duration::from_secs(5), "the clock to pass the start time", || (now_ms() > since).then_some(()));
    let run = rmq_with(
        &["send", "--topic", &topic, "--stdin", "--progress"],
        Some("new-a\nnew-b\nnew-c\n"),
        &[("ROCKETMQ_NAMESRV_ADDR", Some(&namesrv_addr()))],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.lines().count(), 3);
    assert!(run.stderr.contains("send: 3 messages") && run.stderr.contains("msg/s"), "progress: {:?}", run.stderr);
    let o = offsets(&topic, None);
    assert_eq!(max_sum(&o), 7);

    let since = since.to_string();
    let out = ok(&["consume", "--topic", &topic, "--from-time", &since, "--idle", "3", "--format", "body"]);
    let got: BTreeSet<&str> = out.lines().collect();
    if brokers_are_4x() {
        // A 4.x broker's search by time is approximate (it may answer the
        // offset next to the time on either side): only sent bodies come back.
        let sent = ["old-0", "old-1", "old-2", "old-3", "new-a", "new-b", "new-c"];
        assert!(!got.is_empty() && got.iter().all(|b| sent.contains(b)), "{out}");
    } else {
        assert_eq!(got, BTreeSet::from(["new-a", "new-b", "new-c"]), "{out}");
    }
}

#[test]
fn bench_sends_what_it_reports() {
    let topic = unique("rmq_bench");
    create_topic(&topic, 2);
    let run = rmq(&["bench", "--topic", &topic, "--count", "200", "--threads", "3", "--size", "64", "--progress"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let fields: BTreeMap<&str, &str> = run.stdout.trim().split(' ').filter_map(|kv| kv.split_once('=')).collect();
    assert_eq!((fields["sent"], fields["errors"]), ("200", "0"), "{}", run.stdout);
    for key in ["seconds", "rate", "p50_us", "p99_us", "p999_us", "max_us"] {
        assert!(fields[key].parse::<f64>().is_ok(), "{key} in {}", run.stdout);
    }
    assert!(run.stderr.contains("bench: 200/200 messages"), "progress: {:?}", run.stderr);
    assert_eq!(max_sum(&offsets(&topic, None)), 200, "the brokers hold all 200");
    let stored = pull_all(&topic);
    assert_eq!(stored.len(), 200);
    assert!(stored.iter().all(|m| m.body == vec![b'x'; 64]));
}

#[test]
fn trace_prints_each_hop_of_a_traced_message() {
    use rocketmq_blocking::consumer::{ConsumeConcurrentlyStatus, ConsumeFromWhere, PushConsumer};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    let topic = unique("rmq_trace");
    create_topic(&topic, 1);
    let (pg, cg) = (unique("rmq_trace_pg"), unique("rmq_trace_cg"));
    let out = ok(&["send", "--topic", &topic, "--trace", "--tag", "TagR", "--keys", "rk", "--group", &pg]);
    let msg_id = out.split('\t').next().unwrap().to_string();
    let broker = out.split('\t').nth(1).unwrap().to_string();
    let seen = Arc::new(AtomicUsize::new(0));
    let config =
        consumer_config(&cg).consume_from_where(ConsumeFromWhere::FirstOffset).enable_trace(true).build().unwrap();
    let consumer = PushConsumer::new(config).unwrap();
    consumer.subscribe(&topic, "*").unwrap();
    let s = Arc::clone(&seen);
    consumer
        .register_concurrently(move |m: &[rocketmq_blocking::MessageExt], _: &mut _| {
            s.fetch_add(m.len(), Ordering::SeqCst);
            ConsumeConcurrentlyStatus::ConsumeSuccess
        })
        .unwrap();
    consumer.start().unwrap();
    wait_for(Duration::from_secs(30), "the message consumed", || (seen.load(Ordering::SeqCst) >= 1).then_some(()));
    consumer.shutdown();

    let args = ["trace", "--msg-id", msg_id.as_str()];
    let rows = wait_for(Duration::from_secs(30), "three hops from rmq trace", || {
        let run = rmq(&args);
        let rows = (run.code == 0)
            .then(|| table(&run.stdout, "type\ttime_ms\tgroup\tclient_host\tstore_host\tcost_ms\tsuccess\tdetail"))?;
        (rows.len() == 3).then_some(rows)
    });
    let types: BTreeSet<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(types, BTreeSet::from(["Pub", "SubAfter", "SubBefore"]), "{rows:?}");
    let pub_row = rows.iter().find(|r| r[0] == "Pub").unwrap();
    assert_eq!(pub_row[2], pg);
    assert_eq!(pub_row[4], broker_addr(&broker));
    assert_eq!(pub_row[6], "true");
    assert_eq!(pub_row[7], format!("topic={topic} tags=TagR keys=rk type=0"));
    assert_eq!(pub_row[5].parse::<i64>().map(|c| c >= 0), Ok(true));
    for r in rows.iter().filter(|r| r[0] != "Pub") {
        assert_eq!((r[2].as_str(), r[6].as_str()), (cg.as_str(), "true"), "{r:?}");
    }
    assert_eq!(rows.iter().find(|r| r[0] == "SubAfter").unwrap()[7], "code=0");

    let none = rmq(&["trace", "--msg-id", "0000000000000000000000000000NONE"]);
    assert_eq!(none.code, 1, "{}", none.stderr);
    assert_eq!(rmq(&["trace"]).code, 2);
}

#[test]
fn request_prints_the_reply_and_times_out_with_exit_1() {
    let topic = unique("rmq_request");
    create_topic(&topic, 2);
    let responder = common::responder::responder(&topic, "pong:");
    // The first request may wait for the responder's first rebalance.
    let out = ok(&["request", "--topic", &topic, "--body", "ping\tme", "--timeout", "40"]);
    let fields: Vec<&str> = out.trim_end_matches('\n').split('\t').collect();
    assert_eq!(fields.len(), 4, "{out:?}");
    let seen = responder.seen.lock().unwrap()[0].clone();
    assert_eq!(seen.body, b"ping\tme");
    assert_eq!(Some(fields[1]), seen.property("CORRELATION_ID"), "the request's correlation id");
    assert!(fields[2].parse::<u64>().unwrap() < 40_000, "{out:?}");
    assert_eq!(fields[3], "pong:ping\\tme", "reply body, escaped");
    assert!(!fields[0].is_empty(), "reply msg id");
    let out = ok(&["request", "--topic", &topic, "--body", "raw", "--format", "body", "--queue", "broker-b:1"]);
    assert_eq!(out, "pong:raw\n");
    let raw = responder.seen.lock().unwrap().iter().find(|m| m.body == b"raw").cloned().expect("the raw request");
    assert_eq!(raw.queue_id, 1);

    // Nobody consumes this topic: exit 1 after the timeout, with the reason.
    let silent = unique("rmq_request_silent");
    create_topic(&silent, 1);
    let run = rmq(&["request", "--topic", &silent, "--timeout", "1"]);
    assert_eq!(run.code, 1, "{} {}", run.stdout, run.stderr);
    assert!(run.stderr.starts_with("rmq: error: ") && run.stderr.contains("no reply"), "{}", run.stderr);
    assert!(run.stdout.is_empty());
    let run = rmq(&["request", "--topic", &silent, "--format", "xml"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(ok(&["request", "--help"]).starts_with("Usage: rmq request"));
}

#[test]
fn consume_pop_reads_a_pop_group_once_and_is_refused_on_4x() {
    let topic = unique("rmq_pop");
    let group = unique("rmq_pop_g");
    create_topic(&topic, 1);
    let args = ["consume", "--pop", "--topic", &topic, "--group", &group, "--from-begin", "--format", "body"];
    if brokers_are_4x() {
        let run = rmq(&[&args[..], &["--idle", "3"]].concat());
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(run.stderr.contains("pop consumption") && run.stderr.contains("QUERY_ASSIGNMENT"), "{}", run.stderr);
        return;
    }
    for b in ["broker-a", "broker-b"] {
        client(b).set_message_request_mode(&topic, &group, "POP", -1).expect("switch the group to pop");
    }
    ok(&["send", "--topic", &topic, "--count", "20", "--body", "pop-{n}"]);
    let out = ok(&[&args[..], &["--count", "20", "--timeout", "60"]].concat());
    let got: BTreeSet<&str> = out.lines().collect();
    let sent: BTreeSet<String> = (0..20).map(|n| format!("pop-{n}")).collect();
    assert_eq!(got, sent.iter().map(String::as_str).collect(), "{out}");
    // Acked: the group gets nothing more.
    let again = rmq(&[&args[..], &["--idle", "3"]].concat());
    assert_eq!((again.code, again.stdout.as_str()), (0, ""), "{}", again.stderr);
}

#[test]
fn consume_push_names_what_the_brokers_keep_refusing_and_exits_1() {
    // A topic nobody created: the route lookup keeps being refused
    // (TOPIC_NOT_EXIST), so nothing can be consumed.
    let topic = unique("rmq_refused");
    let group = unique("rmq_refused_g");
    let run = rmq(&["consume", "--mode", "push", "--topic", &topic, "--group", &group, "--idle", "4"]);
    assert_eq!(run.code, 1, "stdout {:?} stderr {:?}", run.stdout, run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(
        run.stderr.starts_with("rmq: error: ") && run.stderr.contains(&topic) && run.stderr.contains("refused"),
        "{}",
        run.stderr
    );
}
