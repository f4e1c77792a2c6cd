//! [`PopConsumer`]: 5.x pop consumption; the semantics are in its docs.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::config::ConsumerConfig;
use super::instance::{lock, Instance};
use super::pull_service::{Fetch, Next, PullService, Puller};
use super::rebalance::{self, QueueOwner};
use super::{
    spawn, ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus, Gate, MessageListenerConcurrently, MessageSelector,
};
use crate::broker::{
    BrokerClient, PopRequest, PopResult, PopStatus, DEFAULT_POP_INVISIBLE_TIME, DEFAULT_POP_POLL_TIME,
};
use crate::error::{Error, Result};
use crate::net::fanout::invoke_all;
use crate::protocol::admin::{self, ConsumerRunningInfo};
use crate::protocol::body::{ConsumeFromWhere, ConsumeType};
use crate::protocol::pop::{self as wire, MessageQueueAssignment, JAVA_POP_DELAYS_SECS};
use crate::protocol::{MessageExt, MessageQueue, RemotingCommand, ResponseCode};
use crate::threads::join_until;
use crate::validate;

/// Java's `popThresholdForQueue`: messages of one assignment waiting for
/// the listener or their ack before popping it pauses.
pub const DEFAULT_POP_THRESHOLD: usize = 96;
/// Java's `popBatchNums`: most messages per pop.
pub const DEFAULT_POP_BATCH_SIZE: i32 = 32;
/// Shortest invisible time Java accepts (5 s).
pub const MIN_POP_INVISIBLE_TIME: Duration = Duration::from_secs(5);
/// Longest invisible time Java accepts (300 s).
pub const MAX_POP_INVISIBLE_TIME: Duration = Duration::from_secs(300);
/// Flow control: look at a full assignment again after this (Java: 50 ms).
const FLOW_CONTROL_DELAY: Duration = Duration::from_millis(50);
/// A pop answered "nothing" at once (without the long poll) is sent again
/// after this, so a broker that does not hold pops is not asked in a loop.
const EMPTY_POP_DELAY: Duration = Duration::from_secs(1);

/// Pop settings, with Java's defaults.
///
/// ```
/// use std::time::Duration;
/// use rocketmq_blocking::consumer::PopOptions;
///
/// let o = PopOptions::default().invisible_time(Duration::from_secs(30)).batch_size(16);
/// assert_eq!(o.get_invisible_time(), Duration::from_secs(30));
/// assert_eq!(PopOptions::default().get_retry_delays()[0], Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PopOptions {
    invisible_time: Duration,
    batch_size: i32,
    threshold: usize,
    poll_time: Duration,
    retry_delays: Vec<Duration>,
}

impl Default for PopOptions {
    fn default() -> Self {
        PopOptions {
            invisible_time: DEFAULT_POP_INVISIBLE_TIME,
            batch_size: DEFAULT_POP_BATCH_SIZE,
            threshold: DEFAULT_POP_THRESHOLD,
            poll_time: DEFAULT_POP_POLL_TIME,
            retry_delays: JAVA_POP_DELAYS_SECS.iter().map(|s| Duration::from_secs(*s)).collect(),
        }
    }
}

impl PopOptions {
    /// How long popped messages stay invisible to the rest of the group
    /// unless acked (Java's `popInvisibleTime`: 60 s, 5 s to 300 s).
    pub fn invisible_time(mut self, d: Duration) -> Self {
        self.invisible_time = d;
        self
    }
    /// Most messages per pop (Java's `popBatchNums`: 32, 1 to 32).
    pub fn batch_size(mut self, n: i32) -> Self {
        self.batch_size = n;
        self
    }
    /// Messages of one assignment waiting for the listener or their ack
    /// before popping it pauses (Java's `popThresholdForQueue`: 96).
    pub fn threshold(mut self, n: usize) -> Self {
        self.threshold = n;
        self
    }
    /// Long poll at the broker (15 s).
    pub fn poll_time(mut self, d: Duration) -> Self {
        self.poll_time = d;
        self
    }
    /// Delay before a `ReconsumeLater` message is delivered again, by delay
    /// level (level 0: the message's reconsume times; past the end: the
    /// last). Java's: 10 s, 30 s, 1 min, 2 min, ... 1 h, 2 h.
    pub fn retry_delays(mut self, delays: Vec<Duration>) -> Self {
        self.retry_delays = delays;
        self
    }
    /// The invisible time.
    pub fn get_invisible_time(&self) -> Duration {
        self.invisible_time
    }
    /// The retry delays.
    pub fn get_retry_delays(&self) -> &[Duration] {
        &self.retry_delays
    }

