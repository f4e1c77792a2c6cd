//! `TransactionProducer`: half messages, local transactions and the
//! broker's check-backs.
//!
//! # Limits
//! Check-backs wait for the one `rocketmq-txcheck-<n>` thread in a queue
//! bounded twice: [`ProducerConfig::check_queue`] requests (default
//! [`DEFAULT_CHECK_QUEUE`](super::DEFAULT_CHECK_QUEUE), 2,000, as Java) and
//! [`ProducerConfig::check_queue_bytes`] of half messages, counted as
//! received plus inflated (default
//! [`DEFAULT_CHECK_QUEUE_BYTES`](super::DEFAULT_CHECK_QUEUE_BYTES), 64 MiB).
//! One arriving when either is reached is dropped unanswered and counted
//! ([`TransactionProducer::dropped_checks`]); the broker asks again later.
//! When the queue is full a check-back is dropped before its half message
//! is decoded. Shutdown abandons whatever is queued.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::config::ProducerConfig;
use super::producer::{HandlerFactory, Inner, Producer};
use super::router::RoutingStrategy;
use crate::broker::{EndTransaction, SendResult, SendStatus, TransactionResolution};
use crate::error::{Error, Result};
use crate::net::RequestHandler;
use crate::protocol::header::CheckTransactionStateRequestHeader;
use crate::protocol::message::{decode_messages, decode_offset_msg_id, property};
use crate::protocol::{request, Message, MessageExt, RemotingCommand};
use crate::threads::spawn;

/// The outcome of a local transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LocalTransactionState {
    /// Make the half message visible.
    CommitMessage,
    /// Drop the half message.
    RollbackMessage,
    /// Not known yet: the broker asks again later ([`TransactionListener::check_local_transaction`]).
    Unknown,
}

impl LocalTransactionState {
    /// Java's name, as trace records write it.
    fn java_name(self) -> &'static str {
        match self {
            LocalTransactionState::CommitMessage => "COMMIT_MESSAGE",
            LocalTransactionState::RollbackMessage => "ROLLBACK_MESSAGE",
            LocalTransactionState::Unknown => "UNKNOW",
        }
    }

    fn resolution(self) -> TransactionResolution {
        match self {
            LocalTransactionState::CommitMessage => TransactionResolution::Commit,
            LocalTransactionState::RollbackMessage => TransactionResolution::Rollback,
            LocalTransactionState::Unknown => TransactionResolution::Unknown,
        }
    }
}

/// Answers the broker's questions about half messages whose outcome it
/// did not get (the producer said "unknown", or crashed).
pub trait TransactionListener: Send + Sync + 'static {
    /// The state of the local transaction of `msg`: the half message as the
    /// broker stored it, its topic without the namespace. Runs on the
    /// `rocketmq-txcheck-<n>` thread; a panic counts as
    /// [`LocalTransactionState::Unknown`] (the broker asks again).
    fn check_local_transaction(&self, msg: &MessageExt) -> LocalTransactionState;
}

impl<F: Fn(&MessageExt) -> LocalTransactionState + Send + Sync + 'static> TransactionListener for F {
    fn check_local_transaction(&self, msg: &MessageExt) -> LocalTransactionState {
        self(msg)
    }
}

/// The result of [`TransactionProducer::send_message_in_transaction`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionSendResult {
    /// The half message's send result.
    pub send_result: SendResult,
    /// What the local transaction returned (rollback when the half message was not stored OK).
    pub local_state: LocalTransactionState,
}

struct CheckRequest {
    broker_addr: String,
    header: CheckTransactionStateRequestHeader,
    msg: MessageExt,
    /// Bytes counted against [`ProducerConfig::check_queue_bytes`].
    size: usize,
}

