//! Request-reply on the real brokers (5.5.0 and 4.9.7): `Producer::request`
//! with a responder that answers with `create_reply_message`, ours and the
//! official Java client's (`tests/interop/java`, `interop.Reply`) in both
//! roles; a request nobody answers times out within its deadline + 10 %,
//! and the reply that comes later is dropped and counted; 8 threads x 1,000
//! requests each get the reply to their own request.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{mpsc, Arc, OnceLock};
use std::time::{Duration, Instant};

use common::java::{java_props, unhex};
use common::responder::{producer, responder};
use common::*;
use rocketmq_blocking::protocol::message::property;
use rocketmq_blocking::{Error, Message, MessageExt, MessageQueue};

/// The reply topic of the harness's cluster.
const REPLY_TOPIC: &str = "DefaultCluster_REPLY_TOPIC";
/// Time for the first request of a test: the responder may still be
/// starting (a JVM, a rebalance) on a busy 2-core machine.
const FIRST_TIMEOUT: Duration = Duration::from_secs(40);
/// Time for each later request.
const TIMEOUT: Duration = Duration::from_secs(15);

/// Asserts what a reply carries: the reply topic, the `reply` type, a
/// correlation id, and `body`.
fn assert_reply(reply: &MessageExt, body: &str) {
    assert_eq!(String::from_utf8_lossy(&reply.body), body);
    assert_eq!(reply.topic, REPLY_TOPIC);
    assert_eq!(reply.property(property::MESSAGE_TYPE), Some("reply"));
    assert!(reply.property(property::CORRELATION_ID).is_some_and(|c| !c.is_empty()), "{reply:?}");
    assert!(reply.property(property::REPLY_MESSAGE_ARRIVE_TIME).is_some());
}

/// Asserts the request properties as a responder saw them (Java's
/// `prepareSendRequest` plus the broker's cluster).
fn assert_request_props(props: &BTreeMap<String, String>, client_id: Option<&str>, ttl: Duration) {
    let id = props.get(property::CORRELATION_ID).expect("correlation id");
    assert_eq!(id.split('-').map(str::len).collect::<Vec<_>>(), [8, 4, 4, 4, 12], "UUID-shaped id {id}");
    if let Some(client_id) = client_id {
        assert_eq!(props.get(property::MESSAGE_REPLY_TO_CLIENT).map(String::as_str), Some(client_id));
    } else {
        assert!(props.get(property::MESSAGE_REPLY_TO_CLIENT).is_some_and(|c| c.contains('@')), "{props:?}");
    }
    assert_eq!(props.get(property::MESSAGE_TTL), Some(&ttl.as_millis().to_string()));
    assert_eq!(props.get(property::CLUSTER).map(String::as_str), Some(CLUSTER));
}

#[test]
fn ours_to_ours_plain_selector_queue_and_8_threads() {
    let topic = unique("reply_ours");
    create_topic(&topic, 4);
    let responder = responder(&topic, "rust:");
    let requester = Arc::new(producer(&unique("reply_requester_pg")));

    let reply = requester.request(&Message::new(&topic, "first"), FIRST_TIMEOUT).expect("first request");
    assert_reply(&reply, "rust:first");
    let seen = responder.seen.lock().unwrap()[0].clone();
    assert_eq!(seen.body, b"first");
    assert_request_props(&seen.properties, Some(requester.client_id()), FIRST_TIMEOUT);
    assert_eq!(reply.property(property::CORRELATION_ID), seen.property(property::CORRELATION_ID));

    // With a selector, and to a given queue: the request is stored there.
    let queues = topic_queues(&topic);
    let select = |qs: &[MessageQueue], _: &Message, arg: &usize| *arg % qs.len();
    let reply = requester.request_with_selector(&Message::new(&topic, "selected"), &select, &5, TIMEOUT).unwrap();
    assert_reply(&reply, "rust:selected");
    let target = queues.iter().find(|q| q.broker_name == "broker-b").unwrap().clone();
    let reply = requester.request_to_queue(&Message::new(&topic, "queued"), &target, TIMEOUT).unwrap();
    assert_reply(&reply, "rust:queued");
    let seen = responder.seen.lock().unwrap().clone();
    let queued = seen.iter().find(|m| m.body == b"queued").expect("the queued request");
    assert_eq!((queued.queue_id, queued.store_host.port().to_string()), (target.queue_id, port_of("broker-b")));
    let selected = seen.iter().find(|m| m.body == b"selected").expect("the selected request");
    let mut user_queues = queues.clone();
    user_queues.sort_by(|a, b| (&a.broker_name, a.queue_id).cmp(&(&b.broker_name, b.queue_id)));
    assert_eq!(selected.queue_id, user_queues[5 % user_queues.len()].queue_id);

    // 8 threads x 1,000 requests: every reply is the one to its own request.
    let started = Instant::now();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (requester, topic) = (Arc::clone(&requester), topic.clone());
            std::thread::spawn(move || {
                for i in 0..1000 {
                    let body = format!("t{t}-{i}");
                    let reply = requester
                        .request(&Message::new(&topic, body.clone()), TIMEOUT)
                        .unwrap_or_else(|e| panic!("request {body}: {e}"));
                    assert_eq!(String::from_utf8_lossy(&reply.body), format!("rust:{body}"), "reply to {body}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a requesting thread failed");
    }
    let elapsed = started.elapsed();
    eprintln!("8 threads x 1,000 requests answered in {elapsed:?} ({:.0} requests/s)", 8000.0 / elapsed.as_secs_f64());
    assert_eq!(requester.pending_requests(), 0);
    let answered: HashSet<Vec<u8>> = responder.seen.lock().unwrap().iter().map(|m| m.body.clone()).collect();
    assert!(answered.len() >= 8003, "the responder answered {} distinct requests", answered.len());
}

/// The port of a broker's master address.
fn port_of(broker: &str) -> String {
    broker_addr(broker).rsplit_once(':').unwrap().1.to_string()
}

#[test]
fn nobody_answers_then_the_late_reply_is_dropped_and_counted() {
    let topic = unique("reply_timeout");
    create_topic(&topic, 2);
    let requester = producer(&unique("reply_requester_pg"));
    let timeout = Duration::from_secs(2);
    let started = Instant::now();
    let err = requester.request(&Message::new(&topic, "anyone?"), timeout).unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(err, Error::RequestTimeout { ref topic, .. } if topic.starts_with("reply_timeout")), "{err:?}");
    assert!(err.is_timeout());
    assert!(elapsed >= timeout - Duration::from_millis(5), "returned after {elapsed:?}, before the deadline");
    assert!(elapsed <= timeout + timeout / 10, "returned after {elapsed:?}, past the deadline + 10 %");
    assert_eq!(requester.pending_requests(), 0);
    assert_eq!(requester.dropped_replies(), 0);

    // A responder now answers the stored request: the reply comes, late.
    let responder = responder(&topic, "late:");
    wait_for(Duration::from_secs(60), "the late reply to be dropped", || {
        (requester.dropped_replies() >= 1).then_some(())
    });
    assert_eq!(responder.seen.lock().unwrap()[0].body, b"anyone?");
    assert_eq!(requester.pending_requests(), 0);

    // After shutdown a request is refused at once.
    requester.shutdown();
    let err = requester.request(&Message::new(&topic, "x"), timeout).unwrap_err();
    assert!(matches!(err, Error::NotRunning(_)), "{err:?}");
}

/// The Java peer's class path (built once per test process).
fn java_classpath() -> &'static str {
    static CP: OnceLock<String> = OnceLock::new();
    CP.get_or_init(|| java::build_peer("interop-java", &java::broker_version(&client("broker-a")), &[]))
}

