//! Send and pull throughput of `BrokerClient` against real brokers; the
//! Rust third of `tests/interop/bench.sh`, which runs the same measures with
//! the official Java client and the Go client on the same brokers.
//!
//! ```text
//! eval "$(tests/broker/rocketmq.sh start)" && cargo run --release --example bench
//! cargo run --release --example bench -- --n 50000 --size 1024 --threads 8
//! ```
//!
//! * send: `n` messages of `size` bytes, `BrokerClient::send` (sync, no
//!   retry) from `threads` threads sharing one client per broker, round
//!   robin over the writable queues of the topic on both brokers;
//! * pull: all of them read back with `BrokerClient::pull` (32 per pull)
//!   from `threads` threads, each taking whole queues.
//!
//! `warmup` messages are sent and pulled first, untimed, to the same topic.
//! The topic is created on every broker of the cluster unless it exists.
//!
//! Settings: `--n`, `--size`, `--threads`, `--warmup`, `--queues` (per
//! broker, for a topic this creates), `--topic`, or the environment
//! variables `BENCH_N` (20000), `BENCH_SIZE` (128), `BENCH_THREADS` (4),
//! `BENCH_WARMUP` (2000), `BENCH_QUEUES` (4), `BENCH_TOPIC` (a new name);
//! `ROCKETMQ_NAMESRV_ADDR` (127.0.0.1:19876). Two more modes for the
//! script: `--create-only` creates the topic and exits; `--broker-version`
//! prints the brokers' version (`rust broker version=5.3.3`) and exits.
//!
//! Output, one line per measure:
//!
//! ```text
//! rust send msgs=20000 size=128 threads=4 msgs_per_s=... p50_us=... p99_us=... errors=0
//! rust pull msgs=20000 size=128 threads=4 msgs_per_s=...
//! ```

use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rocketmq_blocking::broker::{BrokerClient, ClientConfig, PullRequest, PullStatus};
use rocketmq_blocking::protocol::{request, RemotingCommand, ResponseCode};
use rocketmq_blocking::{Error, Message, MessageQueue, NameServerClient, TopicConfig};

const CLUSTER: &str = "DefaultCluster";
const PRODUCER_GROUP: &str = "bench_rust_pg";
const CONSUMER_GROUP: &str = "bench_rust_cg";

struct Settings {
    namesrv: String,
    topic: String,
    n: usize,
    size: usize,
    threads: usize,
    warmup: usize,
    queues: i32,
    create_only: bool,
    broker_version: bool,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().map_err(|_| format!("{name}={v:?} is not a number")),
        _ => Ok(default),
    }
}

