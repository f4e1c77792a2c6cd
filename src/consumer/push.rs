//! [`PushConsumer`]: pulls in the background and calls a listener.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::config::{ConsumerConfig, DEFAULT_CONSUME_TIMESTAMP_AGO, DEFAULT_PUSH_SUSPEND, LOCK_MAX_LIVE};
use super::instance::{lock, retry_topic, Instance};
use super::offset_store::OffsetStore;
use super::rebalance::{self, QueueOwner};
use super::{
    join_all, prepare_messages, spawn, ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus, ConsumeOrderlyContext,
    ConsumeOrderlyStatus, Gate, MessageListenerConcurrently, MessageListenerOrderly, MessageSelector,
};
use crate::broker::{PullRequest, PullStatus};
use crate::error::{Error, Result};
use crate::protocol::body::{ConsumeType, SubscriptionData};
use crate::protocol::{MessageExt, MessageQueue};
use crate::validate;

/// Flow control: wait this long before looking at a full queue again (Java: 50 ms).
const FLOW_CONTROL_DELAY: Duration = Duration::from_millis(50);
/// A failed send-back is consumed again locally after this (Java: 5 s).
const LOCAL_RETRY_DELAY: Duration = Duration::from_secs(5);
/// Orderly: wait before trying a refused queue lock again.
const LOCK_RETRY_DELAY: Duration = Duration::from_secs(1);

pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[derive(Clone)]
enum Listener {
    Concurrently(Arc<dyn MessageListenerConcurrently>),
    Orderly(Arc<dyn MessageListenerOrderly>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DropReason {
    /// Taken away by a rebalance: persist, release, stop.
    Rebalance,
    /// The consumer is shutting down: `shutdown` persists and releases.
    Shutdown,
}

#[derive(Debug)]
struct PqState {
    dropped: Option<DropReason>,
    /// Offsets (and body sizes) of pulled messages not yet consumed.
    msgs: BTreeMap<i64, usize>,
    bytes: usize,
    /// Highest offset ever put (-1: none).
    max_offset: i64,
    /// Orderly: when the broker last confirmed our lock.
    locked_at: Option<Instant>,
    /// Orderly: a listener call on this queue is running.
    consuming: bool,
    /// Orderly: the offset was persisted and the lock released after the drop.
    released: bool,
}

/// Java's ProcessQueue: the consume state of one queue.
struct ProcessQueue {
    mq: MessageQueue,
    user_mq: MessageQueue,
    state: Mutex<PqState>,
    cond: Condvar,
}

impl ProcessQueue {
    fn new(mq: MessageQueue, user_mq: MessageQueue) -> Self {
        ProcessQueue {
            mq,
            user_mq,
            state: Mutex::new(PqState {
                dropped: None,
                msgs: BTreeMap::new(),
                bytes: 0,
                max_offset: -1,
                locked_at: None,
                consuming: false,
                released: false,
            }),
            cond: Condvar::new(),
        }
    }

    fn dropped(&self) -> Option<DropReason> {
        lock(&self.state).dropped
    }

    fn drop_queue(&self, reason: DropReason) {
        lock(&self.state).dropped.get_or_insert(reason);
        self.cond.notify_all();
    }

    /// Waits up to `d`, returning early when the queue is dropped.
    fn wait(&self, d: Duration) {
        let deadline = Instant::now() + d;
        let mut st = lock(&self.state);
        while st.dropped.is_none() {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            st = self.cond.wait_timeout(st, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    fn put(&self, msgs: &[MessageExt]) {
        let mut st = lock(&self.state);
        for m in msgs {
            if st.msgs.insert(m.queue_offset, m.body.len()).is_none() {
                st.bytes += m.body.len();
            }
            st.max_offset = st.max_offset.max(m.queue_offset);
        }
    }

    /// Removes consumed offsets; returns the offset to commit: the smallest
    /// still in flight, or one past the highest pulled when none is left.
    fn remove(&self, offsets: &[i64]) -> Option<i64> {
        let mut st = lock(&self.state);
        if st.msgs.is_empty() {
            return None;
        }
        for o in offsets {
            if let Some(size) = st.msgs.remove(o) {
                st.bytes -= size;
            }
        }
        let result = st.msgs.keys().next().copied().unwrap_or(st.max_offset + 1);
        drop(st);
        self.cond.notify_all();
        Some(result)
    }

    fn is_empty(&self) -> bool {
        lock(&self.state).msgs.is_empty()
    }

    fn over_threshold(&self, count: usize, bytes: usize) -> bool {
        let st = lock(&self.state);
        st.msgs.len() >= count || st.bytes >= bytes
    }

    fn set_locked(&self, locked: bool) {
        lock(&self.state).locked_at = if locked { Some(Instant::now()) } else { None };
    }

    fn lock_valid(&self) -> bool {
        lock(&self.state).locked_at.is_some_and(|t| t.elapsed() < LOCK_MAX_LIVE)
    }

    /// Orderly: marks a listener call as running; false when dropped.
    fn begin_consume(&self) -> bool {
        let mut st = lock(&self.state);
        if st.dropped.is_some() {
            return false;
        }
        st.consuming = true;
        true
    }

    fn end_consume(&self) {
        lock(&self.state).consuming = false;
    }

    /// Orderly: true exactly once, for whoever may release the queue after a
    /// rebalance took it (no listener call running any more).
    fn take_release_duty(&self) -> bool {
        let mut st = lock(&self.state);
        if st.dropped == Some(DropReason::Rebalance) && !st.consuming && !st.released {
            st.released = true;
            return true;
        }
        false
    }
}

struct Task {
    pq: Arc<ProcessQueue>,
    msgs: Vec<MessageExt>,
}

#[derive(Default)]
struct PoolState {
    ready: VecDeque<Task>,
    later: Vec<(Instant, Task)>,
    stopped: bool,
}

/// Work for the `rocketmq-consume-<n>` threads: batches ready now, and
/// batches to consume again later.
#[derive(Default)]
struct WorkQueue {
    state: Mutex<PoolState>,
    cond: Condvar,
}

impl WorkQueue {
    fn push(&self, task: Task) {
        lock(&self.state).ready.push_back(task);
        self.cond.notify_one();
    }

    fn push_later(&self, task: Task, delay: Duration) {
        lock(&self.state).later.push((Instant::now() + delay, task));
        self.cond.notify_one();
    }

    fn stop(&self) {
        let mut st = lock(&self.state);
        st.stopped = true;
        st.ready.clear();
        st.later.clear();
        drop(st);
        self.cond.notify_all();
    }

    /// The next task, or `None` once stopped.
    fn take(&self) -> Option<Task> {
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
                return Some(t);
            }
            let wait = st.later.iter().map(|(at, _)| *at - now).min().unwrap_or(Duration::from_secs(1));
            st = self.cond.wait_timeout(st, wait).unwrap_or_else(|p| p.into_inner()).0;
        }
    }
}

struct QueueEntry {
    pq: Arc<ProcessQueue>,
    handle: Option<JoinHandle<()>>,
}

struct PushInner {
    inst: Arc<Instance>,
    store: OffsetStore,
    listener: OnceLock<Listener>,
    table: Mutex<HashMap<MessageQueue, QueueEntry>>,
    retired: Mutex<Vec<JoinHandle<()>>>,
    gate: Gate,
    work: WorkQueue,
    retry_topic: String,
    consume_timestamp_ms: AtomicI64,
}

enum RunState {
    Created,
    Running { service: JoinHandle<()>, workers: Vec<JoinHandle<()>> },
    Stopped,
}

/// A consumer that pulls in the background and hands messages to a listener.
///
/// Register one listener — concurrently (a worker pool, any order) or
/// orderly (one queue at a time, in queue order, holding the queue's lock
/// at the broker) — subscribe, then `start`. See the [module
/// docs](super) for the semantics and the threads.
///
/// ```no_run
/// use rocketmq_blocking::consumer::{ConsumeConcurrentlyStatus, ConsumerConfig, PushConsumer};
///
/// let config = ConsumerConfig::builder().group("my_group").namesrv_addr("127.0.0.1:9876").build()?;
/// let consumer = PushConsumer::new(config)?;
/// consumer.subscribe("TopicTest", "TagA || TagB")?;
/// consumer.register_concurrently(|msgs: &[rocketmq_blocking::MessageExt], _ctx: &mut _| {
///     for m in msgs {
///         println!("{} {:?}", m.msg_id, String::from_utf8_lossy(&m.body));
///     }
///     ConsumeConcurrentlyStatus::ConsumeSuccess
/// })?;
/// consumer.start()?;
/// std::thread::sleep(std::time::Duration::from_secs(60));
/// consumer.shutdown();
/// # Ok::<(), rocketmq_blocking::Error>(())
/// ```
pub struct PushConsumer {
    inner: Arc<PushInner>,
    run: Mutex<RunState>,
}

impl std::fmt::Debug for PushConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushConsumer")
            .field("group", &self.inner.inst.group)
            .field("client_id", &self.inner.inst.client_id)
            .finish()
    }
}

impl PushConsumer {
    /// A consumer with these settings (nothing runs before `start`).
    /// Broadcasting consumers read their offset file here.
    pub fn new(config: ConsumerConfig) -> Result<PushConsumer> {
        let inst = Arc::new(Instance::new(config, ConsumeType::Push)?);
        let store = OffsetStore::new(&inst)?;
        let inner = PushInner {
            retry_topic: retry_topic(&inst.group),
            inst,
            store,
            listener: OnceLock::new(),
            table: Mutex::new(HashMap::new()),
            retired: Mutex::new(Vec::new()),
            gate: Gate::default(),
            work: WorkQueue::default(),
            consume_timestamp_ms: AtomicI64::new(0),
        };
        Ok(PushConsumer { inner: Arc::new(inner), run: Mutex::new(RunState::Created) })
    }

