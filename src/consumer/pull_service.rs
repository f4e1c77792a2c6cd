//! The consumer's pull threads: a fixed number of `rocketmq-pull-<n>`
//! threads ([`ConsumerConfig::pull_threads`](super::ConsumerConfig::pull_threads))
//! serve every queue the consumer holds, however many the route announces.
//!
//! A pull is sent without waiting ([`Connection::invoke_async`]): a long
//! poll parks at the broker, not on a thread. Its answer arrives on the
//! connection's reader thread, which only queues it; a pull thread then
//! decodes it and asks the owner (push or lite pull consumer) what to do and
//! when to pull that queue again. Each queue has at most one pull scheduled
//! or in flight, so every table here is bounded by the queues held (and
//! those by the route limits). What is sent is a [`Fetch`]: PULL_MESSAGE
//! for the push and lite pull consumers, POP_MESSAGE for the pop consumer.
//!
//! [`Connection::invoke_async`]: crate::net::Connection::invoke_async

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::spawn;
use crate::broker::{BrokerClient, PullRequest, PullResult};
use crate::error::{Error, Result};
use crate::protocol::RemotingCommand;
use crate::threads::lock;

/// Longest a pull thread sleeps without looking at its clock again.
const MAX_IDLE: Duration = Duration::from_secs(1);

/// What the pull threads send: pulls ([`Pulls`]) or pops (the pop consumer's).
pub(crate) trait Fetch: Send + Sync + 'static {
    /// The request.
    type Request: Send + 'static;
    /// Its decoded answer.
    type Reply;
    /// Name of the operation in timeout errors.
    const OPERATION: &'static str;
    /// The request's command and how long to wait for its answer.
    fn command(client: &BrokerClient, req: &Self::Request) -> Result<(RemotingCommand, Duration)>;
    /// Decodes the answer.
    fn reply(client: &BrokerClient, req: &Self::Request, resp: RemotingCommand) -> Result<Self::Reply>;
}

/// PULL_MESSAGE, what both pull-based consumers send.
pub(crate) struct Pulls;

impl Fetch for Pulls {
    type Request = PullRequest;
    type Reply = PullResult;
    const OPERATION: &'static str = "pull message";
    fn command(client: &BrokerClient, req: &PullRequest) -> Result<(RemotingCommand, Duration)> {
        client.pull_command(req)
    }
    fn reply(client: &BrokerClient, req: &PullRequest, resp: RemotingCommand) -> Result<PullResult> {
        client.pull_result(req, resp)
    }
}

/// What to do next with a queue.
pub(crate) enum Next<R = PullRequest> {
    /// Send this pull to this broker.
    Pull(R, Arc<BrokerClient>),
    /// Look again after this long (flow control, paused, broker unknown).
    Wait(Duration),
    /// Nothing now: the queue was dropped, or the consumer's background
    /// thread reschedules it (after locking it or finding its start offset).
    Idle,
}

/// The consumer side of the pull threads.
pub(crate) trait Puller<K: Fetch = Pulls>: Send + Sync + 'static {
    /// A queue as the owner knows it.
    type Queue: Clone + Send + 'static;
    /// What to do next for `q`.
    fn next_pull(&self, q: &Self::Queue) -> Next<K::Request>;
    /// A pull of `q` ended; `elapsed` is how long the broker took. Returns
    /// when to pull the queue again, `None` for not at all.
    fn pulled(
        &self,
        q: &Self::Queue,
        req: &K::Request,
        result: Result<K::Reply>,
        elapsed: Duration,
    ) -> Option<Duration>;
}

struct InFlight<Q, R> {
    q: Q,
    req: R,
    client: Arc<BrokerClient>,
    /// Set once the request is written (0 before).
    opaque: i32,
    sent: Instant,
    timeout: Duration,
}

struct State<Q, R> {
    stopped: bool,
    seq: u64,
    /// Queues waiting for their next pull, by due time.
    due: BinaryHeap<Reverse<(Instant, u64)>>,
    scheduled: HashMap<u64, Q>,
    /// Pulls sent and not yet answered, with their deadlines.
    inflight: HashMap<u64, InFlight<Q, R>>,
    deadlines: BinaryHeap<Reverse<(Instant, u64)>>,
    /// Answers queued by the reader threads.
    answered: VecDeque<(u64, Result<RemotingCommand>)>,
}

