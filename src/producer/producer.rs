//! `Producer`: sync, oneway, async, ordered and batch sends with retries.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::config::ProducerConfig;
use super::request::{reply_handler, RequestTable};
use super::route::{TopicBrokerMapping, TopicPublishInfo};
use super::router::{hash_index, MessageRouter, RoutingStats, RoutingStrategy};
use crate::broker::{default_client_id, BrokerClient, ClientConfig, SendResult};
use crate::error::{Error, Result};
use crate::namesrv::NameServerClient;
use crate::net::fanout::invoke_all;
use crate::net::RequestHandler;
use crate::protocol::body::{HeartbeatData, ProducerData};
use crate::protocol::message::batch_entry_size;
use crate::protocol::{Message, MessageQueue};
use crate::threads::spawn;

/// Longest `shutdown` waits for the brokers to answer the unregister (all
/// brokers at once): a dead or silent broker must not hold it up.
pub const SHUTDOWN_UNREGISTER_WAIT: Duration = Duration::from_millis(500);
use crate::validate;

/// The topic whose route new topics borrow until the broker creates them.
const AUTO_CREATE_TOPIC: &str = "TBW102";
/// Queues per broker of an auto-created topic (Java `defaultTopicQueueNums`).
const AUTO_CREATE_QUEUE_NUMS: i32 = 4;

/// Makes the request handler of the connection to one broker address.
pub(crate) type HandlerFactory = Arc<dyn Fn(&str) -> RequestHandler + Send + Sync>;

use crate::threads::lock;

/// Chooses a queue for [`Producer::send_with_selector`]: returns an index
/// into `queues` (the topic's writable queues, brokers by name, ids
/// ascending). Closures `Fn(&[MessageQueue], &Message, &A) -> usize` are
/// selectors.
pub trait MessageQueueSelector<A: ?Sized> {
    /// The index of the queue for `msg`.
    fn select(&self, queues: &[MessageQueue], msg: &Message, arg: &A) -> usize;
}

impl<A: ?Sized, F: Fn(&[MessageQueue], &Message, &A) -> usize> MessageQueueSelector<A> for F {
    fn select(&self, queues: &[MessageQueue], msg: &Message, arg: &A) -> usize {
        self(queues, msg, arg)
    }
}

/// Java's `SelectMessageQueueByHash`: the queue of `arg`'s `String.hashCode`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SelectByHash;

impl<A: AsRef<str> + ?Sized> MessageQueueSelector<A> for SelectByHash {
    fn select(&self, queues: &[MessageQueue], _msg: &Message, arg: &A) -> usize {
        hash_index(arg.as_ref(), queues.len())
    }
}

/// Splits `msgs` into batches whose encoded size stays within `max_bytes`,
/// keeping their order. A single message larger than that is an error.
pub fn split_batch(msgs: Vec<Message>, max_bytes: usize) -> Result<Vec<Vec<Message>>> {
    let mut out: Vec<Vec<Message>> = Vec::new();
    let mut current = Vec::new();
    let mut size = 0;
    for m in msgs {
        // 40 bytes for the unique key the client adds to each message.
        let s = batch_entry_size(&m) + 40;
        if s > max_bytes {
            return Err(Error::invalid(
                "batch",
                format!("a message of {s} bytes exceeds the {max_bytes}-byte batch limit"),
            ));
        }
        if size + s > max_bytes && !current.is_empty() {
            out.push(std::mem::take(&mut current));
            size = 0;
        }
        size += s;
        current.push(m);
    }
    if !current.is_empty() {
        out.push(current);
    }
    Ok(out)
}

type Callback = Box<dyn FnOnce(Result<SendResult>) + Send + 'static>;

struct AsyncTask {
    msg: Message,
    callback: Callback,
}

