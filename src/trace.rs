//! Message traces, as the Java client's `AsyncTraceDispatcher` sends them:
//! records of sends (`Pub`), consumption (`SubBefore` / `SubAfter`) and
//! transaction ends (`EndTransaction`) in Java's format
//! ([`protocol::trace`](crate::protocol::trace)), batched into messages
//! on the trace topic (default `RMQ_SYS_TRACE_TOPIC`), keyed by the traced
//! message's id and keys so that `mqadmin queryMsgTraceById` and the
//! dashboard find them.
//!
//! Turned on per producer or consumer with `enable_trace(true)` on its
//! config builder (or `ROCKETMQ_PRODUCER_ENABLE_TRACE` /
//! `ROCKETMQ_CONSUMER_ENABLE_TRACE`); `trace_topic` picks another topic
//! (Java's `customizedTraceTopic`). Off (the default), nothing is created
//! and no thread starts.
//!
//! On, the producer or consumer owns one thread, `rocketmq-trace-<n>`, and a
//! queue of at most [`TRACE_QUEUE`] records: recording never blocks a send
//! or a listener call; a record arriving at a full queue is dropped and
//! counted ([`TraceStats::dropped`]). The thread sends a batch when
//! [`TRACE_BATCH`] records wait or the oldest has waited
//! [`TRACE_FLUSH_INTERVAL`], one trace message per traced topic and batch
//! (split past [`TRACE_MAX_MESSAGE_BYTES`]), round robin over the trace
//! topic's queues (created on first send from the brokers' template topic
//! when the brokers do not have it, as Java's trace producer does), with a
//! producer of its own (group `_INNER_TRACE_PRODUCER-<group>-<PRODUCE|CONSUME>-<n>`,
//! send timeout 5 s, connections of its own). At shutdown it sends what
//! waits within [`TRACE_SHUTDOWN_FLUSH`]; the rest is counted as dropped.
//!
//! Read traces back with [`query_traces`] (what `rmq trace --msg-id` does).
//!
//! ```no_run
//! use rocketmq_blocking::producer::{Producer, ProducerConfig};
//! use rocketmq_blocking::trace::{query_traces, DEFAULT_TRACE_TOPIC};
//! use rocketmq_blocking::{ClientConfig, Message, NameServerClient};
//!
//! let config = ProducerConfig::builder().group("pg").namesrv_addr("127.0.0.1:9876").enable_trace(true).build()?;
//! let producer = Producer::new(config)?;
//! producer.start()?;
//! let sent = producer.send(&Message::new("Orders", "order #1"))?;
//! producer.shutdown(); // sends the records still waiting
//! let ns = NameServerClient::new("127.0.0.1:9876")?;
//! for hop in query_traces(&ns, &ClientConfig::default(), DEFAULT_TRACE_TOPIC, &sent.msg_id, 64)? {
//!     println!("{} by {} at {}", hop.record.trace_type.name(), hop.record.group, hop.record.timestamp_ms);
//! }
//! # Ok::<(), rocketmq_blocking::Error>(())
//! ```

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::broker::SendResult;
use crate::error::Result;
use crate::producer::{Producer, ProducerConfig};
use crate::protocol::message::property;
use crate::protocol::trace::{encode, index_keys, MessageType, TraceBean, TraceContext, TraceType, DEFAULT_REGION};
use crate::protocol::{Message, MessageExt};
use crate::threads::{join_until, lock, spawn};

pub use crate::protocol::trace::DEFAULT_TRACE_TOPIC;

