//! Queue allocation strategies: which queues of a topic one consumer of a
//! group takes. Pure functions, identical to the Java client's results
//! (`AllocateMessageQueueAveragely`, `...AveragelyByCircle`,
//! `...ConsistentHash` with its MD5 ring).
//!
//! Every member of a group runs the same function on the same sorted lists
//! (all queues, all consumer ids), so together they cover each queue once.

use std::collections::BTreeMap;

use crate::protocol::MessageQueue;

/// Virtual nodes per consumer on the consistent-hash ring (Java: 10).
pub const DEFAULT_VIRTUAL_NODES: usize = 10;

/// How the queues of a topic are divided among the consumers of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum AllocateStrategy {
    /// Contiguous blocks, the first `queues % consumers` consumers get one
    /// more (Java's default, `AVG`).
    #[default]
    Averagely,
    /// Round robin: consumer `i` gets queues `i`, `i + n`, `i + 2n`, ...
    /// (`AVG_BY_CIRCLE`).
    AveragelyByCircle,
    /// A consistent-hash ring of consumer ids with this many virtual nodes
    /// each: few queues move when a consumer joins or leaves
    /// (`CONSISTENT_HASH`).
    ConsistentHash {
        /// Virtual nodes per consumer (Java default 10).
        virtual_nodes: usize,
    },
}

impl AllocateStrategy {
    /// The consistent-hash strategy with Java's 10 virtual nodes.
    pub fn consistent_hash() -> Self {
        AllocateStrategy::ConsistentHash { virtual_nodes: DEFAULT_VIRTUAL_NODES }
    }

    /// Java's name of the strategy (`AVG`, `AVG_BY_CIRCLE`, `CONSISTENT_HASH`).
    pub fn name(&self) -> &'static str {
        match self {
            AllocateStrategy::Averagely => "AVG",
            AllocateStrategy::AveragelyByCircle => "AVG_BY_CIRCLE",
            AllocateStrategy::ConsistentHash { .. } => "CONSISTENT_HASH",
        }
    }

    /// Parses a Java name (case-insensitive); `None` for anything else.
    pub fn from_name(name: &str) -> Option<Self> {
        match name.trim().to_ascii_uppercase().as_str() {
            "AVG" | "AVERAGELY" => Some(AllocateStrategy::Averagely),
            "AVG_BY_CIRCLE" | "AVERAGELY_BY_CIRCLE" => Some(AllocateStrategy::AveragelyByCircle),
            "CONSISTENT_HASH" => Some(AllocateStrategy::consistent_hash()),
            _ => None,
        }
    }

    /// The queues of `all_queues` that `current` gets.
    ///
    /// `all_queues` and `all_ids` must be sorted the same way by every
    /// consumer (the crate sorts them). When `current` is not among
    /// `all_ids`, or either list is empty, the answer is empty (as in Java).
    ///
    /// ```
    /// use rocketmq_blocking::consumer::AllocateStrategy;
    /// use rocketmq_blocking::MessageQueue;
    ///
    /// let queues: Vec<_> = (0..5).map(|i| MessageQueue::new("T", "broker-a", i)).collect();
    /// let ids = vec!["c1".to_string(), "c2".to_string()];
    /// let mine = AllocateStrategy::Averagely.allocate("c2", &queues, &ids);
    /// assert_eq!(mine.iter().map(|q| q.queue_id).collect::<Vec<_>>(), vec![3, 4]);
    /// ```
    pub fn allocate(&self, current: &str, all_queues: &[MessageQueue], all_ids: &[String]) -> Vec<MessageQueue> {
        let index = match all_ids.iter().position(|c| c == current) {
            Some(i) if !all_queues.is_empty() => i,
            _ => return Vec::new(),
        };
        match *self {
            AllocateStrategy::Averagely => averagely(index, all_queues, all_ids.len()),
            AllocateStrategy::AveragelyByCircle => {
                all_queues.iter().skip(index).step_by(all_ids.len()).cloned().collect()
            }
            AllocateStrategy::ConsistentHash { virtual_nodes } => {
                consistent_hash(current, all_queues, all_ids, virtual_nodes)
            }
        }
    }
}

/// The group's consumer ids in the order every member allocates from:
/// Java's `String.compareTo` (UTF-16 code units, which differs from Rust's
/// byte order past U+FFFF), duplicates kept. A broker lists a client once
/// per connection, so a reconnected client may appear twice until its old
/// connection expires; Java allocates from that list as it is, and a member
/// that dropped the duplicate would divide the queues differently.
pub(crate) fn sorted_ids(mut ids: Vec<String>) -> Vec<String> {
    ids.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
    ids
}

/// A topic's queues in the order every member allocates from.
pub(crate) fn sorted_queues(mut queues: Vec<MessageQueue>) -> Vec<MessageQueue> {
    queues.sort();
    queues
}

fn averagely(index: usize, queues: &[MessageQueue], consumers: usize) -> Vec<MessageQueue> {
    let n = queues.len();
    let rem = n % consumers;
    let average = if n <= consumers {
        1
    } else if rem > 0 && index < rem {
        n / consumers + 1
    } else {
        n / consumers
    };
    let start = if rem > 0 && index < rem { index * average } else { index * average + rem };
    let range = average.min(n.saturating_sub(start));
    (0..range).map(|i| queues[(start + i) % n].clone()).collect()
}

