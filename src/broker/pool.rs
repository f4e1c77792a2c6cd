//! [`BrokerConnectionPool`]: up to `size` connections to one broker, lent
//! out as [`PooledConnection`] guards.
//!
//! The shape is r2d2's: one `Mutex` around the pool's state and a `Condvar`
//! that a checkout waits on until a connection comes back or its deadline
//! passes. The guard gives its connection back on `Drop` (also while the
//! thread unwinds from a panic); a connection that broke is closed instead
//! of being given back, and the pool opens a new one when it is next asked.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::Deref;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::broker::{BrokerClient, ClientConfig};
use crate::error::{Error, Result};

/// Connections per broker when nothing else is configured: 5 (the design's value).
pub const DEFAULT_POOL_SIZE: usize = 5;

/// Called with `true` when a request through the pool shows the broker
/// answering and `false` when it shows the broker failing (see
/// [`PooledConnection::record`]). The manager feeds its health state with it.
pub(crate) type HealthObserver = Arc<dyn Fn(bool) + Send + Sync>;

use crate::threads::lock;

/// Splits a broker address into host and port, without resolving it.
///
/// Accepts `host:port`, `a.b.c.d:port` and `[ipv6]:port`; the host comes
/// back without brackets. Anything else is [`Error::InvalidAddress`] naming
/// the input.
pub(crate) fn split_host_port(input: &str) -> Result<(&str, u16)> {
    let invalid = |reason| Error::InvalidAddress { input: input.to_string(), reason };
    if input.is_empty() {
        return Err(invalid("empty address"));
    }
    if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("contains whitespace or control characters"));
    }
    let (host, port) = if let Some(rest) = input.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or(invalid("missing `]` after an IPv6 host"))?;
        let port = after.strip_prefix(':').ok_or(invalid("expected [ipv6]:port"))?;
        if host.parse::<Ipv6Addr>().is_err() {
            return Err(invalid("not an IPv6 address inside `[ ]`"));
        }
        (host, port)
    } else {
        let (host, port) = input.rsplit_once(':').ok_or(invalid("expected host:port"))?;
        if host.contains(':') {
            return Err(invalid("IPv6 hosts must be written as [addr]:port"));
        }
        if host.is_empty() {
            return Err(invalid("empty host"));
        }
        if !host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')) {
            return Err(invalid("host has characters not allowed in a host name"));
        }
        if host.chars().all(|c| c.is_ascii_digit() || c == '.') && host.parse::<Ipv4Addr>().is_err() {
            return Err(invalid("not an IPv4 address"));
        }
        (host, port)
    };
    if port.is_empty() || !port.chars().all(|c| c.is_ascii_digit()) {
        return Err(invalid("port is not a number from 1 to 65535"));
    }
    match port.parse::<u16>() {
        Ok(0) => Err(invalid("port 0")),
        Ok(p) => Ok((host, p)),
        Err(_) => Err(invalid("port is not a number from 1 to 65535")),
    }
}

/// Whether an error means the connection can no longer be trusted: the
/// connection failed, timed out or the peer broke the protocol.
pub(crate) fn breaks_connection(e: &Error) -> bool {
    e.is_connection() || matches!(e, Error::Protocol { .. })
}

/// Connection counters of one pool, as returned by [`BrokerConnectionPool::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct PoolStats {
    /// Most connections the pool keeps open at once.
    pub size: usize,
    /// Connections lent out now (plus connects in progress).
    pub active: usize,
    /// Open connections waiting in the pool.
    pub idle: usize,
    /// Most connections that were lent out at once.
    pub max_active: usize,
    /// Connections opened.
    pub created: u64,
    /// Connections closed instead of being lent again: broken or closed by
    /// the peer, over the size, or closed with the pool.
    pub discarded: u64,
    /// Connects that failed.
    pub connect_failures: u64,
    /// Checkouts that had to wait because every connection was lent out.
    pub waits: u64,
    /// Time those checkouts spent waiting, added up.
    pub total_wait: Duration,
}

