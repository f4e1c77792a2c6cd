//! Mixed consumer groups (issue 17 §2): two member processes of ours
//! (examples/group_member.rs) and two of the official Java client's
//! DefaultMQPushConsumer (tests/interop/java, interop.GroupMember) in one
//! group, against the real 2-broker cluster.
//!
//! - Owners: with every member alive, probe rounds send one message to each
//!   queue; each round's message of a queue must be delivered by exactly one
//!   member, the one the allocation strategy names (averagely, by circle,
//!   consistent hash), for two rounds in a row.
//! - Churn (averagely, and orderly): while keyed messages flow, members of
//!   both clients are killed (-9) or stopped (SIGTERM, exit 0) and started
//!   again; every acknowledged message is then delivered (0 lost).
//! - Orderly: a queue's deliveries never alternate between two members at
//!   the same time (at most one hand-over per membership change).
//!
//! `ROCKETMQ_MIXED_LONG=1` runs the churn for every strategy with more
//! messages; CI runs the short form.
mod common;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use common::members::{member_binary, read_lines, wait_child, Line};
use common::*;
use rocketmq_blocking::consumer::AllocateStrategy;
use rocketmq_blocking::producer::{Producer, SelectByHash};
use rocketmq_blocking::{Message, MessageQueue, SendStatus};

const QUEUES_PER_BROKER: i32 = 4;
const KEYS: usize = 16;

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

fn long() -> bool {
    std::env::var_os("ROCKETMQ_MIXED_LONG").is_some()
}

fn java_cp() -> &'static str {
    static CP: OnceLock<String> = OnceLock::new();
    CP.get_or_init(|| java::build_peer("interop-java", &java::broker_version(&client("broker-a")), &[]))
}

/// One member process of either client; killed (-9) on drop.
struct Proc {
    id: String,
    child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

struct Group {
    dir: PathBuf,
    group: String,
    topic: String,
    mode: &'static str,
    allocate: &'static str,
    ids: Vec<String>,
}

impl Group {
    fn spawn(&self, id: &str) -> Proc {
        let out = self.dir.join(format!("{id}.jsonl"));
        let log = std::fs::File::create(self.dir.join(format!("{id}.log"))).unwrap();
        let mut cmd = if id.contains("java") {
            let mut c = Command::new("java");
            c.arg("-cp")
                .arg(java_cp())
                .arg(format!("-Drocketmq.log.root={}", self.dir.join("java-logs").display()))
                .arg("interop.GroupMember");
            c
        } else {
            let mut c = Command::new(member_binary());
            c.env("ROCKETMQ_CONSUMER_REBALANCE_INTERVAL_MS", "5000");
            c
        };
        let ns = namesrv_addr();
        cmd.args(["--namesrv", &ns, "--group", &self.group, "--topic", &self.topic, "--mode", self.mode])
            .args(["--member", id, "--allocate", self.allocate, "--persist-ms", "1000", "--out"])
            .arg(&out)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        Proc { id: id.to_string(), child: cmd.spawn().expect("spawn a group member") }
    }

    fn lines(&self) -> Vec<Line> {
        self.ids.iter().flat_map(|id| read_lines(&self.dir.join(format!("{id}.jsonl")))).collect()
    }

