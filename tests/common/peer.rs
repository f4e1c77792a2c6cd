//! A scripted fake peer (name server or broker) for the hostile-peer tests:
//! what a real broker cannot be made to send. It never counts as proof that a
//! feature works; those tests run against the real brokers.
//!
//! ```ignore
//! let peer = FakePeer::start(|req: &RemotingCommand| match req.code {
//!     request::GET_ROUTEINFO_BY_TOPIC => Reply::ok_body(req, huge_route_json()),
//!     _ => Reply::Silence,
//! });
//! let addr = peer.addr();
//! ```
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rocketmq_blocking::protocol::{decode_frame, RemotingCommand, ResponseCode, DEFAULT_MAX_FRAME_SIZE};

/// What the fake peer does with one request.
pub enum Reply {
    /// Answers with this command (opaque and response flag are set for you).
    Respond(RemotingCommand),
    /// Writes these bytes as they are (a broken or hostile frame).
    Raw(Vec<u8>),
    /// Writes these bytes, then stays silent on this connection for good.
    RawThenStall(Vec<u8>),
    /// Answers nothing.
    Silence,
    /// Closes the connection.
    Close,
    /// Answers with this command, then writes `frame` `count` times on the
    /// same connection (a flood of broker-initiated requests).
    RespondThenFlood(RemotingCommand, Vec<u8>, usize),
    /// Waits this long, then answers with the command (a slow peer).
    Delayed(Duration, RemotingCommand),
}

impl Reply {
    /// A SUCCESS response to `req` with `body`.
    pub fn ok_body(req: &RemotingCommand, body: impl Into<Vec<u8>>) -> Reply {
        Reply::Respond(RemotingCommand::response_to(req, ResponseCode::Success, None).with_body(body.into()))
    }
    /// A response to `req` with `code` and no body.
    pub fn code(req: &RemotingCommand, code: ResponseCode) -> Reply {
        Reply::Respond(RemotingCommand::response_to(req, code, None))
    }
}

type Script = Arc<dyn Fn(&RemotingCommand) -> Reply + Send + Sync>;

struct State {
    stop: AtomicBool,
    requests: AtomicUsize,
    /// Frames written by [`Reply::RespondThenFlood`].
    pushed: AtomicUsize,
    /// Per request code, how many arrived.
    codes: Mutex<Vec<i32>>,
    streams: Mutex<Vec<TcpStream>>,
}

/// A local TCP listener answering every request with a script. Dropping it
/// closes the listener and every connection and joins its threads.
pub struct FakePeer {
    addr: String,
    state: Arc<State>,
    acceptor: Option<JoinHandle<()>>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl FakePeer {
    /// Starts on 127.0.0.1 with an ephemeral port.
    pub fn start(script: impl Fn(&RemotingCommand) -> Reply + Send + Sync + 'static) -> FakePeer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake peer");
        let addr = listener.local_addr().unwrap().to_string();
        listener.set_nonblocking(true).unwrap();
        let state = Arc::new(State {
            stop: AtomicBool::new(false),
            requests: AtomicUsize::new(0),
            pushed: AtomicUsize::new(0),
            codes: Mutex::new(Vec::new()),
            streams: Mutex::new(Vec::new()),
        });
        let script: Script = Arc::new(script);
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (st, cs) = (Arc::clone(&state), Arc::clone(&conns));
        let acceptor = std::thread::Builder::new()
            .name("fakepeer-accept".into())
            .spawn(move || {
                while !st.stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((s, _)) => {
                            s.set_nonblocking(false).unwrap();
                            st.streams.lock().unwrap().push(s.try_clone().unwrap());
                            let (st2, sc) = (Arc::clone(&st), Arc::clone(&script));
                            let h = std::thread::Builder::new()
                                .name("fakepeer-conn".into())
                                .spawn(move || serve(s, st2, sc))
                                .unwrap();
                            cs.lock().unwrap().push(h);
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
            .unwrap();
        FakePeer { addr, state, acceptor: Some(acceptor), conns }
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        self.addr.clone()
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Frames written so far by [`Reply::RespondThenFlood`].
    pub fn pushed(&self) -> usize {
        self.state.pushed.load(Ordering::SeqCst)
    }

    /// How many requests with `code` arrived.
    pub fn count(&self, code: i32) -> usize {
        self.state.codes.lock().unwrap().iter().filter(|c| **c == code).count()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.state.streams.lock().unwrap().len()
    }
}

impl Drop for FakePeer {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        for s in self.state.streams.lock().unwrap().iter() {
            let _ = s.shutdown(Shutdown::Both);
        }
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
        for h in self.conns.lock().unwrap().drain(..) {
            let _ = h.join();
        }
    }
}

fn serve(mut s: TcpStream, st: Arc<State>, script: Script) {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        loop {
            let (cmd, used) = match decode_frame(&buf, DEFAULT_MAX_FRAME_SIZE) {
                Ok(Some(x)) => x,
                Ok(None) => break,
                Err(_) => return,
            };
            buf.drain(..used);
            st.requests.fetch_add(1, Ordering::SeqCst);
            st.codes.lock().unwrap().push(cmd.code);
            if cmd.is_response() {
                continue;
            }
            let respond = |s: &mut TcpStream, mut r: RemotingCommand| {
                r.opaque = cmd.opaque;
                r.flag |= 1;
                if cmd.is_oneway() {
                    Ok(())
                } else {
                    s.write_all(&r.encode())
                }
            };
            let written = match script(&cmd) {
                Reply::Respond(r) => respond(&mut s, r),
                Reply::Delayed(wait, r) => {
                    // Wait in small steps so that Drop is not held up.
                    let until = Instant::now() + wait;
                    while Instant::now() < until && !st.stop.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    respond(&mut s, r)
                }
                Reply::RespondThenFlood(r, frame, count) => {
                    let mut result = respond(&mut s, r);
                    for _ in 0..count {
                        if result.is_err() || st.stop.load(Ordering::SeqCst) {
                            break;
                        }
                        result = s.write_all(&frame);
                        st.pushed.fetch_add(1, Ordering::SeqCst);
                    }
                    result
                }
                Reply::Raw(bytes) => s.write_all(&bytes),
                Reply::RawThenStall(bytes) => {
                    let _ = s.write_all(&bytes);
                    // Read and ignore everything until the client or Drop closes it.
                    while !st.stop.load(Ordering::SeqCst) {
                        match s.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                    }
                    return;
                }
                Reply::Silence => Ok(()),
                Reply::Close => {
                    let _ = s.shutdown(Shutdown::Both);
                    return;
                }
            };
            if written.is_err() {
                return;
            }
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// The process's peak resident set (VmHWM) in KiB, Linux only (0 elsewhere).
pub fn peak_rss_kib() -> u64 {
    field_kib("VmHWM:")
}

/// The process's current resident set (VmRSS) in KiB, Linux only (0 elsewhere).
pub fn rss_kib() -> u64 {
    field_kib("VmRSS:")
}

fn field_kib(name: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

/// Threads of this process (all of them), Linux only.
pub fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(0)
}

/// Waits up to `limit` until the crate's threads (`rocketmq-*`) are no more
/// than `at_most`; returns the names left.
pub fn await_crate_threads_at_most(at_most: usize, limit: Duration) -> Vec<String> {
    let deadline = Instant::now() + limit;
    loop {
        let names = super::crate_threads();
        if names.len() <= at_most || Instant::now() >= deadline {
            return names;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
