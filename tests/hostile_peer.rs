//! Hostile peers: what a real name server or broker cannot be made to send.
//! A local fake peer (tests/common/peer.rs) plays it; none of these tests is
//! proof that a feature works (those run against the real brokers).
//!
//! Every test asserts the typed error, a bound on the time the call took,
//! that the crate's threads are back to their count before the test, and
//! on Linux a bound on the growth of the peak resident set (VmHWM, reset
//! at the start of each test). The tests take one lock, one at a time, so
//! thread counts and peaks belong to one test.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::peer::{await_crate_threads_at_most, peak_rss_kib, rss_kib, FakePeer, Reply};
use rocketmq_blocking::broker::BrokerConnectionPool;
use rocketmq_blocking::net::{Connection, ConnectionConfig, MAX_CONSECUTIVE_TIMEOUTS};
use rocketmq_blocking::producer::ProducerConfig;
use rocketmq_blocking::protocol::route::RouteLimits;
use rocketmq_blocking::protocol::{request, RemotingCommand, ResponseCode};
use rocketmq_blocking::{
    BrokerClient, ClientConfig, Error, Message, MessageQueue, NameServerClient, Producer, ProtocolError,
};

static SERIAL: Mutex<()> = Mutex::new(());

/// One test's bookkeeping: the lock, the crate's threads and the resident
/// set when it started.
struct Check {
    _serial: MutexGuard<'static, ()>,
    threads: usize,
    rss_kib: u64,
}

/// Resets the peak resident set to the current one (Linux: `5` to
/// /proc/self/clear_refs); false when the kernel does not allow it.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn begin() -> Check {
    let serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let threads = common::crate_threads().len();
    reset_peak_rss();
    Check { _serial: serial, threads, rss_kib: rss_kib() }
}

impl Check {
    /// Measures from here: resets the peak to the current resident set.
    #[cfg_attr(not(feature = "compression"), allow(dead_code))]
    fn rebase(&mut self) {
        reset_peak_rss();
        self.rss_kib = rss_kib();
    }

    /// Threads back to their count within 2 s; peak RSS grew at most `max_growth_mib`.
    fn end(self, max_growth_mib: u64) {
        let left = await_crate_threads_at_most(self.threads, Duration::from_secs(2));
        assert!(left.len() <= self.threads, "crate threads left: {left:?} (before: {})", self.threads);
        if cfg!(target_os = "linux") && self.rss_kib > 0 {
            let growth_mib = peak_rss_kib().saturating_sub(self.rss_kib) / 1024;
            eprintln!("peak RSS growth {growth_mib} MiB (bound {max_growth_mib} MiB)");
            assert!(growth_mib <= max_growth_mib, "peak RSS grew {growth_mib} MiB, bound {max_growth_mib} MiB");
        }
    }
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t = Instant::now();
    let r = f();
    (r, t.elapsed())
}

/// Deadline + 10 %.
fn within(took: Duration, deadline: Duration) {
    eprintln!("took {took:?} (deadline {deadline:?})");
    assert!(took <= deadline + deadline / 10, "took {took:?}, deadline {deadline:?} + 10 %");
}

/// A raw peer that reads one request and then writes `reply` (raw bytes).
fn raw_peer(reply: Vec<u8>, then_wait: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf);
        s.write_all(&reply).unwrap();
        if then_wait {
            let _ = s.read(&mut buf);
        }
    });
    addr
}

fn max_offset_request() -> RemotingCommand {
    RemotingCommand::request(request::GET_MAX_OFFSET)
}

/// Connects to `addr`, sends one request, waits up to 5 s.
fn call_raw(addr: &str, config: &ConnectionConfig) -> (Result<RemotingCommand, Error>, Duration, Connection) {
    let conn = Connection::connect(addr, config).unwrap();
    let (r, took) = timed(|| conn.invoke(max_offset_request(), Duration::from_secs(5)));
    (r, took, conn)
}

// ---------------------------------------------------------------- framing

#[test]
fn garbage_from_the_peer_fails_waiters_at_once_with_a_protocol_error() {
    let check = begin();
    let mut garbage = 20i32.to_be_bytes().to_vec();
    garbage.extend_from_slice(&[7, 0, 0, 4]); // serialize type 7
    garbage.extend_from_slice(&[0; 16]);
    let (r, took, conn) = call_raw(&raw_peer(garbage, true), &ConnectionConfig::default());
    assert!(matches!(r, Err(Error::Protocol { source: ProtocolError::UnknownSerializeType(7), .. })), "{r:?}");
    assert!(took < Duration::from_secs(2), "woke after {took:?}");
    assert!(conn.is_closed());
    let again = conn.invoke(max_offset_request(), Duration::from_secs(1));
    assert!(matches!(again, Err(Error::Protocol { .. })), "{again:?}");
    drop(conn);
    check.end(32);
}