struct Shared<Q, R> {
    state: Mutex<State<Q, R>>,
    cond: Condvar,
}

/// The pull threads of one consumer and their schedule.
pub(crate) struct PullService<Q, K: Fetch = Pulls> {
    shared: Arc<Shared<Q, K::Request>>,
}

impl<Q: Clone + Send + 'static, K: Fetch> PullService<Q, K> {
    pub fn new() -> Self {
        let state = State {
            stopped: false,
            seq: 0,
            due: BinaryHeap::new(),
            scheduled: HashMap::new(),
            inflight: HashMap::new(),
            deadlines: BinaryHeap::new(),
            answered: VecDeque::new(),
        };
        PullService { shared: Arc::new(Shared { state: Mutex::new(state), cond: Condvar::new() }) }
    }

    /// Starts `threads` pull threads working for `owner`.
    pub fn start<P: Puller<K, Queue = Q>>(&self, owner: Arc<P>, threads: usize) -> Result<Vec<JoinHandle<()>>> {
        let mut handles = Vec::with_capacity(threads);
        for _ in 0..threads {
            let (shared, owner) = (Arc::clone(&self.shared), Arc::clone(&owner));
            match spawn("pull", move || run::<Q, K, P>(&shared, &*owner)) {
                Ok(h) => handles.push(h),
                Err(e) => {
                    self.stop();
                    crate::threads::join_until(handles, Instant::now() + Duration::from_secs(1));
                    return Err(e);
                }
            }
        }
        Ok(handles)
    }

    /// Pulls `q` after `delay`.
    pub fn schedule(&self, q: Q, delay: Duration) {
        schedule(&self.shared, q, delay);
    }

    /// Stops the threads (they end within moments) and forgets the schedule;
    /// answers still to come are ignored.
    pub fn stop(&self) {
        let mut st = lock(&self.shared.state);
        st.stopped = true;
        st.due.clear();
        st.scheduled.clear();
        st.inflight.clear();
        st.deadlines.clear();
        st.answered.clear();
        drop(st);
        self.shared.cond.notify_all();
    }
}

fn schedule<Q, R>(shared: &Shared<Q, R>, q: Q, delay: Duration) {
    let mut st = lock(&shared.state);
    if st.stopped {
        return;
    }
    st.seq += 1;
    let id = st.seq;
    st.due.push(Reverse((Instant::now() + delay, id)));
    st.scheduled.insert(id, q);
    drop(st);
    shared.cond.notify_one();
}

/// One unit of work for a pull thread.
enum Work<Q, R> {
    Answer(Box<InFlight<Q, R>>, Result<RemotingCommand>),
    Send(Q),
}

fn run<Q: Clone + Send + 'static, K: Fetch, P: Puller<K, Queue = Q>>(shared: &Arc<Shared<Q, K::Request>>, owner: &P) {
    while let Some(work) = take::<Q, K>(shared) {
        match work {
            Work::Answer(f, answer) => {
                let elapsed = f.sent.elapsed();
                let result = answer.and_then(|resp| K::reply(&f.client, &f.req, resp));
                if let Some(delay) = owner.pulled(&f.q, &f.req, result, elapsed) {
                    schedule(shared, f.q, delay);
                }
            }
            Work::Send(q) => match owner.next_pull(&q) {
                Next::Pull(req, client) => send::<Q, K, P>(shared, owner, q, req, client),
                Next::Wait(delay) => schedule(shared, q, delay),
                Next::Idle => {}
            },
        }
    }
}