    fn check(&self) -> Result<()> {
        if !(MIN_POP_INVISIBLE_TIME..=MAX_POP_INVISIBLE_TIME).contains(&self.invisible_time) {
            return Err(Error::invalid("invisible time", "must be 5 s to 300 s (Java's popInvisibleTime range)"));
        }
        if !(1..=32).contains(&self.batch_size) {
            return Err(Error::invalid("pop batch size", "must be 1 to 32"));
        }
        if self.threshold == 0 {
            return Err(Error::invalid("pop threshold", "must be positive"));
        }
        if self.poll_time.is_zero() || self.poll_time > Duration::from_secs(60) {
            return Err(Error::invalid("poll time", "must be over 0 and at most 60 s"));
        }
        if self.retry_delays.is_empty() || self.retry_delays.iter().any(|d| d.is_zero()) {
            return Err(Error::invalid("retry delays", "need at least one, none zero"));
        }
        Ok(())
    }

    /// The retry delay for `level` (0: `reconsume_times`).
    fn retry_delay(&self, level: i32, reconsume_times: i32) -> Duration {
        let level = if level == 0 { reconsume_times } else { level }.max(0) as usize;
        self.retry_delays[level.min(self.retry_delays.len() - 1)]
    }
}

/// POP_MESSAGE, sent by the pull threads for a pop consumer.
pub(crate) struct Pops;

impl Fetch for Pops {
    type Request = PopRequest;
    type Reply = PopResult;
    const OPERATION: &'static str = "pop message";
    fn command(client: &BrokerClient, req: &PopRequest) -> Result<(RemotingCommand, Duration)> {
        client.pop_command(req)
    }
    fn reply(client: &BrokerClient, req: &PopRequest, resp: RemotingCommand) -> Result<PopResult> {
        client.pop_result(req, resp)
    }
}

/// One assignment: a queue, or a whole broker (queue id -1).
struct Assigned {
    /// Wire names.
    mq: MessageQueue,
    user_mq: MessageQueue,
    state: Mutex<AssignedState>,
}

#[derive(Default)]
struct AssignedState {
    dropped: bool,
    /// Popped messages not yet acked, changed or dead-lettered.
    waiting: usize,
}

impl Assigned {
    fn dropped(&self) -> bool {
        lock(&self.state).dropped
    }
    fn done(&self, n: usize) {
        let mut st = lock(&self.state);
        st.waiting = st.waiting.saturating_sub(n);
    }
}

enum Task {
    /// Call the listener, then ack or retry.
    Consume(Arc<Assigned>, Vec<MessageExt>),
    /// Ack without a listener call (filtered out by tag).
    Ack(Arc<Assigned>, Vec<MessageExt>),
    /// Past the max reconsume times: to the dead-letter topic.
    DeadLetter(Arc<Assigned>, Vec<MessageExt>),
}

/// Work for the consume threads; bounded by the pop threshold per assignment.
#[derive(Default)]
struct Tasks {
    state: Mutex<(VecDeque<Task>, bool)>,
    cond: Condvar,
}

impl Tasks {
    fn push(&self, t: Task) {
        let mut st = lock(&self.state);
        if !st.1 {
            st.0.push_back(t);
            self.cond.notify_one();
        }
    }
    fn stop(&self) {
        let mut st = lock(&self.state);
        st.1 = true;
        st.0.clear();
        self.cond.notify_all();
    }
    fn take(&self) -> Option<Task> {
        let mut st = lock(&self.state);
        loop {
            if st.1 {
                return None;
            }
            if let Some(t) = st.0.pop_front() {
                return Some(t);
            }
            st = self.cond.wait_timeout(st, Duration::from_secs(1)).unwrap_or_else(|p| p.into_inner()).0;
        }
    }
}