/// State shared by the producer's handle and its threads.
pub(crate) struct Inner {
    pub(crate) config: ProducerConfig,
    pub(crate) group: String,
    pub(crate) client_id: String,
    client_config: ClientConfig,
    namesrv: NameServerClient,
    pub(crate) routes: TopicBrokerMapping,
    pub(crate) router: MessageRouter,
    clients: Mutex<HashMap<String, Arc<BrokerClient>>>,
    handler: Option<HandlerFactory>,
    /// Requests waiting for replies (request-reply).
    pub(crate) requests: Arc<RequestTable>,
    running: AtomicBool,
    stop: Mutex<bool>,
    wake: Condvar,
}

impl Inner {
    pub(crate) fn check_running(&self) -> Result<()> {
        if self.running.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(Error::NotRunning("producer"))
        }
    }

    /// The connection to a broker, opened on first use (the connect waits
    /// until `deadline` at most) and registered by a heartbeat that is sent
    /// without waiting for its answer: the broker learns the group's
    /// connection from it (transaction check-backs come over it), and the
    /// periodic heartbeats report the broker's health.
    pub(crate) fn client(&self, addr: &str, deadline: Instant) -> Result<Arc<BrokerClient>> {
        if *lock(&self.stop) {
            return Err(Error::NotRunning("producer"));
        }
        if let Some(c) = lock(&self.clients).get(addr) {
            if c.is_connected() {
                return Ok(Arc::clone(c));
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::Timeout { operation: "connect", addr: addr.to_string(), timeout: Duration::ZERO });
        }
        let client = Arc::new(BrokerClient::connect_within(addr, &self.client_config, left)?);
        client.set_request_handler(self.handler.as_ref().map(|make| make(addr)));
        lock(&self.clients).insert(addr.to_string(), Arc::clone(&client));
        // Shutdown sets the stop flag before it takes the connections: one
        // opened meanwhile (by the background thread's heartbeat) is closed
        // here, so nothing waits on it.
        if *lock(&self.stop) {
            lock(&self.clients).remove(addr);
            client.close();
            return Err(Error::NotRunning("producer"));
        }
        let heartbeat = BrokerClient::heartbeat_command(&self.heartbeat_data());
        let _ = client.connection().invoke_async(heartbeat, Box::new(|_| {}));
        Ok(client)
    }

    /// An open connection to `addr`, if there is one.
    pub(crate) fn client_by_addr(&self, addr: &str) -> Option<Arc<BrokerClient>> {
        lock(&self.clients).get(addr).filter(|c| c.is_connected()).cloned()
    }

    pub(crate) fn heartbeat_data(&self) -> HeartbeatData {
        HeartbeatData {
            client_id: self.client_id.clone(),
            producer_data_set: vec![ProducerData { group_name: self.group.clone() }],
            consumer_data_set: Vec::new(),
        }
    }

    /// The writable queues of a topic (name on the wire): cached, or fetched.
    /// An expired route is still used while no name server can be reached
    /// (brokers usually outlive a name server outage; Java does the same).
    pub(crate) fn topic_info(&self, topic: &str, deadline: Instant) -> Result<Arc<TopicPublishInfo>> {
        if let Some(info) = self.routes.available_queues(topic) {
            return Ok(info);
        }
        let left = || deadline.saturating_duration_since(Instant::now());
        match self.namesrv.topic_route_within(topic, left()) {
            Ok(route) => Ok(self.routes.update_route(topic, route)),
            Err(e) if e.is_connection() => self.routes.cached_route(topic).ok_or(e),
            // A new topic: send with the template topic's brokers; the broker
            // creates it (autoCreateTopicEnable), as the Java client does.
            // But a route once known is kept: a name server that has just
            // restarted knows no topic until the brokers register again (up
            // to their registration period), and Java never drops a route on
            // TOPIC_NOT_EXIST.
            Err(Error::TopicNotFound { .. }) => {
                if let Some(info) = self.routes.cached_route(topic) {
                    return Ok(info);
                }
                let mut route =
                    self.namesrv.topic_route_within(AUTO_CREATE_TOPIC, left()).map_err(|_| Error::TopicNotFound {
                        topic: topic.to_string(),
                        remark: "no route, and no auto-create template topic".into(),
                    })?;
                for q in &mut route.queue_datas {
                    q.write_queue_nums = q.write_queue_nums.min(AUTO_CREATE_QUEUE_NUMS);
                    q.read_queue_nums = q.write_queue_nums;
                }
                Ok(self.routes.update_route(topic, route))
            }
            Err(e) => Err(e),
        }
    }

    /// The message as sent: validated, topic with the namespace.
    fn wire_message(&self, msg: &Message) -> Result<Message> {
        validate::check_message(msg, self.config.max_message_size())?;
        let mut wire = msg.clone();
        wire.set_topic(self.config.with_namespace(msg.topic()));
        Ok(wire)
    }

    fn user_result(&self, mut r: SendResult) -> SendResult {
        r.queue.topic = self.config.without_namespace(&r.queue.topic).to_string();
        r
    }

    /// Sends with up to `retries` more attempts on retryable errors, each on
    /// another broker when there is one, within the send timeout.
    fn send_with_retries(
        &self,
        info: &TopicPublishInfo,
        route_msg: &Message,
        strategy: RoutingStrategy,
        deadline: Instant,
        send: impl Fn(&BrokerClient, &MessageQueue, Duration) -> Result<SendResult>,
    ) -> Result<SendResult> {
        let mut attempts: Vec<Error> = Vec::new();
        let mut avoid: Option<String> = None;
        for _ in 0..=self.config.retries() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                if attempts.is_empty() {
                    attempts.push(self.out_of_time(route_msg.topic()));
                }
                break;
            }
            let route = self.router.route_message(info, route_msg, strategy, avoid.as_deref())?;
            let broker = route.queue.broker_name.clone();
            let t0 = Instant::now();
            let result = self.client(&route.broker_addr, deadline).and_then(|c| send(&c, &route.queue, left));
            match result {
                Ok(r) => {
                    self.router.report_result(&broker, t0.elapsed());
                    return Ok(self.user_result(r));
                }
                Err(e) => {
                    self.router.report_failure(&broker, &e);
                    let retry = e.is_retryable();
                    log_debug!("send failed: topic={} broker={broker} retry={retry} error={e}", route_msg.topic());
                    attempts.push(e);
                    avoid = Some(broker);
                    if !retry {
                        break;
                    }
                }
            }
        }
        if attempts.len() == 1 {
            Err(attempts.remove(0))
        } else {
            Err(Error::SendFailed { attempts })
        }
    }

    pub(crate) fn send(&self, msg: &Message, strategy: RoutingStrategy) -> Result<SendResult> {
        self.send_before(msg, strategy, Instant::now() + self.config.send_timeout())
    }

    /// [`send`](Self::send) with retries until `deadline`.
    pub(crate) fn send_before(
        &self,
        msg: &Message,
        strategy: RoutingStrategy,
        deadline: Instant,
    ) -> Result<SendResult> {
        self.check_running()?;
        let wire = self.wire_message(msg)?;
        let info = self.topic_info(wire.topic(), deadline)?;
        self.send_with_retries(&info, &wire, strategy, deadline, |c, q, t| c.send_within(&self.group, q, &wire, t))
    }

    /// The error of a send whose time ran out before any attempt.
    fn out_of_time(&self, topic: &str) -> Error {
        Error::Timeout { operation: "send message", addr: topic.to_string(), timeout: self.config.send_timeout() }
    }

    /// Drops the routes of topics unused for the route expiry, then fetches
    /// the others again.
    fn refresh_routes(&self) {
        self.routes.clear_expired_routes(self.config.route_expiry());
        for topic in self.routes.topics() {
            if *lock(&self.stop) {
                return;
            }
            match self.namesrv.topic_route(&topic) {
                Ok(route) => {
                    self.routes.update_route(&topic, route);
                }
                Err(e) => log_warn!("route refresh failed: topic={topic} error={e}"),
            }
        }
    }

    fn heartbeat_all(&self) {
        let data = self.heartbeat_data();
        for (name, addr) in self.routes.broker_addrs() {
            let deadline = Instant::now() + self.config.send_timeout();
            let result = self.client(&addr, deadline).and_then(|c| c.heartbeat(&data));
            match result {
                Ok(()) => self.router.report_alive(&name),
                Err(Error::NotRunning(_)) => return,
                Err(e) => {
                    log_warn!("heartbeat failed: broker={name} addr={addr} error={e}");
                    self.router.report_failure(&name, &e);
                }
            }
        }
    }

    /// The route-refresh and heartbeat loop of `rocketmq-producer-<n>`.
    fn service_loop(&self) {
        let mut next_poll = Instant::now() + self.config.poll_namesrv_interval();
        let mut next_heartbeat = Instant::now() + self.config.heartbeat_interval();
        loop {
            {
                let mut stop = lock(&self.stop);
                let now = Instant::now();
                let until = next_poll.min(next_heartbeat);
                if !*stop && until > now {
                    stop =
                        self.wake.wait_timeout(stop, until - now).map(|(g, _)| g).unwrap_or_else(|p| p.into_inner().0);
                }
                if *stop {
                    return;
                }
            }
            let now = Instant::now();
            if now >= next_poll {
                self.refresh_routes();
                next_poll = Instant::now() + self.config.poll_namesrv_interval();
            }
            if now >= next_heartbeat {
                self.heartbeat_all();
                next_heartbeat = Instant::now() + self.config.heartbeat_interval();
            }
        }
    }

    fn async_loop(&self, tasks: &Mutex<Receiver<AsyncTask>>) {
        loop {
            let task = match lock(tasks).recv() {
                Ok(t) => t,
                Err(_) => return,
            };
            let result = if *lock(&self.stop) {
                Err(Error::NotRunning("producer"))
            } else {
                self.send(&task.msg, RoutingStrategy::RoundRobin)
            };
            // A panicking callback must not take a pool thread with it.
            let _ = catch_unwind(AssertUnwindSafe(move || (task.callback)(result)));
        }
    }
}

