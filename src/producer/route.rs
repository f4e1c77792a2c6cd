//! `TopicBrokerMapping`: the producer's route cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::protocol::{MessageQueue, TopicRouteData};
use crate::threads::lock;

/// A writable queue and the address of the master that serves it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QueueTarget {
    /// The queue.
    pub queue: MessageQueue,
    /// Its broker's master address.
    pub broker_addr: String,
}

/// A topic's route with its writable queues, built once per route update.
#[derive(Debug, Clone)]
pub struct TopicPublishInfo {
    /// The route as the name server gave it.
    pub route: TopicRouteData,
    /// Writable queues of masters: brokers by name, queue ids ascending
    /// (the Java client's order, so hashing picks the same queue everywhere).
    pub queues: Vec<QueueTarget>,
    /// When the route was stored.
    pub updated: Instant,
}

impl TopicPublishInfo {
    /// Builds the queue list of `topic` from a route.
    pub fn new(topic: &str, route: TopicRouteData) -> Self {
        let mut datas = route.queue_datas.clone();
        datas.sort_by(|a, b| a.broker_name.cmp(&b.broker_name));
        let mut queues = Vec::new();
        for q in datas.iter().filter(|q| q.is_writable()) {
            let Some(addr) = route.broker(&q.broker_name).and_then(|b| b.master_addr()) else { continue };
            for id in 0..q.write_queue_nums.max(0) {
                queues.push(QueueTarget {
                    queue: MessageQueue::new(topic, q.broker_name.clone(), id),
                    broker_addr: addr.to_string(),
                });
            }
        }
        TopicPublishInfo { route, queues, updated: Instant::now() }
    }

    /// The master address of a broker of this route.
    pub fn broker_addr(&self, broker_name: &str) -> Option<&str> {
        self.route.broker(broker_name).and_then(|b| b.master_addr())
    }
}

/// Routes by topic, each expiring after a while. Thread-safe.
///
/// A route is fresh for `expiry` after it was fetched
/// ([`available_queues`](Self::available_queues) hides it after that, so
/// it is fetched again). Apart from that, the mapping remembers when each
/// topic was last looked up for a send: [`clear_expired_routes`](Self::clear_expired_routes)
/// drops the topics nobody used for a while, and the producer's
/// background thread stops refreshing them.
///
/// ```
/// use std::time::Duration;
/// use rocketmq_blocking::producer::TopicBrokerMapping;
///
/// let routes = TopicBrokerMapping::new(Duration::from_secs(30));
/// assert!(routes.available_queues("T").is_none());
/// assert_eq!(routes.clear_expired_routes(Duration::ZERO), 0);
/// ```
#[derive(Debug)]
pub struct TopicBrokerMapping {
    routes: Mutex<HashMap<String, Entry>>,
    expiry: Duration,
}

#[derive(Debug)]
struct Entry {
    info: Arc<TopicPublishInfo>,
    /// Last lookup for a send (a refresh does not count).
    last_used: Instant,
}

impl TopicBrokerMapping {
    /// A cache whose routes expire after `expiry`.
    pub fn new(expiry: Duration) -> Self {
        TopicBrokerMapping { routes: Mutex::new(HashMap::new()), expiry }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        lock(&self.routes)
    }

    /// Stores a new route of `topic` and returns its queue list. A topic new
    /// to the mapping counts as used now; a known one keeps its last use
    /// (a refresh is not a use).
    pub fn update_route(&self, topic: &str, route: TopicRouteData) -> Arc<TopicPublishInfo> {
        let info = Arc::new(TopicPublishInfo::new(topic, route));
        let mut routes = self.lock();
        let last_used = routes.get(topic).map_or_else(Instant::now, |e| e.last_used);
        routes.insert(topic.to_string(), Entry { info: Arc::clone(&info), last_used });
        info
    }

    /// Looks `topic` up for a send: marks it used.
    fn use_route(&self, topic: &str) -> Option<Arc<TopicPublishInfo>> {
        let mut routes = self.lock();
        let entry = routes.get_mut(topic)?;
        entry.last_used = Instant::now();
        Some(Arc::clone(&entry.info))
    }

