//! One member of a consumer group, for churn and mixed-group tests
//! (tests/consumer_churn.rs): it joins the group, appends every delivery
//! to a file (one JSON line, flushed per delivery) and leaves cleanly on
//! SIGTERM (offsets persisted, group left, `"stopped"` written, exit 0).
//! `kill -9` is the crash case. The Java twin in tests/interop/java takes
//! the same arguments and writes the same file.
//!
//! ```text
//! group_member --namesrv ADDR --group G --topic T --mode push|orderly|lite
//!              --member ID --out FILE [--allocate averagely|circle|hash]
//!              [--persist-ms N] [--heap-file FILE]
//! ```
//!
//! Delivery line: `{"member","topic","broker","queue","offset","msg_id",
//! "key","seq","reconsume","t_ms"}` (`key` = the KEYS property, `seq` = the
//! user property "seq"); lifecycle line: `{"member","event","t_ms"}` with
//! event `started`, `stopping` or `stopped`. The member id is also the
//! consumer's client id, so allocations are reproducible. Other settings
//! come from the `ROCKETMQ_CONSUMER_*` environment variables (e.g.
//! `ROCKETMQ_CONSUMER_REBALANCE_INTERVAL_MS`).
//!
//! With `--heap-file`, the live heap (bytes allocated and not yet freed,
//! counted by the global allocator) is sampled every second and the file
//! rewritten as `live_bytes peak_bytes` (peak of those samples): the soak
//! tells a leak (live heap grows) from the C allocator keeping freed pages
//! (RSS grows, live heap does not).
//!
//! ```text
//! eval "$(tests/broker/rocketmq.sh start)"
//! cargo run --example group_member -- --namesrv "$ROCKETMQ_NAMESRV_ADDR" \
//!     --group g --topic T --mode push --member m1 --out /tmp/m1.jsonl
//! ```

use std::alloc::System;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rocketmq_blocking::consumer::{
    AllocateStrategy, ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus, ConsumeFromWhere, ConsumeOrderlyContext,
    ConsumeOrderlyStatus, ConsumerConfig, LitePullConsumer, PushConsumer,
};
use rocketmq_blocking::{Error, MessageExt, NameServerClient};
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static HEAP: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

struct Args {
    namesrv: String,
    group: String,
    topic: String,
    mode: String,
    member: String,
    out: String,
    allocate: AllocateStrategy,
    persist_ms: Option<u64>,
    heap_file: Option<String>,
}

