//! `MessageRouter`: picks a queue for each message, avoiding sick brokers.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::health::{BrokerHealthInfo, HealthState};
use super::route::{QueueTarget, TopicPublishInfo};
use crate::error::{Error, Result};
use crate::protocol::message::{java_string_hash, property};
use crate::protocol::{Message, MessageQueue};
use crate::threads::lock;

/// How a queue is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum RoutingStrategy {
    /// One queue after the other, per topic (default).
    #[default]
    RoundRobin,
    /// A random queue.
    Random,
    /// Java's `String.hashCode` of the `__SHARDINGKEY` property, else of the
    /// first key, modulo the queue count (negative results made positive,
    /// as Java's `SelectMessageQueueByHash` does); random without either.
    /// The same key gives the same queue in every process and run, and in
    /// the Java client, while the topic's queues stay the same. A hashed
    /// message ignores broker health, and its retries go to the same queue
    /// (the key's queue is the point; as with Java's selector sends).
    MessageHash,
}

/// Why a queue was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoutingReason {
    /// Among the healthy brokers.
    Healthy,
    /// No healthy broker was available: a degraded one was used.
    DegradedOnly,
    /// No usable broker at all: any queue was taken (Java does the same).
    LastResort,
    /// The message hash decides, whatever the health.
    Hashed,
}

/// The queue chosen for a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingResult {
    /// The queue.
    pub queue: MessageQueue,
    /// Its broker's master address.
    pub broker_addr: String,
    /// The strategy used.
    pub strategy: RoutingStrategy,
    /// Why this queue.
    pub reason: RoutingReason,
}

/// Routing statistics.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoutingStats {
    /// Messages routed.
    pub routed: u64,
    /// Messages routed per strategy.
    pub per_strategy: BTreeMap<RoutingStrategy, u64>,
    /// Health of every broker seen, by name.
    pub brokers: BTreeMap<String, BrokerHealthInfo>,
}

/// Chooses queues and keeps each broker's health.
///
/// ```
/// use std::time::Duration;
/// use rocketmq_blocking::producer::{MessageRouter, RoutingStrategy, TopicBrokerMapping};
/// use rocketmq_blocking::protocol::route::{BrokerData, QueueData, TopicRouteData};
/// use rocketmq_blocking::Message;
///
/// let route = TopicRouteData {
///     order_topic_conf: None,
///     queue_datas: vec![QueueData { broker_name: "a".into(), read_queue_nums: 4, write_queue_nums: 4, perm: 6, topic_sys_flag: 0 }],
///     broker_datas: vec![BrokerData { cluster: "c".into(), broker_name: "a".into(), broker_addrs: [(0, "127.0.0.1:10911".to_string())].into() }],
/// };
/// let routes = TopicBrokerMapping::new(Duration::from_secs(30));
/// let info = routes.update_route("T", route);
/// let router = MessageRouter::new(false);
/// let msg = Message::new("T", "x").with_keys(["order-42"]);
/// let first = router.route_message(&info, &msg, RoutingStrategy::MessageHash, None)?;
/// let again = router.route_message(&info, &msg, RoutingStrategy::MessageHash, None)?;
/// assert_eq!(first.queue, again.queue);
/// # Ok::<(), rocketmq_blocking::Error>(())
/// ```
#[derive(Debug)]
pub struct MessageRouter {
    latency_aware: bool,
    health: Mutex<HashMap<String, BrokerHealthInfo>>,
    counters: Mutex<HashMap<String, u64>>,
    stats: Mutex<(u64, BTreeMap<RoutingStrategy, u64>)>,
    seed: AtomicU64,
}

/// Index of `key`'s queue among `n`, as Java's `SelectMessageQueueByHash`.
pub fn hash_index(key: &str, n: usize) -> usize {
    let n = n.max(1) as i32;
    let value = java_string_hash(key) % n;
    value.unsigned_abs() as usize
}

