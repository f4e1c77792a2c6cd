//! Access control on real brokers: 5.x with ACL 2.0, 4.x with ACL 1.0.
//!
//! Needs the harness in ACL mode, which creates an admin and a normal user
//! (allowed to publish to and subscribe from one topic, and to subscribe
//! with one group) and exports their names in `ROCKETMQ_ACL_*`:
//!
//! ```sh
//! ROCKETMQ_ACL=1 ROCKETMQ_PORT_OFFSET=200 tests/run.sh --test acl
//! ROCKETMQ_ACL=1 ROCKETMQ_VERSION=4.9.7 ROCKETMQ_PORT_OFFSET=300 tests/run.sh --test acl
//! ```
//!
//! Without `ROCKETMQ_ACL=1` every test here prints why and returns (the
//! ordinary suite runs on brokers without access control). The tests that
//! read the shared ACL topic back hold one lock, so each sees only its own
//! messages there.
#![cfg(feature = "acl")]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use common::rmq::{rmq_with, Run};
use common::*;
use rocketmq_blocking::acl::Credentials;
use rocketmq_blocking::broker::{BrokerClient, ClientConfig, PullRequest, PullStatus};
use rocketmq_blocking::consumer::LitePullConsumer;
use rocketmq_blocking::net::ConnectionConfig;
use rocketmq_blocking::producer::{LocalTransactionState, Producer, ProducerConfigBuilder, TransactionProducer};
use rocketmq_blocking::{Error, Message, MessageExt, MessageQueue, NameServerClient, TopicConfig};

/// Sends to freshly started brokers on a busy 2-core machine may be slow
/// (the Testing preset's 2 s is for warm ones).
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// The users and resources the harness set up.
struct Acl {
    admin: Credentials,
    user: Credentials,
    user_secret: String,
    topic: String,
    group: String,
    /// A topic the normal user has no right to (created by the admin here).
    forbidden: String,
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: start the harness with ROCKETMQ_ACL=1"))
}

/// The ACL setup, or `None` (with a message) when the brokers run without ACL.
fn acl() -> Option<&'static Acl> {
    static ACL: OnceLock<Option<Acl>> = OnceLock::new();
    let acl = ACL.get_or_init(|| {
        if std::env::var("ROCKETMQ_ACL").as_deref() != Ok("1") {
            return None;
        }
        let acl = Acl {
            admin: Credentials::new(var("ROCKETMQ_ACL_ADMIN"), var("ROCKETMQ_ACL_ADMIN_SECRET")).unwrap(),
            user: Credentials::new(var("ROCKETMQ_ACL_USER"), var("ROCKETMQ_ACL_USER_SECRET")).unwrap(),
            user_secret: var("ROCKETMQ_ACL_USER_SECRET"),
            topic: var("ROCKETMQ_ACL_TOPIC"),
            group: var("ROCKETMQ_ACL_GROUP"),
            forbidden: "acl-forbidden".to_string(),
        };
        // Topics are an admin's business: both on both brokers, 2 queues each.
        let ns = ns_as(&acl.admin);
        for topic in [&acl.topic, &acl.forbidden] {
            ns.create_topic(CLUSTER, &TopicConfig::new(topic).queues(2)).expect("admin creates the ACL topics");
            wait_for(Duration::from_secs(30), "route of the ACL topic", || {
                ns.topic_route(topic).ok().filter(|r| r.queue_datas.len() >= 2)
            });
        }
        Some(acl)
    });
    if acl.is_none() {
        eprintln!("skipped: the brokers run without access control (start the harness with ROCKETMQ_ACL=1)");
    }
    acl.as_ref()
}

/// Serializes the tests that read the ACL topic back.
fn topic_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn ns_as(creds: &Credentials) -> NameServerClient {
    let config = ConnectionConfig { credentials: Some(creds.clone()), ..ConnectionConfig::default() };
    NameServerClient::with_config(&namesrv_addr(), config, Duration::from_secs(10)).unwrap()
}