struct PopInner {
    inst: Arc<Instance>,
    options: PopOptions,
    listener: OnceLock<Arc<dyn MessageListenerConcurrently>>,
    table: Mutex<HashMap<MessageQueue, Arc<Assigned>>>,
    gate: Gate,
    tasks: Tasks,
    pops: PullService<Arc<Assigned>, Pops>,
}

enum RunState {
    Created,
    Running { threads: Vec<JoinHandle<()>> },
    Stopped,
}

/// A consumer to which the broker assigns messages (5.x pop consumption):
/// the same listener and subscriptions as a [`PushConsumer`](super::PushConsumer).
///
/// The broker hands out messages, not queues (RocketMQ 5.x
/// pop consumption), as Java's `DefaultMQPushConsumer` does when the group
/// is switched to pop (`mqadmin setConsumeMode -c <cluster> -g <group> -t
/// <topic> -m POP -q <n>`) and the consumer asks the broker for its
/// assignment (`setClientRebalance(false)`).
///
/// - **Assignment.** At start and every rebalance interval (and when a
///   broker says the group changed) the consumer asks a broker of each
///   topic for its assignment (QUERY_ASSIGNMENT). In pop mode with the
///   default share number every consumer gets every broker (queue id -1:
///   pop from all of its queues), so a group may have more consumers than
///   the topic has queues. `start` fails with [`Error::PopNotAvailable`]
///   when the broker does not know pop (4.x) or the group is in pull mode.
/// - **Pop.** The pull threads send POP_MESSAGE to each assigned broker
///   (long poll 15 s, [`PopOptions::batch_size`] messages, invisible for
///   [`PopOptions::invisible_time`]); a new group starts at the end of the
///   queues, or at their beginning with [`ConsumeFromWhere::FirstOffset`].
/// - **Ack.** `ConsumeSuccess` acks the batch (ACK_MESSAGE, one per
///   message, all at once). `ReconsumeLater` makes each message visible
///   again after Java's pop delay for its delay level (level 0: its
///   reconsume times; 10 s, 30 s, 60 s, ... 2 h, [`PopOptions::retry_delays`])
///   with CHANGE_MESSAGE_INVISIBLETIME; the broker then delivers it again
///   from the pop retry topic `%RETRY%<group>_<topic>` with its reconsume
///   times one higher. A message not acked at all (the consumer died) comes
///   back the same way after its invisible time.
/// - **Dead letters.** A message failing at [`ConsumerConfig::max_reconsume_times`]
///   (default 16), or with delay level -1, is sent to `%DLQ%<group>`
///   (CONSUMER_SEND_MSG_BACK with delay level -1, as the 5.x proxy does)
///   and then acked; one popped with more reconsume times than the max goes
///   there without a listener call. (Java's remoting push consumer acks and
///   drops such a message instead.)
/// - **Mode changes.** Later rebalances take whatever the broker assigns:
///   if the group is switched back to pull mode while this consumer runs,
///   it pops the queues the broker now assigns to it alone (Java's push
///   consumer would pull them). `start` checks the mode once.
/// - **Orderly pop** is not offered: Java's push consumer does not pop
///   orderly either (it rebalances orderly consumers itself).
/// - NOTIFICATION is not used (Java's push consumer does not use it; the
///   long poll of POP_MESSAGE does its work).
///
/// # Threads and limits
/// The same fixed set as a [`PushConsumer`](super::PushConsumer): one
/// `rocketmq-rebalance-<n>`, [`ConsumerConfig::pull_threads`]
/// `rocketmq-pull-<n>` (they send the pops without waiting; a long poll
/// parks at the broker), [`ConsumerConfig::consume_threads`]
/// `rocketmq-consume-<n>` (listener calls, then their acks). An assignment
/// is not popped while more than [`PopOptions::threshold`] (Java: 96) of
/// its messages wait for the listener or their ack; so at most threshold +
/// one pop answer (32 messages) per assignment are held, and assignments
/// are bounded by the route limits.
///
/// # Deadlines
/// `start`: one request timeout for the heartbeats, then one per topic for
/// the assignment. `shutdown`: as a push consumer's (no offsets to
/// persist); messages popped and not yet acked come back to the group after
/// their invisible time.
///
/// ```no_run
/// use rocketmq_blocking::consumer::{ConsumeConcurrentlyStatus, ConsumerConfig, PopConsumer, PopOptions};
/// use rocketmq_blocking::MessageExt;
///
/// // once: mqadmin setConsumeMode -c DefaultCluster -g billing -t Orders -m POP -q 8
/// let config = ConsumerConfig::builder().group("billing").namesrv_addr("127.0.0.1:9876").build()?;
/// let consumer = PopConsumer::with_options(config, PopOptions::default())?;
/// consumer.subscribe("Orders", "*")?;
/// consumer.register_concurrently(|msgs: &[MessageExt], _ctx: &mut _| {
///     for m in msgs {
///         println!("{} try {}", m.msg_id, m.reconsume_times);
///     }
///     ConsumeConcurrentlyStatus::ConsumeSuccess // acked; ReconsumeLater: back after a delay
/// })?;
/// consumer.start()?; // Error::PopNotAvailable on 4.x, or when the group is not in pop mode
/// std::thread::sleep(std::time::Duration::from_secs(60));
/// consumer.shutdown();
/// # Ok::<(), rocketmq_blocking::Error>(())
/// ```
pub struct PopConsumer {
    inner: Arc<PopInner>,
    run: Mutex<RunState>,
}

