//! The name server client: topic routes, cluster info, topic creation.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::{Error, OperationKind, ResponseContext, Result};
use crate::net::{Connection, ConnectionConfig};
use crate::protocol::header::{CreateTopicRequestHeader, GetRouteInfoRequestHeader};
use crate::protocol::route::{RouteLimits, PERM_READ, PERM_WRITE};
use crate::protocol::{request, ClusterInfo, RemotingCommand, ResponseCode, TopicRouteData};
use crate::threads::lock;

/// Timeout of name server requests (Java: 3 s).
pub const DEFAULT_NAMESRV_TIMEOUT: Duration = Duration::from_secs(3);
/// Queue count of topics made by [`TopicConfig::new`] (as `mqadmin updateTopic`).
pub const DEFAULT_TOPIC_QUEUE_NUMS: i32 = 8;

/// Parses a Java-style name server list: `"a:9876;b:9876"` (`,` also works).
pub fn parse_address_list(list: &str) -> Result<Vec<String>> {
    let addrs: Vec<String> =
        list.split([';', ',']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect();
    if addrs.is_empty() {
        return Err(Error::InvalidAddress { input: list.to_string(), reason: "no name server address" });
    }
    for a in &addrs {
        crate::net::connection_resolve(a)?;
    }
    Ok(addrs)
}

/// What to create with [`NameServerClient::create_topic`].
///
/// ```
/// use rocketmq_blocking::TopicConfig;
///
/// // 4 read and 4 write queues per broker, read-only (perm 4).
/// let config = TopicConfig::new("Orders").queues(4).perm(4);
/// assert_eq!((config.read_queue_nums, config.write_queue_nums, config.perm), (4, 4, 4));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicConfig {
    /// Topic name.
    pub topic: String,
    /// Readable queues per broker.
    pub read_queue_nums: i32,
    /// Writable queues per broker.
    pub write_queue_nums: i32,
    /// Permission bits (read 4 | write 2).
    pub perm: i32,
    /// Ordered topic.
    pub order: bool,
}

impl TopicConfig {
    /// A readable and writable topic with [`DEFAULT_TOPIC_QUEUE_NUMS`] queues per broker.
    pub fn new(topic: impl Into<String>) -> Self {
        TopicConfig {
            topic: topic.into(),
            read_queue_nums: DEFAULT_TOPIC_QUEUE_NUMS,
            write_queue_nums: DEFAULT_TOPIC_QUEUE_NUMS,
            perm: PERM_READ | PERM_WRITE,
            order: false,
        }
    }

    /// Sets both queue counts.
    pub fn queues(mut self, n: i32) -> Self {
        self.read_queue_nums = n;
        self.write_queue_nums = n;
        self
    }

    /// Sets the permission bits.
    pub fn perm(mut self, perm: i32) -> Self {
        self.perm = perm;
        self
    }
}

/// A client of one or more name servers.
///
/// Requests go to the address that worked last; when it fails the next one
/// is tried, and the one that answers is remembered.
///
/// ```no_run
/// use rocketmq_blocking::NameServerClient;
///
/// let ns = NameServerClient::new("127.0.0.1:9876;127.0.0.2:9876")?;
/// let route = ns.topic_route("TopicTest")?;
/// for b in &route.broker_datas {
///     println!("{} at {:?}", b.broker_name, b.master_addr());
/// }
/// # Ok::<(), rocketmq_blocking::Error>(())
/// ```
pub struct NameServerClient {
    addrs: Vec<String>,
    preferred: AtomicUsize,
    conn: Mutex<Option<(usize, Arc<Connection>)>>,
    config: ConnectionConfig,
    timeout: Duration,
    route_limits: RouteLimits,
    shut: AtomicBool,
}

impl std::fmt::Debug for NameServerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NameServerClient").field("addrs", &self.addrs).finish()
    }
}

impl NameServerClient {
    /// A client of the servers in `list` with default settings.
    pub fn new(list: &str) -> Result<Self> {
        Self::with_config(list, ConnectionConfig::default(), DEFAULT_NAMESRV_TIMEOUT)
    }

