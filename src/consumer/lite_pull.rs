//! [`LitePullConsumer`]: background pulls into a bounded buffer, `poll` to read.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::config::{ConsumerConfig, DEFAULT_LITE_PULL_SUSPEND};
use super::instance::Instance;
use super::offset_store::OffsetStore;
use super::owner::QueueOwner;
use super::pull_service::{empty_pull_delay, Next, PullService, Puller};
use super::rebalance;
use super::selector::{prepare_messages, MessageSelector};
use crate::broker::{PullRequest, PullResult, PullStatus};
use crate::error::{Error, Result};
use crate::protocol::admin::{self, ConsumerRunningInfo, ProcessQueueInfo};
use crate::protocol::body::{ConsumeType, SubscriptionData};
use crate::protocol::{now_ms, MessageExt, MessageQueue};
use crate::threads::{join_until, lock};
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
    /// For operations tools: last pull (ms since the epoch).
    last_pull_ms: i64,
    /// Epoch of the pull in flight: its answer counts only if no seek came since.
    pull_epoch: u64,
    /// Broker id the last pull suggested (0: master).
    suggested_broker: i64,
    /// Left by the pull threads to the background thread (start offset
    /// needed); it reschedules the queue.
    parked: bool,
    /// One past the last message `poll` returned (what a commit stores).
    consumed: Option<i64>,
    buffered_msgs: usize,
    buffered_bytes: usize,
}

struct LiteQueue {
    mq: MessageQueue,
    state: Mutex<QueueState>,
}

impl LiteQueue {
    fn new(mq: MessageQueue) -> Self {
        LiteQueue { mq, state: Mutex::new(QueueState { parked: true, ..QueueState::default() }) }
    }

    fn drop_queue(&self) {
        lock(&self.state).dropped = true;
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
    table: Mutex<HashMap<MessageQueue, Arc<LiteQueue>>>,
    buffer: Mutex<VecDeque<Batch>>,
    buffer_cond: Condvar,
    pulls: PullService<Arc<LiteQueue>>,
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
    threads: Mutex<Vec<JoinHandle<()>>>,
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
                pulls: PullService::new(),
            }),
            threads: Mutex::new(Vec::new()),
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

    /// Stops consuming a subscribed topic: the next rebalance, run at once,
    /// gives its queues up (offsets committed and persisted) and the next
    /// heartbeat, also at once, tells the brokers.
    pub fn unsubscribe(&self, topic: &str) -> Result<()> {
        validate::check_topic(topic)?;
        let inst = &self.inner.inst;
        inst.remove_subscription(&inst.config.with_namespace(topic));
        if self.running() {
            inst.signal.request_heartbeat();
            inst.signal.request_rebalance();
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
            self.inner.add(q.clone());
        }
        if self.running() {
            self.inner.inst.signal.request_rebalance();
        }
        Ok(())
    }

    /// What brokers and the name server keep refusing this consumer, by
    /// subject (`route of <topic>`, `consumer list of <topic>`, `heartbeat
    /// to <broker>`, `pull of <queue>`): authentication, authorization, a topic or group that does
    /// not exist. Empty while everything works; an entry goes away once
    /// the subject works again. `start` itself fails when every broker
    /// refuses the first heartbeat.
    pub fn refusals(&self) -> Vec<(String, Arc<Error>)> {
        self.inner.inst.refusals.list()
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
        if let Err(e) = inst.begin(Arc::downgrade(&(Arc::clone(inner) as Arc<dyn QueueOwner>))) {
            self.shutdown();
            return Err(e);
        }
        let mut threads = Vec::new();
        let started = inner.pulls.start(Arc::clone(inner), inst.config.pull_threads()).and_then(|pulls| {
            threads.extend(pulls);
            rebalance::spawn_service(Arc::clone(inst), Arc::clone(inner) as Arc<dyn QueueOwner>)
        });
        match started {
            Ok(h) => {
                threads.push(h);
                *lock(&self.threads) = threads;
                Ok(())
            }
            Err(e) => {
                *lock(&self.threads) = threads;
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
                // Checked and consumed under one lock: a queue dropped (by a
                // rebalance or shutdown, which then commit `consumed`) hands
                // out nothing more.
                let q = Arc::clone(&buf[i].q);
                let mut st = lock(&q.state);
                if st.dropped || st.epoch != buf[i].epoch {
                    drop(st);
                    buf.remove(i);
                    continue;
                }
                if st.paused {
                    i += 1;
                    continue;
                }
                let Some(b) = buf.remove(i) else { break };
                st.buffered_msgs -= b.msgs.len();
                st.buffered_bytes -= b.bytes;
                if let Some(last) = b.msgs.last() {
                    st.consumed = Some(last.queue_offset + 1);
                }
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
            .cloned()
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
            lock(&self.queue(mq)?.state).paused = false;
        }
        self.inner.buffer_cond.notify_all();
        Ok(())
    }

    /// Commits the position after the polled messages of every held queue
    /// and waits for the broker (or the local file).
    pub fn commit_sync(&self) -> Result<()> {
        self.inner.commit(&self.inner.queues());
        let queues: Vec<MessageQueue> = lock(&self.inner.table).keys().cloned().collect();
        self.inner.store.persist(&self.inner.inst, &queues)
    }

    /// The committed offset of a queue, read from the broker (clustering)
    /// or the offset file (broadcasting); `None` when there is none.
    pub fn committed(&self, mq: &MessageQueue) -> Result<Option<i64>> {
        let inst = &self.inner.inst;
        self.inner.store.read_store(inst, &inst.wire_queue(mq))
    }

    /// Stops: commits (with auto-commit) and persists offsets, unregisters
    /// (one request timeout for all brokers together), closes the
    /// connections (ending parked pulls) and joins every thread within a
    /// second. Idempotent; also run by `Drop`.
    pub fn shutdown(&self) {
        {
            let mut run = lock(&self.inner.run);
            let was = *run;
            *run = Run::Stopped;
            if was != Run::Running {
                return;
            }
        }
        let inner = &self.inner;
        let inst = &inner.inst;
        inst.signal.stop();
        inner.pulls.stop();
        inner.buffer_cond.notify_all();
        let deadline = Instant::now() + inst.config.request_timeout();
        let entries: Vec<(MessageQueue, Arc<LiteQueue>)> = lock(&inner.table).drain().collect();
        for (_, q) in &entries {
            q.drop_queue();
        }
        if inst.config.auto_commit() {
            inner.commit(&entries);
        }
        let queues: Vec<MessageQueue> = entries.iter().map(|(q, _)| q.clone()).collect();
        let _ = inner.store.persist_until(inst, &queues, deadline);
        inst.leave(&[], deadline);
        inst.close();
        lock(&inner.buffer).clear();
        let threads = std::mem::take(&mut *lock(&self.threads));
        join_until(threads, Instant::now() + Duration::from_secs(1));
    }
}