    /// The settings.
    pub fn config(&self) -> &ConsumerConfig {
        &self.inner.inst.config
    }

    /// This consumer's client id (as the brokers list it).
    pub fn client_id(&self) -> &str {
        &self.inner.inst.client_id
    }

    /// Subscribes to `topic` (a tag expression such as `"*"` or `"A || B"`,
    /// or a [`MessageSelector::sql92`]); replaces an earlier subscription of
    /// the topic. Allowed before and after `start`.
    pub fn subscribe(&self, topic: &str, selector: impl Into<MessageSelector>) -> Result<()> {
        validate::check_topic(topic)?;
        let inst = &self.inner.inst;
        inst.set_subscription(selector.into().subscription(&inst.config.with_namespace(topic))?);
        if matches!(*lock(&self.run), RunState::Running { .. }) {
            inst.signal.request_heartbeat();
            inst.signal.request_rebalance();
        }
        Ok(())
    }

    fn register(&self, listener: Listener) -> Result<()> {
        if !matches!(*lock(&self.run), RunState::Created) {
            return Err(Error::invalid("listener", "register the listener before start"));
        }
        self.inner.listener.set(listener).map_err(|_| Error::invalid("listener", "a listener is already registered"))
    }

    /// Registers a concurrent listener (called on the worker pool).
    pub fn register_concurrently(&self, listener: impl MessageListenerConcurrently) -> Result<()> {
        self.register(Listener::Concurrently(Arc::new(listener)))
    }

    /// Registers an orderly listener (one queue at a time, in order).
    pub fn register_orderly(&self, listener: impl MessageListenerOrderly) -> Result<()> {
        self.register(Listener::Orderly(Arc::new(listener)))
    }

