//! [`ConsumerConfig`]: the settings of both consumers, with Java's defaults.

use std::path::PathBuf;
use std::time::Duration;

use super::allocate::AllocateStrategy;
use crate::env::{env_error, parse_env};
use crate::error::{Error, Result};
use crate::protocol::body::{ConsumeFromWhere, MessageModel};
use crate::protocol::route::RouteLimits;
use crate::validate;

/// Messages per pull (Java `pullBatchSize`: 32).
pub const DEFAULT_PULL_BATCH_SIZE: i32 = 32;
/// Messages per listener call (Java `consumeMessageBatchMaxSize`: 1).
pub const DEFAULT_CONSUME_BATCH_SIZE: usize = 1;
/// Pulling of a queue pauses while this many of its messages wait (Java: 1,000).
pub const DEFAULT_PULL_THRESHOLD_FOR_QUEUE: usize = 1000;
/// Pulling of a queue pauses while this many body bytes wait (Java: 100 MiB).
pub const DEFAULT_PULL_THRESHOLD_SIZE_FOR_QUEUE: usize = 100 * 1024 * 1024;
/// Consume worker threads of a push consumer (Java: 20).
pub const DEFAULT_CONSUME_THREADS: usize = 20;
/// Pull threads per consumer (fixed, whatever the number of queues held):
/// they send the pulls of every queue without waiting for the answers (a
/// long poll parks at the broker, not on a thread), decode what comes back
/// and hand it on. Java's push consumer uses one pull thread plus Netty's
/// I/O threads; its lite pull consumer 20 blocking ones.
pub const DEFAULT_PULL_THREADS: usize = 2;
/// Deliveries of a failing message before it goes to `%DLQ%` (Java: 16).
pub const DEFAULT_MAX_RECONSUME_TIMES: i32 = 16;
/// How often offsets are sent to the broker or the local file (Java: 5 s).
pub const DEFAULT_PERSIST_INTERVAL: Duration = Duration::from_secs(5);
/// How often queues are reassigned (Java: 20 s).
pub const DEFAULT_REBALANCE_INTERVAL: Duration = Duration::from_secs(20);
/// How often the consumer heartbeats to its brokers (Java: 30 s).
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(30);
/// How long the broker holds a push consumer's pull when no message is there (Java: 15 s).
pub const DEFAULT_PUSH_SUSPEND: Duration = Duration::from_secs(15);
/// How long the broker holds a lite pull consumer's pull (Java: 20 s).
pub const DEFAULT_LITE_PULL_SUSPEND: Duration = Duration::from_secs(20);
/// Timeout of broker requests other than the long poll itself (Java `consumerPullTimeoutMillis`: 10 s).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// `ConsumeFromWhere::Timestamp` starts this long before the consumer starts (Java: 30 min).
pub const DEFAULT_CONSUME_TIMESTAMP_AGO: Duration = Duration::from_secs(30 * 60);
/// Orderly: how often queue locks are renewed (Java: 20 s; the broker keeps a lock 60 s).
pub const DEFAULT_LOCK_RENEW_INTERVAL: Duration = Duration::from_secs(20);
/// Orderly: a lock not renewed for this long is treated as lost (Java: 30 s).
pub const LOCK_MAX_LIVE: Duration = Duration::from_secs(30);
/// Orderly: pause after the listener asks to suspend the queue (Java: 1 s).
pub const DEFAULT_SUSPEND_CURRENT_QUEUE_TIME: Duration = Duration::from_secs(1);
/// How long `shutdown` waits for listener calls already running.
pub const DEFAULT_AWAIT_TERMINATION: Duration = Duration::from_secs(5);
/// Delay before a failed pull is tried again (Java: 3 s).
pub const DEFAULT_PULL_ERROR_DELAY: Duration = Duration::from_secs(3);

