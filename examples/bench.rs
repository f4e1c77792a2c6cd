//! The Rust third of `tests/interop/bench.sh`: the public API users call
//! (`Producer::send`, `PushConsumer`, `LitePullConsumer`), measured the
//! same way as the Java (`tests/interop/java`, `interop.Bench`) and Go
//! (`tests/interop/go`) peers, plus a floor: a raw socket sending
//! pre-encoded SEND_MESSAGE_V2 frames.
//!
//! ```text
//! eval "$(tests/broker/rocketmq.sh start)" && tests/interop/bench.sh
//! cargo run --release --example bench -- send      # on a topic of its own
//! ```
//!
//! Modes (first argument):
//!
//! * `send` (default): a `Producer` with its defaults; the first message
//!   is sent at once (its acknowledgement time since `BENCH_T0_US`, the
//!   script's clock when it launched this process, is the start-up
//!   figure), then `BENCH_WARMUP` untimed sends, then for every size of
//!   `BENCH_SIZES`: `BENCH_SEND_N` sends from 1 thread (latency
//!   percentiles) and `BENCH_SEND8_N` from `BENCH_THREADS` threads sharing
//!   the producer (throughput);
//! * `push` / `lite`: a `PushConsumer` (concurrent listener) / a
//!   `LitePullConsumer` (`poll` loop) of a new group, from the first
//!   offset, drains `BENCH_DRAIN_N` messages stored in `BENCH_TOPIC`
//!   (filled by `fill`): time from `start` until the last distinct one is
//!   handed to the listener (returned by `poll`);
//! * `raw`: the floor, one thread writing a pre-encoded SEND_MESSAGE_V2
//!   frame per queue (round robin over the topic's queues on every
//!   broker, like the producer) and reading each answer before the next,
//!   `BENCH_SEND_N` per size;
//! * `fill`: stores `BENCH_DRAIN_N` messages of the first size in
//!   `BENCH_TOPIC` with `Producer::send_batch` (untimed preparation) and
//!   waits until the consume queues hold them all;
//! * `create`: creates `BENCH_TOPIC` with `BENCH_QUEUES` queues per broker;
//! * `version`: prints the brokers' version (`rust broker version=5.5.0`).
//!
//! `ROCKETMQ_NAMESRV_ADDR` (127.0.0.1:19876). Output: one line per
//! measure, `rust <measure> name=value ...`; CPU seconds are those of the
//! whole process (every thread) during the measured part, from
//! `/proc/self/stat`; peak RSS is `VmHWM` from `/proc/self/status`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rocketmq_blocking::broker::{BrokerClient, ClientConfig};
use rocketmq_blocking::consumer::{ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus, ConsumeFromWhere};
use rocketmq_blocking::protocol::header::SendMessageRequestHeaderV2;
use rocketmq_blocking::protocol::message::{self, property};
use rocketmq_blocking::protocol::{decode_frame, request, RemotingCommand, ResponseCode};
use rocketmq_blocking::{
    ConsumerConfig, Error, LitePullConsumer, Message, MessageExt, MessageQueue, NameServerClient, Producer,
    ProducerConfig, PushConsumer, TopicConfig,
};

const CLUSTER: &str = "DefaultCluster";
/// Template topic and queue count every client sends in a SEND_MESSAGE_V2 header.
const AUTO_CREATE_TOPIC_KEY: &str = "TBW102";
const DEFAULT_TOPIC_QUEUE_NUMS: i32 = 4;
/// Java `DefaultLitePullConsumer`'s `pullBatchSize` (its push consumer's is 32, ours too).
const JAVA_LITE_PULL_BATCH: i32 = 10;

struct Settings {
    namesrv: String,
    topic: String,
    mode: String,
    send_n: usize,
    send8_n: usize,
    threads: usize,
    sizes: Vec<usize>,
    warmup: usize,
    queues: i32,
    drain_n: usize,
    drain_timeout: Duration,
    t0_us: Option<u128>,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().map_err(|_| format!("{name}={v:?} is not a number")),
        _ => Ok(default),
    }
}

