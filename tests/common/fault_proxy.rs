//! A TCP proxy between a client and a real broker or name server that
//! breaks what passes through on command: delays, stalls, drops, truncates
//! or corrupts one chosen frame from the server, or resets connections (now,
//! or every so often). It reads the 4-byte length framing of the remoting
//! protocol, so a fault hits exactly one whole frame. Std only.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What happens to the next frame the server sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Held back this long, then passed on.
    Delay(Duration),
    /// Half of it passed on, then nothing more on that connection (a peer
    /// stuck mid-frame).
    Stall,
    /// Not passed on (the rest of the stream is).
    Drop,
    /// Half of it passed on, then the connection closed.
    Truncate,
    /// Passed on with its header serialization byte made invalid.
    Corrupt,
    /// The connection reset instead.
    Reset,
}

struct State {
    upstream: String,
    stop: AtomicBool,
    next: Mutex<Vec<Fault>>,
    accepted: AtomicUsize,
    frames: AtomicUsize,
    streams: Mutex<Vec<TcpStream>>,
    reset_every: Mutex<Option<Duration>>,
    resets: AtomicUsize,
}

/// The proxy; dropping it closes everything and joins its threads.
pub struct FaultProxy {
    addr: String,
    state: Arc<State>,
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl FaultProxy {
    /// Listens on 127.0.0.1 (ephemeral port) and forwards to `upstream`.
    pub fn start(upstream: &str) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let state = Arc::new(State {
            upstream: upstream.to_string(),
            stop: AtomicBool::new(false),
            next: Mutex::new(Vec::new()),
            accepted: AtomicUsize::new(0),
            frames: AtomicUsize::new(0),
            streams: Mutex::new(Vec::new()),
            reset_every: Mutex::new(None),
            resets: AtomicUsize::new(0),
        });
        let threads: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (st, th) = (Arc::clone(&state), Arc::clone(&threads));
        let acceptor = std::thread::Builder::new()
            .name("faultproxy-accept".into())
            .spawn(move || accept_loop(listener, st, th))
            .unwrap();
        let st = Arc::clone(&state);
        let resetter = std::thread::Builder::new()
            .name("faultproxy-reset".into())
            .spawn(move || {
                let mut last = Instant::now();
                while !st.stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(10));
                    let every = *st.reset_every.lock().unwrap();
                    if let Some(every) = every {
                        if last.elapsed() >= every {
                            reset_all(&st);
                            last = Instant::now();
                        }
                    }
                }
            })
            .unwrap();
        threads.lock().unwrap().extend([acceptor, resetter]);
        FaultProxy { addr, state, threads }
    }

    /// `127.0.0.1:<port>` to give the client.
    pub fn addr(&self) -> String {
        self.addr.clone()
    }

    /// The next frame from the server, on any connection, gets `fault`.
    pub fn inject(&self, fault: Fault) {
        self.state.next.lock().unwrap().push(fault);
    }

    /// Resets every open connection now.
    pub fn reset_all(&self) {
        reset_all(&self.state);
    }

    /// Resets every open connection each `period` (`None`: stop doing so).
    pub fn reset_every(&self, period: Option<Duration>) {
        *self.state.reset_every.lock().unwrap() = period;
    }

    /// Client connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.state.accepted.load(Ordering::SeqCst)
    }

    /// Connections reset so far (by `reset_all`, `reset_every` or [`Fault::Reset`]).
    pub fn resets(&self) -> usize {
        self.state.resets.load(Ordering::SeqCst)
    }

    /// Frames passed from the server to clients so far.
    pub fn frames(&self) -> usize {
        self.state.frames.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        reset_all(&self.state);
        let handles: Vec<JoinHandle<()>> = self.threads.lock().unwrap().drain(..).collect();
        for h in handles {
            let _ = h.join();
        }
    }
}

fn reset_all(st: &State) {
    let streams: Vec<TcpStream> = st.streams.lock().unwrap().drain(..).collect();
    for s in &streams {
        let _ = s.shutdown(Shutdown::Both);
    }
    st.resets.fetch_add(streams.len() / 2, Ordering::SeqCst);
}

fn accept_loop(listener: TcpListener, st: Arc<State>, threads: Arc<Mutex<Vec<JoinHandle<()>>>>) {
    while !st.stop.load(Ordering::SeqCst) {
        let client = match listener.accept() {
            Ok((c, _)) => c,
            Err(_) => {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
        };
        client.set_nonblocking(false).unwrap();
        let Ok(server) = TcpStream::connect(&st.upstream) else {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        };
        st.accepted.fetch_add(1, Ordering::SeqCst);
        {
            let mut streams = st.streams.lock().unwrap();
            streams.push(client.try_clone().unwrap());
            streams.push(server.try_clone().unwrap());
        }
        let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
        let up = std::thread::Builder::new().name("faultproxy-up".into()).spawn(move || copy_raw(c2, s2)).unwrap();
        let st2 = Arc::clone(&st);
        let down = std::thread::Builder::new()
            .name("faultproxy-down".into())
            .spawn(move || copy_frames(server, client, &st2))
            .unwrap();
        let mut t = threads.lock().unwrap();
        // Keep the list short: join the pumps of closed connections.
        let (done, running): (Vec<_>, Vec<_>) = t.drain(..).partition(|h| h.is_finished());
        for h in done {
            let _ = h.join();
        }
        *t = running;
        t.extend([up, down]);
    }
}

/// Client to server: bytes as they come.
fn copy_raw(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

/// Server to client: frame by frame, applying injected faults.
fn copy_frames(mut from: TcpStream, mut to: TcpStream, st: &State) {
    let close = |a: &TcpStream, b: &TcpStream| {
        let _ = a.shutdown(Shutdown::Both);
        let _ = b.shutdown(Shutdown::Both);
    };
    loop {
        let mut len = [0u8; 4];
        if from.read_exact(&mut len).is_err() {
            break;
        }
        let n = i32::from_be_bytes(len).max(0) as usize;
        let mut frame = len.to_vec();
        frame.resize(4 + n, 0);
        if from.read_exact(&mut frame[4..]).is_err() {
            break;
        }
        let fault = {
            let mut next = st.next.lock().unwrap();
            (!next.is_empty()).then(|| next.remove(0))
        };
        let half = frame.len() / 2;
        let written = match fault {
            None => to.write_all(&frame),
            Some(Fault::Delay(d)) => {
                std::thread::sleep(d);
                to.write_all(&frame)
            }
            Some(Fault::Drop) => Ok(()),
            Some(Fault::Corrupt) => {
                // Bytes 4..8 hold the header length; its top byte is the
                // serialization type (0 JSON, 1 ROCKETMQ): 7 is invalid.
                if frame.len() > 4 {
                    frame[4] = 7;
                }
                to.write_all(&frame)
            }
            Some(Fault::Stall) => {
                let _ = to.write_all(&frame[..half]);
                // Swallow the rest of the stream until the connection closes.
                let mut sink = [0u8; 64 * 1024];
                while let Ok(n) = from.read(&mut sink) {
                    if n == 0 || st.stop.load(Ordering::SeqCst) {
                        break;
                    }
                }
                break;
            }
            Some(Fault::Truncate) => {
                let _ = to.write_all(&frame[..half]);
                break;
            }
            Some(Fault::Reset) => {
                st.resets.fetch_add(1, Ordering::SeqCst);
                break;
            }
        };
        if written.is_err() {
            break;
        }
        st.frames.fetch_add(1, Ordering::SeqCst);
    }
    close(&from, &to);
}
