//! [`BrokerManager`]: a connection pool per broker, a health state per
//! broker, and one thread that checks every broker at an interval.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use crate::broker::pool::{
    breaks_connection, split_host_port, BrokerConnectionPool, HealthObserver, PoolStats, PooledConnection,
    RequestStats, DEFAULT_POOL_SIZE,
};
use crate::broker::{BrokerClient, ClientConfig};
use crate::error::{Error, OperationKind, ResponseContext, Result};
use crate::protocol::{request, RemotingCommand, ResponseCode};

/// Time between two rounds of health checks: 30 s (the design's value).
pub const DEFAULT_HEALTH_CHECK_INTERVAL: Duration = Duration::from_secs(30);
/// Time one health check may take (checkout and request): 5 s.
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// Consecutive failures that mark a broker [`BrokerState::Failed`]: 3.
pub const DEFAULT_MAX_CONSECUTIVE_FAILURES: u32 = 3;
/// Consecutive successes that take a failed broker back to
/// [`BrokerState::Healthy`]: 2.
pub const DEFAULT_RECOVERY_SUCCESSES: u32 = 2;
/// How long [`BrokerManager::connection`] waits for a free connection: 30 s
/// (r2d2's default).
pub const DEFAULT_CHECKOUT_TIMEOUT: Duration = Duration::from_secs(30);

/// Thread names: `rocketmq-health-<n>`.
static NEXT_CHECKER: AtomicUsize = AtomicUsize::new(1);

use crate::threads::lock;

/// Settings of a [`BrokerManager`].
///
/// ```
/// use std::time::Duration;
/// use rocketmq_blocking::broker::{BrokerManagerConfig, DEFAULT_POOL_SIZE};
///
/// let config = BrokerManagerConfig::builder()
///     .health_check_interval(Duration::from_secs(10))
///     .max_consecutive_failures(5)
///     .build()?;
/// assert_eq!(config.health_check_interval(), Duration::from_secs(10));
/// assert_eq!(config.pool_size(), DEFAULT_POOL_SIZE);
/// assert!(BrokerManagerConfig::builder().pool_size(0).build().is_err());
/// # Ok::<(), rocketmq_blocking::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerManagerConfig {
    health_check_interval: Duration,
    check_timeout: Duration,
    max_consecutive_failures: u32,
    recovery_successes: u32,
    pool_size: usize,
    checkout_timeout: Duration,
    client: ClientConfig,
}

impl Default for BrokerManagerConfig {
    fn default() -> Self {
        BrokerManagerConfig {
            health_check_interval: DEFAULT_HEALTH_CHECK_INTERVAL,
            check_timeout: DEFAULT_CHECK_TIMEOUT,
            max_consecutive_failures: DEFAULT_MAX_CONSECUTIVE_FAILURES,
            recovery_successes: DEFAULT_RECOVERY_SUCCESSES,
            pool_size: DEFAULT_POOL_SIZE,
            checkout_timeout: DEFAULT_CHECKOUT_TIMEOUT,
            client: ClientConfig::default(),
        }
    }
}

impl BrokerManagerConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> BrokerManagerConfigBuilder {
        BrokerManagerConfigBuilder { config: BrokerManagerConfig::default() }
    }
    /// Time between the end of one round of health checks and the start of the next.
    pub fn health_check_interval(&self) -> Duration {
        self.health_check_interval
    }
    /// Time one health check may take.
    pub fn check_timeout(&self) -> Duration {
        self.check_timeout
    }
    /// Consecutive failures that mark a broker failed.
    pub fn max_consecutive_failures(&self) -> u32 {
        self.max_consecutive_failures
    }
    /// Consecutive successes that make a failed broker healthy again.
    pub fn recovery_successes(&self) -> u32 {
        self.recovery_successes
    }
    /// Most connections per broker.
    pub fn pool_size(&self) -> usize {
        self.pool_size
    }
    /// How long a checkout waits for a free connection.
    pub fn checkout_timeout(&self) -> Duration {
        self.checkout_timeout
    }
    /// Settings of every connection.
    pub fn client(&self) -> &ClientConfig {
        &self.client
    }
}

