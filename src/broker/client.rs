//! `BrokerClient`: one connection to one broker, one method per operation.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Error, OperationKind, ResponseContext, Result};
use crate::net::{Connection, ConnectionConfig, RequestHandler};
use crate::protocol::body::{ConsumerListBody, HeartbeatData, LockBatchRequestBody, LockBatchResponseBody};
use crate::protocol::compress::{self, Deflater};
use crate::protocol::header::*;
use crate::protocol::message::{self, property, pull_flag, sys_flag};
use crate::protocol::{request, Message, MessageExt, MessageQueue, RemotingCommand, ResponseCode, SerializeType};
use crate::threads::lock;
use crate::validate;

/// Default request timeout of a [`BrokerClient`]: 30 s (the design's value).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Bodies of this size or larger are compressed with zlib (Java's
/// `compressMsgBodyOverHowmuch`: 4 KiB, compared with `>=` by Java and Go).
pub const DEFAULT_COMPRESS_OVER: usize = 4 * 1024;
/// zlib level used for bodies (Java: 5).
pub const DEFAULT_COMPRESS_LEVEL: u8 = 5;
/// Messages per pull (Java: 32).
pub const DEFAULT_PULL_BATCH_SIZE: i32 = 32;
/// Template topic for auto-created topics.
pub const AUTO_CREATE_TOPIC_KEY: &str = "TBW102";
/// Queue count of auto-created topics (Java: 4).
pub const DEFAULT_TOPIC_QUEUE_NUMS: i32 = 4;

/// Settings of a [`BrokerClient`].
///
/// ```
/// use std::time::Duration;
/// use rocketmq_blocking::broker::ClientConfig;
///
/// let config = ClientConfig::builder().request_timeout(Duration::from_secs(5)).build()?;
/// assert_eq!(config.request_timeout(), Duration::from_secs(5));
/// # Ok::<(), rocketmq_blocking::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    connection: ConnectionConfig,
    request_timeout: Duration,
    client_id: String,
    max_message_size: usize,
    compress_over: usize,
    compress_level: u8,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            connection: ConnectionConfig::default(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            client_id: default_client_id(),
            max_message_size: validate::DEFAULT_MAX_MESSAGE_SIZE,
            compress_over: DEFAULT_COMPRESS_OVER,
            compress_level: DEFAULT_COMPRESS_LEVEL,
        }
    }
}

/// `ip@pid#nanos`, the shape of a Java client id.
pub fn default_client_id() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("127.0.0.1@{}#{}", std::process::id(), nanos)
}

impl ClientConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> ClientConfigBuilder {
        ClientConfigBuilder { config: ClientConfig::default() }
    }
    /// Connection settings.
    pub fn connection(&self) -> &ConnectionConfig {
        &self.connection
    }
    /// Time to wait for a response.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }
    /// Client id sent in heartbeats and locks.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }
    /// Largest body accepted for sending.
    pub fn max_message_size(&self) -> usize {
        self.max_message_size
    }
    /// Bodies of this size or larger are compressed.
    pub fn compress_over(&self) -> usize {
        self.compress_over
    }
    /// Credentials that sign every request, if any (`acl` feature).
    #[cfg(feature = "acl")]
    pub fn credentials(&self) -> Option<&crate::acl::Credentials> {
        self.connection.credentials.as_ref()
    }
}

/// Builds a [`ClientConfig`]; `build` checks the values.
#[derive(Debug, Clone)]
pub struct ClientConfigBuilder {
    config: ClientConfig,
}

impl ClientConfigBuilder {
    /// TCP connect timeout (default 3 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.config.connection.connect_timeout = d;
        self
    }
    /// Socket write timeout (default 3 s).
    pub fn write_timeout(mut self, d: Duration) -> Self {
        self.config.connection.write_timeout = d;
        self
    }
    /// Response timeout (default 30 s).
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.config.request_timeout = d;
        self
    }
    /// Largest frame accepted (default 16 MiB).
    pub fn max_frame_size(mut self, n: usize) -> Self {
        self.config.connection.max_frame_size = n;
        self
    }
    /// Header serialization of requests (default JSON).
    pub fn serialize_type(mut self, t: SerializeType) -> Self {
        self.config.connection.serialize_type = t;
        self
    }
    /// Client id (default `127.0.0.1@pid#nanos`).
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.config.client_id = id.into();
        self
    }
    /// Largest body accepted for sending (default 4 MiB).
    pub fn max_message_size(mut self, n: usize) -> Self {
        self.config.max_message_size = n;
        self
    }
    /// Compress bodies of this size or larger (default 4 KiB, as Java; `usize::MAX` turns it off).
    pub fn compress_over(mut self, n: usize) -> Self {
        self.config.compress_over = n;
        self
    }
    /// Credentials that sign every request, for brokers with access control
    /// (`acl` feature; default none).
    #[cfg(feature = "acl")]
    pub fn credentials(mut self, credentials: crate::acl::Credentials) -> Self {
        self.config.connection.credentials = Some(credentials);
        self
    }
    /// Checks the values and returns the config.
    pub fn build(self) -> Result<ClientConfig> {
        let c = self.config;
        if c.connection.connect_timeout.is_zero() || c.request_timeout.is_zero() || c.connection.write_timeout.is_zero()
        {
            return Err(Error::invalid("timeout", "timeouts must be greater than zero"));
        }
        if c.connection.max_frame_size < 1024 {
            return Err(Error::invalid("max frame size", "must be at least 1024 bytes"));
        }
        if c.max_message_size == 0 || c.max_message_size > c.connection.max_frame_size {
            return Err(Error::invalid("max message size", "must be between 1 and the max frame size"));
        }
        if c.client_id.is_empty() {
            return Err(Error::invalid("client id", "is empty"));
        }
        Ok(c)
    }
}