/// Records waiting for the trace thread (Java's `traceContextQueue`): 2,048;
/// more are dropped and counted.
pub const TRACE_QUEUE: usize = 2048;
/// Records per batch (Java's `traceMsgBatchNum`): 10.
pub const TRACE_BATCH: usize = 10;
/// A batch smaller than [`TRACE_BATCH`] is sent once its oldest record
/// waited this long (Java's `flushTraceInterval`): 5 s.
pub const TRACE_FLUSH_INTERVAL: Duration = Duration::from_secs(5);
/// A trace message is sent once its body reaches this size (Java's trace
/// producer `maxMessageSize`): 128,000 bytes.
pub const TRACE_MAX_MESSAGE_BYTES: usize = 128_000;
/// Send timeout of the trace producer (Java's): 5 s.
pub const TRACE_SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// Time the trace thread gets at shutdown to send what waits: 400 ms (the
/// trace producer's unregister then takes at most 500 ms, so the whole
/// stop stays within a second).
pub const TRACE_SHUTDOWN_FLUSH: Duration = Duration::from_millis(400);

/// Counters of a producer's or consumer's trace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TraceStats {
    /// Records waiting for the trace thread.
    pub queued: usize,
    /// Records sent to the trace topic (acknowledged by a broker).
    pub sent: u64,
    /// Records dropped: the queue was full, or shutdown came first.
    pub dropped: u64,
    /// Records whose trace message could not be sent.
    pub failed: u64,
}

/// Whose records: the part of the trace producer's group Java names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TraceKind {
    Produce,
    Consume,
}

/// What a tracer needs from its producer's or consumer's config.
pub(crate) struct TraceSettings<'a> {
    pub kind: TraceKind,
    /// The user's group, without the namespace.
    pub group: &'a str,
    /// Trace topic, without the namespace.
    pub topic: &'a str,
    pub namesrv_addr: &'a str,
    pub namespace: Option<&'a str>,
    pub route_limits: crate::protocol::RouteLimits,
    #[cfg(feature = "acl")]
    pub credentials: Option<&'a crate::acl::Credentials>,
}

/// `Ok(None)` when the config `$c` (producer or consumer: same getters)
/// leaves tracing off, else its tracer.
macro_rules! tracer_for {
    ($c:expr, $kind:expr) => {{
        let c = $c;
        if !c.enable_trace() {
            return Ok(None);
        }
        Tracer::new(TraceSettings {
            kind: $kind,
            group: c.group(),
            topic: c.trace_topic(),
            namesrv_addr: c.namesrv_addr(),
            namespace: c.namespace(),
            route_limits: c.route_limits(),
            #[cfg(feature = "acl")]
            credentials: c.credentials(),
        })
        .map(Some)
    }};
}

static TRACER_SEQ: AtomicUsize = AtomicUsize::new(1);

#[derive(Default)]
struct Queue {
    records: VecDeque<TraceContext>,
    stop: bool,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    sent: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
}

/// A producer's or consumer's trace: the queue, the thread, the trace producer.
pub(crate) struct Tracer {
    shared: Arc<Shared>,
    producer: Arc<Producer>,
    thread: Mutex<Option<JoinHandle<()>>>,
    group: String,
    topic: String,
    namespace: Option<String>,
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Reads `<prefix>ENABLE_TRACE` (`true` / `false`) and `<prefix>TRACE_TOPIC`
/// for a config's `env_overrides`.
pub(crate) fn env_overrides(
    prefix: &str,
    get: &dyn Fn(&str) -> Option<String>,
    enable: &mut bool,
    topic: &mut Option<String>,
) -> Result<()> {
    let name = format!("{prefix}ENABLE_TRACE");
    if let Some(v) = get(&name) {
        *enable = crate::env::parse_env(&name, &v.to_ascii_lowercase())?;
    }
    let name = format!("{prefix}TRACE_TOPIC");
    if let Some(v) = get(&name) {
        crate::validate::check_topic(&v).map_err(|e| crate::env::env_error(&name, &v, e.to_string()))?;
        *topic = Some(v);
    }
    Ok(())
}

/// A consumption in progress: its `SubBefore` record, kept for the `SubAfter`.
pub(crate) struct ConsumeTrace {
    before: TraceContext,
    started: Instant,
}

impl Tracer {
    /// The tracer of a producer whose config enables it.
    pub(crate) fn for_producer(c: &ProducerConfig) -> Result<Option<Tracer>> {
        tracer_for!(c, TraceKind::Produce)
    }