#[derive(Default)]
struct Threads {
    service: Option<JoinHandle<()>>,
    workers: Vec<JoinHandle<()>>,
    tasks: Option<SyncSender<AsyncTask>>,
}

/// A producer: routes, retries and failover over the brokers of a cluster.
///
/// Threads (started by [`start`](Self::start), stopped and joined by
/// [`shutdown`](Self::shutdown) or `Drop`): `rocketmq-producer-<n>`
/// (route refresh and heartbeats) and `async_threads` of
/// `rocketmq-async-<n>` (for [`send_async`](Self::send_async)).
///
/// ```no_run
/// use rocketmq_blocking::producer::{Producer, ProducerConfig};
/// use rocketmq_blocking::Message;
///
/// let config = ProducerConfig::builder().group("orders-producer").namesrv_addr("127.0.0.1:9876").build()?;
/// let producer = Producer::new(config)?;
/// producer.start()?;
/// let sent = producer.send(&Message::new("Orders", "order #1").with_keys(["order-1"]))?;
/// println!("{} stored at {:?} offset {}", sent.msg_id, sent.queue, sent.queue_offset);
/// producer.shutdown();
/// # Ok::<(), rocketmq_blocking::Error>(())
/// ```
pub struct Producer {
    pub(crate) inner: Arc<Inner>,
    threads: Mutex<Threads>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer").field("group", &self.inner.group).field("client_id", &self.inner.client_id).finish()
    }
}

