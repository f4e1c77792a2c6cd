//! 5.x controller mode (harness `ROCKETMQ_CONTROLLER=1`): the controller in
//! the name server elects each broker name's master. While an 8-thread
//! producer and a push consumer run, broker-a's master is killed with
//! kill -9; the controller promotes the other replica, the old master comes
//! back as a slave, and the client follows the roles the name server
//! announces (the route's `brokerAddrs` ids change). Skipped with a message
//! when the harness runs no controller.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use rocketmq_blocking::consumer::{
    ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus, ConsumeFromWhere, PushConsumer,
};
use rocketmq_blocking::{Message, MessageExt, Producer, SendResult, SendStatus, TopicConfig};

const THREADS: usize = 8;

fn controller_running() -> bool {
    let on = std::env::var("ROCKETMQ_CONTROLLER").is_ok_and(|v| v == "1");
    if !on {
        eprintln!(
            "controller: skipped, no controller (start the brokers with \
             `ROCKETMQ_CONTROLLER=1 tests/broker/rocketmq.sh start`)"
        );
    }
    on
}

/// The address that stored a message, from its offset message id
/// (4 bytes IPv4, 4 bytes port, 8 bytes commit log offset, in hex).
fn store_addr(offset_msg_id: &str) -> Option<SocketAddr> {
    let hex = |r: std::ops::Range<usize>| u32::from_str_radix(offset_msg_id.get(r)?, 16).ok();
    let ip = hex(0..8)?;
    let port = hex(8..16)?;
    Some(SocketAddr::from((ip.to_be_bytes(), port as u16)))
}

/// broker-a's replicas in the name server's route: id → address.
fn replicas(topic: &str) -> BTreeMap<i64, String> {
    let route = namesrv().topic_route(topic).expect("route");
    route.broker_datas.iter().find(|b| b.broker_name == "broker-a").map(|b| b.broker_addrs.clone()).unwrap_or_default()
}

/// The harness's process name for a replica address (port 20911 + offset
/// is "broker-a", 20921 + offset "broker-a-s").
fn process_name(addr: &str) -> &'static str {
    let offset: u16 = std::env::var("ROCKETMQ_PORT_OFFSET").ok().and_then(|o| o.parse().ok()).unwrap_or(0);
    let port: u16 = addr.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port");
    match port - offset {
        20911 => "broker-a",
        20921 => "broker-a-s",
        other => panic!("{addr} (port {other} without the offset) is not a replica of broker-a"),
    }
}

/// Waits until the controller counts both replicas of `broker` in its sync
/// state set (only those can be elected), asking with the release's mqadmin.
fn await_sync_state_set(broker: &str) {
    let controller = format!(
        "127.0.0.1:{}",
        30000 + std::env::var("ROCKETMQ_PORT_OFFSET").ok().and_then(|o| o.parse::<u16>().ok()).unwrap_or(0)
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/broker/rocketmq.sh");
    wait_for(Duration::from_secs(120), &format!("{broker}'s sync state set of 2"), || {
        let out = std::process::Command::new("bash")
            .args([script, "mqadmin", "getSyncStateSet", "-a", &controller, "-b", broker])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout).contains("#SyncStateSetNums\t2").then_some(())
    });
}

