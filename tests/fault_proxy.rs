//! Through a fault proxy (`tests/common/fault_proxy.rs`) in front of the real
//! brokers: a pool heals after resets, a stalled, dropped, truncated or
//! corrupted frame gives a typed error within the request timeout + 10 %,
//! no crate thread is left after shutdown, the producer loses no
//! acknowledged message while its connections are reset every few hundred
//! milliseconds, and a consumer whose connection is reset registers with
//! the broker again at once.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::fault_proxy::{Fault, FaultProxy};
use common::peer::{await_crate_threads_at_most, FakePeer, Reply};
use common::*;
use rocketmq_blocking::broker::{BrokerManager, BrokerManagerConfig};
use rocketmq_blocking::consumer::{ConsumeConcurrentlyStatus, ConsumeFromWhere, PushConsumer};
use rocketmq_blocking::producer::{Producer, ProducerConfig};
use rocketmq_blocking::protocol::{request, RemotingCommand, ResponseCode};
use rocketmq_blocking::{BrokerClient, ClientConfig, Error, Message, MessageQueue};

/// The tests count the process's threads: one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

fn queue_of(topic: &str) -> MessageQueue {
    MessageQueue::new(topic, "broker-a", 0)
}

/// A topic on broker-a with `n` messages in queue 0.
fn topic_with_messages(n: usize) -> (String, i64) {
    let topic = unique("fp_topic");
    create_topic_on("broker-a", &topic, 1);
    let c = client("broker-a");
    let msgs: Vec<Message> = (0..n).map(|i| Message::new(&topic, format!("m{i}").into_bytes())).collect();
    send_in_batches(&c, &queue_of(&topic), &msgs);
    // The consume queue is built asynchronously: wait until it shows all.
    let max = wait_for(Duration::from_secs(10), "messages in the consume queue", || {
        c.max_offset(&queue_of(&topic)).ok().filter(|m| *m == n as i64)
    });
    (topic, max)
}

/// A name server that knows `topic` only, and gives its real route with
/// every broker address behind a proxy of its own.
fn proxied_route(topic: &str) -> (FakePeer, Vec<FaultProxy>) {
    let mut route = namesrv().topic_route(topic).unwrap();
    let mut proxies = Vec::new();
    for bd in &mut route.broker_datas {
        for addr in bd.broker_addrs.values_mut() {
            let p = FaultProxy::start(addr);
            *addr = p.addr();
            proxies.push(p);
        }
    }
    let body = serde_json::to_vec(&route).unwrap();
    let route_topic = topic.to_string();
    let ns = FakePeer::start(move |req: &RemotingCommand| match req.code {
        request::GET_ROUTEINFO_BY_TOPIC if req.ext_fields.get("topic") == Some(&route_topic) => {
            Reply::ok_body(req, body.clone())
        }
        _ => Reply::code(req, ResponseCode::TopicNotExist),
    });
    (ns, proxies)
}

#[test]
fn the_pool_heals_after_resets() {
    let _s = serial();
    let before = crate_threads().len();
    let (topic, max) = topic_with_messages(5);
    let proxy = FaultProxy::start(&broker_addr("broker-a"));
    let config = BrokerManagerConfig::builder()
        .pool_size(2)
        .client_config(ClientConfig::builder().request_timeout(Duration::from_secs(2)).build().unwrap())
        .build()
        .unwrap();
    let m = BrokerManager::new(config);
    m.add_broker(&proxy.addr(), Some("broker-a")).unwrap();
    let q = queue_of(&topic);
    let ask = || m.connection(&proxy.addr()).and_then(|mut c| c.call(|b| b.max_offset(&q)));
    assert_eq!(ask().unwrap(), max);
    for round in 0..3 {
        proxy.reset_all();
        // A request on a connection the reset broke may fail (typed); the
        // pool drops that connection, and the next request opens a new one.
        let healed = wait_for(Duration::from_secs(10), "the pool to heal", || match ask() {
            Ok(v) => Some(v),
            Err(e) => {
                assert!(e.is_connection(), "round {round}: not a connection error: {e}");
                None
            }
        });
        assert_eq!(healed, max, "round {round}");
    }
    let stats = m.broker_stats(&proxy.addr()).unwrap();
    println!("after 3 resets: {:?}, proxy accepted {} connections", stats.connections, proxy.accepted());
    assert!(stats.connections.discarded >= 1, "broken connections are discarded: {:?}", stats.connections);
    assert!(proxy.accepted() >= 2, "new connections were opened");
    m.shutdown();
    drop(proxy);
    let left = await_crate_threads_at_most(before, Duration::from_secs(2));
    assert!(left.len() <= before, "threads left: {left:?}");
}

