//! The listeners a [`PushConsumer`](super::PushConsumer) calls, what they
//! answer, and the context of a call.

use std::time::Duration;

use crate::protocol::{MessageExt, MessageQueue};

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
    pub(super) queue: MessageQueue,
    pub(super) delay_level: i32,
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
    pub(super) queue: MessageQueue,
    pub(super) suspend: Option<Duration>,
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
