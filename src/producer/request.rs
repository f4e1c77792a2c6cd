//! Request-reply (RPC over the broker): [`Producer::request`] sends a
//! message and waits for the reply a consumer makes with
//! [`create_reply_message`] and sends with any producer; the broker pushes
//! the reply to the requester over the requester's own connection (see
//! [`crate::protocol::reply`] for the wire side).
//!
//! Request-reply needs direct connections to the brokers: the 5.x proxy's
//! remoting endpoint relays neither SEND_REPLY_MESSAGE nor the pushed
//! replies (it has no processor for them). With a namespace the reply topic
//! gets the prefix too, as in the Java client.
//!
//! # Limits
//! - At most [`ProducerConfig::max_pending_requests`](super::ProducerConfig::max_pending_requests)
//!   requests (default [`DEFAULT_MAX_PENDING_REQUESTS`](super::DEFAULT_MAX_PENDING_REQUESTS),
//!   10,000) wait for replies at once; one more is refused with
//!   [`Error::TooManyRequests`] before anything is sent.
//! - An entry lives until its request's deadline at the latest: the calling
//!   thread waits for its own reply and removes the entry when it returns
//!   (no thread of its own, no sweeper).
//! - A pushed reply is answered on the connection's reader thread without
//!   waiting: matched to a waiting request, or dropped (unknown or late
//!   correlation id, malformed push) and counted in
//!   [`Producer::dropped_replies`]; a reply no request waits for is dropped
//!   before its body is copied or inflated. Each entry holds at most one
//!   reply (the frame limit, 16 MiB, and inflated bodies at most 64 MiB).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use super::producer::{HandlerFactory, Inner, MessageQueueSelector, Producer};
use super::router::RoutingStrategy;
use crate::broker::{BrokerClient, SendResult};
use crate::error::{Error, Result};
use crate::net::fanout::invoke_all;
use crate::net::RequestHandler;
use crate::protocol::message::now_ms;
use crate::protocol::reply::{
    decode_pushed_reply, new_correlation_id, pushed_correlation_id, reply_message, set_request_properties,
};
use crate::protocol::{request, Message, MessageExt, MessageQueue, RemotingCommand, ResponseCode};
use crate::threads::lock;

/// The reply to `request` (a message a consumer received), as Java's
/// `MessageUtil.createReplyMessage`: to the cluster's reply topic
/// `<cluster>_REPLY_TOPIC`, with `MSG_TYPE` = `reply` and the request's
/// correlation id, reply-to client and TTL. Send it with any
/// [`Producer`] (`send`): the broker pushes it to the requester.
///
/// An [`Error::InvalidArgument`] when `request` has no `CLUSTER` property,
/// which every broker adds when it stores a message (so the message did
/// not come from a broker).
///
/// ```no_run
/// use rocketmq_blocking::consumer::{ConsumeConcurrentlyStatus, ConsumerConfig, PushConsumer};
/// use rocketmq_blocking::producer::{create_reply_message, Producer, ProducerConfig};
/// use rocketmq_blocking::MessageExt;
/// use std::sync::Arc;
///
/// let producer = Arc::new(Producer::new(ProducerConfig::builder().group("pricers").namesrv_addr("127.0.0.1:9876").build()?)?);
/// producer.start()?;
/// let consumer = PushConsumer::new(ConsumerConfig::builder().group("pricers").namesrv_addr("127.0.0.1:9876").build()?)?;
/// consumer.subscribe("Prices", "*")?;
/// let replier = Arc::clone(&producer);
/// consumer.register_concurrently(move |msgs: &[MessageExt], _ctx: &mut _| {
///     for m in msgs {
///         let reply = create_reply_message(m, format!("price of {}: 42", String::from_utf8_lossy(&m.body)));
///         if let Err(e) = reply.and_then(|r| replier.send(&r)) {
///             eprintln!("reply not sent: {e}"); // the requester times out
///         }
///     }
///     ConsumeConcurrentlyStatus::ConsumeSuccess
/// })?;
/// consumer.start()?;
/// # Ok::<(), rocketmq_blocking::Error>(())
/// ```
pub fn create_reply_message(request: &MessageExt, body: impl Into<Vec<u8>>) -> Result<Message> {
    reply_message(&request.properties, body.into()).ok_or_else(|| {
        Error::invalid("request message", "it has no CLUSTER property (brokers add it to every stored message)")
    })
}