/// Builds a [`BrokerManagerConfig`]; [`build`](Self::build) checks the values.
#[derive(Debug, Clone)]
pub struct BrokerManagerConfigBuilder {
    config: BrokerManagerConfig,
}

impl BrokerManagerConfigBuilder {
    /// Time between rounds of health checks (default 30 s).
    pub fn health_check_interval(mut self, d: Duration) -> Self {
        self.config.health_check_interval = d;
        self
    }
    /// Time one health check may take (default 5 s).
    pub fn check_timeout(mut self, d: Duration) -> Self {
        self.config.check_timeout = d;
        self
    }
    /// Consecutive failures that mark a broker failed (default 3).
    pub fn max_consecutive_failures(mut self, n: u32) -> Self {
        self.config.max_consecutive_failures = n;
        self
    }
    /// Consecutive successes that make a failed broker healthy again (default 2).
    pub fn recovery_successes(mut self, n: u32) -> Self {
        self.config.recovery_successes = n;
        self
    }
    /// Most connections per broker (default 5).
    pub fn pool_size(mut self, n: usize) -> Self {
        self.config.pool_size = n;
        self
    }
    /// How long [`BrokerManager::connection`] waits for a free connection (default 30 s).
    pub fn checkout_timeout(mut self, d: Duration) -> Self {
        self.config.checkout_timeout = d;
        self
    }
    /// Settings of every connection (default [`ClientConfig::default`]).
    pub fn client_config(mut self, config: ClientConfig) -> Self {
        self.config.client = config;
        self
    }
    /// Checks the values and returns the config.
    pub fn build(self) -> Result<BrokerManagerConfig> {
        let c = self.config;
        if c.health_check_interval.is_zero() || c.check_timeout.is_zero() {
            return Err(Error::invalid("health check", "interval and timeout must be greater than zero"));
        }
        if c.max_consecutive_failures == 0 {
            return Err(Error::invalid("max consecutive failures", "must be at least 1"));
        }
        if c.recovery_successes == 0 {
            return Err(Error::invalid("recovery successes", "must be at least 1"));
        }
        if c.pool_size == 0 {
            return Err(Error::invalid("pool size", "must be at least 1"));
        }
        Ok(c)
    }
}

/// Health of a broker, as the manager sees it.
///
/// Every health check and every request recorded through a
/// [`PooledConnection`] is a success or a failure (see the table there;
/// errors where the broker answered, such as a missing topic, are neither).
/// With `max` = [`BrokerManagerConfig::max_consecutive_failures`] and `n` =
/// [`BrokerManagerConfig::recovery_successes`]:
///
/// | state | on success | on failure |
/// |---|---|---|
/// | `Unknown` | `Healthy` | `Unhealthy` (`Failed` if `max` = 1) |
/// | `Healthy` | `Healthy` | `Unhealthy` (`Failed` if `max` = 1) |
/// | `Unhealthy` | `Healthy` | `Failed` at `max` consecutive failures, else `Unhealthy` |
/// | `Failed` | `Recovering` (`Healthy` if `n` = 1) | `Failed` |
/// | `Recovering` | `Healthy` once `n` consecutive successes (counting the one that left `Failed`) | `Failed` |
///
/// A success resets the count of consecutive failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BrokerState {
    /// Not checked yet.
    Unknown,
    /// The last check or request succeeded.
    Healthy,
    /// Failed fewer than `max` times in a row.
    Unhealthy,
    /// Failed `max` times in a row, or again while recovering.
    Failed,
    /// Answering again after `Failed`, but not yet `n` times in a row.
    Recovering,
}

impl BrokerState {
    /// The design's name: `HEALTHY`, `UNHEALTHY`, `FAILED`, `UNKNOWN`, `RECOVERING`.
    pub fn as_str(self) -> &'static str {
        match self {
            BrokerState::Unknown => "UNKNOWN",
            BrokerState::Healthy => "HEALTHY",
            BrokerState::Unhealthy => "UNHEALTHY",
            BrokerState::Failed => "FAILED",
            BrokerState::Recovering => "RECOVERING",
        }
    }
}