    /// Starts: heartbeat, the background thread, the workers; queues are
    /// assigned by the first rebalance, right away.
    pub fn start(&self) -> Result<()> {
        let mut run = lock(&self.run);
        match *run {
            RunState::Created => {}
            RunState::Running { .. } => return Err(Error::invalid("consumer", "already started")),
            RunState::Stopped => return Err(Error::NotRunning("push consumer")),
        }
        let inner = &self.inner;
        let inst = &inner.inst;
        let listener = inner
            .listener
            .get()
            .cloned()
            .ok_or_else(|| Error::invalid("listener", "register a listener before start"))?;
        if inst.subscriptions().is_empty() {
            return Err(Error::invalid("subscription", "subscribe to a topic before start"));
        }
        if inst.clustering() {
            inst.set_subscription(SubscriptionData::tag(inner.retry_topic.clone(), "*"));
        }
        let ts =
            inst.config.consume_timestamp_ms().unwrap_or(now_ms() - DEFAULT_CONSUME_TIMESTAMP_AGO.as_millis() as i64);
        inner.consume_timestamp_ms.store(ts, Ordering::SeqCst);
        inst.heartbeat_all();

        let mut workers = Vec::new();
        let mut started = || -> Result<JoinHandle<()>> {
            if let Listener::Concurrently(_) = listener {
                for _ in 0..inst.config.consume_threads() {
                    let me = Arc::clone(inner);
                    workers.push(spawn("consume", move || me.worker_loop())?);
                }
            }
            let orderly_locks = matches!(listener, Listener::Orderly(_)) && inst.clustering();
            rebalance::spawn_service(Arc::clone(inst), Arc::clone(inner) as Arc<dyn QueueOwner>, orderly_locks)
        };
        match started() {
            Ok(service) => {
                *run = RunState::Running { service, workers };
                Ok(())
            }
            Err(e) => {
                inst.signal.stop();
                inner.work.stop();
                join_all(workers, &Default::default());
                inst.close();
                *run = RunState::Stopped;
                Err(e)
            }
        }
    }

    /// The queues this consumer holds now (topics without the namespace).
    pub fn assignment(&self) -> Vec<MessageQueue> {
        let mut v: Vec<MessageQueue> = lock(&self.inner.table).values().map(|e| e.pq.user_mq.clone()).collect();
        v.sort();
        v
    }

    /// Stops: no listener call starts after this begins; waits up to the
    /// await-termination bound for running ones; persists offsets, releases
    /// orderly locks, unregisters, closes the connections and joins every
    /// thread (a listener call still running past the bound is left to
    /// finish on its own thread). Idempotent; also run by `Drop`.
    pub fn shutdown(&self) {
        let (service, workers) = {
            let mut run = lock(&self.run);
            match std::mem::replace(&mut *run, RunState::Stopped) {
                RunState::Running { service, workers } => (service, workers),
                _ => return,
            }
        };
        let inner = &self.inner;
        let inst = &inner.inst;
        inst.signal.stop();
        inner.gate.close();
        inner.work.stop();
        let _ = service.join();
        let busy = inner.gate.wait_idle(inst.config.await_termination());
        let entries: Vec<(MessageQueue, QueueEntry)> = lock(&inner.table).drain().collect();
        for (_, e) in &entries {
            e.pq.drop_queue(DropReason::Shutdown);
        }
        let queues: Vec<MessageQueue> = entries.iter().map(|(q, _)| q.clone()).collect();
        let _ = inner.store.persist(inst, &queues);
        if inner.orderly_locks() {
            inner.unlock(&queues);
        }
        inst.unregister_all();
        inst.close();
        let mut handles: Vec<JoinHandle<()>> = entries.into_iter().filter_map(|(_, e)| e.handle).collect();
        handles.append(&mut lock(&inner.retired));
        handles.extend(workers);
        join_all(handles, &busy);
    }
}

impl Drop for PushConsumer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl PushInner {
    fn orderly(&self) -> bool {
        matches!(self.listener.get(), Some(Listener::Orderly(_)))
    }