fn producer_as(creds: &Credentials, group: &str) -> ProducerConfigBuilder {
    producer_config(&unique(group)).send_timeout(SEND_TIMEOUT).credentials(creds.clone())
}

fn client_as(creds: Option<&Credentials>, broker: &str) -> BrokerClient {
    let mut config = ClientConfig::builder().request_timeout(Duration::from_secs(10));
    if let Some(c) = creds {
        config = config.credentials(c.clone());
    }
    BrokerClient::connect(&broker_addr(broker), &config.build().unwrap()).expect("connect to broker")
}

fn queues(acl: &Acl) -> Vec<MessageQueue> {
    let route = ns_as(&acl.user).topic_route(&acl.topic).expect("route of the ACL topic");
    let mut v: Vec<MessageQueue> = route
        .queue_datas
        .iter()
        .flat_map(|q| (0..q.read_queue_nums).map(move |i| MessageQueue::new(&acl.topic, q.broker_name.clone(), i)))
        .collect();
    v.sort();
    v
}

/// Max offset of every queue of the ACL topic, read by the normal user.
fn max_offsets(acl: &Acl) -> BTreeMap<MessageQueue, i64> {
    queues(acl)
        .into_iter()
        .map(|q| {
            let max = client_as(Some(&acl.user), &q.broker_name).max_offset(&q).expect("max offset as the user");
            (q, max)
        })
        .collect()
}

/// Every message stored in the ACL topic after `from`, pulled by the normal user with its group.
fn pull_since(acl: &Acl, from: &BTreeMap<MessageQueue, i64>, expected: usize) -> Vec<MessageExt> {
    let mut out = Vec::new();
    wait_for(Duration::from_secs(30), "messages in the ACL topic", || {
        out.clear();
        for (q, &start) in from {
            let c = client_as(Some(&acl.user), &q.broker_name);
            let mut offset = start;
            loop {
                let r = c.pull(&PullRequest::new(&acl.group, q.clone(), offset)).expect("pull as the user");
                if r.status != PullStatus::Found {
                    break;
                }
                offset = r.next_begin_offset;
                out.extend(r.messages);
            }
        }
        (out.len() >= expected).then_some(())
    });
    out
}

fn bodies(msgs: &[MessageExt]) -> BTreeSet<String> {
    msgs.iter().map(|m| String::from_utf8_lossy(&m.body).into_owned()).collect()
}

#[test]
fn right_key_sends_pulls_and_keeps_consumer_offsets() {
    let Some(acl) = acl() else { return };
    let _lock = topic_lock();
    let before = max_offsets(acl);

    // Producer: routes, heartbeats and sends, all signed.
    let p = Producer::new(producer_as(&acl.user, "acl_pg").build().unwrap()).unwrap();
    p.start().unwrap();
    let sent: Vec<String> = (0..8).map(|i| format!("acl-send-{i}")).collect();
    let mut ids = BTreeSet::new();
    for body in &sent {
        ids.insert(p.send(&Message::new(&acl.topic, body.clone())).expect("signed send").msg_id);
    }
    p.shutdown();

    // Pull by the user, with its group: exactly what was sent.
    let got = pull_since(acl, &before, sent.len());
    assert_eq!(bodies(&got), sent.iter().cloned().collect());
    assert_eq!(got.iter().map(|m| m.msg_id.clone()).collect::<BTreeSet<_>>(), ids);

    // Consumer offsets of the allowed group: written and read back.
    let q = queues(acl).into_iter().next().unwrap();
    let c = client_as(Some(&acl.user), &q.broker_name);
    let max = c.max_offset(&q).unwrap();
    c.update_consumer_offset(&acl.group, &q, max).expect("commit an offset as the user");
    assert_eq!(c.query_consumer_offset(&acl.group, &q).expect("read the offset back"), Some(max));

    // A lite pull consumer with the same credentials: assign, seek, poll, commit.
    let consumer = LitePullConsumer::new(
        consumer_config(&acl.group).credentials(acl.user.clone()).auto_commit(false).build().unwrap(),
    )
    .unwrap();
    let assigned = queues(acl);
    consumer.assign(&assigned).unwrap();
    consumer.start().unwrap();
    for q in &assigned {
        consumer.seek(q, before[q]).unwrap();
    }
    let mut polled = Vec::new();
    wait_for(Duration::from_secs(30), "the lite pull consumer reads the sent messages", || {
        polled.extend(consumer.poll(Duration::from_millis(500)).expect("signed poll"));
        (polled.len() >= sent.len()).then_some(())
    });
    assert_eq!(bodies(&polled), sent.iter().cloned().collect());
    consumer.commit_sync().expect("signed offset commit");
    // Every queue that got messages is committed up to its end.
    for (q, max) in max_offsets(acl) {
        if max > before[&q] {
            let stored = client_as(Some(&acl.user), &q.broker_name).query_consumer_offset(&acl.group, &q).unwrap();
            assert_eq!(stored, Some(max), "committed offset of {q:?}");
        }
    }
    consumer.shutdown();
}