impl fmt::Display for BrokerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the manager knows about one broker, from
/// [`BrokerManager::all_brokers_stats`] or [`BrokerManager::broker_stats`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BrokerConnectionInfo {
    /// Address, as given to [`BrokerManager::add_broker`].
    pub addr: String,
    /// Name (the host of the address unless one was given).
    pub name: String,
    /// Health state.
    pub state: BrokerState,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// Health checks done.
    pub checks: u64,
    /// When the last health check ended.
    pub last_check: Option<SystemTime>,
    /// How long the last health check took.
    pub last_check_latency: Option<Duration>,
    /// Why the last health check failed (`None` when it succeeded).
    pub last_check_error: Option<String>,
    /// Requests recorded through the pool's guards (health checks not counted):
    /// total, successes, failures, [`success_rate`](RequestStats::success_rate),
    /// [`average_latency`](RequestStats::average_latency).
    pub requests: RequestStats,
    /// The pool's connections: active, idle, [`total`](PoolStats::total), created, ...
    pub connections: PoolStats,
}

#[derive(Debug, Clone, Copy)]
struct Policy {
    max_failures: u32,
    recovery_successes: u32,
}

#[derive(Debug, Clone)]
struct HealthState {
    state: BrokerState,
    consecutive_failures: u32,
    recovery_run: u32,
    checks: u64,
    last_check: Option<SystemTime>,
    last_check_latency: Option<Duration>,
    last_check_error: Option<String>,
}

impl HealthState {
    fn new() -> Self {
        HealthState {
            state: BrokerState::Unknown,
            consecutive_failures: 0,
            recovery_run: 0,
            checks: 0,
            last_check: None,
            last_check_latency: None,
            last_check_error: None,
        }
    }

    /// One step of the state machine documented on [`BrokerState`].
    fn apply(&mut self, up: bool, policy: Policy) {
        use BrokerState::*;
        if up {
            self.consecutive_failures = 0;
            self.state = match self.state {
                Failed | Recovering => {
                    self.recovery_run = if self.state == Failed { 1 } else { self.recovery_run.saturating_add(1) };
                    if self.recovery_run >= policy.recovery_successes {
                        self.recovery_run = 0;
                        Healthy
                    } else {
                        Recovering
                    }
                }
                Unknown | Healthy | Unhealthy => Healthy,
            };
        } else {
            self.consecutive_failures = self.consecutive_failures.saturating_add(1);
            self.recovery_run = 0;
            self.state =
                if self.consecutive_failures >= policy.max_failures || matches!(self.state, Failed | Recovering) {
                    Failed
                } else {
                    Unhealthy
                };
        }
    }
}

struct Health {
    state: Mutex<HealthState>,
    policy: Policy,
}

impl Health {
    fn observe(&self, up: bool) {
        lock(&self.state).apply(up, self.policy);
    }

    fn record_check(&self, result: Result<()>, latency: Duration) {
        let mut s = lock(&self.state);
        s.checks += 1;
        s.last_check = Some(SystemTime::now());
        s.last_check_latency = Some(latency);
        s.last_check_error = result.as_ref().err().map(|e| e.to_string());
        let before = s.state;
        s.apply(result.is_ok(), self.policy);
        if s.state != before {
            log_info!("broker state: from={before:?} to={:?} error={:?}", s.state, s.last_check_error);
        }
    }
}

struct BrokerEntry {
    addr: String,
    name: String,
    pool: Arc<BrokerConnectionPool>,
    health: Arc<Health>,
}