/// The check-back queue shared by the connections' handlers (which add,
/// on their reader threads, never waiting) and the check thread (which takes).
struct CheckQueue {
    /// `None` once shut down.
    tx: Mutex<Option<SyncSender<CheckRequest>>>,
    capacity: usize,
    max_bytes: usize,
    queued: AtomicUsize,
    bytes: AtomicUsize,
    dropped: AtomicU64,
}

impl CheckQueue {
    fn drop_check(&self, addr: &str, why: &str) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        log_warn!("check-back dropped ({why}): broker={addr}");
    }

    /// Queues a CHECK_TRANSACTION_STATE request from `addr`, or drops it
    /// (counted) when the queue is full or would hold too many bytes.
    fn offer(&self, cmd: &RemotingCommand, addr: &str) {
        if lock(&self.tx).is_none() {
            return;
        }
        // Full: drop before decoding (inflating) anything.
        if self.queued.load(Ordering::SeqCst) >= self.capacity {
            return self.drop_check(addr, "queue full");
        }
        let Some(mut check) = parse_check(cmd, addr) else { return };
        check.size = cmd.body.len() + check.msg.body.len();
        if self.bytes.fetch_add(check.size, Ordering::SeqCst) + check.size > self.max_bytes {
            self.bytes.fetch_sub(check.size, Ordering::SeqCst);
            return self.drop_check(addr, "queue bytes");
        }
        let size = check.size;
        let sent = match lock(&self.tx).as_ref() {
            Some(tx) => tx.try_send(check),
            None => Err(TrySendError::Disconnected(check)),
        };
        match sent {
            Ok(()) => {
                self.queued.fetch_add(1, Ordering::SeqCst);
            }
            Err(e) => {
                self.bytes.fetch_sub(size, Ordering::SeqCst);
                if let TrySendError::Full(_) = e {
                    self.drop_check(addr, "queue full");
                }
            }
        }
    }

    /// Accounts for a check-back the check thread took.
    fn taken(&self, check: &CheckRequest) {
        self.queued.fetch_sub(1, Ordering::SeqCst);
        self.bytes.fetch_sub(check.size, Ordering::SeqCst);
    }
}

/// A producer of transactional messages.
///
/// A half message is stored but hidden; the local transaction runs; then
/// commit makes it visible and rollback drops it. When the outcome is
/// unknown, the broker later asks the producer group (any live member) and
/// the [`TransactionListener`] answers — even while the producer is idle.
///
/// Threads: those of [`Producer`], plus `rocketmq-txcheck-<n>`, which
/// answers check-backs; all stop on [`shutdown`](Self::shutdown) or `Drop`.
///
/// ```no_run
/// use rocketmq_blocking::producer::{LocalTransactionState, ProducerConfig, TransactionProducer};
/// use rocketmq_blocking::{Message, MessageExt};
///
/// let config = ProducerConfig::builder().group("tx-producer").namesrv_addr("127.0.0.1:9876").build()?;
/// let producer = TransactionProducer::new(config, |_msg: &MessageExt| LocalTransactionState::CommitMessage)?;
/// producer.start()?;
/// let result = producer.send_message_in_transaction(&Message::new("Payments", "debit 10"), |_msg, _sent| {
///     // ... write the local database row ...
///     LocalTransactionState::CommitMessage
/// })?;
/// assert_eq!(result.local_state, LocalTransactionState::CommitMessage);
/// # Ok::<(), rocketmq_blocking::Error>(())
/// ```
pub struct TransactionProducer {
    producer: Producer,
    listener: Arc<dyn TransactionListener>,
    checks: Mutex<Option<mpsc::Receiver<CheckRequest>>>,
    queue: Arc<CheckQueue>,
    checker: Mutex<Option<JoinHandle<()>>>,
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for TransactionProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransactionProducer").field("producer", &self.producer).finish()
    }
}

use crate::threads::lock;