#[test]
fn master_killed_the_controller_promotes_the_slave_and_the_client_follows() {
    if !controller_running() {
        return;
    }
    await_sync_state_set("broker-a");
    let topic = unique("controller");
    // On every replica, so that the one promoted serves the topic at once
    // (a 5.x slave copies its master's topic configs only once a minute).
    let ns = namesrv();
    let info = ns.cluster_info().expect("cluster info");
    for b in info.broker_addr_table.values() {
        for addr in b.broker_addrs.values() {
            ns.create_topic_on_broker(addr, &TopicConfig::new(&topic).queues(4)).expect("create topic");
        }
    }
    wait_for(Duration::from_secs(30), "route of the new topic", || {
        ns.topic_route(&topic).ok().filter(|r| r.broker_datas.len() >= 2 && r.queue_datas.len() >= 2)
    });
    let before = replicas(&topic);
    let old_master = before.get(&0).cloned().expect("broker-a has a master");
    let promoted = before.iter().find(|(id, _)| **id != 0).map(|(_, a)| a.clone()).expect("broker-a has a slave");
    println!("broker-a before the kill: {before:?}");

    // The push consumer: every body with its count, and when it first got
    // a message stored by the promoted replica.
    let seen: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let consumed_back: Arc<Mutex<Option<Instant>>> = Arc::default();
    let consumer = PushConsumer::new(
        consumer_config(&unique("controller_cg")).consume_from_where(ConsumeFromWhere::FirstOffset).build().unwrap(),
    )
    .unwrap();
    consumer.subscribe(&topic, "*").unwrap();
    {
        let (seen, back, promoted) = (Arc::clone(&seen), Arc::clone(&consumed_back), promoted.clone());
        consumer
            .register_concurrently(move |msgs: &[MessageExt], _: &mut ConsumeConcurrentlyContext| {
                if msgs.iter().any(|m| m.store_host.to_string() == promoted) {
                    back.lock().unwrap().get_or_insert_with(Instant::now);
                }
                let mut s = seen.lock().unwrap();
                for b in body_strings(msgs) {
                    *s.entry(b).or_default() += 1;
                }
                ConsumeConcurrentlyStatus::ConsumeSuccess
            })
            .unwrap();
    }
    consumer.start().unwrap();

    // 8 threads send until told to stop; every acknowledged send is kept.
    let config = producer_config(&unique("controller_pg")).send_timeout(Duration::from_secs(5)).build().unwrap();
    let p = Arc::new(Producer::new(config).unwrap());
    p.start().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicUsize::new(0));
    let acked: Arc<Mutex<Vec<(String, SendResult, Instant)>>> = Arc::default();
    let failed = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let (p, topic, stop, next, acked, failed) = (
                Arc::clone(&p),
                topic.clone(),
                Arc::clone(&stop),
                Arc::clone(&next),
                Arc::clone(&acked),
                Arc::clone(&failed),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let body = format!("c-{}", next.fetch_add(1, Ordering::SeqCst));
                    match p.send(&Message::new(&topic, body.clone())) {
                        Ok(r) if r.status == SendStatus::SendOk => {
                            acked.lock().unwrap().push((body, r, Instant::now()))
                        }
                        Ok(_) | Err(_) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    let acked_on = |addr: &str, since: Instant| {
        acked
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, r, t)| *t >= since && store_addr(&r.offset_msg_id).is_some_and(|a| a.to_string() == addr))
            .count()
    };
    let t_start = Instant::now();
    wait_for(Duration::from_secs(60), "sends acknowledged by broker-a's master and consumed", || {
        (acked_on(&old_master, t_start) >= 500 && seen.lock().unwrap().len() >= 500).then_some(())
    });

    // kill -9 broker-a's master.
    let old_process = process_name(&old_master);
    let restart = RestartOnDrop(old_process);
    harness(&["stop-broker", old_process]);
    let killed = Instant::now();

    // The controller promotes the other replica: sends to broker-a succeed
    // again (stored by the promoted replica), and the consumer gets them.
    wait_for(Duration::from_secs(90), "a send acknowledged by the promoted replica", || {
        (acked_on(&promoted, killed) > 0).then_some(())
    });
    let sends_back = acked
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, r, _)| store_addr(&r.offset_msg_id).is_some_and(|a| a.to_string() == promoted))
        .map(|(_, _, t)| *t - killed)
        .min()
        .unwrap();
    let consume_back = wait_for(Duration::from_secs(90), "the consumer to get a message from the new master", || {
        consumed_back.lock().unwrap().map(|t| t - killed)
    });
    let during = replicas(&topic);
    println!(
        "broker-a after the promotion: {during:?}; sends to broker-a back {sends_back:?} after the kill, \
         consumption from it back {consume_back:?}"
    );
    assert_eq!(during.get(&0), Some(&promoted), "the name server names the promoted replica as master");

    // The old master comes back: it rejoins as a slave under its own id.
    drop(restart); // start-broker: waits until it is registered
    let after = wait_for(Duration::from_secs(60), "the old master registered as a slave", || {
        Some(replicas(&topic))
            .filter(|r| r.get(&0) == Some(&promoted) && r.iter().any(|(id, a)| *id != 0 && *a == old_master))
    });
    println!("broker-a after the old master's restart: {after:?}");
    // The producer keeps sending to the new master (the old one, a slave
    // now, would refuse sends), and the consumer keeps consuming.
    let rejoined = Instant::now();
    wait_for(Duration::from_secs(30), "sends to the new master after the old one rejoined", || {
        (acked_on(&promoted, rejoined) >= 200).then_some(())
    });
    assert_eq!(acked_on(&old_master, rejoined), 0, "a send was stored by the old master, a slave now");

    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.join().unwrap();
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    let bodies: HashSet<&String> = acked.iter().map(|(b, _, _)| b).collect();
    // Every acknowledged message is stored (read back from the masters of now)...
    let stored: HashSet<String> = body_strings(&pull_all(&topic)).into_iter().collect();
    let lost: Vec<&&String> = bodies.iter().filter(|b| !stored.contains(**b)).collect();
    // ...and consumed at least once.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for(Duration::from_secs(120), "every acknowledged message consumed", || {
            let s = seen.lock().unwrap();
            bodies.iter().all(|b| s.contains_key(*b)).then_some(())
        })
    }));
    let not_consumed = bodies.iter().filter(|b| !seen.lock().unwrap().contains_key(**b)).count();
    let on_a = acked.iter().filter(|(_, r, _)| r.queue.broker_name == "broker-a").count();
    println!(
        "acknowledged {} ({on_a} on broker-a), {} sends failed, lost {}, not consumed {not_consumed}, \
         redelivered {}",
        acked.len(),
        failed.load(Ordering::Relaxed),
        lost.len(),
        seen.lock().unwrap().values().filter(|n| **n > 1).count()
    );
    consumer.shutdown();
    p.shutdown();
    assert!(lost.is_empty(), "{} acknowledged messages lost, e.g. {:?}", lost.len(), &lost[..lost.len().min(5)]);
    assert!(result.is_ok(), "{not_consumed} acknowledged messages not consumed");
}
