//! Shared helpers of the integration tests. They talk to the real brokers
//! started by `tests/broker/rocketmq.sh start`, found through
//! `ROCKETMQ_NAMESRV_ADDR`.
#![allow(dead_code)]

pub mod fault_proxy;
pub mod java;
pub mod members;
pub mod peer;
pub mod responder;
pub mod restart;
pub mod rmq;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rocketmq_blocking::broker::{BrokerClient, ClientConfig, PullRequest, PullResult, PullStatus};
use rocketmq_blocking::{MessageExt, MessageQueue, NameServerClient, TopicConfig};

/// The cluster the harness starts.
pub const CLUSTER: &str = "DefaultCluster";

/// The name server address; the tests never skip silently.
pub fn namesrv_addr() -> String {
    std::env::var("ROCKETMQ_NAMESRV_ADDR")
        .expect("ROCKETMQ_NAMESRV_ADDR is not set: start the brokers with `eval \"$(tests/broker/rocketmq.sh start)\"`")
}

pub fn namesrv() -> NameServerClient {
    NameServerClient::new(&namesrv_addr()).expect("name server address")
}

/// A name unique to this test run: `prefix_<pid>_<n>_<millis>`.
pub fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() % 100_000_000;
    format!("{prefix}_{}_{}_{ms}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// Polls `cond` every 50 ms until it returns `Some` or `limit` passes.
pub fn wait_for<T>(limit: Duration, what: &str, mut cond: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = cond() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Master address of a broker.
pub fn broker_addr(name: &str) -> String {
    let info = namesrv().cluster_info().expect("cluster info");
    info.broker_addr_table
        .get(name)
        .and_then(|b| b.master_addr())
        .unwrap_or_else(|| panic!("broker {name} not registered: {info:?}"))
        .to_string()
}

/// Creates a topic on both brokers and waits until its route lists both.
pub fn create_topic(topic: &str, queues: i32) {
    let ns = namesrv();
    let created = ns.create_topic(CLUSTER, &TopicConfig::new(topic).queues(queues)).expect("create topic");
    assert!(created.len() >= 2, "topic created on {created:?}");
    wait_for(Duration::from_secs(30), "route of the new topic", || {
        ns.topic_route(topic).ok().filter(|r| r.broker_datas.len() >= 2 && r.queue_datas.len() >= 2)
    });
}

/// Creates a topic on one broker only and waits for its route.
pub fn create_topic_on(broker: &str, topic: &str, queues: i32) {
    let ns = namesrv();
    ns.create_topic_on_broker(&broker_addr(broker), &TopicConfig::new(topic).queues(queues)).expect("create topic");
    wait_for(Duration::from_secs(30), "route of the new topic", || {
        ns.topic_route(topic).ok().filter(|r| r.broker_datas.iter().any(|b| b.broker_name == broker))
    });
}

pub fn client(broker: &str) -> BrokerClient {
    let config = ClientConfig::builder().request_timeout(Duration::from_secs(10)).build().unwrap();
    BrokerClient::connect(&broker_addr(broker), &config).expect("connect to broker")
}

/// Pulls a queue from `offset` until `count` messages were read (bounded).
pub fn pull_n(client: &BrokerClient, queue: &MessageQueue, mut offset: i64, count: usize) -> Vec<MessageExt> {
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while out.len() < count {
        assert!(Instant::now() < deadline, "pulled only {} of {count} messages from {queue:?}", out.len());
        let mut req = PullRequest::new("pull_n_group", queue.clone(), offset);
        req.max_msgs = 32;
        let r: PullResult = match client.pull(&req) {
            Ok(r) => r,
            // A retry or dead-letter topic appears only with its first message.
            Err(rocketmq_blocking::Error::TopicNotFound { .. }) => {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            Err(e) => panic!("pull {queue:?} from {offset}: {e}"),
        };
        match r.status {
            PullStatus::Found => {
                offset = r.next_begin_offset;
                out.extend(r.messages);
            }
            PullStatus::NoNewMsg | PullStatus::NoMatchedMsg => std::thread::sleep(Duration::from_millis(50)),
            PullStatus::OffsetIllegal => panic!("offset {offset} illegal on {queue:?}: {r:?}"),
        }
    }
    out
}

/// Runs the broker harness script with `args` and panics if it fails.
pub fn harness(args: &[&str]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/broker/rocketmq.sh");
    let status = std::process::Command::new("bash").arg(script).args(args).status().expect("run harness");
    assert!(status.success(), "tests/broker/rocketmq.sh {args:?} failed");
}

/// Restarts a broker when dropped, so a killed broker comes back even when the test fails.
pub struct RestartOnDrop(pub &'static str);

impl Drop for RestartOnDrop {
    fn drop(&mut self) {
        harness(&["start-broker", self.0]);
    }
}

/// A consumer config for the tests: the harness's name server, short
/// intervals (rebalance 1 s, persist 500 ms, heartbeat 5 s).
pub fn consumer_config(group: &str) -> rocketmq_blocking::consumer::ConsumerConfigBuilder {
    rocketmq_blocking::consumer::ConsumerConfig::builder()
        .group(group)
        .namesrv_addr(namesrv_addr())
        .rebalance_interval(Duration::from_secs(1))
        .persist_interval(Duration::from_millis(500))
        .heartbeat_interval(Duration::from_secs(5))
        .pull_error_delay(Duration::from_millis(500))
}

/// Sends `msgs` to `queue` in batches of up to 32, in order.
pub fn send_in_batches(client: &BrokerClient, queue: &MessageQueue, msgs: &[rocketmq_blocking::Message]) {
    for chunk in msgs.chunks(32) {
        client.send_batch("consumer_test_pg", queue, chunk).expect("send batch");
    }
}

/// The sorted queues of a topic, as a consumer sees them.
pub fn topic_queues(topic: &str) -> Vec<MessageQueue> {
    let route = namesrv().topic_route(topic).expect("route");
    let mut v: Vec<MessageQueue> = route
        .queue_datas
        .iter()
        .flat_map(|q| (0..q.read_queue_nums).map(move |i| MessageQueue::new(topic, q.broker_name.clone(), i)))
        .collect();
    v.sort();
    v
}

/// Names of this process's threads started by the crate (`rocketmq-*`;
/// Linux truncates names to 15 bytes).
pub fn crate_threads() -> Vec<String> {
    let mut names = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for e in dir.flatten() {
            if let Ok(name) = std::fs::read_to_string(e.path().join("comm")) {
                let name = name.trim().to_string();
                if name.starts_with("rocketmq-") {
                    names.push(name);
                }
            }
        }
    }
    names
}

/// A producer config for the tests: the harness's name server, the Testing
/// preset (routes and heartbeats every 500 ms).
pub fn producer_config(group: &str) -> rocketmq_blocking::producer::ProducerConfigBuilder {
    rocketmq_blocking::producer::ProducerConfig::preset(rocketmq_blocking::producer::Preset::Testing)
        .group(group)
        .namesrv_addr(namesrv_addr())
}

/// Every message of every readable queue of `topic` (read until each queue's max offset).
pub fn pull_all(topic: &str) -> Vec<MessageExt> {
    let mut out = Vec::new();
    for q in topic_queues(topic) {
        let c = client(&q.broker_name);
        let max = c.max_offset(&q).expect("max offset");
        if max > 0 {
            out.extend(pull_n(&c, &q, 0, max as usize));
        }
    }
    out
}

/// Client ids of a producer group's connections at a broker
/// (GET_PRODUCER_CONNECTION_LIST, code 204); empty when the group has none.
pub fn producer_connections(broker: &str, group: &str) -> Vec<String> {
    use rocketmq_blocking::protocol::{RemotingCommand, ResponseCode};
    let c = client(broker);
    let mut cmd = RemotingCommand::request(204);
    cmd.ext_fields.insert("producerGroup".into(), group.into());
    let resp = c.invoke(cmd, Duration::from_secs(5)).expect("producer connection list");
    if resp.response_code() != ResponseCode::Success {
        return Vec::new();
    }
    let v: serde_json::Value = serde_json::from_slice(&resp.body).expect("producer connection JSON");
    v["connectionSet"]
        .as_array()
        .map(|a| a.iter().filter_map(|c| c["clientId"].as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// (client id, client address as the broker sees it) of a consumer group's
/// connections at a broker (GET_CONSUMER_CONNECTION_LIST, code 203); empty
/// when the group has none.
pub fn consumer_connections(broker: &str, group: &str) -> Vec<(String, String)> {
    use rocketmq_blocking::protocol::{RemotingCommand, ResponseCode};
    let c = client(broker);
    let mut cmd = RemotingCommand::request(203);
    cmd.ext_fields.insert("consumerGroup".into(), group.into());
    let resp = c.invoke(cmd, Duration::from_secs(5)).expect("consumer connection list");
    if resp.response_code() != ResponseCode::Success {
        return Vec::new();
    }
    let v: serde_json::Value = serde_json::from_slice(&resp.body).expect("consumer connection JSON");
    let field = |c: &serde_json::Value, k: &str| c[k].as_str().unwrap_or_default().to_string();
    v["connectionSet"]
        .as_array()
        .map(|a| a.iter().map(|c| (field(c, "clientId"), field(c, "clientAddr"))).collect())
        .unwrap_or_default()
}

/// Whether the harness runs a 4.x release (`ROCKETMQ_VERSION=4...`).
pub fn brokers_are_4x() -> bool {
    std::env::var("ROCKETMQ_VERSION").is_ok_and(|v| v.starts_with("4."))
}

/// Starts the name server again when dropped (after `stop-namesrv`), so it
/// comes back even when the test fails; waits until the brokers re-registered.
pub struct StartNamesrvOnDrop;

impl Drop for StartNamesrvOnDrop {
    fn drop(&mut self) {
        harness(&["start-namesrv"]);
    }
}

/// Bodies of `msgs` as strings.
pub fn body_strings(msgs: &[MessageExt]) -> Vec<String> {
    msgs.iter().map(|m| String::from_utf8_lossy(&m.body).into_owned()).collect()
}

/// Builds example `name` (a no-op when cargo already built it) and returns
/// its path, next to the test executable's profile directory.
pub fn example_binary(name: &str) -> std::path::PathBuf {
    // target/<profile>/deps/<test>-<hash> -> target/<profile>/examples/<name>
    let exe = std::env::current_exe().expect("test executable");
    let profile_dir = exe.parent().and_then(|d| d.parent()).expect("target/<profile>").to_path_buf();
    let mut cargo = std::process::Command::new(env!("CARGO"));
    cargo.args(["build", "--quiet", "--all-features", "--example", name]).current_dir(env!("CARGO_MANIFEST_DIR"));
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cargo.arg("--release");
    }
    java::run_bounded(cargo, Duration::from_secs(600), &format!("cargo build --example {name}"));
    let path = profile_dir.join("examples").join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(path.is_file(), "{} not built", path.display());
    path
}
