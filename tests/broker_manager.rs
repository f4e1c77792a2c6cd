//! `BrokerConnectionPool` and `BrokerManager` against the real brokers.
//!
//! Every test uses broker-a except `killed_broker_fails_and_recovers`, the
//! only test here that stops broker-b (and starts it again, also when it
//! fails). Tests that start a health thread hold `HEALTH_THREADS`, so the
//! thread count read from /proc belongs to one manager at a time.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use rocketmq_blocking::broker::{
    BrokerConnectionPool, BrokerManager, BrokerManagerConfig, BrokerState, ClientConfig, PooledConnection, PullRequest,
};
use rocketmq_blocking::protocol::{request, RemotingCommand, ResponseCode};
use rocketmq_blocking::{Error, Message, MessageQueue};

static HEALTH_THREADS: Mutex<()> = Mutex::new(());

fn health_lock() -> MutexGuard<'static, ()> {
    HEALTH_THREADS.lock().unwrap_or_else(|p| p.into_inner())
}

fn client_config() -> ClientConfig {
    ClientConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .request_timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// A manager whose health thread is not started.
fn manager(pool_size: usize) -> BrokerManager {
    let config = BrokerManagerConfig::builder().pool_size(pool_size).client_config(client_config()).build().unwrap();
    BrokerManager::new(config)
}

/// GET_BROKER_RUNTIME_INFO through the guard, recorded in its stats.
fn runtime_info(conn: &mut PooledConnection) -> rocketmq_blocking::Result<RemotingCommand> {
    conn.call(|c| c.invoke(RemotingCommand::request(request::GET_BROKER_RUNTIME_INFO), Duration::from_secs(5)))
}

fn assert_runtime_info(resp: &RemotingCommand) {
    assert_eq!(resp.response_code(), ResponseCode::Success, "{resp:?}");
    let body = String::from_utf8_lossy(&resp.body);
    assert!(body.contains("brokerVersion"), "runtime info body: {body}");
}

/// Threads of this process whose name starts with `rocketmq-health`
/// (Linux truncates names to 15 bytes: exactly `rocketmq-health`).
fn health_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task (Linux)")
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim_end().starts_with("rocketmq-health"))
        .count()
}

/// Runs `tests/broker/rocketmq.sh` from the repository root.
fn run_harness(args: &[&str]) -> bool {
    let root = env!("CARGO_MANIFEST_DIR");
    std::process::Command::new("bash")
        .arg(format!("{root}/tests/broker/rocketmq.sh"))
        .args(args)
        .current_dir(root)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Starts a stopped broker again when dropped, so a failing test does not
/// leave it down. Does not panic while the thread unwinds already.
struct RestartBroker {
    name: &'static str,
    armed: bool,
}

impl RestartBroker {
    fn restart_now(mut self) {
        self.armed = false;
        assert!(run_harness(&["start-broker", self.name]), "start-broker {} failed", self.name);
    }
}

impl Drop for RestartBroker {
    fn drop(&mut self) {
        if self.armed && !run_harness(&["start-broker", self.name]) {
            if thread::panicking() {
                eprintln!("start-broker {} failed; start it by hand", self.name);
            } else {
                panic!("start-broker {} failed", self.name);
            }
        }
    }
}

#[test]
fn pool_waits_times_out_and_hands_a_returned_connection_to_a_waiter() {
    let addr = broker_addr("broker-a");
    let pool = Arc::new(BrokerConnectionPool::new(&addr, &client_config(), 2).unwrap());
    let mut first = pool.get(Duration::from_secs(5)).unwrap();
    let mut second = pool.get(Duration::from_secs(5)).unwrap();
    assert_runtime_info(&runtime_info(&mut first).unwrap());
    assert_runtime_info(&runtime_info(&mut second).unwrap());

    let started = Instant::now();
    match pool.get(Duration::from_millis(300)) {
        Err(Error::PoolTimeout { addr: a, timeout }) => {
            assert_eq!(a, addr);
            assert_eq!(timeout, Duration::from_millis(300));
        }
        other => panic!("a third checkout from a pool of 2 should time out, got {other:?}"),
    }
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(300) && waited < Duration::from_secs(2), "waited {waited:?}");

    // A waiter with a long timeout gets the connection as soon as one comes back.
    let waiter_pool = Arc::clone(&pool);
    let waiter = thread::spawn(move || {
        let result = waiter_pool.get(Duration::from_secs(20)).map(|mut c| runtime_info(&mut c));
        (result, Instant::now())
    });
    wait_for(Duration::from_secs(10), "the waiter to block", || (pool.stats().waits == 2).then_some(()));
    assert!(!waiter.is_finished(), "the waiter should be blocked while both connections are out");
    let released = Instant::now();
    drop(first);
    let (result, got_it) = waiter.join().unwrap();
    assert_runtime_info(&result.expect("checkout").expect("request"));
    let lag = got_it.duration_since(released);
    assert!(lag < Duration::from_secs(1), "the waiter got the connection {lag:?} after the release");

    let s = pool.stats();
    assert_eq!((s.created, s.waits, s.active, s.idle, s.discarded), (2, 2, 1, 1, 0), "{s:?}");
    assert!(s.total_wait >= Duration::from_millis(300), "{s:?}");
    assert_eq!(s.max_active, 2);
    let r = pool.request_stats();
    assert_eq!((r.total, r.successes, r.failures), (3, 3, 0));
    drop(second);
    assert_eq!(pool.stats().idle, 2);
}

