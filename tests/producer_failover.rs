//! broker-a dies in the middle of a 4-thread, 10,000-message sync run:
//! every send ends in Ok or a typed error, every acknowledged message is
//! stored, and broker-a gets traffic again once it is back. Alone in its
//! binary: it kills broker-a.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use rocketmq_blocking::producer::{HealthState, Producer};
use rocketmq_blocking::{Error, Message};

#[test]
fn broker_killed_mid_run_loses_no_acknowledged_message() {
    let topic = unique("failover");
    create_topic(&topic, 4);
    let p = Arc::new(Producer::new(producer_config(&unique("failover_pg")).retries(2).build().unwrap()).unwrap());
    p.start().unwrap();
    let restart = RestartOnDrop("broker-a");
    let sent = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..4)
        .map(|t| {
            let p = Arc::clone(&p);
            let topic = topic.clone();
            let sent = Arc::clone(&sent);
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                let mut failed = Vec::new();
                for i in 0..2500 {
                    match p.send(&Message::new(&topic, format!("{t}-{i}"))) {
                        Ok(r) => acked.push(r),
                        Err(e) => failed.push(e),
                    }
                    sent.fetch_add(1, Ordering::SeqCst);
                }
                (acked, failed)
            })
        })
        .collect();
    wait_for(Duration::from_secs(120), "2,000 sends before the kill", || {
        (sent.load(Ordering::SeqCst) >= 2000).then_some(())
    });
    harness(&["stop-broker", "broker-a"]);
    let mut acked = Vec::new();
    let mut failed = Vec::new();
    for w in workers {
        let (a, f) = w.join().unwrap();
        acked.extend(a);
        failed.extend(f);
    }
    assert_eq!(acked.len() + failed.len(), 10_000);
    for e in &failed {
        assert!(
            matches!(
                e,
                Error::SendFailed { .. }
                    | Error::ConnectionClosed { .. }
                    | Error::Connect { .. }
                    | Error::Timeout { .. }
            ),
            "untyped or unexpected failure: {e:?}"
        );
    }
    let state = p.stats().brokers.get("broker-a").map(|h| h.state());
    assert!(matches!(state, Some(HealthState::Degraded | HealthState::Unhealthy)), "broker-a is {state:?}");
    println!("acknowledged {}, failed {}, broker-a {state:?}", acked.len(), failed.len());

    drop(restart); // starts broker-a again and waits until it is registered
    let back = wait_for(Duration::from_secs(90), "a send stored on broker-a again", || {
        p.send(&Message::new(&topic, "after restart")).ok().filter(|r| r.queue.broker_name == "broker-a")
    });
    assert_eq!(p.stats().brokers["broker-a"].state(), HealthState::Healthy);

    let stored: HashSet<String> = pull_all(&topic).into_iter().map(|m| m.msg_id).collect();
    let lost: Vec<&str> = acked.iter().map(|r| r.msg_id.as_str()).filter(|id| !stored.contains(*id)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged messages are not stored, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    assert!(stored.contains(&back.msg_id));
    p.shutdown();
}