    /// Orderly in clustering: queues are locked at the broker.
    fn orderly_locks(&self) -> bool {
        self.orderly() && self.inst.clustering()
    }

    fn worker_loop(&self) {
        while let Some(task) = self.work.take() {
            self.consume_concurrently(task);
        }
    }

    fn consume_concurrently(&self, task: Task) {
        let Some(Listener::Concurrently(listener)) = self.listener.get() else { return };
        if task.pq.dropped().is_some() {
            return;
        }
        let Some(pass) = self.gate.enter() else { return };
        let mut ctx = ConsumeConcurrentlyContext { queue: task.pq.user_mq.clone(), delay_level: 0 };
        let status = catch_unwind(AssertUnwindSafe(|| listener.consume_message(&task.msgs, &mut ctx)))
            .unwrap_or(ConsumeConcurrentlyStatus::ReconsumeLater);
        let mut again = Vec::new();
        if status == ConsumeConcurrentlyStatus::ReconsumeLater && self.inst.clustering() {
            for m in &task.msgs {
                if self.send_back(&task.pq, m, ctx.delay_level).is_err() {
                    let mut m = m.clone();
                    m.reconsume_times += 1;
                    again.push(m);
                }
            }
        }
        let done: Vec<i64> =
            task.msgs.iter().map(|m| m.queue_offset).filter(|o| !again.iter().any(|m| m.queue_offset == *o)).collect();
        if let Some(offset) = task.pq.remove(&done) {
            if task.pq.dropped().is_none() {
                self.store.update(&task.pq.mq, offset, true);
            }
        }
        if !again.is_empty() {
            self.work.push_later(Task { pq: task.pq, msgs: again }, LOCAL_RETRY_DELAY);
        }
        drop(pass);
    }

    /// Sends a message back to its broker for a later retry (or the DLQ).
    fn send_back(&self, pq: &ProcessQueue, m: &MessageExt, delay_level: i32) -> Result<()> {
        let mut wire = m.clone();
        wire.topic = self.inst.config.with_namespace(&m.topic);
        let client = self.inst.broker_of(&pq.mq)?;
        client.send_message_back(&self.inst.group, &wire, delay_level, self.inst.config.max_reconsume_times())
    }

    /// Orderly: calls the listener batch by batch, in order. Returns the
    /// offset to pull from again when it stopped early (dropped, lock lost,
    /// shutting down).
    fn consume_orderly(&self, pq: &ProcessQueue, mut msgs: Vec<MessageExt>) -> Option<i64> {
        let Some(Listener::Orderly(listener)) = self.listener.get() else { return None };
        let config = &self.inst.config;
        let locks = self.orderly_locks();
        let size = config.consume_batch_size();
        let mut start = 0;
        while start < msgs.len() {
            let end = (start + size).min(msgs.len());
            loop {
                let resume = Some(msgs[start].queue_offset);
                if locks && !pq.lock_valid() {
                    return resume;
                }
                let Some(pass) = self.gate.enter() else { return resume };
                if !pq.begin_consume() {
                    return resume;
                }
                let batch = &mut msgs[start..end];
                let mut ctx = ConsumeOrderlyContext { queue: pq.user_mq.clone(), suspend: None };
                let status = catch_unwind(AssertUnwindSafe(|| listener.consume_message(batch, &mut ctx)))
                    .unwrap_or(ConsumeOrderlyStatus::SuspendCurrentQueueAMoment);
                let next = batch[batch.len() - 1].queue_offset + 1;
                let done = match status {
                    ConsumeOrderlyStatus::Success => true,
                    ConsumeOrderlyStatus::SuspendCurrentQueueAMoment => {
                        // Java's checkReconsumeTimes: once every message of the batch
                        // used up its deliveries, it goes to the DLQ and the queue moves on.
                        let exhausted = self.inst.clustering()
                            && batch.iter().all(|m| m.reconsume_times >= config.max_reconsume_times())
                            && batch.iter().all(|m| self.send_back(pq, m, -1).is_ok());
                        if !exhausted {
                            for m in batch.iter_mut() {
                                m.reconsume_times += 1;
                            }
                        }
                        exhausted
                    }
                };
                if done {
                    self.store.update(&pq.mq, next, false);
                }
                pq.end_consume();
                drop(pass);
                if pq.take_release_duty() {
                    self.release(&pq.mq);
                }
                if done {
                    break;
                }
                pq.wait(ctx.suspend.unwrap_or(config.suspend_current_queue_time()));
            }
            start = end;
        }
        None
    }

