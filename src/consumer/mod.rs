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

mod allocate;
mod config;
mod instance;
mod lite_pull;
mod offset_store;
mod pop;
mod pull_service;
mod push;
mod rebalance;

use std::collections::HashSet;
use std::sync::{Condvar, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

pub use crate::protocol::body::{ConsumeFromWhere, MessageModel, EXPRESSION_SQL92, EXPRESSION_TAG};
pub use allocate::{AllocateStrategy, DEFAULT_VIRTUAL_NODES};
pub use config::*;
pub use lite_pull::LitePullConsumer;
pub use offset_store::{LocalOffsetStore, OFFSET_FILE_NAME};
pub use pop::{
    PopConsumer, PopOptions, DEFAULT_POP_BATCH_SIZE, DEFAULT_POP_THRESHOLD, MAX_POP_INVISIBLE_TIME,
    MIN_POP_INVISIBLE_TIME,
};
pub use push::PushConsumer;

use crate::error::{Error, Result};
use crate::protocol::body::SubscriptionData;
use crate::protocol::message::property;
use crate::protocol::{MessageExt, MessageQueue};
use instance::lock;

/// Which messages of a topic a consumer wants.
///
/// ```
/// use rocketmq_blocking::consumer::MessageSelector;
///
/// let tags: MessageSelector = "TagA || TagB".into();
/// let sql = MessageSelector::sql92("a > 5 AND color = 'red'");
/// assert_eq!(tags, MessageSelector::tag("TagA || TagB"));
/// assert_ne!(tags, sql);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageSelector {
    /// A tag expression: `*`, `A`, `A || B`. The broker filters by the tags'
    /// hash codes and the client checks the tag itself again.
    Tag(String),
    /// An SQL92 expression over message properties (needs
    /// `enablePropertyFilter=true` on the broker).
    Sql92(String),
}

impl MessageSelector {
    /// Every message.
    pub fn all() -> Self {
        MessageSelector::Tag("*".into())
    }
    /// A tag expression.
    pub fn tag(expression: impl Into<String>) -> Self {
        MessageSelector::Tag(expression.into())
    }
    /// An SQL92 property expression.
    pub fn sql92(expression: impl Into<String>) -> Self {
        MessageSelector::Sql92(expression.into())
    }

    pub(crate) fn subscription(&self, wire_topic: &str) -> Result<SubscriptionData> {
        match self {
            MessageSelector::Tag(e) => Ok(SubscriptionData::tag(wire_topic, e)),
            MessageSelector::Sql92(e) if e.trim().is_empty() => {
                Err(Error::invalid("selector", "an SQL92 expression is empty"))
            }
            MessageSelector::Sql92(e) => Ok(SubscriptionData::sql92(wire_topic, e)),
        }
    }
}

impl From<&str> for MessageSelector {
    fn from(s: &str) -> Self {
        MessageSelector::Tag(s.to_string())
    }
}

impl From<String> for MessageSelector {
    fn from(s: String) -> Self {
        MessageSelector::Tag(s)
    }
}

/// What a concurrent listener says about a batch.
///
/// ```
/// use rocketmq_blocking::consumer::{ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus};
/// use rocketmq_blocking::MessageExt;
///
/// // A listener that retries a batch with a bad body in 10 s (delay level 3).
/// let listener = |msgs: &[MessageExt], ctx: &mut ConsumeConcurrentlyContext| {
///     if msgs.iter().all(|m| std::str::from_utf8(&m.body).is_ok()) {
///         ConsumeConcurrentlyStatus::ConsumeSuccess
///     } else {
///         ctx.set_delay_level(3);
///         ConsumeConcurrentlyStatus::ReconsumeLater
///     }
/// };
/// # let _ = listener;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConsumeConcurrentlyStatus {
    /// Done: the messages count as consumed.
    ConsumeSuccess,
    /// Failed: deliver again later (clustering: sent back to the broker
    /// with a delay; broadcasting: dropped, as in Java).
    ReconsumeLater,
}

/// What an orderly listener says about a batch.
///
/// ```
/// use std::time::Duration;
/// use rocketmq_blocking::consumer::{ConsumeOrderlyContext, ConsumeOrderlyStatus};
/// use rocketmq_blocking::MessageExt;
///
/// // Keep the queue's order: on failure, wait 2 s and get the same batch again.
/// let listener = |msgs: &[MessageExt], ctx: &mut ConsumeOrderlyContext| {
///     if msgs.iter().all(|m| !m.body.is_empty()) {
///         ConsumeOrderlyStatus::Success
///     } else {
///         ctx.set_suspend_time(Duration::from_secs(2));
///         ConsumeOrderlyStatus::SuspendCurrentQueueAMoment
///     }
/// };
/// # let _ = listener;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConsumeOrderlyStatus {
    /// Done: move on to the next messages of the queue.
    Success,
    /// Failed: pause the queue a moment and deliver the same batch again.
    SuspendCurrentQueueAMoment,
}

/// Context of a concurrent listener call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumeConcurrentlyContext {
    queue: MessageQueue,
    delay_level: i32,
}

impl ConsumeConcurrentlyContext {
    /// The queue the messages came from.
    pub fn queue(&self) -> &MessageQueue {
        &self.queue
    }
    /// Delay level for a `ReconsumeLater`: 0 (default) lets the broker
    /// choose `3 + reconsume times`; 1..=18 picks a level (1 s, 5 s, 10 s,
    /// ...); -1 sends the messages straight to the dead-letter topic.
    pub fn set_delay_level(&mut self, level: i32) {
        self.delay_level = level;
    }
    /// The delay level set.
    pub fn delay_level(&self) -> i32 {
        self.delay_level
    }
}