fn settings() -> Result<Settings, String> {
    let sizes = std::env::var("BENCH_SIZES").unwrap_or_else(|_| "128,4096".into());
    let sizes = sizes
        .split(',')
        .map(|s| s.trim().parse::<usize>().map_err(|_| format!("BENCH_SIZES: {s:?} is not a number")))
        .collect::<Result<Vec<_>, _>>()?;
    let s = Settings {
        namesrv: std::env::var("ROCKETMQ_NAMESRV_ADDR").unwrap_or_else(|_| "127.0.0.1:19876".into()),
        topic: std::env::var("BENCH_TOPIC")
            .ok()
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| format!("bench_rust_{}_{}", std::process::id(), epoch_us() % 100_000_000)),
        mode: std::env::args().nth(1).unwrap_or_else(|| "send".into()),
        send_n: env_or("BENCH_SEND_N", 20_000)?,
        send8_n: env_or("BENCH_SEND8_N", 40_000)?,
        threads: env_or("BENCH_THREADS", 8)?,
        sizes,
        warmup: env_or("BENCH_WARMUP", 5_000)?,
        queues: env_or("BENCH_QUEUES", 4)?,
        drain_n: env_or("BENCH_DRAIN_N", 1_000_000)?,
        drain_timeout: Duration::from_secs(env_or("BENCH_DRAIN_TIMEOUT", 600)?),
        t0_us: std::env::var("BENCH_T0_US").ok().and_then(|v| v.trim().parse().ok()),
    };
    if s.threads == 0 || s.send_n == 0 || s.send8_n == 0 || s.queues <= 0 || s.sizes.is_empty() || s.drain_n == 0 {
        return Err("counts, threads, queues and sizes must be positive".into());
    }
    Ok(s)
}

fn epoch_us() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0)
}

/// User + system CPU seconds of the whole process so far.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces): state is the
    // 3rd field of the line, utime the 14th, stime the 15th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<f64> = rest.split_whitespace().map(|x| x.parse().unwrap_or(0.0)).collect();
    if f.len() < 13 {
        return 0.0;
    }
    (f[11] + f[12]) / 100.0 // USER_HZ is 100 on Linux
}

/// Peak resident set size (`VmHWM`) in KiB.
fn peak_rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn body(size: usize) -> Vec<u8> {
    (0..size).map(|i| b'a' + (i % 26) as u8).collect()
}

fn unique(prefix: &str) -> String {
    format!("{prefix}_{}_{}", std::process::id(), epoch_us() % 1_000_000_000)
}

/// Nearest-rank percentile (`p` in (0, 1]) of sorted values, in µs.
fn percentile_us(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx] as f64 / 1000.0
}

struct Phase {
    latencies_ns: Vec<u64>,
    elapsed: Duration,
    errors: usize,
}

impl Phase {
    fn print(mut self, client: &str, threads: usize, size: usize) {
        self.latencies_ns.sort_unstable();
        let lat = &self.latencies_ns;
        println!(
            "{client} send threads={threads} size={size} msgs={} msgs_per_s={:.0} p50_us={:.1} p99_us={:.1} p999_us={:.1} errors={}",
            lat.len(),
            lat.len() as f64 / self.elapsed.as_secs_f64(),
            percentile_us(lat, 0.50),
            percentile_us(lat, 0.99),
            percentile_us(lat, 0.999),
            self.errors
        );
    }
}

/// `n` sends of `body` from `threads` threads sharing `producer`.
fn send_phase(producer: &Producer, topic: &str, body: &[u8], n: usize, threads: usize) -> Phase {
    let start = Instant::now();
    let per_thread: Vec<(Vec<u64>, usize)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let count = n / threads + usize::from(t < n % threads);
                scope.spawn(move || {
                    let mut lat = Vec::with_capacity(count);
                    let mut errors = 0;
                    for _ in 0..count {
                        let msg = Message::new(topic, body.to_vec());
                        let t0 = Instant::now();
                        match producer.send(&msg) {
                            Ok(_) => lat.push(t0.elapsed().as_nanos() as u64),
                            Err(e) => {
                                errors += 1;
                                if errors <= 5 {
                                    eprintln!("send: {e}");
                                }
                            }
                        }
                    }
                    (lat, errors)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("send thread panicked")).collect()
    });
    let elapsed = start.elapsed();
    let mut phase = Phase { latencies_ns: Vec::with_capacity(n), elapsed, errors: 0 };
    for (lat, errors) in per_thread {
        phase.latencies_ns.extend(lat);
        phase.errors += errors;
    }
    phase
}