/// How a send ended, for a message the broker stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SendStatus {
    /// Stored.
    SendOk,
    /// Stored, but the flush to disk timed out.
    FlushDiskTimeout,
    /// Stored, but the flush to the slave timed out.
    FlushSlaveTimeout,
    /// Stored, but no slave was available.
    SlaveNotAvailable,
}

/// What the broker answered to a send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendResult {
    /// Status.
    pub status: SendStatus,
    /// The client message id (unique key); comma-joined for a batch.
    pub msg_id: String,
    /// The offset message id from the broker; comma-joined for a batch.
    pub offset_msg_id: String,
    /// Queue the message went to.
    pub queue: MessageQueue,
    /// Queue offset of the (first) message.
    pub queue_offset: i64,
    /// Transaction id (half messages).
    pub transaction_id: Option<String>,
    /// Region id.
    pub region_id: String,
    /// Whether the broker has tracing on.
    pub trace_on: bool,
}

/// Status of a pull.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PullStatus {
    /// Messages found.
    Found,
    /// No message at or after the offset yet.
    NoNewMsg,
    /// Messages exist but none matched the filter.
    NoMatchedMsg,
    /// The offset is outside the queue's range.
    OffsetIllegal,
}

/// What the broker answered to a pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullResult {
    /// Status.
    pub status: PullStatus,
    /// Offset to pull from next.
    pub next_begin_offset: i64,
    /// Queue's min offset.
    pub min_offset: i64,
    /// Queue's max offset.
    pub max_offset: i64,
    /// Broker id to pull from next (0 = master).
    pub suggest_which_broker_id: i64,
    /// The messages (empty unless `Found`).
    pub messages: Vec<MessageExt>,
}

/// Parameters of a pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    /// Consumer group.
    pub consumer_group: String,
    /// Queue.
    pub queue: MessageQueue,
    /// First offset wanted.
    pub offset: i64,
    /// At most this many messages (default 32).
    pub max_msgs: i32,
    /// Extra pull sys flag bits (SUSPEND, SUBSCRIPTION and COMMIT_OFFSET are set from the fields below).
    pub sys_flag: i32,
    /// Consumer offset to commit with the pull (only when > 0).
    pub commit_offset: i64,
    /// Long-poll: the broker holds the request up to this long.
    pub suspend: Option<Duration>,
    /// Subscription expression (`*`, `A || B`, or SQL92). `Some` sets the
    /// SUBSCRIPTION flag and needs no heartbeat; `None` makes the broker use
    /// the subscription the group registered by heartbeat.
    pub expression: Option<String>,
    /// `TAG` (default) or `SQL92`.
    pub expression_type: String,
    /// Subscription version.
    pub sub_version: i64,
}

impl PullRequest {
    /// Pull up to 32 messages of `queue` from `offset`, expression `*`, no suspend.
    pub fn new(consumer_group: impl Into<String>, queue: MessageQueue, offset: i64) -> Self {
        PullRequest {
            consumer_group: consumer_group.into(),
            queue,
            offset,
            max_msgs: DEFAULT_PULL_BATCH_SIZE,
            sys_flag: 0,
            commit_offset: 0,
            suspend: None,
            expression: Some(crate::protocol::body::SUB_ALL.to_string()),
            expression_type: crate::protocol::body::EXPRESSION_TAG.to_string(),
            sub_version: 0,
        }
    }
}

/// What to do with a half message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransactionResolution {
    /// Make it visible.
    Commit,
    /// Drop it.
    Rollback,
    /// Not known yet; the broker will ask again.
    Unknown,
}

impl TransactionResolution {
    fn flag(self) -> i32 {
        match self {
            TransactionResolution::Commit => sys_flag::TRANSACTION_COMMIT,
            TransactionResolution::Rollback => sys_flag::TRANSACTION_ROLLBACK,
            TransactionResolution::Unknown => sys_flag::TRANSACTION_NOT_TYPE,
        }
    }
}

