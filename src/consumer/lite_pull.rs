//! [`LitePullConsumer`]: background pulls into a bounded buffer, `poll` to read.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::config::{ConsumerConfig, DEFAULT_CONSUME_TIMESTAMP_AGO, DEFAULT_LITE_PULL_SUSPEND};
use super::instance::{lock, Instance};
use super::offset_store::OffsetStore;
use super::push::now_ms;
use super::rebalance::{self, QueueOwner};
use super::{join_all, prepare_messages, spawn, MessageSelector};
use crate::broker::{PullRequest, PullStatus};
use crate::error::{Error, Result};
use crate::protocol::body::{ConsumeType, SubscriptionData};
use crate::protocol::{MessageExt, MessageQueue};
use crate::validate;

/// Wait before looking at a paused or full queue again.
const IDLE_DELAY: Duration = Duration::from_millis(100);

#[derive(Debug, Default)]
struct QueueState {
    dropped: bool,
    paused: bool,
    /// Bumped by every seek: pulls and buffered batches of an older epoch are dropped.
    epoch: u64,
    seek: Option<i64>,
    next_pull: Option<i64>,
    /// One past the last message `poll` returned (what a commit stores).
    consumed: Option<i64>,
    buffered_msgs: usize,
    buffered_bytes: usize,
}

struct LiteQueue {
    mq: MessageQueue,
    state: Mutex<QueueState>,
    cond: Condvar,
}

