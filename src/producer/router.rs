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
    /// No usable broker at all: a queue of an unhealthy or paused broker
    /// was taken (Java does the same). Never a suspended one.
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
///
/// A routing is one call of [`MessageRouter::route_message`]: successful
/// when it chose a queue, failed when it returned an error (no writable
/// queue, every broker suspended). Sends and heartbeats per broker are in
/// [`brokers`](Self::brokers).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoutingStats {
    /// Routings that chose a queue.
    pub successful: u64,
    /// Routings that failed with an error.
    pub failed: u64,
    /// Successful routings per strategy.
    pub per_strategy: BTreeMap<RoutingStrategy, u64>,
    /// Health of every broker seen, by name.
    pub brokers: BTreeMap<String, BrokerHealthInfo>,
}

impl RoutingStats {
    /// All routings, successful or not.
    pub fn total(&self) -> u64 {
        self.successful + self.failed
    }

    /// The share of `broker`'s sends and heartbeats that succeeded (0.0 to
    /// 1.0); `None` for a broker not seen or with no result yet.
    pub fn success_rate(&self, broker: &str) -> Option<f64> {
        self.brokers.get(broker).and_then(BrokerHealthInfo::success_rate)
    }
}

#[derive(Debug, Default)]
struct Counts {
    successful: u64,
    failed: u64,
    per_strategy: BTreeMap<RoutingStrategy, u64>,
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
/// assert_eq!(router.stats().successful, 2);
/// # Ok::<(), rocketmq_blocking::Error>(())
/// ```
#[derive(Debug)]
pub struct MessageRouter {
    latency_aware: bool,
    health: Mutex<HashMap<String, BrokerHealthInfo>>,
    counters: Mutex<HashMap<String, u64>>,
    stats: Mutex<Counts>,
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
            stats: Mutex::new(Counts::default()),
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
    ///
    /// A suspended broker ([`suspend_broker`](Self::suspend_broker)) is never
    /// chosen, whatever the strategy: with every broker of the route
    /// suspended, or a message hash whose queue is on a suspended broker
    /// (moving it would break the key's order), the result is
    /// [`Error::QueueNotAvailable`]. Every call counts in [`stats`](Self::stats),
    /// as successful or failed.
    pub fn route_message(
        &self,
        info: &TopicPublishInfo,
        msg: &Message,
        strategy: RoutingStrategy,
        avoid_broker: Option<&str>,
    ) -> Result<RoutingResult> {
        let result = self.pick(info, msg, strategy, avoid_broker);
        let mut stats = lock(&self.stats);
        match &result {
            Ok(_) => {
                stats.successful += 1;
                *stats.per_strategy.entry(strategy).or_insert(0) += 1;
            }
            Err(_) => stats.failed += 1,
        }
        result
    }