/// Waits for the next answer, timed-out pull or due queue; `None` once stopped.
fn take<Q, K: Fetch>(shared: &Shared<Q, K::Request>) -> Option<Work<Q, K::Request>> {
    let mut st = lock(&shared.state);
    loop {
        if st.stopped {
            return None;
        }
        while let Some((id, answer)) = st.answered.pop_front() {
            if let Some(f) = st.inflight.remove(&id) {
                return Some(Work::Answer(Box::new(f), answer));
            }
        }
        let now = Instant::now();
        while let Some(&Reverse((at, id))) = st.deadlines.peek() {
            if at > now {
                break;
            }
            st.deadlines.pop();
            let Some(f) = st.inflight.get(&id) else { continue };
            // Cancelled here means its answer will never come; otherwise it
            // is queued (or being queued) in `answered`.
            if f.opaque != 0 && f.client.connection().cancel(f.opaque) {
                if let Some(f) = st.inflight.remove(&id) {
                    let e = Error::Timeout {
                        operation: K::OPERATION,
                        addr: f.client.addr().to_string(),
                        timeout: f.timeout,
                    };
                    return Some(Work::Answer(Box::new(f), Err(e)));
                }
            } else if f.opaque == 0 {
                // Not written yet: look again shortly.
                st.deadlines.push(Reverse((now + Duration::from_millis(10), id)));
                break;
            }
        }
        if let Some(&Reverse((at, id))) = st.due.peek() {
            if at <= now {
                st.due.pop();
                if let Some(q) = st.scheduled.remove(&id) {
                    return Some(Work::Send(q));
                }
                continue;
            }
        }
        let next_due = st.due.peek().map(|Reverse((at, _))| *at);
        let next_deadline = st.deadlines.peek().map(|Reverse((at, _))| *at);
        let wake = [next_due, next_deadline].into_iter().flatten().min().unwrap_or(now + MAX_IDLE).min(now + MAX_IDLE);
        st = shared.cond.wait_timeout(st, wake.saturating_duration_since(now)).unwrap_or_else(|p| p.into_inner()).0;
    }
}

/// Sends a pull without waiting for its answer.
fn send<Q: Clone + Send + 'static, K: Fetch, P: Puller<K, Queue = Q>>(
    shared: &Arc<Shared<Q, K::Request>>,
    owner: &P,
    q: Q,
    req: K::Request,
    client: Arc<BrokerClient>,
) {
    let (cmd, timeout) = match K::command(&client, &req) {
        Ok(x) => x,
        Err(e) => {
            if let Some(delay) = owner.pulled(&q, &req, Err(e), Duration::ZERO) {
                schedule(shared, q, delay);
            }
            return;
        }
    };
    let id = {
        let mut st = lock(&shared.state);
        if st.stopped {
            return;
        }
        st.seq += 1;
        let id = st.seq;
        let f = InFlight { q, req, client: Arc::clone(&client), opaque: 0, sent: Instant::now(), timeout };
        st.inflight.insert(id, f);
        st.deadlines.push(Reverse((Instant::now() + timeout, id)));
        id
    };
    // The answer may come (or the connection fail) before this returns.
    let weak: Weak<Shared<Q, K::Request>> = Arc::downgrade(shared);
    let done = Box::new(move |answer: Result<RemotingCommand>| {
        if let Some(shared) = weak.upgrade() {
            lock(&shared.state).answered.push_back((id, answer));
            shared.cond.notify_one();
        }
    });
    let sent = client.connection().invoke_async(cmd, done);
    let mut st = lock(&shared.state);
    match sent {
        Ok(opaque) => {
            if let Some(f) = st.inflight.get_mut(&id) {
                f.opaque = opaque;
            }
        }
        Err(e) => {
            let Some(f) = st.inflight.remove(&id) else { return };
            drop(st);
            if let Some(delay) = owner.pulled(&f.q, &f.req, Err(e), Duration::ZERO) {
                schedule(shared, f.q, delay);
            }
        }
    }
}

/// When to pull again after an answer without messages: at once after a
/// long poll or when the offset moved on; after `error_delay` when the
/// broker answered "nothing" at once without moving (a broken or
/// misconfigured queue must not be pulled in a loop).
pub(crate) fn empty_pull_delay(
    req: &PullRequest,
    r: &PullResult,
    elapsed: Duration,
    error_delay: Duration,
) -> Duration {
    let long_poll = req.suspend.map_or(Duration::ZERO, |s| s / 2);
    if r.next_begin_offset == req.offset && elapsed < long_poll {
        error_delay
    } else {
        Duration::ZERO
    }
}