impl BrokerEntry {
    fn info(&self) -> BrokerConnectionInfo {
        let h = lock(&self.health.state).clone();
        BrokerConnectionInfo {
            addr: self.addr.clone(),
            name: self.name.clone(),
            state: h.state,
            consecutive_failures: h.consecutive_failures,
            checks: h.checks,
            last_check: h.last_check,
            last_check_latency: h.last_check_latency,
            last_check_error: h.last_check_error,
            requests: self.pool.request_stats(),
            connections: self.pool.stats(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lifecycle {
    Created,
    Running,
    ShutDown,
}

struct Inner {
    config: BrokerManagerConfig,
    brokers: Mutex<BTreeMap<String, Arc<BrokerEntry>>>,
    lifecycle: Mutex<Lifecycle>,
    /// Wakes the health thread for shutdown.
    wake: Condvar,
}

impl Inner {
    fn is_shut_down(&self) -> bool {
        *lock(&self.lifecycle) == Lifecycle::ShutDown
    }

    /// Waits one interval; `false` when the manager shut down meanwhile.
    fn wait_interval(&self) -> bool {
        let deadline = Instant::now().checked_add(self.config.health_check_interval);
        let mut lc = lock(&self.lifecycle);
        loop {
            if *lc == Lifecycle::ShutDown {
                return false;
            }
            lc = match deadline {
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return true;
                    }
                    self.wake.wait_timeout(lc, left).unwrap_or_else(|p| p.into_inner()).0
                }
                None => self.wake.wait(lc).unwrap_or_else(|p| p.into_inner()),
            };
        }
    }

    fn run_checker(&self) {
        loop {
            let entries: Vec<Arc<BrokerEntry>> = lock(&self.brokers).values().cloned().collect();
            for entry in entries {
                if self.is_shut_down() {
                    return;
                }
                self.check(&entry);
            }
            if !self.wait_interval() {
                return;
            }
        }
    }

    /// One health check: borrow a connection (opening one if the pool has
    /// room), ask for the broker's runtime info, give the connection back.
    fn check(&self, entry: &BrokerEntry) {
        let timeout = self.config.check_timeout;
        let started = Instant::now();
        let result = match entry.pool.checkout(timeout, false) {
            // Every connection is busy with requests (whose outcomes count
            // already), or the broker was just removed: no check this round.
            Err(Error::PoolTimeout { .. }) | Err(Error::PoolClosed { .. }) => return,
            Err(e) => Err(e),
            Ok(mut conn) => {
                let left = timeout.saturating_sub(started.elapsed()).max(Duration::from_millis(1));
                let result = probe(&conn, left);
                if matches!(&result, Err(e) if breaks_connection(e)) {
                    conn.mark_broken();
                }
                result
            }
        };
        // Shutdown closes the pools, which fails a check in flight: not the broker's fault.
        if !self.is_shut_down() {
            entry.health.record_check(result, started.elapsed());
        }
    }
}

/// GET_BROKER_RUNTIME_INFO (code 28), expecting SUCCESS.
fn probe(client: &BrokerClient, timeout: Duration) -> Result<()> {
    let resp = client.invoke(RemotingCommand::request(request::GET_BROKER_RUNTIME_INFO), timeout)?;
    match resp.response_code() {
        ResponseCode::Success => Ok(()),
        code => {
            let ctx = ResponseContext {
                operation: "health check",
                kind: OperationKind::Other,
                addr: client.addr(),
                topic: "",
                queue_id: -1,
            };
            Err(Error::from_response(code, resp.remark.as_deref(), ctx))
        }
    }
}

/// Connection pools for many brokers, with a health state per broker kept
/// up to date by one background thread and by the requests made through
/// the pools.
///
/// # Lifecycle
///
/// | call | effect |
/// |---|---|
/// | [`new`](Self::new) | no thread yet; brokers can be added and used |
/// | [`start`](Self::start) | starts the health thread `rocketmq-health-<n>`; it checks every broker at once, then once per interval; calling it again does nothing |
/// | [`shutdown`](Self::shutdown) (or `Drop`) | wakes and joins the thread, closes every pool (waiting checkouts fail with [`Error::PoolClosed`], lent connections are closed, which also ends a check in flight) and forgets the brokers; it returns within a second even mid-interval or mid-check, unless the thread is opening a TCP connection (bounded by the connect timeout of the [`ClientConfig`], 3 s by default) |
///
/// After `shutdown`, `start`, `add_broker` and every connection call fail
/// with [`Error::NotRunning`]; the stats and `healthy_brokers` are empty.
///
/// # Health checks
///
/// Each round checks the brokers one after another: borrow a connection from
/// the broker's pool (a new one is opened, and kept, when the pool has room),
/// send GET_BROKER_RUNTIME_INFO and expect SUCCESS, all within the check
/// timeout (opening a connection is bounded by the connect timeout of the
/// [`ClientConfig`]). When every connection is lent out for the whole check
/// timeout, the broker is skipped that round: the requests using them report
/// their own outcomes. See [`BrokerState`] for how outcomes change the state.
///
/// `BrokerManager` is `Send + Sync`: share it in an `Arc`.
///
/// ```no_run
/// use rocketmq_blocking::broker::{BrokerManager, BrokerManagerConfig};
/// use rocketmq_blocking::MessageQueue;
///
/// let manager = BrokerManager::new(BrokerManagerConfig::default());
/// manager.add_broker("127.0.0.1:10911", Some("broker-a"))?;
/// manager.start()?;
///
/// // A scoped guard: the connection goes back to the pool when it drops.
/// let queue = MessageQueue::new("TopicTest", "broker-a", 0);
/// let max = manager.connection("127.0.0.1:10911")?.call(|c| c.max_offset(&queue))?;
/// println!("max offset {max}");
///
/// for info in manager.all_brokers_stats() {
///     println!("{} {} {:?}", info.addr, info.state, info.requests.success_rate());
/// }
/// manager.shutdown();
/// # Ok::<(), rocketmq_blocking::Error>(())
/// ```
pub struct BrokerManager {
    inner: Arc<Inner>,
    checker: Mutex<Option<JoinHandle<()>>>,
}

impl fmt::Debug for BrokerManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One lock at a time: `add_broker` takes brokers, then lifecycle.
        let lifecycle = *lock(&self.inner.lifecycle);
        let brokers: Vec<String> = lock(&self.inner.brokers).keys().cloned().collect();
        f.debug_struct("BrokerManager").field("lifecycle", &lifecycle).field("brokers", &brokers).finish()
    }
}