    /// Waits until the member wrote "started".
    fn started(&self, id: &str) {
        let path = self.dir.join(format!("{id}.jsonl"));
        wait_for(Duration::from_secs(90), &format!("{id} started"), || {
            let n = read_lines(&path).iter().filter(|l| l.event.as_deref() == Some("started")).count();
            (n > 0).then_some(())
        });
    }
}

/// SIGTERM: the member must leave cleanly (exit 0, "stopped" written).
fn terminate(mut p: Proc, dir: &Path) {
    let _ = Command::new("kill").args(["-TERM", &p.child.id().to_string()]).status();
    let status = wait_child(&mut p.child, Duration::from_secs(60)).expect("member exits within 60 s of SIGTERM");
    assert_eq!(status.code(), Some(0), "{} exit status after SIGTERM", p.id);
    let lines = read_lines(&dir.join(format!("{}.jsonl", p.id)));
    assert_eq!(lines.last().and_then(|l| l.event.clone()).as_deref(), Some("stopped"), "{} wrote stopped", p.id);
}

fn producer() -> Producer {
    let p = Producer::new(producer_config(&unique("mixed_pg")).build().unwrap()).unwrap();
    p.start().unwrap();
    p
}

/// Probe rounds until each queue's probe is delivered by exactly the
/// member the strategy names, twice in a row; returns the rounds taken.
fn owners_agree(g: &Group, producer: &Producer, strategy: AllocateStrategy) -> usize {
    let queues = topic_queues(&g.topic);
    let mut ids = g.ids.clone();
    ids.sort();
    let expected: BTreeMap<MessageQueue, String> = ids
        .iter()
        .flat_map(|id| strategy.allocate(id, &queues, &ids).into_iter().map(move |q| (q, id.clone())))
        .collect();
    assert_eq!(expected.len(), queues.len(), "the strategy covers every queue once");
    let deadline = Instant::now() + Duration::from_secs(150);
    let (mut agreeing, mut round) = (0, 0);
    let mut last = BTreeMap::new();
    while agreeing < 2 {
        assert!(Instant::now() < deadline, "owners never matched {expected:?}; last round {last:?}");
        round += 1;
        let key = format!("probe-{}-{round}", g.allocate);
        for q in &queues {
            let msg = Message::new(&g.topic, "probe").with_keys([key.as_str()]);
            assert_eq!(producer.send_to_queue(&msg, q).unwrap().status, SendStatus::SendOk);
        }
        let owners = wait_for(Duration::from_secs(60), "the probes delivered", || {
            let mut owners: BTreeMap<MessageQueue, BTreeSet<String>> = BTreeMap::new();
            for l in g.lines().into_iter().filter(|l| l.key == key) {
                owners.entry(MessageQueue::new(&g.topic, &l.broker, l.queue)).or_default().insert(l.member);
            }
            (owners.len() == queues.len()).then_some(owners)
        });
        let single: BTreeMap<MessageQueue, String> = owners
            .iter()
            .filter(|(_, m)| m.len() == 1)
            .map(|(q, m)| (q.clone(), m.iter().next().unwrap().clone()))
            .collect();
        agreeing = if single == expected { agreeing + 1 } else { 0 };
        last = owners;
    }
    round
}

/// Keyed messages (per-key seq, ordered by key) while members churn; every
/// acknowledged one must be delivered. Returns how many were acknowledged.
fn churn(g: &Group, procs: &mut Vec<Proc>, producer: &Producer, messages: usize, events: &[(&str, bool)]) -> usize {
    let started = Instant::now();
    let mut acked: HashSet<(String, i64)> = HashSet::new();
    let mut seqs = [0i64; KEYS];
    let every = messages / (events.len() * 2 + 1);
    let mut next_event = 0;
    for n in 0..messages {
        let k = n % KEYS;
        seqs[k] += 1;
        let key = format!("k{k}");
        let msg = Message::new(&g.topic, format!("{key}-{}", seqs[k]))
            .with_keys([key.as_str()])
            .with_property("seq", seqs[k].to_string());
        if let Ok(r) = producer.send_with_selector(&msg, &SelectByHash, key.as_str()) {
            if r.status == SendStatus::SendOk {
                acked.insert((key, seqs[k]));
            }
        }
        std::thread::sleep(Duration::from_millis(4));
        // Half-way between events: the stopped member comes back.
        if n > 0 && n % every == 0 && next_event < events.len() * 2 {
            let (id, kill) = events[next_event / 2];
            if next_event % 2 == 0 {
                let i = procs.iter().position(|p| p.id == id).unwrap();
                let p = procs.remove(i);
                if kill {
                    drop(p);
                } else {
                    terminate(p, &g.dir);
                }
            } else {
                procs.push(g.spawn(id));
                g.started(id);
            }
            next_event += 1;
        }
    }
    assert_eq!(next_event, events.len() * 2, "every event happened");
    let missing = wait_for(Duration::from_secs(180), "every acknowledged message delivered", || {
        let got: HashSet<(String, i64)> = g.lines().into_iter().filter_map(|l| Some((l.key, l.seq?))).collect();
        let missing = acked.iter().filter(|a| !got.contains(a)).count();
        (missing == 0).then_some(missing)
    });
    eprintln!(
        "{} {}: {} acknowledged of {messages}, {} events, lost {missing}, in {:?}",
        g.mode,
        g.allocate,
        acked.len(),
        events.len(),
        started.elapsed()
    );
    assert!(acked.len() * 10 >= messages * 9, "most sends acknowledged: {}", acked.len());
    acked.len()
}

/// Orderly: per queue, deliveries in time order change member at most
/// `changes` times (a hand-over per membership change), never interleave.
fn no_shared_orderly_queue(g: &Group, changes: usize) {
    let mut by_queue: BTreeMap<(String, i32), Vec<Line>> = BTreeMap::new();
    for l in g.lines().into_iter().filter(|l| l.event.is_none()) {
        by_queue.entry((l.broker.clone(), l.queue)).or_default().push(l);
    }
    for (q, mut v) in by_queue {
        v.sort_by_key(|l| l.t_ms);
        let switches = v.windows(2).filter(|w| w[0].member != w[1].member).count();
        assert!(switches <= changes, "queue {q:?} changed member {switches} times (membership changes {changes})");
    }
}

fn mixed(allocate: &'static str, mode: &'static str, churn_too: bool) {
    let _serial = serial();
    let strategy = match allocate {
        "averagely" => AllocateStrategy::Averagely,
        "circle" => AllocateStrategy::AveragelyByCircle,
        _ => AllocateStrategy::consistent_hash(),
    };
    let began = Instant::now();
    let topic = unique("Mixed");
    create_topic(&topic, QUEUES_PER_BROKER);
    let group = unique("mixed_g");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("consumer_mixed").join(&group);
    std::fs::create_dir_all(&dir).unwrap();
    let ids: Vec<String> =
        ["127.0.0.1@rust-1", "127.0.0.1@rust-2", "127.0.0.1@java-1", "127.0.0.1@java-2"].map(String::from).to_vec();
    let g = Group { dir, group, topic, mode, allocate, ids };
    java_cp();
    let mut procs: Vec<Proc> = g.ids.iter().map(|id| g.spawn(id)).collect();
    for id in &g.ids {
        g.started(id);
    }
    let producer = producer();
    let rounds = owners_agree(&g, &producer, strategy);
    eprintln!("{mode} {allocate}: owners as the strategy says after {rounds} probe rounds ({:?})", began.elapsed());
    if churn_too || long() {
        // Orderly: SIGTERM only (a killed member's queue locks hold until the broker expires them, 60 s).
        let events: Vec<(&str, bool)> = if mode == "orderly" {
            vec![("127.0.0.1@java-1", false), ("127.0.0.1@rust-1", false)]
        } else {
            vec![
                ("127.0.0.1@rust-1", true),
                ("127.0.0.1@java-1", false),
                ("127.0.0.1@java-2", true),
                ("127.0.0.1@rust-2", false),
            ]
        };
        let messages = if long() { 20_000 } else { 2_000 };
        churn(&g, &mut procs, &producer, messages, &events);
        if mode == "orderly" {
            no_shared_orderly_queue(&g, 2 * events.len() + 2);
        }
        let rounds = owners_agree(&g, &producer, strategy);
        eprintln!("{mode} {allocate}: owners as the strategy says again after {rounds} probe rounds");
    }
    producer.shutdown();
    for p in procs {
        terminate(p, &g.dir);
    }
    eprintln!("{mode} {allocate}: {:?} in all", began.elapsed());
}

#[test]
fn mixed_group_averagely_owns_each_queue_once_and_loses_nothing_under_churn() {
    mixed("averagely", "push", true);
}

#[test]
fn mixed_group_by_circle_owns_each_queue_once() {
    mixed("circle", "push", false);
}

#[test]
fn mixed_group_consistent_hash_owns_each_queue_once() {
    mixed("hash", "push", false);
}

#[test]
fn mixed_orderly_group_never_shares_a_queue_and_loses_nothing() {
    mixed("averagely", "orderly", true);
}