fn usage(why: &str) -> ! {
    eprintln!(
        "group_member: {why}\nusage: group_member --namesrv ADDR --group G --topic T --mode push|orderly|lite \
         --member ID --out FILE [--allocate averagely|circle|hash] [--persist-ms N] [--heap-file FILE]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut map = HashMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let Some(name) = flag.strip_prefix("--") else { usage(&format!("unexpected argument {flag:?}")) };
        let Some(value) = it.next() else { usage(&format!("{flag} needs a value")) };
        map.insert(name.to_string(), value);
    }
    let mut take = |name: &str| map.remove(name).unwrap_or_else(|| usage(&format!("--{name} is required")));
    let args = Args {
        namesrv: take("namesrv"),
        group: take("group"),
        topic: take("topic"),
        mode: take("mode"),
        member: take("member"),
        out: take("out"),
        allocate: match map.remove("allocate").as_deref() {
            None | Some("averagely") => AllocateStrategy::Averagely,
            Some("circle") => AllocateStrategy::AveragelyByCircle,
            Some("hash") => AllocateStrategy::consistent_hash(),
            Some(other) => usage(&format!("unknown --allocate {other:?}")),
        },
        persist_ms: map
            .remove("persist-ms")
            .map(|v| v.parse().unwrap_or_else(|_| usage(&format!("--persist-ms {v:?} is not a number")))),
        heap_file: map.remove("heap-file"),
    };
    if !["push", "orderly", "lite"].contains(&args.mode.as_str()) {
        usage(&format!("unknown --mode {:?}", args.mode));
    }
    if let Some(name) = map.keys().next() {
        usage(&format!("unknown option --{name}"));
    }
    args
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The delivery file: one JSON object per line, written and flushed at once.
struct Recorder {
    member: String,
    file: Mutex<File>,
}

impl Recorder {
    fn line(&self, value: serde_json::Value) {
        let mut line = value.to_string();
        line.push('\n');
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        // A lost line would read as a lost message: better to die loudly.
        file.write_all(line.as_bytes()).and_then(|()| file.flush()).expect("writing the delivery file");
    }

    fn event(&self, event: &str) {
        self.line(serde_json::json!({"member": self.member, "event": event, "t_ms": now_ms()}));
    }

    fn delivery(&self, broker: &str, m: &MessageExt) {
        let seq = m.property("seq").and_then(|s| s.parse::<i64>().ok());
        self.line(serde_json::json!({
            "member": self.member,
            "topic": m.topic,
            "broker": broker,
            "queue": m.queue_id,
            "offset": m.queue_offset,
            "msg_id": m.msg_id,
            "key": m.keys().first().copied().unwrap_or(""),
            "seq": seq,
            "reconsume": m.reconsume_times,
            "t_ms": now_ms(),
        }));
    }
}

fn main() -> Result<(), Error> {
    let args = parse_args();
    let term = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, Arc::clone(&term)).expect("installing the SIGTERM flag");
    let file = OpenOptions::new().create(true).append(true).open(&args.out).expect("opening the delivery file");
    let rec = Arc::new(Recorder { member: args.member.clone(), file: Mutex::new(file) });
    if let Some(path) = args.heap_file.clone() {
        let term = Arc::clone(&term);
        std::thread::Builder::new()
            .name("heap-sampler".into())
            .spawn(move || sample_heap(&path, &term))
            .expect("starting the heap sampler");
    }

    let mut builder = ConsumerConfig::builder().env_overrides()?;
    if let Some(ms) = args.persist_ms {
        builder = builder.persist_interval(Duration::from_millis(ms));
    }
    let config = builder
        .group(args.group.clone())
        .namesrv_addr(args.namesrv.clone())
        .client_id(args.member.clone())
        .consume_from_where(ConsumeFromWhere::FirstOffset)
        .allocate_strategy(args.allocate)
        .build()?;

    if args.mode == "lite" {
        return run_lite(config, &args, &rec, &term);
    }
    let consumer = PushConsumer::new(config)?;
    consumer.subscribe(&args.topic, "*")?;
    let r = Arc::clone(&rec);
    if args.mode == "orderly" {
        consumer.register_orderly(move |msgs: &[MessageExt], ctx: &mut ConsumeOrderlyContext| {
            msgs.iter().for_each(|m| r.delivery(&ctx.queue().broker_name, m));
            ConsumeOrderlyStatus::Success
        })?;
    } else {
        consumer.register_concurrently(move |msgs: &[MessageExt], ctx: &mut ConsumeConcurrentlyContext| {
            msgs.iter().for_each(|m| r.delivery(&ctx.queue().broker_name, m));
            ConsumeConcurrentlyStatus::ConsumeSuccess
        })?;
    }
    consumer.start()?;
    rec.event("started");
    while !term.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
    }
    rec.event("stopping");
    consumer.shutdown();
    rec.event("stopped");
    Ok(())
}

/// Every second: the live heap and the peak seen so far, to `path`
/// (written aside and renamed, so a reader never sees half a line).
fn sample_heap(path: &str, term: &AtomicBool) {
    let mut peak = 0;
    while !term.load(Ordering::SeqCst) {
        let s = HEAP.stats();
        // A reallocation already counts in both (grown: allocated, shrunk: deallocated).
        let live = s.bytes_allocated.saturating_sub(s.bytes_deallocated);
        peak = peak.max(live);
        let aside = format!("{path}.new");
        if std::fs::write(&aside, format!("{live} {peak}\n")).is_ok() {
            let _ = std::fs::rename(&aside, path);
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Lite pull: `poll` does not say which broker a message came from; the
/// broker is found from the message's store host (its listen port is
/// unique in the cluster), looked up in the topic route.
fn run_lite(config: ConsumerConfig, args: &Args, rec: &Recorder, term: &AtomicBool) -> Result<(), Error> {
    let ns = NameServerClient::new(&args.namesrv)?;
    let mut brokers: HashMap<u16, String> = HashMap::new();
    let refresh = |brokers: &mut HashMap<u16, String>| {
        if let Ok(route) = ns.topic_route(&args.topic) {
            for b in &route.broker_datas {
                for addr in b.broker_addrs.values() {
                    if let Some(port) = addr.rsplit(':').next().and_then(|p| p.parse().ok()) {
                        brokers.insert(port, b.broker_name.clone());
                    }
                }
            }
        }
    };
    refresh(&mut brokers);
    let consumer = LitePullConsumer::new(config)?;
    consumer.subscribe(&args.topic, "*")?;
    consumer.start()?;
    rec.event("started");
    while !term.load(Ordering::SeqCst) {
        for m in consumer.poll(Duration::from_millis(200))? {
            if !brokers.contains_key(&m.store_host.port()) {
                refresh(&mut brokers);
            }
            let broker = brokers.get(&m.store_host.port()).cloned().unwrap_or_else(|| m.store_host.to_string());
            rec.delivery(&broker, &m);
        }
    }
    rec.event("stopping");
    consumer.shutdown();
    rec.event("stopped");
    Ok(())
}
