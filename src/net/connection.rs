//! One TCP connection to a name server or broker, shared by many threads.

//!
//! See the [`net`](crate::net) module docs for when a timeout closes a connection.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::error::{Error, ProtocolError, Result};
use crate::protocol::{
    decode_frame, RemotingCommand, ResponseCode, SerializeType, DEFAULT_MAX_FRAME_SIZE, FLAG_ONEWAY, FLAG_RESPONSE,
};

/// Default TCP connect timeout (Java's `connectTimeoutMillis`): 3 s.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Default socket write timeout: 3 s.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(3);
/// Consecutive request timeouts (no response received in between) after
/// which a connection is closed: 3.
pub const MAX_CONSECUTIVE_TIMEOUTS: u32 = 3;

/// Answers requests that the peer starts (transaction check-back, consumer
/// ids changed, ...). It runs on the connection's reader thread, so it must
/// return quickly and must not wait for a response on the same connection;
/// hand long work to a thread of your own. Return `Some(response)` to
/// answer (its opaque and response flag are set for you), `None` for none.
pub type RequestHandler = Arc<dyn Fn(&RemotingCommand) -> Option<RemotingCommand> + Send + Sync>;

/// Settings of a [`Connection`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionConfig {
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Socket write timeout.
    pub write_timeout: Duration,
    /// Largest frame accepted from the peer.
    pub max_frame_size: usize,
    /// Header serialization of requests.
    pub serialize_type: SerializeType,
    /// Credentials that sign every request (`acl` feature; default none).
    #[cfg(feature = "acl")]
    pub credentials: Option<crate::acl::Credentials>,
    /// TLS for this connection (`tls` feature; default none: plain TCP).
    /// The handshake runs inside [`connect_timeout`](Self::connect_timeout).
    #[cfg(feature = "tls")]
    pub tls: Option<crate::tls::TlsConfig>,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            serialize_type: SerializeType::Json,
            #[cfg(feature = "acl")]
            credentials: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

/// Why a connection ended; handed to every waiter.
#[derive(Debug, Clone)]
enum Failure {
    Closed(String),
    Protocol(ProtocolError),
    /// A TLS record that could not be read after the handshake.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    Tls(crate::error::TlsErrorKind, String),
}

type Reply = std::result::Result<RemotingCommand, Failure>;

/// Called once with the response to a request sent by
/// [`Connection::invoke_async`], or with the error that ended the
/// connection. It runs on the connection's reader thread (or on the thread
/// that closes the connection), so it must return quickly and must not wait
/// for anything on this connection.
pub type ResponseCallback = Box<dyn FnOnce(Result<RemotingCommand>) + Send>;

/// Who waits for a response.
enum Waiter {
    /// A thread blocked in [`Connection::invoke`].
    Thread(SyncSender<Reply>),
    /// A callback of [`Connection::invoke_async`].
    Callback(ResponseCallback),
}

struct Shared {
    addr: String,
    writer: Mutex<TcpStream>,
    /// A clone used only to shut the socket down without taking the writer lock.
    control: TcpStream,
    pending: Mutex<HashMap<i32, Waiter>>,
    closed: AtomicBool,
    failure: Mutex<Option<Failure>>,
    handler: Mutex<Option<RequestHandler>>,
    max_frame_size: usize,
    /// Bytes of an incomplete frame the reader holds (0 between frames).
    partial: AtomicUsize,
    /// Request timeouts since the last response arrived.
    timeouts: AtomicU32,
    /// Whether any response has arrived (a peer closing before the first
    /// one may be a TLS server refusing plain TCP).
    answered: AtomicBool,
    /// The TLS session, shared by the reader (decrypts) and the writers
    /// (encrypt while holding `writer`, so records leave in order). Lock
    /// order: `writer`, then `tls`; the socket is never read under either.
    #[cfg(feature = "tls")]
    tls: Option<Mutex<rustls::ClientConnection>>,
}

static NEXT_OPAQUE: AtomicI32 = AtomicI32::new(1);
static NEXT_READER: AtomicUsize = AtomicUsize::new(1);

use crate::threads::lock;