#[test]
fn a_guard_dropped_by_a_panic_gives_its_connection_back() {
    let addr = broker_addr("broker-a");
    let m = Arc::new(manager(1));
    assert!(m.add_broker(&addr, Some("broker-a")).unwrap());
    {
        let mut conn = m.connection(&addr).unwrap();
        assert_runtime_info(&runtime_info(&mut conn).unwrap());
    }
    let pool = m.connection_pool(&addr).unwrap();
    assert_eq!((pool.stats().idle, pool.stats().created), (1, 1));

    let (m2, addr2) = (Arc::clone(&m), addr.clone());
    let outcome = thread::spawn(move || {
        catch_unwind(AssertUnwindSafe(|| {
            let mut conn = m2.connection(&addr2).unwrap();
            assert_runtime_info(&runtime_info(&mut conn).unwrap());
            panic!("the holder panics with the connection out");
        }))
    })
    .join()
    .expect("the panic is caught inside the thread");
    assert!(outcome.is_err(), "the closure panicked");

    let s = pool.stats();
    assert_eq!((s.active, s.idle, s.created, s.discarded), (0, 1, 1, 0), "{s:?}");
    // The same connection is lent again, at once.
    let mut conn = m.connection_pool(&addr).unwrap().get(Duration::ZERO).unwrap();
    assert_runtime_info(&runtime_info(&mut conn).unwrap());
    drop(conn);
    assert_eq!(pool.stats().created, 1);
    assert_eq!(pool.request_stats().successes, 3);
}

#[test]
fn request_statistics_count_what_the_test_did() {
    let addr = broker_addr("broker-a");
    let m = manager(5);
    m.add_broker(&addr, None).unwrap();
    assert_eq!(m.broker_state(&addr), Some(BrokerState::Unknown));
    const K: u64 = 7;
    for _ in 0..K {
        let mut conn = m.connection(&addr).unwrap();
        assert_runtime_info(&runtime_info(&mut conn).unwrap());
    }
    let info = m.broker_stats(&addr).unwrap();
    assert_eq!(info.name, "127.0.0.1");
    assert_eq!((info.requests.total, info.requests.successes, info.requests.failures), (K, K, 0));
    assert_eq!(info.requests.success_rate(), Some(1.0));
    let avg = info.requests.average_latency().unwrap();
    assert!(avg > Duration::ZERO && avg < Duration::from_secs(5), "{avg:?}");
    assert_eq!(info.state, BrokerState::Healthy, "successful requests make an unknown broker healthy");
    assert_eq!((info.checks, info.last_check), (0, None), "no health thread runs");
    assert_eq!((info.connections.created, info.connections.total(), info.connections.idle), (1, 1, 1));
    assert_eq!(m.healthy_brokers(), vec![addr.clone()]);

    // The broker answers with an error: a failed request, but not a broker failure.
    let queue = MessageQueue::new(unique("no_such_topic"), "broker-a", 0);
    let result = m.connection(&addr).unwrap().call(|c| c.pull(&PullRequest::new(unique("g"), queue, 0)));
    assert!(matches!(result, Err(Error::TopicNotFound { .. })), "{result:?}");
    let info = m.broker_stats(&addr).unwrap();
    assert_eq!((info.requests.total, info.requests.successes, info.requests.failures), (K + 1, K, 1));
    assert_eq!((info.state, info.consecutive_failures), (BrokerState::Healthy, 0));
    assert_eq!((info.connections.idle, info.connections.discarded), (1, 0), "the connection is kept");

    // A connection error recorded by hand: counts against the broker, and
    // the connection is closed instead of given back.
    let mut conn = m.get_connection(&addr).unwrap();
    let timeout = Error::Timeout { operation: "test", addr: addr.clone(), timeout: Duration::from_millis(1) };
    conn.record::<()>(&Err(timeout), Duration::from_millis(1));
    assert!(conn.is_broken());
    m.release_connection(conn);
    let info = m.broker_stats(&addr).unwrap();
    assert_eq!((info.requests.total, info.requests.failures), (K + 2, 2));
    assert_eq!((info.state, info.consecutive_failures), (BrokerState::Unhealthy, 1));
    assert_eq!((info.connections.idle, info.connections.discarded), (0, 1));
    assert!(m.healthy_brokers().is_empty());

    let mut conn = m.connection(&addr).unwrap();
    assert_runtime_info(&runtime_info(&mut conn).unwrap());
    drop(conn);
    let info = m.broker_stats(&addr).unwrap();
    assert_eq!((info.state, info.consecutive_failures, info.requests.successes), (BrokerState::Healthy, 0, K + 1));
    assert_eq!(info.connections.created, 2);
}