impl BrokerManager {
    /// A manager with no brokers and no thread yet.
    pub fn new(config: BrokerManagerConfig) -> BrokerManager {
        BrokerManager {
            inner: Arc::new(Inner {
                config,
                brokers: Mutex::new(BTreeMap::new()),
                lifecycle: Mutex::new(Lifecycle::Created),
                wake: Condvar::new(),
            }),
            checker: Mutex::new(None),
        }
    }

    /// The settings.
    pub fn config(&self) -> &BrokerManagerConfig {
        &self.inner.config
    }

    /// Whether the health thread runs.
    pub fn is_running(&self) -> bool {
        *lock(&self.inner.lifecycle) == Lifecycle::Running
    }

    /// Starts the health thread (see the lifecycle table); does nothing
    /// when it runs already. Fails after [`shutdown`](Self::shutdown).
    pub fn start(&self) -> Result<()> {
        let mut checker = lock(&self.checker);
        let mut lc = lock(&self.inner.lifecycle);
        match *lc {
            Lifecycle::ShutDown => return Err(Error::NotRunning("broker manager")),
            Lifecycle::Running => return Ok(()),
            Lifecycle::Created => {}
        }
        let name = format!("rocketmq-health-{}", NEXT_CHECKER.fetch_add(1, Ordering::Relaxed));
        let inner = Arc::clone(&self.inner);
        let handle = thread::Builder::new()
            .name(name.clone())
            .spawn(move || inner.run_checker())
            .map_err(|source| Error::ThreadSpawn { name, source })?;
        *lc = Lifecycle::Running;
        *checker = Some(handle);
        Ok(())
    }

    /// Stops and joins the health thread and closes every pool (see the
    /// lifecycle table). Calling it again does nothing.
    pub fn shutdown(&self) {
        let mut checker = lock(&self.checker);
        *lock(&self.inner.lifecycle) = Lifecycle::ShutDown;
        self.inner.wake.notify_all();
        let entries = std::mem::take(&mut *lock(&self.inner.brokers));
        for entry in entries.values() {
            // Also fails a health check in flight at once.
            entry.pool.close();
        }
        if let Some(handle) = checker.take() {
            if handle.thread().id() != thread::current().id() {
                let _ = handle.join();
            }
        }
    }