fn run_send(s: &Settings) -> Result<bool, String> {
    let config = ProducerConfig::builder()
        .group(unique("bench_rust_pg"))
        .namesrv_addr(s.namesrv.clone())
        .build()
        .map_err(|e| e.to_string())?;
    let producer = Producer::new(config).map_err(|e| e.to_string())?;
    producer.start().map_err(|e| e.to_string())?;
    let first =
        producer.send(&Message::new(s.topic.as_str(), body(s.sizes[0]))).map_err(|e| format!("first send: {e}"))?;
    let first_ack_ms = s.t0_us.map(|t0| epoch_us().saturating_sub(t0) as f64 / 1000.0).unwrap_or(-1.0);
    eprintln!("first send acknowledged: {}", first.msg_id);
    for &size in &s.sizes {
        send_phase(&producer, &s.topic, &body(size), s.warmup / s.sizes.len(), s.threads);
    }
    let cpu0 = cpu_seconds();
    let mut errors = 0;
    let mut msgs = 0;
    for &size in &s.sizes {
        let body = body(size);
        for (n, threads) in [(s.send_n, 1), (s.send8_n, s.threads)] {
            let phase = send_phase(&producer, &s.topic, &body, n, threads);
            errors += phase.errors;
            msgs += phase.latencies_ns.len();
            phase.print("rust", threads, size);
        }
    }
    let cpu = cpu_seconds() - cpu0;
    producer.shutdown();
    println!("rust proc first_ack_ms={first_ack_ms:.1} cpu_s={cpu:.2} msgs={msgs} rss_kb={}", peak_rss_kb());
    Ok(errors == 0)
}

/// Distinct (queue, offset) pairs seen by a drain.
#[derive(Default)]
struct Tally {
    seen: HashMap<(SocketAddr, i32), Vec<u64>>,
    distinct: usize,
    dups: usize,
    done_at: Option<Instant>,
}

struct Drain {
    want: usize,
    tally: Mutex<Tally>,
    done: Condvar,
}

impl Drain {
    /// Counts the messages (a queue is named by its broker's store host and its id).
    fn record(&self, msgs: &[MessageExt]) {
        let mut t = self.tally.lock().unwrap_or_else(|p| p.into_inner());
        for m in msgs {
            let offset = m.queue_offset;
            let bits = t.seen.entry((m.store_host, m.queue_id)).or_default();
            let (word, bit) = ((offset.max(0) as usize) / 64, offset.max(0) as u64 % 64);
            if bits.len() <= word {
                bits.resize(word + 1, 0);
            }
            if bits[word] & (1 << bit) != 0 {
                t.dups += 1;
            } else {
                bits[word] |= 1 << bit;
                t.distinct += 1;
                if t.distinct == self.want {
                    t.done_at = Some(Instant::now());
                    self.done.notify_all();
                }
            }
        }
    }

    /// Waits until every message came or `limit` passed; the time it took from `start`.
    fn wait(&self, start: Instant, limit: Duration) -> Option<Duration> {
        let mut t = self.tally.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(at) = t.done_at {
                return Some(at - start);
            }
            let left = (start + limit).checked_duration_since(Instant::now())?;
            t = self.done.wait_timeout(t, left).unwrap_or_else(|p| p.into_inner()).0;
        }
    }
}

fn consumer_config(s: &Settings, lite: bool) -> Result<ConsumerConfig, String> {
    let mut b = ConsumerConfig::builder()
        .group(unique(if lite { "bench_rust_lite_cg" } else { "bench_rust_push_cg" }))
        .namesrv_addr(s.namesrv.clone())
        .consume_from_where(ConsumeFromWhere::FirstOffset);
    if lite {
        b = b.pull_batch_size(JAVA_LITE_PULL_BATCH);
    }
    b.build().map_err(|e| e.to_string())
}

