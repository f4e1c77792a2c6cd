//! What both consumers share: broker connections (one per broker address,
//! reopened when closed), topic routes, the subscription table, heartbeats,
//! and the answers to what brokers ask the consumer.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use super::config::{ConsumerConfig, DEFAULT_CONSUME_TIMESTAMP_AGO};
use super::owner::{DirectReply, QueueOwner};
use super::pull_service::Next;
use super::refusal::{is_refusal, pull_subject, Refusals};
use super::signal::Signal;
use crate::broker::{BrokerClient, ClientConfig, PullRequest};
use crate::error::{Error, OperationKind, Result};
use crate::namesrv::NameServerClient;
use crate::net::fanout::invoke_all;
use crate::net::RequestHandler;
use crate::protocol::admin::{self, ConsumerRunningInfo, ProcessQueueInfo};
use crate::protocol::body::{ConsumeType, ConsumerData, HeartbeatData, MessageModel, SubscriptionData};
use crate::protocol::route::MASTER_ID;
use crate::protocol::{now_ms, request, MessageQueue, RemotingCommand, ResponseCode};
use crate::threads::lock;

/// `%RETRY%<group>`.
pub(crate) fn retry_topic(group: &str) -> String {
    format!("%RETRY%{group}")
}

#[derive(Default)]
struct Brokers {
    /// Broker name → address by broker id (0: master), from the routes seen.
    addrs: HashMap<String, BTreeMap<i64, String>>,
    /// Address → the one connection to it.
    clients: HashMap<String, Arc<BrokerClient>>,
}

/// The consumer's client: one per consumer object.
pub(crate) struct Instance {
    pub config: ConsumerConfig,
    /// Group with the namespace, as on the wire.
    pub group: String,
    pub client_id: String,
    pub consume_type: ConsumeType,
    pub signal: Arc<Signal>,
    /// What brokers and the name server keep refusing.
    pub refusals: Refusals,
    /// The consumer object, for what operations tools ask (set by `start`).
    owner: Arc<OnceLock<Weak<dyn QueueOwner>>>,
    started_ms: AtomicI64,
    client_config: ClientConfig,
    /// Dropped by `close`, which ends its reader thread.
    namesrv: Mutex<Option<Arc<NameServerClient>>>,
    brokers: Mutex<Brokers>,
    /// Wire topic → subscription.
    subscriptions: Mutex<BTreeMap<String, SubscriptionData>>,
    closed: AtomicBool,
}

impl Instance {
    pub fn new(config: ConsumerConfig, consume_type: ConsumeType) -> Result<Instance> {
        let client_id = config.client_id().map(str::to_string).unwrap_or_else(crate::broker::default_client_id);
        let builder = ClientConfig::builder().client_id(client_id.clone()).request_timeout(config.request_timeout());
        #[cfg(feature = "acl")]
        let builder = match config.credentials() {
            Some(credentials) => builder.credentials(credentials.clone()),
            None => builder,
        };
        #[cfg(feature = "tls")]
        let builder = match config.tls() {
            Some(tls) => builder.tls(tls.clone()),
            None => builder,
        };
        let client_config = builder.build()?;
        let namesrv = NameServerClient::for_client(config.namesrv_addr(), &client_config)?
            .with_route_limits(config.route_limits());
        Ok(Instance {
            group: config.with_namespace(config.group()),
            client_id,
            consume_type,
            signal: Arc::new(Signal::default()),
            refusals: Refusals::default(),
            owner: Arc::new(OnceLock::new()),
            started_ms: AtomicI64::new(0),
            client_config,
            namesrv: Mutex::new(Some(Arc::new(namesrv))),
            brokers: Mutex::new(Brokers::default()),
            subscriptions: Mutex::new(BTreeMap::new()),
            closed: AtomicBool::new(false),
            config,
        })
    }

    /// What both consumers' `start` does first: notes the start time,
    /// makes `owner` answer what operations tools ask, heartbeats; fails
    /// with the refusal when no broker accepted the heartbeat and one
    /// refused it (authentication, authorization).
    pub fn begin(&self, owner: Weak<dyn QueueOwner>) -> Result<()> {
        self.started_ms.store(now_ms(), Ordering::SeqCst);
        let _ = self.owner.set(owner);
        self.heartbeat_all(Instant::now() + self.config.request_timeout()).map_or(Ok(()), |(_, e)| Err(e))
    }