#[test]
fn every_broken_frame_is_a_typed_error_within_the_timeout() {
    let _s = serial();
    let before = crate_threads().len();
    let (topic, max) = topic_with_messages(3);
    let q = queue_of(&topic);
    let proxy = FaultProxy::start(&broker_addr("broker-a"));
    let timeout = Duration::from_secs(1);
    let limit = timeout + timeout / 10;
    let config = ClientConfig::builder().request_timeout(timeout).build().unwrap();
    let connect = || BrokerClient::connect(&proxy.addr(), &config).unwrap();

    // Delayed below the timeout: the answer still comes, and is right.
    let c = connect();
    proxy.inject(Fault::Delay(Duration::from_millis(300)));
    let t = Instant::now();
    assert_eq!(c.max_offset(&q).unwrap(), max);
    assert!(t.elapsed() >= Duration::from_millis(300));

    type Expect = fn(&Error) -> bool;
    let cases: [(Fault, Expect); 5] = [
        (Fault::Stall, |e| e.is_timeout()),
        (Fault::Drop, |e| e.is_timeout()),
        (Fault::Truncate, |e| matches!(e, Error::ConnectionClosed { .. })),
        (Fault::Corrupt, |e| matches!(e, Error::Protocol { .. })),
        (Fault::Reset, |e| matches!(e, Error::ConnectionClosed { .. })),
    ];
    for (fault, expected) in cases {
        let c = connect();
        proxy.inject(fault);
        let t = Instant::now();
        let r = c.max_offset(&q);
        let took = t.elapsed();
        println!("{fault:?}: {r:?} after {took:?}");
        let e = r.expect_err("a broken frame cannot give a value");
        assert!(expected(&e), "{fault:?}: unexpected error {e:?}");
        assert!(took <= limit, "{fault:?}: took {took:?} (limit {limit:?})");
        // A fresh connection through the proxy works again.
        assert_eq!(connect().max_offset(&q).unwrap(), max, "after {fault:?}");
    }
    drop(proxy);
    let left = await_crate_threads_at_most(before, Duration::from_secs(2));
    assert!(left.len() <= before, "threads left: {left:?}");
}

