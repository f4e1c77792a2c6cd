//! `ProducerConfig`: Java's defaults, a checked builder, presets and
//! environment overrides.

use std::time::Duration;

use crate::env::{env_error, parse_env};
use crate::error::{Error, Result};
use crate::protocol::route::RouteLimits;
use crate::validate;

/// Send timeout (Java `sendMsgTimeout`): 3 s.
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(3);
/// Retries of a failed sync send (Java `retryTimesWhenSendFailed`): 2.
pub const DEFAULT_RETRIES: u32 = 2;
/// Largest message body (Java `maxMessageSize`): 4 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = validate::DEFAULT_MAX_MESSAGE_SIZE;
/// Bodies of this size or larger are compressed (Java `compressMsgBodyOverHowmuch`): 4 KiB.
pub const DEFAULT_COMPRESS_OVER: usize = 4 * 1024;
/// Name server poll interval (Java `pollNameServerInterval`): 30 s.
pub const DEFAULT_POLL_NAMESRV_INTERVAL: Duration = Duration::from_secs(30);
/// Routes older than this are fetched again before use, and a topic not
/// sent to for this long is dropped from the routes the producer refreshes: 30 s.
pub const DEFAULT_ROUTE_EXPIRY: Duration = Duration::from_secs(30);
/// Heartbeat interval (Java `heartbeatBrokerInterval`): 30 s.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(30);
/// Largest encoded batch that [`split_batch`](super::split_batch) makes: 1 MiB (Java's `ListSplitter` example).
pub const DEFAULT_BATCH_MAX_BYTES: usize = 1024 * 1024;
/// Threads that run `send_async` (Java's async executor uses the cores; a small fixed pool here).
pub const DEFAULT_ASYNC_THREADS: usize = 4;
/// Async sends waiting for a thread before `send_async` blocks: 10,000.
pub const DEFAULT_ASYNC_QUEUE: usize = 10_000;
/// Transaction check-backs waiting for the listener; more are dropped (the
/// broker asks again later): 2,000 (Java's check executor queue).
pub const DEFAULT_CHECK_QUEUE: usize = 2_000;
/// Bytes of half messages (as received plus inflated) that the waiting
/// check-backs may hold together: 64 MiB. One that would go over is dropped
/// like one arriving at a full queue (a compressed half message can inflate
/// to 64 MiB: 2,000 of them would not fit in any memory).
pub const DEFAULT_CHECK_QUEUE_BYTES: usize = 64 * 1024 * 1024;
/// Requests ([`Producer::request`](super::Producer::request)) that may wait
/// for their replies at once; one more is refused with
/// [`Error::TooManyRequests`]: 10,000 (Java has no limit).
pub const DEFAULT_MAX_PENDING_REQUESTS: usize = 10_000;

/// A starting point for a [`ProducerConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Preset {
    /// Java's defaults.
    Default,
    /// Fail fast while developing: 1 s send timeout, no retries, routes and
    /// heartbeats every 5 s so topic changes show up quickly.
    Development,
    /// Java's defaults plus latency-aware routing, so a slow or failing broker
    /// is avoided for a while (Java `sendLatencyFaultEnable`).
    Production,
    /// Throughput: 8 async threads and a 50,000-deep queue, compression only
    /// above 64 KiB (CPU is spent on sending, not deflating).
    HighPerformance,
    /// For tests against local brokers: 2 s timeout, routes and heartbeats
    /// every 500 ms, latency-aware routing on.
    Testing,
}