/// Settings of a [`PushConsumer`](super::PushConsumer) or
/// [`LitePullConsumer`](super::LitePullConsumer).
///
/// Private fields, Java's defaults, a builder whose `build` checks every
/// value, and environment overrides ([`ConsumerConfigBuilder::env_overrides`]).
///
/// ```
/// use std::time::Duration;
/// use rocketmq_blocking::consumer::{ConsumerConfig, MessageModel};
///
/// let config = ConsumerConfig::builder()
///     .group("my_group")
///     .namesrv_addr("127.0.0.1:9876")
///     .message_model(MessageModel::Clustering)
///     .persist_interval(Duration::from_secs(1))
///     .build()?;
/// assert_eq!(config.pull_batch_size(), 32);
/// assert_eq!(config.consume_threads(), 20);
/// # Ok::<(), rocketmq_blocking::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerConfig {
    route_limits: RouteLimits,
    group: String,
    namesrv_addr: String,
    namespace: Option<String>,
    client_id: Option<String>,
    message_model: MessageModel,
    consume_from_where: ConsumeFromWhere,
    consume_timestamp_ms: Option<i64>,
    allocate_strategy: AllocateStrategy,
    pull_batch_size: i32,
    consume_batch_size: usize,
    pull_threshold_for_queue: usize,
    pull_threshold_size_for_queue: usize,
    consume_threads: usize,
    pull_threads: usize,
    max_reconsume_times: i32,
    persist_interval: Duration,
    rebalance_interval: Duration,
    heartbeat_interval: Duration,
    lock_renew_interval: Duration,
    suspend_current_queue_time: Duration,
    broker_suspend: Option<Duration>,
    request_timeout: Duration,
    pull_error_delay: Duration,
    await_termination: Duration,
    auto_commit: bool,
    offset_store_dir: PathBuf,
    enable_trace: bool,
    trace_topic: Option<String>,
    #[cfg(feature = "acl")]
    credentials: Option<crate::acl::Credentials>,
}

/// Java's `~/.rocketmq_offsets` (the current directory when `HOME` is unset).
pub fn default_offset_store_dir() -> PathBuf {
    std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".")).join(".rocketmq_offsets")
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            route_limits: RouteLimits::default(),
            group: String::new(),
            namesrv_addr: String::new(),
            namespace: None,
            client_id: None,
            message_model: MessageModel::Clustering,
            consume_from_where: ConsumeFromWhere::LastOffset,
            consume_timestamp_ms: None,
            allocate_strategy: AllocateStrategy::Averagely,
            pull_batch_size: DEFAULT_PULL_BATCH_SIZE,
            consume_batch_size: DEFAULT_CONSUME_BATCH_SIZE,
            pull_threshold_for_queue: DEFAULT_PULL_THRESHOLD_FOR_QUEUE,
            pull_threshold_size_for_queue: DEFAULT_PULL_THRESHOLD_SIZE_FOR_QUEUE,
            consume_threads: DEFAULT_CONSUME_THREADS,
            pull_threads: DEFAULT_PULL_THREADS,
            max_reconsume_times: DEFAULT_MAX_RECONSUME_TIMES,
            persist_interval: DEFAULT_PERSIST_INTERVAL,
            rebalance_interval: DEFAULT_REBALANCE_INTERVAL,
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            lock_renew_interval: DEFAULT_LOCK_RENEW_INTERVAL,
            suspend_current_queue_time: DEFAULT_SUSPEND_CURRENT_QUEUE_TIME,
            broker_suspend: None,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            pull_error_delay: DEFAULT_PULL_ERROR_DELAY,
            await_termination: DEFAULT_AWAIT_TERMINATION,
            auto_commit: true,
            offset_store_dir: default_offset_store_dir(),
            enable_trace: false,
            trace_topic: None,
            #[cfg(feature = "acl")]
            credentials: None,
        }
    }
}

impl ConsumerConfig {
    /// The limits topic routes are checked against before queues are built
    /// from them (default: 1,024 queues per broker, 128 brokers; see
    /// [`RouteLimits`]).
    pub fn route_limits(&self) -> RouteLimits {
        self.route_limits
    }