/// Parameters of END_TRANSACTION.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndTransaction {
    /// Producer group.
    pub producer_group: String,
    /// Queue offset of the half message (`SendResult::queue_offset`).
    pub tran_state_table_offset: i64,
    /// Commit-log offset of the half message (from its offset message id).
    pub commit_log_offset: i64,
    /// Commit, rollback or unknown.
    pub resolution: TransactionResolution,
    /// Whether this answers a broker check-back.
    pub from_transaction_check: bool,
    /// The message's unique id.
    pub msg_id: String,
    /// Transaction id.
    pub transaction_id: Option<String>,
}

/// One connection to one broker with a typed method per operation.
///
/// `BrokerClient` is `Send + Sync`: share it (in an `Arc`) between threads;
/// their requests are in flight together on the one connection.
///
/// ```no_run
/// use rocketmq_blocking::broker::{BrokerClient, ClientConfig};
/// use rocketmq_blocking::{Message, MessageQueue};
///
/// let client = BrokerClient::connect("127.0.0.1:10911", &ClientConfig::default())?;
/// let queue = MessageQueue::new("TopicTest", "broker-a", 0);
/// let sent = client.send("my-producer-group", &queue, &Message::new("TopicTest", "hello"))?;
/// println!("stored at offset {}", sent.queue_offset);
/// # Ok::<(), rocketmq_blocking::Error>(())
/// ```
pub struct BrokerClient {
    conn: Connection,
    config: ClientConfig,
    /// Compressors kept for the next bodies (at most [`DEFLATERS_KEPT`]).
    deflaters: Mutex<Vec<Deflater>>,
}

/// Idle compressors a [`BrokerClient`] keeps (a few hundred KiB each).
const DEFLATERS_KEPT: usize = 4;