/// Settings of a [`Producer`](super::Producer).
///
/// ```
/// use std::time::Duration;
/// use rocketmq_blocking::producer::{Preset, ProducerConfig};
///
/// let config = ProducerConfig::preset(Preset::Production)
///     .group("orders-producer")
///     .namesrv_addr("127.0.0.1:9876")
///     .send_timeout(Duration::from_secs(5))
///     .build()?;
/// assert_eq!(config.retries(), 2);
/// assert!(config.latency_aware());
/// # Ok::<(), rocketmq_blocking::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerConfig {
    route_limits: RouteLimits,
    group: String,
    client_id: Option<String>,
    namesrv_addr: String,
    send_timeout: Duration,
    retries: u32,
    max_message_size: usize,
    compress_over: usize,
    poll_namesrv_interval: Duration,
    route_expiry: Duration,
    heartbeat_interval: Duration,
    batch_max_bytes: usize,
    async_threads: usize,
    async_queue: usize,
    check_queue: usize,
    check_queue_bytes: usize,
    max_pending_requests: usize,
    latency_aware: bool,
    namespace: Option<String>,
    #[cfg(feature = "acl")]
    credentials: Option<crate::acl::Credentials>,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            route_limits: RouteLimits::default(),
            group: String::new(),
            client_id: None,
            namesrv_addr: String::new(),
            send_timeout: DEFAULT_SEND_TIMEOUT,
            retries: DEFAULT_RETRIES,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            compress_over: DEFAULT_COMPRESS_OVER,
            poll_namesrv_interval: DEFAULT_POLL_NAMESRV_INTERVAL,
            route_expiry: DEFAULT_ROUTE_EXPIRY,
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            batch_max_bytes: DEFAULT_BATCH_MAX_BYTES,
            async_threads: DEFAULT_ASYNC_THREADS,
            async_queue: DEFAULT_ASYNC_QUEUE,
            check_queue: DEFAULT_CHECK_QUEUE,
            check_queue_bytes: DEFAULT_CHECK_QUEUE_BYTES,
            max_pending_requests: DEFAULT_MAX_PENDING_REQUESTS,
            latency_aware: false,
            namespace: None,
            #[cfg(feature = "acl")]
            credentials: None,
        }
    }
}

macro_rules! getters {
    ($($(#[$doc:meta])* $name:ident: $t:ty,)*) => {$(
        $(#[$doc])*
        pub fn $name(&self) -> $t {
            self.$name
        }
    )*};
}

impl ProducerConfig {
    /// The limits topic routes are checked against before queues are built
    /// from them (default: 1,024 queues per broker, 128 brokers; see
    /// [`RouteLimits`]).
    pub fn route_limits(&self) -> RouteLimits {
        self.route_limits
    }

    /// A builder with Java's defaults.
    pub fn builder() -> ProducerConfigBuilder {
        ProducerConfig::preset(Preset::Default)
    }

    /// A builder starting from a preset.
    pub fn preset(preset: Preset) -> ProducerConfigBuilder {
        let mut c = ProducerConfig::default();
        match preset {
            Preset::Default => {}
            Preset::Development => {
                c.send_timeout = Duration::from_secs(1);
                c.retries = 0;
                c.poll_namesrv_interval = Duration::from_secs(5);
                c.heartbeat_interval = Duration::from_secs(5);
                c.route_expiry = Duration::from_secs(5);
            }
            Preset::Production => c.latency_aware = true,
            Preset::HighPerformance => {
                c.async_threads = 8;
                c.async_queue = 50_000;
                c.compress_over = 64 * 1024;
            }
            Preset::Testing => {
                c.send_timeout = Duration::from_secs(2);
                c.poll_namesrv_interval = Duration::from_millis(500);
                c.heartbeat_interval = Duration::from_millis(500);
                c.route_expiry = Duration::from_secs(2);
                c.latency_aware = true;
            }
        }
        ProducerConfigBuilder { config: c }
    }

    /// Producer group.
    pub fn group(&self) -> &str {
        &self.group
    }
    /// Client id, if set (else one is made).
    pub fn client_id(&self) -> Option<&str> {
        self.client_id.as_deref()
    }
    /// Name server addresses (`a:9876;b:9876`).
    pub fn namesrv_addr(&self) -> &str {
        &self.namesrv_addr
    }
    /// Namespace, if set.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }
    /// Credentials that sign every request, if set (`acl` feature).
    #[cfg(feature = "acl")]
    pub fn credentials(&self) -> Option<&crate::acl::Credentials> {
        self.credentials.as_ref()
    }
    getters! {
        /// Time one send may take, retries included.
        send_timeout: Duration,
        /// Retries of a failed sync send.
        retries: u32,
        /// Largest body.
        max_message_size: usize,
        /// Bodies of this size or larger are compressed (with the `compression` feature).
        compress_over: usize,
        /// How often routes are fetched again.
        poll_namesrv_interval: Duration,
        /// Age after which a cached route is fetched before use; a topic not
        /// sent to for this long stops being refreshed.
        route_expiry: Duration,
        /// How often the producer heartbeats to its brokers.
        heartbeat_interval: Duration,
        /// Largest encoded batch made by the split helper.
        batch_max_bytes: usize,
        /// Threads running `send_async`.
        async_threads: usize,
        /// Async sends that may wait for a thread.
        async_queue: usize,
        /// Transaction check-backs that may wait for the listener; more are
        /// dropped, and the broker asks again later.
        check_queue: usize,
        /// Bytes of half messages the waiting check-backs may hold; more
        /// are dropped, and the broker asks again later.
        check_queue_bytes: usize,
        /// Requests that may wait for their replies at once; more are
        /// refused with [`Error::TooManyRequests`].
        max_pending_requests: usize,
        /// Latency-aware routing (avoid slow or failing brokers for a while).
        latency_aware: bool,
    }

    /// `name` with the namespace prefix (`ns%name`); unchanged without one.
    pub fn with_namespace(&self, name: &str) -> String {
        crate::namespace::wrap(self.namespace.as_deref(), name)
    }

    /// `name` without the namespace prefix.
    pub fn without_namespace<'a>(&self, name: &'a str) -> &'a str {
        crate::namespace::unwrap(self.namespace.as_deref(), name)
    }
}