    /// A client with its own connection settings and request timeout.
    pub fn with_config(list: &str, config: ConnectionConfig, timeout: Duration) -> Result<Self> {
        Ok(NameServerClient {
            addrs: parse_address_list(list)?,
            preferred: AtomicUsize::new(0),
            conn: Mutex::new(None),
            config,
            timeout,
            route_limits: RouteLimits::default(),
            shut: AtomicBool::new(false),
        })
    }

    /// Uses `limits` for the routes [`topic_route`](Self::topic_route)
    /// accepts (default [`RouteLimits::default`]: 1,024 queues per broker,
    /// 128 brokers).
    pub fn with_route_limits(mut self, limits: RouteLimits) -> Self {
        self.route_limits = limits;
        self
    }

    /// The limits routes are checked against.
    pub fn route_limits(&self) -> RouteLimits {
        self.route_limits
    }

    /// A client with the connection settings of a broker client's config
    /// (credentials included) and the default name server timeout.
    pub(crate) fn for_client(list: &str, config: &crate::broker::ClientConfig) -> Result<Self> {
        Self::with_config(list, config.connection().clone(), DEFAULT_NAMESRV_TIMEOUT)
    }

    /// The configured addresses.
    pub fn addresses(&self) -> &[String] {
        &self.addrs
    }

    /// The address that answered last.
    pub fn active_address(&self) -> &str {
        &self.addrs[self.preferred.load(Ordering::Relaxed) % self.addrs.len()]
    }

    fn connection(&self, index: usize, limit: Duration) -> Result<Arc<Connection>> {
        let mut slot = lock(&self.conn);
        if let Some((i, c)) = slot.as_ref() {
            if *i == index && !c.is_closed() {
                return Ok(Arc::clone(c));
            }
        }
        let mut config = self.config.clone();
        config.connect_timeout = config.connect_timeout.min(limit.max(Duration::from_millis(1)));
        let c = Arc::new(Connection::connect(&self.addrs[index], &config)?);
        *slot = Some((index, Arc::clone(&c)));
        Ok(c)
    }

    /// Closes the cached connection (a request waiting on it fails at once;
    /// its reader thread ends); the next request opens a new one.
    pub fn close(&self) {
        if let Some((_, conn)) = lock(&self.conn).take() {
            conn.close();
        }
    }

    /// Closes the cached connection (a request waiting on it fails at once)
    /// and refuses every later request with [`Error::NotRunning`], so that
    /// an owner shutting down is not held up by a request moving on to the
    /// next address.
    pub fn shutdown(&self) {
        self.shut.store(true, Ordering::SeqCst);
        self.close();
    }

    /// Sends a request to the first name server that answers, within one
    /// request timeout in all.
    ///
    /// An address that cannot be reached is skipped for the next one while
    /// time is left. After an address fails (unreachable or timed out) the
    /// next request starts at the following address (and a connection whose stream may
    /// be out of step is closed, see [`crate::net`]).
    pub fn invoke(&self, cmd: RemotingCommand) -> Result<RemotingCommand> {
        self.invoke_within(cmd, self.timeout)
    }

