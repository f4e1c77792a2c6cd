//! [`ProcessQueue`] (Java's name): the consume state of one queue of a
//! push consumer: messages pulled and not yet consumed, where the next pull
//! starts, and, orderly, its broker lock and whether a listener call runs.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use super::config::LOCK_MAX_LIVE;
use crate::protocol::admin::ProcessQueueInfo;
use crate::protocol::{now_ms, MessageExt, MessageQueue};
use crate::threads::lock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DropReason {
    /// Taken away by a rebalance: persist, release, stop.
    Rebalance,
    /// The consumer is shutting down: `shutdown` persists and releases.
    Shutdown,
}

#[derive(Debug, Default)]
pub(super) struct PqState {
    pub(super) dropped: Option<DropReason>,
    /// Offsets (and body sizes) of pulled messages not yet consumed.
    pub(super) msgs: BTreeMap<i64, usize>,
    /// Orderly: the pulled messages themselves, consumed in offset order.
    pub(super) ordered: BTreeMap<i64, MessageExt>,
    pub(super) bytes: usize,
    /// Highest offset ever put (-1: none).
    pub(super) max_offset: i64,
    /// Where the next pull starts; `None` until the background thread found
    /// the start offset.
    pub(super) next_offset: Option<i64>,
    /// Broker id the last pull suggested (0: master; a slave while the
    /// master is busy or down).
    pub(super) suggested_broker: i64,
    /// The pull threads left the queue to the background thread (start
    /// offset or orderly lock needed); it reschedules the queue.
    pub(super) parked: bool,
    /// Orderly: when the broker last confirmed our lock.
    pub(super) locked_at: Option<Instant>,
    /// Orderly: a consume task of this queue is queued or running.
    pub(super) consume_scheduled: bool,
    /// Orderly: a listener call on this queue is running.
    pub(super) consuming: bool,
    /// Orderly: the offset was persisted and the lock released after the drop.
    pub(super) released: bool,
    /// For operations tools: last pull and last listener call (ms since the epoch).
    pub(super) last_pull_ms: i64,
    pub(super) last_consume_ms: i64,
}

/// Java's ProcessQueue: the consume state of one queue.
pub(super) struct ProcessQueue {
    pub(super) mq: MessageQueue,
    pub(super) user_mq: MessageQueue,
    pub(super) state: Mutex<PqState>,
}

impl ProcessQueue {
    pub(super) fn new(mq: MessageQueue, user_mq: MessageQueue) -> Self {
        ProcessQueue { mq, user_mq, state: Mutex::new(PqState { max_offset: -1, parked: true, ..PqState::default() }) }
    }

    pub(super) fn dropped(&self) -> Option<DropReason> {
        lock(&self.state).dropped
    }

    pub(super) fn drop_queue(&self, reason: DropReason) {
        lock(&self.state).dropped.get_or_insert(reason);
    }

    /// Records pulled messages (orderly: keeps them for the listener);
    /// returns true when an orderly consume task must be queued.
    pub(super) fn put(&self, msgs: &[MessageExt], keep: bool) -> bool {
        let mut st = lock(&self.state);
        for m in msgs {
            if st.msgs.insert(m.queue_offset, m.body.len()).is_none() {
                st.bytes += m.body.len();
            }
            st.max_offset = st.max_offset.max(m.queue_offset);
            if keep {
                st.ordered.insert(m.queue_offset, m.clone());
            }
        }
        if keep && !st.consume_scheduled && !st.ordered.is_empty() {
            st.consume_scheduled = true;
            return true;
        }
        false
    }

    /// Removes consumed offsets; returns the offset to commit: the smallest
    /// still in flight, or one past the highest pulled when none is left.
    pub(super) fn remove(&self, offsets: &[i64]) -> Option<i64> {
        let mut st = lock(&self.state);
        if st.msgs.is_empty() {
            return None;
        }
        for o in offsets {
            if let Some(size) = st.msgs.remove(o) {
                st.bytes -= size;
            }
            st.ordered.remove(o);
        }
        Some(st.msgs.keys().next().copied().unwrap_or(st.max_offset + 1))
    }

    pub(super) fn is_empty(&self) -> bool {
        lock(&self.state).msgs.is_empty()
    }

    pub(super) fn over_threshold(&self, count: usize, bytes: usize) -> bool {
        let st = lock(&self.state);
        st.msgs.len() >= count || st.bytes >= bytes
    }

    /// The queue as operations tools see it.
    pub(super) fn info(&self, commit_offset: i64) -> ProcessQueueInfo {
        let st = lock(&self.state);
        ProcessQueueInfo {
            commit_offset,
            cached_msg_min_offset: st.msgs.keys().next().copied().unwrap_or(0),
            cached_msg_max_offset: st.msgs.keys().next_back().copied().unwrap_or(0),
            cached_msg_count: st.msgs.len() as i32,
            cached_msg_size_in_mib: (st.bytes / (1024 * 1024)) as i32,
            locked: st.locked_at.is_some_and(|t| t.elapsed() < LOCK_MAX_LIVE),
            last_lock_timestamp: st.locked_at.map_or(0, |t| now_ms() - t.elapsed().as_millis() as i64),
            droped: st.dropped.is_some(),
            last_pull_timestamp: st.last_pull_ms,
            last_consume_timestamp: st.last_consume_ms,
            ..ProcessQueueInfo::default()
        }
    }

    pub(super) fn set_locked(&self, locked: bool) {
        lock(&self.state).locked_at = if locked { Some(Instant::now()) } else { None };
    }

    pub(super) fn lock_valid(&self) -> bool {
        lock(&self.state).locked_at.is_some_and(|t| t.elapsed() < LOCK_MAX_LIVE)
    }

    /// Orderly: the next batch to hand to the listener, marked as running;
    /// `None` (and no task scheduled any more) when there is none or the
    /// queue was dropped.
    pub(super) fn begin_consume(&self, size: usize) -> Option<Vec<MessageExt>> {
        let mut st = lock(&self.state);
        if st.dropped.is_some() || st.ordered.is_empty() {
            st.consume_scheduled = false;
            return None;
        }
        st.consuming = true;
        Some(st.ordered.values().take(size).cloned().collect())
    }

    pub(super) fn end_consume(&self) {
        lock(&self.state).consuming = false;
    }

    /// Orderly: counts one more delivery of these messages.
    pub(super) fn count_redelivery(&self, offsets: &[i64]) {
        let mut st = lock(&self.state);
        for o in offsets {
            if let Some(m) = st.ordered.get_mut(o) {
                m.reconsume_times += 1;
            }
        }
    }

    /// Orderly: true exactly once, for whoever may release the queue after a
    /// rebalance took it (no listener call running any more).
    pub(super) fn take_release_duty(&self) -> bool {
        let mut st = lock(&self.state);
        if st.dropped == Some(DropReason::Rebalance) && !st.consuming && !st.released {
            st.released = true;
            return true;
        }
        false
    }
}