    /// Adds a broker at `addr` (`host:port`, `a.b.c.d:port` or
    /// `[ipv6]:port`) named `name`, or its host when `None` (`::1` for
    /// `[::1]:10911`). Nothing is connected yet; its state is
    /// [`BrokerState::Unknown`].
    ///
    /// Returns `true` when added, `false` when `addr` was managed already
    /// (the existing entry, name included, is kept). A malformed address is
    /// [`Error::InvalidAddress`] naming it (the host is not resolved here);
    /// an empty name is [`Error::InvalidArgument`].
    ///
    /// ```
    /// use rocketmq_blocking::broker::{BrokerManager, BrokerManagerConfig};
    /// use rocketmq_blocking::Error;
    ///
    /// let manager = BrokerManager::new(BrokerManagerConfig::default());
    /// assert!(manager.add_broker("[::1]:10911", None)?);
    /// assert_eq!(manager.broker_stats("[::1]:10911").unwrap().name, "::1");
    /// assert!(!manager.add_broker("[::1]:10911", Some("other"))?);
    /// match manager.add_broker("::1:10911", None) {
    ///     Err(Error::InvalidAddress { input, .. }) => assert_eq!(input, "::1:10911"),
    ///     other => panic!("{other:?}"),
    /// }
    /// # Ok::<(), rocketmq_blocking::Error>(())
    /// ```
    pub fn add_broker(&self, addr: &str, name: Option<&str>) -> Result<bool> {
        let (host, _) = split_host_port(addr)?;
        let name = match name {
            Some(n) if n.trim().is_empty() => return Err(Error::invalid("broker name", "is empty")),
            Some(n) => n,
            None => host,
        };
        let mut brokers = lock(&self.inner.brokers);
        // Checked under the brokers lock: shutdown sets the flag before it
        // empties the map, so no broker is added after that.
        if self.inner.is_shut_down() {
            return Err(Error::NotRunning("broker manager"));
        }
        if brokers.contains_key(addr) {
            return Ok(false);
        }
        let policy = Policy {
            max_failures: self.inner.config.max_consecutive_failures,
            recovery_successes: self.inner.config.recovery_successes,
        };
        let health = Arc::new(Health { state: Mutex::new(HealthState::new()), policy });
        let observer: HealthObserver = {
            let health = Arc::clone(&health);
            Arc::new(move |up| health.observe(up))
        };
        let pool = BrokerConnectionPool::with_observer(
            addr,
            &self.inner.config.client,
            self.inner.config.pool_size,
            Some(observer),
        )?;
        let entry = BrokerEntry { addr: addr.to_string(), name: name.to_string(), pool: Arc::new(pool), health };
        brokers.insert(addr.to_string(), Arc::new(entry));
        Ok(true)
    }

    /// Removes a broker and closes its pool: idle and lent connections are
    /// closed, checkouts waiting on it fail with [`Error::PoolClosed`].
    /// Returns whether it was managed.
    pub fn remove_broker(&self, addr: &str) -> bool {
        let removed = lock(&self.inner.brokers).remove(addr);
        match removed {
            Some(entry) => {
                entry.pool.close();
                true
            }
            None => false,
        }
    }

    /// The pool of a broker, `None` when it is not managed.
    pub fn connection_pool(&self, addr: &str) -> Option<Arc<BrokerConnectionPool>> {
        lock(&self.inner.brokers).get(addr).map(|e| Arc::clone(&e.pool))
    }

    fn pool_for(&self, addr: &str) -> Result<Arc<BrokerConnectionPool>> {
        if self.inner.is_shut_down() {
            return Err(Error::NotRunning("broker manager"));
        }
        self.connection_pool(addr).ok_or_else(|| Error::UnknownBroker { addr: addr.to_string() })
    }

