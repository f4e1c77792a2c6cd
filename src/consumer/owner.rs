//! [`QueueOwner`]: what the background thread and the brokers' requests
//! need from a consumer (push or lite pull), so that the layers below the
//! two consumers never name them.

use std::collections::{BTreeMap, BTreeSet};

use crate::protocol::admin::{ConsumeMessageDirectlyResult, ConsumerRunningInfo};
use crate::protocol::{MessageExt, MessageQueue};

/// What a consumer does when queues come and go; the background thread calls it.
pub(crate) trait QueueOwner: Send + Sync {
    /// Queues of `topic` held now.
    fn held(&self, topic: &str) -> BTreeSet<MessageQueue>;
    /// Takes a queue; [`prepare`](Self::prepare) starts pulling it.
    fn add(&self, mq: MessageQueue);
    /// Stops consuming a queue: no more pulls, offset persisted, lock released.
    fn remove(&self, mq: &MessageQueue);
    /// Readies the queues the pull threads left to this thread (start
    /// offset, orderly lock: requests that may block) and schedules their pulls.
    fn prepare(&self);
    /// Persists the offsets of the held queues.
    fn persist(&self);
    /// Orderly: renews the broker locks of the held queues.
    fn renew_locks(&self) {}
    /// The queues held through rebalancing (not assigned by hand).
    fn rebalanced(&self) -> BTreeSet<MessageQueue>;
    /// What operations tools see (GET_CONSUMER_RUNNING_INFO); from memory only.
    fn running_info(&self) -> ConsumerRunningInfo;
    /// Offsets in memory of the held queues of `topic` (wire names).
    fn offsets(&self, topic: &str) -> BTreeMap<MessageQueue, i64>;
    /// Moves the held queues of `topic` to these offsets (an operations
    /// tool's reset); the next message consumed is the one at the offset.
    fn reset_offsets(&self, topic: &str, table: &BTreeMap<MessageQueue, i64>);
    /// Hands a message to the listener on a consume thread, which answers
    /// through `reply`; false when this consumer has no listener.
    fn consume_directly(&self, _msg: MessageExt, _broker_name: &str, _reply: DirectReply) -> bool {
        false
    }
    /// The queues the broker assigned for `topic`, for a consumer that asks
    /// it (the pop consumer; `Some(None)`: not known now, keep the current
    /// ones); `None` (the default): the rebalance allocates them here.
    fn broker_assignment(&self, _topic: &str) -> Option<Option<BTreeSet<MessageQueue>>> {
        None
    }
}

/// Answers a CONSUME_MESSAGE_DIRECTLY request once the listener returned.
pub(crate) type DirectReply = Box<dyn FnOnce(ConsumeMessageDirectlyResult) + Send>;
