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
//! | [`broker`] | [`BrokerClient`]: one broker connection, one typed method per operation; [`broker::BrokerManager`]: pools, health checks, statistics |
//! | [`namesrv`] | [`NameServerClient`]: topic routes, cluster info, topic creation |
//! | [`net`] | [`net::Connection`]: one socket, one reader thread, many requests in flight |
//! | [`protocol`] | pure codec: frames, codes, headers, messages, routes; no I/O |
//! | [`error`] | [`Error`] and [`ProtocolError`] |
//!
//! # Threads
//! Every thread the crate starts is listed here, with how it stops.
//!
//! | thread name | started by | stops when |
//! |---|---|---|
//! | `rocketmq-conn-<n>` | [`net::Connection::connect`], one per connection | the connection is closed or dropped (the socket is shut down, the thread sees end of stream and is joined by `Drop`), or the peer closes it |
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

pub mod broker;
pub mod error;
pub mod namesrv;
pub mod net;
pub mod protocol;
pub mod validate;

pub use broker::{BrokerClient, ClientConfig, PullRequest, PullResult, PullStatus, SendResult, SendStatus};
pub use error::{Error, ProtocolError, Result};
pub use namesrv::{NameServerClient, TopicConfig};
pub use protocol::{Message, MessageExt, MessageQueue};
