//! Consumers: [`LitePullConsumer`] (you poll) and [`PushConsumer`] (a
//! listener is called), with the Java client's semantics; and
//! [`PopConsumer`] (5.x: the broker hands out messages, not queues).
//!
//! - **At-least-once.** The offset committed for a queue is the smallest
//!   offset not yet processed, so a restart or a rebalance may deliver a
//!   message again but never skips one.
//! - **Clustering** (default): the queues of a topic are divided among the
//!   consumers of a group ([`AllocateStrategy`]), again every rebalance
//!   interval and at once when a broker says the group changed. Offsets are
//!   kept by the broker. A push consumer also consumes the group's
//!   `%RETRY%<group>` topic; a message that keeps failing goes to
//!   `%DLQ%<group>` after the max reconsume times.
//! - **Broadcasting**: every consumer reads every queue; offsets are in a
//!   local file per group ([`LocalOffsetStore`]).
//!
//! # Threads
//! Per consumer, a fixed number whatever the number of queues it holds:
//! - one `rocketmq-rebalance-<n>`: rebalance, heartbeat, offset persist,
//!   orderly lock renewal, and readying new queues (their start offset and,
//!   orderly, their broker lock: the requests that may block);
//! - [`ConsumerConfig::pull_threads`] `rocketmq-pull-<n>` (default 2): they
//!   send the pull of every queue without waiting for its answer (a long
//!   poll parks at the broker, not on a thread), decode the answers the
//!   connections' reader threads queue for them, and hand messages on
//!   (`pull_service`);
//! - a push consumer's [`ConsumerConfig::consume_threads`]
//!   `rocketmq-consume-<n>` (default 20): they call the listener; orderly,
//!   one queue at a time per thread, in queue order;
//! - the connections' reader threads, one per broker address (bounded by
//!   the route limits) and one for the name server.
//!
//! # Limits
//! Each queue has at most one pull scheduled or in flight; pulling a queue
//! pauses while it holds [`ConsumerConfig::pull_threshold_for_queue`]
//! messages or [`ConsumerConfig::pull_threshold_size_for_queue`] bytes not
//! yet consumed (lite pull: not yet polled). A pull that fails waits
//! [`ConsumerConfig::pull_error_delay`] (3 s) before the next; so does one
//! answered OFFSET_MOVED, or "no message" at once without the long poll,
//! so a broken queue costs next to nothing.
//!
//! # Deadlines
//! `start` heartbeats every broker at once and waits at most one
//! [`ConsumerConfig::request_timeout`]. `shutdown` (also run by `Drop`)
//! stops new listener calls, waits up to [`ConsumerConfig::await_termination`]
//! for a running one, then persists the offsets, releases orderly locks and
//! unregisters — to every broker at once, within one request timeout in
//! all — and then closes the connections, which ends any pull parked at a
//! broker at once; every thread is then joined within a second (a thread
//! still inside a listener call or a connect is left to end on its own).
//!
//! # Layers
//! Each file uses only those on the lines above it (`mod.rs` only declares
//! and re-exports):
//! 1. `config`, `allocate`, `selector`, `listener`, `signal`, `owner`
//!    (the `QueueOwner` trait the consumers implement),
//!    `pull_service`: no other consumer file but `config` → `allocate`;
//! 2. `instance` (connections, routes, subscriptions, heartbeats, brokers'
//!    requests) → `config`, `signal`, `owner`, `pull_service`;
//! 3. `offset_store` → `instance`; `rebalance` (the background thread) →
//!    `instance`, `offset_store`, `owner`, `signal`;
//! 4. push only: `process_queue` → `config`; `work_queue` (consume pool,
//!    gate) → `process_queue`, `owner`;
//! 5. the consumers on top: `push`, `lite_pull`, `pop` (the pop consumer
//!    also uses the `work_queue` gate).

mod allocate;
mod config;
mod instance;
mod listener;
mod lite_pull;
mod offset_store;
mod owner;
mod pop;
mod process_queue;
mod pull_service;
mod push;
mod rebalance;
mod selector;
mod signal;
mod work_queue;

pub use crate::protocol::body::{ConsumeFromWhere, MessageModel, EXPRESSION_SQL92, EXPRESSION_TAG};
pub use allocate::{AllocateStrategy, DEFAULT_VIRTUAL_NODES};
pub use config::*;
pub use listener::*;
pub use lite_pull::LitePullConsumer;
pub use offset_store::{LocalOffsetStore, OFFSET_FILE_NAME};
pub use pop::{
    PopConsumer, PopOptions, DEFAULT_POP_BATCH_SIZE, DEFAULT_POP_THRESHOLD, MAX_POP_INVISIBLE_TIME,
    MIN_POP_INVISIBLE_TIME,
};
pub use push::PushConsumer;
pub use selector::MessageSelector;

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn consumers_are_send_sync() {
        assert_send_sync::<PushConsumer>();
        assert_send_sync::<LitePullConsumer>();
    }

    #[test]
    fn selector_builds_subscriptions() {
        let s = MessageSelector::from("A || B").subscription("T").unwrap();
        assert_eq!(s.tags_set, vec!["A".to_string(), "B".to_string()]);
        let q = MessageSelector::sql92("a > 1").subscription("T").unwrap();
        assert_eq!(q.expression_type, EXPRESSION_SQL92);
        assert!(MessageSelector::sql92(" ").subscription("T").is_err());
    }
}