/// Builds a [`ProducerConfig`]; `build` checks the values.
#[derive(Debug, Clone)]
pub struct ProducerConfigBuilder {
    config: ProducerConfig,
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $t:ty,)*) => {$(
        $(#[$doc])*
        pub fn $name(mut self, value: $t) -> Self {
            self.config.$name = value;
            self
        }
    )*};
}

/// The environment variables [`ProducerConfigBuilder::env_overrides`] reads.
///
/// | variable | setting |
/// |---|---|
/// | `ROCKETMQ_NAMESRV_ADDR`, else `NAMESRV_ADDR` | name servers |
/// | `ROCKETMQ_PRODUCER_GROUP` | group |
/// | `ROCKETMQ_PRODUCER_CLIENT_ID` | client id |
/// | `ROCKETMQ_PRODUCER_NAMESPACE` | namespace |
/// | `ROCKETMQ_PRODUCER_SEND_TIMEOUT_MS` | send timeout |
/// | `ROCKETMQ_PRODUCER_RETRIES` | retries |
/// | `ROCKETMQ_PRODUCER_MAX_MESSAGE_SIZE` | max message size (bytes) |
/// | `ROCKETMQ_PRODUCER_COMPRESS_OVER` | compression threshold (bytes) |
/// | `ROCKETMQ_PRODUCER_POLL_NAMESRV_INTERVAL_MS` | route poll interval |
/// | `ROCKETMQ_PRODUCER_ROUTE_EXPIRY_MS` | route expiry |
/// | `ROCKETMQ_PRODUCER_HEARTBEAT_INTERVAL_MS` | heartbeat interval |
/// | `ROCKETMQ_PRODUCER_BATCH_MAX_BYTES` | batch split size |
/// | `ROCKETMQ_PRODUCER_ASYNC_THREADS` | async threads |
/// | `ROCKETMQ_PRODUCER_ASYNC_QUEUE` | async queue |
/// | `ROCKETMQ_PRODUCER_LATENCY_AWARE` | `true` / `false` |
/// | `ROCKETMQ_ACCESS_KEY`, `ROCKETMQ_SECRET_KEY`, `ROCKETMQ_SECURITY_TOKEN` | credentials (`acl` feature only; both keys or neither) |
///
/// A value that cannot be used is an [`Error::InvalidEnv`] naming the
/// variable: a number that does not parse, a zero duration, a group or
/// namespace that is not a valid name, a bad address list, and a
/// `ROCKETMQ_PRODUCER_*` variable that is set but blank (an empty group is
/// a mistake, not a default). A blank `ROCKETMQ_NAMESRV_ADDR` counts as
/// unset, so `NAMESRV_ADDR` is used.
pub const ENV_VARIABLES: &[&str] = &[
    "ROCKETMQ_NAMESRV_ADDR",
    "NAMESRV_ADDR",
    "ROCKETMQ_PRODUCER_GROUP",
    "ROCKETMQ_PRODUCER_CLIENT_ID",
    "ROCKETMQ_PRODUCER_NAMESPACE",
    "ROCKETMQ_PRODUCER_SEND_TIMEOUT_MS",
    "ROCKETMQ_PRODUCER_RETRIES",
    "ROCKETMQ_PRODUCER_MAX_MESSAGE_SIZE",
    "ROCKETMQ_PRODUCER_COMPRESS_OVER",
    "ROCKETMQ_PRODUCER_POLL_NAMESRV_INTERVAL_MS",
    "ROCKETMQ_PRODUCER_ROUTE_EXPIRY_MS",
    "ROCKETMQ_PRODUCER_HEARTBEAT_INTERVAL_MS",
    "ROCKETMQ_PRODUCER_BATCH_MAX_BYTES",
    "ROCKETMQ_PRODUCER_ASYNC_THREADS",
    "ROCKETMQ_PRODUCER_ASYNC_QUEUE",
    "ROCKETMQ_PRODUCER_LATENCY_AWARE", // Read with the `acl` feature only.
    "ROCKETMQ_ACCESS_KEY",
    "ROCKETMQ_SECRET_KEY",
    "ROCKETMQ_SECURITY_TOKEN",
];

