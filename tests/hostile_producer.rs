//! The producer against misbehaving peers (fake name server and broker from
//! `tests/common/peer.rs`): a flood of transaction check-backs stays
//! bounded in memory and does not hold up shutdown; every blocking call
//! keeps its deadline when the name server or the broker is slow or silent.
//!
//! The tests of this file run one at a time (they count the process's
//! threads and its peak memory).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::peer::{self, FakePeer, Reply};
use rocketmq_blocking::producer::{
    LocalTransactionState, Producer, ProducerConfig, ProducerConfigBuilder, SelectByHash, TransactionProducer,
};
use rocketmq_blocking::protocol::header::CheckTransactionStateRequestHeader;
use rocketmq_blocking::protocol::message::{encode_properties, MESSAGE_MAGIC_CODE_V1};
use rocketmq_blocking::protocol::route::{BrokerData, QueueData, TopicRouteData};
use rocketmq_blocking::protocol::{request, RemotingCommand, ResponseCode};
use rocketmq_blocking::{Message, MessageExt, MessageQueue};

/// Serialises the tests of this file.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// The route of a topic served by one broker, `broker-x` at `addr`, with 4 queues.
fn route_json(addr: &str) -> Vec<u8> {
    let route = TopicRouteData {
        order_topic_conf: None,
        queue_datas: vec![QueueData {
            broker_name: "broker-x".into(),
            read_queue_nums: 4,
            write_queue_nums: 4,
            perm: 6,
            topic_sys_flag: 0,
        }],
        broker_datas: vec![BrokerData {
            cluster: "c".into(),
            broker_name: "broker-x".into(),
            broker_addrs: [(0, addr.to_string())].into_iter().collect(),
        }],
    };
    serde_json::to_vec(&route).unwrap()
}

/// A name server that answers every route request with the route to `broker`, after `delay`.
fn name_server(broker: String, delay: Duration) -> FakePeer {
    FakePeer::start(move |req: &RemotingCommand| match req.code {
        request::GET_ROUTEINFO_BY_TOPIC => Reply::Delayed(
            delay,
            RemotingCommand::response_to(req, ResponseCode::Success, None).with_body(route_json(&broker)),
        ),
        _ => Reply::Silence,
    })
}

/// A stored message as the broker encodes it (v1, IPv4 hosts).
fn stored_message(topic: &str, body: &[u8], props: &[(&str, &str)]) -> Vec<u8> {
    let props: std::collections::BTreeMap<String, String> =
        props.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let props = encode_properties(&props);
    let mut m = Vec::new();
    m.extend_from_slice(&0i32.to_be_bytes()); // total size, set below
    m.extend_from_slice(&MESSAGE_MAGIC_CODE_V1.to_be_bytes());
    m.extend_from_slice(&0i32.to_be_bytes()); // body CRC
    m.extend_from_slice(&0i32.to_be_bytes()); // queue id
    m.extend_from_slice(&0i32.to_be_bytes()); // flag
    m.extend_from_slice(&7i64.to_be_bytes()); // queue offset
    m.extend_from_slice(&1234i64.to_be_bytes()); // commit-log offset
    m.extend_from_slice(&0i32.to_be_bytes()); // sys flag
    m.extend_from_slice(&0i64.to_be_bytes()); // born timestamp
    m.extend_from_slice(&[127, 0, 0, 1]);
    m.extend_from_slice(&1i32.to_be_bytes());
    m.extend_from_slice(&0i64.to_be_bytes()); // store timestamp
    m.extend_from_slice(&[127, 0, 0, 1]);
    m.extend_from_slice(&2i32.to_be_bytes());
    m.extend_from_slice(&0i32.to_be_bytes()); // reconsume times
    m.extend_from_slice(&0i64.to_be_bytes()); // prepared transaction offset
    m.extend_from_slice(&(body.len() as i32).to_be_bytes());
    m.extend_from_slice(body);
    m.push(topic.len() as u8);
    m.extend_from_slice(topic.as_bytes());
    m.extend_from_slice(&(props.len() as u16).to_be_bytes());
    m.extend_from_slice(props.as_bytes());
    let total = m.len() as i32;
    m[..4].copy_from_slice(&total.to_be_bytes());
    m
}