impl Producer {
    /// A producer with these settings; nothing runs before [`start`](Self::start).
    pub fn new(config: ProducerConfig) -> Result<Producer> {
        Producer::with_handler(config, None)
    }

    pub(crate) fn with_handler(config: ProducerConfig, handler: Option<HandlerFactory>) -> Result<Producer> {
        let builder = ClientConfig::builder()
            .request_timeout(config.send_timeout())
            .max_message_size(config.max_message_size())
            .compress_over(config.compress_over())
            .client_id(config.client_id().map_or_else(default_client_id, str::to_string));
        #[cfg(feature = "acl")]
        let builder = match config.credentials() {
            Some(credentials) => builder.credentials(credentials.clone()),
            None => builder,
        };
        let client_config = builder.build()?;
        // Every producer answers the broker's pushed replies (request-reply).
        let requests = Arc::new(RequestTable::new(config.max_pending_requests()));
        let handler = Some(reply_handler(Arc::clone(&requests), handler));
        let inner = Inner {
            group: config.with_namespace(config.group()),
            client_id: client_config.client_id().to_string(),
            namesrv: NameServerClient::for_client(config.namesrv_addr(), &client_config)?
                .with_route_limits(config.route_limits()),
            routes: TopicBrokerMapping::new(config.route_expiry()),
            router: MessageRouter::new(config.latency_aware()),
            clients: Mutex::new(HashMap::new()),
            handler,
            requests,
            running: AtomicBool::new(false),
            stop: Mutex::new(false),
            wake: Condvar::new(),
            client_config,
            config,
        };
        Ok(Producer { inner: Arc::new(inner), threads: Mutex::new(Threads::default()) })
    }