#[test]
fn oversize_length_prefix_is_refused_by_its_length() {
    let check = begin();
    let config = ConnectionConfig { max_frame_size: 1024, ..ConnectionConfig::default() };
    for announced in [100_000i32, i32::MAX] {
        let (r, took, _) = call_raw(&raw_peer(announced.to_be_bytes().to_vec(), true), &config);
        assert!(
            matches!(r, Err(Error::Protocol { source: ProtocolError::FrameTooLarge { len, max: 1024 }, .. }) if len == announced as usize),
            "{r:?}"
        );
        assert!(took < Duration::from_secs(2), "{took:?}");
    }
    // A negative length.
    let (r, took, _) = call_raw(&raw_peer((-5i32).to_be_bytes().to_vec(), true), &ConnectionConfig::default());
    assert!(matches!(r, Err(Error::Protocol { source: ProtocolError::BadFrameLength(_), .. })), "{r:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    check.end(32);
}

#[test]
fn header_length_past_the_frame_is_a_protocol_error() {
    let check = begin();
    let mut frame = 8i32.to_be_bytes().to_vec();
    frame.extend_from_slice(&[0, 0, 0, 100]); // JSON header of 100 bytes in a 4-byte rest
    frame.extend_from_slice(b"{}{}");
    let (r, took, conn) = call_raw(&raw_peer(frame, true), &ConnectionConfig::default());
    assert!(
        matches!(r, Err(Error::Protocol { source: ProtocolError::HeaderBeyondFrame { header: 100, .. }, .. })),
        "{r:?}"
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
    drop(conn);
    check.end(32);
}

#[test]
fn bad_json_header_is_a_protocol_error() {
    let check = begin();
    let header = br#"{"code":0,"flag":1,"opaque":"#;
    let mut frame = (4 + header.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&(header.len() as u32).to_be_bytes());
    frame.extend_from_slice(header);
    let (r, took, conn) = call_raw(&raw_peer(frame, true), &ConnectionConfig::default());
    assert!(matches!(r, Err(Error::Protocol { source: ProtocolError::InvalidJson { .. }, .. })), "{r:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    drop(conn);
    check.end(32);
}

#[test]
fn peer_closing_mid_frame_wakes_the_waiter() {
    let check = begin();
    let (r, took, conn) = call_raw(&raw_peer(vec![0, 0, 1, 0, 0, 0], false), &ConnectionConfig::default());
    assert!(matches!(r, Err(Error::ConnectionClosed { .. })), "{r:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(conn.is_closed());
    drop(conn);
    check.end(32);
}

#[test]
fn unknown_response_codes_are_kept_in_a_broker_error() {
    let check = begin();
    let peer = FakePeer::start(|req| Reply::code(req, ResponseCode::Unknown(4242)));
    let client = BrokerClient::connect(&peer.addr(), &ClientConfig::default()).unwrap();
    let queue = MessageQueue::new("T", "broker-a", 0);
    let (r, took) = timed(|| client.max_offset(&queue));
    // An offset operation: the offset variant, with the unknown code kept.
    match r {
        Err(e @ Error::Offset { code: ResponseCode::Unknown(4242), .. }) => assert!(!e.is_retryable()),
        other => panic!("{other:?}"),
    }
    let cmd = RemotingCommand::request(request::GET_BROKER_CLUSTER_INFO);
    let resp = client.invoke(cmd, Duration::from_secs(1)).unwrap();
    assert_eq!(resp.response_code(), ResponseCode::Unknown(4242));
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(client.is_connected(), "a refusal leaves the connection usable");
    drop(client);
    drop(peer);
    check.end(32);
}

#[test]
fn bad_addresses_are_typed_errors_without_a_resolver() {
    let check = begin();
    let long = format!("{}:10911", "a".repeat(10_000));
    let bad = ["nohost", "127.0.0.1", "127.0.0.1:notaport", ":9876", "::1:9876", "127.0.0.1:70000", "", "999.1.1.1:0"];
    for bad in bad.iter().copied().chain([long.as_str(), "999.1.1.1:10911", "1.2.3:10911"]) {
        let (r, took) = timed(|| Connection::connect(bad, &ConnectionConfig::default()));
        assert!(matches!(r, Err(Error::InvalidAddress { ref input, .. }) if input == bad), "{bad:.40}: {r:?}");
        assert!(took < Duration::from_millis(500), "{bad:.40}: {took:?}");
    }
    // A port nobody listens on: a connect error, not a hang.
    let free = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let r = Connection::connect(&free.to_string(), &ConnectionConfig::default());
    assert!(matches!(r, Err(Error::Connect { .. })), "{r:?}");
    check.end(32);
}

#[test]
fn dropping_a_connection_joins_its_reader_thread_quickly() {
    let check = begin();
    let addr = raw_peer(Vec::new(), true);
    let conn = Connection::connect(&addr, &ConnectionConfig::default()).unwrap();
    let (_, took) = timed(|| drop(conn));
    assert!(took < Duration::from_secs(2), "{took:?}");
    check.end(32);
}

// ---------------------------------------------------------------- timeouts (item 8)

/// The first `stalls` requests get half a frame and then silence on their
/// connection; later ones get `answer`.
fn stalling_peer(stalls: usize, answer: impl Fn(&RemotingCommand) -> Reply + Send + Sync + 'static) -> FakePeer {
    let seen = AtomicUsize::new(0);
    FakePeer::start(move |req| {
        if seen.fetch_add(1, Ordering::SeqCst) < stalls {
            let whole = RemotingCommand::response_to(req, ResponseCode::Success, None).encode();
            Reply::RawThenStall(whole[..whole.len() / 2].to_vec())
        } else {
            answer(req)
        }
    })
}

fn max_offset_answer(req: &RemotingCommand) -> Reply {
    let mut fields = BTreeMap::new();
    fields.insert("offset".to_string(), "42".to_string());
    Reply::Respond(RemotingCommand::response_to(req, ResponseCode::Success, None).with_ext_fields(fields))
}

#[test]
fn silent_peer_times_out_naming_the_operation_and_keeps_the_connection_until_the_third_timeout() {
    let check = begin();
    let peer = FakePeer::start(|_| Reply::Silence);
    let conn = Connection::connect(&peer.addr(), &ConnectionConfig::default()).unwrap();
    let timeout = Duration::from_secs(2);
    for n in 1..=MAX_CONSECUTIVE_TIMEOUTS {
        let (r, took) = timed(|| conn.invoke(max_offset_request(), timeout));
        match r {
            Err(e @ Error::Timeout { .. }) => {
                assert!(e.is_timeout() && e.is_retryable());
                assert!(e.to_string().contains("get max offset"), "{e}");
                assert!(e.to_string().contains("2s"), "{e}");
            }
            other => panic!("{other:?}"),
        }
        within(took, timeout);
        let last = n == MAX_CONSECUTIVE_TIMEOUTS;
        assert_eq!(conn.is_closed(), last, "after timeout {n}");
    }
    let r = conn.invoke(max_offset_request(), timeout);
    assert!(
        matches!(r, Err(Error::ConnectionClosed { ref reason, .. }) if reason.contains("3 request timeouts")),
        "{r:?}"
    );
    drop(conn);
    drop(peer);
    check.end(32);
}

#[test]
fn a_timeout_mid_frame_closes_the_connection_and_the_next_call_reconnects() {
    let check = begin();
    let peer = stalling_peer(1, max_offset_answer);
    let timeout = Duration::from_secs(2);
    let config = ClientConfig::builder().request_timeout(timeout).build().unwrap();
    let queue = MessageQueue::new("T", "broker-a", 0);

    // A lone client: the timeout closes its connection at once.
    let client = BrokerClient::connect(&peer.addr(), &config).unwrap();
    let (r, took) = timed(|| client.max_offset(&queue));
    assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
    within(took, timeout);
    assert!(!client.is_connected(), "half a frame read: the stream is out of step and must be closed");
    drop(client);

    // Through a pool: the broken connection is discarded, the next checkout
    // opens a fresh one, and the peer answers properly there.
    let pool = Arc::new(BrokerConnectionPool::new(&peer.addr(), &config, 1).unwrap());
    let (r, took) = timed(|| pool.get(timeout).unwrap().call(|c| c.max_offset(&queue)));
    assert_eq!(r.unwrap(), 42);
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(peer.connections(), 2);
    pool.close();
    drop(pool);
    drop(peer);
    check.end(32);
}

#[test]
fn a_pooled_connection_that_stalls_mid_frame_is_replaced() {
    let check = begin();
    let peer = stalling_peer(1, max_offset_answer);
    let timeout = Duration::from_secs(2);
    let config = ClientConfig::builder().request_timeout(timeout).build().unwrap();
    let queue = MessageQueue::new("T", "broker-a", 0);
    let pool = Arc::new(BrokerConnectionPool::new(&peer.addr(), &config, 1).unwrap());
    let (r, took) = timed(|| pool.get(timeout).unwrap().call(|c| c.max_offset(&queue)));
    assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
    within(took, timeout);
    let (r, took) = timed(|| pool.get(timeout).unwrap().call(|c| c.max_offset(&queue)));
    assert_eq!(r.unwrap(), 42);
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(peer.connections(), 2, "the stalled connection was discarded, a new one opened");
    pool.close();
    drop(pool);
    drop(peer);
    check.end(32);
}

fn small_route_json(addr: &str, queues: i64) -> String {
    format!(
        r#"{{"brokerDatas":[{{"brokerAddrs":{{0:"{addr}"}},"brokerName":"broker-a","cluster":"C"}}],"queueDatas":[{{"brokerName":"broker-a","perm":6,"readQueueNums":{queues},"topicSysFlag":0,"writeQueueNums":{queues}}}]}}"#
    )
}

#[test]
fn a_name_server_stalling_mid_frame_is_left_and_the_next_call_succeeds() {
    let check = begin();
    let timeout = Duration::from_secs(2);
    let route = small_route_json("127.0.0.1:10911", 4);
    // One address: the next call reconnects to it.
    let peer = stalling_peer(1, move |req| Reply::ok_body(req, route.clone()));
    let ns = NameServerClient::with_config(&peer.addr(), ConnectionConfig::default(), timeout).unwrap();
    let (r, took) = timed(|| ns.topic_route("T"));
    assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
    within(took, timeout);
    let (r, took) = timed(|| ns.topic_route("T"));
    assert_eq!(r.unwrap().queue_datas[0].write_queue_nums, 4);
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(peer.connections(), 2);
    drop(ns);

    // Two addresses, the first stalling for good: the next call goes to the second.
    let route = small_route_json("127.0.0.1:10911", 4);
    let stuck = stalling_peer(usize::MAX, |_| Reply::Silence);
    let good = FakePeer::start(move |req| Reply::ok_body(req, route.clone()));
    let list = format!("{};{}", stuck.addr(), good.addr());
    let ns = NameServerClient::with_config(&list, ConnectionConfig::default(), timeout).unwrap();
    let (r, took) = timed(|| ns.topic_route("T"));
    assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
    within(took, timeout);
    let (r, took) = timed(|| ns.topic_route("T"));
    assert_eq!(r.unwrap().queue_datas[0].write_queue_nums, 4);
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(ns.active_address(), good.addr());
    drop(ns);
    drop((peer, stuck, good));
    check.end(32);
}

// ---------------------------------------------------------------- routes (item 1)

fn route_peer(queues: i64) -> FakePeer {
    FakePeer::start(move |req| match req.code {
        request::GET_ROUTEINFO_BY_TOPIC => Reply::ok_body(req, small_route_json("127.0.0.1:1", queues)),
        _ => Reply::Silence,
    })
}

fn producer_for(namesrv: &str) -> Producer {
    let config = ProducerConfig::builder()
        .group("hostile_route_pg")
        .namesrv_addr(namesrv)
        .send_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let p = Producer::new(config).unwrap();
    p.start().unwrap();
    p
}

#[test]
fn routes_announcing_absurd_queue_counts_are_refused_before_allocating() {
    let check = begin();
    for queues in [1_000_000i64, i64::from(i32::MAX), -1] {
        let peer = route_peer(queues);
        let ns = NameServerClient::new(&peer.addr()).unwrap();
        let (r, took) = timed(|| ns.topic_route("T"));
        match r {
            Err(Error::Protocol { source: ProtocolError::RouteLimit { topic, broker, value, limit, .. }, .. }) => {
                assert_eq!((topic.as_str(), broker.as_str(), value), ("T", "broker-a", queues));
                assert_eq!(limit, if queues < 0 { 0 } else { 1024 });
            }
            other => panic!("{queues}: {other:?}"),
        }
        assert!(took < Duration::from_secs(2), "{took:?}");

        let producer = producer_for(&peer.addr());
        let (r, took) = timed(|| producer.send(&Message::new("T", b"x".to_vec())));
        let e = r.expect_err("no send on an absurd route");
        assert!(
            matches!(e.last_cause(), Error::Protocol { source: ProtocolError::RouteLimit { value, .. }, .. } if *value == queues),
            "{queues}: {e:?}"
        );
        within(took, Duration::from_secs(2));
        producer.shutdown();
    }
    // A limit raised on purpose lets a big route through.
    let peer = route_peer(2000);
    let ns = NameServerClient::new(&peer.addr())
        .unwrap()
        .with_route_limits(RouteLimits::default().with_max_queues_per_broker(2000));
    assert_eq!(ns.topic_route("T").unwrap().queue_datas[0].write_queue_nums, 2000);
    drop((ns, peer));
    check.end(64);
}

#[test]
fn routes_with_absurd_broker_addresses_fail_sends_with_a_typed_error() {
    let check = begin();
    let long = format!("{}:10911", "h".repeat(10_000));
    for addr in ["999.1.1.1:0", "", long.as_str(), "999.1.1.1:10911"] {
        let json = small_route_json(addr, 4);
        let peer = FakePeer::start(move |req| Reply::ok_body(req, json.clone()));
        let producer = producer_for(&peer.addr());
        let (r, took) = timed(|| producer.send(&Message::new("T", b"x".to_vec())));
        let e = r.expect_err("no broker to send to");
        assert!(matches!(e.last_cause(), Error::InvalidAddress { .. }), "{addr:.30}: {e:?}");
        within(took, Duration::from_secs(2));
        producer.shutdown();
    }
    check.end(64);
}

// ---------------------------------------------------------------- decompression bombs (item 3)

#[cfg(feature = "compression")]
mod bombs {
    use super::*;
    use rocketmq_blocking::protocol::compress::deflate_zlib;
    use rocketmq_blocking::protocol::message::{encode_stored_message, sys_flag, MAX_INFLATED_PER_RESPONSE};
    use rocketmq_blocking::{MessageExt, PullRequest};

    #[test]
    fn a_pull_response_inflating_to_512_mib_fails_with_the_response_limit() {
        // 64 MiB of zeros deflate to about 64 KiB; eight such bodies make a
        // frame of about half a megabyte that would inflate to 512 MiB.
        let mut check = begin();
        let bomb = deflate_zlib(&vec![0u8; 64 << 20], 10).expect("compression feature");
        let stored = |i: i64| {
            encode_stored_message(&MessageExt {
                topic: "T".into(),
                body: bomb.clone(),
                flag: 0,
                properties: BTreeMap::new(),
                store_size: 0,
                body_crc: 0,
                queue_id: 0,
                queue_offset: i,
                commit_log_offset: i,
                sys_flag: sys_flag::COMPRESSED,
                born_timestamp: 0,
                born_host: "127.0.0.1:1".parse().unwrap(),
                store_timestamp: 0,
                store_host: "127.0.0.1:2".parse().unwrap(),
                reconsume_times: 0,
                prepared_transaction_offset: 0,
                msg_id: String::new(),
                offset_msg_id: String::new(),
            })
        };
        let body: Vec<u8> = (0..8).flat_map(stored).collect();
        assert!(body.len() < 600_000, "{}", body.len());
        check.rebase();
        let peer = FakePeer::start(move |req| {
            let mut fields = BTreeMap::new();
            for (k, v) in
                [("nextBeginOffset", "8"), ("minOffset", "0"), ("maxOffset", "8"), ("suggestWhichBrokerId", "0")]
            {
                fields.insert(k.to_string(), v.to_string());
            }
            Reply::Respond(
                RemotingCommand::response_to(req, ResponseCode::Success, None)
                    .with_ext_fields(fields)
                    .with_body(body.clone()),
            )
        });
        let client = BrokerClient::connect(&peer.addr(), &ClientConfig::default()).unwrap();
        let req = PullRequest::new("hostile_bomb_cg", MessageQueue::new("T", "broker-a", 0), 0);
        let (r, took) = timed(|| client.pull(&req));
        match r {
            Err(Error::Protocol { source: ProtocolError::InflateLimit { limit, scope: "response" }, .. }) => {
                assert_eq!(limit, MAX_INFLATED_PER_RESPONSE)
            }
            other => panic!("{:?}", other.map(|p| p.messages.len())),
        }
        // Within the request timeout (ClientConfig default, 30 s); the work itself is about a second of CPU.
        assert!(took < Duration::from_secs(30), "{took:?}");
        drop(client);
        drop(peer);
        // At most the 64 MiB limit and the doubling of its buffer; far below 512 MiB.
        check.end(160);
    }
}

// ---------------------------------------------------------------- TLS

/// TLS peers (`tls` feature): a server that stalls mid-handshake, and one
/// that completes the handshake and then sends bytes that are not TLS.
/// Their certificate (tests/data/tls) is for 127.0.0.1 only.
#[cfg(feature = "tls")]
mod tls_peers {
    use super::*;
    use rocketmq_blocking::tls::TlsConfig;
    use rocketmq_blocking::TlsErrorKind;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/tls/");

    fn server_session() -> rustls::ServerConnection {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain: Vec<_> =
            CertificateDer::pem_file_iter(format!("{DATA}server.pem")).unwrap().map(|c| c.unwrap()).collect();
        let key = PrivateKeyDer::from_pem_file(format!("{DATA}server.key")).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        rustls::ServerConnection::new(Arc::new(config)).unwrap()
    }

    fn client_config(connect_timeout: Duration) -> ConnectionConfig {
        let tls = TlsConfig::builder().ca_file(format!("{DATA}ca.pem")).build().unwrap();
        ConnectionConfig { tls: Some(tls), connect_timeout, ..ConnectionConfig::default() }
    }

    /// Accepts one connection and hands the socket and a server session to
    /// `play` on a thread of its own; returns the address.
    fn tls_peer(play: impl FnOnce(std::net::TcpStream, rustls::ServerConnection) + Send + 'static) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            play(s, server_session());
        });
        addr
    }

    #[test]
    fn a_tls_peer_stalling_mid_handshake_fails_the_connect_within_its_timeout() {
        let check = begin();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let addr = tls_peer(move |mut s, mut server| {
            // Read the ClientHello, send the first 20 bytes of the answer, stall.
            server.read_tls(&mut s).unwrap();
            server.process_new_packets().unwrap();
            let mut flight = Vec::new();
            server.write_tls(&mut flight).unwrap();
            s.write_all(&flight[..20]).unwrap();
            let _ = done_rx.recv_timeout(Duration::from_secs(30));
        });
        let timeout = Duration::from_secs(1);
        let (r, took) = timed(|| Connection::connect(&addr, &client_config(timeout)));
        let err = r.expect_err("a stalled handshake must fail");
        assert!(matches!(&err, Error::Tls { kind: TlsErrorKind::Handshake, .. }), "{err:?}");
        eprintln!("{err}");
        within(took, timeout);
        drop(done_tx);
        check.end(32);
    }

    #[test]
    fn garbage_after_the_tls_handshake_fails_waiters_at_once_with_a_tls_error() {
        let check = begin();
        let addr = tls_peer(move |mut s, mut server| {
            while server.is_handshaking() {
                server.complete_io(&mut s).unwrap();
            }
            // The first request arrives (it may have come in one read with
            // the client's Finished, so look in the session first); the
            // answer is a whole record of garbage (application data that no
            // key decrypts), so the client fails at once.
            let mut buf = [0u8; 4096];
            while !matches!(server.reader().read(&mut buf), Ok(n) if n > 0) {
                if server.complete_io(&mut s).is_err() {
                    return;
                }
            }
            let mut garbage = vec![0x17, 0x03, 0x03, 0x00, 0x40];
            garbage.extend_from_slice(&[0x5a; 0x40]);
            s.write_all(&garbage).unwrap();
            let _ = s.read(&mut buf);
        });
        let (r, took, conn) = call_raw(&addr, &client_config(Duration::from_secs(3)));
        assert!(matches!(&r, Err(Error::Tls { kind: TlsErrorKind::Corrupt, .. })), "{r:?}");
        assert!(took < Duration::from_secs(2), "woke after {took:?}");
        assert!(conn.is_closed());
        drop(conn);
        check.end(32);
    }

    #[test]
    fn a_plain_peer_is_a_handshake_error_not_a_hang() {
        let check = begin();
        // A plain RocketMQ server closes a connection whose first bytes are
        // not a frame it accepts: here it answers with a plain frame.
        let addr = raw_peer(b"\x00\x00\x00\x08\x00\x00\x00\x04{}{}".to_vec(), false);
        let (r, took) = timed(|| Connection::connect(&addr, &client_config(Duration::from_secs(3))));
        let err = r.expect_err("not TLS");
        assert!(matches!(&err, Error::Tls { kind: TlsErrorKind::Handshake, .. }), "{err:?}");
        assert!(took < Duration::from_secs(2), "took {took:?}");
        check.end(32);
    }
}