    /// The tracer of a consumer whose config enables it.
    pub(crate) fn for_consumer(c: &crate::ConsumerConfig) -> Result<Option<Tracer>> {
        tracer_for!(c, TraceKind::Consume)
    }

    /// A tracer; no thread runs before [`start`](Self::start).
    pub(crate) fn new(s: TraceSettings<'_>) -> Result<Tracer> {
        let kind = match s.kind {
            TraceKind::Produce => "PRODUCE",
            TraceKind::Consume => "CONSUME",
        };
        let seq = TRACER_SEQ.fetch_add(1, Ordering::Relaxed);
        let trace_group = format!("{}-{}-{kind}-{seq}", crate::protocol::trace::TRACE_GROUP_PREFIX, s.group);
        let mut b = ProducerConfig::builder()
            .group(trace_group)
            .namesrv_addr(s.namesrv_addr)
            .send_timeout(TRACE_SEND_TIMEOUT)
            .route_limits(s.route_limits);
        if let Some(ns) = s.namespace {
            b = b.namespace(ns);
        }
        #[cfg(feature = "acl")]
        if let Some(c) = s.credentials {
            b = b.credentials(c.clone());
        }
        Ok(Tracer {
            shared: Arc::default(),
            producer: Arc::new(Producer::new(b.build()?)?),
            thread: Mutex::new(None),
            group: s.group.to_string(),
            topic: s.topic.to_string(),
            namespace: s.namespace.map(str::to_string),
        })
    }

    /// Starts the trace thread (the trace producer opens its connections
    /// when it first sends).
    pub(crate) fn start(&self) -> Result<()> {
        let mut thread = lock(&self.thread);
        if thread.is_some() {
            return Ok(());
        }
        self.producer.start_without_threads()?;
        let (shared, producer, topic) = (Arc::clone(&self.shared), Arc::clone(&self.producer), self.topic.clone());
        *thread = Some(spawn("trace", move || run(&shared, &producer, &topic))?);
        Ok(())
    }