impl std::fmt::Debug for PopConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PopConsumer")
            .field("group", &self.inner.inst.group)
            .field("client_id", &self.inner.inst.client_id)
            .finish()
    }
}

impl PopConsumer {
    /// A pop consumer with Java's pop defaults (nothing runs before `start`).
    pub fn new(config: ConsumerConfig) -> Result<PopConsumer> {
        Self::with_options(config, PopOptions::default())
    }

    /// A pop consumer with these pop settings; bad settings are an
    /// [`Error::InvalidArgument`]. Pop is clustering only.
    pub fn with_options(config: ConsumerConfig, options: PopOptions) -> Result<PopConsumer> {
        options.check()?;
        let inst = Arc::new(Instance::new(config, ConsumeType::Push)?);
        if !inst.clustering() {
            return Err(Error::invalid("message model", "pop consumption is clustering only"));
        }
        let inner = PopInner {
            inst,
            options,
            listener: OnceLock::new(),
            table: Mutex::new(HashMap::new()),
            gate: Gate::default(),
            tasks: Tasks::default(),
            pops: PullService::new(),
        };
        Ok(PopConsumer { inner: Arc::new(inner), run: Mutex::new(RunState::Created) })
    }

    /// The settings.
    pub fn config(&self) -> &ConsumerConfig {
        &self.inner.inst.config
    }

    /// This consumer's client id.
    pub fn client_id(&self) -> &str {
        &self.inner.inst.client_id
    }

    /// Subscribes to `topic` (tag expression or SQL92); before `start`.
    pub fn subscribe(&self, topic: &str, selector: impl Into<MessageSelector>) -> Result<()> {
        validate::check_topic(topic)?;
        if !matches!(*lock(&self.run), RunState::Created) {
            return Err(Error::invalid("subscription", "subscribe before start"));
        }
        let inst = &self.inner.inst;
        inst.set_subscription(selector.into().subscription(&inst.config.with_namespace(topic))?);
        Ok(())
    }

    /// Registers the listener (called on the consume threads); before `start`.
    pub fn register_concurrently(&self, listener: impl MessageListenerConcurrently) -> Result<()> {
        if !matches!(*lock(&self.run), RunState::Created) {
            return Err(Error::invalid("listener", "register the listener before start"));
        }
        let listener: Arc<dyn MessageListenerConcurrently> = Arc::new(listener);
        self.inner.listener.set(listener).map_err(|_| Error::invalid("listener", "a listener is already registered"))
    }