#[test]
fn transactions_commit_roll_back_and_answer_check_backs() {
    let Some(acl) = acl() else { return };
    let _lock = topic_lock();
    let before = max_offsets(acl);
    let checked = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&checked);
    let listener = move |m: &MessageExt| {
        seen.lock().unwrap().push(m.msg_id.clone());
        LocalTransactionState::CommitMessage
    };
    let config = producer_as(&acl.user, "acl_tx_pg").build().unwrap();
    let tp = TransactionProducer::new(config, listener).unwrap();
    tp.start().unwrap();
    let mut unknown = String::new();
    for (body, state) in [
        ("acl-tx-commit", LocalTransactionState::CommitMessage),
        ("acl-tx-rollback", LocalTransactionState::RollbackMessage),
        ("acl-tx-unknown", LocalTransactionState::Unknown),
    ] {
        let r = tp.send_message_in_transaction(&Message::new(&acl.topic, body), |_, _| state).expect("signed half");
        if state == LocalTransactionState::Unknown {
            unknown = r.send_result.msg_id.clone();
        }
    }
    // The commit shows at once, the unknown one after the broker asked us.
    let got = pull_since(acl, &before, 2);
    assert_eq!(bodies(&got), ["acl-tx-commit", "acl-tx-unknown"].map(String::from).into_iter().collect());
    assert!(checked.lock().unwrap().contains(&unknown), "the check-back reached the listener");
    tp.shutdown();
}

#[test]
fn wrong_secret_or_no_credentials_is_an_authentication_error() {
    let Some(acl) = acl() else { return };
    let wrong = Credentials::new(acl.user.access_key(), "not-the-secret-1").unwrap();
    let q = MessageQueue::new(&acl.topic, "broker-a", 0);

    for (what, creds) in [("wrong secret", Some(&wrong)), ("no credentials", None)] {
        let c = client_as(creds, "broker-a");
        let err = c.send("acl_pg", &q, &Message::new(&acl.topic, "never stored")).unwrap_err();
        eprintln!("{what}: {err}");
        assert!(matches!(err, Error::Authentication { .. }), "{what}: {err:?}");
        assert!(!err.is_retryable());
        let err = c.pull(&PullRequest::new(&acl.group, q.clone(), 0)).unwrap_err();
        assert!(matches!(err, Error::Authentication { .. }), "{what}: {err:?}");
    }

    // Through the producer: refused on the first attempt, not retried, and
    // the secret shows nowhere.
    let p = Producer::new(producer_as(&wrong, "acl_pg").build().unwrap()).unwrap();
    p.start().unwrap();
    let err = p.send(&Message::new(&acl.topic, "never stored")).unwrap_err();
    // A single attempt's error comes back as itself (several would be SendFailed).
    assert!(matches!(err, Error::Authentication { .. }), "refused once, not retried: {err:?}");
    let shown = format!("{err} {err:?} {:?}", p);
    assert!(!shown.contains("not-the-secret-1") && !shown.contains(&acl.user_secret), "{shown}");
    p.shutdown();
}

