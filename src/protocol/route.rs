//! Topic routes and cluster info from the name server.
//!
//! The name server writes maps with integer keys unquoted
//! (`{"brokerAddrs":{0:"127.0.0.1:10911"}}`), which is not JSON.
//! [`quote_integer_keys`] quotes exactly those keys; everything else must
//! already be JSON, or parsing fails.
//!
//! # Limits
//! A route says how many queues each broker serves, and the producer and
//! the consumers make one entry per queue. The numbers are checked against
//! [`RouteLimits`] before anything is built from them
//! ([`NameServerClient::topic_route`](crate::NameServerClient::topic_route)
//! does it for every route it returns), so a route announcing a million or
//! `i32::MAX` queues costs nothing but a typed error:
//!
//! | limit | default | over it |
//! |---|---|---|
//! | read or write queues of one broker | [`DEFAULT_MAX_QUEUES_PER_BROKER`] = 1,024 (negative counts are refused) | [`ProtocolError::RouteLimit`] naming the topic, the broker and the number |
//! | brokers of one route (queue data entries and broker data entries, each) | [`DEFAULT_MAX_BROKERS_PER_ROUTE`] = 128 | [`ProtocolError::RouteLimit`] |
//!
//! The Java client sets no limit of its own; the broker creates 8 queues per
//! topic by default (`defaultTopicQueueNums`) and 4 for topics a producer
//! creates on first send, and 0 is a valid count (a broker taken out of a
//! topic during a migration). Raise the limits with
//! [`NameServerClient::with_route_limits`](crate::NameServerClient::with_route_limits),
//! `ProducerConfigBuilder::route_limits` or `ConsumerConfigBuilder::route_limits`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::ProtocolError;

/// Queue permission: readable.
pub const PERM_READ: i32 = 4;
/// Queue permission: writable.
pub const PERM_WRITE: i32 = 2;
/// Queue permission: inherit.
pub const PERM_INHERIT: i32 = 1;

/// Broker id of a master.
pub const MASTER_ID: i64 = 0;

/// Default most read or write queues one broker may announce for a topic: 1,024.
pub const DEFAULT_MAX_QUEUES_PER_BROKER: i32 = 1024;
/// Default most brokers one route may list: 128.
pub const DEFAULT_MAX_BROKERS_PER_ROUTE: usize = 128;

/// Limits a topic route must keep before the client builds anything from it
/// (see the [module docs](self)).
///
/// ```
/// use rocketmq_blocking::protocol::route::{QueueData, RouteLimits, TopicRouteData};
/// use rocketmq_blocking::ProtocolError;
///
/// let limits = RouteLimits::default().with_max_queues_per_broker(16);
/// let mut route = TopicRouteData::default();
/// route.queue_datas.push(QueueData {
///     broker_name: "broker-a".into(),
///     read_queue_nums: 8,
///     write_queue_nums: 1_000_000,
///     perm: 6,
///     topic_sys_flag: 0,
/// });
/// match limits.check("T", &route) {
///     Err(ProtocolError::RouteLimit { broker, value, limit, .. }) => {
///         assert_eq!((broker.as_str(), value, limit), ("broker-a", 1_000_000, 16));
///     }
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteLimits {
    max_queues_per_broker: i32,
    max_brokers: usize,
}

impl Default for RouteLimits {
    fn default() -> Self {
        RouteLimits { max_queues_per_broker: DEFAULT_MAX_QUEUES_PER_BROKER, max_brokers: DEFAULT_MAX_BROKERS_PER_ROUTE }
    }
}

impl RouteLimits {
    /// Sets the most read or write queues of one broker (default 1,024).
    pub fn with_max_queues_per_broker(mut self, n: u16) -> Self {
        self.max_queues_per_broker = i32::from(n);
        self
    }

    /// Sets the most brokers of one route (default 128).
    pub fn with_max_brokers(mut self, n: u16) -> Self {
        self.max_brokers = usize::from(n);
        self
    }

    /// The most read or write queues of one broker.
    pub fn max_queues_per_broker(&self) -> i32 {
        self.max_queues_per_broker
    }

    /// The most brokers of one route.
    pub fn max_brokers(&self) -> usize {
        self.max_brokers
    }

    /// Checks `route` (of `topic`) against the limits. Costs nothing per
    /// announced queue: only the numbers are read.
    pub fn check(&self, topic: &str, route: &TopicRouteData) -> Result<(), ProtocolError> {
        let refuse = |broker: &str, what: &'static str, value: i64, limit: i64| ProtocolError::RouteLimit {
            topic: topic.to_string(),
            broker: broker.chars().take(256).collect(),
            what,
            value,
            limit,
        };
        let max_brokers = self.max_brokers as i64;
        if route.queue_datas.len() > self.max_brokers {
            return Err(refuse("", "queue data entries", route.queue_datas.len() as i64, max_brokers));
        }
        if route.broker_datas.len() > self.max_brokers {
            return Err(refuse("", "broker data entries", route.broker_datas.len() as i64, max_brokers));
        }
        let max = i64::from(self.max_queues_per_broker);
        for q in &route.queue_datas {
            for (what, n) in [("write queues", q.write_queue_nums), ("read queues", q.read_queue_nums)] {
                if n < 0 {
                    return Err(refuse(&q.broker_name, what, i64::from(n), 0));
                }
                if i64::from(n) > max {
                    return Err(refuse(&q.broker_name, what, i64::from(n), max));
                }
            }
        }
        Ok(())
    }
}