    /// The route of `topic` while it has not expired; marks the topic used.
    pub fn available_queues(&self, topic: &str) -> Option<Arc<TopicPublishInfo>> {
        self.use_route(topic).filter(|i| i.updated.elapsed() < self.expiry)
    }

    /// The route of `topic` whatever its age (the producer falls back to it
    /// when the name server cannot be reached); marks the topic used.
    pub fn cached_route(&self, topic: &str) -> Option<Arc<TopicPublishInfo>> {
        self.use_route(topic)
    }

    /// Topics with a route (expired or not).
    pub fn topics(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Every broker address of every cached route.
    pub fn broker_addrs(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .lock()
            .values()
            .flat_map(|e| e.info.route.broker_datas.iter())
            .filter_map(|b| b.master_addr().map(|a| (b.broker_name.clone(), a.to_string())))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Removes the routes of topics not used (looked up by
    /// [`available_queues`](Self::available_queues) or
    /// [`cached_route`](Self::cached_route)) for `max_idle` or longer;
    /// returns how many. The producer's background thread calls it with the
    /// route expiry before each refresh, so topics no longer sent to stop
    /// being polled.
    pub fn clear_expired_routes(&self, max_idle: Duration) -> usize {
        let mut routes = self.lock();
        let before = routes.len();
        routes.retain(|_, e| e.last_used.elapsed() < max_idle);
        before - routes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::route::{BrokerData, QueueData};

    pub(crate) fn route(brokers: &[(&str, i32, i32)]) -> TopicRouteData {
        TopicRouteData {
            order_topic_conf: None,
            queue_datas: brokers
                .iter()
                .map(|(n, q, perm)| QueueData {
                    broker_name: n.to_string(),
                    read_queue_nums: *q,
                    write_queue_nums: *q,
                    perm: *perm,
                    topic_sys_flag: 0,
                })
                .collect(),
            broker_datas: brokers
                .iter()
                .map(|(n, _, _)| BrokerData {
                    cluster: "c".into(),
                    broker_name: n.to_string(),
                    broker_addrs: [(0, format!("{n}:1"))].into_iter().collect(),
                })
                .collect(),
        }
    }

    #[test]
    fn queue_list_is_sorted_and_writable_only() {
        let m = TopicBrokerMapping::new(Duration::from_secs(30));
        let info = m.update_route("T", route(&[("b", 2, 6), ("a", 2, 6), ("ro", 4, 4)]));
        let names: Vec<String> =
            info.queues.iter().map(|q| format!("{}/{}", q.queue.broker_name, q.queue.queue_id)).collect();
        assert_eq!(names, ["a/0", "a/1", "b/0", "b/1"]);
        assert_eq!(info.queues[2].broker_addr, "b:1");
        assert!(m.available_queues("T").is_some());
        assert_eq!(m.clear_expired_routes(Duration::from_secs(60)), 0);
        assert_eq!(m.clear_expired_routes(Duration::ZERO), 1);
        assert!(m.available_queues("T").is_none());
        let expired = TopicBrokerMapping::new(Duration::ZERO);
        expired.update_route("T", route(&[("a", 1, 6)]));
        assert!(expired.available_queues("T").is_none());
        assert!(expired.cached_route("T").is_some());
        assert_eq!(expired.topics(), ["T"]);
    }

    #[test]
    fn only_unused_topics_are_cleared() {
        let m = TopicBrokerMapping::new(Duration::from_secs(30));
        m.update_route("Used", route(&[("a", 1, 6)]));
        m.update_route("Idle", route(&[("a", 1, 6)]));
        std::thread::sleep(Duration::from_millis(30)); // both become idle for 30 ms
        assert!(m.available_queues("Used").is_some());
        // A refresh is not a use: Idle stays idle.
        m.update_route("Idle", route(&[("a", 2, 6)]));
        assert_eq!(m.clear_expired_routes(Duration::from_millis(20)), 1);
        assert_eq!(m.topics(), ["Used"]);
        assert_eq!(m.broker_addrs(), [("a".to_string(), "a:1".to_string())]);
    }
}