    /// A connection to `addr` as a scoped guard; it goes back to the pool
    /// when dropped (see [`PooledConnection`] for how to record requests).
    ///
    /// Waits up to [`BrokerManagerConfig::checkout_timeout`] for a free
    /// connection. Errors: [`Error::UnknownBroker`], [`Error::PoolTimeout`],
    /// [`Error::PoolClosed`] (removed meanwhile), [`Error::NotRunning`]
    /// after shutdown, or the connect error.
    pub fn connection(&self, addr: &str) -> Result<PooledConnection> {
        self.pool_for(addr)?.get(self.inner.config.checkout_timeout)
    }

    /// The same as [`connection`](Self::connection), for callers that keep
    /// the connection beyond one scope; give it back with
    /// [`release_connection`](Self::release_connection) (dropping it has
    /// the same effect).
    pub fn get_connection(&self, addr: &str) -> Result<PooledConnection> {
        self.connection(addr)
    }

    /// Gives a connection back to its pool (closes it if it broke).
    pub fn release_connection(&self, conn: PooledConnection) {
        drop(conn);
    }

    /// Stats of every managed broker, sorted by address.
    pub fn all_brokers_stats(&self) -> Vec<BrokerConnectionInfo> {
        let entries: Vec<Arc<BrokerEntry>> = lock(&self.inner.brokers).values().cloned().collect();
        entries.iter().map(|e| e.info()).collect()
    }

    /// Stats of one broker, `None` when it is not managed.
    pub fn broker_stats(&self, addr: &str) -> Option<BrokerConnectionInfo> {
        let entry = lock(&self.inner.brokers).get(addr).cloned();
        entry.map(|e| e.info())
    }

    /// State of one broker, `None` when it is not managed.
    pub fn broker_state(&self, addr: &str) -> Option<BrokerState> {
        let entry = lock(&self.inner.brokers).get(addr).cloned();
        entry.map(|e| lock(&e.health.state).state)
    }

    /// Addresses of the brokers in state [`BrokerState::Healthy`], sorted.
    pub fn healthy_brokers(&self) -> Vec<String> {
        let entries: Vec<Arc<BrokerEntry>> = lock(&self.inner.brokers).values().cloned().collect();
        entries.iter().filter(|e| lock(&e.health.state).state == BrokerState::Healthy).map(|e| e.addr.clone()).collect()
    }
}

impl Drop for BrokerManager {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use BrokerState::*;

    fn run(policy: Policy, outcomes: &str) -> Vec<BrokerState> {
        let mut h = HealthState::new();
        outcomes
            .chars()
            .map(|c| {
                h.apply(c == '+', policy);
                h.state
            })
            .collect()
    }

    const DEFAULT: Policy = Policy { max_failures: 3, recovery_successes: 2 };

    #[test]
    fn state_machine() {
        assert_eq!(run(DEFAULT, "+"), [Healthy]);
        assert_eq!(run(DEFAULT, "-"), [Unhealthy]);
        assert_eq!(run(DEFAULT, "+--+"), [Healthy, Unhealthy, Unhealthy, Healthy]);
        assert_eq!(run(DEFAULT, "---"), [Unhealthy, Unhealthy, Failed]);
        assert_eq!(run(DEFAULT, "----++"), [Unhealthy, Unhealthy, Failed, Failed, Recovering, Healthy]);
        // A failure while recovering goes back to Failed; the run starts over.
        assert_eq!(run(DEFAULT, "---+-++"), [Unhealthy, Unhealthy, Failed, Recovering, Failed, Recovering, Healthy]);
        let strict = Policy { max_failures: 1, recovery_successes: 3 };
        assert_eq!(run(strict, "-+++"), [Failed, Recovering, Recovering, Healthy]);
        let lenient = Policy { max_failures: 2, recovery_successes: 1 };
        assert_eq!(run(lenient, "--+"), [Unhealthy, Failed, Healthy]);
    }

    #[test]
    fn consecutive_failures_reset_on_success() {
        let mut h = HealthState::new();
        for up in [false, false, true, false] {
            h.apply(up, DEFAULT);
        }
        assert_eq!((h.state, h.consecutive_failures), (Unhealthy, 1));
    }