    /// Offset for messages that were all filtered out: move on when nothing is in flight.
    fn correct_tags_offset(&self, pq: &ProcessQueue, next: i64) {
        if pq.is_empty() {
            self.store.update(&pq.mq, next, true);
        }
    }

    fn lock_queue(&self, pq: &ProcessQueue) -> bool {
        let inst = &self.inst;
        let locked = inst
            .broker_of(&pq.mq)
            .and_then(|c| c.lock_batch_mq(&inst.group, &inst.client_id, std::slice::from_ref(&pq.mq)))
            .map(|l| l.contains(&pq.mq))
            .unwrap_or(false);
        pq.set_locked(locked);
        locked
    }

    fn unlock(&self, queues: &[MessageQueue]) {
        let inst = &self.inst;
        let mut by_broker: BTreeMap<&str, Vec<MessageQueue>> = BTreeMap::new();
        for q in queues {
            by_broker.entry(q.broker_name.as_str()).or_default().push(q.clone());
        }
        for (broker, list) in by_broker {
            let _ = inst.broker(broker).and_then(|c| c.unlock_batch_mq(&inst.group, &inst.client_id, &list));
        }
    }

    /// A queue given up: persist and forget its offset, release its lock.
    fn release(&self, mq: &MessageQueue) {
        let _ = self.store.persist(&self.inst, std::slice::from_ref(mq));
        self.store.remove(mq);
        if self.orderly_locks() {
            self.unlock(std::slice::from_ref(mq));
        }
    }

    fn pull_loop(&self, pq: Arc<ProcessQueue>) {
        let inst = &self.inst;
        let config = &inst.config;
        let orderly = self.orderly();
        let locks = self.orderly_locks();
        let suspend = inst.broker_suspend(DEFAULT_PUSH_SUSPEND);
        let mut next: Option<i64> = None;
        while pq.dropped().is_none() {
            if locks && !pq.lock_valid() && !self.lock_queue(&pq) {
                pq.wait(LOCK_RETRY_DELAY);
                continue;
            }
            let offset = match next {
                Some(o) => o,
                None => {
                    let ts = self.consume_timestamp_ms.load(Ordering::SeqCst);
                    match rebalance::start_offset(inst, &self.store, &pq.mq, ts) {
                        Ok(o) => {
                            next = Some(o);
                            o
                        }
                        Err(_) => {
                            pq.wait(config.pull_error_delay());
                            continue;
                        }
                    }
                }
            };
            if !orderly && pq.over_threshold(config.pull_threshold_for_queue(), config.pull_threshold_size_for_queue())
            {
                pq.wait(FLOW_CONTROL_DELAY);
                continue;
            }
            let Some(sub) = inst.subscription(&pq.mq.topic) else {
                pq.wait(config.pull_error_delay());
                continue;
            };
            let mut req = PullRequest::new(inst.group.clone(), pq.mq.clone(), offset);
            req.max_msgs = config.pull_batch_size();
            req.suspend = Some(suspend);
            req.expression = Some(sub.sub_string.clone());
            req.expression_type = sub.expression_type.clone();
            req.sub_version = sub.sub_version;
            let result = inst.broker_of(&pq.mq).and_then(|c| c.pull(&req));
            if pq.dropped().is_some() {
                break;
            }
            let r = match result {
                Ok(r) => r,
                Err(_) => {
                    pq.wait(config.pull_error_delay());
                    continue;
                }
            };
            next = Some(r.next_begin_offset);
            match r.status {
                PullStatus::Found => {
                    let msgs = prepare_messages(r.messages, &sub, &self.retry_topic, |t| {
                        config.without_namespace(t).to_string()
                    });
                    if msgs.is_empty() {
                        self.correct_tags_offset(&pq, r.next_begin_offset);
                    } else if orderly {
                        if let Some(resume) = self.consume_orderly(&pq, msgs) {
                            next = Some(resume);
                        }
                    } else {
                        pq.put(&msgs);
                        for chunk in msgs.chunks(config.consume_batch_size()) {
                            self.work.push(Task { pq: Arc::clone(&pq), msgs: chunk.to_vec() });
                        }
                    }
                }
                PullStatus::NoNewMsg | PullStatus::NoMatchedMsg => {
                    self.correct_tags_offset(&pq, r.next_begin_offset);
                }
                PullStatus::OffsetIllegal => {
                    self.store.update(&pq.mq, r.next_begin_offset, false);
                    let _ = self.store.persist(inst, std::slice::from_ref(&pq.mq));
                }
            }
        }
        if orderly && pq.take_release_duty() {
            self.release(&pq.mq);
        }
    }
}

impl QueueOwner for PushInner {
    fn held(&self, topic: &str) -> BTreeSet<MessageQueue> {
        lock(&self.table).keys().filter(|q| q.topic == topic).cloned().collect()
    }