impl std::fmt::Debug for BrokerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerClient")
            .field("addr", &self.conn.addr())
            .field("connected", &self.is_connected())
            .finish()
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl BrokerClient {
    /// Connects to the broker at `addr`.
    pub fn connect(addr: &str, config: &ClientConfig) -> Result<BrokerClient> {
        Ok(BrokerClient {
            conn: Connection::connect(addr, &config.connection)?,
            config: config.clone(),
            deflaters: Mutex::new(Vec::new()),
        })
    }

    /// Connects like [`connect`](Self::connect), waiting at most `limit`
    /// for the TCP connect (less than the configured connect timeout when
    /// less time is left of a caller's deadline).
    pub fn connect_within(addr: &str, config: &ClientConfig, limit: Duration) -> Result<BrokerClient> {
        let mut connection = config.connection.clone();
        connection.connect_timeout = connection.connect_timeout.min(limit.max(Duration::from_millis(1)));
        Ok(BrokerClient {
            conn: Connection::connect(addr, &connection)?,
            config: config.clone(),
            deflaters: Mutex::new(Vec::new()),
        })
    }

    /// Broker address.
    pub fn addr(&self) -> &str {
        self.conn.addr()
    }

    /// The settings.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The underlying connection.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Whether the connection is still open.
    pub fn is_connected(&self) -> bool {
        !self.conn.is_closed()
    }

    /// Closes the connection; requests in flight fail at once.
    pub fn close(&self) {
        self.conn.close()
    }

    /// Answers requests the broker starts (check-back, ids changed, ...).
    pub fn set_request_handler(&self, handler: Option<RequestHandler>) {
        self.conn.set_request_handler(handler)
    }

    /// Sends a request and waits for the response with `timeout`.
    pub fn invoke(&self, cmd: RemotingCommand, timeout: Duration) -> Result<RemotingCommand> {
        self.conn.invoke(cmd, timeout)
    }

    fn call(&self, cmd: RemotingCommand) -> Result<RemotingCommand> {
        self.conn.invoke(cmd, self.config.request_timeout)
    }

    fn fail(
        &self,
        resp: &RemotingCommand,
        operation: &'static str,
        kind: OperationKind,
        topic: &str,
        queue_id: i32,
    ) -> Error {
        let ctx = ResponseContext { operation, kind, addr: self.addr(), topic, queue_id };
        Error::from_response(resp.response_code(), resp.remark.as_deref(), ctx)
    }

    pub(crate) fn expect_success(
        &self,
        resp: &RemotingCommand,
        operation: &'static str,
        kind: OperationKind,
        topic: &str,
        queue_id: i32,
    ) -> Result<()> {
        match resp.response_code() {
            ResponseCode::Success => Ok(()),
            _ => Err(self.fail(resp, operation, kind, topic, queue_id)),
        }
    }

    fn header<T>(&self, parsed: std::result::Result<T, crate::ProtocolError>) -> Result<T> {
        parsed.map_err(|e| Error::protocol(self.addr(), e))
    }

    /// Prepares a single message: unique id, compression, sys flag.
    fn prepare(&self, msg: &Message) -> Result<(Message, i32)> {
        validate::check_message(msg, self.config.max_message_size)?;
        let mut msg = msg.clone();
        if msg.unique_id().is_none() {
            msg.set_property(property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX, message::new_unique_id());
        }
        let mut flag = 0;
        if msg.body().len() >= self.config.compress_over {
            if let Some(z) = self.deflate(msg.body()) {
                msg.set_body(z);
                flag |= sys_flag::COMPRESSED | compress::ZLIB_TYPE_BITS;
            }
        }
        if msg.property(property::TRANSACTION_PREPARED) == Some("true") {
            flag |= sys_flag::TRANSACTION_PREPARED;
        }
        Ok((msg, flag))
    }

    /// zlib at the configured level, with a kept compressor.
    fn deflate(&self, body: &[u8]) -> Option<Vec<u8>> {
        let mut d = lock(&self.deflaters).pop().unwrap_or_default();
        let z = d.deflate(body, self.config.compress_level);
        let mut kept = lock(&self.deflaters);
        if kept.len() < DEFLATERS_KEPT {
            kept.push(d);
        }
        z
    }

    fn send_command(
        &self,
        code: i32,
        group: &str,
        queue: &MessageQueue,
        msg: &Message,
        sys_flag: i32,
        batch: bool,
    ) -> RemotingCommand {
        let header = SendMessageRequestHeaderV2 {
            producer_group: group.to_string(),
            topic: queue.topic.clone(),
            default_topic: AUTO_CREATE_TOPIC_KEY.into(),
            default_topic_queue_nums: DEFAULT_TOPIC_QUEUE_NUMS,
            queue_id: queue.queue_id,
            sys_flag,
            born_timestamp: now_ms(),
            flag: msg.flag(),
            properties: Some(message::encode_properties(msg.properties())),
            reconsume_times: Some(0),
            unit_mode: Some(false),
            max_reconsume_times: None,
            batch: Some(batch),
            broker_name: Some(queue.broker_name.clone()),
        };
        RemotingCommand::request(code).with_ext_fields(header.to_ext_fields()).with_body(msg.body().to_vec())
    }

    fn check_target(&self, group: &str, queue: &MessageQueue, topic: &str) -> Result<()> {
        validate::check_group(group)?;
        validate::check_queue_id(queue.queue_id)?;
        if queue.topic != topic {
            return Err(Error::invalid(
                "queue",
                format!("queue of topic {:?} for a message of topic {topic:?}", queue.topic),
            ));
        }
        Ok(())
    }

    fn send_result(&self, resp: RemotingCommand, queue: &MessageQueue, msg_id: String) -> Result<SendResult> {
        let status = match resp.response_code() {
            ResponseCode::Success => SendStatus::SendOk,
            ResponseCode::FlushDiskTimeout => SendStatus::FlushDiskTimeout,
            ResponseCode::FlushSlaveTimeout => SendStatus::FlushSlaveTimeout,
            ResponseCode::SlaveNotAvailable => SendStatus::SlaveNotAvailable,
            _ => return Err(self.fail(&resp, "send message", OperationKind::Send, &queue.topic, queue.queue_id)),
        };
        let h = self.header(SendMessageResponseHeader::from_ext_fields(&resp.ext_fields))?;
        Ok(SendResult {
            status,
            msg_id,
            offset_msg_id: h.msg_id,
            queue: MessageQueue::new(queue.topic.clone(), queue.broker_name.clone(), h.queue_id),
            queue_offset: h.queue_offset,
            transaction_id: h.transaction_id,
            region_id: h.msg_region.unwrap_or_else(|| "DefaultRegion".into()),
            trace_on: h.trace_on.as_deref() != Some("false"),
        })
    }

    /// Sends one message to `queue` and waits for the broker to store it.
    ///
    /// A reply of request-reply (`MSG_TYPE` = `reply`, see
    /// [`create_reply_message`](crate::producer::create_reply_message)) goes
    /// with SEND_REPLY_MESSAGE_V2, as Java sends it: the broker pushes it to
    /// the requester and answers SYSTEM_ERROR when it cannot.
    pub fn send(&self, producer_group: &str, queue: &MessageQueue, msg: &Message) -> Result<SendResult> {
        self.send_within(producer_group, queue, msg, self.config.request_timeout)
    }

    /// [`send`](Self::send) waiting at most `timeout` for the answer.
    pub fn send_within(
        &self,
        producer_group: &str,
        queue: &MessageQueue,
        msg: &Message,
        timeout: Duration,
    ) -> Result<SendResult> {
        self.check_target(producer_group, queue, msg.topic())?;
        let (msg, flag) = self.prepare(msg)?;
        let cmd = self.send_command(send_code(&msg), producer_group, queue, &msg, flag, false);
        let resp = self.conn.invoke(cmd, timeout)?;
        self.send_result(resp, queue, msg.unique_id().unwrap_or_default().to_string())
    }

    /// Sends one message without waiting for an answer.
    pub fn send_oneway(&self, producer_group: &str, queue: &MessageQueue, msg: &Message) -> Result<()> {
        self.check_target(producer_group, queue, msg.topic())?;
        let (msg, flag) = self.prepare(msg)?;
        self.conn.invoke_oneway(self.send_command(send_code(&msg), producer_group, queue, &msg, flag, false))
    }

    fn batch_command(
        &self,
        producer_group: &str,
        queue: &MessageQueue,
        msgs: &[Message],
    ) -> Result<(RemotingCommand, String)> {
        validate::check_batch(msgs, self.config.max_message_size)?;
        self.check_target(producer_group, queue, msgs[0].topic())?;
        let mut ids = Vec::with_capacity(msgs.len());
        let prepared: Vec<Message> = msgs
            .iter()
            .map(|m| {
                let mut m = m.clone();
                if m.unique_id().is_none() {
                    m.set_property(property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX, message::new_unique_id());
                }
                ids.push(m.unique_id().unwrap_or_default().to_string());
                m
            })
            .collect();
        // The carrier gets no unique key of its own: 5.3 brokers append the
        // carrier's properties to every message of the batch, and a carrier
        // key would replace each message's own.
        let carrier = Message::new(queue.topic.clone(), message::encode_batch(&prepared));
        let cmd = self.send_command(request::SEND_BATCH_MESSAGE, producer_group, queue, &carrier, 0, true);
        Ok((cmd, ids.join(",")))
    }

    /// Sends a batch (one topic, no delays) to `queue`; stored in order.
    pub fn send_batch(&self, producer_group: &str, queue: &MessageQueue, msgs: &[Message]) -> Result<SendResult> {
        self.send_batch_within(producer_group, queue, msgs, self.config.request_timeout)
    }

    /// [`send_batch`](Self::send_batch) waiting at most `timeout` for the answer.
    pub fn send_batch_within(
        &self,
        producer_group: &str,
        queue: &MessageQueue,
        msgs: &[Message],
        timeout: Duration,
    ) -> Result<SendResult> {
        let (cmd, ids) = self.batch_command(producer_group, queue, msgs)?;
        let resp = self.conn.invoke(cmd, timeout)?;
        self.send_result(resp, queue, ids)
    }

    /// Sends a batch without waiting for an answer.
    pub fn send_batch_oneway(&self, producer_group: &str, queue: &MessageQueue, msgs: &[Message]) -> Result<()> {
        let (cmd, _) = self.batch_command(producer_group, queue, msgs)?;
        self.conn.invoke_oneway(cmd)
    }

    /// Pulls messages.
    pub fn pull(&self, req: &PullRequest) -> Result<PullResult> {
        let (cmd, timeout) = self.pull_command(req)?;
        let resp = self.conn.invoke(cmd, timeout)?;
        self.pull_result(req, resp)
    }

    /// The PULL_MESSAGE request for `req`, and how long to wait for its
    /// answer (request timeout + broker suspend).
    pub(crate) fn pull_command(&self, req: &PullRequest) -> Result<(RemotingCommand, Duration)> {
        validate::check_group(&req.consumer_group)?;
        validate::check_topic(&req.queue.topic)?;
        validate::check_queue_id(req.queue.queue_id)?;
        if req.max_msgs <= 0 {
            return Err(Error::invalid("max messages", "must be positive"));
        }
        let mut flag = req.sys_flag;
        if req.commit_offset > 0 {
            flag |= pull_flag::COMMIT_OFFSET;
        }
        if req.suspend.is_some() {
            flag |= pull_flag::SUSPEND;
        }
        if req.expression.is_some() {
            flag |= pull_flag::SUBSCRIPTION;
        }
        let suspend = req.suspend.unwrap_or_default();
        let header = PullMessageRequestHeader {
            consumer_group: req.consumer_group.clone(),
            topic: req.queue.topic.clone(),
            queue_id: req.queue.queue_id,
            queue_offset: req.offset,
            max_msg_nums: req.max_msgs,
            sys_flag: flag,
            commit_offset: req.commit_offset,
            suspend_timeout_millis: suspend.as_millis() as i64,
            subscription: req.expression.clone(),
            sub_version: req.sub_version,
            expression_type: Some(req.expression_type.clone()),
            max_msg_bytes: None,
            broker_name: Some(req.queue.broker_name.clone()),
        };
        let cmd = RemotingCommand::request(request::PULL_MESSAGE).with_ext_fields(header.to_ext_fields());
        Ok((cmd, self.config.request_timeout + suspend))
    }

    /// Reads the answer to the pull `req`.
    pub(crate) fn pull_result(&self, req: &PullRequest, resp: RemotingCommand) -> Result<PullResult> {
        let status = match resp.response_code() {
            ResponseCode::Success => PullStatus::Found,
            ResponseCode::PullNotFound => PullStatus::NoNewMsg,
            ResponseCode::PullRetryImmediately => PullStatus::NoMatchedMsg,
            ResponseCode::PullOffsetMoved => PullStatus::OffsetIllegal,
            _ => {
                return Err(self.fail(&resp, "pull message", OperationKind::Pull, &req.queue.topic, req.queue.queue_id))
            }
        };
        let h = self.header(PullMessageResponseHeader::from_ext_fields(&resp.ext_fields))?;
        let messages =
            if status == PullStatus::Found { self.header(message::decode_messages(&resp.body))? } else { Vec::new() };
        Ok(PullResult {
            status,
            next_begin_offset: h.next_begin_offset,
            min_offset: h.min_offset,
            max_offset: h.max_offset,
            suggest_which_broker_id: h.suggest_which_broker_id,
            messages,
        })
    }

    /// The stored offset of a group on a queue; `None` when the broker has none.
    pub fn query_consumer_offset(&self, group: &str, queue: &MessageQueue) -> Result<Option<i64>> {
        validate::check_group(group)?;
        let header = QueryConsumerOffsetRequestHeader {
            consumer_group: group.to_string(),
            topic: queue.topic.clone(),
            queue_id: queue.queue_id,
            set_zero_if_not_found: Some(false),
            broker_name: Some(queue.broker_name.clone()),
        };
        let resp = self
            .call(RemotingCommand::request(request::QUERY_CONSUMER_OFFSET).with_ext_fields(header.to_ext_fields()))?;
        match resp.response_code() {
            ResponseCode::Success => {
                Ok(Some(self.header(OffsetResponseHeader::from_ext_fields(&resp.ext_fields))?.offset))
            }
            ResponseCode::QueryNotFound => Ok(None),
            _ => Err(self.fail(&resp, "query consumer offset", OperationKind::Offset, &queue.topic, queue.queue_id)),
        }
    }

    pub(crate) fn update_offset_command(
        &self,
        group: &str,
        queue: &MessageQueue,
        offset: i64,
    ) -> Result<RemotingCommand> {
        validate::check_group(group)?;
        if offset < 0 {
            return Err(Error::invalid("offset", format!("{offset} is negative")));
        }
        let header = UpdateConsumerOffsetRequestHeader {
            consumer_group: group.to_string(),
            topic: queue.topic.clone(),
            queue_id: queue.queue_id,
            commit_offset: offset,
            broker_name: Some(queue.broker_name.clone()),
        };
        Ok(RemotingCommand::request(request::UPDATE_CONSUMER_OFFSET).with_ext_fields(header.to_ext_fields()))
    }

    /// Stores a group's offset on a queue and waits for the broker.
    pub fn update_consumer_offset(&self, group: &str, queue: &MessageQueue, offset: i64) -> Result<()> {
        let resp = self.call(self.update_offset_command(group, queue, offset)?)?;
        self.expect_success(&resp, "update consumer offset", OperationKind::Offset, &queue.topic, queue.queue_id)
    }

    /// Stores a group's offset without waiting (as the Java offset store does).
    pub fn update_consumer_offset_oneway(&self, group: &str, queue: &MessageQueue, offset: i64) -> Result<()> {
        self.conn.invoke_oneway(self.update_offset_command(group, queue, offset)?)
    }

    fn offset_call(&self, code: i32, operation: &'static str, fields: ExtFields, queue: &MessageQueue) -> Result<i64> {
        let resp = self.call(RemotingCommand::request(code).with_ext_fields(fields))?;
        self.expect_success(&resp, operation, OperationKind::Offset, &queue.topic, queue.queue_id)?;
        Ok(self.header(OffsetResponseHeader::from_ext_fields(&resp.ext_fields))?.offset)
    }

    /// The offset of the first message stored at or after `timestamp_ms`.
    pub fn search_offset(&self, queue: &MessageQueue, timestamp_ms: i64) -> Result<i64> {
        let h = SearchOffsetRequestHeader {
            topic: queue.topic.clone(),
            queue_id: queue.queue_id,
            timestamp: timestamp_ms,
            broker_name: Some(queue.broker_name.clone()),
        };
        self.offset_call(request::SEARCH_OFFSET_BY_TIMESTAMP, "search offset", h.to_ext_fields(), queue)
    }

    /// The queue's max offset (one past the last message).
    pub fn max_offset(&self, queue: &MessageQueue) -> Result<i64> {
        let h = QueueOffsetRequestHeader {
            topic: queue.topic.clone(),
            queue_id: queue.queue_id,
            broker_name: Some(queue.broker_name.clone()),
        };
        self.offset_call(request::GET_MAX_OFFSET, "get max offset", h.to_ext_fields(), queue)
    }

    /// The queue's min offset.
    pub fn min_offset(&self, queue: &MessageQueue) -> Result<i64> {
        let h = QueueOffsetRequestHeader {
            topic: queue.topic.clone(),
            queue_id: queue.queue_id,
            broker_name: Some(queue.broker_name.clone()),
        };
        self.offset_call(request::GET_MIN_OFFSET, "get min offset", h.to_ext_fields(), queue)
    }

    fn json_body<T: serde::Serialize>(value: &T) -> Vec<u8> {
        // Serializing the crate's own plain structs cannot fail.
        serde_json::to_vec(value).unwrap_or_default()
    }

    /// Sends a heartbeat (producer and consumer groups of this client).
    pub fn heartbeat(&self, data: &HeartbeatData) -> Result<()> {
        let resp = self.call(Self::heartbeat_command(data))?;
        self.expect_success(&resp, "heartbeat", OperationKind::Other, "", -1)
    }

    /// The HEART_BEAT request.
    pub(crate) fn heartbeat_command(data: &HeartbeatData) -> RemotingCommand {
        RemotingCommand::request(request::HEART_BEAT).with_body(Self::json_body(data))
    }

    /// The UNREGISTER_CLIENT request.
    pub(crate) fn unregister_command(
        client_id: &str,
        producer_group: Option<&str>,
        consumer_group: Option<&str>,
    ) -> RemotingCommand {
        let h = UnregisterClientRequestHeader {
            client_id: client_id.to_string(),
            producer_group: producer_group.map(str::to_string),
            consumer_group: consumer_group.map(str::to_string),
        };
        RemotingCommand::request(request::UNREGISTER_CLIENT).with_ext_fields(h.to_ext_fields())
    }

    /// Unregisters a client from a producer and/or consumer group.
    pub fn unregister_client(
        &self,
        client_id: &str,
        producer_group: Option<&str>,
        consumer_group: Option<&str>,
    ) -> Result<()> {
        let resp = self.call(Self::unregister_command(client_id, producer_group, consumer_group))?;
        self.expect_success(&resp, "unregister client", OperationKind::Other, "", -1)
    }

    /// Locks queues for orderly consumption; returns the queues now held by `client_id`.
    pub fn lock_batch_mq(&self, group: &str, client_id: &str, queues: &[MessageQueue]) -> Result<Vec<MessageQueue>> {
        let body = LockBatchRequestBody {
            consumer_group: group.to_string(),
            client_id: client_id.to_string(),
            only_this_broker: false,
            mq_set: queues.to_vec(),
        };
        let resp = self.call(RemotingCommand::request(request::LOCK_BATCH_MQ).with_body(Self::json_body(&body)))?;
        self.expect_success(&resp, "lock queues", OperationKind::Other, "", -1)?;
        let parsed: LockBatchResponseBody = serde_json::from_slice(&resp.body).map_err(|e| {
            Error::protocol(
                self.addr(),
                crate::ProtocolError::InvalidJson { what: "lock response", reason: e.to_string() },
            )
        })?;
        Ok(parsed.lock_ok_mq_set)
    }

    /// Releases queue locks and waits for the broker.
    pub fn unlock_batch_mq(&self, group: &str, client_id: &str, queues: &[MessageQueue]) -> Result<()> {
        let resp = self.call(Self::unlock_command(group, client_id, queues))?;
        self.expect_success(&resp, "unlock queues", OperationKind::Other, "", -1)
    }

    /// The UNLOCK_BATCH_MQ request.
    pub(crate) fn unlock_command(group: &str, client_id: &str, queues: &[MessageQueue]) -> RemotingCommand {
        let body = LockBatchRequestBody {
            consumer_group: group.to_string(),
            client_id: client_id.to_string(),
            only_this_broker: false,
            mq_set: queues.to_vec(),
        };
        RemotingCommand::request(request::UNLOCK_BATCH_MQ).with_body(Self::json_body(&body))
    }

    /// Commits or rolls back a half message (oneway, as in Java).
    pub fn end_transaction(&self, end: &EndTransaction, remark: Option<String>) -> Result<()> {
        validate::check_group(&end.producer_group)?;
        let h = EndTransactionRequestHeader {
            producer_group: end.producer_group.clone(),
            tran_state_table_offset: end.tran_state_table_offset,
            commit_log_offset: end.commit_log_offset,
            commit_or_rollback: end.resolution.flag(),
            from_transaction_check: end.from_transaction_check,
            msg_id: end.msg_id.clone(),
            transaction_id: end.transaction_id.clone(),
        };
        let mut cmd = RemotingCommand::request(request::END_TRANSACTION).with_ext_fields(h.to_ext_fields());
        cmd.remark = remark;
        self.conn.invoke_oneway(cmd)
    }

    /// Sends a consumed message back for a later retry (`%RETRY%<group>`);
    /// after `max_reconsume_times` the broker moves it to `%DLQ%<group>`.
    pub fn send_message_back(
        &self,
        group: &str,
        msg: &MessageExt,
        delay_level: i32,
        max_reconsume_times: i32,
    ) -> Result<()> {
        self.send_back(None, group, msg, delay_level, max_reconsume_times)
    }

    /// [`send_message_back`](Self::send_message_back) naming the broker that
    /// stored the message, as Java 5.x does: a 5.x proxy, which stands for
    /// every broker at one address, refuses a send-back without it
    /// (VERSION_NOT_SUPPORTED "Request doesn't have field bname").
    ///
    /// ```no_run
    /// # use rocketmq_blocking::{BrokerClient, ClientConfig, MessageQueue, PullRequest};
    /// let client = BrokerClient::connect("127.0.0.1:8080", &ClientConfig::default())?;
    /// let queue = MessageQueue::new("TopicTest", "broker-a", 0);
    /// let pulled = client.pull(&PullRequest::new("my_group", queue.clone(), 0))?;
    /// for m in &pulled.messages {
    ///     client.send_message_back_to_broker(&queue.broker_name, "my_group", m, 1, 16)?;
    /// }
    /// # Ok::<(), rocketmq_blocking::Error>(())
    /// ```
    pub fn send_message_back_to_broker(
        &self,
        broker_name: &str,
        group: &str,
        msg: &MessageExt,
        delay_level: i32,
        max_reconsume_times: i32,
    ) -> Result<()> {
        self.send_back(Some(broker_name), group, msg, delay_level, max_reconsume_times)
    }

    fn send_back(
        &self,
        broker_name: Option<&str>,
        group: &str,
        msg: &MessageExt,
        delay_level: i32,
        max_reconsume_times: i32,
    ) -> Result<()> {
        validate::check_group(group)?;
        let h = ConsumerSendMsgBackRequestHeader {
            offset: msg.commit_log_offset,
            group: group.to_string(),
            delay_level,
            origin_msg_id: Some(msg.msg_id.clone()),
            origin_topic: Some(msg.topic.clone()),
            unit_mode: false,
            max_reconsume_times: Some(max_reconsume_times),
            broker_name: broker_name.map(str::to_string),
        };
        let resp =
            self.call(RemotingCommand::request(request::CONSUMER_SEND_MSG_BACK).with_ext_fields(h.to_ext_fields()))?;
        self.expect_success(&resp, "send message back", OperationKind::Other, &msg.topic, msg.queue_id)
    }

    /// Client ids of the consumers of a group (empty when none is online;
    /// the broker answers SYSTEM_ERROR "no consumer" then).
    pub fn consumer_ids(&self, group: &str) -> Result<Vec<String>> {
        validate::check_group(group)?;
        let h = ConsumerGroupHeader { consumer_group: group.to_string() };
        let resp = self
            .call(RemotingCommand::request(request::GET_CONSUMER_LIST_BY_GROUP).with_ext_fields(h.to_ext_fields()))?;
        match resp.response_code() {
            ResponseCode::Success => {
                let body: ConsumerListBody = serde_json::from_slice(&resp.body).map_err(|e| {
                    Error::protocol(
                        self.addr(),
                        crate::ProtocolError::InvalidJson { what: "consumer list", reason: e.to_string() },
                    )
                })?;
                Ok(body.consumer_id_list)
            }
            ResponseCode::SystemError => Ok(Vec::new()),
            _ => Err(self.fail(&resp, "get consumer list", OperationKind::Other, "", -1)),
        }
    }
}

/// SEND_REPLY_MESSAGE_V2 for a reply of request-reply, else SEND_MESSAGE_V2
/// (Java's `MQClientAPIImpl.sendMessage`).
fn send_code(msg: &Message) -> i32 {
    if crate::protocol::reply::is_reply(msg) {
        request::SEND_REPLY_MESSAGE_V2
    } else {
        request::SEND_MESSAGE_V2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn client_is_send_sync() {
        assert_send_sync::<BrokerClient>();
    }

    #[test]
    fn builder_checks_values() {
        assert!(ClientConfig::builder().request_timeout(Duration::ZERO).build().is_err());
        assert!(ClientConfig::builder().max_frame_size(10).build().is_err());
        assert!(ClientConfig::builder().client_id("").build().is_err());
        let c = ClientConfig::default();
        assert_eq!(c.request_timeout(), Duration::from_secs(30));
        assert_eq!(c.max_message_size(), 4 * 1024 * 1024);
        assert!(c.client_id().starts_with("127.0.0.1@"));
    }
}
