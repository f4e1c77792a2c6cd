//! A small blocking client for Apache RocketMQ.
//!
//! `rocketmq-blocking` speaks the broker's native TCP "remoting" protocol
//! with `std::net::TcpStream`, `std::thread`, `Mutex` and `Condvar`: no
//! async runtime and four dependencies (`byteorder`, `serde`,
//! `serde_json`, `thiserror`, plus `miniz_oxide` behind the default
//! `compression` feature for zlib bodies).
//!
//! # Layers
//! Each layer uses only the ones below it.
//!
//! | module | what it is |
//! |---|---|
//! | [`producer`] | [`Producer`], [`TransactionProducer`]: routing, health, retries, batches, transactions |
//! | [`consumer`] | [`PushConsumer`], [`LitePullConsumer`]: rebalancing, offset stores, retries |
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
//! | `rocketmq-rebalance-<n>` | [`consumer::PushConsumer::start`] / [`consumer::LitePullConsumer::start`], one per consumer: rebalance, heartbeat, offset persist, orderly lock renewal | `shutdown` (or `Drop`) signals its `Condvar`; joined |
//! | `rocketmq-pull-<n>` | a consumer, one per assigned queue (long-polling pull loop) | the queue is taken away by a rebalance (ends when its parked pull returns; joined by the rebalance thread) or `shutdown` closes the connections (ends at once; joined) |
//! | `rocketmq-consume-<n>` | [`consumer::PushConsumer::start`] with a concurrent listener, [`consumer::ConsumerConfig::consume_threads`] of them (default 20) | `shutdown` stops the work queue; joined (a listener call still running after the await-termination bound is left to finish) |
//! | `rocketmq-producer-<n>` | [`Producer::start`], one per producer: route refresh and heartbeats | [`Producer::shutdown`] or `Drop` sets its stop flag and wakes its `Condvar`; joined |
//! | `rocketmq-async-<n>` | [`Producer::start`], `async_threads` of them (default 4): run `send_async` | `shutdown` closes their queue (waiting sends get `NotRunning`); joined |
//! | `rocketmq-txcheck-<n>` | [`TransactionProducer::start`]: answers the broker's transaction check-backs | `shutdown` drops its queue; it sees that within 200 ms; joined |
//! | `rocketmq-health-<n>` | [`broker::BrokerManager::start`], one per manager | [`broker::BrokerManager::shutdown`] or `Drop` of the manager wakes it (a `Condvar`, within a second even mid-interval) and joins it |
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