impl PoolStats {
    /// Open connections: lent out plus idle.
    pub fn total(&self) -> usize {
        self.active + self.idle
    }
}

/// Outcomes of the requests recorded through [`PooledConnection::record`]
/// (or [`PooledConnection::call`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RequestStats {
    /// Requests recorded.
    pub total: u64,
    /// Requests that returned `Ok`.
    pub successes: u64,
    /// Requests that returned an error (of any kind).
    pub failures: u64,
    /// Latency of all recorded requests, added up.
    pub total_latency: Duration,
}

impl RequestStats {
    /// `successes / total`, or `None` before the first request.
    pub fn success_rate(&self) -> Option<f64> {
        (self.total > 0).then(|| self.successes as f64 / self.total as f64)
    }

    /// Mean latency of the recorded requests (successes and failures), or
    /// `None` before the first request.
    pub fn average_latency(&self) -> Option<Duration> {
        (self.total > 0).then(|| {
            let nanos = self.total_latency.as_nanos() / u128::from(self.total);
            Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
        })
    }
}

struct PoolState {
    idle: Vec<Arc<BrokerClient>>,
    /// Lent-out connections by guard id; kept so `close` can close them.
    out: Vec<(u64, Arc<BrokerClient>)>,
    /// Slots reserved by checkouts that are connecting now.
    connecting: usize,
    next_id: u64,
    closed: bool,
    stats: PoolStats,
}

impl PoolState {
    fn open(&self) -> usize {
        self.idle.len() + self.out.len() + self.connecting
    }

    fn lend(&mut self, client: Arc<BrokerClient>) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.out.push((id, client));
        self.stats.max_active = self.stats.max_active.max(self.out.len() + self.connecting);
        id
    }
}

/// Up to `size` connections to one broker, opened when first needed.
///
/// [`get`](Self::get) lends a connection as a [`PooledConnection`] guard:
/// an idle one if there is one, else a new one while fewer than `size` are
/// open, else it waits (on a `Condvar`) until one comes back, and fails with
/// [`Error::PoolTimeout`] when its timeout runs out. The guard gives the
/// connection back when dropped, also when the thread panics. A connection
/// that closed or was marked broken is closed instead of given back.
/// [`close`](Self::close) closes the pool: idle connections at once, lent
/// ones are closed too (their requests fail at once) and discarded when
/// they come back, and waiting or later checkouts fail with
/// [`Error::PoolClosed`].
///
/// `get` takes `&Arc<Self>` so a guard can outlive the borrow it came from
/// (the manager lends pools as `Arc<BrokerConnectionPool>`).
///
/// ```no_run
/// use std::sync::Arc;
/// use std::time::Duration;
/// use rocketmq_blocking::broker::{BrokerConnectionPool, ClientConfig};
/// use rocketmq_blocking::MessageQueue;
///
/// let pool = Arc::new(BrokerConnectionPool::new("127.0.0.1:10911", &ClientConfig::default(), 5)?);
/// let mut conn = pool.get(Duration::from_secs(3))?;
/// // `call` times the request and records its outcome in `request_stats`.
/// let max = conn.call(|c| c.max_offset(&MessageQueue::new("TopicTest", "broker-a", 0)))?;
/// drop(conn); // back to the pool
/// assert_eq!(pool.stats().idle, 1);
/// println!("max offset {max}, {:?}", pool.request_stats());
/// # Ok::<(), rocketmq_blocking::Error>(())
/// ```
pub struct BrokerConnectionPool {
    addr: String,
    config: ClientConfig,
    size: usize,
    state: Mutex<PoolState>,
    available: Condvar,
    requests: Mutex<RequestStats>,
    observer: Option<HealthObserver>,
}

impl fmt::Debug for BrokerConnectionPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerConnectionPool")
            .field("addr", &self.addr)
            .field("stats", &self.stats())
            .field("closed", &self.is_closed())
            .finish()
    }
}