impl LiteQueue {
    fn wait(&self, d: Duration) {
        let deadline = Instant::now() + d;
        let mut st = lock(&self.state);
        while !st.dropped {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            st = self.cond.wait_timeout(st, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    fn drop_queue(&self) {
        lock(&self.state).dropped = true;
        self.cond.notify_all();
    }
}

struct Batch {
    q: Arc<LiteQueue>,
    epoch: u64,
    msgs: Vec<MessageExt>,
    bytes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    None,
    Subscribe,
    Assign,
}

struct Entry {
    q: Arc<LiteQueue>,
    handle: Option<JoinHandle<()>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Run {
    Created,
    Running,
    Stopped,
}

struct LiteInner {
    inst: Arc<Instance>,
    store: OffsetStore,
    mode: Mutex<Mode>,
    run: Mutex<Run>,
    table: Mutex<HashMap<MessageQueue, Entry>>,
    buffer: Mutex<VecDeque<Batch>>,
    buffer_cond: Condvar,
    retired: Mutex<Vec<JoinHandle<()>>>,
    consume_timestamp_ms: std::sync::atomic::AtomicI64,
}

/// A consumer you poll: background threads pull each queue into a bounded
/// buffer, [`poll`](Self::poll) hands out what is there.
///
/// Either [`subscribe`](Self::subscribe) (queues are shared with the other
/// members of the group by rebalancing) or [`assign`](Self::assign) queues
/// yourself. Offsets: with auto-commit (default) the position after the
/// messages `poll` returned is committed every persist interval; without
/// it, [`commit_sync`](Self::commit_sync) commits.
///
/// A [`seek`](Self::seek) takes effect with the queue's next pull: if its
/// pull is parked at the broker (long polling, up to the broker suspend
/// time, 20 s by default) the seek waits for it to return.
///
/// ```no_run
/// use std::time::Duration;
/// use rocketmq_blocking::consumer::{ConsumerConfig, LitePullConsumer};
///
/// let config = ConsumerConfig::builder().group("my_group").namesrv_addr("127.0.0.1:9876").build()?;
/// let consumer = LitePullConsumer::new(config)?;
/// consumer.subscribe("TopicTest", "*")?;
/// consumer.start()?;
/// loop {
///     for m in consumer.poll(Duration::from_secs(1))? {
///         println!("{} {:?}", m.msg_id, String::from_utf8_lossy(&m.body));
///     }
/// #   break;
/// }
/// consumer.shutdown();
/// # Ok::<(), rocketmq_blocking::Error>(())
/// ```
pub struct LitePullConsumer {
    inner: Arc<LiteInner>,
    service: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for LitePullConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LitePullConsumer")
            .field("group", &self.inner.inst.group)
            .field("client_id", &self.inner.inst.client_id)
            .finish()
    }
}

impl LitePullConsumer {
    /// A consumer with these settings (nothing runs before `start`).
    pub fn new(config: ConsumerConfig) -> Result<LitePullConsumer> {
        let inst = Arc::new(Instance::new(config, ConsumeType::Pull)?);
        let store = OffsetStore::new(&inst)?;
        Ok(LitePullConsumer {
            inner: Arc::new(LiteInner {
                inst,
                store,
                mode: Mutex::new(Mode::None),
                run: Mutex::new(Run::Created),
                table: Mutex::new(HashMap::new()),
                buffer: Mutex::new(VecDeque::new()),
                buffer_cond: Condvar::new(),
                retired: Mutex::new(Vec::new()),
                consume_timestamp_ms: std::sync::atomic::AtomicI64::new(0),
            }),
            service: Mutex::new(None),
        })
    }

    /// The settings.
    pub fn config(&self) -> &ConsumerConfig {
        &self.inner.inst.config
    }

    /// This consumer's client id.
    pub fn client_id(&self) -> &str {
        &self.inner.inst.client_id
    }

    fn set_mode(&self, want: Mode) -> Result<()> {
        let mut mode = lock(&self.inner.mode);
        if *mode != Mode::None && *mode != want {
            return Err(Error::invalid("consumer mode", "subscribe and assign are mutually exclusive"));
        }
        *mode = want;
        Ok(())
    }

    fn running(&self) -> bool {
        *lock(&self.inner.run) == Run::Running
    }

    /// Subscribes to a topic; its queues are shared among the group by rebalancing.
    pub fn subscribe(&self, topic: &str, selector: impl Into<MessageSelector>) -> Result<()> {
        validate::check_topic(topic)?;
        let sub = selector.into().subscription(&self.inner.inst.config.with_namespace(topic))?;
        self.set_mode(Mode::Subscribe)?;
        self.inner.inst.set_subscription(sub);
        if self.running() {
            self.inner.inst.signal.request_heartbeat();
            self.inner.inst.signal.request_rebalance();
        }
        Ok(())
    }

    /// Takes exactly these queues (no rebalancing); replaces an earlier assignment.
    pub fn assign(&self, queues: &[MessageQueue]) -> Result<()> {
        for q in queues {
            validate::check_topic(&q.topic)?;
            validate::check_queue_id(q.queue_id)?;
        }
        self.set_mode(Mode::Assign)?;
        let inst = &self.inner.inst;
        let wanted: BTreeSet<MessageQueue> = queues.iter().map(|q| inst.wire_queue(q)).collect();
        let held: BTreeSet<MessageQueue> = lock(&self.inner.table).keys().cloned().collect();
        for q in held.difference(&wanted) {
            self.inner.remove(q);
        }
        for q in wanted.difference(&held) {
            Arc::clone(&self.inner).add(q.clone());
        }
        Ok(())
    }

    /// The queues held now (topics without the namespace).
    pub fn assignment(&self) -> Vec<MessageQueue> {
        let inst = &self.inner.inst;
        let mut v: Vec<MessageQueue> = lock(&self.inner.table).keys().map(|q| inst.user_queue(q)).collect();
        v.sort();
        v
    }

    /// The readable queues of a topic, from the name server.
    pub fn fetch_message_queues(&self, topic: &str) -> Result<Vec<MessageQueue>> {
        validate::check_topic(topic)?;
        let inst = &self.inner.inst;
        Ok(inst.topic_queues(&inst.config.with_namespace(topic))?.iter().map(|q| inst.user_queue(q)).collect())
    }

    /// Starts pulling (and, when subscribed, rebalancing at once).
    pub fn start(&self) -> Result<()> {
        {
            let mut run = lock(&self.inner.run);
            match *run {
                Run::Created => *run = Run::Running,
                Run::Running => return Err(Error::invalid("consumer", "already started")),
                Run::Stopped => return Err(Error::NotRunning("lite pull consumer")),
            }
        }
        let inner = &self.inner;
        let inst = &inner.inst;
        let ts =
            inst.config.consume_timestamp_ms().unwrap_or(now_ms() - DEFAULT_CONSUME_TIMESTAMP_AGO.as_millis() as i64);
        inner.consume_timestamp_ms.store(ts, std::sync::atomic::Ordering::SeqCst);
        inst.heartbeat_all();
        // Queues assigned before start get their threads now.
        let pending: Vec<Arc<LiteQueue>> =
            lock(&inner.table).values().filter(|e| e.handle.is_none()).map(|e| Arc::clone(&e.q)).collect();
        for q in pending {
            inner.start_thread(&q);
        }
        match rebalance::spawn_service(Arc::clone(inst), Arc::clone(inner) as Arc<dyn QueueOwner>, false) {
            Ok(h) => {
                *lock(&self.service) = Some(h);
                Ok(())
            }
            Err(e) => {
                self.shutdown();
                Err(e)
            }
        }
    }

    /// Messages from the buffer, waiting up to `timeout` for some; empty
    /// when none came. The messages of one queue come in queue order.
    pub fn poll(&self, timeout: Duration) -> Result<Vec<MessageExt>> {
        if !self.running() {
            return Err(Error::NotRunning("lite pull consumer"));
        }
        let inner = &self.inner;
        let deadline = Instant::now() + timeout;
        let mut buf = lock(&inner.buffer);
        loop {
            let mut i = 0;
            while i < buf.len() {
                let st = lock(&buf[i].q.state);
                if st.dropped || st.epoch != buf[i].epoch {
                    drop(st);
                    buf.remove(i);
                    continue;
                }
                if st.paused {
                    i += 1;
                    continue;
                }
                drop(st);
                let Some(b) = buf.remove(i) else { break };
                let mut st = lock(&b.q.state);
                st.buffered_msgs -= b.msgs.len();
                st.buffered_bytes -= b.bytes;
                if let Some(last) = b.msgs.last() {
                    st.consumed = Some(last.queue_offset + 1);
                }
                drop(st);
                b.q.cond.notify_all();
                return Ok(b.msgs);
            }
            if !self.running() {
                return Err(Error::NotRunning("lite pull consumer"));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            buf = inner.buffer_cond.wait_timeout(buf, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    fn queue(&self, mq: &MessageQueue) -> Result<Arc<LiteQueue>> {
        let wire = self.inner.inst.wire_queue(mq);
        lock(&self.inner.table)
            .get(&wire)
            .map(|e| Arc::clone(&e.q))
            .ok_or_else(|| Error::invalid("queue", format!("{mq:?} is not assigned to this consumer")))
    }

    /// Makes `offset` the next message of `mq` (must be between the queue's
    /// min and max offsets); buffered messages of the queue are dropped.
    pub fn seek(&self, mq: &MessageQueue, offset: i64) -> Result<()> {
        let q = self.queue(mq)?;
        let client = self.inner.inst.broker_of(&q.mq)?;
        let (min, max) = (client.min_offset(&q.mq)?, client.max_offset(&q.mq)?);
        if offset < min || offset > max {
            return Err(Error::invalid("offset", format!("{offset} is outside {min}..={max} of {mq:?}")));
        }
        self.inner.seek(&q, offset);
        Ok(())
    }

    /// Seeks to the queue's min offset.
    pub fn seek_to_begin(&self, mq: &MessageQueue) -> Result<()> {
        let q = self.queue(mq)?;
        let min = self.inner.inst.broker_of(&q.mq)?.min_offset(&q.mq)?;
        self.inner.seek(&q, min);
        Ok(())
    }

    /// Seeks to the queue's max offset (only new messages).
    pub fn seek_to_end(&self, mq: &MessageQueue) -> Result<()> {
        let q = self.queue(mq)?;
        let max = self.inner.inst.broker_of(&q.mq)?.max_offset(&q.mq)?;
        self.inner.seek(&q, max);
        Ok(())
    }

    /// Stops pulling these queues and holds back their buffered messages.
    pub fn pause(&self, queues: &[MessageQueue]) -> Result<()> {
        for mq in queues {
            lock(&self.queue(mq)?.state).paused = true;
        }
        Ok(())
    }

    /// Undoes [`pause`](Self::pause).
    pub fn resume(&self, queues: &[MessageQueue]) -> Result<()> {
        for mq in queues {
            let q = self.queue(mq)?;
            lock(&q.state).paused = false;
            q.cond.notify_all();
        }
        self.inner.buffer_cond.notify_all();
        Ok(())
    }

    /// Commits the position after the polled messages of every held queue
    /// and waits for the broker (or the local file).
    pub fn commit_sync(&self) -> Result<()> {
        self.inner.commit_to_store();
        let queues: Vec<MessageQueue> = lock(&self.inner.table).keys().cloned().collect();
        self.inner.store.persist(&self.inner.inst, &queues)
    }

    /// The committed offset of a queue, read from the broker (clustering)
    /// or the offset file (broadcasting); `None` when there is none.
    pub fn committed(&self, mq: &MessageQueue) -> Result<Option<i64>> {
        let inst = &self.inner.inst;
        self.inner.store.read_store(inst, &inst.wire_queue(mq))
    }

    /// Stops: commits (with auto-commit) and persists offsets, unregisters,
    /// closes the connections (ending parked pulls) and joins every thread.
    /// Idempotent; also run by `Drop`.
    pub fn shutdown(&self) {
        {
            let mut run = lock(&self.inner.run);
            if *run != Run::Running {
                *run = Run::Stopped;
                return;
            }
            *run = Run::Stopped;
        }
        let inner = &self.inner;
        let inst = &inner.inst;
        inst.signal.stop();
        inner.buffer_cond.notify_all();
        if let Some(h) = lock(&self.service).take() {
            let _ = h.join();
        }
        let entries: Vec<(MessageQueue, Entry)> = lock(&inner.table).drain().collect();
        for (_, e) in &entries {
            e.q.drop_queue();
        }
        if inst.config.auto_commit() {
            for (mq, e) in &entries {
                if let Some(o) = lock(&e.q.state).consumed {
                    inner.store.update(mq, o, false);
                }
            }
        }
        let queues: Vec<MessageQueue> = entries.iter().map(|(q, _)| q.clone()).collect();
        let _ = inner.store.persist(inst, &queues);
        inst.unregister_all();
        inst.close();
        lock(&inner.buffer).clear();
        let mut handles: Vec<JoinHandle<()>> = entries.into_iter().filter_map(|(_, e)| e.handle).collect();
        handles.append(&mut lock(&inner.retired));
        join_all(handles, &Default::default());
    }
}

impl Drop for LitePullConsumer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl LiteInner {
    fn start_thread(self: &Arc<Self>, q: &Arc<LiteQueue>) {
        let me = Arc::clone(self);
        let for_thread = Arc::clone(q);
        if let Ok(h) = spawn("pull", move || me.pull_loop(for_thread)) {
            if let Some(e) = lock(&self.table).get_mut(&q.mq) {
                if Arc::ptr_eq(&e.q, q) {
                    e.handle = Some(h);
                    return;
                }
            }
            // Removed meanwhile: the thread sees the drop and ends.
            lock(&self.retired).push(h);
        }
    }

    fn seek(&self, q: &LiteQueue, offset: i64) {
        let mut buf = lock(&self.buffer);
        buf.retain(|b| b.q.mq != q.mq);
        let mut st = lock(&q.state);
        st.epoch += 1;
        st.seek = Some(offset);
        st.consumed = Some(offset);
        st.buffered_msgs = 0;
        st.buffered_bytes = 0;
        drop(st);
        drop(buf);
        q.cond.notify_all();
    }

    fn commit_to_store(&self) {
        let queues: Vec<(MessageQueue, Arc<LiteQueue>)> =
            lock(&self.table).iter().map(|(m, e)| (m.clone(), Arc::clone(&e.q))).collect();
        for (mq, q) in queues {
            if let Some(o) = lock(&q.state).consumed {
                self.store.update(&mq, o, false);
            }
        }
    }

    fn pull_loop(&self, q: Arc<LiteQueue>) {
        let inst = &self.inst;
        let config = &inst.config;
        let suspend = inst.broker_suspend(DEFAULT_LITE_PULL_SUSPEND);
        loop {
            let (epoch, offset) = {
                let mut st = lock(&q.state);
                if st.dropped {
                    return;
                }
                let full = st.buffered_msgs >= config.pull_threshold_for_queue()
                    || st.buffered_bytes >= config.pull_threshold_size_for_queue();
                if st.paused || full {
                    drop(st);
                    q.wait(IDLE_DELAY);
                    continue;
                }
                if let Some(s) = st.seek.take() {
                    st.next_pull = Some(s);
                }
                (st.epoch, st.next_pull)
            };
            let offset = match offset {
                Some(o) => o,
                None => {
                    let ts = self.consume_timestamp_ms.load(std::sync::atomic::Ordering::SeqCst);
                    match rebalance::start_offset(inst, &self.store, &q.mq, ts) {
                        Ok(o) => {
                            let mut st = lock(&q.state);
                            if st.epoch == epoch && st.next_pull.is_none() {
                                st.next_pull = Some(o);
                                st.consumed.get_or_insert(o);
                            }
                        }
                        Err(_) => q.wait(config.pull_error_delay()),
                    }
                    continue;
                }
            };
            let sub = inst.subscription(&q.mq.topic).unwrap_or_else(|| SubscriptionData::tag(q.mq.topic.clone(), "*"));
            let mut req = PullRequest::new(inst.group.clone(), q.mq.clone(), offset);
            req.max_msgs = config.pull_batch_size();
            req.suspend = Some(suspend);
            req.expression = Some(sub.sub_string.clone());
            req.expression_type = sub.expression_type.clone();
            req.sub_version = sub.sub_version;
            let r = match inst.broker_of(&q.mq).and_then(|c| c.pull(&req)) {
                Ok(r) => r,
                Err(_) => {
                    q.wait(config.pull_error_delay());
                    continue;
                }
            };
            let msgs = if r.status == PullStatus::Found {
                prepare_messages(r.messages, &sub, "", |t| config.without_namespace(t).to_string())
            } else {
                Vec::new()
            };
            let mut buf = lock(&self.buffer);
            let mut st = lock(&q.state);
            if st.dropped {
                return;
            }
            if st.epoch != epoch {
                continue;
            }
            st.next_pull = Some(r.next_begin_offset);
            if msgs.is_empty() {
                // Nothing to hand out (no message, none matched, offset moved):
                // when nothing is buffered either, the position moves on.
                if st.buffered_msgs == 0 {
                    st.consumed = Some(r.next_begin_offset);
                }
                continue;
            }
            let bytes = msgs.iter().map(|m| m.body.len()).sum();
            st.buffered_msgs += msgs.len();
            st.buffered_bytes += bytes;
            buf.push_back(Batch { q: Arc::clone(&q), epoch, msgs, bytes });
            drop(st);
            drop(buf);
            self.buffer_cond.notify_all();
        }
    }
}

impl QueueOwner for LiteInner {
    fn held(&self, topic: &str) -> BTreeSet<MessageQueue> {
        lock(&self.table).keys().filter(|q| q.topic == topic).cloned().collect()
    }

    fn add(self: Arc<Self>, mq: MessageQueue) {
        if self.inst.signal.is_stopped() {
            return;
        }
        let q = Arc::new(LiteQueue { mq: mq.clone(), state: Mutex::new(QueueState::default()), cond: Condvar::new() });
        lock(&self.table).insert(mq, Entry { q: Arc::clone(&q), handle: None });
        if *lock(&self.run) == Run::Running {
            self.start_thread(&q);
        }
    }

    fn remove(&self, mq: &MessageQueue) {
        let Some(e) = lock(&self.table).remove(mq) else { return };
        e.q.drop_queue();
        lock(&self.buffer).retain(|b| !Arc::ptr_eq(&b.q, &e.q));
        if self.inst.config.auto_commit() {
            if let Some(o) = lock(&e.q.state).consumed {
                self.store.update(mq, o, false);
            }
        }
        let _ = self.store.persist(&self.inst, std::slice::from_ref(mq));
        self.store.remove(mq);
        if let Some(h) = e.handle {
            lock(&self.retired).push(h);
        }
    }

    fn persist(&self) {
        if self.inst.config.auto_commit() {
            self.commit_to_store();
        }
        let queues: Vec<MessageQueue> = lock(&self.table).keys().cloned().collect();
        let _ = self.store.persist(&self.inst, &queues);
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