/// Java's `MessageQueue.toString()`, the key hashed onto the ring.
fn java_queue_string(q: &MessageQueue) -> String {
    format!("MessageQueue [topic={}, brokerName={}, queueId={}]", q.topic, q.broker_name, q.queue_id)
}

/// Java's `ConsistentHashRouter.MD5Hash`: the first 4 digest bytes, big endian.
fn ring_hash(key: &str) -> u32 {
    let d = md5(key.as_bytes());
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

fn consistent_hash(current: &str, queues: &[MessageQueue], ids: &[String], virtual_nodes: usize) -> Vec<MessageQueue> {
    // Inserted in the same order as Java, so a hash collision resolves the
    // same way; an id listed twice gets its next virtual nodes (`id-10`...).
    let mut ring: BTreeMap<u32, &str> = BTreeMap::new();
    let mut replicas: BTreeMap<&str, usize> = BTreeMap::new();
    for id in ids {
        let existing = replicas.entry(id.as_str()).or_insert(0);
        for i in *existing..*existing + virtual_nodes {
            ring.insert(ring_hash(&format!("{id}-{i}")), id.as_str());
        }
        *existing += virtual_nodes;
    }
    let first = match ring.values().next() {
        Some(f) => *f,
        None => return Vec::new(),
    };
    queues
        .iter()
        .filter(|q| {
            let h = ring_hash(&java_queue_string(q));
            let owner = ring.range(h..).next().map(|(_, id)| *id).unwrap_or(first);
            owner == current
        })
        .cloned()
        .collect()
}

/// MD5 (RFC 1321) of `input`; only used to place keys on the hash ring.
pub(crate) fn md5(input: &[u8]) -> [u8; 16] {
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14,
        20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6,
        10, 15, 21,
    ];
    // K[i] = floor(abs(sin(i + 1)) * 2^32).
    let k: Vec<u32> = (0..64).map(|i| ((i as f64 + 1.0).sin().abs() * 4_294_967_296.0) as u32).collect();
    let mut state: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];
    let mut msg = input.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((input.len() as u64).wrapping_mul(8)).to_le_bytes());
    for chunk in msg.chunks_exact(64) {
        let mut m = [0u32; 16];
        for (i, w) in m.iter_mut().enumerate() {
            *w = u32::from_le_bytes([chunk[4 * i], chunk[4 * i + 1], chunk[4 * i + 2], chunk[4 * i + 3]]);
        }
        let [mut a, mut b, mut c, mut d] = state;
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let f = f.wrapping_add(a).wrapping_add(k[i]).wrapping_add(m[g]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(f.rotate_left(S[i]));
        }
        state[0] = state[0].wrapping_add(a);
        state[1] = state[1].wrapping_add(b);
        state[2] = state[2].wrapping_add(c);
        state[3] = state[3].wrapping_add(d);
    }
    let mut out = [0u8; 16];
    for (i, s) in state.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&s.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn queues(n: i32) -> Vec<MessageQueue> {
        let mut v: Vec<_> = (0..n).map(|i| MessageQueue::new("TopicTest", "broker-a", i)).collect();
        v.sort();
        v
    }

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("127.0.0.1@c{i}")).collect()
    }

    fn qids(v: &[MessageQueue]) -> Vec<i32> {
        v.iter().map(|q| q.queue_id).collect()
    }

    #[test]
    fn md5_matches_rfc_1321() {
        assert_eq!(hex(&md5(b"")), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(hex(&md5(b"abc")), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(hex(&md5(b"message digest")), "f96b697d7cb7938d525a2f31aaf161d0");
        let long = b"12345678901234567890123456789012345678901234567890123456789012345678901234567890";
        assert_eq!(hex(&md5(long)), "57edf4a22be3c955ac49da2e2107b67a");
    }

    #[test]
    fn averagely_matches_java() {
        // Expected lists produced by Java's AllocateMessageQueueAveragely.
        let q = queues(16);
        assert_eq!(
            qids(&AllocateStrategy::Averagely.allocate("127.0.0.1@c0", &q, &ids(2))),
            (0..8).collect::<Vec<_>>()
        );
        assert_eq!(
            qids(&AllocateStrategy::Averagely.allocate("127.0.0.1@c1", &q, &ids(2))),
            (8..16).collect::<Vec<_>>()
        );
        let q = queues(8);
        let got: Vec<Vec<i32>> = (0..3)
            .map(|i| qids(&AllocateStrategy::Averagely.allocate(&format!("127.0.0.1@c{i}"), &q, &ids(3))))
            .collect();
        assert_eq!(got, vec![vec![0, 1, 2], vec![3, 4, 5], vec![6, 7]]);
        let q = queues(2);
        let got: Vec<Vec<i32>> = (0..3)
            .map(|i| qids(&AllocateStrategy::Averagely.allocate(&format!("127.0.0.1@c{i}"), &q, &ids(3))))
            .collect();
        assert_eq!(got, vec![vec![0], vec![1], vec![]]);
        assert!(AllocateStrategy::Averagely.allocate("stranger", &q, &ids(3)).is_empty());
        assert!(AllocateStrategy::Averagely.allocate("127.0.0.1@c0", &[], &ids(3)).is_empty());
    }

    #[test]
    fn by_circle_matches_java() {
        let q = queues(8);
        let got: Vec<Vec<i32>> = (0..3)
            .map(|i| qids(&AllocateStrategy::AveragelyByCircle.allocate(&format!("127.0.0.1@c{i}"), &q, &ids(3))))
            .collect();
        assert_eq!(got, vec![vec![0, 3, 6], vec![1, 4, 7], vec![2, 5]]);
    }

    /// Expected lists produced by Java's AllocateMessageQueueConsistentHash
    /// (10 virtual nodes, MD5) for topic `TopicTest`, broker-a and broker-b
    /// with 4 queues each, consumers `127.0.0.1@c0..c2`.
    #[test]
    fn consistent_hash_matches_java() {
        let mut q: Vec<_> = ["broker-a", "broker-b"]
            .iter()
            .flat_map(|b| (0..4).map(move |i| MessageQueue::new("TopicTest", *b, i)))
            .collect();
        q.sort();
        let ids = ids(3);
        let s = AllocateStrategy::consistent_hash();
        let got: Vec<Vec<String>> = ids
            .iter()
            .map(|id| s.allocate(id, &q, &ids).iter().map(|m| format!("{}:{}", m.broker_name, m.queue_id)).collect())
            .collect();
        assert_eq!(got, java_consistent_hash_expected());
        // Every queue has exactly one owner.
        let total: usize = got.iter().map(Vec::len).sum();
        assert_eq!(total, q.len());
    }

    fn java_consistent_hash_expected() -> Vec<Vec<String>> {
        JAVA_CH.iter().map(|v| v.iter().map(|s| s.to_string()).collect()).collect()
    }

    const JAVA_CH: [&[&str]; 3] = [
        &["broker-a:2", "broker-b:1"],
        &["broker-a:0", "broker-a:1", "broker-a:3", "broker-b:0", "broker-b:2", "broker-b:3"],
        &[],
    ];

    #[test]
    fn names_round_trip() {
        for s in [AllocateStrategy::Averagely, AllocateStrategy::AveragelyByCircle, AllocateStrategy::consistent_hash()]
        {
            assert_eq!(AllocateStrategy::from_name(s.name()), Some(s));
        }
        assert_eq!(AllocateStrategy::from_name("nope"), None);
    }
}

/// The Java client's answers for a table of cases, generated by
/// tests/interop/java/src/main/java/interop/AllocTable.java (its header has
/// the command); each case also gives Java's sort order of the inputs.
#[cfg(test)]
mod java_table {
    use super::*;

    const TABLE: &str = include_str!("../../tests/data/java_allocation.jsonl");

    #[test]
    fn every_case_allocates_and_sorts_like_java() {
        let mut cases = 0;
        for (n, line) in TABLE.lines().enumerate() {
            let case: serde_json::Value = serde_json::from_str(line).expect("a JSON case");
            let strategy = AllocateStrategy::from_name(case["strategy"].as_str().unwrap()).unwrap();
            let strings = |v: &serde_json::Value| -> Vec<String> {
                v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
            };
            let positions = |v: &serde_json::Value| -> Vec<usize> {
                v.as_array().unwrap().iter().map(|i| i.as_u64().unwrap() as usize).collect()
            };
            let counts = positions(&case["queues"]);
            // As AllocTable hands them over: broker-b first, highest id first.
            let received: Vec<MessageQueue> = (0..counts[1])
                .rev()
                .map(|i| MessageQueue::new("TopicTest", "broker-b", i as i32))
                .chain((0..counts[0]).rev().map(|i| MessageQueue::new("TopicTest", "broker-a", i as i32)))
                .collect();
            let ids = sorted_ids(strings(&case["ids"]));
            assert_eq!(ids, strings(&case["sorted_ids"]), "case {n}: consumer ids sorted unlike Java");
            let queues = sorted_queues(received.clone());
            let java_queues: Vec<MessageQueue> =
                positions(&case["sorted_queues"]).into_iter().map(|i| received[i].clone()).collect();
            assert_eq!(queues, java_queues, "case {n}: queues sorted unlike Java");
            let mut candidates = ids.clone();
            candidates.push("127.0.0.1@stranger".to_string());
            for (cid, owned) in candidates.iter().zip(case["owned"].as_array().unwrap()) {
                let got = strategy.allocate(cid, &queues, &ids);
                // Java throws for an empty queue list; we answer nothing.
                let want: Vec<MessageQueue> = if owned.is_null() {
                    Vec::new()
                } else {
                    positions(owned).into_iter().map(|i| queues[i].clone()).collect()
                };
                assert_eq!(got, want, "case {n} ({line}): {cid} gets other queues than in Java");
            }
            cases += 1;
        }
        assert!(cases > 1000, "the table has {cases} cases");
    }
}