    /// The settings.
    pub fn config(&self) -> &ProducerConfig {
        &self.inner.config
    }

    /// The client id sent to the brokers.
    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    /// Starts the route-refresh, heartbeat and async threads. Routes are
    /// fetched when a topic is first used.
    pub fn start(&self) -> Result<()> {
        let mut threads = lock(&self.threads);
        if self.inner.running.load(Ordering::SeqCst) {
            return Ok(());
        }
        if *lock(&self.inner.stop) {
            return Err(Error::NotRunning("producer (shut down)"));
        }
        let inner = Arc::clone(&self.inner);
        threads.service = Some(spawn("producer", move || inner.service_loop())?);
        let (tx, rx) = mpsc::sync_channel(self.inner.config.async_queue());
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..self.inner.config.async_threads() {
            let inner = Arc::clone(&self.inner);
            let rx = Arc::clone(&rx);
            threads.workers.push(spawn("async", move || inner.async_loop(&rx))?);
        }
        threads.tasks = Some(tx);
        self.inner.running.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Sends `msg` and waits for the broker to store it, retrying a
    /// retryable failure ([`Error::is_retryable`]) up to `retries` times on
    /// another broker when there is one, all within the send timeout.
    ///
    /// **Deadline**: the send timeout covers everything — the route lookup
    /// at the name server, the connect, the first-use heartbeat (sent
    /// without waiting) and every retry; the call returns within it (plus
    /// scheduling noise). The same holds for [`send_batch`](Self::send_batch),
    /// [`send_to_queue`](Self::send_to_queue),
    /// [`send_with_selector`](Self::send_with_selector),
    /// [`send_oneway`](Self::send_oneway) and the half message of a
    /// transaction.
    ///
    /// A failure of the only attempt is returned as it is; after two or more
    /// attempts the error is [`Error::SendFailed`] with each attempt's cause.
    pub fn send(&self, msg: &Message) -> Result<SendResult> {
        self.inner.send(msg, RoutingStrategy::RoundRobin)
    }

    /// [`send`](Self::send) with a routing strategy.
    pub fn send_with_strategy(&self, msg: &Message, strategy: RoutingStrategy) -> Result<SendResult> {
        self.inner.send(msg, strategy)
    }

    /// Sends without waiting for an answer; never retried (it may have arrived).
    pub fn send_oneway(&self, msg: &Message) -> Result<()> {
        let inner = &self.inner;
        inner.check_running()?;
        let deadline = Instant::now() + inner.config.send_timeout();
        let wire = inner.wire_message(msg)?;
        let info = inner.topic_info(wire.topic(), deadline)?;
        let route = inner.router.route_message(&info, &wire, RoutingStrategy::RoundRobin, None)?;
        let result =
            inner.client(&route.broker_addr, deadline).and_then(|c| c.send_oneway(&inner.group, &route.queue, &wire));
        if let Err(e) = &result {
            inner.router.report_failure(&route.queue.broker_name, e);
        }
        result
    }

    /// Sends on a thread of the async pool and calls `callback` exactly once
    /// with the result (on that thread; a panic in it is caught and the
    /// thread goes on). Blocks while `async_queue` sends are waiting.
    pub fn send_async(&self, msg: Message, callback: impl FnOnce(Result<SendResult>) + Send + 'static) {
        let tasks = lock(&self.threads).tasks.clone();
        let task = AsyncTask { msg, callback: Box::new(callback) };
        match tasks {
            Some(tx) => {
                if let Err(mpsc::SendError(task)) = tx.send(task) {
                    (task.callback)(Err(Error::NotRunning("producer")));
                }
            }
            None => (task.callback)(Err(Error::NotRunning("producer"))),
        }
    }

    /// Sends to one queue (no retries: the queue is the caller's choice).
    pub fn send_to_queue(&self, msg: &Message, queue: &MessageQueue) -> Result<SendResult> {
        self.send_to_queue_before(msg, queue, Instant::now() + self.inner.config.send_timeout())
    }

    /// [`send_to_queue`](Self::send_to_queue) until `deadline`.
    pub(crate) fn send_to_queue_before(
        &self,
        msg: &Message,
        queue: &MessageQueue,
        deadline: Instant,
    ) -> Result<SendResult> {
        let inner = &self.inner;
        inner.check_running()?;
        let wire = inner.wire_message(msg)?;
        if inner.config.with_namespace(&queue.topic) != wire.topic() {
            return Err(Error::invalid(
                "queue",
                format!("queue of topic {:?} for a message of {:?}", queue.topic, msg.topic()),
            ));
        }
        let info = inner.topic_info(wire.topic(), deadline)?;
        let target = info
            .queues
            .iter()
            .find(|q| q.queue.broker_name == queue.broker_name && q.queue.queue_id == queue.queue_id)
            .ok_or_else(|| Error::QueueNotAvailable {
                topic: msg.topic().to_string(),
                reason: format!("{}/{} is not a writable queue of the topic", queue.broker_name, queue.queue_id),
            })?
            .clone();
        self.send_once(&target.queue, &target.broker_addr, &wire, deadline)
    }

    fn send_once(&self, queue: &MessageQueue, addr: &str, wire: &Message, deadline: Instant) -> Result<SendResult> {
        let inner = &self.inner;
        let t0 = Instant::now();
        let result = inner.client(addr, deadline).and_then(|c| {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(inner.out_of_time(&queue.topic));
            }
            c.send_within(&inner.group, queue, wire, left)
        });
        match &result {
            Ok(_) => inner.router.report_result(&queue.broker_name, t0.elapsed()),
            Err(e) => inner.router.report_failure(&queue.broker_name, e),
        }
        result.map(|r| inner.user_result(r))
    }