    /// Where consume-from-timestamp starts: the configured time, else 30
    /// minutes before `start` (Java's default).
    pub fn consume_timestamp_ms(&self) -> i64 {
        let ago = DEFAULT_CONSUME_TIMESTAMP_AGO.as_millis() as i64;
        self.config.consume_timestamp_ms().unwrap_or(self.started_ms.load(Ordering::SeqCst) - ago)
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    pub fn set_subscription(&self, sub: SubscriptionData) {
        lock(&self.subscriptions).insert(sub.topic.clone(), sub);
    }

    /// Drops the subscription of `topic` (wire name); true when there was one.
    pub fn remove_subscription(&self, topic: &str) -> bool {
        lock(&self.subscriptions).remove(topic).is_some()
    }

    /// What operations tools see (GET_CONSUMER_RUNNING_INFO), with the
    /// properties both consumers share (Java's names).
    pub fn running_info(
        &self,
        consume_type: &str,
        orderly: bool,
        threads: usize,
        queues: BTreeMap<MessageQueue, ProcessQueueInfo>,
    ) -> ConsumerRunningInfo {
        let c = &self.config;
        let mut p = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            p.insert(k.to_string(), v);
        };
        put("PROP_CONSUME_TYPE", consume_type.to_string());
        put("PROP_CONSUMEORDERLY", orderly.to_string());
        put("PROP_THREADPOOL_CORE_SIZE", threads.to_string());
        put("PROP_CONSUMER_START_TIMESTAMP", self.started_ms.load(Ordering::SeqCst).to_string());
        put("PROP_NAMESERVER_ADDR", c.namesrv_addr().to_string());
        put("PROP_CLIENT_VERSION", crate::protocol::frame::CLIENT_VERSION_DESC.to_string());
        put("consumerGroup", self.group.clone());
        let name = |v: serde_json::Result<serde_json::Value>| v.ok().and_then(|v| v.as_str().map(str::to_string));
        put("messageModel", name(serde_json::to_value(c.message_model())).unwrap_or_default());
        put("consumeFromWhere", name(serde_json::to_value(c.consume_from_where())).unwrap_or_default());
        put("pullBatchSize", c.pull_batch_size().to_string());
        put("consumeMessageBatchMaxSize", c.consume_batch_size().to_string());
        put("pullThresholdForQueue", c.pull_threshold_for_queue().to_string());
        put("pullThresholdSizeForQueue", (c.pull_threshold_size_for_queue() / (1024 * 1024)).to_string());
        put("consumeThreadMin", c.consume_threads().to_string());
        put("consumeThreadMax", c.consume_threads().to_string());
        put("pullThreadNums", c.pull_threads().to_string());
        put("maxReconsumeTimes", c.max_reconsume_times().to_string());
        put("clientIP", self.client_id.split('@').next().unwrap_or_default().to_string());
        let status = self.subscriptions().into_iter().map(|s| (s.topic, Default::default())).collect();
        ConsumerRunningInfo { properties: p, subscriptions: self.subscriptions(), queues, status }
    }

    pub fn subscription(&self, topic: &str) -> Option<SubscriptionData> {
        lock(&self.subscriptions).get(topic).cloned()
    }

    pub fn subscriptions(&self) -> Vec<SubscriptionData> {
        lock(&self.subscriptions).values().cloned().collect()
    }

    /// A queue as the user sees it (topic without the namespace).
    pub fn user_queue(&self, mq: &MessageQueue) -> MessageQueue {
        MessageQueue::new(self.config.without_namespace(&mq.topic), mq.broker_name.clone(), mq.queue_id)
    }

    /// A queue as the broker sees it (topic with the namespace).
    pub fn wire_queue(&self, mq: &MessageQueue) -> MessageQueue {
        MessageQueue::new(self.config.with_namespace(&mq.topic), mq.broker_name.clone(), mq.queue_id)
    }

    fn namesrv(&self) -> Result<Arc<NameServerClient>> {
        lock(&self.namesrv).clone().ok_or(Error::NotRunning("consumer"))
    }