enum Lent {
    Idle(Arc<BrokerClient>),
    Slot,
}

impl BrokerConnectionPool {
    /// A pool of at most `size` connections to `addr` (`host:port` or
    /// `[ipv6]:port`), each opened with `config`. Nothing is opened yet.
    ///
    /// Fails with [`Error::InvalidAddress`] for a malformed address and
    /// [`Error::InvalidArgument`] for a size of 0.
    pub fn new(addr: &str, config: &ClientConfig, size: usize) -> Result<BrokerConnectionPool> {
        Self::with_observer(addr, config, size, None)
    }

    pub(crate) fn with_observer(
        addr: &str,
        config: &ClientConfig,
        size: usize,
        observer: Option<HealthObserver>,
    ) -> Result<BrokerConnectionPool> {
        split_host_port(addr)?;
        if size == 0 {
            return Err(Error::invalid("pool size", "must be at least 1"));
        }
        Ok(BrokerConnectionPool {
            addr: addr.to_string(),
            config: config.clone(),
            size,
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                out: Vec::new(),
                connecting: 0,
                next_id: 0,
                closed: false,
                stats: PoolStats { size, ..PoolStats::default() },
            }),
            available: Condvar::new(),
            requests: Mutex::new(RequestStats::default()),
            observer,
        })
    }

    /// The broker address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Most connections kept open at once.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Settings new connections are opened with.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Connection counters now.
    pub fn stats(&self) -> PoolStats {
        let st = lock(&self.state);
        PoolStats { active: st.out.len() + st.connecting, idle: st.idle.len(), ..st.stats }
    }

    /// Request counters now.
    pub fn request_stats(&self) -> RequestStats {
        *lock(&self.requests)
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        lock(&self.state).closed
    }

    /// Lends a connection, waiting up to `timeout` while all are lent out.
    ///
    /// Opening a new connection is not counted against `timeout`: it is
    /// bounded by the config's connect timeout. `Duration::ZERO` never
    /// waits. Errors: [`Error::PoolTimeout`] when no connection came back
    /// in time, [`Error::PoolClosed`] after [`close`](Self::close), and the
    /// connect error when a new connection cannot be opened.
    pub fn get(self: &Arc<Self>, timeout: Duration) -> Result<PooledConnection> {
        self.checkout(timeout, true)
    }

    /// [`get`](Self::get); `report` says whether a failed connect is
    /// reported to the observer (the health checker reports its own).
    pub(crate) fn checkout(self: &Arc<Self>, timeout: Duration, report: bool) -> Result<PooledConnection> {
        let started = Instant::now();
        let deadline = started.checked_add(timeout);
        // Connections found dead; closed after the lock is released.
        let mut dead = Vec::new();
        let mut waited = false;
        let mut st = lock(&self.state);
        let lent = loop {
            if st.closed {
                break Err(Error::PoolClosed { addr: self.addr.clone() });
            }
            let mut found = None;
            while let Some(client) = st.idle.pop() {
                if client.is_connected() {
                    found = Some(client);
                    break;
                }
                st.stats.discarded += 1;
                dead.push(client);
            }
            if let Some(client) = found {
                break Ok(Lent::Idle(client));
            }
            if st.open() < self.size {
                st.connecting += 1;
                st.stats.max_active = st.stats.max_active.max(st.out.len() + st.connecting);
                break Ok(Lent::Slot);
            }
            if !waited {
                waited = true;
                st.stats.waits += 1;
            }
            st = match deadline {
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break Err(Error::PoolTimeout { addr: self.addr.clone(), timeout });
                    }
                    self.available.wait_timeout(st, left).unwrap_or_else(|p| p.into_inner()).0
                }
                None => self.available.wait(st).unwrap_or_else(|p| p.into_inner()),
            };
        };
        if waited {
            st.stats.total_wait += started.elapsed();
        }
        match lent {
            Ok(Lent::Idle(client)) => {
                let id = st.lend(Arc::clone(&client));
                return Ok(PooledConnection { pool: Arc::clone(self), client, id, broken: false });
            }
            Ok(Lent::Slot) => {}
            Err(e) => return Err(e),
        }
        drop(st);
        drop(dead);
        self.open_connection(report)
    }

    /// Opens a connection for a slot reserved by `checkout`.
    fn open_connection(self: &Arc<Self>, report: bool) -> Result<PooledConnection> {
        match BrokerClient::connect(&self.addr, &self.config) {
            Ok(client) => {
                let client = Arc::new(client);
                let mut st = lock(&self.state);
                st.connecting -= 1;
                st.stats.created += 1;
                if st.closed {
                    st.stats.discarded += 1;
                    drop(st);
                    client.close();
                    return Err(Error::PoolClosed { addr: self.addr.clone() });
                }
                let id = st.lend(Arc::clone(&client));
                Ok(PooledConnection { pool: Arc::clone(self), client, id, broken: false })
            }
            Err(e) => {
                {
                    let mut st = lock(&self.state);
                    st.connecting -= 1;
                    st.stats.connect_failures += 1;
                }
                // The slot is free again: a waiter may try to connect.
                self.available.notify_one();
                if report {
                    self.observe(false);
                }
                Err(e)
            }
        }
    }

    /// Takes a connection back from guard `id`.
    fn give_back(&self, id: u64, broken: bool) {
        let discard = {
            let mut st = lock(&self.state);
            let Some(pos) = st.out.iter().position(|(i, _)| *i == id) else { return };
            let (_, client) = st.out.swap_remove(pos);
            if broken || st.closed || !client.is_connected() || st.open() >= self.size {
                st.stats.discarded += 1;
                Some(client)
            } else {
                st.idle.push(client);
                None
            }
        };
        // Either a connection or a slot is free now.
        self.available.notify_one();
        if let Some(client) = discard {
            // Shuts the socket down; the reader thread is joined when the
            // last reference (the guard's) is dropped, which is quick then.
            client.close();
        }
    }

    /// Closes the pool. Idle connections are closed now; lent ones are
    /// closed too (requests on them fail at once with a connection error)
    /// and are discarded when their guards are dropped. Checkouts waiting
    /// now and later fail with [`Error::PoolClosed`].
    pub fn close(&self) {
        let (idle, out) = {
            let mut st = lock(&self.state);
            st.closed = true;
            let idle = std::mem::take(&mut st.idle);
            st.stats.discarded += idle.len() as u64;
            let out: Vec<Arc<BrokerClient>> = st.out.iter().map(|(_, c)| Arc::clone(c)).collect();
            (idle, out)
        };
        self.available.notify_all();
        for client in out.iter().chain(idle.iter()) {
            client.close();
        }
    }

    fn record(&self, ok: bool, latency: Duration, health: Option<bool>) {
        {
            let mut r = lock(&self.requests);
            r.total += 1;
            if ok {
                r.successes += 1;
            } else {
                r.failures += 1;
            }
            r.total_latency += latency;
        }
        if let Some(up) = health {
            self.observe(up);
        }
    }

    fn observe(&self, up: bool) {
        if let Some(observer) = &self.observer {
            observer(up);
        }
    }
}