#[test]
fn sixteen_threads_share_five_connections() {
    let addr = broker_addr("broker-a");
    let topic = unique("mgr_concurrent");
    create_topic_on("broker-a", &topic, 1);
    let queue = MessageQueue::new(&topic, "broker-a", 0);
    let m = Arc::new(manager(5));
    m.add_broker(&addr, Some("broker-a")).unwrap();

    const SENT: i64 = 3;
    let group = unique("mgr_producer");
    for i in 0..SENT {
        let msg = Message::new(&topic, format!("message {i}"));
        let sent = m.connection(&addr).unwrap().call(|c| c.send(&group, &queue, &msg)).unwrap();
        assert_eq!(sent.queue_offset, i);
    }
    // The consume queue is built shortly after the send returns.
    wait_for(Duration::from_secs(10), "max offset 3", || {
        (m.connection(&addr).unwrap().call(|c| c.max_offset(&queue)).unwrap() == SENT).then_some(())
    });
    let before = m.broker_stats(&addr).unwrap().requests;

    const THREADS: usize = 16;
    const PER_THREAD: usize = 500;
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let (m, addr, queue) = (Arc::clone(&m), addr.clone(), queue.clone());
            thread::spawn(move || {
                let mut offsets = Vec::with_capacity(PER_THREAD);
                for _ in 0..PER_THREAD {
                    let mut conn = m.connection(&addr).expect("checkout");
                    offsets.push(conn.call(|c| c.max_offset(&queue)).expect("max offset"));
                }
                offsets
            })
        })
        .collect();
    for w in workers {
        let offsets = w.join().expect("worker");
        assert_eq!(offsets.len(), PER_THREAD);
        assert!(offsets.iter().all(|&o| o == SENT), "every answer is the queue's max offset {SENT}");
    }

    let info = m.broker_stats(&addr).unwrap();
    let n = (THREADS * PER_THREAD) as u64;
    assert_eq!(info.requests.total - before.total, n);
    assert_eq!(info.requests.successes - before.successes, n);
    assert_eq!(info.requests.failures, 0);
    let c = info.connections;
    assert!(c.created <= 5, "opened {} connections for a pool of 5", c.created);
    assert!(c.max_active <= 5, "{} connections were out at once", c.max_active);
    assert!(c.total() <= 5 && c.active == 0, "{c:?}");
    assert_eq!(c.discarded, 0, "{c:?}");
}