    /// Sends to the queue `selector` picks (for ordered messages: the same
    /// `arg` always picks the same queue). No retries, as in Java.
    pub fn send_with_selector<A: ?Sized>(
        &self,
        msg: &Message,
        selector: &impl MessageQueueSelector<A>,
        arg: &A,
    ) -> Result<SendResult> {
        self.send_with_selector_before(msg, selector, arg, Instant::now() + self.inner.config.send_timeout())
    }

    /// [`send_with_selector`](Self::send_with_selector) until `deadline`.
    pub(crate) fn send_with_selector_before<A: ?Sized>(
        &self,
        msg: &Message,
        selector: &impl MessageQueueSelector<A>,
        arg: &A,
        deadline: Instant,
    ) -> Result<SendResult> {
        let inner = &self.inner;
        inner.check_running()?;
        let wire = inner.wire_message(msg)?;
        let info = inner.topic_info(wire.topic(), deadline)?;
        let user_queues: Vec<MessageQueue> = info
            .queues
            .iter()
            .map(|q| MessageQueue::new(msg.topic(), q.queue.broker_name.clone(), q.queue.queue_id))
            .collect();
        let i = selector.select(&user_queues, msg, arg);
        let target = info.queues.get(i).ok_or_else(|| Error::QueueNotAvailable {
            topic: msg.topic().to_string(),
            reason: format!("the selector chose queue index {i} of {}", info.queues.len()),
        })?;
        self.send_once(&target.queue, &target.broker_addr, &wire, deadline)
    }