/// A connection lent by a [`BrokerConnectionPool`]; derefs to
/// [`BrokerClient`] and goes back to the pool when dropped.
///
/// Requests made through the guard count in the pool's [`RequestStats`]
/// (and the manager's health state) when they are recorded: run them with
/// [`call`](Self::call), or time them yourself and pass the result to
/// [`record`](Self::record). How a result counts:
///
/// | result | request stats | broker health | connection |
/// |---|---|---|---|
/// | `Ok(_)` | success | success | given back |
/// | connection error ([`Error::is_connection`]) or [`Error::Protocol`] | failure | failure | closed on drop |
/// | any other error (e.g. [`Error::TopicNotFound`]: the broker answered) | failure | unchanged | given back |
///
/// Dropping the guard never blocks for long and never panics: it takes the
/// pool's lock (never held across I/O), and a discarded connection's socket
/// is shut down before its reader thread is joined.
pub struct PooledConnection {
    pool: Arc<BrokerConnectionPool>,
    client: Arc<BrokerClient>,
    id: u64,
    broken: bool,
}

impl fmt::Debug for PooledConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledConnection")
            .field("addr", &self.client.addr())
            .field("connected", &self.client.is_connected())
            .field("broken", &self.broken)
            .finish()
    }
}

impl PooledConnection {
    /// Runs `f` on the connection, timing it, and [`record`](Self::record)s
    /// its result.
    ///
    /// ```no_run
    /// # use rocketmq_blocking::broker::{BrokerManager, BrokerManagerConfig};
    /// # let manager = BrokerManager::new(BrokerManagerConfig::default());
    /// # manager.add_broker("127.0.0.1:10911", None)?;
    /// use rocketmq_blocking::MessageQueue;
    ///
    /// let queue = MessageQueue::new("TopicTest", "broker-a", 0);
    /// let max = manager.connection("127.0.0.1:10911")?.call(|c| c.max_offset(&queue))?;
    /// # Ok::<(), rocketmq_blocking::Error>(())
    /// ```
    pub fn call<T>(&mut self, f: impl FnOnce(&BrokerClient) -> Result<T>) -> Result<T> {
        let started = Instant::now();
        let result = f(&self.client);
        self.record(&result, started.elapsed());
        result
    }

