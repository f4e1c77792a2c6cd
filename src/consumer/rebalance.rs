//! Rebalancing and the consumer's background thread.
//!
//! One thread per consumer, `rocketmq-rebalance-<n>`, does every periodic
//! job: rebalance (every interval, and at once when a broker sends
//! NOTIFY_CONSUMER_IDS_CHANGED), heartbeat, offset persist and — orderly —
//! lock renewal. It waits on the instance's [`Signal`](super::signal::Signal)
//! with a timeout, so `shutdown` wakes it at once.
//!
//! A rebalance, per subscribed topic: read the topic's queues from the name
//! server and the group's consumer ids from a broker, sort both, allocate
//! (clustering) or take all (broadcasting), then drop the queues no longer
//! ours and add the new ones.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::instance::Instance;
use super::offset_store::OffsetStore;
use super::owner::QueueOwner;
use crate::error::Result;
use crate::protocol::body::ConsumeFromWhere;
use crate::protocol::MessageQueue;
use crate::threads::spawn;

/// How often the background thread looks for queues to ready.
const PREPARE_INTERVAL: Duration = Duration::from_millis(200);

/// The queues this consumer should hold for `topic`; `None` keeps the
/// current ones (route or consumer list not available).
pub(crate) fn desired_queues(inst: &Instance, topic: &str) -> Option<BTreeSet<MessageQueue>> {
    let subject = format!("route of {topic}");
    let all = match inst.topic_queues(topic) {
        Ok(all) => all,
        Err(e) => {
            log_warn!("route refresh failed: group={} topic={topic} error={e}", inst.group);
            inst.refusals.refused(&subject, e);
            return None;
        }
    };
    inst.refusals.clear(&subject);
    if !inst.clustering() {
        return Some(all.into_iter().collect());
    }
    let subject = format!("consumer list of {topic}");
    let ids = match inst.consumer_ids(topic) {
        Ok(ids) => ids,
        Err(e) => {
            log_warn!("consumer list failed: group={} topic={topic} error={e}", inst.group);
            inst.refusals.refused(&subject, e);
            return None;
        }
    };
    inst.refusals.clear(&subject);
    if ids.is_empty() {
        return None;
    }
    Some(inst.config.allocate_strategy().allocate(&inst.client_id, &all, &ids).into_iter().collect())
}

/// One rebalance over every subscribed topic.
pub(crate) fn rebalance(inst: &Instance, owner: &Arc<dyn QueueOwner>) {
    for sub in inst.subscriptions() {
        if inst.signal.is_stopped() {
            return;
        }
        let desired = owner.broker_assignment(&sub.topic).unwrap_or_else(|| desired_queues(inst, &sub.topic));
        let Some(desired) = desired else { continue };
        let held = owner.held(&sub.topic);
        if held != desired {
            log_info!("rebalance: group={} topic={} held={} now={}", inst.group, sub.topic, held.len(), desired.len());
        }
        for mq in held.difference(&desired) {
            owner.remove(mq);
        }
        for mq in desired.difference(&held) {
            owner.add(mq.clone());
        }
    }
    // Queues of topics no longer subscribed (after `unsubscribe`).
    let topics: BTreeSet<String> = inst.subscriptions().into_iter().map(|s| s.topic).collect();
    for mq in owner.rebalanced().iter().filter(|q| !topics.contains(&q.topic)) {
        owner.remove(mq);
    }
}

/// Where to start a queue: the stored offset, else by consume-from-where
/// (Java's `computePullFromWhere`): last → max offset (retry topics: 0),
/// first → 0, timestamp → the first message stored at or after it
/// (retry topics: max offset).
pub(crate) fn start_offset(inst: &Instance, store: &OffsetStore, mq: &MessageQueue) -> Result<i64> {
    if let Some(o) = store.read_store(inst, mq)? {
        if o >= 0 {
            return Ok(o);
        }
    }
    let retry = mq.topic.starts_with("%RETRY%");
    let offset = match inst.config.consume_from_where() {
        ConsumeFromWhere::FirstOffset => 0,
        ConsumeFromWhere::LastOffset if retry => 0,
        ConsumeFromWhere::LastOffset => inst.broker_of(mq)?.max_offset(mq)?,
        ConsumeFromWhere::Timestamp if retry => inst.broker_of(mq)?.max_offset(mq)?,
        ConsumeFromWhere::Timestamp => inst.broker_of(mq)?.search_offset(mq, inst.consume_timestamp_ms())?,
    };
    store.update(mq, offset, false);
    Ok(offset)
}

/// Starts the background thread.
pub(crate) fn spawn_service(inst: Arc<Instance>, owner: Arc<dyn QueueOwner>) -> Result<JoinHandle<()>> {
    spawn("rebalance", move || run(&inst, &owner))
}

fn run(inst: &Instance, owner: &Arc<dyn QueueOwner>) {
    let c = &inst.config;
    let now = Instant::now();
    let mut next_rebalance = now;
    let mut next_heartbeat = now + c.heartbeat_interval();
    let mut next_persist = now + c.persist_interval();
    let mut next_lock = now + c.lock_renew_interval();
    loop {
        let deadline = next_rebalance.min(next_heartbeat).min(next_persist).min(next_lock);
        // Wake at least every second to ready queues the pull threads left here.
        let w = inst.signal.wait_until(deadline.min(Instant::now() + PREPARE_INTERVAL));
        if w.stopped {
            return;
        }
        let now = Instant::now();
        if w.heartbeat || now >= next_heartbeat {
            if let Some((subject, e)) = inst.heartbeat_all(Instant::now() + c.request_timeout()) {
                inst.refusals.refused(&subject, e);
            }
            next_heartbeat = Instant::now() + c.heartbeat_interval();
        }
        if w.rebalance || now >= next_rebalance {
            rebalance(inst, owner);
            next_rebalance = Instant::now() + c.rebalance_interval();
        }
        for (topic, table) in &w.resets {
            log_info!("offset reset: group={} topic={topic} queues={}", inst.group, table.len());
            owner.reset_offsets(topic, table);
        }
        if now >= next_lock {
            owner.renew_locks();
            next_lock = Instant::now() + c.lock_renew_interval();
        }
        owner.prepare();
        if now >= next_persist {
            owner.persist();
            next_persist = Instant::now() + c.persist_interval();
        }
    }
}