fn run_drain(s: &Settings, lite: bool) -> Result<bool, String> {
    let config = consumer_config(s, lite)?;
    let kind = if lite { "lite" } else { "push" };
    eprintln!(
        "rust {kind}: pull_threads={} consume_threads={} pull_batch_size={} consume_batch_size={} pull_threshold_for_queue={}",
        config.pull_threads(),
        config.consume_threads(),
        config.pull_batch_size(),
        config.consume_batch_size(),
        config.pull_threshold_for_queue()
    );
    let drain = Arc::new(Drain { want: s.drain_n, tally: Mutex::default(), done: Condvar::new() });
    let cpu0 = cpu_seconds();
    let start;
    let took = if lite {
        let consumer = LitePullConsumer::new(config).map_err(|e| e.to_string())?;
        consumer.subscribe(&s.topic, "*").map_err(|e| e.to_string())?;
        start = Instant::now();
        consumer.start().map_err(|e| e.to_string())?;
        while drain.tally.lock().unwrap_or_else(|p| p.into_inner()).done_at.is_none()
            && start.elapsed() < s.drain_timeout
        {
            let msgs = consumer.poll(Duration::from_secs(1)).map_err(|e| e.to_string())?;
            drain.record(&msgs);
        }
        let took = drain.wait(start, Duration::ZERO);
        consumer.shutdown();
        took
    } else {
        let consumer = PushConsumer::new(config).map_err(|e| e.to_string())?;
        consumer.subscribe(&s.topic, "*").map_err(|e| e.to_string())?;
        let d = Arc::clone(&drain);
        consumer
            .register_concurrently(move |msgs: &[MessageExt], _: &mut ConsumeConcurrentlyContext| {
                d.record(msgs);
                ConsumeConcurrentlyStatus::ConsumeSuccess
            })
            .map_err(|e| e.to_string())?;
        start = Instant::now();
        consumer.start().map_err(|e| e.to_string())?;
        let took = drain.wait(start, s.drain_timeout);
        consumer.shutdown();
        took
    };
    let cpu = cpu_seconds() - cpu0;
    let t = drain.tally.lock().unwrap_or_else(|p| p.into_inner());
    let secs = took.map(|d| d.as_secs_f64()).unwrap_or(f64::NAN);
    println!(
        "rust drain kind={kind} msgs={} distinct={} dups={} secs={secs:.3} msgs_per_s={:.0} cpu_s={cpu:.2} rss_kb={}",
        s.drain_n,
        t.distinct,
        t.dups,
        s.drain_n as f64 / secs,
        peak_rss_kb()
    );
    Ok(took.is_some() && t.distinct == s.drain_n)
}

/// Writable queues of the topic, per broker address.
fn queues_by_addr(ns: &NameServerClient, topic: &str) -> Result<Vec<(String, MessageQueue)>, String> {
    let route = ns.topic_route(topic).map_err(|e| format!("route of {topic}: {e}"))?;
    let mut out = Vec::new();
    for q in route.queue_datas.iter().filter(|q| q.is_writable()) {
        let addr = route
            .broker(&q.broker_name)
            .and_then(|b| b.master_addr())
            .ok_or_else(|| format!("broker {} has no master", q.broker_name))?;
        for i in 0..q.write_queue_nums {
            out.push((addr.to_string(), MessageQueue::new(topic, q.broker_name.clone(), i)));
        }
    }
    if out.is_empty() {
        return Err(format!("topic {topic} has no writable queue"));
    }
    Ok(out)
}