impl Drop for LitePullConsumer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl LiteInner {
    fn seek(&self, q: &LiteQueue, offset: i64) {
        let mut buf = lock(&self.buffer);
        buf.retain(|b| b.q.mq != q.mq);
        let mut st = lock(&q.state);
        st.epoch += 1;
        st.seek = Some(offset);
        st.consumed = Some(offset);
        st.buffered_msgs = 0;
        st.buffered_bytes = 0;
    }

    fn queues(&self) -> Vec<(MessageQueue, Arc<LiteQueue>)> {
        lock(&self.table).iter().map(|(m, q)| (m.clone(), Arc::clone(q))).collect()
    }

    /// Puts the position after what `poll` returned of `queues` in the offset store.
    fn commit(&self, queues: &[(MessageQueue, Arc<LiteQueue>)]) {
        for (mq, q) in queues {
            if let Some(o) = lock(&q.state).consumed {
                self.store.update(mq, o, false);
            }
        }
    }
}

impl Puller for LiteInner {
    type Queue = Arc<LiteQueue>;

    fn next_pull(&self, q: &Arc<LiteQueue>) -> Next {
        let inst = &self.inst;
        let config = &inst.config;
        let (offset, broker_id) = {
            let mut st = lock(&q.state);
            if st.dropped {
                return Next::Idle;
            }
            let full = st.buffered_msgs >= config.pull_threshold_for_queue()
                || st.buffered_bytes >= config.pull_threshold_size_for_queue();
            if st.paused || full {
                return Next::Wait(IDLE_DELAY);
            }
            if let Some(s) = st.seek.take() {
                st.next_pull = Some(s);
            }
            let Some(offset) = st.next_pull else {
                st.parked = true;
                return Next::Idle;
            };
            st.pull_epoch = st.epoch;
            (offset, st.suggested_broker)
        };
        let sub = inst.subscription(&q.mq.topic).unwrap_or_else(|| SubscriptionData::tag(q.mq.topic.clone(), "*"));
        inst.next_pull(&q.mq, offset, broker_id, DEFAULT_LITE_PULL_SUSPEND, &sub)
    }

    fn pulled(
        &self,
        q: &Arc<LiteQueue>,
        req: &PullRequest,
        result: Result<PullResult>,
        elapsed: Duration,
    ) -> Option<Duration> {
        let config = &self.inst.config;
        let r = match result {
            Ok(r) => r,
            Err(e) => {
                log_debug!("pull failed: queue={:?} offset={} error={e}", q.mq, req.offset);
                self.inst.pull_failed(&q.mq, e);
                return (!lock(&q.state).dropped).then_some(config.pull_error_delay());
            }
        };
        self.inst.pull_answered(&q.mq);
        let delay = match r.status {
            PullStatus::Found => Duration::ZERO,
            PullStatus::NoNewMsg | PullStatus::NoMatchedMsg => {
                empty_pull_delay(req, &r, elapsed, config.pull_error_delay())
            }
            PullStatus::OffsetIllegal => config.pull_error_delay(),
        };
        let msgs = match (r.status, self.inst.subscription(&q.mq.topic)) {
            (PullStatus::Found, Some(sub)) => {
                prepare_messages(r.messages, &sub, "", |t| config.without_namespace(t).to_string())
            }
            (PullStatus::Found, None) => r.messages,
            _ => Vec::new(),
        };
        let mut buf = lock(&self.buffer);
        let mut st = lock(&q.state);
        if st.dropped {
            return None;
        }
        if st.epoch != st.pull_epoch {
            // A seek came meanwhile: this answer is for the old position.
            return Some(Duration::ZERO);
        }
        st.next_pull = Some(r.next_begin_offset);
        st.suggested_broker = r.suggest_which_broker_id;
        st.last_pull_ms = now_ms();
        if msgs.is_empty() {
            // Nothing to hand out (no message, none matched, offset moved):
            // when nothing is buffered either, the position moves on.
            if st.buffered_msgs == 0 {
                st.consumed = Some(r.next_begin_offset);
            }
            return Some(delay);
        }
        let bytes = msgs.iter().map(|m| m.body.len()).sum();
        st.buffered_msgs += msgs.len();
        st.buffered_bytes += bytes;
        let epoch = st.epoch;
        drop(st);
        buf.push_back(Batch { q: Arc::clone(q), epoch, msgs, bytes });
        drop(buf);
        self.buffer_cond.notify_all();
        Some(delay)
    }
}

