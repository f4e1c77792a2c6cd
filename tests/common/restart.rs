//! Restart rounds: one consumer of a group is started, stopped once it has
//! processed some messages, started again, many times over; each round
//! counts the messages that an earlier round had already processed. A
//! shutdown that persists a stale or no offset for one queue shows as a
//! whole queue's worth in the next round.

use std::collections::HashSet;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rocketmq_blocking::{Message, MessageQueue};

/// What the consumer of one round processed (bodies, in order).
#[derive(Default)]
pub struct Tally {
    bodies: Mutex<Vec<String>>,
    cond: Condvar,
}

impl Tally {
    /// Records processed messages (call it once they count as processed).
    pub fn record(&self, msgs: &[rocketmq_blocking::MessageExt]) {
        let mut b = self.bodies.lock().unwrap();
        b.extend(msgs.iter().map(|m| String::from_utf8_lossy(&m.body).into_owned()));
        self.cond.notify_all();
    }

    fn wait_for(&self, count: usize, limit: Duration) -> usize {
        let deadline = Instant::now() + limit;
        let mut b = self.bodies.lock().unwrap();
        while b.len() < count && Instant::now() < deadline {
            b = self.cond.wait_timeout(b, deadline - Instant::now()).unwrap().0;
        }
        b.len()
    }
}

/// Sends `per_queue` messages (bodies `q<i>-<n>`) to each of `queues`.
pub fn fill(queues: &[MessageQueue], per_queue: usize) {
    for (i, q) in queues.iter().enumerate() {
        let c = super::client(&q.broker_name);
        let msgs: Vec<Message> = (0..per_queue).map(|n| Message::new(&q.topic, format!("q{i}-{n}"))).collect();
        super::send_in_batches(&c, q, &msgs);
    }
}

/// Runs `rounds` restarts of a consumer of each of `groups`, the groups
/// side by side (their threads compete for the CPU, as on a busy host).
/// `start(group, tally)` starts a consumer that records what it processed
/// into the tally and returns what stops it (its `shutdown`); each round
/// stops once `per_round` messages were processed. Asserts that no round
/// delivers more than `bound` messages an earlier round of its group had
/// processed; returns those counts per group.
pub fn restart_rounds(
    groups: &[String],
    rounds: usize,
    per_round: usize,
    bound: usize,
    start: impl Fn(&str, Arc<Tally>) -> Box<dyn FnOnce()> + Sync,
) -> Vec<Vec<usize>> {
    std::thread::scope(|s| {
        let loops: Vec<_> = groups.iter().map(|g| s.spawn(|| rounds_of(g, rounds, per_round, bound, &start))).collect();
        loops.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
    })
}

fn rounds_of<F: Fn(&str, Arc<Tally>) -> Box<dyn FnOnce()>>(
    group: &str,
    rounds: usize,
    per_round: usize,
    bound: usize,
    start: &F,
) -> Vec<usize> {
    let mut processed: HashSet<String> = HashSet::new();
    let mut counts = Vec::new();
    for round in 0..rounds {
        let tally = Arc::new(Tally::default());
        let stop = start(group, Arc::clone(&tally));
        let got = tally.wait_for(per_round, Duration::from_secs(30));
        stop();
        assert!(got >= per_round, "{group} round {round}: only {got} of {per_round} messages within 30 s");
        let bodies = std::mem::take(&mut *tally.bodies.lock().unwrap());
        let again: HashSet<&String> = bodies.iter().filter(|b| processed.contains(*b)).collect();
        assert!(
            again.len() <= bound,
            "{group} round {round}: {} messages processed in an earlier round came again (bound {bound}), e.g. {:?}",
            again.len(),
            again.iter().take(5).collect::<Vec<_>>()
        );
        counts.push(again.len());
        processed.extend(bodies);
    }
    counts
}