/// Queues of one topic on one broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueData {
    /// Broker name.
    pub broker_name: String,
    /// Readable queue count.
    pub read_queue_nums: i32,
    /// Writable queue count.
    pub write_queue_nums: i32,
    /// Permission bits.
    pub perm: i32,
    /// Topic sys flag.
    #[serde(default)]
    pub topic_sys_flag: i32,
}

impl QueueData {
    /// Whether the queues accept writes.
    pub fn is_writable(&self) -> bool {
        self.perm & PERM_WRITE != 0
    }
    /// Whether the queues can be read.
    pub fn is_readable(&self) -> bool {
        self.perm & PERM_READ != 0
    }
}

/// One broker group: its name, cluster and addresses by broker id (0 = master).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BrokerData {
    /// Cluster name.
    #[serde(default)]
    pub cluster: String,
    /// Broker name.
    pub broker_name: String,
    /// Address by broker id.
    pub broker_addrs: BTreeMap<i64, String>,
}

impl BrokerData {
    /// The master's address.
    pub fn master_addr(&self) -> Option<&str> {
        self.broker_addrs.get(&MASTER_ID).map(String::as_str)
    }
}

/// Where a topic's queues live.
///
/// The name server's JSON has integer map keys; [`from_json`](Self::from_json) reads it as sent:
///
/// ```
/// use rocketmq_blocking::protocol::TopicRouteData;
///
/// let body = br#"{"queueDatas":[{"brokerName":"broker-a","readQueueNums":4,"writeQueueNums":4,"perm":6,"topicSysFlag":0}],
///   "brokerDatas":[{"cluster":"DefaultCluster","brokerName":"broker-a","brokerAddrs":{0:"127.0.0.1:10911"}}]}"#;
/// let route = TopicRouteData::from_json(body)?;
/// assert_eq!(route.broker("broker-a").and_then(|b| b.master_addr()), Some("127.0.0.1:10911"));
/// assert!(route.queue_datas[0].is_writable());
/// # Ok::<(), rocketmq_blocking::ProtocolError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TopicRouteData {
    /// Order topic configuration, if any.
    #[serde(default)]
    pub order_topic_conf: Option<String>,
    /// Queue data per broker.
    #[serde(default)]
    pub queue_datas: Vec<QueueData>,
    /// Brokers serving the topic.
    #[serde(default)]
    pub broker_datas: Vec<BrokerData>,
}

impl TopicRouteData {
    /// Parses the name server's route body.
    pub fn from_json(body: &[u8]) -> Result<Self, ProtocolError> {
        parse_name_server_json(body, "topic route")
    }

    /// The broker data of a broker name.
    pub fn broker(&self, name: &str) -> Option<&BrokerData> {
        self.broker_datas.iter().find(|b| b.broker_name == name)
    }
}

/// Brokers and clusters known to the name server.
///
/// ```
/// use rocketmq_blocking::protocol::ClusterInfo;
///
/// let body = br#"{"brokerAddrTable":{"broker-a":{"cluster":"c","brokerName":"broker-a","brokerAddrs":{0:"127.0.0.1:10911"}}},
///   "clusterAddrTable":{"c":["broker-a"]}}"#;
/// let info = ClusterInfo::from_json(body)?;
/// assert_eq!(info.cluster_addr_table["c"], ["broker-a"]);
/// # Ok::<(), rocketmq_blocking::ProtocolError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ClusterInfo {
    /// Broker data by broker name.
    #[serde(default)]
    pub broker_addr_table: BTreeMap<String, BrokerData>,
    /// Broker names by cluster.
    #[serde(default)]
    pub cluster_addr_table: BTreeMap<String, Vec<String>>,
}

impl ClusterInfo {
    /// Parses the name server's cluster info body.
    pub fn from_json(body: &[u8]) -> Result<Self, ProtocolError> {
        parse_name_server_json(body, "cluster info")
    }
}

fn parse_name_server_json<T: serde::de::DeserializeOwned>(body: &[u8], what: &'static str) -> Result<T, ProtocolError> {
    let text =
        std::str::from_utf8(body).map_err(|_| ProtocolError::InvalidJson { what, reason: "not UTF-8".into() })?;
    let fixed = quote_integer_keys(text);
    serde_json::from_str(&fixed).map_err(|e| ProtocolError::InvalidJson { what, reason: e.to_string() })
}