    /// The readable queues of a topic, sorted; refreshes the broker addresses.
    /// A broker whose master is down still counts while a slave serves it.
    pub fn topic_queues(&self, topic: &str) -> Result<Vec<MessageQueue>> {
        let route = self.namesrv()?.topic_route(topic)?;
        {
            let mut b = lock(&self.brokers);
            for bd in route.broker_datas.iter().filter(|bd| !bd.broker_addrs.is_empty()) {
                b.addrs.insert(bd.broker_name.clone(), bd.broker_addrs.clone());
            }
        }
        let queues: Vec<MessageQueue> = route
            .queue_datas
            .iter()
            .filter(|q| q.is_readable() && route.broker(&q.broker_name).is_some_and(|b| !b.broker_addrs.is_empty()))
            .flat_map(|q| {
                (0..q.read_queue_nums.max(0)).map(move |i| MessageQueue::new(topic, q.broker_name.clone(), i))
            })
            .collect();
        Ok(super::allocate::sorted_queues(queues))
    }

    /// Address of broker `broker_name` with id `id`, else its master, else
    /// any of its addresses (Java's `findBrokerAddressInSubscribe`).
    fn addr_of(&self, broker_name: &str, id: i64) -> Result<String> {
        let b = lock(&self.brokers);
        let addrs = b
            .addrs
            .get(broker_name)
            .ok_or_else(|| Error::invalid("broker", format!("address of broker {broker_name:?} not known yet")))?;
        addrs
            .get(&id)
            .or_else(|| addrs.get(&MASTER_ID))
            .or_else(|| addrs.values().next())
            .cloned()
            .ok_or_else(|| Error::invalid("broker", format!("broker {broker_name:?} has no address")))
    }

    /// The connection to a broker (by name: its master, else a slave),
    /// opened or reopened as needed.
    pub fn broker(&self, broker_name: &str) -> Result<Arc<BrokerClient>> {
        if self.is_closed() {
            return Err(Error::NotRunning("consumer"));
        }
        let addr = self.addr_of(broker_name, MASTER_ID)?;
        self.broker_at(&addr)
    }

    /// The connection to the broker of a queue; looks up the topic's route when needed.
    pub fn broker_of(&self, mq: &MessageQueue) -> Result<Arc<BrokerClient>> {
        self.broker_for_pull(mq, MASTER_ID)
    }

    /// The connection to pull `mq` from: the broker id the last pull
    /// suggested (a slave while the master is busy or down), else the master.
    pub fn broker_for_pull(&self, mq: &MessageQueue, id: i64) -> Result<Arc<BrokerClient>> {
        if self.is_closed() {
            return Err(Error::NotRunning("consumer"));
        }
        let known = lock(&self.brokers).addrs.contains_key(&mq.broker_name);
        if !known {
            self.topic_queues(&mq.topic)?;
        }
        let addr = self.addr_of(&mq.broker_name, id)?;
        self.broker_at(&addr)
    }

    fn broker_at(&self, addr: &str) -> Result<Arc<BrokerClient>> {
        if let Some(c) = lock(&self.brokers).clients.get(addr) {
            if c.is_connected() {
                return Ok(Arc::clone(c));
            }
        }
        // Connect without holding the lock; a racing connect just loses.
        let client = Arc::new(BrokerClient::connect(addr, &self.client_config)?);
        client.set_request_handler(Some(self.request_handler(Arc::downgrade(&client))));
        let mut b = lock(&self.brokers);
        if self.is_closed() {
            client.close();
            return Err(Error::NotRunning("consumer"));
        }
        if let Some(c) = b.clients.get(addr) {
            if c.is_connected() {
                return Ok(Arc::clone(c));
            }
        }
        b.clients.insert(addr.to_string(), Arc::clone(&client));
        drop(b);
        // A new connection is a new channel for the broker: register on it.
        self.signal.request_heartbeat();
        Ok(client)
    }