    /// A builder starting from the defaults; `group` and a name server are required.
    pub fn builder() -> ConsumerConfigBuilder {
        ConsumerConfigBuilder { config: ConsumerConfig::default() }
    }
    /// Consumer group, as configured (without the namespace).
    pub fn group(&self) -> &str {
        &self.group
    }
    /// Name server list (`host:port;host:port`).
    pub fn namesrv_addr(&self) -> &str {
        &self.namesrv_addr
    }
    /// Namespace prefixed to the group and topics (`ns%name`), if any.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }
    /// Client id, if set (else each consumer makes a unique one).
    pub fn client_id(&self) -> Option<&str> {
        self.client_id.as_deref()
    }
    /// Whether a push consumer traces its listener calls ([`crate::trace`]).
    pub fn enable_trace(&self) -> bool {
        self.enable_trace
    }
    /// The trace topic (default `RMQ_SYS_TRACE_TOPIC`).
    pub fn trace_topic(&self) -> &str {
        self.trace_topic.as_deref().unwrap_or(crate::trace::DEFAULT_TRACE_TOPIC)
    }
    /// Credentials that sign every request, if set (`acl` feature).
    #[cfg(feature = "acl")]
    pub fn credentials(&self) -> Option<&crate::acl::Credentials> {
        self.credentials.as_ref()
    }
    /// Clustering (default) or broadcasting.
    pub fn message_model(&self) -> MessageModel {
        self.message_model
    }
    /// Where a group without a stored offset starts (default last offset).
    pub fn consume_from_where(&self) -> ConsumeFromWhere {
        self.consume_from_where
    }
    /// Start time for `ConsumeFromWhere::Timestamp`, ms since the epoch
    /// (`None`: 30 minutes before the consumer starts).
    pub fn consume_timestamp_ms(&self) -> Option<i64> {
        self.consume_timestamp_ms
    }
    /// Queue allocation strategy (default averagely).
    pub fn allocate_strategy(&self) -> AllocateStrategy {
        self.allocate_strategy
    }
    /// Messages per pull (default 32).
    pub fn pull_batch_size(&self) -> i32 {
        self.pull_batch_size
    }
    /// Messages per listener call (default 1).
    pub fn consume_batch_size(&self) -> usize {
        self.consume_batch_size
    }
    /// Waiting messages per queue that pause pulling (default 1,000).
    pub fn pull_threshold_for_queue(&self) -> usize {
        self.pull_threshold_for_queue
    }
    /// Waiting body bytes per queue that pause pulling (default 100 MiB).
    pub fn pull_threshold_size_for_queue(&self) -> usize {
        self.pull_threshold_size_for_queue
    }
    /// Consume worker threads of a concurrent push consumer (default 20).
    pub fn consume_threads(&self) -> usize {
        self.consume_threads
    }
    /// Pull threads (default [`DEFAULT_PULL_THREADS`]).
    pub fn pull_threads(&self) -> usize {
        self.pull_threads
    }
    /// Deliveries before a failing message goes to the dead-letter topic (default 16).
    pub fn max_reconsume_times(&self) -> i32 {
        self.max_reconsume_times
    }
    /// Offset persist (and lite pull auto-commit) interval (default 5 s).
    pub fn persist_interval(&self) -> Duration {
        self.persist_interval
    }
    /// Rebalance interval (default 20 s).
    pub fn rebalance_interval(&self) -> Duration {
        self.rebalance_interval
    }
    /// Heartbeat interval (default 30 s).
    pub fn heartbeat_interval(&self) -> Duration {
        self.heartbeat_interval
    }
    /// Orderly: lock renew interval (default 20 s).
    pub fn lock_renew_interval(&self) -> Duration {
        self.lock_renew_interval
    }
    /// Orderly: pause after a `SuspendCurrentQueueAMoment` (default 1 s).
    pub fn suspend_current_queue_time(&self) -> Duration {
        self.suspend_current_queue_time
    }
    /// Long-poll time at the broker, if set (default 15 s push, 20 s lite pull).
    pub fn broker_suspend(&self) -> Option<Duration> {
        self.broker_suspend
    }
    /// Broker request timeout (default 10 s; a long poll adds its suspend time).
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }
    /// Delay before retrying a pull that failed (default 3 s).
    pub fn pull_error_delay(&self) -> Duration {
        self.pull_error_delay
    }
    /// How long `shutdown` waits for a listener call already running (default 5 s).
    pub fn await_termination(&self) -> Duration {
        self.await_termination
    }
    /// Lite pull: commit polled offsets automatically every persist interval (default true).
    pub fn auto_commit(&self) -> bool {
        self.auto_commit
    }
    /// Directory of the broadcasting offset files (default `~/.rocketmq_offsets`).
    pub fn offset_store_dir(&self) -> &std::path::Path {
        &self.offset_store_dir
    }

    /// `name` with the namespace prefix (`ns%name`), unchanged without a namespace.
    pub fn with_namespace(&self, name: &str) -> String {
        crate::namespace::wrap(self.namespace.as_deref(), name)
    }

    /// `name` without the namespace prefix (`%RETRY%ns%g` becomes `%RETRY%g`, as in Java).
    pub fn without_namespace<'a>(&self, name: &'a str) -> std::borrow::Cow<'a, str> {
        crate::namespace::unwrap(self.namespace.as_deref(), name)
    }
}

