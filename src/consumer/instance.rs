//! What both consumers share: broker connections (one per broker address,
//! reopened when closed), topic routes, the subscription table, heartbeats,
//! and the [`Signal`] that wakes the background thread.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::config::ConsumerConfig;
use crate::broker::{BrokerClient, ClientConfig};
use crate::error::{Error, Result};
use crate::namesrv::NameServerClient;
use crate::net::RequestHandler;
use crate::protocol::body::{ConsumeType, ConsumerData, HeartbeatData, MessageModel, SubscriptionData};
use crate::protocol::{request, MessageQueue, RemotingCommand, ResponseCode};

pub(crate) use crate::threads::lock;

/// `%RETRY%<group>`.
pub(crate) fn retry_topic(group: &str) -> String {
    format!("%RETRY%{group}")
}

#[derive(Debug, Default)]
struct SignalState {
    stopped: bool,
    rebalance: bool,
    heartbeat: bool,
}

/// Wakes the background thread: stop, rebalance now, heartbeat now.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    state: Mutex<SignalState>,
    cond: Condvar,
}

/// What [`Signal::wait`] saw.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Wakeup {
    pub stopped: bool,
    pub rebalance: bool,
    pub heartbeat: bool,
}

impl Signal {
    pub fn stop(&self) {
        lock(&self.state).stopped = true;
        self.cond.notify_all();
    }

    pub fn is_stopped(&self) -> bool {
        lock(&self.state).stopped
    }

    /// Never blocks for long: safe on a connection's reader thread.
    pub fn request_rebalance(&self) {
        lock(&self.state).rebalance = true;
        self.cond.notify_all();
    }

    pub fn request_heartbeat(&self) {
        lock(&self.state).heartbeat = true;
        self.cond.notify_all();
    }

    /// Waits until `deadline` or a request; takes (clears) the requests.
    pub fn wait_until(&self, deadline: Instant) -> Wakeup {
        let mut st = lock(&self.state);
        loop {
            if st.stopped || st.rebalance || st.heartbeat {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            st = self.cond.wait_timeout(st, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
        }
        let w = Wakeup { stopped: st.stopped, rebalance: st.rebalance, heartbeat: st.heartbeat };
        st.rebalance = false;
        st.heartbeat = false;
        w
    }
}

#[derive(Default)]
struct Brokers {
    /// Broker name → master address, from the routes seen.
    addrs: HashMap<String, String>,
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
        let client_config = builder.build()?;
        let namesrv = NameServerClient::for_client(config.namesrv_addr(), &client_config)?;
        Ok(Instance {
            group: config.with_namespace(config.group()),
            client_id,
            consume_type,
            signal: Arc::new(Signal::default()),
            client_config,
            namesrv: Mutex::new(Some(Arc::new(namesrv))),
            brokers: Mutex::new(Brokers::default()),
            subscriptions: Mutex::new(BTreeMap::new()),
            closed: AtomicBool::new(false),
            config,
        })
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    pub fn set_subscription(&self, sub: SubscriptionData) {
        lock(&self.subscriptions).insert(sub.topic.clone(), sub);
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
    pub fn topic_queues(&self, topic: &str) -> Result<Vec<MessageQueue>> {
        let route = self.namesrv()?.topic_route(topic)?;
        {
            let mut b = lock(&self.brokers);
            for bd in &route.broker_datas {
                if let Some(addr) = bd.master_addr() {
                    b.addrs.insert(bd.broker_name.clone(), addr.to_string());
                }
            }
        }
        let mut queues: Vec<MessageQueue> = route
            .queue_datas
            .iter()
            .filter(|q| q.is_readable() && route.broker(&q.broker_name).and_then(|b| b.master_addr()).is_some())
            .flat_map(|q| {
                (0..q.read_queue_nums.max(0)).map(move |i| MessageQueue::new(topic, q.broker_name.clone(), i))
            })
            .collect();
        queues.sort();
        Ok(queues)
    }

    /// The connection to a broker (by name), opened or reopened as needed.
    pub fn broker(&self, broker_name: &str) -> Result<Arc<BrokerClient>> {
        if self.is_closed() {
            return Err(Error::NotRunning("consumer"));
        }
        let addr = lock(&self.brokers).addrs.get(broker_name).cloned();
        let addr = match addr {
            Some(a) => a,
            None => {
                return Err(Error::invalid("broker", format!("address of broker {broker_name:?} not known yet")));
            }
        };
        self.broker_at(&addr)
    }

    /// The connection to the broker of a queue; looks up the topic's route when needed.
    pub fn broker_of(&self, mq: &MessageQueue) -> Result<Arc<BrokerClient>> {
        let known = lock(&self.brokers).addrs.contains_key(&mq.broker_name);
        if !known {
            self.topic_queues(&mq.topic)?;
        }
        self.broker(&mq.broker_name)
    }

    fn broker_at(&self, addr: &str) -> Result<Arc<BrokerClient>> {
        if let Some(c) = lock(&self.brokers).clients.get(addr) {
            if c.is_connected() {
                return Ok(Arc::clone(c));
            }
        }
        // Connect without holding the lock; a racing connect just loses.
        let client = Arc::new(BrokerClient::connect(addr, &self.client_config)?);
        client.set_request_handler(Some(self.request_handler()));
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

    /// Answers what brokers ask: ids changed wakes the rebalance (never
    /// blocks the reader thread); anything else is "not supported".
    fn request_handler(&self) -> RequestHandler {
        let signal = Arc::clone(&self.signal);
        Arc::new(move |cmd: &RemotingCommand| {
            if cmd.code == request::NOTIFY_CONSUMER_IDS_CHANGED {
                signal.request_rebalance();
                return None;
            }
            Some(RemotingCommand::response_to(
                cmd,
                ResponseCode::RequestCodeNotSupported,
                Some(format!("request code {} not supported by this consumer", cmd.code)),
            ))
        })
    }

    /// Client ids of the group, asked from a broker serving `topic`; sorted.
    pub fn consumer_ids(&self, topic: &str) -> Result<Vec<String>> {
        let mut names: Vec<String> = {
            let route = self.namesrv()?.topic_route(topic)?;
            route.broker_datas.iter().map(|b| b.broker_name.clone()).collect()
        };
        names.sort();
        let mut last = None;
        for name in names {
            match self.broker(&name).and_then(|c| c.consumer_ids(&self.group)) {
                Ok(mut ids) => {
                    ids.sort();
                    ids.dedup();
                    return Ok(ids);
                }
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
    /// known broker. Returns how many brokers answered.
    pub fn heartbeat_all(&self) -> usize {
        for sub in self.subscriptions() {
            let _ = self.topic_queues(&sub.topic);
        }
        let data = self.heartbeat_data();
        let names: Vec<String> = lock(&self.brokers).addrs.keys().cloned().collect();
        names.iter().filter(|n| self.broker(n).and_then(|c| c.heartbeat(&data)).is_ok()).count()
    }

    /// Leaves the group on every connected broker (best effort).
    pub fn unregister_all(&self) {
        let clients: Vec<Arc<BrokerClient>> = lock(&self.brokers).clients.values().cloned().collect();
        for c in clients.iter().filter(|c| c.is_connected()) {
            let _ = c.unregister_client(&self.client_id, None, Some(&self.group));
        }
    }

    /// Closes every connection (ends long polls at once); no new ones open after.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let clients: Vec<Arc<BrokerClient>> = lock(&self.brokers).clients.drain().map(|(_, c)| c).collect();
        for c in clients {
            c.close();
        }
        lock(&self.namesrv).take();
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