/// One CHECK_TRANSACTION_STATE request (oneway, as brokers send it) about
/// the stored half message `stored`.
fn check_frame_about(stored: Vec<u8>) -> Vec<u8> {
    let header = CheckTransactionStateRequestHeader {
        tran_state_table_offset: Some(7),
        commit_log_offset: 1234,
        msg_id: Some("7F0000010001".into()),
        transaction_id: Some("tx-1".into()),
        offset_msg_id: None,
    };
    let mut cmd = RemotingCommand::request(request::CHECK_TRANSACTION_STATE)
        .with_ext_fields(header.to_ext_fields())
        .with_body(stored);
    cmd.flag |= 2; // oneway
    cmd.opaque = 1;
    cmd.encode()
}

/// A check-back with a 1 KiB half message.
fn check_frame() -> Vec<u8> {
    check_frame_about(stored_message(
        "FloodTopic",
        &[b'x'; 1024],
        &[("UNIQ_KEY", "7F0000010001"), ("PGROUP", "flood_pg")],
    ))
}

const FLOOD: usize = 200_000;

/// Runs `f` on its own thread and returns how long it took; panics when it
/// is still running after `limit` (the thread is then left behind).
fn timed(limit: Duration, f: impl FnOnce() + Send + 'static) -> Duration {
    let (tx, rx) = std::sync::mpsc::channel();
    let t = Instant::now();
    std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    match rx.recv_timeout(limit) {
        Ok(()) => t.elapsed(),
        Err(_) => panic!("still running after {limit:?}"),
    }
}

/// What a flood of check-backs left behind.
struct Flood {
    tp: Arc<TransactionProducer>,
    answered: Arc<AtomicUsize>,
    dropped: u64,
    queued: usize,
    grown_kib: u64,
}

/// A transaction producer of `group` with a slow listener (`work` a check)
/// whose broker sends `count` copies of the check-back `frame` after the
/// first heartbeat; returns once each was queued, dropped or answered.
fn flood(group: &str, frame: Vec<u8>, count: usize, work: Duration) -> Flood {
    let broker = FakePeer::start(move |req: &RemotingCommand| match req.code {
        request::HEART_BEAT => Reply::RespondThenFlood(
            RemotingCommand::response_to(req, ResponseCode::Success, None),
            frame.clone(),
            count,
        ),
        request::UNREGISTER_CLIENT => Reply::code(req, ResponseCode::Success),
        // Read only after the flood: refused, so the send ends without a timeout
        // (a timeout mid-frame would close the connection and end the flood).
        request::SEND_MESSAGE | request::SEND_MESSAGE_V2 => Reply::code(req, ResponseCode::SystemError),
        _ => Reply::Silence,
    });
    let ns = name_server(broker.addr(), Duration::ZERO);
    let rss_before = peer::peak_rss_kib();
    let answered = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&answered);
    let config = ProducerConfig::builder()
        .group(group)
        .namesrv_addr(ns.addr())
        .send_timeout(Duration::from_secs(60))
        .retries(0)
        .build()
        .unwrap();
    // A slow listener: the queue fills up.
    let tp = TransactionProducer::new(config, move |_m: &MessageExt| {
        counter.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(work);
        LocalTransactionState::Unknown
    })
    .unwrap();
    tp.start().unwrap();
    // The send is refused (after the flood) but opens the
    // connection, and the heartbeat on it starts the flood.
    let sent = tp.producer().send(&Message::new("FloodTopic", "x"));
    assert!(sent.is_err(), "the fake broker never answers a send: {sent:?}");
    common::wait_for(Duration::from_secs(120), "the flood written", || (broker.pushed() >= count).then_some(()));
    let dropped = common::wait_for(Duration::from_secs(30), "every check-back queued or dropped", || {
        let d = tp.dropped_checks();
        (d as usize + tp.queued_checks() + answered.load(Ordering::SeqCst) + 1 >= count).then_some(d)
    });
    let grown_kib = peer::peak_rss_kib().saturating_sub(rss_before);
    let queued = tp.queued_checks();
    eprintln!(
        "{group}: flood of {count}: answered {}, queued {queued}, dropped {dropped}, peak RSS grew {grown_kib} KiB",
        answered.load(Ordering::SeqCst)
    );
    Flood { tp: Arc::new(tp), answered, dropped, queued, grown_kib }
}