    fn add(self: Arc<Self>, mq: MessageQueue) {
        if self.inst.signal.is_stopped() {
            return;
        }
        let pq = Arc::new(ProcessQueue::new(mq.clone(), self.inst.user_queue(&mq)));
        let me = Arc::clone(&self);
        let for_thread = Arc::clone(&pq);
        // A queue whose thread cannot start is tried again next rebalance.
        if let Ok(handle) = spawn("pull", move || me.pull_loop(for_thread)) {
            lock(&self.table).insert(mq, QueueEntry { pq, handle: Some(handle) });
        }
    }

    fn remove(&self, mq: &MessageQueue) {
        let Some(entry) = lock(&self.table).remove(mq) else { return };
        entry.pq.drop_queue(DropReason::Rebalance);
        // Concurrently: at once. Orderly: here when no listener call runs on
        // the queue, else by its pull thread right after that call.
        if !self.orderly() || entry.pq.take_release_duty() {
            self.release(mq);
        }
        if let Some(h) = entry.handle {
            lock(&self.retired).push(h);
        }
    }

    fn persist(&self) {
        let queues: Vec<MessageQueue> = lock(&self.table).keys().cloned().collect();
        let _ = self.store.persist(&self.inst, &queues);
    }

    fn renew_locks(&self) {
        let inst = &self.inst;
        let mut by_broker: BTreeMap<String, Vec<Arc<ProcessQueue>>> = BTreeMap::new();
        for e in lock(&self.table).values() {
            by_broker.entry(e.pq.mq.broker_name.clone()).or_default().push(Arc::clone(&e.pq));
        }
        for (broker, pqs) in by_broker {
            let queues: Vec<MessageQueue> = pqs.iter().map(|p| p.mq.clone()).collect();
            if let Ok(locked) =
                inst.broker(&broker).and_then(|c| c.lock_batch_mq(&inst.group, &inst.client_id, &queues))
            {
                for p in &pqs {
                    p.set_locked(locked.contains(&p.mq));
                }
            }
        }
    }

    fn reap(&self) {
        let mut retired = lock(&self.retired);
        let (done, running): (Vec<_>, Vec<_>) = retired.drain(..).partition(|h| h.is_finished());
        *retired = running;
        drop(retired);
        for h in done {
            let _ = h.join();
        }
    }
}