    /// Sends a request to the first name server that answers, within
    /// `timeout` in all (connects included): an address that cannot be
    /// reached is skipped for the next one while time is left, and the next
    /// request starts at the address after a failed one.
    pub fn invoke_within(&self, cmd: RemotingCommand, timeout: Duration) -> Result<RemotingCommand> {
        let deadline = Instant::now() + timeout;
        let first = self.preferred.load(Ordering::Relaxed);
        let mut last_err = None;
        for step in 0..self.addrs.len() {
            if self.shut.load(Ordering::SeqCst) {
                return Err(Error::NotRunning("name server client (shut down)"));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let index = (first + step) % self.addrs.len();
            let result = self.connection(index, left).and_then(|c| c.invoke(cmd.clone(), left));
            match result {
                Ok(resp) => {
                    self.preferred.store(index, Ordering::Relaxed);
                    return Ok(resp);
                }
                Err(e) if e.is_connection() => {
                    self.preferred.store((index + 1) % self.addrs.len(), Ordering::Relaxed);
                    if e.is_timeout() {
                        return Err(e);
                    }
                    last_err = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or(Error::Timeout {
            operation: crate::protocol::codes::request_name(cmd.code),
            addr: self.addrs.join(";"),
            timeout,
        }))
    }

    /// The route of a topic, checked against the [route
    /// limits](Self::route_limits): a route announcing more queues or
    /// brokers than allowed (or a negative queue count) is refused with
    /// [`ProtocolError::RouteLimit`](crate::ProtocolError::RouteLimit)
    /// before anything is built from it.
    pub fn topic_route(&self, topic: &str) -> Result<TopicRouteData> {
        self.topic_route_within(topic, self.timeout)
    }

    /// The route of a topic, within `timeout` (for callers with a deadline of their own).
    pub fn topic_route_within(&self, topic: &str, timeout: Duration) -> Result<TopicRouteData> {
        let header = GetRouteInfoRequestHeader { topic: topic.to_string() };
        let cmd = RemotingCommand::request(request::GET_ROUTEINFO_BY_TOPIC).with_ext_fields(header.to_ext_fields());
        let resp = self.invoke_within(cmd, timeout)?;
        match resp.response_code() {
            ResponseCode::Success => TopicRouteData::from_json(&resp.body)
                .and_then(|route| self.route_limits.check(topic, &route).map(|()| route))
                .map_err(|e| Error::protocol(self.active_address(), e)),
            ResponseCode::TopicNotExist => {
                Err(Error::TopicNotFound { topic: topic.to_string(), remark: resp.remark.unwrap_or_default() })
            }
            code => Err(self.response_error(code, resp.remark.as_deref(), "get topic route", topic)),
        }
    }

    /// Brokers and clusters the name server knows.
    pub fn cluster_info(&self) -> Result<ClusterInfo> {
        let resp = self.invoke(RemotingCommand::request(request::GET_BROKER_CLUSTER_INFO))?;
        match resp.response_code() {
            ResponseCode::Success => {
                ClusterInfo::from_json(&resp.body).map_err(|e| Error::protocol(self.active_address(), e))
            }
            code => Err(self.response_error(code, resp.remark.as_deref(), "get cluster info", "")),
        }
    }

    fn response_error(&self, code: ResponseCode, remark: Option<&str>, operation: &'static str, topic: &str) -> Error {
        let ctx =
            ResponseContext { operation, kind: OperationKind::Other, addr: self.active_address(), topic, queue_id: -1 };
        Error::from_response(code, remark, ctx)
    }

    /// Creates or updates a topic on one broker (admin operation).
    pub fn create_topic_on_broker(&self, broker_addr: &str, config: &TopicConfig) -> Result<()> {
        let header = CreateTopicRequestHeader {
            topic: config.topic.clone(),
            default_topic: "TBW102".into(),
            read_queue_nums: config.read_queue_nums,
            write_queue_nums: config.write_queue_nums,
            perm: config.perm,
            topic_filter_type: "SINGLE_TAG".into(),
            topic_sys_flag: Some(0),
            order: config.order,
        };
        let conn = Connection::connect(broker_addr, &self.config)?;
        let cmd = RemotingCommand::request(request::UPDATE_AND_CREATE_TOPIC).with_ext_fields(header.to_ext_fields());
        let resp = conn.invoke(cmd, self.timeout)?;
        match resp.response_code() {
            ResponseCode::Success => Ok(()),
            code => {
                let ctx = ResponseContext {
                    operation: "create topic",
                    kind: OperationKind::Other,
                    addr: broker_addr,
                    topic: &config.topic,
                    queue_id: -1,
                };
                Err(Error::from_response(code, resp.remark.as_deref(), ctx))
            }
        }
    }

    /// Creates or updates a topic on every master of `cluster`; returns the
    /// broker names it was created on.
    pub fn create_topic(&self, cluster: &str, config: &TopicConfig) -> Result<Vec<String>> {
        let info = self.cluster_info()?;
        let names = info.cluster_addr_table.get(cluster).cloned().unwrap_or_default();
        if names.is_empty() {
            return Err(Error::invalid("cluster", format!("cluster {cluster:?} has no brokers")));
        }
        for name in &names {
            let addr = info.broker_addr_table.get(name).and_then(|b| b.master_addr()).ok_or_else(|| {
                Error::invalid("cluster", format!("broker {name} of cluster {cluster:?} has no master"))
            })?;
            self.create_topic_on_broker(addr, config)?;
        }
        Ok(names)
    }
}
