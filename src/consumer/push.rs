//! [`PushConsumer`]: pulls in the background and calls a listener.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::config::{ConsumerConfig, DEFAULT_PUSH_SUSPEND, LOCK_MAX_LIVE};
use super::instance::{retry_topic, Instance};
use super::listener::{
    ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus, ConsumeOrderlyContext, ConsumeOrderlyStatus,
    MessageListenerConcurrently, MessageListenerOrderly,
};
use super::offset_store::OffsetStore;
use super::owner::{DirectReply, QueueOwner};
use super::process_queue::{DropReason, ProcessQueue};
use super::pull_service::{empty_pull_delay, Next, PullService, Puller};
use super::rebalance;
use super::selector::{prepare_messages, MessageSelector};
use super::work_queue::{Gate, Task, WorkQueue};
use crate::broker::{PullRequest, PullResult, PullStatus};
use crate::error::{Error, Result};
use crate::protocol::admin::{self, ConsumeMessageDirectlyResult, ConsumerRunningInfo};
use crate::protocol::body::{ConsumeType, SubscriptionData};
use crate::protocol::{now_ms, MessageExt, MessageQueue};
use crate::threads::{join_until, lock, spawn};
use crate::validate;

/// Flow control: wait this long before looking at a full queue again (Java: 50 ms).
const FLOW_CONTROL_DELAY: Duration = Duration::from_millis(50);
/// A failed send-back is consumed again locally after this (Java: 5 s).
const LOCAL_RETRY_DELAY: Duration = Duration::from_secs(5);
/// Orderly: wait before looking at a queue whose lock lapsed again.
const LOCK_RETRY_DELAY: Duration = Duration::from_secs(1);
/// Orderly: longest a consume thread stays with one queue before it lets
/// other queues have a turn (Java's MAX_TIME_CONSUME_CONTINUOUSLY).
const ORDERLY_SLICE: Duration = Duration::from_secs(60);

#[derive(Clone)]
enum Listener {
    Concurrently(Arc<dyn MessageListenerConcurrently>),
    Orderly(Arc<dyn MessageListenerOrderly>),
}

struct PushInner {
    inst: Arc<Instance>,
    store: OffsetStore,
    listener: OnceLock<Listener>,
    table: Mutex<HashMap<MessageQueue, Arc<ProcessQueue>>>,
    gate: Gate,
    work: WorkQueue,
    pulls: PullService<Arc<ProcessQueue>>,
    retry_topic: String,
    trace: Option<crate::trace::Tracer>,
}

enum RunState {
    Created,
    Running { threads: Vec<JoinHandle<()>> },
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
            trace: crate::trace::Tracer::for_consumer(&inst.config)?,
            retry_topic: retry_topic(&inst.group),
            inst,
            store,
            listener: OnceLock::new(),
            table: Mutex::new(HashMap::new()),
            gate: Gate::default(),
            work: WorkQueue::default(),
            pulls: PullService::new(),
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

    /// Stops consuming `topic`: the next rebalance, run at once, gives its
    /// queues up (offsets persisted, orderly locks released) and the next
    /// heartbeat, also at once, tells the brokers. Allowed before `start`.
    pub fn unsubscribe(&self, topic: &str) -> Result<()> {
        validate::check_topic(topic)?;
        let inst = &self.inner.inst;
        inst.remove_subscription(&inst.config.with_namespace(topic));
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
        if inner.listener.get().is_none() {
            return Err(Error::invalid("listener", "register a listener before start"));
        }
        if inst.subscriptions().is_empty() {
            return Err(Error::invalid("subscription", "subscribe to a topic before start"));
        }
        if inst.clustering() {
            inst.set_subscription(SubscriptionData::tag(inner.retry_topic.clone(), "*"));
        }
        if let Err(e) = inst.begin(Arc::downgrade(&(Arc::clone(inner) as Arc<dyn QueueOwner>))) {
            inst.close();
            *run = RunState::Stopped;
            return Err(e);
        }

        let mut threads = Vec::new();
        let mut started = || -> Result<()> {
            if let Some(t) = &inner.trace {
                t.start()?;
            }
            for _ in 0..inst.config.consume_threads() {
                let me = Arc::clone(inner);
                threads.push(spawn("consume", move || me.worker_loop())?);
            }
            threads.extend(inner.pulls.start(Arc::clone(inner), inst.config.pull_threads())?);
            threads.push(rebalance::spawn_service(Arc::clone(inst), Arc::clone(inner) as Arc<dyn QueueOwner>)?);
            Ok(())
        };
        match started() {
            Ok(()) => {
                *run = RunState::Running { threads };
                Ok(())
            }
            Err(e) => {
                inst.signal.stop();
                inner.work.stop();
                inner.pulls.stop();
                inst.close();
                join_until(threads, Instant::now() + Duration::from_secs(1));
                *run = RunState::Stopped;
                Err(e)
            }
        }
    }