/// Context of an orderly listener call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumeOrderlyContext {
    queue: MessageQueue,
    suspend: Option<Duration>,
}

impl ConsumeOrderlyContext {
    /// The queue the messages came from.
    pub fn queue(&self) -> &MessageQueue {
        &self.queue
    }
    /// Pause for a `SuspendCurrentQueueAMoment` (default: the config's 1 s).
    pub fn set_suspend_time(&mut self, d: Duration) {
        self.suspend = Some(d);
    }
}

/// A listener called with messages from several queues at once, on the
/// consume worker threads. Closures `Fn(&[MessageExt], &mut
/// ConsumeConcurrentlyContext) -> ConsumeConcurrentlyStatus` implement it.
///
/// A panic in the listener counts as `ReconsumeLater`.
pub trait MessageListenerConcurrently: Send + Sync + 'static {
    /// Processes a batch (at most the consume batch size, default 1).
    fn consume_message(&self, msgs: &[MessageExt], ctx: &mut ConsumeConcurrentlyContext) -> ConsumeConcurrentlyStatus;
}

impl<F> MessageListenerConcurrently for F
where
    F: Fn(&[MessageExt], &mut ConsumeConcurrentlyContext) -> ConsumeConcurrentlyStatus + Send + Sync + 'static,
{
    fn consume_message(&self, msgs: &[MessageExt], ctx: &mut ConsumeConcurrentlyContext) -> ConsumeConcurrentlyStatus {
        self(msgs, ctx)
    }
}

/// A listener called with the messages of one queue at a time, in queue
/// order, while this consumer holds the queue's lock at the broker.
/// Closures `Fn(&[MessageExt], &mut ConsumeOrderlyContext) ->
/// ConsumeOrderlyStatus` implement it.
///
/// A panic in the listener counts as `SuspendCurrentQueueAMoment`.
pub trait MessageListenerOrderly: Send + Sync + 'static {
    /// Processes a batch of one queue.
    fn consume_message(&self, msgs: &[MessageExt], ctx: &mut ConsumeOrderlyContext) -> ConsumeOrderlyStatus;
}

impl<F> MessageListenerOrderly for F
where
    F: Fn(&[MessageExt], &mut ConsumeOrderlyContext) -> ConsumeOrderlyStatus + Send + Sync + 'static,
{
    fn consume_message(&self, msgs: &[MessageExt], ctx: &mut ConsumeOrderlyContext) -> ConsumeOrderlyStatus {
        self(msgs, ctx)
    }
}

pub(crate) use crate::threads::spawn;

/// Listener calls in progress, and the switch that stops new ones.
///
/// A consume thread enters before taking a task and leaves (by dropping
/// the pass) after recording the outcome; `close` makes `enter` fail, so no
/// task is taken once shutdown began, and a task taken is run to the end.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    state: Mutex<GateState>,
    cond: Condvar,
}

#[derive(Debug, Default)]
struct GateState {
    closed: bool,
    active: Vec<ThreadId>,
}

/// Proof of entry into a [`Gate`]; leaving happens on drop (also on panic).
pub(crate) struct GatePass<'a>(&'a Gate);

impl Drop for GatePass<'_> {
    fn drop(&mut self) {
        let me = std::thread::current().id();
        let mut st = lock(&self.0.state);
        if let Some(i) = st.active.iter().position(|t| *t == me) {
            st.active.swap_remove(i);
        }
        self.0.cond.notify_all();
    }
}

impl Gate {
    pub fn enter(&self) -> Option<GatePass<'_>> {
        let mut st = lock(&self.state);
        if st.closed {
            return None;
        }
        st.active.push(std::thread::current().id());
        Some(GatePass(self))
    }

    pub fn close(&self) {
        lock(&self.state).closed = true;
    }

    /// Waits until no listener call runs or `limit` passes; returns the
    /// threads still inside (empty when idle).
    pub fn wait_idle(&self, limit: Duration) -> HashSet<ThreadId> {
        let deadline = Instant::now() + limit;
        let mut st = lock(&self.state);
        while !st.active.is_empty() {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            st = self.cond.wait_timeout(st, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
        }
        st.active.iter().copied().collect()
    }
}

/// Prepares pulled messages for the user: drops those the tag subscription
/// does not match (the broker filters by hash code only), puts the original
/// topic back on retried messages and takes the namespace off.
pub(crate) fn prepare_messages(
    msgs: Vec<MessageExt>,
    sub: &SubscriptionData,
    retry_topic: &str,
    strip_namespace: impl Fn(&str) -> String,
) -> Vec<MessageExt> {
    msgs.into_iter()
        .filter(|m| sub.matches_tag(m.tags()))
        .map(|mut m| {
            if m.topic == retry_topic {
                if let Some(t) = m.property(property::RETRY_TOPIC) {
                    m.topic = t.to_string();
                }
            }
            m.topic = strip_namespace(&m.topic);
            m
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_refuses_after_close_and_tracks_active_threads() {
        let gate = Gate::default();
        let pass = gate.enter().expect("open gate");
        assert_eq!(gate.wait_idle(Duration::from_millis(10)).len(), 1);
        drop(pass);
        assert!(gate.wait_idle(Duration::from_millis(10)).is_empty());
        gate.close();
        assert!(gate.enter().is_none());
    }

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
