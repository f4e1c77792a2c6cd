//! Several requests on several connections at once, with one deadline for
//! all of them: what a consumer needs to heartbeat, persist offsets and
//! unregister on many brokers without waiting for them one after another.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::connection::{Connection, ResponseCallback};
use crate::error::{Error, Result};
use crate::protocol::{codes::request_name, RemotingCommand};
use crate::threads::lock;

struct Slots {
    results: Mutex<Vec<Option<Result<RemotingCommand>>>>,
    cond: Condvar,
}

/// Sends every request at once and waits until all are answered or
/// `timeout` has passed; the result `i` belongs to `calls[i]`, a request
/// still unanswered at the deadline gets [`Error::Timeout`]. No thread is
/// started: the responses arrive on the connections' reader threads.
pub(crate) fn invoke_all(
    calls: Vec<(&Connection, RemotingCommand)>,
    timeout: Duration,
) -> Vec<Result<RemotingCommand>> {
    let deadline = Instant::now() + timeout;
    let slots = Arc::new(Slots { results: Mutex::new((0..calls.len()).map(|_| None).collect()), cond: Condvar::new() });
    let mut sent = Vec::with_capacity(calls.len());
    for (i, (conn, cmd)) in calls.into_iter().enumerate() {
        let code = cmd.code;
        let s = Arc::clone(&slots);
        let done: ResponseCallback = Box::new(move |r| {
            lock(&s.results)[i] = Some(r);
            s.cond.notify_all();
        });
        match conn.invoke_async(cmd, done) {
            Ok(opaque) => sent.push((i, conn, opaque, code)),
            Err(e) => lock(&slots.results)[i] = Some(Err(e)),
        }
    }
    let mut results = lock(&slots.results);
    while results.iter().any(Option::is_none) {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        results = slots.cond.wait_timeout(results, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
    }
    drop(results);
    for (i, conn, opaque, code) in sent {
        if conn.cancel(opaque) {
            let e = Error::Timeout { operation: request_name(code), addr: conn.addr().to_string(), timeout };
            lock(&slots.results)[i] = Some(Err(e));
        }
    }
    // A callback that was running when its request was cancelled stores its
    // result right away.
    let mut results = lock(&slots.results);
    while results.iter().any(Option::is_none) {
        results = slots.cond.wait_timeout(results, Duration::from_millis(10)).unwrap_or_else(|p| p.into_inner()).0;
    }
    results.drain(..).map(|r| r.unwrap_or(Err(Error::NotRunning("request")))).collect()
}
