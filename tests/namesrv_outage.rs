//! The name server dies for about 8 s while 8 threads send: every
//! acknowledged message is stored, and consumers subscribed before the
//! outage receive what is sent after the name server is back. Alone in its
//! binary: it kills the harness's name server (`stop-namesrv`) and starts
//! it again (`start-namesrv`, also on failure).

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use rocketmq_blocking::consumer::{
    ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus, ConsumeFromWhere, LitePullConsumer, PushConsumer,
};
use rocketmq_blocking::{Error, Message, MessageExt, Producer};

const THREADS: usize = 8;
const OUTAGE: Duration = Duration::from_secs(8);
/// Messages sent once the name server is back, checked on both consumers.
const AFTER: usize = 400;

type Seen = Arc<Mutex<HashMap<String, usize>>>;

fn count(seen: &Seen, bodies: impl IntoIterator<Item = String>) {
    let mut s = seen.lock().unwrap();
    for b in bodies {
        *s.entry(b).or_default() += 1;
    }
}

fn missing(seen: &Seen, wanted: &HashSet<String>) -> usize {
    let s = seen.lock().unwrap();
    wanted.iter().filter(|b| !s.contains_key(*b)).count()
}

#[test]
fn name_server_outage_loses_no_acknowledged_message_and_consumption_resumes() {
    let topic = unique("ns_outage");
    create_topic(&topic, 4);

    // A push consumer and a lite-pull consumer, both subscribed before the outage.
    let push_seen: Seen = Arc::default();
    let push = PushConsumer::new(
        consumer_config(&unique("ns_outage_push")).consume_from_where(ConsumeFromWhere::FirstOffset).build().unwrap(),
    )
    .unwrap();
    push.subscribe(&topic, "*").unwrap();
    let seen = Arc::clone(&push_seen);
    push.register_concurrently(move |msgs: &[MessageExt], _: &mut ConsumeConcurrentlyContext| {
        count(&seen, body_strings(msgs));
        ConsumeConcurrentlyStatus::ConsumeSuccess
    })
    .unwrap();
    push.start().unwrap();
    let lite = Arc::new(
        LitePullConsumer::new(
            consumer_config(&unique("ns_outage_lite"))
                .consume_from_where(ConsumeFromWhere::FirstOffset)
                .build()
                .unwrap(),
        )
        .unwrap(),
    );
    lite.subscribe(&topic, "*").unwrap();
    lite.start().unwrap();
    wait_for(Duration::from_secs(30), "both consumers to hold all 8 queues", || {
        (push.assignment().iter().filter(|q| q.topic == topic).count() == 8
            && lite.assignment().iter().filter(|q| q.topic == topic).count() == 8)
            .then_some(())
    });
    let lite_seen: Seen = Arc::default();
    let polling = Arc::new(AtomicBool::new(true));
    let poller = {
        let (lite, seen, polling) = (Arc::clone(&lite), Arc::clone(&lite_seen), Arc::clone(&polling));
        std::thread::spawn(move || {
            let mut errors = Vec::new();
            while polling.load(Ordering::SeqCst) {
                match lite.poll(Duration::from_millis(200)) {
                    Ok(msgs) => count(&seen, body_strings(&msgs)),
                    Err(e) => errors.push(e),
                }
            }
            errors
        })
    };

    let p = Arc::new(Producer::new(producer_config(&unique("ns_outage_pg")).build().unwrap()).unwrap());
    p.start().unwrap();
    let acked_total = Arc::new(AtomicUsize::new(0));
    let sending = Arc::new(AtomicBool::new(true));
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (p, topic, acked_total, sending) =
                (Arc::clone(&p), topic.clone(), Arc::clone(&acked_total), Arc::clone(&sending));
            std::thread::spawn(move || {
                let (mut acked, mut failed) = (Vec::new(), Vec::new());
                let mut i = 0;
                while sending.load(Ordering::SeqCst) {
                    let body = format!("t{t}-{i}");
                    let msg = Message::new(&topic, body.clone()).with_keys([&body]);
                    match p.send(&msg) {
                        Ok(_) => {
                            acked.push((Instant::now(), body));
                            acked_total.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) => failed.push((Instant::now(), e)),
                    }
                    i += 1;
                }
                (acked, failed)
            })
        })
        .collect();
    wait_for(Duration::from_secs(60), "1,000 sends before the outage", || {
        (acked_total.load(Ordering::SeqCst) >= 1000).then_some(())
    });

    let restart = StartNamesrvOnDrop;
    harness(&["stop-namesrv"]);
    let down_at = Instant::now();
    assert!(namesrv().topic_route(&topic).is_err(), "the name server still answers");
    // The outage itself: the scenario is "no name server for ~8 s", not a wait for a condition.
    std::thread::sleep(OUTAGE);
    let during = acked_total.load(Ordering::SeqCst);
    drop(restart); // start-namesrv: waits until both brokers registered again
    let up_at = Instant::now();
    let route = namesrv().topic_route(&topic).expect("route after the restart");
    assert_eq!(route.broker_datas.len(), 2, "{route:?}");
    let back = acked_total.load(Ordering::SeqCst);
    wait_for(Duration::from_secs(60), "1,000 more sends after the restart", || {
        (acked_total.load(Ordering::SeqCst) >= back + 1000).then_some(())
    });
    sending.store(false, Ordering::SeqCst);
    let (mut acked, mut failed) = (Vec::new(), Vec::new());
    for w in workers {
        let (a, f) = w.join().unwrap();
        acked.extend(a);
        failed.extend(f);
    }
    // Sends may fail, with a typed error, only once the name server is
    // gone. (With replicas, a 5.x name server that has just restarted and
    // heard from a slave before its master lists that broker's queues
    // without a master address: for a moment the route has no writable
    // queue, and the producer, like Java's, takes the route it is given.)
    let before = failed.iter().filter(|(at, _)| *at < down_at).count();
    assert_eq!(before, 0, "sends failed before the outage: {:?}", failed.first());
    for (_, e) in &failed {
        assert!(
            matches!(
                e,
                Error::SendFailed { .. }
                    | Error::Timeout { .. }
                    | Error::Connect { .. }
                    | Error::QueueNotAvailable { .. }
            ),
            "untyped or unexpected failure: {e:?}"
        );
    }
    let failed_after_up = failed.iter().filter(|(at, _)| *at > up_at).count();
    let in_outage = acked.iter().filter(|(at, _)| *at > down_at && *at < up_at).count();
    println!(
        "acknowledged {} ({in_outage} while the name server was down or restarting, {} sent after), failed {} \
         ({failed_after_up} after it was back), e.g. {:?}",
        acked.len(),
        acked.len() - back,
        failed.len(),
        failed.first().map(|(_, e)| e)
    );
    assert!(during > 1000, "sends went on while the name server was down (cached routes)");
    assert!(in_outage > 0, "no send was acknowledged during the outage");

    // Sent after the name server is back, with a fresh producer (it needs a route).
    let late = Producer::new(producer_config(&unique("ns_outage_late_pg")).build().unwrap()).unwrap();
    late.start().unwrap();
    let after: HashSet<String> = (0..AFTER)
        .map(|i| {
            let body = format!("after-{i}");
            late.send(&Message::new(&topic, body.clone()).with_keys([&body])).expect("send after the outage");
            body
        })
        .collect();

    // Nothing acknowledged is lost: every body is stored, read back by pulling.
    let acked: HashSet<String> = acked.into_iter().map(|(_, b)| b).collect();
    let stored: HashSet<String> = body_strings(&pull_all(&topic)).into_iter().collect();
    let lost: Vec<&String> = acked.iter().chain(&after).filter(|b| !stored.contains(*b)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged messages are not stored, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );

    // Consumption resumed: both consumers get everything, including what was sent after the outage.
    let everything: HashSet<String> = acked.union(&after).cloned().collect();
    for (name, seen) in [("push", &push_seen), ("lite pull", &lite_seen)] {
        wait_for(Duration::from_secs(60), &format!("the {name} consumer to receive all {}", everything.len()), || {
            (missing(seen, &everything) == 0).then_some(())
        });
        assert!(after.iter().all(|b| seen.lock().unwrap().contains_key(b)));
    }
    polling.store(false, Ordering::SeqCst);
    let poll_errors = poller.join().unwrap();
    println!(
        "push consumer saw {} distinct, lite pull {} distinct; lite poll errors: {}",
        push_seen.lock().unwrap().len(),
        lite_seen.lock().unwrap().len(),
        poll_errors.len()
    );
    push.shutdown();
    lite.shutdown();
    p.shutdown();
    late.shutdown();
}