impl Shared {
    /// Why the peer closed: a plain connection closed before any answer is
    /// what a server that requires TLS does.
    fn closed_by_peer(&self) -> String {
        #[cfg(feature = "tls")]
        let plain = self.tls.is_none();
        #[cfg(not(feature = "tls"))]
        let plain = true;
        if plain && !self.answered.load(Ordering::Relaxed) {
            "closed by peer before any answer (a server that requires TLS does this: tls.server.mode=enforcing; \
             see the `tls` feature)"
                .into()
        } else {
            "closed by peer".into()
        }
    }

    /// Decrypts bytes read from the socket into `buf`; sends what the
    /// session wants to send back (an alert, a key update answer).
    #[cfg(feature = "tls")]
    fn open_tls(&self, cipher: &[u8], buf: &mut Vec<u8>) -> std::result::Result<(), Failure> {
        let Some(tls) = &self.tls else { return Ok(()) };
        let opened = crate::tls::open(&mut lock(tls), cipher, buf);
        let wants_write = match &opened {
            Ok(o) => o.wants_write,
            Err(_) => true,
        };
        if wants_write {
            let mut w = lock(&self.writer);
            let mut out = Vec::new();
            let _ = crate::tls::seal(&mut lock(tls), &[], &mut out);
            let _ = w.write_all(&out);
        }
        match opened {
            Ok(o) if o.peer_closed => Err(Failure::Closed("closed by peer (TLS close_notify)".into())),
            Ok(_) => Ok(()),
            Err((kind, detail)) => Err(Failure::Tls(kind, detail)),
        }
    }

    fn failure_error(&self, failure: Failure) -> Error {
        match failure {
            Failure::Closed(reason) => Error::ConnectionClosed { addr: self.addr.clone(), reason },
            Failure::Protocol(source) => Error::Protocol { addr: self.addr.clone(), source },
            Failure::Tls(kind, detail) => Error::Tls { addr: self.addr.clone(), kind, detail },
        }
    }

    /// Marks the connection closed and wakes every waiter with `failure`.
    fn fail(&self, failure: Failure) {
        {
            let mut slot = lock(&self.failure);
            if slot.is_none() {
                *slot = Some(failure.clone());
            }
        }
        self.closed.store(true, Ordering::SeqCst);
        let _ = self.control.shutdown(Shutdown::Both);
        let waiters: Vec<_> = lock(&self.pending).drain().collect();
        for (_, waiter) in waiters {
            self.wake(waiter, Err(failure.clone()));
        }
    }

    /// Hands a response or failure to its waiter (never under a lock).
    fn wake(&self, waiter: Waiter, reply: Reply) {
        match waiter {
            Waiter::Thread(tx) => {
                let _ = tx.try_send(reply);
            }
            Waiter::Callback(done) => done(reply.map_err(|f| self.failure_error(f))),
        }
    }

    fn current_failure(&self) -> Failure {
        lock(&self.failure).clone().unwrap_or_else(|| Failure::Closed("connection closed".into()))
    }

    fn write(&self, frame: &[u8]) -> Result<()> {
        let mut w = lock(&self.writer);
        #[cfg(feature = "tls")]
        let sealed;
        #[cfg(feature = "tls")]
        let frame: &[u8] = match &self.tls {
            Some(tls) => {
                let mut out = Vec::with_capacity(frame.len() + 64);
                if let Err(e) = crate::tls::seal(&mut lock(tls), frame, &mut out) {
                    drop(w);
                    self.fail(Failure::Tls(crate::error::TlsErrorKind::Corrupt, format!("cannot encrypt: {e}")));
                    return Err(self.failure_error(self.current_failure()));
                }
                sealed = out;
                &sealed
            }
            None => frame,
        };
        if let Err(e) = w.write_all(frame) {
            drop(w);
            // A partial frame leaves the stream unusable.
            self.fail(Failure::Closed(format!("write failed: {e}")));
            return Err(self.failure_error(self.current_failure()));
        }
        Ok(())
    }

    fn dispatch(&self, cmd: RemotingCommand) {
        if cmd.is_response() {
            self.timeouts.store(0, Ordering::SeqCst);
            self.answered.store(true, Ordering::Relaxed);
            let waiter = lock(&self.pending).remove(&cmd.opaque);
            if let Some(waiter) = waiter {
                self.wake(waiter, Ok(cmd));
            }
            return;
        }
        let handler = lock(&self.handler).clone();
        let reply = match handler {
            Some(h) => h(&cmd),
            None => Some(RemotingCommand::response_to(
                &cmd,
                ResponseCode::RequestCodeNotSupported,
                Some(format!("request code {} not supported by this client", cmd.code)),
            )),
        };
        if let Some(mut reply) = reply {
            if cmd.is_oneway() {
                return;
            }
            reply.opaque = cmd.opaque;
            reply.flag |= FLAG_RESPONSE;
            let _ = self.write(&reply.encode());
        }
    }