    /// Starts: heartbeat, asks for the assignment of every topic (typed
    /// [`Error::PopNotAvailable`] when pop is not on), then the threads.
    pub fn start(&self) -> Result<()> {
        let mut run = lock(&self.run);
        match *run {
            RunState::Created => {}
            RunState::Running { .. } => return Err(Error::invalid("consumer", "already started")),
            RunState::Stopped => return Err(Error::NotRunning("pop consumer")),
        }
        let inner = &self.inner;
        let inst = &inner.inst;
        if inner.listener.get().is_none() {
            return Err(Error::invalid("listener", "register a listener before start"));
        }
        if inst.subscriptions().is_empty() {
            return Err(Error::invalid("subscription", "subscribe to a topic before start"));
        }
        inst.set_owner(Arc::downgrade(&(Arc::clone(inner) as Arc<dyn QueueOwner>)));
        let mut threads = Vec::new();
        let mut started = || -> Result<()> {
            inst.heartbeat_all(Instant::now() + inst.config.request_timeout());
            for sub in inst.subscriptions() {
                for a in inner.pop_assignment(&sub.topic)? {
                    inner.add(a);
                }
            }
            for _ in 0..inst.config.consume_threads() {
                let me = Arc::clone(inner);
                threads.push(spawn("consume", move || me.worker_loop())?);
            }
            threads.extend(inner.pops.start(Arc::clone(inner), inst.config.pull_threads())?);
            threads.push(rebalance::spawn_service(Arc::clone(inst), Arc::clone(inner) as Arc<dyn QueueOwner>)?);
            Ok(())
        };
        match started() {
            Ok(()) => {
                *run = RunState::Running { threads };
                Ok(())
            }
            Err(e) => {
                *run = RunState::Stopped;
                inner.stop(threads);
                Err(e)
            }
        }
    }

    /// What the brokers assign to this consumer now (topics without the
    /// namespace; queue id -1: every queue of that broker).
    pub fn assignment(&self) -> Vec<MessageQueue> {
        let mut v: Vec<MessageQueue> = lock(&self.inner.table).values().map(|a| a.user_mq.clone()).collect();
        v.sort();
        v
    }

    /// Stops: no listener call starts after this; waits up to the
    /// await-termination bound for running ones (and their acks), then
    /// unregisters (one request timeout), closes the connections and joins
    /// the threads within a second. Messages popped and not acked come back
    /// after their invisible time. Idempotent; also run by `Drop`.
    pub fn shutdown(&self) {
        let threads = {
            let mut run = lock(&self.run);
            match std::mem::replace(&mut *run, RunState::Stopped) {
                RunState::Running { threads } => threads,
                _ => return,
            }
        };
        self.inner.stop(threads);
    }
}

impl Drop for PopConsumer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl PopInner {
    /// Stops the threads (a running listener call gets the await-termination
    /// bound), forgets the assignments, unregisters, closes, joins.
    fn stop(&self, threads: Vec<JoinHandle<()>>) {
        let inst = &self.inst;
        inst.signal.stop();
        self.gate.close();
        self.tasks.stop();
        self.pops.stop();
        self.gate.wait_idle(inst.config.await_termination());
        for (_, a) in lock(&self.table).drain() {
            lock(&a.state).dropped = true;
        }
        inst.leave(&[], Instant::now() + inst.config.request_timeout());
        inst.close();
        join_until(threads, Instant::now() + Duration::from_secs(1));
    }