/// One pre-encoded SEND_MESSAGE_V2 frame per queue, written to a plain
/// socket, each answer read before the next write.
fn run_raw(s: &Settings) -> Result<bool, String> {
    let ns = NameServerClient::new(&s.namesrv).map_err(|e| e.to_string())?;
    let queues = queues_by_addr(&ns, &s.topic)?;
    let mut sockets: HashMap<String, TcpStream> = HashMap::new();
    for (addr, _) in &queues {
        if !sockets.contains_key(addr) {
            let sock = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
            sock.set_nodelay(true).map_err(|e| e.to_string())?;
            sock.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
            sockets.insert(addr.clone(), sock);
        }
    }
    let mut errors = 0;
    for &size in &s.sizes {
        let mut msg = Message::new(s.topic.as_str(), body(size));
        msg.set_property(property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX, message::new_unique_id());
        msg.set_property(property::WAIT_STORE_MSG_OK, "true");
        let frames: Vec<(&str, Vec<u8>)> = queues
            .iter()
            .map(|(addr, q)| {
                let header = SendMessageRequestHeaderV2 {
                    producer_group: "bench_raw_pg".into(),
                    topic: s.topic.clone(),
                    default_topic: AUTO_CREATE_TOPIC_KEY.into(),
                    default_topic_queue_nums: DEFAULT_TOPIC_QUEUE_NUMS,
                    queue_id: q.queue_id,
                    sys_flag: 0,
                    born_timestamp: epoch_us() as i64 / 1000,
                    flag: 0,
                    properties: Some(message::encode_properties(msg.properties())),
                    reconsume_times: Some(0),
                    unit_mode: Some(false),
                    max_reconsume_times: None,
                    batch: Some(false),
                    broker_name: Some(q.broker_name.clone()),
                };
                let cmd = RemotingCommand::request(request::SEND_MESSAGE_V2)
                    .with_ext_fields(header.to_ext_fields())
                    .with_body(msg.body().to_vec());
                (addr.as_str(), cmd.encode())
            })
            .collect();
        let mut buf = Vec::with_capacity(4096);
        let mut one = |i: usize| -> Result<u64, String> {
            let (addr, frame) = &frames[i % frames.len()];
            let sock = sockets.get_mut(*addr).ok_or("no socket")?;
            let t0 = Instant::now();
            sock.write_all(frame).map_err(|e| format!("write: {e}"))?;
            let mut len = [0u8; 4];
            sock.read_exact(&mut len).map_err(|e| format!("read: {e}"))?;
            let n = u32::from_be_bytes(len) as usize;
            buf.clear();
            buf.extend_from_slice(&len);
            buf.resize(4 + n, 0);
            sock.read_exact(&mut buf[4..]).map_err(|e| format!("read: {e}"))?;
            let took = t0.elapsed().as_nanos() as u64;
            let (resp, _) = decode_frame(&buf, 16 * 1024 * 1024).map_err(|e| e.to_string())?.ok_or("short frame")?;
            if resp.response_code() != ResponseCode::Success {
                return Err(format!("send answered {:?} {:?}", resp.response_code(), resp.remark));
            }
            Ok(took)
        };
        for i in 0..s.warmup / s.sizes.len() {
            one(i)?;
        }
        let start = Instant::now();
        let mut lat = Vec::with_capacity(s.send_n);
        for i in 0..s.send_n {
            match one(i) {
                Ok(t) => lat.push(t),
                Err(e) => {
                    errors += 1;
                    if errors <= 5 {
                        eprintln!("raw send: {e}");
                    }
                }
            }
        }
        Phase { latencies_ns: lat, elapsed: start.elapsed(), errors }.print("raw", 1, size);
    }
    Ok(errors == 0)
}