    #[test]
    fn config_checks_values() {
        let c = BrokerManagerConfig::default();
        assert_eq!(c.health_check_interval(), Duration::from_secs(30));
        assert_eq!(c.check_timeout(), Duration::from_secs(5));
        assert_eq!(c.max_consecutive_failures(), 3);
        assert_eq!(c.recovery_successes(), 2);
        assert_eq!(c.pool_size(), 5);
        assert_eq!(c.checkout_timeout(), Duration::from_secs(30));
        let built = BrokerManagerConfig::builder().pool_size(2).build().unwrap();
        assert_eq!((built.pool_size(), built.max_consecutive_failures()), (2, 3));
        for b in [
            BrokerManagerConfig::builder().health_check_interval(Duration::ZERO),
            BrokerManagerConfig::builder().check_timeout(Duration::ZERO),
            BrokerManagerConfig::builder().max_consecutive_failures(0),
            BrokerManagerConfig::builder().recovery_successes(0),
            BrokerManagerConfig::builder().pool_size(0),
        ] {
            assert!(matches!(b.build(), Err(Error::InvalidArgument { .. })));
        }
    }

    #[test]
    fn send_sync() {
        fn check<T: Send + Sync>() {}
        check::<BrokerManager>();
    }

    #[test]
    fn add_remove_and_errors() {
        let m = BrokerManager::new(BrokerManagerConfig::default());
        assert!(m.add_broker("127.0.0.1:10911", None).unwrap());
        assert!(m.add_broker("[::1]:10911", Some("v6")).unwrap());
        assert!(!m.add_broker("127.0.0.1:10911", Some("again")).unwrap());
        assert!(matches!(m.add_broker("127.0.0.1:10911", Some(" ")), Err(Error::InvalidArgument { .. })));
        match m.add_broker("127.0.0.1", None) {
            Err(Error::InvalidAddress { input, .. }) => assert_eq!(input, "127.0.0.1"),
            other => panic!("{other:?}"),
        }
        let stats = m.all_brokers_stats();
        let names: Vec<_> = stats.iter().map(|i| (i.addr.as_str(), i.name.as_str(), i.state)).collect();
        assert_eq!(names, [("127.0.0.1:10911", "127.0.0.1", Unknown), ("[::1]:10911", "v6", Unknown)]);
        assert!(m.healthy_brokers().is_empty());
        assert!(m.connection_pool("127.0.0.1:10911").is_some());
        assert!(matches!(m.connection("127.0.0.1:1"), Err(Error::UnknownBroker { .. })));
        assert!(m.remove_broker("127.0.0.1:10911"));
        assert!(!m.remove_broker("127.0.0.1:10911"));
        assert!(m.connection_pool("127.0.0.1:10911").is_none());
        m.shutdown();
        assert!(matches!(m.connection("[::1]:10911"), Err(Error::NotRunning(_))));
        assert!(matches!(m.add_broker("127.0.0.1:10911", None), Err(Error::NotRunning(_))));
        assert!(matches!(m.start(), Err(Error::NotRunning(_))));
        assert!(m.all_brokers_stats().is_empty());
    }

    /// The health thread is stuck in a check on a peer that never answers
    /// (check timeout 30 s): shutdown still returns at once.
    #[test]
    fn shutdown_interrupts_a_check_in_flight() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let config = BrokerManagerConfig::builder().check_timeout(Duration::from_secs(30)).build().unwrap();
        let m = BrokerManager::new(config);
        m.add_broker(&addr, None).unwrap();
        m.start().unwrap();
        assert!(m.is_running());
        // The kernel completes the connect from the listen backlog; the
        // request then waits for an answer that never comes.
        let pool = m.connection_pool(&addr).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while pool.stats().active == 0 {
            assert!(Instant::now() < deadline, "the check never borrowed a connection");
            thread::sleep(Duration::from_millis(5));
        }
        let started = Instant::now();
        m.shutdown();
        assert!(started.elapsed() < Duration::from_secs(1), "shutdown took {:?}", started.elapsed());
        assert!(!m.is_running());
        let s = pool.stats();
        assert_eq!((s.active, s.idle, s.discarded), (0, 0, 1));
        assert!(m.all_brokers_stats().is_empty(), "the manager forgets its brokers on shutdown");
        drop(l);
    }
}