#[test]
fn shutdown_mid_interval_is_quick_and_leaves_no_thread() {
    let _one_manager_at_a_time = health_lock();
    let addr = broker_addr("broker-a");
    assert_eq!(health_threads(), 0, "no health thread runs before the test");
    let config = BrokerManagerConfig::builder()
        .health_check_interval(Duration::from_secs(30))
        .client_config(client_config())
        .build()
        .unwrap();
    let m = BrokerManager::new(config.clone());
    m.add_broker(&addr, None).unwrap();
    m.start().unwrap();
    m.start().unwrap(); // a second start does nothing
                        // The first round checks at once; the thread then waits 30 s.
    let info =
        wait_for(Duration::from_secs(10), "the first health check", || m.broker_stats(&addr).filter(|i| i.checks == 1));
    assert_eq!(health_threads(), 1);
    assert_eq!(info.state, BrokerState::Healthy, "{info:?}");
    assert_eq!(info.last_check_error, None);
    assert!(info.last_check.is_some() && info.last_check_latency.is_some());
    assert_eq!(info.requests.total, 0, "health checks are not counted as requests");
    assert_eq!((info.connections.created, info.connections.idle), (1, 1), "the check's connection is kept");
    assert_eq!(m.healthy_brokers(), vec![addr.clone()]);

    let started = Instant::now();
    m.shutdown();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "shutdown took {took:?}");
    assert_eq!(health_threads(), 0, "the health thread is gone after shutdown");
    assert!(!m.is_running());
    assert!(matches!(m.connection(&addr), Err(Error::NotRunning(_))));
    assert!(matches!(m.start(), Err(Error::NotRunning(_))));
    m.shutdown(); // a second shutdown does nothing

    // Dropping a running manager stops its thread the same way.
    let m = BrokerManager::new(config);
    m.add_broker(&addr, None).unwrap();
    m.start().unwrap();
    wait_for(Duration::from_secs(10), "the first health check", || m.broker_stats(&addr).filter(|i| i.checks == 1));
    let started = Instant::now();
    drop(m);
    assert!(started.elapsed() < Duration::from_secs(1), "drop took {:?}", started.elapsed());
    assert_eq!(health_threads(), 0);
}