/// Builds a [`ConsumerConfig`]; `build` checks the values.
#[derive(Debug, Clone)]
pub struct ConsumerConfigBuilder {
    config: ConsumerConfig,
}

macro_rules! setter {
    ($(#[$m:meta])* $name:ident: $t:ty) => {
        $(#[$m])*
        pub fn $name(mut self, value: $t) -> Self {
            self.config.$name = value;
            self
        }
    };
}

impl ConsumerConfigBuilder {
    /// Limits for topic routes from the name server (default
    /// [`RouteLimits::default`]: 1,024 queues per broker, 128 brokers); a
    /// route past them fails with
    /// [`ProtocolError::RouteLimit`](crate::ProtocolError::RouteLimit).
    pub fn route_limits(mut self, limits: RouteLimits) -> Self {
        self.config.route_limits = limits;
        self
    }

    /// Credentials that sign every request, for brokers with access control
    /// (`acl` feature; default none, or `ROCKETMQ_ACCESS_KEY` /
    /// `ROCKETMQ_SECRET_KEY` through [`env_overrides`](Self::env_overrides)).
    #[cfg(feature = "acl")]
    pub fn credentials(mut self, credentials: crate::acl::Credentials) -> Self {
        self.config.credentials = Some(credentials);
        self
    }
    /// Consumer group (required).
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.config.group = group.into();
        self
    }
    /// Name server list, `host:port;host:port` (required unless set by the environment).
    pub fn namesrv_addr(mut self, addr: impl Into<String>) -> Self {
        self.config.namesrv_addr = addr.into();
        self
    }
    /// Namespace: group and topics become `ns%name` on the wire.
    pub fn namespace(mut self, ns: impl Into<String>) -> Self {
        let ns = ns.into();
        self.config.namespace = if ns.is_empty() { None } else { Some(ns) };
        self
    }
    /// A fixed client id (default: a unique `ip@pid#nanos` per consumer).
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.config.client_id = Some(id.into());
        self
    }
    /// Traces a push consumer's listener calls (`SubBefore` / `SubAfter`) to
    /// the trace topic (default off, as Java's `enableMsgTrace`; see [`crate::trace`]).
    ///
    /// ```
    /// use rocketmq_blocking::ConsumerConfig;
    ///
    /// let c = ConsumerConfig::builder().group("cg").namesrv_addr("127.0.0.1:9876").enable_trace(true).build()?;
    /// assert!(c.enable_trace());
    /// # Ok::<(), rocketmq_blocking::Error>(())
    /// ```
    pub fn enable_trace(mut self, on: bool) -> Self {
        self.config.enable_trace = on;
        self
    }
    /// Trace topic (default `RMQ_SYS_TRACE_TOPIC`; Java's `customizedTraceTopic`).
    pub fn trace_topic(mut self, topic: impl Into<String>) -> Self {
        self.config.trace_topic = Some(topic.into());
        self
    }
    /// Start time for `ConsumeFromWhere::Timestamp`, ms since the epoch.
    pub fn consume_timestamp_ms(mut self, ms: i64) -> Self {
        self.config.consume_timestamp_ms = Some(ms);
        self
    }
    /// Long-poll time at the broker (default 15 s push, 20 s lite pull).
    pub fn broker_suspend(mut self, d: Duration) -> Self {
        self.config.broker_suspend = Some(d);
        self
    }
    /// Directory of the broadcasting offset files.
    pub fn offset_store_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.offset_store_dir = dir.into();
        self
    }
    setter!(/// Clustering (default) or broadcasting.
        message_model: MessageModel);
    setter!(/// Where a group without a stored offset starts.
        consume_from_where: ConsumeFromWhere);
    setter!(/// Queue allocation strategy.
        allocate_strategy: AllocateStrategy);
    setter!(/// Messages per pull (1..=1024).
        pull_batch_size: i32);
    setter!(/// Messages per listener call (1..=1024).
        consume_batch_size: usize);
    setter!(/// Waiting messages per queue that pause pulling.
        pull_threshold_for_queue: usize);
    setter!(/// Waiting body bytes per queue that pause pulling.
        pull_threshold_size_for_queue: usize);
    setter!(/// Consume worker threads (1..=1000).
        consume_threads: usize);
    setter!(/// Pull threads (1..=64), whatever the number of queues.
        pull_threads: usize);
    setter!(/// Deliveries of a failing message before the dead-letter topic (0..=16000).
        max_reconsume_times: i32);
    setter!(/// Offset persist interval.
        persist_interval: Duration);
    setter!(/// Rebalance interval.
        rebalance_interval: Duration);
    setter!(/// Heartbeat interval.
        heartbeat_interval: Duration);
    setter!(/// Orderly: lock renew interval (must be below 30 s).
        lock_renew_interval: Duration);
    setter!(/// Orderly: pause after `SuspendCurrentQueueAMoment`.
        suspend_current_queue_time: Duration);
    setter!(/// Broker request timeout.
        request_timeout: Duration);
    setter!(/// Delay before retrying a failed pull.
        pull_error_delay: Duration);
    setter!(/// How long `shutdown` waits for running listener calls.
        await_termination: Duration);
    setter!(/// Lite pull: commit polled offsets automatically.
        auto_commit: bool);

    /// Applies the environment: `ROCKETMQ_NAMESRV_ADDR` (else `NAMESRV_ADDR`)
    /// and the `ROCKETMQ_CONSUMER_*` variables listed in
    /// [`ENV_VARIABLES`]. Values set on the builder after this call win; a
    /// value that does not parse is an [`Error::InvalidEnv`] naming the variable.
    pub fn env_overrides(self) -> Result<Self> {
        self.env_overrides_from(|name| std::env::var(name).ok())
    }

    /// [`env_overrides`](Self::env_overrides) reading from `lookup` instead of the process environment.
    pub fn env_overrides_from(mut self, lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        if let Some(v) = get("ROCKETMQ_NAMESRV_ADDR").or_else(|| get("NAMESRV_ADDR")) {
            self.config.namesrv_addr = v;
        }
        let c = &mut self.config;
        #[cfg(feature = "acl")]
        if let Some(credentials) = crate::acl::Credentials::from_env_lookup(&lookup)? {
            c.credentials = Some(credentials);
        }
        if let Some(v) = get("ROCKETMQ_CONSUMER_GROUP") {
            c.group = v;
        }
        if let Some(v) = get("ROCKETMQ_CONSUMER_NAMESPACE") {
            c.namespace = Some(v);
        }
        if let Some(v) = get("ROCKETMQ_CONSUMER_CLIENT_ID") {
            c.client_id = Some(v);
        }
        crate::trace::env_overrides("ROCKETMQ_CONSUMER_", &get, &mut c.enable_trace, &mut c.trace_topic)?;
        if let Some(v) = get("ROCKETMQ_CONSUMER_OFFSET_STORE_DIR") {
            c.offset_store_dir = PathBuf::from(v);
        }
        if let Some(v) = get("ROCKETMQ_CONSUMER_MESSAGE_MODEL") {
            c.message_model = match v.to_ascii_uppercase().as_str() {
                "CLUSTERING" => MessageModel::Clustering,
                "BROADCASTING" => MessageModel::Broadcasting,
                _ => {
                    return Err(env_error("ROCKETMQ_CONSUMER_MESSAGE_MODEL", &v, "expected CLUSTERING or BROADCASTING"))
                }
            };
        }
        if let Some(v) = get("ROCKETMQ_CONSUMER_CONSUME_FROM_WHERE") {
            let upper = v.to_ascii_uppercase();
            c.consume_from_where = match upper.trim_start_matches("CONSUME_FROM_") {
                "LAST_OFFSET" => ConsumeFromWhere::LastOffset,
                "FIRST_OFFSET" => ConsumeFromWhere::FirstOffset,
                "TIMESTAMP" => ConsumeFromWhere::Timestamp,
                _ => {
                    return Err(env_error(
                        "ROCKETMQ_CONSUMER_CONSUME_FROM_WHERE",
                        &v,
                        "expected LAST_OFFSET, FIRST_OFFSET or TIMESTAMP",
                    ))
                }
            };
        }
        if let Some(v) = get("ROCKETMQ_CONSUMER_ALLOCATE_STRATEGY") {
            c.allocate_strategy = AllocateStrategy::from_name(&v).ok_or_else(|| {
                env_error("ROCKETMQ_CONSUMER_ALLOCATE_STRATEGY", &v, "expected AVG, AVG_BY_CIRCLE or CONSISTENT_HASH")
            })?;
        }
        if let Some(v) = get("ROCKETMQ_CONSUMER_CONSUME_TIMESTAMP_MS") {
            c.consume_timestamp_ms = Some(parse_env("ROCKETMQ_CONSUMER_CONSUME_TIMESTAMP_MS", &v)?);
        }
        if let Some(v) = get("ROCKETMQ_CONSUMER_PULL_BATCH_SIZE") {
            c.pull_batch_size = parse_env("ROCKETMQ_CONSUMER_PULL_BATCH_SIZE", &v)?;
        }
        if let Some(v) = get("ROCKETMQ_CONSUMER_CONSUME_BATCH_SIZE") {
            c.consume_batch_size = parse_env("ROCKETMQ_CONSUMER_CONSUME_BATCH_SIZE", &v)?;
        }
        if let Some(v) = get("ROCKETMQ_CONSUMER_PULL_THRESHOLD_FOR_QUEUE") {
            c.pull_threshold_for_queue = parse_env("ROCKETMQ_CONSUMER_PULL_THRESHOLD_FOR_QUEUE", &v)?;
        }
        if let Some(v) = get("ROCKETMQ_CONSUMER_PULL_THRESHOLD_SIZE_FOR_QUEUE_MIB") {
            let mib: usize = parse_env("ROCKETMQ_CONSUMER_PULL_THRESHOLD_SIZE_FOR_QUEUE_MIB", &v)?;
            c.pull_threshold_size_for_queue = mib.saturating_mul(1024 * 1024);
        }
        if let Some(v) = get("ROCKETMQ_CONSUMER_CONSUME_THREADS") {
            c.consume_threads = parse_env("ROCKETMQ_CONSUMER_CONSUME_THREADS", &v)?;
        }
        if let Some(v) = get("ROCKETMQ_CONSUMER_PULL_THREADS") {
            c.pull_threads = parse_env("ROCKETMQ_CONSUMER_PULL_THREADS", &v)?;
        }
        if let Some(v) = get("ROCKETMQ_CONSUMER_MAX_RECONSUME_TIMES") {
            c.max_reconsume_times = parse_env("ROCKETMQ_CONSUMER_MAX_RECONSUME_TIMES", &v)?;
        }
        if let Some(v) = get("ROCKETMQ_CONSUMER_AUTO_COMMIT") {
            c.auto_commit = parse_env("ROCKETMQ_CONSUMER_AUTO_COMMIT", &v.to_ascii_lowercase())?;
        }
        for (name, slot) in [
            ("ROCKETMQ_CONSUMER_PERSIST_INTERVAL_MS", &mut c.persist_interval),
            ("ROCKETMQ_CONSUMER_REBALANCE_INTERVAL_MS", &mut c.rebalance_interval),
            ("ROCKETMQ_CONSUMER_HEARTBEAT_INTERVAL_MS", &mut c.heartbeat_interval),
            ("ROCKETMQ_CONSUMER_REQUEST_TIMEOUT_MS", &mut c.request_timeout),
        ] {
            if let Some(v) = get(name) {
                *slot = Duration::from_millis(parse_env(name, &v)?);
            }
        }
        Ok(self)
    }

    /// Checks the values and returns the config.
    pub fn build(self) -> Result<ConsumerConfig> {
        let c = self.config;
        validate::check_group(&c.group)?;
        if let Some(t) = &c.trace_topic {
            validate::check_topic(t)?;
        }
        if let Some(ns) = &c.namespace {
            validate::check_group(ns)
                .map_err(|_| Error::invalid("namespace", format!("{ns:?} is not a valid name")))?;
        }
        crate::namesrv::parse_address_list(&c.namesrv_addr)?;
        if let Some(id) = &c.client_id {
            if id.is_empty() {
                return Err(Error::invalid("client id", "is empty"));
            }
        }
        in_range("pull batch size", c.pull_batch_size, 1, 1024)?;
        in_range("consume batch size", c.consume_batch_size, 1, 1024)?;
        in_range("pull threshold for queue", c.pull_threshold_for_queue, 1, 65535)?;
        in_range("pull threshold size for queue", c.pull_threshold_size_for_queue, 1, 1024 * 1024 * 1024)?;
        in_range("consume threads", c.consume_threads, 1, 1000)?;
        in_range("pull threads", c.pull_threads, 1, 64)?;
        in_range("max reconsume times", c.max_reconsume_times, 0, 16_000)?;
        for (what, d) in [
            ("persist interval", c.persist_interval),
            ("rebalance interval", c.rebalance_interval),
            ("heartbeat interval", c.heartbeat_interval),
            ("lock renew interval", c.lock_renew_interval),
            ("request timeout", c.request_timeout),
        ] {
            if d < Duration::from_millis(10) {
                return Err(Error::invalid(what, format!("{d:?} is shorter than 10 ms")));
            }
        }
        if c.lock_renew_interval >= LOCK_MAX_LIVE {
            return Err(Error::invalid("lock renew interval", "must be shorter than the 30 s lock lifetime"));
        }
        if let Some(s) = c.broker_suspend {
            if s < Duration::from_millis(100) || s > Duration::from_secs(60) {
                return Err(Error::invalid("broker suspend", format!("{s:?} is not between 100 ms and 60 s")));
            }
        }
        if c.offset_store_dir.as_os_str().is_empty() {
            return Err(Error::invalid("offset store dir", "is empty"));
        }
        Ok(c)
    }
}