    /// Records the outcome of one request made on this connection and how
    /// long it took (see the table on [`PooledConnection`]). A connection
    /// or protocol error also marks the connection broken.
    pub fn record<T>(&mut self, result: &Result<T>, latency: Duration) {
        let health = match result {
            Ok(_) => Some(true),
            Err(e) if breaks_connection(e) => {
                self.broken = true;
                Some(false)
            }
            Err(_) => None,
        };
        self.pool.record(result.is_ok(), latency, health);
    }

    /// Marks the connection broken: it is closed when the guard is dropped
    /// instead of going back to the pool.
    pub fn mark_broken(&mut self) {
        self.broken = true;
    }

    /// Whether the connection was marked broken (by [`mark_broken`](Self::mark_broken)
    /// or a recorded connection error).
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// The pool the connection came from.
    pub fn pool(&self) -> &Arc<BrokerConnectionPool> {
        &self.pool
    }
}

impl Deref for PooledConnection {
    type Target = BrokerClient;

    fn deref(&self) -> &BrokerClient {
        &self.client
    }
}

impl Drop for PooledConnection {
    fn drop(&mut self) {
        self.pool.give_back(self.id, self.broken);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A socket that accepts connections and keeps them open; enough for
    /// the pool's bookkeeping, which never sends a request here.
    struct Listener {
        addr: String,
        accepted: Arc<Mutex<Vec<std::net::TcpStream>>>,
    }

    fn listener() -> Listener {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let keep = Arc::clone(&accepted);
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                keep.lock().unwrap().push(s);
            }
        });
        Listener { addr, accepted }
    }

    fn pool(addr: &str, size: usize) -> Arc<BrokerConnectionPool> {
        Arc::new(BrokerConnectionPool::new(addr, &ClientConfig::default(), size).unwrap())
    }

    fn wait_until(what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn addresses() {
        assert_eq!(split_host_port("127.0.0.1:10911").unwrap(), ("127.0.0.1", 10911));
        assert_eq!(split_host_port("broker-a.example:1").unwrap(), ("broker-a.example", 1));
        assert_eq!(split_host_port("[::1]:10911").unwrap(), ("::1", 10911));
        assert_eq!(split_host_port("[fe80::1:2]:65535").unwrap(), ("fe80::1:2", 65535));
        for (bad, reason) in [
            ("", "empty address"),
            ("localhost", "expected host:port"),
            (":10911", "empty host"),
            ("host:", "port is not a number from 1 to 65535"),
            ("host:+1", "port is not a number from 1 to 65535"),
            ("host:65536", "port is not a number from 1 to 65535"),
            ("host:0", "port 0"),
            ("::1:10911", "IPv6 hosts must be written as [addr]:port"),
            ("[::1]10911", "expected [ipv6]:port"),
            ("[::1:10911", "missing `]` after an IPv6 host"),
            ("[nope]:10911", "not an IPv6 address inside `[ ]`"),
            ("999.1.1.1:10911", "not an IPv4 address"),
            ("ho st:1", "contains whitespace or control characters"),
            ("h/st:1", "host has characters not allowed in a host name"),
        ] {
            match split_host_port(bad) {
                Err(Error::InvalidAddress { input, reason: r }) => {
                    assert_eq!(input, bad);
                    assert_eq!(r, reason, "{bad:?}");
                }
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn new_checks_arguments() {
        let c = ClientConfig::default();
        assert!(matches!(BrokerConnectionPool::new("nope", &c, 1), Err(Error::InvalidAddress { .. })));
        assert!(matches!(BrokerConnectionPool::new("127.0.0.1:1", &c, 0), Err(Error::InvalidArgument { .. })));
        let p = BrokerConnectionPool::new("127.0.0.1:1", &c, 3).unwrap();
        assert_eq!(p.stats(), PoolStats { size: 3, ..PoolStats::default() });
        assert_eq!(p.request_stats().success_rate(), None);
        assert_eq!(p.request_stats().average_latency(), None);
    }

    #[test]
    fn send_sync() {
        fn check<T: Send + Sync>() {}
        check::<BrokerConnectionPool>();
        check::<PooledConnection>();
    }

    #[test]
    fn waits_times_out_and_reuses() {
        let l = listener();
        let p = pool(&l.addr, 2);
        let a = p.get(Duration::from_secs(1)).unwrap();
        let b = p.get(Duration::from_secs(1)).unwrap();
        assert_eq!((p.stats().active, p.stats().created), (2, 2));
        let started = Instant::now();
        match p.get(Duration::from_millis(100)) {
            Err(Error::PoolTimeout { addr, timeout }) => {
                assert_eq!(addr, l.addr);
                assert_eq!(timeout, Duration::from_millis(100));
            }
            other => panic!("expected a pool timeout, got {other:?}"),
        }
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(100) && waited < Duration::from_secs(2), "{waited:?}");
        drop(a);
        let s = p.stats();
        assert_eq!((s.active, s.idle, s.waits), (1, 1, 1));
        assert!(s.total_wait >= Duration::from_millis(100));
        let c = p.get(Duration::ZERO).unwrap();
        assert_eq!(p.stats().created, 2, "the idle connection was reused");
        drop((b, c));
        assert_eq!(p.stats().total(), 2);
        wait_until("two accepted sockets", || l.accepted.lock().unwrap().len() == 2);
    }

    #[test]
    fn broken_and_closed_connections_are_discarded() {
        let l = listener();
        let p = pool(&l.addr, 2);
        let mut a = p.get(Duration::from_secs(1)).unwrap();
        a.mark_broken();
        drop(a);
        assert_eq!((p.stats().idle, p.stats().discarded), (0, 1));

        let mut b = p.get(Duration::from_secs(1)).unwrap();
        b.record::<()>(&Err(Error::ConnectionClosed { addr: l.addr.clone(), reason: "test".into() }), Duration::ZERO);
        assert!(b.is_broken());
        drop(b);
        assert_eq!((p.stats().idle, p.stats().discarded), (0, 2));

        // Closed by the peer while idle: dropped at the next checkout.
        let c = p.get(Duration::from_secs(1)).unwrap();
        drop(c);
        assert_eq!(p.stats().idle, 1);
        wait_until("three accepted sockets", || l.accepted.lock().unwrap().len() == 3);
        l.accepted.lock().unwrap().clear();
        wait_until("the idle connection to see the peer close", || {
            lock(&p.state).idle.iter().all(|c| !c.is_connected())
        });
        let d = p.get(Duration::from_secs(1)).unwrap();
        assert!(d.is_connected());
        let s = p.stats();
        assert_eq!((s.discarded, s.created, s.active, s.idle), (3, 4, 1, 0));
    }

    #[test]
    fn request_stats_and_observer() {
        let l = listener();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let observer: HealthObserver = Arc::new(move |up| log.lock().unwrap().push(up));
        let p = Arc::new(
            BrokerConnectionPool::with_observer(&l.addr, &ClientConfig::default(), 1, Some(observer)).unwrap(),
        );
        let mut g = p.get(Duration::from_secs(1)).unwrap();
        assert_eq!(g.call(|_| Ok(7)).unwrap(), 7);
        g.record(&Ok(()), Duration::from_millis(30));
        let not_found = Error::TopicNotFound { topic: "t".into(), remark: String::new() };
        g.record::<()>(&Err(not_found), Duration::from_millis(30));
        assert!(!g.is_broken(), "the broker answered: the connection is fine");
        let r = p.request_stats();
        assert_eq!((r.total, r.successes, r.failures), (3, 2, 1));
        assert!(r.total_latency >= Duration::from_millis(60));
        assert_eq!(r.success_rate(), Some(2.0 / 3.0));
        assert!(r.average_latency().unwrap() >= Duration::from_millis(20));
        assert_eq!(*seen.lock().unwrap(), vec![true, true]);
        drop(g);
        assert_eq!(p.stats().idle, 1);
    }

    #[test]
    fn panicking_holder_gives_the_connection_back() {
        let l = listener();
        let p = pool(&l.addr, 1);
        let p2 = Arc::clone(&p);
        let r = std::thread::spawn(move || {
            let _g = p2.get(Duration::from_secs(1)).unwrap();
            panic!("holder panics");
        })
        .join();
        assert!(r.is_err());
        let s = p.stats();
        assert_eq!((s.active, s.idle, s.discarded), (0, 1, 0));
    }

    #[test]
    fn close_wakes_waiters_and_closes_lent_connections() {
        let l = listener();
        let p = pool(&l.addr, 1);
        let held = p.get(Duration::from_secs(1)).unwrap();
        let waiting = Arc::new(AtomicUsize::new(0));
        let (p2, w2) = (Arc::clone(&p), Arc::clone(&waiting));
        let waiter = std::thread::spawn(move || {
            w2.store(1, Ordering::SeqCst);
            let started = Instant::now();
            (p2.get(Duration::from_secs(30)).map(|_| ()), started.elapsed())
        });
        wait_until("the waiter to block", || p.stats().waits == 1);
        p.close();
        let (result, waited) = waiter.join().unwrap();
        assert!(matches!(result, Err(Error::PoolClosed { .. })), "{result:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
        assert!(!held.is_connected(), "a lent connection is closed with the pool");
        drop(held);
        let s = p.stats();
        assert_eq!((s.active, s.idle, s.discarded), (0, 0, 1));
        assert!(matches!(p.get(Duration::ZERO), Err(Error::PoolClosed { .. })));
    }

    #[test]
    fn failed_connect_frees_its_slot() {
        // Bind then drop: nothing listens on this port now.
        let addr = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
        let p = pool(&addr, 1);
        assert!(matches!(p.get(Duration::from_secs(1)), Err(Error::Connect { .. })));
        assert!(matches!(p.get(Duration::ZERO), Err(Error::Connect { .. })), "the slot was freed");
        let s = p.stats();
        assert_eq!((s.connect_failures, s.created, s.active, s.waits), (2, 0, 0, 0));
    }
}
