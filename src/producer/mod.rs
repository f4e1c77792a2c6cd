//! The producer: route cache, health-aware routing, retries and failover,
//! batches, delays, ordered, async and transactional sends.
//!
//! - [`ProducerConfig`]: Java's defaults, presets, environment overrides.
//! - [`TopicBrokerMapping`]: routes by topic with each topic's writable
//!   queues, expiring after 30 s.
//! - [`MessageRouter`]: round robin, random or message-hash routing that
//!   skips unhealthy brokers and keeps [`BrokerHealthInfo`] per broker.
//! - [`Producer`] and [`TransactionProducer`]; request-reply with
//!   [`Producer::request`] and [`create_reply_message`].
//!
//! Errors are the crate's [`Error`](crate::Error): a send whose only
//! attempt failed returns that attempt's error; one that failed on two or
//! more attempts is [`Error::SendFailed`](crate::Error::SendFailed) with
//! each attempt's error; no route is [`Error::TopicNotFound`](crate::Error::TopicNotFound);
//! no usable queue is [`Error::QueueNotAvailable`](crate::Error::QueueNotAvailable);
//! a producer not started or shut down gives [`Error::NotRunning`](crate::Error::NotRunning).

mod config;
mod health;
#[allow(clippy::module_inception)]
mod producer;
mod request;
mod route;
mod router;
mod transaction;

pub use config::*;
pub use health::{
    BrokerHealthInfo, HealthState, DEGRADED_AFTER_FAILURES, HEALTHY_AFTER_SUCCESSES, LATENCY_WINDOW,
    UNHEALTHY_AFTER_FAILURES,
};
pub use producer::{split_batch, MessageQueueSelector, Producer, SelectByHash, SHUTDOWN_UNREGISTER_WAIT};
pub use request::{create_reply_message, reply_to_client};
pub use route::{QueueTarget, TopicBrokerMapping, TopicPublishInfo};
pub use router::{hash_index, MessageRouter, RoutingReason, RoutingResult, RoutingStats, RoutingStrategy};
pub use transaction::{LocalTransactionState, TransactionListener, TransactionProducer, TransactionSendResult};