#[test]
fn remove_broker_fails_its_waiters() {
    let addr = broker_addr("broker-a");
    let m = Arc::new(manager(1));
    m.add_broker(&addr, None).unwrap();
    let mut held = m.connection(&addr).unwrap();
    assert_runtime_info(&runtime_info(&mut held).unwrap());
    let pool = m.connection_pool(&addr).unwrap();
    let (m2, addr2) = (Arc::clone(&m), addr.clone());
    let waiter = thread::spawn(move || {
        let started = Instant::now();
        (m2.connection(&addr2).map(drop), started.elapsed())
    });
    wait_for(Duration::from_secs(10), "the waiter to block", || (pool.stats().waits == 1).then_some(()));
    assert!(m.remove_broker(&addr));
    let (result, waited) = waiter.join().unwrap();
    assert!(matches!(&result, Err(Error::PoolClosed { addr: a }) if *a == addr), "{result:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    assert!(!held.is_connected(), "removing the broker closes lent connections too");
    drop(held);
    assert_eq!((pool.stats().active, pool.stats().idle), (0, 0));
    assert!(matches!(m.connection(&addr), Err(Error::UnknownBroker { .. })));
    assert!(m.connection_pool(&addr).is_none());
    assert!(m.all_brokers_stats().is_empty());
}

/// The only test in this file that stops a broker (broker-b).
#[test]
fn killed_broker_fails_and_recovers() {
    let _one_manager_at_a_time = health_lock();
    let (a, b) = (broker_addr("broker-a"), broker_addr("broker-b"));
    const INTERVAL: Duration = Duration::from_millis(300);
    const CHECK_TIMEOUT: Duration = Duration::from_secs(1);
    const MAX_FAILURES: u32 = 3;
    let config = BrokerManagerConfig::builder()
        .health_check_interval(INTERVAL)
        .check_timeout(CHECK_TIMEOUT)
        .max_consecutive_failures(MAX_FAILURES)
        .pool_size(2)
        .checkout_timeout(Duration::from_secs(5))
        .client_config(client_config())
        .build()
        .unwrap();
    let m = Arc::new(BrokerManager::new(config));
    m.add_broker(&a, Some("broker-a")).unwrap();
    m.add_broker(&b, Some("broker-b")).unwrap();
    m.start().unwrap();
    let mut both = vec![a.clone(), b.clone()];
    both.sort();
    wait_for(Duration::from_secs(30), "both brokers healthy", || (m.healthy_brokers() == both).then_some(()));

    let mut held = m.connection(&b).unwrap();
    assert_runtime_info(&runtime_info(&mut held).unwrap());
    let before = m.broker_stats(&b).unwrap().connections;

    // Record every state broker-b goes through.
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (m, b, stop) = (Arc::clone(&m), b.clone(), Arc::clone(&stop));
        thread::spawn(move || {
            let mut seen = vec![m.broker_state(&b).expect("managed")];
            while !stop.load(Ordering::SeqCst) {
                if let Some(s) = m.broker_state(&b) {
                    if seen.last() != Some(&s) {
                        seen.push(s);
                    }
                }
                thread::sleep(Duration::from_millis(5));
            }
            // One last look: the main thread may have seen a state (and
            // stopped the sampler) between two samples.
            if let Some(s) = m.broker_state(&b) {
                if seen.last() != Some(&s) {
                    seen.push(s);
                }
            }
            seen
        })
    };

    let restart = RestartBroker { name: "broker-b", armed: true };
    // The bound below is measured from the kill (`kill -9`), script time included.
    let killed = Instant::now();
    assert!(run_harness(&["stop-broker", "broker-b"]), "stop-broker broker-b failed");

    // The lent connection sees the broker go away and is discarded on return.
    wait_for(Duration::from_secs(10), "the held connection to close", || (!held.is_connected()).then_some(()));
    let result = runtime_info(&mut held);
    assert!(result.as_ref().is_err_and(Error::is_connection), "{result:?}");
    assert!(held.is_broken());
    drop(held);
    let after = m.broker_stats(&b).unwrap().connections;
    assert!(after.discarded > before.discarded, "before {before:?}, after {after:?}");
    // An idle connection the peer closed is dropped at the next checkout
    // (the health thread's, within one interval).
    wait_for(Duration::from_secs(5), "no idle connection to the dead broker", || {
        let c = m.broker_stats(&b).unwrap().connections;
        (c.idle == 0 && c.active == 0).then_some(())
    });

    // FAILED within max failures × interval + check timeout (+ margin).
    let limit = INTERVAL * MAX_FAILURES + CHECK_TIMEOUT + Duration::from_secs(2);
    wait_for(limit.saturating_sub(killed.elapsed()), "broker-b to be FAILED", || {
        (m.broker_state(&b) == Some(BrokerState::Failed)).then_some(())
    });
    let took = killed.elapsed();
    eprintln!("broker-b FAILED {took:?} after the kill started (limit {limit:?})");
    assert!(took < limit, "FAILED after {took:?}, limit {limit:?}");
    assert_eq!(m.healthy_brokers(), vec![a.clone()]);
    let info = m.broker_stats(&b).unwrap();
    assert!(info.consecutive_failures >= MAX_FAILURES, "{info:?}");
    assert!(info.last_check_error.is_some(), "{info:?}");
    let refused = m.connection(&b);
    assert!(matches!(refused, Err(Error::Connect { .. })), "{refused:?}");
    assert_eq!(m.broker_state(&b), Some(BrokerState::Failed));

    restart.restart_now();
    wait_for(Duration::from_secs(120), "broker-b to be HEALTHY again", || {
        (m.broker_state(&b) == Some(BrokerState::Healthy)).then_some(())
    });
    stop.store(true, Ordering::SeqCst);
    let seen = sampler.join().unwrap();
    eprintln!("broker-b went through {seen:?}");
    let failed = seen.iter().position(|s| *s == BrokerState::Failed).expect("FAILED observed");
    let recovering = seen.iter().rposition(|s| *s == BrokerState::Recovering).expect("RECOVERING observed");
    assert!(failed < recovering, "{seen:?}");
    assert_eq!(seen.last(), Some(&BrokerState::Healthy), "{seen:?}");
    assert!(
        !seen[failed..recovering].contains(&BrokerState::Healthy),
        "a failed broker is not HEALTHY before RECOVERING: {seen:?}"
    );

    // The pool serves new, working connections.
    let mut conn = m.connection(&b).unwrap();
    assert_runtime_info(&runtime_info(&mut conn).unwrap());
    drop(conn);
    let info = m.broker_stats(&b).unwrap();
    assert!(info.connections.created > before.created, "{info:?}");
    assert_eq!(m.healthy_brokers(), both);
    m.shutdown();
}