#[test]
fn a_topic_or_group_the_user_may_not_use_is_an_authorization_error() {
    let Some(acl) = acl() else { return };
    let forbidden_q = MessageQueue::new(&acl.forbidden, "broker-a", 0);
    let c = client_as(Some(&acl.user), "broker-a");
    let err = c.send("acl_pg", &forbidden_q, &Message::new(&acl.forbidden, "not allowed")).unwrap_err();
    eprintln!("forbidden topic: {err}");
    assert!(matches!(err, Error::Authorization { .. }), "{err:?}");
    assert!(!err.is_retryable());

    // The right topic with a group the user may not subscribe with.
    let q = MessageQueue::new(&acl.topic, "broker-a", 0);
    let err = c.pull(&PullRequest::new(unique("acl_other_cg"), q, 0)).unwrap_err();
    eprintln!("forbidden group: {err}");
    assert!(matches!(err, Error::Authorization { .. }), "{err:?}");

    // The admin may: the topic works, only the user is refused.
    let admin = client_as(Some(&acl.admin), "broker-a");
    let before = admin.max_offset(&forbidden_q).unwrap();
    admin.send("acl_admin_pg", &forbidden_q, &Message::new(&acl.forbidden, "by the admin")).expect("admin send");
    let r = admin.pull(&PullRequest::new("acl_admin_cg", forbidden_q.clone(), before)).expect("admin pull");
    assert_eq!(r.messages.first().map(|m| m.body.clone()), Some(b"by the admin".to_vec()));
}

/// The Java peer, built against the brokers' version (with rocketmq-acl on 4.x).
fn java_classpath(acl: &Acl) -> &'static str {
    static CP: OnceLock<String> = OnceLock::new();
    CP.get_or_init(|| {
        let version = java::broker_version(&client_as(Some(&acl.admin), "broker-a"));
        let extra: &[&str] = if version.starts_with("4.") { &["-Dinterop.acl1"] } else { &[] };
        java::build_peer("interop-java-acl", &version, extra)
    })
}

#[test]
fn the_java_client_with_the_same_credentials_interoperates() {
    let Some(acl) = acl() else { return };
    let cp = java_classpath(acl);
    let _lock = topic_lock();
    let env = [
        ("ROCKETMQ_ACCESS_KEY", acl.user.access_key()),
        ("ROCKETMQ_SECRET_KEY", acl.user_secret.as_str()),
        ("INTEROP_CONSUMER_GROUP", acl.group.as_str()),
        ("INTEROP_TIMEOUT_MS", "10000"),
    ];

    // Java sends with the user's key; we pull what it reported.
    let before = max_offsets(acl);
    let sent = java::run_interop(cp, &["produce", &acl.topic, "4"], &env, "SENT");
    assert_eq!(sent.len(), 4, "{sent:?}");
    let java_ids: BTreeSet<String> = sent.iter().map(|l| l.split('|').nth(1).unwrap().to_string()).collect();
    let got = pull_since(acl, &before, 4);
    assert_eq!(got.iter().map(|m| m.msg_id.clone()).collect::<BTreeSet<_>>(), java_ids);
    assert!(got.iter().all(|m| m.body.starts_with(b"java-body-") || m.body.starts_with(b"java compressed")));

    // We send with the user's key; Java reads the whole topic with it.
    let c = client_as(Some(&acl.user), "broker-b");
    let q = MessageQueue::new(&acl.topic, "broker-b", 1);
    let ours: BTreeSet<String> = (0..4)
        .map(|i| c.send("acl_pg", &q, &Message::new(&acl.topic, format!("rust-acl-{i}"))).unwrap().msg_id)
        .collect();
    let total: i64 = max_offsets(acl).values().sum();
    let read = java::run_interop(cp, &["consume", &acl.topic, &total.to_string()], &env, "MSG");
    let read_ids: BTreeSet<String> = read.iter().map(|l| l.split('|').nth(1).unwrap().to_string()).collect();
    assert!(ours.is_subset(&read_ids), "ours {ours:?} not all read by Java ({} read)", read_ids.len());
}