    /// Answers what brokers ask for themselves or for operations tools. It
    /// runs on the connection's reader thread, so it never blocks: ids
    /// changed and offset resets wake the background thread, a message to
    /// consume directly goes to the consume threads (answered from there),
    /// running info and status are read from memory.
    fn request_handler(&self, client: Weak<BrokerClient>) -> RequestHandler {
        let signal = Arc::clone(&self.signal);
        let owner = Arc::clone(&self.owner);
        let group = self.group.clone();
        Arc::new(move |cmd: &RemotingCommand| {
            let field = |k: &str| cmd.ext_fields.get(k).map(String::as_str).unwrap_or("");
            let error = |code, remark: String| Some(RemotingCommand::response_to(cmd, code, Some(remark)));
            let not_here =
                || error(ResponseCode::SystemError, format!("The Consumer Group <{group}> not exist in this consumer"));
            let ok =
                |body: Vec<u8>| Some(RemotingCommand::response_to(cmd, ResponseCode::Success, None).with_body(body));
            let owner = owner.get().and_then(Weak::upgrade);
            match cmd.code {
                request::NOTIFY_CONSUMER_IDS_CHANGED => {
                    signal.request_rebalance();
                    None
                }
                request::GET_CONSUMER_RUNNING_INFO => match owner {
                    Some(o) if field("consumerGroup") == group => ok(o.running_info().encode()),
                    _ => not_here(),
                },
                request::GET_CONSUMER_STATUS_FROM_CLIENT => match owner {
                    Some(o) if field("group") == group => ok(admin::encode_consumer_status(&o.offsets(field("topic")))),
                    _ => not_here(),
                },
                request::RESET_CONSUMER_CLIENT_OFFSET if field("group") == group => {
                    match admin::decode_reset_offset_body(&cmd.body) {
                        Ok(table) => signal.request_reset((field("topic").to_string(), table)),
                        Err(e) => return error(ResponseCode::SystemError, e.to_string()),
                    }
                    None
                }
                request::CONSUME_MESSAGE_DIRECTLY => {
                    let Some(o) = owner.filter(|_| field("consumerGroup") == group) else { return not_here() };
                    let msg = match crate::protocol::message::decode_messages(&cmd.body) {
                        Ok(mut v) if !v.is_empty() => v.swap_remove(0),
                        Ok(_) => return error(ResponseCode::SystemError, "no message in the body".into()),
                        Err(e) => return error(ResponseCode::SystemError, e.to_string()),
                    };
                    let (request, client) = (cmd.clone(), client.clone());
                    let reply: DirectReply = Box::new(move |result| {
                        if let Some(c) = client.upgrade() {
                            let resp = RemotingCommand::response_to(&request, ResponseCode::Success, None)
                                .with_body(result.encode());
                            let _ = c.connection().respond(&request, resp);
                        }
                    });
                    if o.consume_directly(msg, field("brokerName"), reply) {
                        None
                    } else {
                        error(ResponseCode::SystemError, "this consumer has no listener to consume with".into())
                    }
                }
                _ => error(
                    ResponseCode::RequestCodeNotSupported,
                    format!("request code {} not supported by this consumer", cmd.code),
                ),
            }
        })
    }

    /// Client ids of the group, asked from a broker serving `topic`; sorted
    /// as Java sorts them, duplicates kept (`allocate::sorted_ids`).
    pub fn consumer_ids(&self, topic: &str) -> Result<Vec<String>> {
        let mut names: Vec<String> = {
            let route = self.namesrv()?.topic_route(topic)?;
            route.broker_datas.iter().map(|b| b.broker_name.clone()).collect()
        };
        names.sort();
        let mut last = None;
        for name in names {
            match self.broker(&name).and_then(|c| c.consumer_ids(&self.group)) {
                Ok(ids) => return Ok(super::allocate::sorted_ids(ids)),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::TopicNotFound { topic: topic.to_string(), remark: String::new() }))
    }

    fn heartbeat_data(&self) -> HeartbeatData {
        HeartbeatData {
            client_id: self.client_id.clone(),
            producer_data_set: Vec::new(),
            consumer_data_set: vec![ConsumerData {
                group_name: self.group.clone(),
                consume_type: self.consume_type,
                message_model: self.config.message_model(),
                consume_from_where: self.config.consume_from_where(),
                subscription_data_set: self.subscriptions(),
                unit_mode: false,
            }],
        }
    }