    /// Sends what waits (within [`TRACE_SHUTDOWN_FLUSH`]), stops the thread
    /// and the trace producer; within a second.
    pub(crate) fn shutdown(&self) {
        let handle = lock(&self.thread).take();
        let start = Instant::now();
        lock(&self.shared.queue).stop = true;
        self.shared.wake.notify_all();
        if let Some(h) = &handle {
            while !h.is_finished() && start.elapsed() < TRACE_SHUTDOWN_FLUSH + Duration::from_millis(50) {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        // A send still in flight fails at once when the connections close.
        if handle.is_some() || self.producer.is_running() {
            self.producer.shutdown();
        }
        join_until(handle.into_iter().collect(), start + Duration::from_secs(1));
        let left = std::mem::take(&mut lock(&self.shared.queue).records);
        self.shared.dropped.fetch_add(left.len() as u64, Ordering::Relaxed);
    }

    /// The counters.
    pub(crate) fn stats(&self) -> TraceStats {
        TraceStats {
            queued: lock(&self.shared.queue).records.len(),
            sent: self.shared.sent.load(Ordering::Relaxed),
            dropped: self.shared.dropped.load(Ordering::Relaxed),
            failed: self.shared.failed.load(Ordering::Relaxed),
        }
    }

    fn append(&self, ctx: TraceContext) {
        let mut q = lock(&self.shared.queue);
        if q.stop || q.records.len() >= TRACE_QUEUE {
            drop(q);
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        q.records.push_back(ctx);
        if q.records.len() >= TRACE_BATCH {
            self.shared.wake.notify_one();
        }
    }

    fn user_topic(&self, topic: &str) -> String {
        crate::namespace::unwrap(self.namespace.as_deref(), topic).to_string()
    }

    fn is_trace_topic(&self, topic: &str) -> bool {
        self.user_topic(topic).starts_with(&self.topic)
    }

    /// Records a send that a broker answered (Java's `SendMessageTraceHookImpl`):
    /// `msg` as sent, `broker_addr` where, `started` when the attempt began.
    pub(crate) fn on_send(&self, msg: &Message, broker_addr: &str, result: &SendResult, started: Instant) {
        if self.is_trace_topic(msg.topic()) || !result.trace_on {
            return;
        }
        let started_ms = now_ms() - started.elapsed().as_millis() as i64;
        let msg_type = if msg.property(property::TRANSACTION_PREPARED) == Some("true") {
            MessageType::TransHalf
        } else if msg.property("__STARTDELIVERTIME").is_some() || msg.property(property::DELAY_TIME_LEVEL).is_some() {
            MessageType::Delay
        } else {
            MessageType::Normal
        };
        let mut ctx = TraceContext::new(TraceType::Pub, started_ms, self.group.clone());
        ctx.cost_ms = (now_ms() - started_ms).clamp(0, i32::MAX as i64) as i32;
        ctx.success = result.status == crate::broker::SendStatus::SendOk;
        ctx.region_id = result.region_id.clone();
        ctx.beans.push(TraceBean {
            topic: self.user_topic(msg.topic()),
            msg_id: result.msg_id.clone(),
            offset_msg_id: result.offset_msg_id.clone(),
            tags: msg.tags().map(str::to_string),
            keys: msg.property(property::KEYS).map(str::to_string),
            store_host: broker_addr.to_string(),
            body_length: msg.body().len() as i32,
            msg_type,
            ..TraceBean::default()
        });
        self.append(ctx);
    }

    /// Records a transaction's end (Java's `EndTransactionTraceHookImpl`).
    /// `state` is Java's name: `COMMIT_MESSAGE`, `ROLLBACK_MESSAGE`, `UNKNOW`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_end_transaction(
        &self,
        topic: &str,
        tags: Option<&str>,
        keys: Option<&str>,
        region: Option<&str>,
        msg_id: &str,
        broker_addr: &str,
        transaction_id: Option<&str>,
        state: &str,
        from_check: bool,
    ) {
        if self.is_trace_topic(topic) {
            return;
        }
        let mut ctx = TraceContext::new(TraceType::EndTransaction, now_ms(), self.group.clone());
        ctx.region_id = region.filter(|r| !r.is_empty()).unwrap_or(DEFAULT_REGION).to_string();
        ctx.beans.push(TraceBean {
            topic: self.user_topic(topic),
            msg_id: msg_id.to_string(),
            tags: tags.map(str::to_string),
            keys: keys.map(str::to_string),
            store_host: broker_addr.to_string(),
            msg_type: MessageType::TransCommit,
            transaction_id: transaction_id.map(str::to_string),
            transaction_state: state.to_string(),
            from_transaction_check: from_check,
            ..TraceBean::default()
        });
        self.append(ctx);
    }

    /// Records the start of a listener call (Java's
    /// `ConsumeMessageTraceHookImpl.consumeMessageBefore`); `None` when no
    /// message of the batch is traced (the broker turned tracing off).
    pub(crate) fn consume_before(&self, msgs: &[MessageExt]) -> Option<ConsumeTrace> {
        let mut ctx = TraceContext::new(TraceType::SubBefore, now_ms(), self.group.clone());
        ctx.request_id = crate::protocol::message::new_unique_id();
        let mut region = None;
        for m in msgs.iter().filter(|m| m.property(property::TRACE_SWITCH) != Some("false")) {
            region = m.property(property::MSG_REGION).map(str::to_string).or(region);
            ctx.beans.push(TraceBean {
                topic: self.user_topic(&m.topic),
                msg_id: m.msg_id.clone(),
                tags: m.tags().map(str::to_string),
                keys: m.property(property::KEYS).map(str::to_string),
                body_length: m.store_size,
                retry_times: m.reconsume_times,
                ..TraceBean::default()
            });
        }
        if ctx.beans.is_empty() {
            return None;
        }
        // 5.x brokers put a region on every message; 4.x brokers only when
        // they run send hooks. Java 5.x then sends no record (it skips a
        // context without a region) and Java 4.9.7 writes `null`; here the
        // record is kept with the default region, so 4.x consumption is
        // traced too.
        ctx.region_id = region.unwrap_or_else(|| DEFAULT_REGION.to_string());
        self.append(ctx.clone());
        Some(ConsumeTrace { before: ctx, started: Instant::now() })
    }

    /// Records the end of a listener call: `success` as Java (the status
    /// was success), `code` Java's `ConsumeReturnType` ordinal.
    pub(crate) fn consume_after(&self, trace: ConsumeTrace, success: bool, code: i32) {
        let ConsumeTrace { before, started } = trace;
        let n = before.beans.len().max(1) as u128;
        let mut ctx = TraceContext::new(TraceType::SubAfter, now_ms(), before.group);
        ctx.region_id = before.region_id;
        ctx.request_id = before.request_id;
        ctx.success = success;
        ctx.cost_ms = (started.elapsed().as_millis() / n).min(i32::MAX as u128) as i32;
        ctx.context_code = code;
        ctx.beans = before.beans;
        self.append(ctx);
    }
}

/// Calls a listener, catching a panic (`Err`), between a `SubBefore` and a
/// `SubAfter` record when `tracer` is on: success when it returns
/// `success`; the record's code is Java's `ConsumeReturnType`: 0 success,
/// 4 failed, 2 exception (a panic). Without a tracer only the call.
pub(crate) fn listener_call<S: PartialEq>(
    tracer: &Option<Tracer>,
    msgs: &[MessageExt],
    success: S,
    call: impl FnOnce() -> S,
) -> std::thread::Result<S> {
    let traced = tracer.as_ref().and_then(|t| t.consume_before(msgs));
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(call));
    if let (Some(t), Some(traced)) = (tracer, traced) {
        let (ok, code) = match &outcome {
            Ok(s) if *s == success => (true, 0),
            Ok(_) => (false, 4),
            Err(_) => (false, 2),
        };
        t.consume_after(traced, ok, code);
    }
    outcome
}

impl Drop for Tracer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The trace thread: batches as Java's `AsyncTraceDispatcher` does.
fn run(shared: &Shared, producer: &Producer, topic: &str) {
    let mut last_flush = Instant::now();
    loop {
        let batch = {
            let mut q = lock(&shared.queue);
            loop {
                if q.stop {
                    break None;
                }
                let due = last_flush + TRACE_FLUSH_INTERVAL;
                let now = Instant::now();
                if q.records.len() >= TRACE_BATCH || (!q.records.is_empty() && now >= due) {
                    let n = q.records.len().min(TRACE_BATCH);
                    break Some(q.records.drain(..n).collect::<Vec<_>>());
                }
                let wait = if q.records.is_empty() { TRACE_FLUSH_INTERVAL } else { due - now };
                q = shared.wake.wait_timeout(q, wait).unwrap_or_else(|p| p.into_inner()).0;
            }
        };
        match batch {
            Some(batch) => {
                send_batch(shared, producer, topic, batch);
                last_flush = Instant::now();
            }
            None => break,
        }
    }
    // Shutdown: send what waits, within the flush bound.
    let deadline = Instant::now() + TRACE_SHUTDOWN_FLUSH;
    while Instant::now() < deadline {
        let batch: Vec<TraceContext> = {
            let mut q = lock(&shared.queue);
            let n = q.records.len().min(TRACE_BATCH);
            q.records.drain(..n).collect()
        };
        if batch.is_empty() {
            return;
        }
        send_batch(shared, producer, topic, batch);
    }
}

/// One trace message per traced topic, split past [`TRACE_MAX_MESSAGE_BYTES`].
fn send_batch(shared: &Shared, producer: &Producer, topic: &str, batch: Vec<TraceContext>) {
    let mut by_topic: BTreeMap<String, Vec<TraceContext>> = BTreeMap::new();
    for ctx in batch {
        let t = ctx.beans.first().map(|b| b.topic.clone()).unwrap_or_default();
        by_topic.entry(t).or_default().push(ctx);
    }
    for records in by_topic.into_values() {
        for (body, keys, n) in trace_messages(&records) {
            let msg = Message::new(topic, body).with_keys(keys);
            let counter = if producer.send(&msg).is_ok() { &shared.sent } else { &shared.failed };
            counter.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
}

/// The bodies, keys and record counts of the trace messages for `records`
/// (one traced topic), as Java's `flushData` cuts them.
pub(crate) fn trace_messages(records: &[TraceContext]) -> Vec<(String, Vec<String>, usize)> {
    let mut out = Vec::new();
    let (mut body, mut keys, mut seen, mut n) = (String::new(), Vec::new(), HashSet::new(), 0);
    for ctx in records {
        body.push_str(&encode(ctx));
        for k in index_keys(ctx) {
            if seen.insert(k.clone()) {
                keys.push(k);
            }
        }
        n += 1;
        if body.len() >= TRACE_MAX_MESSAGE_BYTES {
            out.push((std::mem::take(&mut body), std::mem::take(&mut keys), n));
            seen.clear();
            n = 0;
        }
    }
    if n > 0 {
        out.push((body, keys, n));
    }
    out
}

/// One hop of a message's trace, as read back by [`query_traces`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceHop {
    /// The record.
    pub record: TraceContext,
    /// The host that sent the trace message (Java's `TraceView.clientHost`).
    pub client_host: String,
    /// Where the trace message is stored (`<broker address>`).
    pub trace_store_host: String,
}

/// Reads the trace of the message `msg_id` from `trace_topic`, as `mqadmin
/// queryMsgTraceById` does: a key query (QUERY_MESSAGE) for the id on every
/// broker of the trace topic's route, then the records naming that id,
/// oldest first. At most `max_messages` trace messages per broker (Java's
/// default 64); every request within `client`'s request timeout.
pub fn query_traces(
    namesrv: &crate::NameServerClient,
    client: &crate::ClientConfig,
    trace_topic: &str,
    msg_id: &str,
    max_messages: i32,
) -> Result<Vec<TraceHop>> {
    let route = namesrv.topic_route(trace_topic)?;
    let mut hops = Vec::new();
    for broker in &route.broker_datas {
        let Some(addr) = broker.broker_addrs.get(&0).or_else(|| broker.broker_addrs.values().next()) else {
            continue;
        };
        let c = crate::BrokerClient::connect(addr, client)?;
        for m in c.query_messages_by_key(trace_topic, msg_id, max_messages, 0, i64::MAX)? {
            let body = String::from_utf8_lossy(&m.body).into_owned();
            for record in crate::protocol::trace::decode(&body)? {
                if record.beans.first().is_some_and(|b| b.msg_id == msg_id) {
                    hops.push(TraceHop {
                        record,
                        client_host: m.born_host.to_string(),
                        trace_store_host: addr.clone(),
                    });
                }
            }
        }
    }
    hops.sort_by_key(|h| (h.record.timestamp_ms, h.record.trace_type as u8));
    Ok(hops)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_messages_split_past_the_size_and_dedupe_keys() {
        let mut ctx = TraceContext::new(TraceType::Pub, 1, "g");
        ctx.beans.push(TraceBean {
            topic: "T".into(),
            msg_id: "M".into(),
            keys: Some("a b".into()),
            ..Default::default()
        });
        let one = encode(&ctx).len();
        let records = vec![ctx; TRACE_MAX_MESSAGE_BYTES / one + 2];
        let msgs = trace_messages(&records);
        assert_eq!(msgs.len(), 2);
        assert!(msgs[0].0.len() >= TRACE_MAX_MESSAGE_BYTES && msgs[0].0.len() < TRACE_MAX_MESSAGE_BYTES + one);
        assert_eq!(msgs[0].1, ["M", "a", "b"]);
        assert_eq!(msgs[0].2 + msgs[1].2, records.len());
    }

    #[test]
    fn env_overrides_turn_tracing_on_and_refuse_bad_values() {
        use crate::{ConsumerConfig, ProducerConfig};
        let env = |k: &str, v: &str| {
            let (k, v) = (k.to_string(), v.to_string());
            move |name: &str| (name == k).then(|| v.clone())
        };
        let p = ProducerConfig::builder().group("pg").namesrv_addr("127.0.0.1:9876");
        let on = p.clone().env_overrides_from(env("ROCKETMQ_PRODUCER_ENABLE_TRACE", "TRUE")).unwrap().build().unwrap();
        assert!(on.enable_trace());
        let t = p.clone().env_overrides_from(env("ROCKETMQ_PRODUCER_TRACE_TOPIC", "MyTrace")).unwrap().build().unwrap();
        assert_eq!((t.enable_trace(), t.trace_topic()), (false, "MyTrace"));
        let bad = p.env_overrides_from(env("ROCKETMQ_PRODUCER_ENABLE_TRACE", "sometimes"));
        assert!(matches!(bad, Err(crate::Error::InvalidEnv { .. })), "{bad:?}");
        let c = ConsumerConfig::builder().group("cg").namesrv_addr("127.0.0.1:9876");
        let bad = c.clone().env_overrides_from(env("ROCKETMQ_CONSUMER_TRACE_TOPIC", "bad topic!"));
        assert!(matches!(bad, Err(crate::Error::InvalidEnv { .. })), "{bad:?}");
        let on = c.env_overrides_from(env("ROCKETMQ_CONSUMER_ENABLE_TRACE", "true")).unwrap().build().unwrap();
        assert_eq!((on.enable_trace(), on.trace_topic()), (true, DEFAULT_TRACE_TOPIC));
    }

    #[test]
    fn shutdown_stops_within_a_second_while_a_send_hangs() {
        // A name server that accepts and never answers: the trace thread's
        // first send waits in the route lookup (its timeout is 5 s).
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = silent.local_addr().unwrap().to_string();
        let held = std::thread::spawn(move || silent.accept().map(|c| c.0));
        let t = Tracer::new(TraceSettings {
            kind: TraceKind::Consume,
            group: "g",
            topic: DEFAULT_TRACE_TOPIC,
            namesrv_addr: &addr,
            namespace: None,
            route_limits: Default::default(),
            #[cfg(feature = "acl")]
            credentials: None,
        })
        .unwrap();
        t.start().unwrap();
        let mut ctx = TraceContext::new(TraceType::SubBefore, 1, "g");
        ctx.beans.push(TraceBean::default());
        for _ in 0..TRACE_BATCH + 5 {
            t.append(ctx.clone());
        }
        let _conn = held.join().unwrap().unwrap(); // the thread is in its send now
        let t0 = Instant::now();
        t.shutdown();
        assert!(t0.elapsed() < Duration::from_millis(1500), "{:?}", t0.elapsed());
        let s = t.stats();
        assert_eq!(s.sent, 0);
        assert_eq!(s.failed + s.dropped, (TRACE_BATCH + 5) as u64, "{s:?}");
    }

    #[test]
    fn a_full_queue_drops_and_counts_and_nothing_runs_before_start() {
        let t = Tracer::new(TraceSettings {
            kind: TraceKind::Produce,
            group: "g",
            topic: DEFAULT_TRACE_TOPIC,
            namesrv_addr: "127.0.0.1:1",
            namespace: None,
            route_limits: Default::default(),
            #[cfg(feature = "acl")]
            credentials: None,
        })
        .unwrap();
        for _ in 0..TRACE_QUEUE + 5 {
            t.append(TraceContext::new(TraceType::Pub, 1, "g"));
        }
        let s = t.stats();
        assert_eq!((s.queued, s.dropped), (TRACE_QUEUE, 5));
        t.shutdown();
        assert_eq!(t.stats().dropped, 5 + TRACE_QUEUE as u64);
    }
}