/// The environment variables [`ConsumerConfigBuilder::env_overrides`] reads.
pub const ENV_VARIABLES: &[&str] = &[
    "ROCKETMQ_NAMESRV_ADDR",
    "NAMESRV_ADDR",
    "ROCKETMQ_CONSUMER_GROUP",
    "ROCKETMQ_CONSUMER_NAMESPACE",
    "ROCKETMQ_CONSUMER_CLIENT_ID",
    "ROCKETMQ_CONSUMER_OFFSET_STORE_DIR",
    "ROCKETMQ_CONSUMER_MESSAGE_MODEL",
    "ROCKETMQ_CONSUMER_CONSUME_FROM_WHERE",
    "ROCKETMQ_CONSUMER_CONSUME_TIMESTAMP_MS",
    "ROCKETMQ_CONSUMER_ALLOCATE_STRATEGY",
    "ROCKETMQ_CONSUMER_PULL_BATCH_SIZE",
    "ROCKETMQ_CONSUMER_CONSUME_BATCH_SIZE",
    "ROCKETMQ_CONSUMER_PULL_THRESHOLD_FOR_QUEUE",
    "ROCKETMQ_CONSUMER_PULL_THRESHOLD_SIZE_FOR_QUEUE_MIB",
    "ROCKETMQ_CONSUMER_CONSUME_THREADS",
    "ROCKETMQ_CONSUMER_PULL_THREADS",
    "ROCKETMQ_CONSUMER_MAX_RECONSUME_TIMES",
    "ROCKETMQ_CONSUMER_AUTO_COMMIT",
    "ROCKETMQ_CONSUMER_ENABLE_TRACE",
    "ROCKETMQ_CONSUMER_TRACE_TOPIC",
    "ROCKETMQ_CONSUMER_PERSIST_INTERVAL_MS",
    "ROCKETMQ_CONSUMER_REBALANCE_INTERVAL_MS",
    "ROCKETMQ_CONSUMER_HEARTBEAT_INTERVAL_MS",
    "ROCKETMQ_CONSUMER_REQUEST_TIMEOUT_MS",
    // Read with the `acl` feature only.
    "ROCKETMQ_ACCESS_KEY",
    "ROCKETMQ_SECRET_KEY",
    "ROCKETMQ_SECURITY_TOKEN",
];