impl QueueOwner for LiteInner {
    fn held(&self, topic: &str) -> BTreeSet<MessageQueue> {
        lock(&self.table).keys().filter(|q| q.topic == topic).cloned().collect()
    }

    fn add(&self, mq: MessageQueue) {
        if self.inst.signal.is_stopped() {
            return;
        }
        lock(&self.table).insert(mq.clone(), Arc::new(LiteQueue::new(mq)));
    }

    fn remove(&self, mq: &MessageQueue) {
        let Some(q) = lock(&self.table).remove(mq) else { return };
        q.drop_queue();
        lock(&self.buffer).retain(|b| !Arc::ptr_eq(&b.q, &q));
        if self.inst.config.auto_commit() {
            self.commit(&[(mq.clone(), Arc::clone(&q))]);
        }
        let _ = self.store.persist(&self.inst, std::slice::from_ref(mq));
        self.store.remove(mq);
    }

    fn prepare(&self) {
        if *lock(&self.run) != Run::Running {
            return;
        }
        let parked: Vec<Arc<LiteQueue>> =
            lock(&self.table).values().filter(|q| lock(&q.state).parked).cloned().collect();
        for q in parked {
            if self.inst.signal.is_stopped() {
                return;
            }
            let (epoch, needs_offset) = {
                let st = lock(&q.state);
                (st.epoch, st.next_pull.is_none() && st.seek.is_none())
            };
            if needs_offset {
                let Ok(o) = rebalance::start_offset(&self.inst, &self.store, &q.mq) else { continue };
                let mut st = lock(&q.state);
                if st.epoch == epoch && st.next_pull.is_none() {
                    st.next_pull = Some(o);
                    st.consumed.get_or_insert(o);
                }
            }
            lock(&q.state).parked = false;
            self.pulls.schedule(q, Duration::ZERO);
        }
    }

    fn rebalanced(&self) -> BTreeSet<MessageQueue> {
        if *lock(&self.mode) != Mode::Subscribe {
            return BTreeSet::new();
        }
        lock(&self.table).keys().cloned().collect()
    }

    fn running_info(&self) -> ConsumerRunningInfo {
        let info = |mq: &MessageQueue, st: &QueueState| ProcessQueueInfo {
            commit_offset: st.consumed.or_else(|| self.store.read_memory(mq)).unwrap_or(-1),
            cached_msg_count: st.buffered_msgs as i32,
            cached_msg_size_in_mib: (st.buffered_bytes / (1024 * 1024)) as i32,
            droped: st.dropped,
            last_pull_timestamp: st.last_pull_ms,
            ..ProcessQueueInfo::default()
        };
        let infos = self.queues().into_iter().map(|(mq, q)| (mq.clone(), info(&mq, &lock(&q.state)))).collect();
        self.inst.running_info(admin::CONSUME_ACTIVELY, false, self.inst.config.pull_threads(), infos)
    }

    fn offsets(&self, topic: &str) -> BTreeMap<MessageQueue, i64> {
        let queues = self.queues().into_iter().filter(|(m, _)| m.topic == topic);
        queues.filter_map(|(m, q)| lock(&q.state).consumed.map(|o| (m, o))).collect()
    }

    fn reset_offsets(&self, topic: &str, table: &BTreeMap<MessageQueue, i64>) {
        let mut moved = Vec::new();
        for (mq, offset) in table.iter().filter(|(q, _)| q.topic == topic) {
            let q = lock(&self.table).get(mq).cloned();
            if let Some(q) = q {
                self.seek(&q, *offset);
            }
            self.store.update(mq, *offset, false);
            moved.push(mq.clone());
        }
        let _ = self.store.persist(&self.inst, &moved);
    }

    fn persist(&self) {
        if self.inst.config.auto_commit() {
            self.commit(&self.queues());
        }
        let queues: Vec<MessageQueue> = lock(&self.table).keys().cloned().collect();
        if let Err(e) = self.store.persist(&self.inst, &queues) {
            log_warn!("offset persist failed: group={} error={e}", self.inst.group);
        }
    }
}