    /// Asks a broker of `topic` (wire name) which queues to pop.
    fn query_assignment(&self, topic: &str) -> Result<(String, Vec<MessageQueueAssignment>)> {
        let inst = &self.inst;
        let mut brokers: Vec<String> = inst.topic_queues(topic)?.into_iter().map(|q| q.broker_name).collect();
        brokers.dedup();
        let mut last = Error::TopicNotFound { topic: topic.to_string(), remark: "no broker serves it".into() };
        for name in brokers {
            let strategy = inst.config.allocate_strategy();
            let model = inst.config.message_model();
            let asked = inst.broker(&name).and_then(|c| {
                let v = c.query_assignment(topic, &inst.group, &inst.client_id, strategy.name(), model)?;
                Ok((c.addr().to_string(), v))
            });
            match asked {
                Ok(v) => return Ok(v),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// The assignment of `topic`, refused unless the broker assigns it for popping.
    fn pop_assignment(&self, topic: &str) -> Result<Vec<MessageQueue>> {
        let inst = &self.inst;
        let refuse = |addr: String, reason: String| Error::PopNotAvailable {
            topic: inst.config.without_namespace(topic).to_string(),
            group: inst.group.clone(),
            addr,
            reason,
        };
        let (addr, assignments) = match self.query_assignment(topic) {
            Ok(v) => v,
            Err(Error::System { code: ResponseCode::RequestCodeNotSupported, remark, addr, .. }) => {
                return Err(refuse(
                    addr,
                    format!("the broker does not know QUERY_ASSIGNMENT (RocketMQ 5.x needed): {remark}"),
                ))
            }
            Err(e) => return Err(e),
        };
        if let Some(a) = assignments.iter().find(|a| !a.is_pop()) {
            return Err(refuse(
                addr,
                format!(
                    "the group is in {} mode for the topic; switch it with `mqadmin setConsumeMode -c <cluster> -g {} -t {} -m POP -q <n>`",
                    a.mode, inst.group, topic
                ),
            ));
        }
        Ok(assignments.into_iter().filter_map(|a| a.message_queue).collect())
    }

    fn worker_loop(&self) {
        while let Some(task) = self.tasks.take() {
            let Some(pass) = self.gate.enter() else { return };
            match task {
                Task::Consume(a, msgs) => self.consume(&a, &msgs),
                Task::Ack(a, msgs) => {
                    self.ack(&a, &msgs);
                    a.done(msgs.len());
                }
                Task::DeadLetter(a, msgs) => {
                    for m in &msgs {
                        self.dead_letter(&a, m);
                    }
                    a.done(msgs.len());
                }
            }
            drop(pass);
        }
    }

    fn consume(&self, a: &Assigned, msgs: &[MessageExt]) {
        let Some(listener) = self.listener.get() else { return };
        let mut ctx = ConsumeConcurrentlyContext { queue: a.user_mq.clone(), delay_level: 0 };
        let status = catch_unwind(AssertUnwindSafe(|| listener.consume_message(msgs, &mut ctx)))
            .unwrap_or(ConsumeConcurrentlyStatus::ReconsumeLater);
        if status == ConsumeConcurrentlyStatus::ConsumeSuccess {
            self.ack(a, msgs);
        } else {
            let max = self.inst.config.max_reconsume_times();
            let (dead, later): (Vec<&MessageExt>, Vec<&MessageExt>) =
                msgs.iter().partition(|m| ctx.delay_level < 0 || m.reconsume_times >= max);
            for m in dead {
                self.dead_letter(a, m);
            }
            self.change_invisible(a, &later, ctx.delay_level);
        }
        a.done(msgs.len());
    }

    /// Sends one request per message to the broker of `a`, all at once,
    /// within one request timeout; returns how many succeeded.
    fn send_each(
        &self,
        a: &Assigned,
        msgs: &[&MessageExt],
        command: impl Fn(&wire::ExtraInfo, &MessageExt) -> RemotingCommand,
    ) -> usize {
        let Ok(client) = self.inst.broker_of(&a.mq) else { return 0 };
        let calls: Vec<_> =
            msgs.iter().filter_map(|m| wire::receipt(m).ok().map(|r| (client.connection(), command(&r, m)))).collect();
        let results = invoke_all(calls, self.inst.config.request_timeout());
        let ok =
            results.iter().filter(|r| r.as_ref().is_ok_and(|c| c.response_code() == ResponseCode::Success)).count();
        if ok < msgs.len() {
            log_warn!(
                "pop: {} of {} requests failed: group={} broker={}",
                msgs.len() - ok,
                msgs.len(),
                self.inst.group,
                a.mq.broker_name
            );
        }
        ok
    }

    fn ack(&self, a: &Assigned, msgs: &[MessageExt]) {
        let refs: Vec<&MessageExt> = msgs.iter().collect();
        self.send_each(a, &refs, |r, _| BrokerClient::ack_command(&self.inst.group, &a.mq.topic, r));
    }

    fn change_invisible(&self, a: &Assigned, msgs: &[&MessageExt], level: i32) {
        let group = &self.inst.group;
        self.send_each(a, msgs, |r, m| {
            let delay = self.options.retry_delay(level, m.reconsume_times).as_millis() as i64;
            RemotingCommand::request(crate::protocol::request::CHANGE_MESSAGE_INVISIBLETIME)
                .with_ext_fields(wire::change_invisible_header(group, &a.mq.topic, r, delay))
        });
    }

    /// To `%DLQ%<group>`, then acked; when the send fails the message is
    /// left unacked and comes back after its invisible time.
    fn dead_letter(&self, a: &Assigned, m: &MessageExt) {
        let inst = &self.inst;
        let Ok(receipt) = wire::receipt(m) else { return };
        let mut stored = m.clone();
        stored.topic = receipt.real_topic(&a.mq.topic, &inst.group);
        let max = inst.config.max_reconsume_times();
        let sent = inst
            .broker_of(&a.mq)
            .and_then(|c| c.send_message_back_to_broker(&a.mq.broker_name, &inst.group, &stored, -1, max));
        match sent {
            Ok(()) => self.ack(a, std::slice::from_ref(m)),
            Err(e) => log_warn!("pop: dead-letter send failed: group={} msg={} error={e}", inst.group, m.msg_id),
        }
    }
}

impl Puller<Pops> for PopInner {
    type Queue = Arc<Assigned>;

    fn next_pull(&self, a: &Arc<Assigned>) -> Next<PopRequest> {
        let st = lock(&a.state);
        if st.dropped {
            return Next::Idle;
        }
        if st.waiting > self.options.threshold {
            return Next::Wait(FLOW_CONTROL_DELAY);
        }
        drop(st);
        let inst = &self.inst;
        let (Some(sub), Ok(client)) = (inst.subscription(&a.mq.topic), inst.broker_of(&a.mq)) else {
            return Next::Wait(inst.config.pull_error_delay());
        };
        let mut req = PopRequest::new(inst.group.clone(), a.mq.clone());
        req.max_msgs = self.options.batch_size;
        req.invisible_time = self.options.invisible_time;
        req.poll_time = Some(self.options.poll_time);
        if inst.config.consume_from_where() == ConsumeFromWhere::FirstOffset {
            req.init_mode = wire::INIT_MODE_MIN;
        }
        req.expression_type = sub.expression_type;
        req.expression = sub.sub_string;
        Next::Pull(req, client)
    }

    fn pulled(
        &self,
        a: &Arc<Assigned>,
        _req: &PopRequest,
        result: Result<PopResult>,
        elapsed: Duration,
    ) -> Option<Duration> {
        if a.dropped() {
            return None;
        }
        let inst = &self.inst;
        let r = match result {
            Ok(r) => r,
            Err(e) => {
                log_warn!("pop failed: group={} queue={:?} error={e}", inst.group, a.mq);
                return Some(inst.config.pull_error_delay());
            }
        };
        if r.status == PopStatus::NoNewMsg || r.messages.is_empty() {
            return Some(if elapsed < self.options.poll_time / 2 { EMPTY_POP_DELAY } else { Duration::ZERO });
        }
        lock(&a.state).waiting += r.messages.len();
        let sub = inst.subscription(&a.mq.topic);
        let max = inst.config.max_reconsume_times();
        let (mut unwanted, mut dead, mut wanted) = (Vec::new(), Vec::new(), Vec::new());
        for mut m in r.messages {
            m.topic = inst.config.without_namespace(&m.topic).to_string();
            if sub.as_ref().is_some_and(|s| !s.matches_tag(m.tags())) {
                unwanted.push(m);
            } else if m.reconsume_times > max {
                dead.push(m);
            } else {
                wanted.push(m);
            }
        }
        if !unwanted.is_empty() {
            self.tasks.push(Task::Ack(Arc::clone(a), unwanted));
        }
        if !dead.is_empty() {
            self.tasks.push(Task::DeadLetter(Arc::clone(a), dead));
        }
        let size = inst.config.consume_batch_size().max(1);
        let mut it = wanted.into_iter().peekable();
        while it.peek().is_some() {
            self.tasks.push(Task::Consume(Arc::clone(a), it.by_ref().take(size).collect()));
        }
        Some(Duration::ZERO)
    }
}

impl QueueOwner for PopInner {
    fn held(&self, topic: &str) -> BTreeSet<MessageQueue> {
        lock(&self.table).keys().filter(|q| q.topic == topic).cloned().collect()
    }

    fn add(&self, mq: MessageQueue) {
        if self.inst.signal.is_stopped() {
            return;
        }
        let user_mq = self.inst.user_queue(&mq);
        let a = Arc::new(Assigned { mq: mq.clone(), user_mq, state: Mutex::new(AssignedState::default()) });
        if lock(&self.table).insert(mq, Arc::clone(&a)).is_none() {
            self.pops.schedule(a, Duration::ZERO);
        }
    }

    fn remove(&self, mq: &MessageQueue) {
        if let Some(a) = lock(&self.table).remove(mq) {
            lock(&a.state).dropped = true;
        }
    }

    fn prepare(&self) {}

    fn persist(&self) {}

    fn rebalanced(&self) -> BTreeSet<MessageQueue> {
        lock(&self.table).keys().cloned().collect()
    }

    fn running_info(&self) -> ConsumerRunningInfo {
        let inst = &self.inst;
        let mut properties = inst.base_properties(admin::CONSUME_PASSIVELY, false, inst.config.consume_threads());
        properties.insert("popInvisibleTime".into(), self.options.invisible_time.as_millis().to_string());
        properties.insert("popBatchNums".into(), self.options.batch_size.to_string());
        properties.insert("popThresholdForQueue".into(), self.options.threshold.to_string());
        ConsumerRunningInfo {
            properties,
            subscriptions: inst.subscriptions(),
            queues: BTreeMap::new(),
            status: inst.subscriptions().into_iter().map(|s| (s.topic, Default::default())).collect(),
        }
    }

    fn offsets(&self, _topic: &str) -> BTreeMap<MessageQueue, i64> {
        // The broker keeps a pop group's progress; the client has none.
        BTreeMap::new()
    }

    fn reset_offsets(&self, topic: &str, _table: &BTreeMap<MessageQueue, i64>) {
        log_info!("offset reset ignored by a pop consumer: group={} topic={topic}", self.inst.group);
    }

    fn desired(&self, _inst: &Instance, topic: &str) -> Option<BTreeSet<MessageQueue>> {
        match self.query_assignment(topic) {
            Ok((_, v)) => Some(v.into_iter().filter_map(|a| a.message_queue).collect()),
            Err(e) => {
                log_warn!("query assignment failed: group={} topic={topic} error={e}", self.inst.group);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pop_consumer_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<PopConsumer>();
    }

    #[test]
    fn options_are_checked_and_delays_follow_java() {
        assert!(PopOptions::default().check().is_ok());
        assert!(PopOptions::default().invisible_time(Duration::from_secs(1)).check().is_err());
        assert!(PopOptions::default().batch_size(33).check().is_err());
        assert!(PopOptions::default().retry_delays(Vec::new()).check().is_err());
        let o = PopOptions::default();
        assert_eq!(o.retry_delay(0, 0), Duration::from_secs(10));
        assert_eq!(o.retry_delay(0, 2), Duration::from_secs(60));
        assert_eq!(o.retry_delay(3, 0), Duration::from_secs(120));
        assert_eq!(o.retry_delay(99, 0), Duration::from_secs(7200));
    }
}
