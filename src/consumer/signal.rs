//! [`Signal`]: what wakes a consumer's background thread (stop, rebalance
//! now, heartbeat now, offset resets an operations tool asked for).

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex};
use std::time::Instant;

use crate::protocol::MessageQueue;
use crate::threads::lock;

/// Offsets an operations tool asked to reset: topic → offset per queue.
pub(crate) type OffsetReset = (String, BTreeMap<MessageQueue, i64>);

/// Resets waiting for the background thread; more are dropped (the tool
/// reports the reset as sent; it can be run again).
const MAX_PENDING_RESETS: usize = 16;

/// Wakes the background thread: stop, rebalance now, heartbeat now.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    state: Mutex<Wakeup>,
    cond: Condvar,
}

/// What [`Signal::wait`] saw.
#[derive(Debug, Default)]
pub(crate) struct Wakeup {
    pub stopped: bool,
    pub rebalance: bool,
    pub heartbeat: bool,
    pub resets: Vec<OffsetReset>,
}

impl Signal {
    pub fn stop(&self) {
        lock(&self.state).stopped = true;
        self.cond.notify_all();
    }

    pub fn is_stopped(&self) -> bool {
        lock(&self.state).stopped
    }

    /// Never blocks for long: safe on a connection's reader thread.
    pub fn request_rebalance(&self) {
        lock(&self.state).rebalance = true;
        self.cond.notify_all();
    }

    /// Never blocks for long: safe on a connection's reader thread.
    pub fn request_reset(&self, reset: OffsetReset) {
        let mut st = lock(&self.state);
        if st.resets.len() < MAX_PENDING_RESETS {
            st.resets.push(reset);
        } else {
            log_warn!("offset reset dropped: topic={} (already {MAX_PENDING_RESETS} waiting)", reset.0);
        }
        drop(st);
        self.cond.notify_all();
    }

    pub fn request_heartbeat(&self) {
        lock(&self.state).heartbeat = true;
        self.cond.notify_all();
    }

    /// Waits until `deadline` or a request; takes (clears) the requests.
    pub fn wait_until(&self, deadline: Instant) -> Wakeup {
        let mut st = lock(&self.state);
        loop {
            if st.stopped || st.rebalance || st.heartbeat || !st.resets.is_empty() {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            st = self.cond.wait_timeout(st, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
        }
        let w = std::mem::take(&mut *st);
        st.stopped = w.stopped;
        w
    }
}