    /// Sends a batch (one topic, no delays, within the max message size);
    /// stored in order in one queue. Retried like [`send`](Self::send).
    /// Use [`split_batch`] for a list that may be too large.
    pub fn send_batch(&self, msgs: &[Message]) -> Result<SendResult> {
        let deadline = Instant::now() + self.inner.config.send_timeout();
        let inner = &self.inner;
        inner.check_running()?;
        validate::check_batch(msgs, inner.config.max_message_size())?;
        let wire: Vec<Message> = msgs.iter().map(|m| inner.wire_message(m)).collect::<Result<_>>()?;
        let info = inner.topic_info(wire[0].topic(), deadline)?;
        inner.send_with_retries(&info, &wire[0], RoutingStrategy::RoundRobin, deadline, |c, q, t| {
            c.send_batch_within(&inner.group, q, &wire, t)
        })
    }

    /// Routing statistics and every broker's health.
    pub fn stats(&self) -> RoutingStats {
        self.inner.router.stats()
    }

    /// The topics whose routes the producer keeps and refreshes, sorted
    /// (without the namespace). A topic not sent to for the route expiry
    /// is dropped at the next refresh and fetched again when next used.
    pub fn route_topics(&self) -> Vec<String> {
        let mut topics: Vec<String> =
            self.inner.routes.topics().iter().map(|t| self.inner.config.without_namespace(t).to_string()).collect();
        topics.sort();
        topics
    }

    /// The router (to suspend or recover a broker by hand).
    pub fn router(&self) -> &MessageRouter {
        &self.inner.router
    }