impl Flood {
    /// Shuts the producer down: within 1 s, no thread left, the queue abandoned.
    fn shutdown_promptly(self, count: usize) {
        let for_thread = Arc::clone(&self.tp);
        let took = timed(Duration::from_secs(5), move || for_thread.shutdown());
        eprintln!("shutdown with a full check-back queue took {took:?}");
        assert!(took < Duration::from_secs(1), "shutdown took {took:?}");
        let left = peer::await_crate_threads_at_most(0, Duration::from_secs(1));
        assert!(left.is_empty(), "threads left: {left:?}");
        let total = self.answered.load(Ordering::SeqCst);
        assert!(total < count / 2, "the queued checks were abandoned, not drained ({total} answered)");
    }
}

#[test]
fn a_flood_of_check_backs_stays_bounded_and_shutdown_abandons_the_queue() {
    let _serial = one_at_a_time();
    let f = flood("flood_pg", check_frame(), FLOOD, Duration::from_millis(2));
    assert!(f.queued <= rocketmq_blocking::producer::DEFAULT_CHECK_QUEUE, "{} checks queued", f.queued);
    let answered = f.answered.load(Ordering::SeqCst);
    assert!(f.dropped as usize >= FLOOD - rocketmq_blocking::producer::DEFAULT_CHECK_QUEUE - answered - 1);
    // 2,000 queued 1 KiB half messages are a few MiB; the unbounded queue took hundreds.
    assert!(f.grown_kib < 64 * 1024, "peak RSS grew by {} KiB", f.grown_kib);
    f.shutdown_promptly(FLOOD);
}

/// A check-back whose half message is compressed: 256 KiB inflated from a few hundred bytes.
fn compressed_check_frame() -> Vec<u8> {
    use rocketmq_blocking::protocol::compress::{deflate_zlib, ZLIB_TYPE_BITS};
    use rocketmq_blocking::protocol::message::sys_flag;
    let zipped = deflate_zlib(&vec![b'z'; 256 * 1024], 9).expect("the compression feature");
    let mut stored = stored_message("FloodTopic", &zipped, &[("UNIQ_KEY", "7F0000010002"), ("PGROUP", "zflood_pg")]);
    // The sys flag sits after size, magic, CRC, queue id, flag, queue offset and commit-log offset.
    stored[36..40].copy_from_slice(&(sys_flag::COMPRESSED | ZLIB_TYPE_BITS).to_be_bytes());
    check_frame_about(stored)
}

/// Check-backs whose half messages inflate to 256 KiB each: the queue is
/// bounded by the bytes it holds too, not only by the count (2,000 of them
/// would be 500 MiB).
#[test]
fn a_flood_of_compressed_check_backs_is_bounded_by_bytes() {
    let _serial = one_at_a_time();
    const COUNT: usize = 2_500;
    let f = flood("zflood_pg", compressed_check_frame(), COUNT, Duration::from_millis(100));
    let per_check = 256 * 1024;
    let limit = rocketmq_blocking::producer::DEFAULT_CHECK_QUEUE_BYTES / per_check;
    assert!(f.queued <= limit, "{} checks of 256 KiB queued (byte limit allows {limit})", f.queued);
    let answered = f.answered.load(Ordering::SeqCst);
    assert!(f.dropped as usize + limit + answered + 1 >= COUNT, "{} dropped", f.dropped);
    // The 64 MiB of the queue, plus one message being inflated per connection.
    assert!(f.grown_kib < 128 * 1024, "peak RSS grew by {} KiB", f.grown_kib);
    f.shutdown_promptly(COUNT);
}

/// A producer of `group` whose name server is `ns`, with a 2 s send timeout and 2 retries.
fn producer(ns: &FakePeer, group: &str) -> Producer {
    let config = ProducerConfig::builder()
        .group(group)
        .namesrv_addr(ns.addr())
        .send_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let p = Producer::new(config).unwrap();
    p.start().unwrap();
    p
}

const BUDGET: Duration = Duration::from_secs(2);
/// The deadline + 10 %.
const LIMIT: Duration = Duration::from_millis(2200);