    /// The trace's counters, when [`ConsumerConfig::enable_trace`] is on.
    pub fn trace_stats(&self) -> Option<crate::trace::TraceStats> {
        self.inner.trace.as_ref().map(|t| t.stats())
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

    /// The queues this consumer holds now (topics without the namespace).
    pub fn assignment(&self) -> Vec<MessageQueue> {
        let mut v: Vec<MessageQueue> = lock(&self.inner.table).values().map(|pq| pq.user_mq.clone()).collect();
        v.sort();
        v
    }

    /// Stops: no listener call starts after this begins; waits up to the
    /// await-termination bound for running ones; then, with one request
    /// timeout for all brokers together, persists offsets, releases orderly
    /// locks and unregisters; closes the connections and joins every thread
    /// (within a second; a listener call still running past the bound is
    /// left to finish on its own thread). Idempotent; also run by `Drop`.
    pub fn shutdown(&self) {
        let threads = {
            let mut run = lock(&self.run);
            match std::mem::replace(&mut *run, RunState::Stopped) {
                RunState::Running { threads } => threads,
                _ => return,
            }
        };
        let inner = &self.inner;
        let inst = &inner.inst;
        inst.signal.stop();
        inner.gate.close();
        inner.work.stop();
        inner.pulls.stop();
        inner.gate.wait_idle(inst.config.await_termination());
        let deadline = Instant::now() + inst.config.request_timeout();
        let queues: Vec<Arc<ProcessQueue>> = lock(&inner.table).drain().map(|(_, pq)| pq).collect();
        for pq in &queues {
            pq.drop_queue(DropReason::Shutdown);
        }
        let queues: Vec<MessageQueue> = queues.iter().map(|pq| pq.mq.clone()).collect();
        let _ = inner.store.persist_until(inst, &queues, deadline);
        let unlock = if inner.orderly_locks() { queues } else { Vec::new() };
        inst.leave(&unlock, deadline);
        inst.close();
        join_until(threads, Instant::now() + Duration::from_secs(1));
        if let Some(t) = &inner.trace {
            t.shutdown();
        }
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

    /// A task taken is a task run: the gate is entered before taking one,
    /// so shutdown (gate closed, then the work queue stopped) leaves only
    /// tasks never taken, which are the last ones of each queue; no message
    /// after an unprocessed one was processed, so a restart delivers nothing
    /// again. (Orderly tasks also stop between batches once the gate closed.)
    fn worker_loop(&self) {
        loop {
            let Some(pass) = self.gate.enter() else { return };
            let Some(task) = self.work.take() else { return };
            match task {
                Task::Batch { pq, msgs } => self.consume_concurrently(pq, msgs),
                Task::Queue(pq) => self.consume_orderly(pq),
                Task::Direct(msg, broker, reply) => self.consume_directly_now(*msg, &broker, reply),
            }
            drop(pass);
        }
    }

    fn consume_concurrently(&self, pq: Arc<ProcessQueue>, msgs: Vec<MessageExt>) {
        let Some(Listener::Concurrently(listener)) = self.listener.get() else { return };
        if pq.dropped().is_some() {
            return;
        }
        let mut ctx = ConsumeConcurrentlyContext { queue: pq.user_mq.clone(), delay_level: 0 };
        let call = || listener.consume_message(&msgs, &mut ctx);
        let status = crate::trace::listener_call(&self.trace, &msgs, ConsumeConcurrentlyStatus::ConsumeSuccess, call)
            .unwrap_or(ConsumeConcurrentlyStatus::ReconsumeLater);
        lock(&pq.state).last_consume_ms = now_ms();
        let mut again = Vec::new();
        if status == ConsumeConcurrentlyStatus::ReconsumeLater && self.inst.clustering() {
            for m in &msgs {
                if self.send_back(&pq, m, ctx.delay_level).is_err() {
                    let mut m = m.clone();
                    m.reconsume_times += 1;
                    again.push(m);
                }
            }
        }
        let done: Vec<i64> =
            msgs.iter().map(|m| m.queue_offset).filter(|o| !again.iter().any(|m| m.queue_offset == *o)).collect();
        if let Some(offset) = pq.remove(&done) {
            if pq.dropped().is_none() {
                self.store.update(&pq.mq, offset, true);
            }
        }
        if !again.is_empty() {
            self.work.push_later(Task::Batch { pq, msgs: again }, LOCAL_RETRY_DELAY);
        }
    }

    /// Sends a message back to its broker for a later retry (or the DLQ).
    fn send_back(&self, pq: &ProcessQueue, m: &MessageExt, delay_level: i32) -> Result<()> {
        let mut wire = m.clone();
        wire.topic = self.inst.config.with_namespace(&m.topic);
        let client = self.inst.broker_of(&pq.mq)?;
        // The broker name lets a 5.x proxy route the send-back (brokers ignore it).
        client.send_message_back_to_broker(
            &pq.mq.broker_name,
            &self.inst.group,
            &wire,
            delay_level,
            self.inst.config.max_reconsume_times(),
        )
    }

    /// Orderly: calls the listener batch by batch, in queue order, for up
    /// to [`ORDERLY_SLICE`]; then queues itself again so other queues get
    /// their turn. Only one task per queue exists at a time.
    fn consume_orderly(&self, pq: Arc<ProcessQueue>) {
        let Some(Listener::Orderly(listener)) = self.listener.get() else { return };
        let config = &self.inst.config;
        let locks = self.orderly_locks();
        let slice_end = Instant::now() + ORDERLY_SLICE;
        loop {
            if locks && !pq.lock_valid() {
                // The background thread locks it again; look back later.
                self.work.push_later(Task::Queue(pq), LOCK_RETRY_DELAY);
                return;
            }
            let Some(pass) = self.gate.enter() else { return };
            let Some(batch) = pq.begin_consume(config.consume_batch_size()) else { return };
            let mut ctx = ConsumeOrderlyContext { queue: pq.user_mq.clone(), suspend: None };
            let call = || listener.consume_message(&batch, &mut ctx);
            let status = crate::trace::listener_call(&self.trace, &batch, ConsumeOrderlyStatus::Success, call)
                .unwrap_or(ConsumeOrderlyStatus::SuspendCurrentQueueAMoment);
            let offsets: Vec<i64> = batch.iter().map(|m| m.queue_offset).collect();
            lock(&pq.state).last_consume_ms = now_ms();
            let done = match status {
                ConsumeOrderlyStatus::Success => true,
                // Java's checkReconsumeTimes: once every message of the batch
                // used up its deliveries, it goes to the DLQ and the queue moves on.
                ConsumeOrderlyStatus::SuspendCurrentQueueAMoment => {
                    self.inst.clustering()
                        && batch.iter().all(|m| m.reconsume_times >= config.max_reconsume_times())
                        && batch.iter().all(|m| self.send_back(&pq, m, -1).is_ok())
                }
            };
            if done {
                if let Some(offset) = pq.remove(&offsets) {
                    self.store.update(&pq.mq, offset, false);
                }
            } else {
                pq.count_redelivery(&offsets);
            }
            pq.end_consume();
            drop(pass);
            if pq.take_release_duty() {
                self.release(&pq.mq);
                return;
            }
            if !done {
                let pause = ctx.suspend.unwrap_or(config.suspend_current_queue_time());
                self.work.push_later(Task::Queue(pq), pause);
                return;
            }
            if Instant::now() >= slice_end {
                self.work.push(Task::Queue(pq));
                return;
            }
        }
    }

    /// Calls the listener with one message an operations tool sent
    /// (Java's `consumeMessageDirectly`: no retry, no offset change).
    fn consume_directly_now(&self, msg: MessageExt, broker_name: &str, reply: DirectReply) {
        let mut msg = msg;
        msg.topic = self.inst.config.without_namespace(&msg.topic).to_string();
        let queue = MessageQueue::new(msg.topic.clone(), broker_name, msg.queue_id);
        let started = Instant::now();
        let msgs = std::slice::from_ref(&msg);
        let (order, result) = match self.listener.get() {
            Some(Listener::Concurrently(l)) => {
                let mut ctx = ConsumeConcurrentlyContext { queue, delay_level: 0 };
                let r = catch_unwind(AssertUnwindSafe(|| l.consume_message(msgs, &mut ctx)));
                (
                    false,
                    r.map(|s| if s == ConsumeConcurrentlyStatus::ConsumeSuccess { "CR_SUCCESS" } else { "CR_LATER" }),
                )
            }
            Some(Listener::Orderly(l)) => {
                let mut ctx = ConsumeOrderlyContext { queue, suspend: None };
                let r = catch_unwind(AssertUnwindSafe(|| l.consume_message(msgs, &mut ctx)));
                (true, r.map(|s| if s == ConsumeOrderlyStatus::Success { "CR_SUCCESS" } else { "CR_LATER" }))
            }
            None => return,
        };
        reply(ConsumeMessageDirectlyResult {
            order,
            auto_commit: true,
            consume_result: result.unwrap_or("CR_THROW_EXCEPTION").to_string(),
            remark: String::new(),
            spent_time_mills: started.elapsed().as_millis() as i64,
        });
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

    /// A queue given up: persist and forget its offset, release its lock.
    fn release(&self, mq: &MessageQueue) {
        let _ = self.store.persist(&self.inst, std::slice::from_ref(mq));
        self.store.remove(mq);
        if self.orderly_locks() {
            let inst = &self.inst;
            let _ = inst
                .broker(&mq.broker_name)
                .and_then(|c| c.unlock_batch_mq(&inst.group, &inst.client_id, std::slice::from_ref(mq)));
        }
    }
}

impl Puller for PushInner {
    type Queue = Arc<ProcessQueue>;

    fn next_pull(&self, pq: &Arc<ProcessQueue>) -> Next {
        let inst = &self.inst;
        let config = &inst.config;
        let (offset, broker_id) = {
            let mut st = lock(&pq.state);
            if st.dropped.is_some() {
                return Next::Idle;
            }
            let locked = st.locked_at.is_some_and(|t| t.elapsed() < LOCK_MAX_LIVE);
            match st.next_offset {
                Some(o) if locked || !self.orderly_locks() => (o, st.suggested_broker),
                _ => {
                    st.parked = true;
                    return Next::Idle;
                }
            }
        };
        if pq.over_threshold(config.pull_threshold_for_queue(), config.pull_threshold_size_for_queue()) {
            return Next::Wait(FLOW_CONTROL_DELAY);
        }
        let Some(sub) = inst.subscription(&pq.mq.topic) else { return Next::Wait(config.pull_error_delay()) };
        inst.next_pull(&pq.mq, offset, broker_id, DEFAULT_PUSH_SUSPEND, &sub)
    }

    fn pulled(
        &self,
        pq: &Arc<ProcessQueue>,
        req: &PullRequest,
        result: Result<PullResult>,
        elapsed: Duration,
    ) -> Option<Duration> {
        let inst = &self.inst;
        let config = &inst.config;
        if pq.dropped().is_some() {
            return None;
        }
        let r = match result {
            Ok(r) => r,
            Err(e) => {
                log_debug!("pull failed: queue={:?} offset={} error={e}", pq.mq, req.offset);
                inst.pull_failed(&pq.mq, e);
                return Some(config.pull_error_delay());
            }
        };
        inst.pull_answered(&pq.mq);
        {
            let mut st = lock(&pq.state);
            st.next_offset = Some(r.next_begin_offset);
            st.suggested_broker = r.suggest_which_broker_id;
            st.last_pull_ms = now_ms();
        }
        match r.status {
            PullStatus::Found => {
                let sub = inst.subscription(&pq.mq.topic)?;
                let msgs =
                    prepare_messages(r.messages, &sub, &self.retry_topic, |t| config.without_namespace(t).to_string());
                if msgs.is_empty() {
                    self.correct_tags_offset(pq, r.next_begin_offset);
                } else if self.orderly() {
                    if pq.put(&msgs, true) {
                        self.work.push(Task::Queue(Arc::clone(pq)));
                    }
                } else {
                    pq.put(&msgs, false);
                    for chunk in msgs.chunks(config.consume_batch_size()) {
                        self.work.push(Task::Batch { pq: Arc::clone(pq), msgs: chunk.to_vec() });
                    }
                }
                Some(Duration::ZERO)
            }
            PullStatus::NoNewMsg | PullStatus::NoMatchedMsg => {
                self.correct_tags_offset(pq, r.next_begin_offset);
                Some(empty_pull_delay(req, &r, elapsed, config.pull_error_delay()))
            }
            PullStatus::OffsetIllegal => {
                log_warn!("offset moved: queue={:?} offset={} next={}", pq.mq, req.offset, r.next_begin_offset);
                // Java drops the queue and corrects the offset after 10 s;
                // here the offset is corrected at once and the next pull waits.
                self.store.update(&pq.mq, r.next_begin_offset, false);
                let _ = self.store.persist(inst, std::slice::from_ref(&pq.mq));
                Some(config.pull_error_delay())
            }
        }
    }
}

impl QueueOwner for PushInner {
    fn held(&self, topic: &str) -> BTreeSet<MessageQueue> {
        lock(&self.table).keys().filter(|q| q.topic == topic).cloned().collect()
    }

    fn add(&self, mq: MessageQueue) {
        if self.inst.signal.is_stopped() {
            return;
        }
        let pq = Arc::new(ProcessQueue::new(mq.clone(), self.inst.user_queue(&mq)));
        lock(&self.table).insert(mq, pq);
    }

    fn remove(&self, mq: &MessageQueue) {
        let Some(pq) = lock(&self.table).remove(mq) else { return };
        pq.drop_queue(DropReason::Rebalance);
        // Concurrently: at once. Orderly: here when no listener call runs on
        // the queue, else by the consume thread right after that call.
        if !self.orderly() || pq.take_release_duty() {
            self.release(mq);
        }
    }

    fn prepare(&self) {
        let parked: Vec<Arc<ProcessQueue>> =
            lock(&self.table).values().filter(|pq| lock(&pq.state).parked).cloned().collect();
        for pq in parked {
            if self.inst.signal.is_stopped() {
                return;
            }
            if self.orderly_locks() && !pq.lock_valid() && !self.lock_queue(&pq) {
                continue;
            }
            if lock(&pq.state).next_offset.is_none() {
                match rebalance::start_offset(&self.inst, &self.store, &pq.mq) {
                    Ok(o) => lock(&pq.state).next_offset = Some(o),
                    Err(_) => continue,
                }
            }
            let mut st = lock(&pq.state);
            st.parked = false;
            let consume = self.orderly() && !st.ordered.is_empty() && !st.consume_scheduled;
            st.consume_scheduled |= consume;
            drop(st);
            if consume {
                self.work.push(Task::Queue(Arc::clone(&pq)));
            }
            self.pulls.schedule(pq, Duration::ZERO);
        }
    }

    fn persist(&self) {
        let queues: Vec<MessageQueue> = lock(&self.table).keys().cloned().collect();
        if let Err(e) = self.store.persist(&self.inst, &queues) {
            log_warn!("offset persist failed: group={} error={e}", self.inst.group);
        }
    }

    fn rebalanced(&self) -> BTreeSet<MessageQueue> {
        lock(&self.table).keys().cloned().collect()
    }

    fn running_info(&self) -> ConsumerRunningInfo {
        let queues: Vec<Arc<ProcessQueue>> = lock(&self.table).values().cloned().collect();
        let infos =
            queues.iter().map(|pq| (pq.mq.clone(), pq.info(self.store.read_memory(&pq.mq).unwrap_or(-1)))).collect();
        let threads = self.inst.config.consume_threads();
        self.inst.running_info(admin::CONSUME_PASSIVELY, self.orderly(), threads, infos)
    }

    fn offsets(&self, topic: &str) -> BTreeMap<MessageQueue, i64> {
        let queues: Vec<MessageQueue> = lock(&self.table).keys().filter(|q| q.topic == topic).cloned().collect();
        queues.into_iter().filter_map(|q| self.store.read_memory(&q).map(|o| (q, o))).collect()
    }

    fn reset_offsets(&self, topic: &str, table: &BTreeMap<MessageQueue, i64>) {
        // Java: drop the topic's queues, store the new offsets, rebalance so
        // that they are taken again and start from there.
        let dropped: Vec<Arc<ProcessQueue>> = {
            let mut t = lock(&self.table);
            let keys: Vec<MessageQueue> = t.keys().filter(|q| q.topic == topic).cloned().collect();
            keys.iter().filter_map(|k| t.remove(k)).collect()
        };
        for pq in &dropped {
            pq.drop_queue(DropReason::Shutdown);
        }
        let mut queues = Vec::new();
        for (mq, offset) in table.iter().filter(|(q, _)| q.topic == topic) {
            self.store.update(mq, *offset, false);
            queues.push(mq.clone());
        }
        let _ = self.store.persist(&self.inst, &queues);
        for pq in &dropped {
            self.store.remove(&pq.mq);
        }
        self.inst.signal.request_rebalance();
    }

    fn consume_directly(&self, msg: MessageExt, broker_name: &str, reply: DirectReply) -> bool {
        if self.listener.get().is_none() {
            return false;
        }
        self.work.push(Task::Direct(Box::new(msg), broker_name.to_string(), reply));
        true
    }

    fn renew_locks(&self) {
        if !self.orderly_locks() {
            return;
        }
        let inst = &self.inst;
        let mut by_broker: BTreeMap<String, Vec<Arc<ProcessQueue>>> = BTreeMap::new();
        for pq in lock(&self.table).values() {
            by_broker.entry(pq.mq.broker_name.clone()).or_default().push(Arc::clone(pq));
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
}