    /// Stops the threads (async sends still queued get `NotRunning`),
    /// unregisters from the brokers — all at once, waiting at most
    /// [`SHUTDOWN_UNREGISTER_WAIT`] for their answers — and closes the
    /// connections; the threads are joined within a second. The name
    /// server client is shut first and the connections closed before the
    /// background thread is joined, so a route refresh or heartbeat it is
    /// waiting on (a silent name server or broker) fails at once instead of
    /// running to its request timeout.
    pub fn shutdown(&self) {
        let mut threads = lock(&self.threads);
        self.inner.running.store(false, Ordering::SeqCst);
        *lock(&self.inner.stop) = true;
        self.inner.wake.notify_all();
        threads.tasks = None;
        // Requests waiting for replies return NotRunning at once.
        self.inner.requests.close();
        // A route lookup in flight (a refresh on the background thread, or a
        // send's) fails at once; none starts any more.
        self.inner.namesrv.shutdown();
        // No connection is opened any more (the stop flag is set): unregister
        // and close; requests in flight on the producer's threads (a send, or
        // the background thread's heartbeat to a silent broker) then fail at
        // once, so the joins below do not wait for a request timeout.
        let clients: Vec<Arc<BrokerClient>> = lock(&self.inner.clients).drain().map(|(_, c)| c).collect();
        let unregister = BrokerClient::unregister_command(&self.inner.client_id, Some(&self.inner.group), None);
        let calls = clients.iter().filter(|c| c.is_connected()).map(|c| (c.connection(), unregister.clone())).collect();
        invoke_all(calls, SHUTDOWN_UNREGISTER_WAIT.min(self.inner.config.send_timeout()));
        for c in &clients {
            c.close();
        }
        if let Some(h) = threads.service.take() {
            let _ = h.join();
        }
        crate::threads::join_until(threads.workers.drain(..).collect(), Instant::now() + Duration::from_secs(1));
        // Dropping the last handles joins the connections' reader threads.
        drop(clients);
        lock(&self.inner.clients).clear();
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_order_and_limits() {
        let msgs: Vec<Message> = (0..100).map(|i| Message::new("T", vec![i as u8; 1000])).collect();
        let batches = split_batch(msgs, 10_000).unwrap();
        assert!(batches.len() > 1);
        let mut n = 0u8;
        for b in &batches {
            let size: usize = b.iter().map(|m| batch_entry_size(m) + 40).sum();
            assert!(size <= 10_000);
            for m in b {
                assert_eq!(m.body()[0], n);
                n += 1;
            }
        }
        assert_eq!(n, 100);
        assert!(split_batch(vec![Message::new("T", vec![0; 20_000])], 10_000).is_err());
    }

    #[test]
    fn not_started_producer_refuses_sends() {
        let config = ProducerConfig::builder().group("pg").namesrv_addr("127.0.0.1:1").build().unwrap();
        let p = Producer::new(config).unwrap();
        assert!(matches!(p.send(&Message::new("T", "x")), Err(Error::NotRunning(_))));
        let (tx, rx) = mpsc::channel();
        p.send_async(Message::new("T", "x"), move |r| tx.send(r.is_err()).unwrap());
        assert!(rx.recv().unwrap());
    }

    #[test]
    fn an_expired_route_is_used_while_no_name_server_answers() {
        use crate::protocol::route::{BrokerData, QueueData, TopicRouteData};
        // No name server listens on port 1.
        let config = ProducerConfig::builder()
            .group("pg")
            .namesrv_addr("127.0.0.1:1")
            .route_expiry(Duration::from_millis(1))
            .build()
            .unwrap();
        let p = Producer::new(config).unwrap();
        let route = TopicRouteData {
            order_topic_conf: None,
            queue_datas: vec![QueueData {
                broker_name: "a".into(),
                read_queue_nums: 2,
                write_queue_nums: 2,
                perm: 6,
                topic_sys_flag: 0,
            }],
            broker_datas: vec![BrokerData {
                cluster: "c".into(),
                broker_name: "a".into(),
                broker_addrs: [(0, "127.0.0.1:2".to_string())].into_iter().collect(),
            }],
        };
        p.inner.routes.update_route("T", route);
        std::thread::sleep(Duration::from_millis(5)); // let the route expire
        assert!(p.inner.routes.available_queues("T").is_none());
        let info = p.inner.topic_info("T", Instant::now() + Duration::from_secs(3)).expect("the expired route");
        assert_eq!(info.queues.len(), 2);
        assert!(matches!(
            p.inner.topic_info("Unknown", Instant::now() + Duration::from_secs(3)),
            Err(Error::Connect { .. })
        ));
    }

    #[test]
    fn a_panicking_callback_keeps_the_async_thread() {
        // No name server listens on port 1: every send fails at once.
        let config =
            ProducerConfig::builder().group("pg").namesrv_addr("127.0.0.1:1").async_threads(1).build().unwrap();
        let p = Producer::new(config).unwrap();
        p.start().unwrap();
        p.send_async(Message::new("T", "x"), |_| panic!("a user callback panics (expected in this test)"));
        let (tx, rx) = mpsc::channel();
        p.send_async(Message::new("T", "x"), move |r| tx.send(r.is_err()).unwrap());
        assert!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), "the second callback ran");
        p.shutdown();
    }
}