/// Reads a CHECK_TRANSACTION_STATE request; `None` for anything malformed.
fn parse_check(cmd: &RemotingCommand, broker_addr: &str) -> Option<CheckRequest> {
    let header = CheckTransactionStateRequestHeader::from_ext_fields(&cmd.ext_fields).ok()?;
    let msg = decode_messages(&cmd.body).ok()?.into_iter().next()?;
    Some(CheckRequest { broker_addr: broker_addr.to_string(), header, msg, size: 0 })
}

impl TransactionProducer {
    /// A transaction producer whose check-backs `listener` answers.
    pub fn new(config: ProducerConfig, listener: impl TransactionListener) -> Result<Self> {
        let (tx, rx) = mpsc::sync_channel(config.check_queue());
        let queue = Arc::new(CheckQueue {
            tx: Mutex::new(Some(tx)),
            capacity: config.check_queue(),
            max_bytes: config.check_queue_bytes(),
            queued: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
        });
        let for_handler = Arc::clone(&queue);
        // Each connection's handler runs on its reader thread: it only queues
        // the check, and drops it when the queue is full (the broker asks again).
        let handler: HandlerFactory = Arc::new(move |addr: &str| {
            let addr = addr.to_string();
            let queue = Arc::clone(&for_handler);
            let handler: RequestHandler = Arc::new(move |cmd: &RemotingCommand| {
                if cmd.code == request::CHECK_TRANSACTION_STATE {
                    queue.offer(cmd, &addr);
                }
                None
            });
            handler
        });
        Ok(TransactionProducer {
            producer: Producer::with_handler(config, Some(handler))?,
            listener: Arc::new(listener),
            checks: Mutex::new(Some(rx)),
            queue,
            checker: Mutex::new(None),
            stop: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Check-backs dropped because [`ProducerConfig::check_queue`] of them
    /// were already waiting, or they would have held more than
    /// [`ProducerConfig::check_queue_bytes`] (the broker asks about those
    /// messages again).
    pub fn dropped_checks(&self) -> u64 {
        self.queue.dropped.load(Ordering::Relaxed)
    }

    /// Check-backs waiting for the listener now (at most [`ProducerConfig::check_queue`]).
    pub fn queued_checks(&self) -> usize {
        self.queue.queued.load(Ordering::SeqCst)
    }

    /// The plain producer inside (for ordinary sends and statistics).
    pub fn producer(&self) -> &Producer {
        &self.producer
    }

    /// Starts the producer and the check-back thread.
    pub fn start(&self) -> Result<()> {
        self.producer.start()?;
        let mut checker = lock(&self.checker);
        if checker.is_none() {
            let Some(rx) = lock(&self.checks).take() else { return Ok(()) };
            let inner = Arc::clone(&self.producer.inner);
            let listener = Arc::clone(&self.listener);
            let stop = Arc::clone(&self.stop);
            let queue = Arc::clone(&self.queue);
            *checker = Some(spawn("txcheck", move || loop {
                match rx.recv_timeout(Duration::from_millis(200)) {
                    // After shutdown began, queued checks are abandoned.
                    Ok(_) | Err(RecvTimeoutError::Timeout) if stop.load(Ordering::SeqCst) => return,
                    Ok(check) => {
                        queue.taken(&check);
                        answer_check(&inner, listener.as_ref(), check)
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            })?);
        }
        Ok(())
    }

    /// Sends `msg` as a half message, runs `local` with it and the send
    /// result, and commits or rolls back by what `local` returns (unknown:
    /// the broker will ask the [`TransactionListener`]).
    pub fn send_message_in_transaction(
        &self,
        msg: &Message,
        local: impl FnOnce(&Message, &SendResult) -> LocalTransactionState,
    ) -> Result<TransactionSendResult> {
        let inner = &self.producer.inner;
        let mut half = msg.clone();
        half.remove_property(property::DELAY_TIME_LEVEL);
        half.set_property(property::TRANSACTION_PREPARED, "true");
        half.set_property(property::PRODUCER_GROUP, inner.group.clone());
        let sent = inner.send(&half, RoutingStrategy::RoundRobin)?;
        let local_state = if sent.status == SendStatus::SendOk {
            catch_unwind(AssertUnwindSafe(|| local(msg, &sent))).unwrap_or(LocalTransactionState::Unknown)
        } else {
            LocalTransactionState::RollbackMessage
        };
        let wire_topic = inner.config.with_namespace(&sent.queue.topic);
        // The end of the transaction (oneway) gets a send timeout of its own.
        let deadline = Instant::now() + inner.config.send_timeout();
        let info = inner.topic_info(&wire_topic, deadline)?;
        let addr = info.broker_addr(&sent.queue.broker_name).ok_or_else(|| Error::QueueNotAvailable {
            topic: msg.topic().to_string(),
            reason: format!("broker {} left the route", sent.queue.broker_name),
        })?;
        let (_, commit_log_offset) = decode_offset_msg_id(&sent.offset_msg_id)?;
        let end = EndTransaction {
            producer_group: inner.group.clone(),
            tran_state_table_offset: sent.queue_offset,
            commit_log_offset,
            resolution: local_state.resolution(),
            from_transaction_check: false,
            msg_id: sent.msg_id.clone(),
            transaction_id: sent.transaction_id.clone(),
        };
        if let Some(t) = &inner.trace {
            let (tags, keys) = (msg.tags(), msg.property(property::KEYS));
            let id = &sent.msg_id;
            t.on_end_transaction(&wire_topic, tags, keys, None, id, addr, Some(id), local_state.java_name(), false);
        }
        inner.client(addr, deadline)?.end_transaction(&end, None)?;
        Ok(TransactionSendResult { send_result: sent, local_state })
    }

    /// Stops the check-back thread (check-backs still queued are abandoned:
    /// the broker asks again) and the producer. The thread is joined within
    /// a second; a listener call still running then is left to finish.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::SeqCst);
        *lock(&self.queue.tx) = None;
        self.producer.shutdown();
        if let Some(h) = lock(&self.checker).take() {
            crate::threads::join_until(vec![h], Instant::now() + Duration::from_secs(1));
        }
    }
}

impl Drop for TransactionProducer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Asks the listener and sends its answer to the broker that asked.
fn answer_check(inner: &Inner, listener: &dyn TransactionListener, check: CheckRequest) {
    // The listener sees the user's topic, without the namespace (as in Java).
    let mut user_msg = check.msg.clone();
    user_msg.topic = inner.config.without_namespace(&check.msg.topic).to_string();
    let state = catch_unwind(AssertUnwindSafe(|| listener.check_local_transaction(&user_msg)))
        .unwrap_or(LocalTransactionState::Unknown);
    log_debug!("check-back answered: broker={} msg={} state={state:?}", check.broker_addr, user_msg.msg_id);
    let Some(client) = inner.client_by_addr(&check.broker_addr) else { return };
    let msg_id = check
        .msg
        .property(property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX)
        .map(str::to_string)
        .or(check.header.msg_id.clone())
        .unwrap_or_else(|| check.msg.msg_id.clone());
    let end = EndTransaction {
        producer_group: inner.group.clone(),
        tran_state_table_offset: check.header.tran_state_table_offset.unwrap_or(check.msg.queue_offset),
        commit_log_offset: check.header.commit_log_offset,
        resolution: state.resolution(),
        from_transaction_check: true,
        msg_id,
        transaction_id: check.header.transaction_id.clone(),
    };
    if let Some(t) = &inner.trace {
        let m = &check.msg;
        let (tags, keys, region) = (m.tags(), m.property(property::KEYS), m.property(property::MSG_REGION));
        let id = &end.msg_id;
        t.on_end_transaction(&m.topic, tags, keys, region, id, &check.broker_addr, Some(id), state.java_name(), true);
    }
    let _ = client.end_transaction(&end, None);
}