/// `rmq` with the name server and `env` (the credential variables removed unless given).
fn rmq_acl(args: &[&str], env: &[(&str, &str)]) -> Run {
    let ns = namesrv_addr();
    let mut all: Vec<(&str, Option<&str>)> =
        vec![("ROCKETMQ_NAMESRV_ADDR", Some(&ns)), ("ROCKETMQ_ACCESS_KEY", None), ("ROCKETMQ_SECRET_KEY", None)];
    all.extend(env.iter().map(|(k, v)| (*k, Some(*v))));
    rmq_with(args, None, &all)
}

/// `rmq` signs with `--access-key` / `--secret-key`, or with
/// `ROCKETMQ_ACCESS_KEY` / `ROCKETMQ_SECRET_KEY`; without them, or with a
/// wrong secret, the broker refuses and rmq exits 1 saying so.
#[test]
fn rmq_takes_credentials_from_its_flags_or_the_environment() {
    let Some(acl) = acl() else { return };
    let _lock = topic_lock();
    let before = max_offsets(acl);
    let user = acl.user.access_key();
    let send = |body: &'static str| vec!["send", "--topic", acl.topic.as_str(), "--count", "3", "--body", body];

    let mut args = send("rmq-flag-{n}");
    args.extend(["--access-key", user, "--secret-key", &acl.user_secret]);
    let run = rmq_acl(&args, &[]);
    assert_eq!(run.code, 0, "with --access-key/--secret-key: {}", run.stderr);
    assert_eq!(run.stdout.lines().count(), 3, "{}", run.stdout);
    let env = [("ROCKETMQ_ACCESS_KEY", user), ("ROCKETMQ_SECRET_KEY", acl.user_secret.as_str())];
    let run = rmq_acl(&send("rmq-env-{n}"), &env);
    assert_eq!(run.code, 0, "with ROCKETMQ_ACCESS_KEY/SECRET_KEY: {}", run.stderr);
    // Stored: read back by the user with its group.
    let got = bodies(&pull_since(acl, &before, 6));
    let want: BTreeSet<String> = (0..3).flat_map(|i| [format!("rmq-flag-{i}"), format!("rmq-env-{i}")]).collect();
    assert_eq!(got, want);
    // A reading command signs too: offsets as the user match the brokers'.
    let run = rmq_acl(&["offsets", "--topic", &acl.topic, "--group", &acl.group], &env);
    assert_eq!(run.code, 0, "offsets with the user's key: {}", run.stderr);
    let after = max_offsets(acl);
    for line in run.stdout.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        let q = MessageQueue::new(&acl.topic, f[0], f[1].parse().unwrap());
        assert_eq!(f[3].parse::<i64>().unwrap(), after[&q], "{line}");
    }

    // Refused: no credentials, a wrong secret (exit 1, the reason on stderr);
    // half a key pair is a usage error (exit 2).
    let run = rmq_acl(&send("never"), &[]);
    assert_eq!(run.code, 1, "without credentials: {} {}", run.stdout, run.stderr);
    assert!(run.stderr.contains("authentication failed"), "{}", run.stderr);
    let mut args = send("never");
    args.extend(["--access-key", user, "--secret-key", "not-the-secret-1"]);
    let run = rmq_acl(&args, &[]);
    assert_eq!(run.code, 1, "wrong secret: {}", run.stderr);
    assert!(run.stderr.contains("authentication failed") && !run.stderr.contains("not-the-secret-1"), "{}", run.stderr);
    let mut args = send("never");
    args.extend(["--access-key", user]);
    let run = rmq_acl(&args, &env);
    assert_eq!(run.code, 2, "--access-key alone: {}", run.stderr);
    assert_eq!(max_offsets(acl), after, "nothing stored by the refused runs");
}
