//! A small blocking client for Apache RocketMQ.
//!
//! `rocketmq-blocking` speaks the broker's native TCP "remoting" protocol
//! with `std::net::TcpStream`, `std::thread`, `Mutex` and `Condvar`: no
//! async runtime and four dependencies (`byteorder`, `serde`,
//! `serde_json`, `thiserror`, plus `miniz_oxide` behind the default
//! `compression` feature for zlib bodies).
//!
//! # Getting started
//! From an empty project to a message produced and consumed.
//!
//! **1. Add the crate** to `Cargo.toml`:
//!
//! ```toml
//! [dependencies]
//! rocketmq-blocking = "0.1"
//! ```
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `compression` | on | zlib bodies (`miniz_oxide`): bodies over 4 KiB are compressed when sent, compressed bodies from other clients are inflated; without it such bodies are refused with a typed error |
//!
//! `default-features = false` leaves exactly the four runtime dependencies.
//!
//! **2. Have a name server and brokers.** Any Apache RocketMQ 4.x or 5.x
//! cluster will do; this repository's `tests/broker/rocketmq.sh start`
//! starts one on 127.0.0.1 and prints `ROCKETMQ_NAMESRV_ADDR=...`. The
//! configs read that variable (else `NAMESRV_ADDR`) through `env_overrides`.
//!
//! **3. Create a topic** (brokers with `autoCreateTopicEnable` create one on
//! first send, but production clusters usually turn that off):
//!
//! ```no_run
//! use rocketmq_blocking::{NameServerClient, TopicConfig};
//!
//! let ns = NameServerClient::new("127.0.0.1:9876")?;
//! let brokers = ns.create_topic("DefaultCluster", &TopicConfig::new("Orders").queues(4))?;
//! println!("created on {brokers:?}");
//! # Ok::<(), rocketmq_blocking::Error>(())
//! ```
//!
//! **4. Produce.** A [`Producer`] finds the topic's route, picks a queue,
//! retries on another broker and returns where the broker stored the
//! message. Build it once and share it (`&Producer` is `Send + Sync`):
//!
//! ```no_run
//! use rocketmq_blocking::producer::{Producer, ProducerConfig};
//! use rocketmq_blocking::Message;
//!
//! let config = ProducerConfig::builder()
//!     .group("orders-producer")
//!     .namesrv_addr("127.0.0.1:9876")
//!     .env_overrides()? // ROCKETMQ_NAMESRV_ADDR, ROCKETMQ_PRODUCER_* win
//!     .build()?;
//! let producer = Producer::new(config)?;
//! producer.start()?;
//! let msg = Message::new("Orders", "order #1").with_tags("created").with_keys(["order-1"]);
//! let sent = producer.send(&msg)?;
//! println!("{} stored in {:?} at offset {}", sent.msg_id, sent.queue, sent.queue_offset);
//! producer.shutdown(); // also done by Drop
//! # Ok::<(), rocketmq_blocking::Error>(())
//! ```
//!
//! **5. Consume**, either pushed to a listener on worker threads, with the
//! group's offsets kept at the broker ...
//!
//! ```no_run
//! use rocketmq_blocking::consumer::{ConsumeConcurrentlyStatus, ConsumeFromWhere, ConsumerConfig, PushConsumer};
//! use rocketmq_blocking::MessageExt;
//!
//! let config = ConsumerConfig::builder()
//!     .group("billing")
//!     .namesrv_addr("127.0.0.1:9876")
//!     .consume_from_where(ConsumeFromWhere::FirstOffset) // a new group starts at the beginning
//!     .build()?;
//! let consumer = PushConsumer::new(config)?;
//! consumer.subscribe("Orders", "created || paid")?;
//! consumer.register_concurrently(|msgs: &[MessageExt], _ctx: &mut _| {
//!     for m in msgs {
//!         println!("{} {:?}", m.msg_id, String::from_utf8_lossy(&m.body));
//!     }
//!     ConsumeConcurrentlyStatus::ConsumeSuccess // or ReconsumeLater: delivered again later
//! })?;
//! consumer.start()?;
//! std::thread::sleep(std::time::Duration::from_secs(10));
//! consumer.shutdown(); // commits offsets, joins its threads
//! # Ok::<(), rocketmq_blocking::Error>(())
//! ```
//!
//! ... or polled by your own loop:
//!
//! ```no_run
//! use std::time::Duration;
//! use rocketmq_blocking::consumer::{ConsumerConfig, LitePullConsumer};
//!
//! let config = ConsumerConfig::builder().group("audit").namesrv_addr("127.0.0.1:9876").build()?;
//! let consumer = LitePullConsumer::new(config)?;
//! consumer.subscribe("Orders", "*")?;
//! consumer.start()?;
//! for m in consumer.poll(Duration::from_secs(1))? {
//!     println!("offset {} {:?}", m.queue_offset, String::from_utf8_lossy(&m.body));
//! }
//! consumer.shutdown();
//! # Ok::<(), rocketmq_blocking::Error>(())
//! ```
//!
//! **6. Handle errors.** Every call returns [`Result`] with the one
//! [`Error`] enum: match the variants you care about and ask the helpers for
//! the rest.
//!
//! ```no_run
//! # use rocketmq_blocking::{producer::Producer, Error, Message};
//! # fn send(producer: &Producer) {
//! match producer.send(&Message::new("Orders", "order #2")) {
//!     Ok(sent) => println!("stored at offset {}", sent.queue_offset),
//!     Err(Error::TopicNotFound { topic, .. }) => eprintln!("create {topic} first"),
//!     Err(e) if e.is_retryable() => eprintln!("try again later: {e}"),
//!     Err(e) => eprintln!("giving up: {e} (broker code {:?})", e.response_code()),
//! }
//! # }
//! ```
//!
//! **Next**: the runnable programs in `examples/` (quickstart, producer,
//! consumer, lite pull, orderly, transaction, request-reply, broker manager) and the `rmq`
//! command line, `cargo run --example rmq -- --help`, which sends,
//! consumes, shows routes, clusters and per-queue offsets and lag, creates
//! topics and benchmarks from a shell.
//!
//! # Layers
//! Each layer uses only the ones below it.
//!
//! | module | what it is |
//! |---|---|
//! | [`producer`] | [`Producer`], [`TransactionProducer`]: routing, health, retries, batches, transactions |
//! | [`consumer`] | [`PushConsumer`], [`LitePullConsumer`]: rebalancing, offset stores, retries; [`consumer::PopConsumer`]: 5.x pop consumption |
//! | [`broker`] | [`BrokerClient`]: one broker connection, one typed method per operation; [`broker::BrokerManager`]: pools, health checks, statistics |
//! | [`namesrv`] | [`NameServerClient`]: topic routes, cluster info, topic creation |
//! | [`net`] | [`net::Connection`]: one socket, one reader thread, many requests in flight |
//! | [`protocol`] | pure codec: frames, codes, headers, messages, routes; no I/O |
//! | [`error`] | [`Error`] and [`ProtocolError`] |
//! | `acl` | `Credentials` and request signatures for brokers with access control (`acl` feature) |
//!
//! # Threads
//! Every thread the crate starts is listed here, with how it stops.
//!
//! | thread name | started by | stops when |
//! |---|---|---|
//! | `rocketmq-conn-<n>` | [`net::Connection::connect`], one per connection | the connection is closed or dropped (the socket is shut down, the thread sees end of stream and is joined by `Drop`), or the peer closes it |
//! | `rocketmq-rebalance-<n>` | [`consumer::PushConsumer::start`] / [`consumer::LitePullConsumer::start`] / [`consumer::PopConsumer::start`], one per consumer: rebalance, heartbeat, offset persist, orderly lock renewal, readying new queues | `shutdown` (or `Drop`) signals its `Condvar` and closes the connections it may be waiting on; joined |
//! | `rocketmq-pull-<n>` | a consumer's `start`, [`consumer::ConsumerConfig::pull_threads`] of them (default 2), whatever the number of queues: send every queue's pulls (pop consumer: every assignment's pops) without waiting, decode the answers | `shutdown` stops their schedule and wakes them; joined |
//! | `rocketmq-consume-<n>` | [`consumer::PushConsumer::start`] / [`consumer::PopConsumer::start`], [`consumer::ConsumerConfig::consume_threads`] of them (default 20): call the listener (orderly: one queue at a time per thread; pop: then ack, retry or dead-letter its messages) | `shutdown` stops the work queue; joined (a listener call still running after the await-termination bound is left to finish) |
//! | `rocketmq-producer-<n>` | [`Producer::start`], one per producer: route refresh and heartbeats | [`Producer::shutdown`] or `Drop` sets its stop flag, wakes its `Condvar` and closes the name server and broker connections (a request it waits on fails at once); joined |
//! | `rocketmq-async-<n>` | [`Producer::start`], `async_threads` of them (default 4): run `send_async` | `shutdown` closes their queue (waiting sends get `NotRunning`); joined |
//! | `rocketmq-txcheck-<n>` | [`TransactionProducer::start`]: answers the broker's transaction check-backs | `shutdown` drops its queue and abandons the checks still queued; it sees that within 200 ms; joined within 1 s |
//! | `rocketmq-health-<n>` | [`broker::BrokerManager::start`], one per manager | [`broker::BrokerManager::shutdown`] or `Drop` of the manager wakes it (a `Condvar`, within a second even mid-interval) and joins it |
//!
//! No thread count depends on what a peer announces: a consumer's threads
//! are fixed by its config, and the connections (one reader thread each)
//! are one per broker address in routes bounded by the route limits below.
//!
//! # Limits
//! Every count, length and queue that comes from the network is bounded:
//!
//! | what | limit | where |
//! |---|---|---|
//! | one frame | 16 MiB ([`protocol::DEFAULT_MAX_FRAME_SIZE`]) | [`net::ConnectionConfig::max_frame_size`] |
//! | queues one broker announces for a topic | 1,024 read and write ([`protocol::route::DEFAULT_MAX_QUEUES_PER_BROKER`]) | [`protocol::route::RouteLimits`], checked by [`NameServerClient::topic_route`] before anything is built; configurable on the name server client and both configs |
//! | brokers in one route | 128 ([`protocol::route::DEFAULT_MAX_BROKERS_PER_ROUTE`]) | same |
//! | inflated (zlib) bytes | 64 MiB per message ([`protocol::message::MAX_INFLATED_BODY`]) and per pull response ([`protocol::message::MAX_INFLATED_PER_RESPONSE`]), inflated incrementally | [`Error::Protocol`] with [`ProtocolError::InflateLimit`] |
//! | transaction check-backs waiting for the listener | 2,000 ([`producer::DEFAULT_CHECK_QUEUE`]); more are dropped and counted, the broker asks again | [`ProducerConfig`]`::check_queue` |
//! | bytes of the half messages of those check-backs (received + inflated) | 64 MiB ([`producer::DEFAULT_CHECK_QUEUE_BYTES`]); more are dropped and counted, the broker asks again | [`ProducerConfig`]`::check_queue_bytes` |
//! | requests waiting for their replies (request-reply) | 10,000 ([`producer::DEFAULT_MAX_PENDING_REQUESTS`]); one more is refused with [`Error::TooManyRequests`] before it is sent; an entry leaves when its caller returns, at its deadline at the latest (no thread); a pushed reply that is late, unknown or malformed is dropped and counted ([`Producer::dropped_replies`]) | [`ProducerConfig`]`::max_pending_requests` |
//! | async sends waiting for a thread | 10,000 ([`producer::DEFAULT_ASYNC_QUEUE`]); `send_async` then blocks | [`ProducerConfig`]`::async_queue` |
//! | consumer pull threads | 2 ([`consumer::DEFAULT_PULL_THREADS`]), whatever the number of queues | [`ConsumerConfig::pull_threads`] |
//! | messages pulled and not yet consumed, per queue | 1,000 messages or 100 MiB: pulling pauses | [`ConsumerConfig::pull_threshold_for_queue`], [`ConsumerConfig::pull_threshold_size_for_queue`] |
//! | pop consumer: popped messages waiting for the listener or their ack, per assignment (a queue, or a whole broker) | 96 ([`consumer::DEFAULT_POP_THRESHOLD`]) before popping it pauses, + one pop answer (32 messages, [`consumer::DEFAULT_POP_BATCH_SIZE`]) | [`consumer::PopOptions::threshold`], [`consumer::PopOptions::batch_size`] |
//! | pop consumer: assignments in one QUERY_ASSIGNMENT answer | 131,072 ([`protocol::pop::MAX_ASSIGNMENTS`]: 128 brokers × 1,024 queues); more is a protocol error | [`BrokerClient::query_assignment`] |
//! | pulls per queue | one scheduled or in flight; after a failure, OFFSET_MOVED or an immediate "nothing" the next waits 3 s | [`ConsumerConfig::pull_error_delay`] |
//! | offset resets from operations tools waiting | 16; more are dropped | consumer background thread |
//! | timeouts in a row on one connection | 3 ([`net::MAX_CONSECUTIVE_TIMEOUTS`]), or one timeout with a frame half read: the connection is closed and reopened on next use | [`net::Connection`] |
//!
//! # Deadlines
//! | call | returns within |
//! |---|---|
//! | [`net::Connection::invoke`], every [`BrokerClient`] request | its timeout (the client's request timeout); TCP connect: 3 s ([`net::DEFAULT_CONNECT_TIMEOUT`]) |
//! | [`NameServerClient`] requests | its timeout, across every address together |
//! | [`Producer::send`] and every other send | the send timeout (3 s): route lookup, connect, heartbeat and retries included |
//! | [`Producer::request`] (also with a selector, to a queue) | its timeout: route lookup, registering with the topic's brokers, the send with its retries and the wait for the reply; [`Error::RequestTimeout`] when no reply came |
//! | [`Producer::shutdown`] | 500 ms for the unregisters ([`producer::SHUTDOWN_UNREGISTER_WAIT`], all brokers at once) + up to 1 s to join |
//! | [`TransactionProducer::shutdown`] | the producer's, + 1 s for the check-back thread (queued checks abandoned) |
//! | consumer `start` | one request timeout (heartbeats to every broker at once) |
//! | [`consumer::PopConsumer::start`] | one request timeout for the heartbeats, then per subscribed topic one request timeout per broker asked for the assignment (the next broker of the topic is asked only when one fails) |
//! | consumer `shutdown` | the await-termination bound for a running listener call + one request timeout (offsets, unlocks, unregisters to every broker at once) + 1 s to join |
//! | [`broker::BrokerManager::shutdown`] | 1 s |
//!
//! # Example
//! ```no_run
//! use rocketmq_blocking::NameServerClient;
//!
//! let ns = NameServerClient::new("127.0.0.1:9876")?;
//! let info = ns.cluster_info()?;
//! println!("{:?}", info.cluster_addr_table);
//! # Ok::<(), rocketmq_blocking::Error>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "acl")]
pub mod acl;
#[macro_use]
mod logging;

pub mod broker;
pub mod consumer;
mod env;
pub mod error;
mod namespace;
pub mod namesrv;
pub mod net;
pub mod producer;
pub mod protocol;
mod threads;
pub mod validate;

pub use broker::{BrokerClient, ClientConfig, PullRequest, PullResult, PullStatus, SendResult, SendStatus};
pub use consumer::{ConsumerConfig, LitePullConsumer, MessageSelector, PushConsumer};
pub use error::{Error, ProtocolError, Result};
pub use namesrv::{NameServerClient, TopicConfig};
pub use producer::{Producer, ProducerConfig, TransactionProducer};
pub use protocol::{Message, MessageExt, MessageQueue};