/// One past the `"` that closes the JSON string opening at `b[start]` (a
/// `"`), escapes skipped; the length of `b` when it never closes.
pub(crate) fn json_string_end(b: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

/// Quotes object keys that are bare integers (`{0:"a"}` → `{"0":"a"}`).
///
/// Only a run of an optional `-` and digits that directly follows `{` or `,`
/// (outside strings) and is followed by `:` is changed; any other text is
/// left as it is, so that invalid JSON stays invalid.
pub fn quote_integer_keys(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len() + 16);
    let mut i = 0;
    let mut after_open = false; // last significant byte outside strings was `{` or `,`
    let mut copied = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i = json_string_end(b, i);
                after_open = false;
                continue;
            }
            b'{' | b',' => after_open = true,
            b' ' | b'\t' | b'\n' | b'\r' => {}
            b'-' | b'0'..=b'9' if after_open => {
                let start = i;
                let mut j = i + 1;
                while j < b.len() && b[j].is_ascii_digit() {
                    j += 1;
                }
                let mut k = j;
                while k < b.len() && matches!(b[k], b' ' | b'\t' | b'\n' | b'\r') {
                    k += 1;
                }
                let digits = &text[start..j];
                if k < b.len() && b[k] == b':' && digits != "-" {
                    out.push_str(&text[copied..start]);
                    out.push('"');
                    out.push_str(digits);
                    out.push('"');
                    copied = j;
                }
                after_open = false;
                i = j;
                continue;
            }
            _ => after_open = false,
        }
        i += 1;
    }
    out.push_str(&text[copied.min(text.len())..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_integer_keys() {
        assert_eq!(quote_integer_keys(r#"{0:"a",1 : "b"}"#), r#"{"0":"a","1" : "b"}"#);
        assert_eq!(quote_integer_keys(r#"{"k":[1,2],"s":"{0:x}"}"#), r#"{"k":[1,2],"s":"{0:x}"}"#);
        assert_eq!(quote_integer_keys(r#"{"e":"\"{1:"}"#), r#"{"e":"\"{1:"}"#);
        assert_eq!(quote_integer_keys(r#"{-1:"x"}"#), r#"{"-1":"x"}"#);
    }

    #[test]
    fn route_with_integer_keys_parses() {
        let body = br#"{"brokerDatas":[{"brokerAddrs":{0:"127.0.0.1:20911",1:"127.0.0.1:20921"},"brokerName":"broker-a","cluster":"C"}],"filterServerTable":{},"queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":8,"topicSysFlag":0,"writeQueueNums":8}]}"#;
        let r = TopicRouteData::from_json(body).unwrap();
        assert_eq!(r.broker_datas[0].master_addr(), Some("127.0.0.1:20911"));
        assert_eq!(r.broker_datas[0].broker_addrs[&1], "127.0.0.1:20921");
        assert!(r.queue_datas[0].is_writable());
    }

    fn route(write: i32, read: i32, brokers: usize) -> TopicRouteData {
        let q = |i: usize| QueueData {
            broker_name: format!("b{i}"),
            read_queue_nums: read,
            write_queue_nums: write,
            perm: 6,
            topic_sys_flag: 0,
        };
        TopicRouteData { queue_datas: (0..brokers).map(q).collect(), ..TopicRouteData::default() }
    }

    #[test]
    fn route_limits_name_topic_broker_and_number() {
        let limits = RouteLimits::default();
        assert_eq!(limits.check("T", &route(1024, 0, 128)), Ok(()));
        let over = |what, value, limit| ProtocolError::RouteLimit {
            topic: "T".into(),
            broker: "b0".into(),
            what,
            value,
            limit,
        };
        assert_eq!(limits.check("T", &route(1025, 8, 1)), Err(over("write queues", 1025, 1024)));
        assert_eq!(limits.check("T", &route(8, i32::MAX, 1)), Err(over("read queues", i64::from(i32::MAX), 1024)));
        assert_eq!(limits.check("T", &route(-1, 8, 1)), Err(over("write queues", -1, 0)));
        assert_eq!(limits.check("T", &route(8, i32::MIN, 1)), Err(over("read queues", i64::from(i32::MIN), 0)));
        let e = limits.check("T", &route(1, 1, 129)).unwrap_err();
        assert!(matches!(e, ProtocolError::RouteLimit { value: 129, limit: 128, .. }), "{e:?}");
        assert!(e.to_string().contains("129"), "{e}");
        let small = RouteLimits::default().with_max_queues_per_broker(4).with_max_brokers(2);
        assert_eq!((small.max_queues_per_broker(), small.max_brokers()), (4, 2));
        assert!(small.check("T", &route(5, 1, 1)).is_err());
        assert!(small.check("T", &route(4, 4, 3)).is_err());
        assert!(small.check("T", &route(4, 4, 2)).is_ok());
    }

    #[test]
    fn other_invalid_json_is_refused() {
        for bad in [&b"{brokerDatas:[]}"[..], b"{'a':1}", b"{\"queueDatas\":[1,]}", b"\xff", b"{0:}"] {
            assert!(TopicRouteData::from_json(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
