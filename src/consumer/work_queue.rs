//! The push consumer's consume pool: the [`WorkQueue`] of tasks for the
//! `rocketmq-consume-<n>` threads, and the [`Gate`] that shutdown closes.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use super::owner::DirectReply;
use super::process_queue::ProcessQueue;
use crate::protocol::MessageExt;
use crate::threads::lock;

/// Work for the consume threads.
pub(super) enum Task {
    /// Concurrently: a batch of one queue.
    Batch { pq: Arc<ProcessQueue>, msgs: Vec<MessageExt> },
    /// Orderly: consume what the queue holds, in order.
    Queue(Arc<ProcessQueue>),
    /// An operations tool's CONSUME_MESSAGE_DIRECTLY.
    Direct(Box<MessageExt>, String, DirectReply),
}

/// Ready tasks per thread being woken before one more is woken.
const TASKS_PER_WAKE: usize = 8;

#[derive(Default)]
struct PoolState {
    ready: VecDeque<Task>,
    later: Vec<(Instant, Task)>,
    stopped: bool,
    /// Threads waiting on the condvar.
    idle: usize,
    /// Wake-ups sent that no waiting thread has taken up yet.
    waking: usize,
}

/// Work for the `rocketmq-consume-<n>` threads: tasks ready now, and tasks
/// to run again later. Bounded by the flow control: a queue is not pulled
/// while it holds more than the pull thresholds.
///
/// Wake-ups are chained: a new task wakes one waiting thread unless one is
/// already on its way, and a thread that takes a task while more are ready
/// wakes the next. A burst of short listener calls (a pull of 32 messages
/// is 32 tasks) so runs on the threads already awake instead of waking
/// every consume thread for one message each; slow listener calls still
/// spread over all the threads, one wake-up after the other.
#[derive(Default)]
pub(super) struct WorkQueue {
    state: Mutex<PoolState>,
    cond: Condvar,
}

impl WorkQueue {
    pub(super) fn push(&self, task: Task) {
        let mut st = lock(&self.state);
        st.ready.push_back(task);
        self.wake_one(&mut st);
    }

    pub(super) fn push_later(&self, task: Task, delay: Duration) {
        let mut st = lock(&self.state);
        st.later.push((Instant::now() + delay, task));
        // A waiting thread must look at the new deadline.
        if st.idle > 0 {
            st.waking += 1;
        }
        self.cond.notify_one();
    }

    /// Wakes a waiting thread unless none waits or those already waking
    /// have enough to do ([`TASKS_PER_WAKE`] ready tasks each).
    fn wake_one(&self, st: &mut PoolState) {
        if st.idle > st.waking && st.ready.len() > st.waking * TASKS_PER_WAKE {
            st.waking += 1;
            self.cond.notify_one();
        }
    }

    pub(super) fn stop(&self) {
        let mut st = lock(&self.state);
        st.stopped = true;
        st.ready.clear();
        st.later.clear();
        drop(st);
        self.cond.notify_all();
    }

    /// The next task, or `None` once stopped.
    pub(super) fn take(&self) -> Option<Task> {
        let mut st = lock(&self.state);
        loop {
            if st.stopped {
                return None;
            }
            let now = Instant::now();
            let mut i = 0;
            while i < st.later.len() {
                if st.later[i].0 <= now {
                    let (_, t) = st.later.swap_remove(i);
                    st.ready.push_back(t);
                } else {
                    i += 1;
                }
            }
            if let Some(t) = st.ready.pop_front() {
                if !st.ready.is_empty() {
                    self.wake_one(&mut st);
                }
                return Some(t);
            }
            let wait = st.later.iter().map(|(at, _)| *at - now).min().unwrap_or(Duration::from_secs(1));
            st.idle += 1;
            st = self.cond.wait_timeout(st, wait).unwrap_or_else(|p| p.into_inner()).0;
            st.idle -= 1;
            st.waking = st.waking.saturating_sub(1);
        }
    }
}

/// Listener calls in progress, and the switch that stops new ones.
///
/// A consume thread enters before taking a task and leaves (by dropping
/// the pass) after recording the outcome; `close` makes `enter` fail, so no
/// task is taken once shutdown began, and a task taken is run to the end.
#[derive(Debug, Default)]
pub(super) struct Gate {
    state: Mutex<GateState>,
    cond: Condvar,
}

#[derive(Debug, Default)]
struct GateState {
    closed: bool,
    active: Vec<ThreadId>,
}

/// Proof of entry into a [`Gate`]; leaving happens on drop (also on panic).
pub(super) struct GatePass<'a>(&'a Gate);

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
}