/// The requester's client id of a request (`REPLY_TO_CLIENT`), as Java's
/// `MessageUtil.getReplyToClient`.
pub fn reply_to_client(request: &MessageExt) -> Option<&str> {
    request.property(crate::protocol::message::property::MESSAGE_REPLY_TO_CLIENT)
}

struct Pending {
    deadline: Instant,
    tx: SyncSender<Result<MessageExt>>,
}

/// The requests waiting for replies, by correlation id.
pub(crate) struct RequestTable {
    limit: usize,
    /// `None` once the producer shut down.
    pending: Mutex<Option<HashMap<String, Pending>>>,
    dropped: AtomicU64,
    /// The connection each broker address was last registered on by a
    /// heartbeat that the broker answered (the broker pushes replies only
    /// to registered clients).
    registered: Mutex<HashMap<String, Weak<BrokerClient>>>,
}

/// One waiting request; dropping it removes its entry.
struct Waiting<'a> {
    table: &'a RequestTable,
    id: String,
    rx: Receiver<Result<MessageExt>>,
}

impl Waiting<'_> {
    /// Removes the entry after the deadline; a reply handed over in the
    /// meantime is dropped and counted as late.
    fn cancel(&self) {
        if let Some(map) = lock(&self.table.pending).as_mut() {
            map.remove(&self.id);
        }
        if let Ok(Ok(_)) = self.rx.try_recv() {
            self.table.drop_reply("late", &self.id);
        }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Some(map) = lock(&self.table.pending).as_mut() {
            map.remove(&self.id);
        }
    }
}

impl RequestTable {
    pub(crate) fn new(limit: usize) -> Self {
        RequestTable {
            limit,
            pending: Mutex::new(Some(HashMap::new())),
            dropped: AtomicU64::new(0),
            registered: Mutex::new(HashMap::new()),
        }
    }

    fn register(&self, id: &str, deadline: Instant) -> Result<Waiting<'_>> {
        let (tx, rx) = mpsc::sync_channel(1);
        let mut guard = lock(&self.pending);
        let map = guard.as_mut().ok_or(Error::NotRunning("producer"))?;
        if map.len() >= self.limit {
            return Err(Error::TooManyRequests { limit: self.limit });
        }
        map.insert(id.to_string(), Pending { deadline, tx });
        Ok(Waiting { table: self, id: id.to_string(), rx })
    }

    fn drop_reply(&self, why: &str, correlation_id: &str) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        log_debug!("reply dropped ({why}): correlation_id={correlation_id}");
    }

    /// Answers a PUSH_REPLY_MESSAGE_TO_CLIENT from `addr` on the reader
    /// thread: hands the reply to its waiting request or drops it (counted);
    /// never waits. A reply no request waits for is dropped before its body
    /// is copied or inflated; one whose body cannot be read is handed to its
    /// request as [`Error::Protocol`].
    fn on_push(&self, cmd: &RemotingCommand, addr: &str) -> RemotingCommand {
        let id = match pushed_correlation_id(&cmd.ext_fields) {
            Ok(id) => id,
            Err(e) => {
                self.drop_reply("malformed push", &e.to_string());
                let remark = format!("process reply message fail: {e}");
                return RemotingCommand::response_to(cmd, ResponseCode::SystemError, Some(remark));
            }
        };
        let waited = lock(&self.pending).as_ref().is_some_and(|map| map.contains_key(&id));
        if waited {
            let reply = decode_pushed_reply(&cmd.ext_fields, &cmd.body, now_ms()).map_err(|e| Error::protocol(addr, e));
            let entry = lock(&self.pending).as_mut().and_then(|map| map.remove(&id));
            match entry {
                Some(p) if Instant::now() <= p.deadline => {
                    let _ = p.tx.try_send(reply);
                }
                _ => self.drop_reply("late", &id),
            }
        } else {
            self.drop_reply("unknown or late correlation id", &id);
        }
        // Java answers success for a reply it could not match too.
        RemotingCommand::response_to(cmd, ResponseCode::Success, None)
    }

    /// Wakes every waiting request with `NotRunning` and refuses new ones.
    pub(crate) fn close(&self) {
        let waiting = lock(&self.pending).take();
        for (_, p) in waiting.into_iter().flatten() {
            let _ = p.tx.try_send(Err(Error::NotRunning("producer")));
        }
    }

    fn waiting(&self) -> usize {
        lock(&self.pending).as_ref().map_or(0, HashMap::len)
    }
}