/// Asserts that `what` failed with a timeout within [`LIMIT`].
fn assert_timed_out<T: std::fmt::Debug>(what: &str, t: Instant, r: rocketmq_blocking::Result<T>) {
    let took = t.elapsed();
    eprintln!("{what}: {took:?}");
    let e = r.expect_err(what);
    assert!(e.last_cause().is_timeout(), "{what}: not a timeout: {e}");
    assert!(took <= LIMIT, "{what} took {took:?} with a {BUDGET:?} send timeout");
}

#[test]
fn send_keeps_its_timeout_when_the_name_server_never_answers() {
    let _serial = one_at_a_time();
    let ns = FakePeer::start(|_req: &RemotingCommand| Reply::Silence);
    let p = producer(&ns, "silent_ns_pg");
    let t = Instant::now();
    assert_timed_out("send, silent name server", t, p.send(&Message::new("T", "x")));
}

#[test]
fn every_send_keeps_its_timeout_when_the_broker_never_answers() {
    let _serial = one_at_a_time();
    let broker = FakePeer::start(|_req: &RemotingCommand| Reply::Silence);
    // The route comes late: 1.5 s of the 2 s are gone before the broker is tried.
    for delay in [Duration::ZERO, Duration::from_millis(1500)] {
        let ns = name_server(broker.addr(), delay);
        let p = producer(&ns, "silent_broker_pg");
        let t = Instant::now();
        assert_timed_out(&format!("send, route after {delay:?}"), t, p.send(&Message::new("T", "x")));
        let t = Instant::now();
        assert_timed_out("batch", t, p.send_batch(&[Message::new("T", "a"), Message::new("T", "b")]));
        let t = Instant::now();
        assert_timed_out("selector", t, p.send_with_selector(&Message::new("T", "x"), &SelectByHash, "k"));
        let t = Instant::now();
        let q = MessageQueue::new("T", "broker-x", 1);
        assert_timed_out("send to queue", t, p.send_to_queue(&Message::new("T", "x"), &q));
        assert_prompt_shutdown("with a silent broker", || p.shutdown());
    }
}

#[test]
fn a_transaction_send_keeps_its_timeout_when_the_broker_never_answers() {
    let _serial = one_at_a_time();
    let broker = FakePeer::start(|_req: &RemotingCommand| Reply::Silence);
    let ns = name_server(broker.addr(), Duration::ZERO);
    let config =
        ProducerConfig::builder().group("silent_tx_pg").namesrv_addr(ns.addr()).send_timeout(BUDGET).build().unwrap();
    let tp = TransactionProducer::new(config, |_m: &MessageExt| LocalTransactionState::Unknown).unwrap();
    tp.start().unwrap();
    let t = Instant::now();
    let r = tp.send_message_in_transaction(&Message::new("T", "x"), |_, _| LocalTransactionState::CommitMessage);
    assert_timed_out("transaction send", t, r);
    assert_prompt_shutdown("of a transaction producer with a silent broker", || tp.shutdown());
}

/// Runs `shutdown` and asserts it took at most 1.1 s and left no crate thread.
fn assert_prompt_shutdown(what: &str, shutdown: impl FnOnce()) {
    let t = Instant::now();
    shutdown();
    let took = t.elapsed();
    eprintln!("shutdown {what}: {took:?}");
    assert!(took <= Duration::from_millis(1100), "shutdown {what} took {took:?}");
    let left = peer::await_crate_threads_at_most(0, Duration::from_secs(1));
    assert!(left.is_empty(), "threads left: {left:?}");
}

/// A started producer of `group` (send timeout [`BUDGET`]) whose name
/// server is `ns`, with one failed send behind it (the broker never answers).
fn after_a_failed_send(
    ns: &FakePeer,
    group: &str,
    tune: impl FnOnce(ProducerConfigBuilder) -> ProducerConfigBuilder,
) -> Producer {
    let config =
        tune(ProducerConfig::builder().group(group).namesrv_addr(ns.addr()).send_timeout(BUDGET)).build().unwrap();
    let p = Producer::new(config).unwrap();
    p.start().unwrap();
    assert!(p.send(&Message::new("T", "x")).is_err(), "the broker never answers");
    p
}