    /// Refreshes the routes of the subscribed topics, then heartbeats every
    /// known broker at once, waiting for their answers until `deadline`
    /// (connections not yet open are opened one by one until then). Returns
    /// the first refusal, with its subject, when no broker accepted it (the
    /// others, and all of them when one accepted, are recorded in the
    /// refusals).
    pub fn heartbeat_all(&self, deadline: Instant) -> Option<(String, Error)> {
        for sub in self.subscriptions() {
            let _ = self.topic_queues(&sub.topic);
        }
        let names: Vec<String> = lock(&self.brokers).addrs.keys().cloned().collect();
        let mut clients = Vec::new();
        for name in names {
            if Instant::now() >= deadline {
                break;
            }
            if let Ok(c) = self.broker(&name) {
                clients.push(c);
            }
        }
        let data = self.heartbeat_data();
        let calls = clients.iter().map(|c| (c.connection(), BrokerClient::heartbeat_command(&data))).collect();
        let results = invoke_all(calls, deadline.saturating_duration_since(Instant::now()));
        let mut refused = Vec::new();
        let mut answered = false;
        for (r, c) in results.into_iter().zip(&clients) {
            let subject = format!("heartbeat to {}", c.addr());
            match r.and_then(|resp| c.expect_success(&resp, "heartbeat", OperationKind::Other, "", -1)) {
                Ok(()) => {
                    answered = true;
                    self.refusals.clear(&subject);
                }
                Err(e) => {
                    log_warn!("heartbeat failed: group={} broker={} error={e}", self.group, c.addr());
                    refused.push((subject, e));
                }
            }
        }
        let first = if answered { None } else { refused.iter().position(|(_, e)| is_refusal(e)) };
        let first = first.map(|i| refused.swap_remove(i));
        for (subject, e) in refused {
            self.refusals.refused(&subject, e);
        }
        first
    }

    /// Leaves the group on every connected broker, all at once, waiting for
    /// the answers until `deadline` at most: releases the orderly locks of
    /// `unlock` first (per broker, before the unregister on the same
    /// connection), then unregisters.
    pub fn leave(&self, unlock: &[MessageQueue], deadline: Instant) {
        let clients: Vec<Arc<BrokerClient>> =
            lock(&self.brokers).clients.values().filter(|c| c.is_connected()).cloned().collect();
        let mut calls = Vec::new();
        for c in &clients {
            let mine: Vec<MessageQueue> = unlock
                .iter()
                .filter(|q| self.addr_of(&q.broker_name, MASTER_ID).is_ok_and(|a| a == c.addr()))
                .cloned()
                .collect();
            if !mine.is_empty() {
                calls.push((c.connection(), BrokerClient::unlock_command(&self.group, &self.client_id, &mine)));
            }
            calls.push((c.connection(), BrokerClient::unregister_command(&self.client_id, None, Some(&self.group))));
        }
        invoke_all(calls, deadline.saturating_duration_since(Instant::now()));
    }

    /// Closes every connection (ends long polls and requests in progress at
    /// once); no new ones open after.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let clients: Vec<Arc<BrokerClient>> = lock(&self.brokers).clients.drain().map(|(_, c)| c).collect();
        for c in clients {
            c.close();
        }
        if let Some(ns) = lock(&self.namesrv).take() {
            ns.close();
        }
    }

    /// The pull of `mq` from `offset` for the pull threads, sent to broker
    /// id `broker_id` when known (else the master); waits the pull error
    /// delay when no broker can be reached.
    pub fn next_pull(
        &self,
        mq: &MessageQueue,
        offset: i64,
        broker_id: i64,
        default_suspend: Duration,
        sub: &SubscriptionData,
    ) -> Next {
        let client = match self.broker_for_pull(mq, broker_id) {
            Ok(c) => c,
            Err(_) => return Next::Wait(self.config.pull_error_delay()),
        };
        let mut req = PullRequest::new(self.group.clone(), mq.clone(), offset);
        req.max_msgs = self.config.pull_batch_size();
        req.suspend = Some(self.broker_suspend(default_suspend));
        req.expression = Some(sub.sub_string.clone());
        req.expression_type = sub.expression_type.clone();
        req.sub_version = sub.sub_version;
        Next::Pull(req, client)
    }

    /// A pull of `mq` failed: recorded in the refusals. A connection that
    /// closed under it was the channel the broker knew this member by (it
    /// drops the member from the group and tells the others), so the
    /// background thread reconnects and heartbeats at once rather than at
    /// the next heartbeat, before the others take this member's queues.
    pub fn pull_failed(&self, mq: &MessageQueue, e: Error) {
        if matches!(e, Error::ConnectionClosed { .. }) {
            self.signal.request_heartbeat();
        }
        self.refusals.refused(&pull_subject(mq), e);
    }

    /// A pull of `mq` was answered: a refusal recorded for it is over.
    pub fn pull_answered(&self, mq: &MessageQueue) {
        self.refusals.clear_with(|| pull_subject(mq));
    }

    /// Whether this consumer is clustering.
    pub fn clustering(&self) -> bool {
        self.config.message_model() == MessageModel::Clustering
    }

    /// Pull timeout at the broker for this consumer type.
    pub fn broker_suspend(&self, default: Duration) -> Duration {
        self.config.broker_suspend().unwrap_or(default)
    }
}