/// A Java process killed when dropped (a test that fails leaves none behind).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn our_requester_java_responder() {
    const N: usize = 8;
    let topic = unique("reply_java_responder");
    create_topic(&topic, 4);
    let mut cmd = java::java_command(java_classpath(), "interop.Reply", &["respond", &topic, &N.to_string()], &[]);
    let mut child = KillOnDrop(cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("start java"));
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let ready = rx.recv_timeout(Duration::from_secs(90)).expect("READY from the Java responder");
    assert_eq!(ready, "READY|");

    let requester = producer(&unique("reply_requester_pg"));
    for i in 0..N {
        let timeout = if i == 0 { FIRST_TIMEOUT } else { TIMEOUT };
        let body = format!("rust-request-{i}");
        let reply = requester.request(&Message::new(&topic, body.clone()), timeout).expect("reply from Java");
        assert_reply(&reply, &format!("java:{body}"));
        assert!(!reply.msg_id.is_empty(), "the Java responder's unique key");
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the Java responder did not exit");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "java respond exited {status}");
    let replied: Vec<String> = rx.try_iter().filter(|l| l.starts_with("REPLIED|")).collect();
    assert_eq!(replied.len(), N, "{replied:?}");
    for (i, line) in replied.iter().enumerate() {
        let f: Vec<&str> = line.split('|').collect();
        let props = java_props(f[3]);
        let ttl = if String::from_utf8(unhex(f[2])).unwrap() == "rust-request-0" { FIRST_TIMEOUT } else { TIMEOUT };
        assert_request_props(&props, Some(requester.client_id()), ttl);
        assert_eq!(props.get(property::CORRELATION_ID).map(String::as_str), Some(f[1]), "line {i}");
    }
}

#[test]
fn java_requester_our_responder() {
    const N: usize = 8;
    let topic = unique("reply_java_requester");
    create_topic(&topic, 4);
    let responder = responder(&topic, "rust:");
    let timeout = Duration::from_secs(30);
    let ms = timeout.as_millis().to_string();
    let lines = java::run_class(
        java_classpath(),
        "interop.Reply",
        &["request", &topic, &N.to_string()],
        &[("INTEROP_TIMEOUT_MS", &ms)],
        "REPLY",
    );
    assert_eq!(lines.len(), N, "{lines:?}");
    for (i, line) in lines.iter().enumerate() {
        let f: Vec<&str> = line.split('|').collect();
        assert_eq!(f[1], i.to_string());
        assert_eq!(f[2], REPLY_TOPIC);
        assert_eq!(String::from_utf8(unhex(f[3])).unwrap(), format!("rust:java-request-{i}"));
        let props = java_props(f[4]);
        assert_eq!(props.get(property::MESSAGE_TYPE).map(String::as_str), Some("reply"));
        assert!(props.contains_key(property::CORRELATION_ID), "{props:?}");
    }
    let seen = responder.seen.lock().unwrap().clone();
    let distinct: HashSet<&[u8]> = seen.iter().map(|m| m.body.as_slice()).collect();
    assert_eq!(distinct.len(), N);
    for m in &seen {
        assert_request_props(&m.properties, None, timeout);
    }
}