/// Shutdown while the background thread waits on a silent peer: the
/// heartbeat to a silent broker, or the route refresh from a name server
/// that stopped answering, must not hold shutdown up for its request timeout.
#[test]
fn shutdown_is_prompt_while_the_background_thread_waits_on_a_silent_peer() {
    let _serial = one_at_a_time();
    let broker = FakePeer::start(|_req: &RemotingCommand| Reply::Silence);
    // A: heartbeats every 100 ms to a broker that never answers.
    let ns = name_server(broker.addr(), Duration::ZERO);
    let p = after_a_failed_send(&ns, "silent_heartbeat_pg", |b| b.heartbeat_interval(Duration::from_millis(100)));
    let beats = broker.count(request::HEART_BEAT);
    common::wait_for(Duration::from_secs(10), "a periodic heartbeat in flight", || {
        (broker.count(request::HEART_BEAT) > beats).then_some(())
    });
    assert_prompt_shutdown("during a heartbeat to a silent broker", || p.shutdown());

    // B: routes polled every 100 ms from a name server that answers once, then never again.
    let answered = Arc::new(AtomicUsize::new(0));
    let (n, addr) = (Arc::clone(&answered), broker.addr());
    let ns = FakePeer::start(move |req: &RemotingCommand| match req.code {
        request::GET_ROUTEINFO_BY_TOPIC if n.fetch_add(1, Ordering::SeqCst) == 0 => {
            Reply::ok_body(req, route_json(&addr))
        }
        _ => Reply::Silence,
    });
    let p = after_a_failed_send(&ns, "silent_refresh_pg", |b| b.poll_namesrv_interval(Duration::from_millis(100)));
    common::wait_for(Duration::from_secs(10), "a route refresh in flight", || {
        (ns.count(request::GET_ROUTEINFO_BY_TOPIC) >= 2).then_some(())
    });
    assert_prompt_shutdown("during a route refresh from a silent name server", || p.shutdown());
}

/// A broker that pushes replies no request waits for (request-reply), each
/// with a zlib body that would inflate to 4 MiB: every one is answered,
/// dropped and counted, and none is inflated (the flood of 20,000 would
/// inflate to 80 GiB).
#[test]
fn a_flood_of_unknown_replies_is_dropped_and_counted() {
    use rocketmq_blocking::protocol::compress::{deflate_zlib, ZLIB_TYPE_BITS};
    use rocketmq_blocking::protocol::header::ReplyMessageRequestHeader;
    use rocketmq_blocking::protocol::message::{property, sys_flag};
    let _serial = one_at_a_time();
    const COUNT: usize = 20_000;
    let props = [(property::CORRELATION_ID.to_string(), "nobody-asked".to_string())].into_iter().collect();
    let header = ReplyMessageRequestHeader {
        producer_group: "flood".into(),
        topic: "c_REPLY_TOPIC".into(),
        sys_flag: sys_flag::COMPRESSED | ZLIB_TYPE_BITS,
        properties: Some(encode_properties(&props)),
        ..Default::default()
    };
    let mut push = RemotingCommand::request(request::PUSH_REPLY_MESSAGE_TO_CLIENT)
        .with_ext_fields(header.to_ext_fields())
        .with_body(deflate_zlib(&vec![0; 4 << 20], 9).expect("the compression feature"));
    push.opaque = 1;
    let frame = push.encode();
    let broker = FakePeer::start(move |req: &RemotingCommand| match req.code {
        request::HEART_BEAT => Reply::RespondThenFlood(
            RemotingCommand::response_to(req, ResponseCode::Success, None),
            frame.clone(),
            COUNT,
        ),
        request::SEND_MESSAGE | request::SEND_MESSAGE_V2 => Reply::code(req, ResponseCode::SystemError),
        _ => Reply::Silence,
    });
    let ns = name_server(broker.addr(), Duration::ZERO);
    let p = producer(&ns, "reply_flood_pg");
    let sent = p.send(&Message::new("FloodTopic", "x"));
    assert!(sent.is_err(), "the fake broker refuses sends: {sent:?}");
    common::wait_for(Duration::from_secs(120), "every reply dropped", || {
        (p.dropped_replies() as usize >= COUNT).then_some(())
    });
    assert_eq!(p.dropped_replies() as usize, COUNT);
    assert_eq!(p.pending_requests(), 0);
    // Each push was answered (success, as Java answers a reply it cannot match).
    common::wait_for(Duration::from_secs(30), "every push answered", || (broker.count(0) >= COUNT).then_some(()));
    assert_prompt_shutdown("after a flood of replies", || p.shutdown());
}