impl MessageRouter {
    /// A router; `latency_aware` pauses brokers after slow or failed sends.
    pub fn new(latency_aware: bool) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9E37_79B9)
            | 1;
        MessageRouter {
            latency_aware,
            health: Mutex::new(HashMap::new()),
            counters: Mutex::new(HashMap::new()),
            stats: Mutex::new((0, BTreeMap::new())),
            seed: AtomicU64::new(seed),
        }
    }

    fn random(&self) -> u64 {
        // xorshift64*; good enough to spread queues.
        let mut x = self.seed.load(Ordering::Relaxed);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.seed.store(x, Ordering::Relaxed);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn health_lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, BrokerHealthInfo>> {
        lock(&self.health)
    }

    /// Chooses a queue of `info` for `msg`, avoiding `avoid_broker` (the
    /// broker of a failed previous attempt) when another one can take it.
    pub fn route_message(
        &self,
        info: &TopicPublishInfo,
        msg: &Message,
        strategy: RoutingStrategy,
        avoid_broker: Option<&str>,
    ) -> Result<RoutingResult> {
        let topic = info.queues.first().map(|q| q.queue.topic.clone()).unwrap_or_default();
        if info.queues.is_empty() {
            return Err(Error::QueueNotAvailable {
                topic: msg.topic().into(),
                reason: "the route has no writable queue".into(),
            });
        }
        let key = msg
            .property(property::SHARDING_KEY)
            .map(str::to_string)
            .or_else(|| msg.keys().first().map(|k| k.to_string()));
        let (target, reason) = match (strategy, key) {
            (RoutingStrategy::MessageHash, Some(key)) => {
                (&info.queues[hash_index(&key, info.queues.len())], RoutingReason::Hashed)
            }
            (strategy, _) => {
                let (candidates, reason) = self.candidates(&info.queues, avoid_broker);
                let i = match strategy {
                    RoutingStrategy::RoundRobin => {
                        let mut counters = lock(&self.counters);
                        let c = counters.entry(topic).or_insert(0);
                        *c = c.wrapping_add(1);
                        (*c - 1) as usize
                    }
                    _ => self.random() as usize,
                };
                (candidates[i % candidates.len()], reason)
            }
        };
        let mut stats = lock(&self.stats);
        stats.0 += 1;
        *stats.1.entry(strategy).or_insert(0) += 1;
        Ok(RoutingResult { queue: target.queue.clone(), broker_addr: target.broker_addr.clone(), strategy, reason })
    }

    /// The queues routing may use: healthy brokers first, then degraded,
    /// then any; the avoided broker only when nothing else is left.
    fn candidates<'a>(&self, queues: &'a [QueueTarget], avoid: Option<&str>) -> (Vec<&'a QueueTarget>, RoutingReason) {
        let health = self.health_lock();
        let state = |q: &QueueTarget| {
            health.get(&q.queue.broker_name).map_or((HealthState::Healthy, true), |h| (h.state(), h.is_available()))
        };
        let not_avoided = |q: &&QueueTarget| Some(q.queue.broker_name.as_str()) != avoid;
        for (wanted, reason) in
            [(HealthState::Healthy, RoutingReason::Healthy), (HealthState::Degraded, RoutingReason::DegradedOnly)]
        {
            let picked: Vec<&QueueTarget> =
                queues.iter().filter(not_avoided).filter(|q| state(q) == (wanted, true)).collect();
            if !picked.is_empty() {
                return (picked, reason);
            }
        }
        let others: Vec<&QueueTarget> = queues.iter().filter(not_avoided).collect();
        if others.is_empty() {
            (queues.iter().collect(), RoutingReason::LastResort)
        } else {
            (others, RoutingReason::LastResort)
        }
    }

    /// Records a successful send to `broker` that took `latency`.
    pub fn report_result(&self, broker: &str, latency: Duration) {
        self.with_health(broker, |h, aware| h.record_success(Some(latency), aware));
    }

    /// Records that `broker` answered a heartbeat.
    pub fn report_alive(&self, broker: &str) {
        self.with_health(broker, |h, aware| h.record_success(None, aware));
    }

    /// Records a failed send (or heartbeat) to `broker`.
    pub fn report_failure(&self, broker: &str, _error: &Error) {
        self.with_health(broker, |h, aware| h.record_failure(aware));
    }

    /// Takes `broker` out of routing until [`recover_broker`](Self::recover_broker).
    pub fn suspend_broker(&self, broker: &str) {
        self.with_health(broker, |h, _| h.suspend());
    }

    /// Puts `broker` back into routing as healthy.
    pub fn recover_broker(&self, broker: &str) {
        self.with_health(broker, |h, _| h.recover());
    }

    fn with_health(&self, broker: &str, f: impl FnOnce(&mut BrokerHealthInfo, bool)) {
        let mut health = self.health_lock();
        let h = health.entry(broker.to_string()).or_insert_with(|| BrokerHealthInfo::new(broker));
        f(h, self.latency_aware);
    }

    /// The health of one broker, if seen.
    pub fn broker_health(&self, broker: &str) -> Option<BrokerHealthInfo> {
        self.health_lock().get(broker).cloned()
    }

    /// Totals, per-strategy counts and every broker's health.
    pub fn stats(&self) -> RoutingStats {
        let (routed, per_strategy) = lock(&self.stats).clone();
        let brokers = self.health_lock().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        RoutingStats { routed, per_strategy, brokers }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::producer::TopicBrokerMapping;
    use crate::protocol::route::{BrokerData, QueueData, TopicRouteData};

    fn info(brokers: &[&str], queues: i32) -> std::sync::Arc<TopicPublishInfo> {
        let route = TopicRouteData {
            order_topic_conf: None,
            queue_datas: brokers
                .iter()
                .map(|b| QueueData {
                    broker_name: b.to_string(),
                    read_queue_nums: queues,
                    write_queue_nums: queues,
                    perm: 6,
                    topic_sys_flag: 0,
                })
                .collect(),
            broker_datas: brokers
                .iter()
                .map(|b| BrokerData {
                    cluster: "c".into(),
                    broker_name: b.to_string(),
                    broker_addrs: [(0, format!("{b}:1"))].into_iter().collect(),
                })
                .collect(),
        };
        TopicBrokerMapping::new(Duration::from_secs(30)).update_route("T", route)
    }

    #[test]
    fn round_robin_is_even_and_skips_sick_brokers() {
        let info = info(&["a", "b"], 8);
        let r = MessageRouter::new(false);
        let mut counts = HashMap::new();
        for _ in 0..800 {
            let res = r.route_message(&info, &Message::new("T", "x"), RoutingStrategy::RoundRobin, None).unwrap();
            *counts.entry(res.queue.clone()).or_insert(0) += 1;
        }
        assert_eq!(counts.len(), 16);
        assert!(counts.values().all(|c| *c == 50));
        let err = Error::NotRunning("x");
        for _ in 0..5 {
            r.report_failure("a", &err);
        }
        for _ in 0..20 {
            let res = r.route_message(&info, &Message::new("T", "x"), RoutingStrategy::Random, None).unwrap();
            assert_eq!(res.queue.broker_name, "b");
            assert_eq!(res.reason, RoutingReason::Healthy);
        }
        r.suspend_broker("b");
        let res = r.route_message(&info, &Message::new("T", "x"), RoutingStrategy::RoundRobin, None).unwrap();
        assert_eq!(res.reason, RoutingReason::LastResort);
        r.recover_broker("b");
        let res = r.route_message(&info, &Message::new("T", "x"), RoutingStrategy::RoundRobin, Some("b")).unwrap();
        assert_eq!(res.queue.broker_name, "a", "the failed broker is avoided while another exists");
        assert_eq!(r.stats().routed, 822);
        assert_eq!(r.stats().per_strategy[&RoutingStrategy::Random], 20);
    }

    #[test]
    fn degraded_brokers_are_used_only_without_healthy_ones() {
        let info = info(&["a", "b"], 2);
        let r = MessageRouter::new(false);
        let err = Error::NotRunning("x");
        for _ in 0..3 {
            r.report_failure("a", &err);
        }
        for _ in 0..10 {
            let res = r.route_message(&info, &Message::new("T", "x"), RoutingStrategy::RoundRobin, None).unwrap();
            assert_eq!(res.queue.broker_name, "b");
        }
        for _ in 0..3 {
            r.report_failure("b", &err);
        }
        let res = r.route_message(&info, &Message::new("T", "x"), RoutingStrategy::RoundRobin, None).unwrap();
        assert_eq!(res.reason, RoutingReason::DegradedOnly);
    }

    #[test]
    fn hashing_follows_java() {
        // Java: "order-1".hashCode() == -1207111310; % 16 == -14 -> 14.
        assert_eq!(java_string_hash("order-1"), -1207111310);
        assert_eq!(hash_index("order-1", 16), 14);
        let info = info(&["a", "b"], 8);
        let r = MessageRouter::new(false);
        let m = Message::new("T", "x").with_property(property::SHARDING_KEY, "order-1").with_keys(["ignored"]);
        let res = r.route_message(&info, &m, RoutingStrategy::MessageHash, None).unwrap();
        assert_eq!((res.queue.broker_name.as_str(), res.queue.queue_id), ("b", 6));
        assert_eq!(res.reason, RoutingReason::Hashed);
    }
}