    /// Reads frames until the socket ends; `buf` holds bytes already
    /// received (plaintext that came with the TLS handshake).
    fn read_loop(&self, mut stream: TcpStream, mut buf: Vec<u8>) {
        buf.reserve(64 * 1024);
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let mut start = 0;
            loop {
                match decode_frame(&buf[start..], self.max_frame_size) {
                    Ok(Some((cmd, used))) => {
                        start += used;
                        self.dispatch(cmd);
                    }
                    Ok(None) => break,
                    Err(e) => return self.fail(Failure::Protocol(e)),
                }
            }
            buf.drain(..start);
            self.partial.store(buf.len(), Ordering::SeqCst);
            match stream.read(&mut chunk) {
                Ok(0) => return self.fail(Failure::Closed(self.closed_by_peer())),
                #[cfg(feature = "tls")]
                Ok(n) if self.tls.is_some() => {
                    if let Err(failure) = self.open_tls(&chunk[..n], &mut buf) {
                        return self.fail(failure);
                    }
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let reason = if self.closed.load(Ordering::SeqCst) {
                        "closed".to_string()
                    } else {
                        format!("read failed: {e}")
                    };
                    return self.fail(Failure::Closed(reason));
                }
            }
        }
    }
}

/// A blocking connection with one reader thread.
///
/// Many threads may have requests in flight at once; each waits for its own
/// response (matched by `opaque`) with its own timeout. When the socket
/// closes or a malformed frame arrives, every waiter gets an error at once.
/// Dropping the connection closes the socket and joins the reader thread
/// (`rocketmq-conn-<n>`).
///
/// ```no_run
/// use std::time::Duration;
/// use rocketmq_blocking::net::{Connection, ConnectionConfig};
/// use rocketmq_blocking::protocol::{request, RemotingCommand};
///
/// let conn = Connection::connect("127.0.0.1:9876", &ConnectionConfig::default())?;
/// let reply = conn.invoke(RemotingCommand::request(request::GET_BROKER_CLUSTER_INFO), Duration::from_secs(3))?;
/// println!("{}", String::from_utf8_lossy(&reply.body));
/// # Ok::<(), rocketmq_blocking::Error>(())
/// ```
pub struct Connection {
    shared: Arc<Shared>,
    reader: Mutex<Option<JoinHandle<()>>>,
    serialize_type: SerializeType,
    peer: SocketAddr,
    #[cfg(feature = "acl")]
    credentials: Option<crate::acl::Credentials>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").field("addr", &self.shared.addr).field("closed", &self.is_closed()).finish()
    }
}

/// Parses `host:port` (IPv6 as `[::1]:port`), resolving names.
pub(crate) fn resolve(addr: &str) -> Result<Vec<SocketAddr>> {
    let invalid = |reason| Error::InvalidAddress { input: addr.to_string(), reason };
    let (host, port) = addr.rsplit_once(':').ok_or(invalid("expected host:port"))?;
    if host.is_empty() {
        return Err(invalid("empty host"));
    }
    // Refused without asking a resolver: DNS names are at most 253 bytes,
    // and digits and dots that are not an IPv4 address name no host.
    if host.len() > 253 {
        return Err(invalid("host longer than 253 bytes"));
    }
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') && host.parse::<std::net::Ipv4Addr>().is_err() {
        return Err(invalid("not an IPv4 address"));
    }
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return Err(invalid("IPv6 hosts must be written as [addr]:port"));
    }
    let port: u16 = port.parse().map_err(|_| invalid("port is not a number from 0 to 65535"))?;
    if port == 0 {
        return Err(invalid("port 0"));
    }
    let list: Vec<SocketAddr> = match addr.to_socket_addrs() {
        Ok(it) => it.collect(),
        Err(_) => return Err(invalid("host does not resolve")),
    };
    if list.is_empty() {
        return Err(invalid("host does not resolve"));
    }
    Ok(list)
}