/// The request handler factory of a producer: PUSH_REPLY_MESSAGE_TO_CLIENT
/// goes to `table`, anything else to `other` (a transaction producer's
/// check-backs), or is answered "not supported".
pub(crate) fn reply_handler(table: Arc<RequestTable>, other: Option<HandlerFactory>) -> HandlerFactory {
    Arc::new(move |addr: &str| {
        let (table, addr) = (Arc::clone(&table), addr.to_string());
        let other = other.as_ref().map(|make| make(&addr));
        let handler: RequestHandler = Arc::new(move |cmd: &RemotingCommand| {
            if cmd.code == request::PUSH_REPLY_MESSAGE_TO_CLIENT {
                return Some(table.on_push(cmd, &addr));
            }
            match &other {
                Some(h) => h(cmd),
                None => Some(RemotingCommand::response_to(
                    cmd,
                    ResponseCode::RequestCodeNotSupported,
                    Some(format!("request code {} not supported by this producer", cmd.code)),
                )),
            }
        });
        handler
    })
}

impl Inner {
    /// Registers this client, by a heartbeat the broker answers, with every
    /// broker of `topic`'s route whose connection in use has not been
    /// registered yet, so that the broker the reply goes through can push it
    /// here. Java heartbeats to every broker before a request to a topic it
    /// has no route for yet. A broker that cannot be reached is skipped (as
    /// Java logs and goes on): the send routes around it, and the next
    /// request tries again.
    fn register_for_replies(&self, topic: &str, deadline: Instant) -> Result<()> {
        let info = self.topic_info(topic, deadline)?;
        let mut addrs: Vec<&str> = info.queues.iter().map(|q| q.broker_addr.as_str()).collect();
        addrs.sort_unstable();
        addrs.dedup();
        let mut todo = Vec::new();
        for addr in addrs {
            let client = match self.client(addr, deadline) {
                Ok(c) => c,
                Err(e @ Error::NotRunning(_)) => return Err(e),
                Err(e) => {
                    log_warn!("request: cannot register with broker {addr}: {e}");
                    continue;
                }
            };
            let known = lock(&self.requests.registered).get(addr).and_then(Weak::upgrade);
            if !known.is_some_and(|k| Arc::ptr_eq(&k, &client)) {
                todo.push((addr.to_string(), client));
            }
        }
        if todo.is_empty() {
            return Ok(());
        }
        let heartbeat = BrokerClient::heartbeat_command(&self.heartbeat_data());
        let calls = todo.iter().map(|(_, c)| (c.connection(), heartbeat.clone())).collect();
        let left = deadline.saturating_duration_since(Instant::now());
        for ((addr, client), result) in todo.iter().zip(invoke_all(calls, left)) {
            match result.map(|r| r.response_code()) {
                Ok(ResponseCode::Success) => {
                    lock(&self.requests.registered).insert(addr.clone(), Arc::downgrade(client));
                }
                other => log_warn!("request: heartbeat to broker {addr} failed: {other:?}"),
            }
        }
        Ok(())
    }
}

impl Producer {
    /// Sends `msg` as a request and waits for its reply (Java's
    /// `DefaultMQProducer.request(msg, timeout)`): the message gets a new
    /// correlation id, this producer's client id as the reply-to client
    /// and `timeout` as its TTL, and is sent like [`send`](Self::send)
    /// (routing, retries); a consumer answers it with
    /// [`create_reply_message`] and the broker pushes the reply here.
    ///
    /// **Deadline**: returns within `timeout` (plus scheduling noise), which
    /// covers the route lookup, registering with the topic's brokers (a
    /// heartbeat each, on first use of a connection), the send with its
    /// retries, and the wait. No reply in time is
    /// [`Error::RequestTimeout`]; a failed send is the send's error;
    /// [`Error::TooManyRequests`] when
    /// [`max_pending_requests`](super::ProducerConfig::max_pending_requests)
    /// already wait; [`Error::NotRunning`] when the producer is shut down
    /// meanwhile.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use rocketmq_blocking::producer::{Producer, ProducerConfig};
    /// use rocketmq_blocking::{Error, Message};
    ///
    /// let producer = Producer::new(ProducerConfig::builder().group("shop").namesrv_addr("127.0.0.1:9876").build()?)?;
    /// producer.start()?;
    /// match producer.request(&Message::new("Prices", "AAPL"), Duration::from_secs(3)) {
    ///     Ok(reply) => println!("{}", String::from_utf8_lossy(&reply.body)),
    ///     Err(Error::RequestTimeout { .. }) => eprintln!("nobody answered"),
    ///     Err(e) => eprintln!("request failed: {e}"),
    /// }
    /// # Ok::<(), rocketmq_blocking::Error>(())
    /// ```
    pub fn request(&self, msg: &Message, timeout: Duration) -> Result<MessageExt> {
        self.request_by(msg, timeout, |req, deadline| {
            self.inner.send_before(req, RoutingStrategy::RoundRobin, deadline)
        })
    }