#[test]
fn the_producer_loses_nothing_while_connections_are_reset() {
    let _s = serial();
    let before = crate_threads().len();
    let topic = unique("fp_produce");
    create_topic(&topic, 2);
    let (ns, proxies) = proxied_route(&topic);
    let config = ProducerConfig::builder()
        .group(unique("fp_pg"))
        .namesrv_addr(ns.addr())
        .send_timeout(Duration::from_secs(3))
        .retries(2)
        .build()
        .unwrap();
    let producer = Arc::new(Producer::new(config).unwrap());
    producer.start().unwrap();
    for p in &proxies {
        p.reset_every(Some(Duration::from_millis(300)));
    }
    const THREADS: usize = 4;
    const PER_THREAD: usize = 500;
    const RUN: Duration = Duration::from_secs(4);
    let acked: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let failed = Arc::new(Mutex::new(0usize));
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (producer, acked, failed, topic) =
                (Arc::clone(&producer), Arc::clone(&acked), Arc::clone(&failed), topic.clone());
            std::thread::spawn(move || {
                // At least PER_THREAD sends, and for at least RUN (many resets).
                let started = Instant::now();
                let mut i = 0;
                while (i < PER_THREAD || started.elapsed() < RUN) && i < 20 * PER_THREAD {
                    i += 1;
                    let body = format!("fp-{t}-{i}");
                    match producer.send(&Message::new(&topic, body.clone().into_bytes())) {
                        Ok(r) if r.status == rocketmq_blocking::SendStatus::SendOk => {
                            acked.lock().unwrap().insert(body);
                        }
                        Ok(_) | Err(_) => *failed.lock().unwrap() += 1,
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    for p in &proxies {
        p.reset_every(None);
    }
    let resets: usize = proxies.iter().map(FaultProxy::resets).sum();
    let acked = acked.lock().unwrap().clone();
    let failed = *failed.lock().unwrap();
    println!("{} acknowledged, {failed} failed, {resets} connection resets", acked.len());
    assert!(resets >= 8, "the proxies reset connections during the run ({resets})");
    assert!(acked.len() >= THREADS * PER_THREAD / 2, "most sends get through: {} acked", acked.len());
    // Everything acknowledged is stored (read back from the brokers directly).
    let stored: BTreeSet<String> =
        pull_all(&topic).iter().map(|m| String::from_utf8_lossy(&m.body).to_string()).collect();
    let lost: Vec<&String> = acked.difference(&stored).collect();
    assert!(lost.is_empty(), "{} acknowledged messages lost, e.g. {:?}", lost.len(), &lost[..lost.len().min(5)]);
    producer.shutdown();
    drop(proxies);
    drop(ns);
    let left = await_crate_threads_at_most(before, Duration::from_secs(2));
    assert!(left.len() <= before, "threads left: {left:?}");
}

/// The broker drops a consumer from its group when the consumer's channel
/// closes (and tells the other members to rebalance), so a member whose
/// connection is reset must register again on a new one at once, not at its
/// next pull after the pull error delay, its next offset persist or its
/// next heartbeat: until then the others take over its queues, from their
/// committed offsets, while it goes on consuming them.
#[test]
fn a_consumer_registers_again_at_once_when_its_connection_is_reset() {
    let _s = serial();
    let topic = unique("fp_consume");
    create_topic_on("broker-a", &topic, 2);
    let (ns, proxies) = proxied_route(&topic);
    let proxy = &proxies[0];
    // Pulls retried, offsets persisted, heartbeats and rebalances sent only
    // after 20 s or more (each would open a new connection).
    let group = unique("fp_cg");
    let config = consumer_config(&group)
        .namesrv_addr(ns.addr())
        .pull_error_delay(Duration::from_secs(20))
        .heartbeat_interval(Duration::from_secs(30))
        .rebalance_interval(Duration::from_secs(60))
        .persist_interval(Duration::from_secs(60))
        .consume_from_where(ConsumeFromWhere::FirstOffset)
        .build()
        .unwrap();
    let consumer = PushConsumer::new(config).unwrap();
    consumer.subscribe(&topic, "*").unwrap();
    let received = Arc::new(Mutex::new(0usize));
    let r = Arc::clone(&received);
    consumer
        .register_concurrently(move |msgs: &[rocketmq_blocking::MessageExt], _: &mut _| {
            *r.lock().unwrap() += msgs.len();
            ConsumeConcurrentlyStatus::ConsumeSuccess
        })
        .unwrap();
    consumer.start().unwrap();
    let id = consumer.client_id().to_string();
    let at_broker = || consumer_connections("broker-a", &group).into_iter().find(|(c, _)| *c == id).map(|(_, a)| a);
    let first = wait_for(Duration::from_secs(10), "the consumer registered at broker-a", at_broker);
    // A message consumed: the queue's next pull is parked at the broker
    // (long polling) when the reset comes.
    let q = MessageQueue::new(&topic, "broker-a", 0);
    send_in_batches(&client("broker-a"), &q, &[Message::new(&topic, "one")]);
    wait_for(Duration::from_secs(20), "the message consumed", || (*received.lock().unwrap() >= 1).then_some(()));
    proxy.reset_all();
    let reset = Instant::now();
    let again = wait_for(Duration::from_secs(40), "the consumer registered on a new connection", || {
        at_broker().filter(|a| *a != first)
    });
    let took = reset.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "registered again on {again} (was {first}) {took:?} after the reset; the pull error delay is 20 s"
    );
    consumer.shutdown();
}