impl Connection {
    /// Connects to `addr` (`host:port`).
    pub fn connect(addr: &str, config: &ConnectionConfig) -> Result<Connection> {
        let started = Instant::now();
        let targets = resolve(addr)?;
        let mut last = None;
        let mut stream = None;
        for target in &targets {
            match TcpStream::connect_timeout(target, config.connect_timeout) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        #[cfg_attr(not(feature = "tls"), allow(unused_mut))]
        let mut stream = match stream {
            Some(s) => s,
            None => {
                let source = last.unwrap_or_else(|| std::io::Error::other("no address"));
                return Err(Error::Connect { addr: addr.to_string(), source });
            }
        };
        let io = |source| Error::Connect { addr: addr.to_string(), source };
        stream.set_nodelay(true).map_err(io)?;
        stream.set_write_timeout(Some(config.write_timeout)).map_err(io)?;
        let peer = stream.peer_addr().map_err(io)?;
        #[cfg_attr(not(feature = "tls"), allow(unused_mut))]
        let mut received = Vec::new();
        #[cfg(feature = "tls")]
        let tls = match &config.tls {
            Some(tls) => {
                let deadline = started + config.connect_timeout;
                let mut session = crate::tls::handshake(tls, addr, &mut stream, deadline, config.connect_timeout)?;
                stream.set_read_timeout(None).map_err(io)?;
                stream.set_write_timeout(Some(config.write_timeout)).map_err(io)?;
                crate::tls::drain(&mut session, &mut received).map_err(|(kind, detail)| Error::Tls {
                    addr: addr.to_string(),
                    kind,
                    detail,
                })?;
                Some(Mutex::new(session))
            }
            None => None,
        };
        #[cfg(not(feature = "tls"))]
        let _ = started;
        let read_half = stream.try_clone().map_err(io)?;
        let control = stream.try_clone().map_err(io)?;
        let shared = Arc::new(Shared {
            addr: addr.to_string(),
            writer: Mutex::new(stream),
            control,
            pending: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
            failure: Mutex::new(None),
            handler: Mutex::new(None),
            max_frame_size: config.max_frame_size,
            partial: AtomicUsize::new(0),
            timeouts: AtomicU32::new(0),
            answered: AtomicBool::new(false),
            #[cfg(feature = "tls")]
            tls,
        });
        let for_thread = Arc::clone(&shared);
        let name = format!("rocketmq-conn-{}", NEXT_READER.fetch_add(1, Ordering::Relaxed));
        let reader = thread::Builder::new()
            .name(name)
            .spawn(move || for_thread.read_loop(read_half, received))
            .map_err(|e| Error::Connect { addr: addr.to_string(), source: e })?;
        Ok(Connection {
            shared,
            reader: Mutex::new(Some(reader)),
            serialize_type: config.serialize_type,
            peer,
            #[cfg(feature = "acl")]
            credentials: config.credentials.clone(),
        })
    }

    /// The address this connection was opened with.
    pub fn addr(&self) -> &str {
        &self.shared.addr
    }

    /// The peer's socket address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// Whether the connection has closed (by either side, or after an error).
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::SeqCst)
    }

    /// Installs the handler for requests the peer starts.
    pub fn set_request_handler(&self, handler: Option<RequestHandler>) {
        *lock(&self.shared.handler) = handler;
    }

    fn prepare(&self, cmd: &mut RemotingCommand) -> Result<i32> {
        if self.is_closed() {
            return Err(self.shared.failure_error(self.shared.current_failure()));
        }
        let opaque = NEXT_OPAQUE.fetch_add(1, Ordering::Relaxed) & 0x7FFF_FFFF;
        cmd.opaque = opaque;
        cmd.serialize_type = self.serialize_type;
        // Signed last, over the ext fields and body as they go out; answers
        // to the peer's requests are not signed (Java signs requests only).
        #[cfg(feature = "acl")]
        if let Some(credentials) = &self.credentials {
            credentials.sign(cmd);
        }
        Ok(opaque)
    }

    /// Sends a request and waits up to `timeout` for its response.
    ///
    /// A timeout may close the connection (see [`crate::net`]); the
    /// timed-out call still returns [`Error::Timeout`].
    pub fn invoke(&self, mut cmd: RemotingCommand, timeout: Duration) -> Result<RemotingCommand> {
        let opaque = self.prepare(&mut cmd)?;
        cmd.flag &= !FLAG_ONEWAY;
        let (tx, rx) = mpsc::sync_channel(1);
        lock(&self.shared.pending).insert(opaque, Waiter::Thread(tx));
        // The reader may have failed between prepare and insert.
        if self.is_closed() {
            lock(&self.shared.pending).remove(&opaque);
            return Err(self.shared.failure_error(self.shared.current_failure()));
        }
        if let Err(e) = self.shared.write(&cmd.encode()) {
            lock(&self.shared.pending).remove(&opaque);
            return Err(e);
        }
        match rx.recv_timeout(timeout) {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(failure)) => Err(self.shared.failure_error(failure)),
            Err(RecvTimeoutError::Timeout) => {
                lock(&self.shared.pending).remove(&opaque);
                self.after_timeout();
                Err(Error::Timeout {
                    operation: crate::protocol::codes::request_name(cmd.code),
                    addr: self.shared.addr.clone(),
                    timeout,
                })
            }
            Err(RecvTimeoutError::Disconnected) => Err(self.shared.failure_error(self.shared.current_failure())),
        }
    }

    /// Sends a request and returns once it is written; `done` is called
    /// later with the response, or with the error that ends the connection.
    /// Nothing times the request out: the caller keeps the returned opaque
    /// and calls [`cancel`](Self::cancel) when its own deadline passes. On
    /// an `Err` here `done` is dropped uncalled.
    pub fn invoke_async(&self, mut cmd: RemotingCommand, done: ResponseCallback) -> Result<i32> {
        let opaque = self.prepare(&mut cmd)?;
        cmd.flag &= !FLAG_ONEWAY;
        lock(&self.shared.pending).insert(opaque, Waiter::Callback(done));
        // When the connection fails meanwhile, whoever takes the entry out
        // of `pending` reports: this call with `Err`, or `fail` through `done`.
        let outcome = if self.is_closed() {
            Err(self.shared.failure_error(self.shared.current_failure()))
        } else {
            self.shared.write(&cmd.encode())
        };
        match outcome {
            Err(e) if lock(&self.shared.pending).remove(&opaque).is_some() => Err(e),
            _ => Ok(opaque),
        }
    }

    /// Forgets the request `opaque` of [`invoke_async`](Self::invoke_async):
    /// true when it was still waiting (its callback will never be called),
    /// false when the callback has run or is running.
    pub fn cancel(&self, opaque: i32) -> bool {
        lock(&self.shared.pending).remove(&opaque).is_some()
    }

    /// Answers a request the peer started, later than its
    /// [`RequestHandler`] returned (which then returned `None`): `response`
    /// gets the request's opaque and the response flag.
    pub fn respond(&self, request: &RemotingCommand, mut response: RemotingCommand) -> Result<()> {
        if request.is_oneway() {
            return Ok(());
        }
        response.opaque = request.opaque;
        response.flag |= FLAG_RESPONSE;
        self.shared.write(&response.encode())
    }

    /// Closes the connection after a timeout when the stream may be out of
    /// step (see [`crate::net`]).
    fn after_timeout(&self) {
        let in_a_row = self.shared.timeouts.fetch_add(1, Ordering::SeqCst) + 1;
        let partial = self.shared.partial.load(Ordering::SeqCst);
        if partial > 0 {
            let reason = format!("closed after a timeout with {partial} bytes of a frame half read");
            self.shared.fail(Failure::Closed(reason));
        } else if in_a_row >= MAX_CONSECUTIVE_TIMEOUTS {
            let reason = format!("closed after {in_a_row} request timeouts in a row");
            self.shared.fail(Failure::Closed(reason));
        }
    }

    /// Sends a request with the oneway flag and returns once it is written.
    pub fn invoke_oneway(&self, mut cmd: RemotingCommand) -> Result<()> {
        self.prepare(&mut cmd)?;
        cmd.flag |= FLAG_ONEWAY;
        self.shared.write(&cmd.encode())
    }

    /// Closes the socket; waiters get a connection error at once.
    pub fn close(&self) {
        self.shared.fail(Failure::Closed("closed by the client".into()));
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.close();
        if let Some(handle) = lock(&self.reader).take() {
            if handle.thread().id() != thread::current().id() {
                let _ = handle.join();
            }
        }
    }
}