    /// [`request`](Self::request) to the queue `selector` picks, as
    /// [`send_with_selector`](Self::send_with_selector) (Java's
    /// `request(msg, selector, arg, timeout)`).
    pub fn request_with_selector<A: ?Sized>(
        &self,
        msg: &Message,
        selector: &impl MessageQueueSelector<A>,
        arg: &A,
        timeout: Duration,
    ) -> Result<MessageExt> {
        self.request_by(msg, timeout, |req, deadline| self.send_with_selector_before(req, selector, arg, deadline))
    }

    /// [`request`](Self::request) to one queue, as
    /// [`send_to_queue`](Self::send_to_queue) (Java's `request(msg, mq, timeout)`).
    pub fn request_to_queue(&self, msg: &Message, queue: &MessageQueue, timeout: Duration) -> Result<MessageExt> {
        self.request_by(msg, timeout, |req, deadline| self.send_to_queue_before(req, queue, deadline))
    }

    fn request_by(
        &self,
        msg: &Message,
        timeout: Duration,
        send: impl FnOnce(&Message, Instant) -> Result<SendResult>,
    ) -> Result<MessageExt> {
        let deadline = Instant::now() + timeout;
        let inner = &self.inner;
        inner.check_running()?;
        let correlation_id = new_correlation_id();
        let mut req = msg.clone();
        set_request_properties(&mut req, &correlation_id, &inner.client_id, timeout);
        let waiting = inner.requests.register(&correlation_id, deadline)?;
        inner.register_for_replies(&inner.config.with_namespace(msg.topic()), deadline)?;
        send(&req, deadline)?;
        let left = deadline.saturating_duration_since(Instant::now());
        match waiting.rx.recv_timeout(left) {
            Ok(reply) => reply,
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                waiting.cancel();
                Err(Error::RequestTimeout { topic: msg.topic().to_string(), correlation_id, timeout })
            }
        }
    }

    /// Replies dropped since the producer was made: pushed for a request
    /// that was no longer waiting (its deadline passed), for a correlation
    /// id this producer never sent, or malformed.
    pub fn dropped_replies(&self) -> u64 {
        self.inner.requests.dropped.load(Ordering::Relaxed)
    }

    /// Requests waiting for their replies now (at most
    /// [`max_pending_requests`](super::ProducerConfig::max_pending_requests)).
    pub fn pending_requests(&self) -> usize {
        self.inner.requests.waiting()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::header::ReplyMessageRequestHeader;
    use crate::protocol::message::{encode_properties, property};

    fn push(correlation_id: &str, body: &[u8]) -> RemotingCommand {
        let props = [(property::CORRELATION_ID.to_string(), correlation_id.to_string())].into_iter().collect();
        let h = ReplyMessageRequestHeader {
            producer_group: "g".into(),
            topic: "C_REPLY_TOPIC".into(),
            properties: Some(encode_properties(&props)),
            ..Default::default()
        };
        RemotingCommand::request(request::PUSH_REPLY_MESSAGE_TO_CLIENT)
            .with_ext_fields(h.to_ext_fields())
            .with_body(body.to_vec())
    }

    impl RequestTable {
        fn on_push_test(&self, cmd: &RemotingCommand) -> RemotingCommand {
            self.on_push(cmd, "127.0.0.1:10911")
        }
    }

    #[test]
    fn replies_go_to_their_request_and_strays_are_counted() {
        let t = RequestTable::new(2);
        let far = Instant::now() + Duration::from_secs(60);
        let a = t.register("a", far).unwrap();
        let b = t.register("b", far).unwrap();
        assert!(matches!(t.register("c", far), Err(Error::TooManyRequests { limit: 2 })));
        assert_eq!(t.on_push_test(&push("b", b"to b")).code, 0);
        assert_eq!(t.on_push_test(&push("a", b"to a")).code, 0);
        assert_eq!(a.rx.try_recv().unwrap().unwrap().body, b"to a");
        assert_eq!(b.rx.try_recv().unwrap().unwrap().body, b"to b");
        // A second reply to the same request, and one nobody asked for.
        t.on_push_test(&push("a", b"again"));
        t.on_push_test(&push("zzz", b"stray"));
        assert_eq!(t.dropped.load(Ordering::Relaxed), 2);
        drop((a, b));
        assert_eq!(t.waiting(), 0, "entries leave with their waiters");
        // A reply after its request's deadline is dropped too.
        let late = t.register("late", Instant::now()).unwrap();
        std::thread::sleep(Duration::from_millis(2));
        t.on_push_test(&push("late", b"too late"));
        assert!(late.rx.try_recv().is_err());
        assert_eq!(t.dropped.load(Ordering::Relaxed), 3);
        // A malformed push is refused and counted.
        let mut bad = push("x", b"");
        bad.ext_fields.insert("properties".into(), "no separator".into());
        assert_eq!(t.on_push_test(&bad).code, ResponseCode::SystemError.as_i32());
        assert_eq!(t.dropped.load(Ordering::Relaxed), 4);
        // A reply whose body cannot be read reaches its request as a typed error.
        let w = t.register("bad body", far).unwrap();
        let mut bad = push("bad body", b"not zlib");
        bad.ext_fields.insert("sysFlag".into(), "1".into());
        assert_eq!(t.on_push_test(&bad).code, 0);
        let err = w.rx.try_recv().unwrap().unwrap_err();
        assert!(matches!(err, Error::Protocol { ref addr, .. } if addr == "127.0.0.1:10911"), "{err:?}");
        assert_eq!(t.dropped.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn closing_wakes_the_waiters() {
        let t = RequestTable::new(10);
        let w = t.register("a", Instant::now() + Duration::from_secs(60)).unwrap();
        t.close();
        assert!(matches!(w.rx.try_recv().unwrap(), Err(Error::NotRunning(_))));
        assert!(matches!(t.register("b", Instant::now()), Err(Error::NotRunning(_))));
    }

    #[test]
    fn the_handler_answers_pushes_and_passes_the_rest_on() {
        let t = Arc::new(RequestTable::new(10));
        let handler = reply_handler(Arc::clone(&t), None)("127.0.0.1:1");
        assert_eq!(handler(&push("x", b"")).map(|r| r.code), Some(0));
        let other = RemotingCommand::request(request::CHECK_TRANSACTION_STATE);
        assert_eq!(handler(&other).map(|r| r.code), Some(ResponseCode::RequestCodeNotSupported.as_i32()));
        let passed: HandlerFactory = Arc::new(|_: &str| -> RequestHandler { Arc::new(|_: &RemotingCommand| None) });
        let handler = reply_handler(t, Some(passed))("127.0.0.1:1");
        assert!(handler(&other).is_none(), "the transaction producer's handler got it");
    }

    #[test]
    fn reply_messages_need_a_stored_request() {
        let p = push("ignored", b"AAPL");
        let mut m = decode_pushed_reply(&p.ext_fields, &p.body, 0).unwrap();
        m.properties.clear();
        assert!(matches!(create_reply_message(&m, "x"), Err(Error::InvalidArgument { .. })));
        m.properties.insert(property::CLUSTER.into(), "C".into());
        m.properties.insert(property::CORRELATION_ID.into(), "id".into());
        m.properties.insert(property::MESSAGE_REPLY_TO_CLIENT.into(), "me".into());
        let r = create_reply_message(&m, "42").unwrap();
        assert_eq!((r.topic(), r.body()), ("C_REPLY_TOPIC", &b"42"[..]));
        assert_eq!(r.property(property::CORRELATION_ID), Some("id"));
        assert_eq!(reply_to_client(&m), Some("me"));
    }
}
