//! Topic routes and cluster info from the name server.
//!
//! The name server writes maps with integer keys unquoted
//! (`{"brokerAddrs":{0:"127.0.0.1:10911"}}`), which is not JSON.
//! [`quote_integer_keys`] quotes exactly those keys; everything else must
//! already be JSON, or parsing fails.

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

/// Quotes object keys that are bare integers (`{0:"a"}` → `{"0":"a"}`).
///
/// Only a run of an optional `-` and digits that directly follows `{` or `,`
/// (outside strings) and is followed by `:` is changed; any other text is
/// left as it is, so that invalid JSON stays invalid.
pub fn quote_integer_keys(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len() + 16);
    let mut i = 0;
    let mut in_string = false;
    let mut after_open = false; // last significant byte outside strings was `{` or `,`
    let mut copied = 0;
    while i < b.len() {
        let c = b[i];
        if in_string {
            match c {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        match c {
            b'"' => {
                in_string = true;
                after_open = false;
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

    #[test]
    fn other_invalid_json_is_refused() {
        for bad in [&b"{brokerDatas:[]}"[..], b"{'a':1}", b"{\"queueDatas\":[1,]}", b"\xff", b"{0:}"] {
            assert!(TopicRouteData::from_json(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