/// Stores `drain_n` messages of the first size with batch sends from
/// `threads` threads, then waits until the consume queues hold them.
fn run_fill(s: &Settings) -> Result<bool, String> {
    const BATCH: usize = 200;
    let config = ProducerConfig::builder()
        .group(unique("bench_fill_pg"))
        .namesrv_addr(s.namesrv.clone())
        .build()
        .map_err(|e| e.to_string())?;
    let producer = Producer::new(config).map_err(|e| e.to_string())?;
    producer.start().map_err(|e| e.to_string())?;
    let body = body(s.sizes[0]);
    let batches = s.drain_n.div_ceil(BATCH);
    let next = AtomicUsize::new(0);
    let start = Instant::now();
    let failed: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..s.threads.min(4))
            .map(|_| {
                scope.spawn(|| {
                    let mut failed = 0;
                    loop {
                        let b = next.fetch_add(1, Ordering::Relaxed);
                        if b >= batches {
                            return failed;
                        }
                        let n = BATCH.min(s.drain_n - b * BATCH);
                        let msgs: Vec<Message> = (0..n).map(|_| Message::new(s.topic.as_str(), body.clone())).collect();
                        if let Err(e) = producer.send_batch(&msgs) {
                            failed += 1;
                            eprintln!("batch send: {e}");
                        }
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("fill thread panicked")).sum()
    });
    producer.shutdown();
    if failed > 0 {
        return Err(format!("{failed} batch sends failed"));
    }
    // The consume queues are built from the commit log asynchronously.
    let ns = NameServerClient::new(&s.namesrv).map_err(|e| e.to_string())?;
    let queues = queues_by_addr(&ns, &s.topic)?;
    let mut clients: HashMap<String, BrokerClient> = HashMap::new();
    for (addr, _) in &queues {
        if !clients.contains_key(addr) {
            let c = BrokerClient::connect(addr, &ClientConfig::default()).map_err(|e| e.to_string())?;
            clients.insert(addr.clone(), c);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut stored = 0i64;
        for (addr, q) in &queues {
            stored += clients[addr].max_offset(q).map_err(|e| e.to_string())?
                - clients[addr].min_offset(q).map_err(|e| e.to_string())?;
        }
        if stored as usize == s.drain_n {
            break;
        }
        if stored as usize > s.drain_n || Instant::now() > deadline {
            return Err(format!("topic {} holds {stored} messages, expected {}", s.topic, s.drain_n));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("rust fill msgs={} size={} secs={:.1}", s.drain_n, s.sizes[0], start.elapsed().as_secs_f64());
    Ok(true)
}

/// Creates the topic on every master of the cluster unless its route
/// already lists two brokers, then waits (bounded) for that route.
fn run_create(s: &Settings) -> Result<bool, String> {
    let ns = NameServerClient::new(&s.namesrv).map_err(|e| e.to_string())?;
    let ready = |ns: &NameServerClient| ns.topic_route(&s.topic).ok().filter(|r| r.queue_datas.len() >= 2);
    if ready(&ns).is_none() {
        ns.create_topic(CLUSTER, &TopicConfig::new(s.topic.as_str()).queues(s.queues)).map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while ready(&ns).is_none() {
            if Instant::now() > deadline {
                return Err(format!("no route for {} after 30 s", s.topic));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    eprintln!("topic {} ready", s.topic);
    Ok(true)
}

/// Prints the version a broker reports (`V5_5_0` becomes `5.5.0`).
fn run_version(s: &Settings) -> Result<bool, String> {
    let ns = NameServerClient::new(&s.namesrv).map_err(|e| e.to_string())?;
    let info = ns.cluster_info().map_err(|e| format!("cluster info from {}: {e}", s.namesrv))?;
    let addr = info.broker_addr_table.values().find_map(|b| b.master_addr()).ok_or("no broker registered")?;
    let client = BrokerClient::connect(addr, &ClientConfig::default()).map_err(|e| e.to_string())?;
    let resp = client
        .invoke(RemotingCommand::request(request::GET_BROKER_RUNTIME_INFO), Duration::from_secs(5))
        .map_err(|e: Error| e.to_string())?;
    if resp.response_code() != ResponseCode::Success {
        return Err(format!("broker runtime info: {:?} {:?}", resp.response_code(), resp.remark));
    }
    let v: serde_json::Value = serde_json::from_slice(&resp.body).map_err(|e| e.to_string())?;
    let desc = v["table"]["brokerVersionDesc"].as_str().ok_or("no brokerVersionDesc in the runtime info")?;
    println!("rust broker version={}", desc.trim_start_matches('V').replace('_', "."));
    Ok(true)
}

fn main() -> ExitCode {
    let result = settings().and_then(|s| match s.mode.as_str() {
        "send" => run_send(&s),
        "push" => run_drain(&s, false),
        "lite" => run_drain(&s, true),
        "raw" => run_raw(&s),
        "fill" => run_fill(&s),
        "create" => run_create(&s),
        "version" => run_version(&s),
        other => Err(format!("unknown mode {other:?} (send, push, lite, raw, fill, create, version)")),
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}