fn settings() -> Result<Settings, String> {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    let mut s = Settings {
        namesrv: std::env::var("ROCKETMQ_NAMESRV_ADDR").unwrap_or_else(|_| "127.0.0.1:19876".into()),
        topic: std::env::var("BENCH_TOPIC")
            .ok()
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| format!("bench_rust_{}_{}", std::process::id(), ms % 100_000_000)),
        n: env_or("BENCH_N", 20_000)?,
        size: env_or("BENCH_SIZE", 128)?,
        threads: env_or("BENCH_THREADS", 4)?,
        warmup: env_or("BENCH_WARMUP", 2_000)?,
        queues: env_or("BENCH_QUEUES", 4)?,
        create_only: false,
        broker_version: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        let number = |name: &str, v: String| v.parse::<usize>().map_err(|_| format!("{name} {v:?} is not a number"));
        match flag.as_str() {
            "--n" => s.n = number("--n", value("--n")?)?,
            "--size" => s.size = number("--size", value("--size")?)?,
            "--threads" => s.threads = number("--threads", value("--threads")?)?,
            "--warmup" => s.warmup = number("--warmup", value("--warmup")?)?,
            "--queues" => s.queues = number("--queues", value("--queues")?)? as i32,
            "--topic" => s.topic = value("--topic")?,
            "--create-only" => s.create_only = true,
            "--broker-version" => s.broker_version = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if s.threads == 0 || s.n == 0 || s.queues <= 0 {
        return Err("n, threads and queues must be positive".into());
    }
    Ok(s)
}

/// Creates the topic on every master of the cluster unless its route
/// already lists two brokers, then waits (bounded) for that route.
fn ensure_topic(ns: &NameServerClient, topic: &str, queues: i32) -> Result<Vec<MessageQueue>, Error> {
    let ready = |ns: &NameServerClient| ns.topic_route(topic).ok().filter(|r| r.queue_datas.len() >= 2);
    let route = match ready(ns) {
        Some(r) => r,
        None => {
            ns.create_topic(CLUSTER, &TopicConfig::new(topic).queues(queues))?;
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Some(r) = ready(ns) {
                    break r;
                }
                if Instant::now() > deadline {
                    return Err(Error::TopicNotFound { topic: topic.into(), remark: "no route after 30 s".into() });
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    };
    let mut queues: Vec<MessageQueue> = route
        .queue_datas
        .iter()
        .filter(|q| q.is_writable())
        .flat_map(|q| (0..q.write_queue_nums).map(move |i| MessageQueue::new(topic, q.broker_name.clone(), i)))
        .collect();
    queues.sort();
    Ok(queues)
}

/// The version a broker reports (`V5_3_3` becomes `5.3.3`).
fn broker_version(client: &BrokerClient) -> Result<String, String> {
    let resp = client
        .invoke(RemotingCommand::request(request::GET_BROKER_RUNTIME_INFO), Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    if resp.response_code() != ResponseCode::Success {
        return Err(format!("broker runtime info: {:?} {:?}", resp.response_code(), resp.remark));
    }
    let v: serde_json::Value = serde_json::from_slice(&resp.body).map_err(|e| e.to_string())?;
    let desc = v["table"]["brokerVersionDesc"].as_str().ok_or("no brokerVersionDesc in the runtime info")?;
    Ok(desc.trim_start_matches('V').replace('_', "."))
}

/// First and last queue offset written to each queue (by index).
type Ranges = BTreeMap<usize, (i64, i64)>;

struct Sent {
    ranges: Ranges,
    latencies_ns: Vec<u64>,
    elapsed: Duration,
    errors: usize,
}

fn send_all(
    clients: &HashMap<String, Arc<BrokerClient>>,
    queues: &[MessageQueue],
    topic: &str,
    body: &[u8],
    n: usize,
    threads: usize,
) -> Sent {
    let next = AtomicUsize::new(0);
    let start = Instant::now();
    let per_thread: Vec<(Ranges, Vec<u64>, usize)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let count = n / threads + usize::from(t < n % threads);
                let next = &next;
                scope.spawn(move || {
                    let mut ranges = Ranges::new();
                    let mut lat = Vec::with_capacity(count);
                    let mut errors = 0;
                    for _ in 0..count {
                        let i = next.fetch_add(1, Ordering::Relaxed) % queues.len();
                        let queue = &queues[i];
                        let client = &clients[&queue.broker_name];
                        let msg = Message::new(topic, body.to_vec());
                        let t0 = Instant::now();
                        match client.send(PRODUCER_GROUP, queue, &msg) {
                            Ok(r) => {
                                lat.push(t0.elapsed().as_nanos() as u64);
                                let e = ranges.entry(i).or_insert((r.queue_offset, r.queue_offset));
                                e.0 = e.0.min(r.queue_offset);
                                e.1 = e.1.max(r.queue_offset);
                            }
                            Err(e) => {
                                errors += 1;
                                if errors <= 5 {
                                    eprintln!("send to {queue:?}: {e}");
                                }
                            }
                        }
                    }
                    (ranges, lat, errors)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("send thread panicked")).collect()
    });
    let elapsed = start.elapsed();
    let mut sent = Sent { ranges: Ranges::new(), latencies_ns: Vec::with_capacity(n), elapsed, errors: 0 };
    for (ranges, lat, errors) in per_thread {
        for (i, (lo, hi)) in ranges {
            let e = sent.ranges.entry(i).or_insert((lo, hi));
            e.0 = e.0.min(lo);
            e.1 = e.1.max(hi);
        }
        sent.latencies_ns.extend(lat);
        sent.errors += errors;
    }
    sent
}

/// Pulls `[first, last]` of every queue; threads take whole queues.
/// Returns the number of messages read.
fn pull_all(
    clients: &HashMap<String, Arc<BrokerClient>>,
    queues: &[MessageQueue],
    ranges: &Ranges,
    threads: usize,
) -> Result<usize, String> {
    let jobs = Mutex::new(ranges.iter().map(|(&i, &r)| (i, r)).collect::<Vec<_>>());
    let deadline = Instant::now() + Duration::from_secs(120);
    let results: Vec<Result<usize, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let jobs = &jobs;
                scope.spawn(move || {
                    let mut count = 0;
                    loop {
                        let Some((i, (first, last))) = jobs.lock().unwrap().pop() else { return Ok(count) };
                        let queue = &queues[i];
                        let client = &clients[&queue.broker_name];
                        let mut offset = first;
                        while offset <= last {
                            if Instant::now() > deadline {
                                return Err(format!("pull of {queue:?} took over 120 s"));
                            }
                            let r = client
                                .pull(&PullRequest::new(CONSUMER_GROUP, queue.clone(), offset))
                                .map_err(|e| format!("pull {queue:?} at {offset}: {e}"))?;
                            match r.status {
                                PullStatus::Found => {
                                    count += r.messages.iter().filter(|m| m.queue_offset <= last).count();
                                    offset = r.next_begin_offset;
                                }
                                PullStatus::NoNewMsg | PullStatus::NoMatchedMsg => {
                                    std::thread::sleep(Duration::from_millis(1))
                                }
                                PullStatus::OffsetIllegal => {
                                    return Err(format!("offset {offset} illegal on {queue:?}: {r:?}"))
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("pull thread panicked")).collect()
    });
    results.into_iter().sum()
}

/// Nearest-rank percentile (`p` in (0, 1]) of sorted values.
fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let idx = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx]
}

fn run(s: &Settings) -> Result<bool, String> {
    let ns = NameServerClient::new(&s.namesrv).map_err(|e| e.to_string())?;
    let info = ns.cluster_info().map_err(|e| format!("cluster info from {}: {e}", s.namesrv))?;
    let config = ClientConfig::builder().request_timeout(Duration::from_secs(10)).build().map_err(|e| e.to_string())?;
    let mut clients = HashMap::new();
    for (name, broker) in &info.broker_addr_table {
        let addr = broker.master_addr().ok_or_else(|| format!("broker {name} has no master"))?;
        let client = BrokerClient::connect(addr, &config).map_err(|e| format!("connect to {name} at {addr}: {e}"))?;
        clients.insert(name.clone(), Arc::new(client));
    }
    if s.broker_version {
        let client = clients.values().next().ok_or("no broker registered")?;
        println!("rust broker version={}", broker_version(client)?);
        return Ok(true);
    }
    let queues = ensure_topic(&ns, &s.topic, s.queues).map_err(|e| format!("topic {}: {e}", s.topic))?;
    if s.create_only {
        eprintln!("topic {} has {} writable queues", s.topic, queues.len());
        return Ok(true);
    }
    if let Some(q) = queues.iter().find(|q| !clients.contains_key(&q.broker_name)) {
        return Err(format!("queue {q:?} is on a broker the cluster info does not list"));
    }
    let body: Vec<u8> = (0..s.size).map(|i| b'a' + (i % 26) as u8).collect();

    let warm = send_all(&clients, &queues, &s.topic, &body, s.warmup, s.threads);
    let mut sent = send_all(&clients, &queues, &s.topic, &body, s.n, s.threads);
    sent.latencies_ns.sort_unstable();
    let lat = &sent.latencies_ns;
    println!(
        "rust send msgs={} size={} threads={} msgs_per_s={} p50_us={} p99_us={} errors={}",
        s.n,
        s.size,
        s.threads,
        (lat.len() as f64 / sent.elapsed.as_secs_f64()).round() as u64,
        percentile(lat, 0.50) / 1000,
        percentile(lat, 0.99) / 1000,
        sent.errors
    );

    // The consume queues are built from the commit log asynchronously.
    let deadline = Instant::now() + Duration::from_secs(60);
    for (&i, &(_, last)) in &sent.ranges {
        let queue = &queues[i];
        while clients[&queue.broker_name].max_offset(queue).map_err(|e| e.to_string())? <= last {
            if Instant::now() > deadline {
                return Err(format!("consume queue of {queue:?} not built within 60 s"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    pull_all(&clients, &queues, &warm.ranges, s.threads)?;
    let t0 = Instant::now();
    let pulled = pull_all(&clients, &queues, &sent.ranges, s.threads)?;
    let dt = t0.elapsed();
    println!(
        "rust pull msgs={} size={} threads={} msgs_per_s={}",
        pulled,
        s.size,
        s.threads,
        (pulled as f64 / dt.as_secs_f64()).round() as u64
    );
    Ok(sent.errors == 0 && pulled == lat.len())
}

fn main() -> ExitCode {
    let result = settings().and_then(|s| run(&s));
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}