    fn pick(
        &self,
        info: &TopicPublishInfo,
        msg: &Message,
        strategy: RoutingStrategy,
        avoid_broker: Option<&str>,
    ) -> Result<RoutingResult> {
        let unavailable = |reason: String| Error::QueueNotAvailable { topic: msg.topic().into(), reason };
        let Some(first) = info.queues.first() else {
            return Err(unavailable("the route has no writable queue".into()));
        };
        let topic = first.queue.topic.clone();
        let key = msg
            .property(property::SHARDING_KEY)
            .map(str::to_string)
            .or_else(|| msg.keys().first().map(|k| k.to_string()));
        let (target, reason) = match (strategy, key) {
            (RoutingStrategy::MessageHash, Some(key)) => {
                let target = &info.queues[hash_index(&key, info.queues.len())];
                if self.is_suspended(&target.queue.broker_name) {
                    return Err(unavailable(format!(
                        "the queue of key {key:?} is on broker {}, which is suspended",
                        target.queue.broker_name
                    )));
                }
                (target, RoutingReason::Hashed)
            }
            (strategy, _) => {
                let (candidates, reason) = self.candidates(&info.queues, avoid_broker);
                if candidates.is_empty() {
                    return Err(unavailable("every broker of the route is suspended".into()));
                }
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
        Ok(RoutingResult { queue: target.queue.clone(), broker_addr: target.broker_addr.clone(), strategy, reason })
    }

    fn is_suspended(&self, broker: &str) -> bool {
        self.health_lock().get(broker).is_some_and(|h| h.state() == HealthState::Suspended)
    }

    /// The queues routing may use: healthy brokers first, then degraded,
    /// then any but suspended ones; the avoided broker only when nothing
    /// else is left. Empty when every broker is suspended.
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
        let usable: Vec<&QueueTarget> = queues.iter().filter(|q| state(q).0 != HealthState::Suspended).collect();
        let others: Vec<&QueueTarget> = usable.iter().copied().filter(not_avoided).collect();
        if others.is_empty() {
            (usable, RoutingReason::LastResort)
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

    /// Successful and failed routings, per-strategy counts and every
    /// broker's health (with its success rate).
    pub fn stats(&self) -> RoutingStats {
        let (successful, failed, per_strategy) = {
            let c = lock(&self.stats);
            (c.successful, c.failed, c.per_strategy.clone())
        };
        let brokers = self.health_lock().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        RoutingStats { successful, failed, per_strategy, brokers }
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
        assert_eq!(res.queue.broker_name, "a", "the unhealthy broker, never the suspended one");
        r.recover_broker("b");
        let res = r.route_message(&info, &Message::new("T", "x"), RoutingStrategy::RoundRobin, Some("b")).unwrap();
        assert_eq!(res.queue.broker_name, "a", "the failed broker is avoided while another exists");
        assert_eq!(r.stats().successful, 822);
        assert_eq!(r.stats().failed, 0);
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

    #[test]
    fn a_suspended_broker_is_never_chosen() {
        let info = info(&["a", "b"], 4);
        let r = MessageRouter::new(true);
        let err = Error::NotRunning("x");
        r.suspend_broker("a");
        for strategy in [RoutingStrategy::RoundRobin, RoutingStrategy::Random, RoutingStrategy::MessageHash] {
            for i in 0..50 {
                let res = r.route_message(&info, &Message::new("T", "x"), strategy, None).unwrap();
                assert_eq!(res.queue.broker_name, "b", "{strategy:?} #{i}");
                // Even when the only other broker is the one to avoid.
                let res = r.route_message(&info, &Message::new("T", "x"), strategy, Some("b")).unwrap();
                assert_eq!(res.queue.broker_name, "b");
            }
        }
        // b unhealthy and paused: still b (last resort), not the suspended a.
        for _ in 0..5 {
            r.report_failure("b", &err);
        }
        let res = r.route_message(&info, &Message::new("T", "x"), RoutingStrategy::RoundRobin, None).unwrap();
        assert_eq!((res.queue.broker_name.as_str(), res.reason), ("b", RoutingReason::LastResort));
        // Both suspended: a typed error, counted as a failed routing.
        r.suspend_broker("b");
        let before = r.stats();
        for strategy in [RoutingStrategy::RoundRobin, RoutingStrategy::Random] {
            let err = r.route_message(&info, &Message::new("T", "x"), strategy, None).unwrap_err();
            assert!(matches!(err, Error::QueueNotAvailable { ref topic, .. } if topic == "T"), "{err:?}");
        }
        // A hashed key whose queue is on a suspended broker is refused, not moved.
        let keyed = Message::new("T", "x").with_keys(["order-1"]);
        let err = r.route_message(&info, &keyed, RoutingStrategy::MessageHash, None).unwrap_err();
        assert!(err.to_string().contains("suspended"), "{err}");
        let after = r.stats();
        assert_eq!(after.failed, before.failed + 3);
        assert_eq!(after.successful, before.successful);
        assert_eq!(after.total(), before.total() + 3);
        r.recover_broker("a");
        let res = r.route_message(&info, &keyed, RoutingStrategy::RoundRobin, None).unwrap();
        assert_eq!(res.queue.broker_name, "a");
    }

    #[test]
    fn stats_count_failed_routings_and_success_rates() {
        let empty = info(&[], 0);
        let r = MessageRouter::new(false);
        let err = r.route_message(&empty, &Message::new("T", "x"), RoutingStrategy::RoundRobin, None).unwrap_err();
        assert!(matches!(err, Error::QueueNotAvailable { .. }), "{err:?}");
        let info = info(&["a"], 1);
        r.route_message(&info, &Message::new("T", "x"), RoutingStrategy::Random, None).unwrap();
        let e = Error::NotRunning("x");
        for _ in 0..3 {
            r.report_result("a", Duration::from_millis(1));
        }
        r.report_failure("a", &e);
        let stats = r.stats();
        assert_eq!((stats.successful, stats.failed, stats.total()), (1, 1, 2));
        assert_eq!(stats.per_strategy.get(&RoutingStrategy::Random), Some(&1));
        assert_eq!(stats.per_strategy.get(&RoutingStrategy::RoundRobin), None, "failed routings are not per strategy");
        assert_eq!(stats.success_rate("a"), Some(0.75));
        assert_eq!(stats.success_rate("unknown"), None);
    }
}