impl ProducerConfigBuilder {
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
    /// Producer group (required).
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.config.group = group.into();
        self
    }
    /// Name servers, Java style: `a:9876;b:9876` (required).
    pub fn namesrv_addr(mut self, addr: impl Into<String>) -> Self {
        self.config.namesrv_addr = addr.into();
        self
    }
    /// Client id (default `127.0.0.1@pid#nanos`).
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.config.client_id = Some(id.into());
        self
    }
    /// Namespace: topics and the group become `namespace%name` on the wire.
    pub fn namespace(mut self, ns: impl Into<String>) -> Self {
        self.config.namespace = Some(ns.into());
        self
    }
    setters! {
        /// Time one send may take, retries included (default 3 s).
        send_timeout: Duration,
        /// Retries of a failed sync send (default 2).
        retries: u32,
        /// Largest body (default 4 MiB).
        max_message_size: usize,
        /// Compress bodies of this size or larger (default 4 KiB).
        compress_over: usize,
        /// Route poll interval (default 30 s).
        poll_namesrv_interval: Duration,
        /// Route expiry (default 30 s).
        route_expiry: Duration,
        /// Heartbeat interval (default 30 s).
        heartbeat_interval: Duration,
        /// Batch split size (default 1 MiB).
        batch_max_bytes: usize,
        /// Async threads (default 4).
        async_threads: usize,
        /// Async queue depth (default 10,000).
        async_queue: usize,
        /// Transaction check-backs waiting for the listener (default 2,000).
        check_queue: usize,
        /// Bytes of half messages (received plus inflated) the waiting
        /// check-backs may hold (default 64 MiB).
        check_queue_bytes: usize,
        /// Requests waiting for their replies at once (default 10,000).
        max_pending_requests: usize,
        /// Latency-aware routing (default off, as in Java).
        latency_aware: bool,
    }

    /// Applies the variables of [`ENV_VARIABLES`] found in the environment;
    /// a value that does not parse is an [`Error::InvalidEnv`] naming it.
    pub fn env_overrides(self) -> Result<Self> {
        self.env_overrides_from(|name| std::env::var(name).ok())
    }

    /// [`env_overrides`](Self::env_overrides) reading from `lookup`.
    pub fn env_overrides_from(mut self, lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let addr = |name: &str| lookup(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        for name in ENV_VARIABLES.iter().filter(|n| n.starts_with("ROCKETMQ_PRODUCER_")) {
            if let Some(v) = lookup(name).filter(|v| v.trim().is_empty()) {
                return Err(env_error(name, &v, "is set but empty"));
            }
        }
        let get = |name: &str| lookup(name).map(|v| v.trim().to_string());
        let c = &mut self.config;
        for name in ["ROCKETMQ_NAMESRV_ADDR", "NAMESRV_ADDR"] {
            if let Some(v) = addr(name) {
                crate::namesrv::parse_address_list(&v).map_err(|e| env_error(name, &v, e.to_string()))?;
                c.namesrv_addr = v;
                break;
            }
        }
        if let Some(v) = get("ROCKETMQ_PRODUCER_GROUP") {
            validate::check_group(&v).map_err(|e| env_error("ROCKETMQ_PRODUCER_GROUP", &v, e.to_string()))?;
            c.group = v;
        }
        #[cfg(feature = "acl")]
        if let Some(credentials) = crate::acl::Credentials::from_env_lookup(&lookup)? {
            c.credentials = Some(credentials);
        }
        if let Some(v) = get("ROCKETMQ_PRODUCER_CLIENT_ID") {
            c.client_id = Some(v);
        }
        if let Some(v) = get("ROCKETMQ_PRODUCER_NAMESPACE") {
            validate::check_group(&v).map_err(|e| env_error("ROCKETMQ_PRODUCER_NAMESPACE", &v, e.to_string()))?;
            c.namespace = Some(v);
        }
        if let Some(v) = get("ROCKETMQ_PRODUCER_RETRIES") {
            c.retries = parse_env("ROCKETMQ_PRODUCER_RETRIES", &v)?;
        }
        if let Some(v) = get("ROCKETMQ_PRODUCER_LATENCY_AWARE") {
            c.latency_aware = parse_env("ROCKETMQ_PRODUCER_LATENCY_AWARE", &v.to_ascii_lowercase())?;
        }
        for (name, slot) in [
            ("ROCKETMQ_PRODUCER_MAX_MESSAGE_SIZE", &mut c.max_message_size),
            ("ROCKETMQ_PRODUCER_COMPRESS_OVER", &mut c.compress_over),
            ("ROCKETMQ_PRODUCER_BATCH_MAX_BYTES", &mut c.batch_max_bytes),
            ("ROCKETMQ_PRODUCER_ASYNC_THREADS", &mut c.async_threads),
            ("ROCKETMQ_PRODUCER_ASYNC_QUEUE", &mut c.async_queue),
        ] {
            if let Some(v) = get(name) {
                *slot = parse_env(name, &v)?;
            }
        }
        for (name, slot) in [
            ("ROCKETMQ_PRODUCER_SEND_TIMEOUT_MS", &mut c.send_timeout),
            ("ROCKETMQ_PRODUCER_POLL_NAMESRV_INTERVAL_MS", &mut c.poll_namesrv_interval),
            ("ROCKETMQ_PRODUCER_ROUTE_EXPIRY_MS", &mut c.route_expiry),
            ("ROCKETMQ_PRODUCER_HEARTBEAT_INTERVAL_MS", &mut c.heartbeat_interval),
        ] {
            if let Some(v) = get(name) {
                let ms: u64 = parse_env(name, &v)?;
                if ms == 0 {
                    return Err(env_error(name, &v, "must be greater than zero"));
                }
                *slot = Duration::from_millis(ms);
            }
        }
        Ok(self)
    }

    /// Checks the values and returns the config.
    pub fn build(self) -> Result<ProducerConfig> {
        let c = self.config;
        validate::check_group(&c.group)?;
        crate::namesrv::parse_address_list(&c.namesrv_addr)?;
        for (what, d) in [
            ("send timeout", c.send_timeout),
            ("name server poll interval", c.poll_namesrv_interval),
            ("route expiry", c.route_expiry),
            ("heartbeat interval", c.heartbeat_interval),
        ] {
            if d.is_zero() {
                return Err(Error::invalid(what, "must be greater than zero"));
            }
        }
        if c.max_message_size == 0 || c.max_message_size > crate::protocol::DEFAULT_MAX_FRAME_SIZE / 2 {
            return Err(Error::invalid("max message size", "must be between 1 byte and 8 MiB"));
        }
        if c.batch_max_bytes == 0 || c.batch_max_bytes > c.max_message_size {
            return Err(Error::invalid("batch max bytes", "must be between 1 and the max message size"));
        }
        if c.check_queue == 0 || c.check_queue_bytes == 0 {
            return Err(Error::invalid("check queue", "must be at least 1"));
        }
        if c.max_pending_requests == 0 {
            return Err(Error::invalid("max pending requests", "must be at least 1"));
        }
        if c.async_threads == 0 || c.async_queue == 0 {
            return Err(Error::invalid("async threads", "threads and queue depth must be at least 1"));
        }
        if let Some(ns) = &c.namespace {
            validate::check_group(ns)
                .map_err(|_| Error::invalid("namespace", format!("{ns:?} is not a valid name")))?;
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn base() -> ProducerConfigBuilder {
        ProducerConfig::builder().group("pg").namesrv_addr("127.0.0.1:9876")
    }

    #[test]
    fn route_limits_default_and_set() {
        assert_eq!(base().build().unwrap().route_limits(), RouteLimits::default());
        let raised = RouteLimits::default().with_max_queues_per_broker(4096);
        assert_eq!(base().route_limits(raised).build().unwrap().route_limits().max_queues_per_broker(), 4096);
    }

    #[test]
    fn java_defaults_and_presets() {
        let c = base().build().unwrap();
        assert_eq!(c.send_timeout(), Duration::from_secs(3));
        assert_eq!(c.retries(), 2);
        assert_eq!(c.max_message_size(), 4 * 1024 * 1024);
        assert_eq!(c.compress_over(), 4096);
        assert_eq!(c.heartbeat_interval(), Duration::from_secs(30));
        assert!(!c.latency_aware());
        let dev = ProducerConfig::preset(Preset::Development).group("pg").namesrv_addr("127.0.0.1:1").build().unwrap();
        assert_eq!(dev.retries(), 0);
        let fast =
            ProducerConfig::preset(Preset::HighPerformance).group("pg").namesrv_addr("127.0.0.1:1").build().unwrap();
        assert_eq!(fast.async_threads(), 8);
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(ProducerConfig::builder().namesrv_addr("127.0.0.1:1").build().is_err(), "empty group");
        assert!(base().namesrv_addr("").build().is_err());
        assert!(base().send_timeout(Duration::ZERO).build().is_err());
        assert!(base().async_threads(0).build().is_err());
        assert!(base().batch_max_bytes(10 * 1024 * 1024).build().is_err());
    }

    #[test]
    fn env_overrides_apply_and_name_the_bad_variable() {
        let env: HashMap<&str, &str> = [
            ("NAMESRV_ADDR", "10.0.0.1:9876"),
            ("ROCKETMQ_PRODUCER_RETRIES", "5"),
            ("ROCKETMQ_PRODUCER_SEND_TIMEOUT_MS", "1500"),
            ("ROCKETMQ_PRODUCER_LATENCY_AWARE", "TRUE"),
        ]
        .into_iter()
        .collect();
        let c = base().env_overrides_from(|k| env.get(k).map(|v| v.to_string())).unwrap().build().unwrap();
        assert_eq!(c.namesrv_addr(), "10.0.0.1:9876");
        assert_eq!(c.retries(), 5);
        assert_eq!(c.send_timeout(), Duration::from_millis(1500));
        assert!(c.latency_aware());
        for (var, value) in [
            ("ROCKETMQ_PRODUCER_RETRIES", "two"),
            ("ROCKETMQ_PRODUCER_SEND_TIMEOUT_MS", "0"),
            ("ROCKETMQ_PRODUCER_ASYNC_THREADS", "-1"),
            ("ROCKETMQ_PRODUCER_LATENCY_AWARE", "maybe"),
            ("ROCKETMQ_PRODUCER_GROUP", ""),
            ("ROCKETMQ_PRODUCER_GROUP", "  "),
            ("ROCKETMQ_PRODUCER_GROUP", "bad group!"),
            ("ROCKETMQ_PRODUCER_NAMESPACE", "a b"),
            ("ROCKETMQ_PRODUCER_RETRIES", ""),
            ("ROCKETMQ_NAMESRV_ADDR", "no-port"),
            ("NAMESRV_ADDR", "host:99999"),
        ] {
            match base().env_overrides_from(|k| (k == var).then(|| value.to_string())) {
                Err(Error::InvalidEnv { variable, .. }) => assert_eq!(variable, var),
                other => panic!("{var}: {other:?}"),
            }
        }
        // A blank ROCKETMQ_NAMESRV_ADDR is unset: NAMESRV_ADDR is used.
        let both = |k: &str| match k {
            "ROCKETMQ_NAMESRV_ADDR" => Some(" ".to_string()),
            "NAMESRV_ADDR" => Some("10.0.0.2:9876".to_string()),
            _ => None,
        };
        assert_eq!(base().env_overrides_from(both).unwrap().build().unwrap().namesrv_addr(), "10.0.0.2:9876");
    }

    #[test]
    fn namespace_wraps_and_unwraps() {
        let c = base().namespace("ns1").build().unwrap();
        assert_eq!(c.with_namespace("T"), "ns1%T");
        assert_eq!(c.with_namespace("ns1%T"), "ns1%T");
        assert_eq!(c.without_namespace("ns1%T"), "T");
    }
}