/// `Err` naming `what` unless `lo <= v <= hi`.
fn in_range<T: PartialOrd + std::fmt::Display>(what: &'static str, v: T, lo: T, hi: T) -> Result<()> {
    if v < lo || v > hi {
        return Err(Error::invalid(what, format!("{v} is not in {lo}..={hi}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn base() -> ConsumerConfigBuilder {
        ConsumerConfig::builder().group("g1").namesrv_addr("127.0.0.1:9876")
    }

    #[test]
    fn java_defaults() {
        let c = base().build().unwrap();
        assert_eq!(c.message_model(), MessageModel::Clustering);
        assert_eq!(c.consume_from_where(), ConsumeFromWhere::LastOffset);
        assert_eq!(c.pull_batch_size(), 32);
        assert_eq!(c.consume_batch_size(), 1);
        assert_eq!(c.pull_threshold_for_queue(), 1000);
        assert_eq!(c.pull_threshold_size_for_queue(), 100 * 1024 * 1024);
        assert_eq!(c.consume_threads(), 20);
        assert_eq!(c.max_reconsume_times(), 16);
        assert_eq!(c.persist_interval(), Duration::from_secs(5));
        assert_eq!(c.rebalance_interval(), Duration::from_secs(20));
        assert_eq!(c.allocate_strategy(), AllocateStrategy::Averagely);
        assert!(c.auto_commit());
        assert!(c.offset_store_dir().ends_with(".rocketmq_offsets"));
    }

    #[test]
    fn build_refuses_bad_values() {
        assert!(ConsumerConfig::builder().namesrv_addr("127.0.0.1:9876").build().is_err(), "no group");
        assert!(ConsumerConfig::builder().group("g").build().is_err(), "no name server");
        assert!(base().group("bad group").build().is_err());
        assert!(base().pull_batch_size(0).build().is_err());
        assert!(base().consume_batch_size(0).build().is_err());
        assert!(base().consume_threads(0).build().is_err());
        assert!(base().max_reconsume_times(-2).build().is_err());
        assert!(base().persist_interval(Duration::ZERO).build().is_err());
        assert!(base().lock_renew_interval(Duration::from_secs(30)).build().is_err());
        assert!(base().broker_suspend(Duration::from_millis(1)).build().is_err());
        assert!(base().namesrv_addr("nonsense").build().is_err());
    }

    #[test]
    fn env_overrides_apply_and_name_the_bad_variable() {
        let env: HashMap<&str, &str> = [
            ("NAMESRV_ADDR", "10.0.0.1:9876"),
            ("ROCKETMQ_CONSUMER_MESSAGE_MODEL", "broadcasting"),
            ("ROCKETMQ_CONSUMER_CONSUME_FROM_WHERE", "CONSUME_FROM_FIRST_OFFSET"),
            ("ROCKETMQ_CONSUMER_PULL_BATCH_SIZE", "16"),
            ("ROCKETMQ_CONSUMER_PERSIST_INTERVAL_MS", "500"),
            ("ROCKETMQ_CONSUMER_ALLOCATE_STRATEGY", "AVG_BY_CIRCLE"),
        ]
        .into_iter()
        .collect();
        let c = base().env_overrides_from(|k| env.get(k).map(|v| v.to_string())).unwrap().build().unwrap();
        assert_eq!(c.namesrv_addr(), "10.0.0.1:9876");
        assert_eq!(c.message_model(), MessageModel::Broadcasting);
        assert_eq!(c.consume_from_where(), ConsumeFromWhere::FirstOffset);
        assert_eq!(c.pull_batch_size(), 16);
        assert_eq!(c.persist_interval(), Duration::from_millis(500));
        assert_eq!(c.allocate_strategy(), AllocateStrategy::AveragelyByCircle);

        let both = |k: &str| match k {
            "ROCKETMQ_NAMESRV_ADDR" => Some("1.1.1.1:1".to_string()),
            "NAMESRV_ADDR" => Some("2.2.2.2:2".to_string()),
            _ => None,
        };
        assert_eq!(base().env_overrides_from(both).unwrap().build().unwrap().namesrv_addr(), "1.1.1.1:1");

        for (var, value) in [
            ("ROCKETMQ_CONSUMER_PULL_BATCH_SIZE", "many"),
            ("ROCKETMQ_CONSUMER_MESSAGE_MODEL", "SOMETIMES"),
            ("ROCKETMQ_CONSUMER_REBALANCE_INTERVAL_MS", "-5"),
            ("ROCKETMQ_CONSUMER_AUTO_COMMIT", "perhaps"),
        ] {
            let err = base().env_overrides_from(|k| (k == var).then(|| value.to_string())).unwrap_err();
            match err {
                Error::InvalidEnv { variable, value: v, .. } => {
                    assert_eq!(variable, var);
                    assert_eq!(v, value);
                }
                other => panic!("expected InvalidEnv for {var}, got {other:?}"),
            }
        }
    }

    #[test]
    fn namespace_wraps_and_unwraps() {
        let c = base().namespace("ns1").build().unwrap();
        assert_eq!(c.with_namespace("T"), "ns1%T");
        assert_eq!(c.with_namespace("ns1%T"), "ns1%T");
        assert_eq!(c.without_namespace("ns1%T"), "T");
        assert_eq!(c.without_namespace("other"), "other");
        let plain = base().build().unwrap();
        assert_eq!(plain.with_namespace("T"), "T");
    }
}
