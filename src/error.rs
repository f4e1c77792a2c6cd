//! The crate's error types.
//!
//! [`Error`] is the one error every public operation returns. Malformed bytes
//! are a [`ProtocolError`], wrapped by [`Error::Protocol`]. A broker's refusal
//! keeps the broker's response code and remark; the table below says which
//! response code becomes which variant.
//!
//! | response code | variant |
//! |---|---|
//! | `SYSTEM_BUSY` (2), `FLOW_CONTROL` (215), `POLLING_FULL` (209) | [`Error::BrokerBusy`] |
//! | `TOPIC_NOT_EXIST` (17) | [`Error::TopicNotFound`] |
//! | `NO_PERMISSION` (16) from access control (5.x ACL 2.0), by its remark | [`Error::Authentication`] (wrong signature or unknown user) or [`Error::Authorization`] (resource refused) |
//! | `SYSTEM_ERROR` (1) whose remark is an `AclException` (4.x ACL 1.0) | [`Error::Authentication`] or [`Error::Authorization`], by its remark |
//! | other `NO_PERMISSION` (16) | [`Error::NoPermission`] |
//! | `SYSTEM_ERROR` (1), `SERVICE_NOT_AVAILABLE` (14), `REQUEST_CODE_NOT_SUPPORTED` (3), `VERSION_NOT_SUPPORTED` (15), `GO_AWAY` (1500) | [`Error::System`] |
//! | `MESSAGE_ILLEGAL` (13) during a send | [`Error::MessageSend`] |
//! | `SUBSCRIPTION_*` (23–26), `FILTER_DATA_*` (27–28) during a pull | [`Error::MessagePull`], with the topic and queue id |
//! | any other code during an offset operation (`QUERY_NOT_FOUND` 22, `SUBSCRIPTION_GROUP_NOT_EXIST` 26, ...) | [`Error::Offset`], with the topic and queue id |
//! | `TRANSACTION_FAILED` (4) | [`Error::Transaction`] |
//! | `NOT_LEADER_FOR_QUEUE` (501) | [`Error::QueueNotFound`] |
//! | anything else | [`Error::Broker`] |

use std::fmt;
use std::io;
use std::time::Duration;

use crate::protocol::ResponseCode;

/// A shorthand for `Result<T, rocketmq_blocking::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Bytes that do not follow the remoting protocol.
///
/// Decoding never panics: every malformed input ends in one of these.
///
/// ```
/// use rocketmq_blocking::protocol::TopicRouteData;
/// use rocketmq_blocking::ProtocolError;
///
/// let err = TopicRouteData::from_json(b"{not json").unwrap_err();
/// assert!(matches!(err, ProtocolError::InvalidJson { what: "topic route", .. }), "{err}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A frame announced more bytes than the configured limit.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// Announced length.
        len: usize,
        /// Configured limit.
        max: usize,
    },
    /// A frame length that cannot be right (negative, or too small).
    #[error("invalid frame length {0}")]
    BadFrameLength(i64),
    /// The header length runs past the end of the frame.
    #[error("header length {header} exceeds the {frame} bytes of the frame")]
    HeaderBeyondFrame {
        /// Header length from the frame.
        header: usize,
        /// Bytes available after the length words.
        frame: usize,
    },
    /// The serialize type byte is neither JSON (0) nor ROCKETMQ (1).
    #[error("unknown serialize type {0}")]
    UnknownSerializeType(u8),
    /// JSON that does not parse, or does not have the expected shape.
    #[error("invalid JSON in {what}: {reason}")]
    InvalidJson {
        /// What was being parsed.
        what: &'static str,
        /// The parser's message.
        reason: String,
    },
    /// A malformed ROCKETMQ binary header.
    #[error("malformed binary header: {0}")]
    BadHeader(&'static str),
    /// A header field that must be present is missing.
    #[error("missing header field `{0}`")]
    MissingField(&'static str),
    /// A header field whose value does not parse.
    #[error("header field `{field}` has invalid value {value:?}")]
    BadField {
        /// Field name.
        field: &'static str,
        /// The value received.
        value: String,
    },
    /// A malformed message properties string.
    #[error("malformed message properties: {0}")]
    BadProperties(&'static str),
    /// A malformed stored message (pull body, batch body).
    #[error("malformed message at byte {offset}: {reason}")]
    BadMessage {
        /// Offset of the message in the body.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A message id that is not in the expected format.
    #[error("malformed message id {0:?}")]
    BadMessageId(String),
    /// A compressed body that cannot be inflated (or compression is disabled).
    #[error("compressed body: {0}")]
    Compression(String),
    /// A topic route breaks a [`RouteLimits`](crate::protocol::route::RouteLimits)
    /// limit: too many queues on a broker (or a negative count), or too many
    /// brokers. Refused before anything is built from the route.
    #[error("route of topic {topic:?} refused: broker {broker:?} announces {value} {what}, the limit is {limit}")]
    RouteLimit {
        /// The topic.
        topic: String,
        /// The broker (empty when the limit is on the number of brokers).
        broker: String,
        /// What is counted: `"write queues"`, `"read queues"`,
        /// `"queue data entries"`, `"broker data entries"`.
        what: &'static str,
        /// The number announced.
        value: i64,
        /// The limit (0 for a negative count).
        limit: i64,
    },
    /// Compressed bodies inflate to more than the limit (a decompression
    /// bomb, or a limit set too low); inflation stopped at the limit.
    #[error("compressed bodies inflate past the limit of {limit} bytes per {scope}")]
    InflateLimit {
        /// The limit in bytes.
        limit: usize,
        /// What the limit applies to: `"message"` or `"response"`.
        scope: &'static str,
    },
}

/// The one error type of this crate.
///
/// Match on the variant to decide what to do; [`Error::is_retryable`] and
/// [`Error::is_timeout`] answer the common questions.
///
/// ```
/// use rocketmq_blocking::error::{OperationKind, ResponseContext};
/// use rocketmq_blocking::protocol::ResponseCode;
/// use rocketmq_blocking::Error;
///
/// // A pull the broker refused, as `BrokerClient::pull` reports it.
/// let ctx = ResponseContext { operation: "pull message", kind: OperationKind::Pull, addr: "127.0.0.1:10911", topic: "Orders", queue_id: 2 };
/// let err = Error::from_response(ResponseCode::SubscriptionNotExist, Some("no subscription"), ctx);
/// match &err {
///     Error::MessagePull { topic, queue_id, .. } => assert_eq!((topic.as_str(), *queue_id), ("Orders", 2)),
///     other => panic!("{other}"),
/// }
/// assert_eq!(err.response_code(), Some(ResponseCode::SubscriptionNotExist));
/// assert!(!err.is_retryable());
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bytes from the network that do not follow the protocol.
    #[error("protocol error from {addr}: {source}")]
    Protocol {
        /// Peer address (empty when decoding outside a connection).
        addr: String,
        /// What is wrong.
        #[source]
        source: ProtocolError,
    },
    /// Could not open a TCP connection.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// Address tried.
        addr: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The connection failed or was closed while a request was in flight.
    #[error("connection to {addr} closed: {reason}")]
    ConnectionClosed {
        /// Peer address.
        addr: String,
        /// Why it closed.
        reason: String,
    },
    /// An operation did not finish in time.
    #[error("{operation} on {addr} timed out after {timeout:?}")]
    Timeout {
        /// What was being done.
        operation: &'static str,
        /// Peer address.
        addr: String,
        /// The limit that ran out.
        timeout: Duration,
    },
    /// A request ([`Producer::request`](crate::producer::Producer::request))
    /// was sent but no reply came within its timeout (Java's
    /// `RequestTimeoutException`). A reply arriving later is dropped and
    /// counted ([`Producer::dropped_replies`](crate::producer::Producer::dropped_replies)).
    #[error("request to topic {topic:?} sent, but no reply within {timeout:?} (correlation id {correlation_id})")]
    RequestTimeout {
        /// The request's topic.
        topic: String,
        /// The request's correlation id.
        correlation_id: String,
        /// The request's timeout.
        timeout: Duration,
    },
    /// The producer already waits for the most replies it may
    /// ([`ProducerConfig::max_pending_requests`](crate::producer::ProducerConfig::max_pending_requests));
    /// the request was not sent.
    #[error("{limit} requests already wait for their replies; request not sent")]
    TooManyRequests {
        /// The limit.
        limit: usize,
    },
    /// A `host:port` that cannot be used.
    #[error("invalid address {input:?}: {reason}")]
    InvalidAddress {
        /// What the caller gave.
        input: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A caller's argument refused before anything was sent.
    #[error("invalid {what}: {reason}")]
    InvalidArgument {
        /// Which argument.
        what: &'static str,
        /// Why it is refused.
        reason: String,
    },
    /// The broker is busy or applies flow control; try again later.
    #[error("broker {addr} busy during {operation} (code {}): {remark}", code.as_i32())]
    BrokerBusy {
        /// Response code.
        code: ResponseCode,
        /// Broker's remark.
        remark: String,
        /// What was being done.
        operation: &'static str,
        /// Broker address.
        addr: String,
    },
    /// The topic does not exist (and was not auto-created).
    #[error("topic {topic:?} does not exist ({remark})")]
    TopicNotFound {
        /// The topic.
        topic: String,
        /// Remark from the server, if any.
        remark: String,
    },
    /// The queue does not exist or is not served by this broker.
    #[error("queue {queue_id} of topic {topic:?} not found: {remark}")]
    QueueNotFound {
        /// The topic.
        topic: String,
        /// The queue id.
        queue_id: i32,
        /// Remark from the server, if any.
        remark: String,
    },
    /// Access control refused who the client is: a wrong signature (wrong
    /// secret key), an unknown or disabled user, or no credentials at all.
    /// The remark is the broker's (it may name the access key, never the
    /// secret). See the module docs for how it is told apart.
    #[error("authentication failed for {operation} on {addr} (code {}): {remark}", code.as_i32())]
    Authentication {
        /// Response code (`NO_PERMISSION` on 5.x, `SYSTEM_ERROR` on 4.x).
        code: ResponseCode,
        /// Broker's remark.
        remark: String,
        /// What was being done.
        operation: &'static str,
        /// Broker address.
        addr: String,
    },
    /// Access control knows the user but refuses the resource: a topic it
    /// may not publish to, a group it may not subscribe with, an admin
    /// request by a normal user.
    #[error("not authorized for {operation} on {addr} (code {}): {remark}", code.as_i32())]
    Authorization {
        /// Response code (`NO_PERMISSION` on 5.x, `SYSTEM_ERROR` on 4.x).
        code: ResponseCode,
        /// Broker's remark.
        remark: String,
        /// What was being done.
        operation: &'static str,
        /// Broker address.
        addr: String,
    },
    /// `NO_PERMISSION` that is not an access-control refusal (a topic or
    /// broker whose permission forbids the read or write).
    #[error("no permission for {operation} on {addr}: {remark}")]
    NoPermission {
        /// What was being done.
        operation: &'static str,
        /// Broker address.
        addr: String,
        /// Broker's remark.
        remark: String,
    },
    /// The broker refused a message (`MESSAGE_ILLEGAL`).
    #[error("send to {addr} refused (code {}): {remark}", code.as_i32())]
    MessageSend {
        /// Response code.
        code: ResponseCode,
        /// Broker's remark.
        remark: String,
        /// Broker address.
        addr: String,
    },
    /// The broker refused a pull (subscription or filter problems).
    #[error("pull of {topic:?} queue {queue_id} from {addr} refused (code {}): {remark}", code.as_i32())]
    MessagePull {
        /// Response code.
        code: ResponseCode,
        /// Broker's remark.
        remark: String,
        /// Broker address.
        addr: String,
        /// The topic pulled.
        topic: String,
        /// The queue pulled.
        queue_id: i32,
    },
    /// An offset could not be read or written.
    #[error("offset operation {operation} of {topic:?} queue {queue_id} on {addr} failed (code {}): {remark}", code.as_i32())]
    Offset {
        /// Response code.
        code: ResponseCode,
        /// Broker's remark.
        remark: String,
        /// What was being done.
        operation: &'static str,
        /// Broker address.
        addr: String,
        /// The topic of the offset.
        topic: String,
        /// The queue of the offset.
        queue_id: i32,
    },
    /// A transaction operation failed.
    #[error("transaction operation on {addr} failed: {remark}")]
    Transaction {
        /// Broker's remark.
        remark: String,
        /// Broker address.
        addr: String,
    },
    /// The broker reported an internal error or is not serving.
    #[error("broker {addr} system error during {operation} (code {}): {remark}", code.as_i32())]
    System {
        /// Response code.
        code: ResponseCode,
        /// Broker's remark.
        remark: String,
        /// What was being done.
        operation: &'static str,
        /// Broker address.
        addr: String,
    },
    /// Any other non-success response.
    #[error("{operation} on {addr} failed with code {}: {remark}", code.as_i32())]
    Broker {
        /// Response code.
        code: ResponseCode,
        /// Broker's remark.
        remark: String,
        /// What was being done.
        operation: &'static str,
        /// Broker address.
        addr: String,
    },
    /// The client was shut down or not started.
    #[error("{0} is not running")]
    NotRunning(&'static str),
    /// No pooled connection became free before the checkout timeout ran out.
    #[error("no connection to {addr} became free within {timeout:?}")]
    PoolTimeout {
        /// Broker address of the pool.
        addr: String,
        /// How long the caller waited.
        timeout: Duration,
    },
    /// The connection pool was closed: its broker was removed from the
    /// manager, or the manager was shut down.
    #[error("connection pool of {addr} is closed")]
    PoolClosed {
        /// Broker address of the pool.
        addr: String,
    },
    /// The broker address is not managed (never added, or removed).
    #[error("broker {addr} is not managed by this broker manager")]
    UnknownBroker {
        /// The address asked for.
        addr: String,
    },
    /// A background thread could not be started.
    #[error("cannot start thread {name}: {source}")]
    ThreadSpawn {
        /// The thread's name.
        name: String,
        /// The I/O error from the operating system.
        #[source]
        source: io::Error,
    },
    /// An environment variable holds a value that cannot be used.
    #[error("environment variable {variable}={value:?}: {reason}")]
    InvalidEnv {
        /// The variable's name.
        variable: String,
        /// Its value.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// A local offset file (broadcasting consumers) could not be read or written.
    #[error("offset file {}: {source}", path.display())]
    OffsetFile {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error (`InvalidData` for a file that does not parse).
        #[source]
        source: io::Error,
    },
    /// No queue of a topic could be chosen for a send.
    #[error("no queue of topic {topic:?} is available: {reason}")]
    QueueNotAvailable {
        /// The topic.
        topic: String,
        /// Why none could be chosen.
        reason: String,
    },
    /// Pop consumption is not available: the broker does not know pop
    /// (4.x answers QUERY_ASSIGNMENT with REQUEST_CODE_NOT_SUPPORTED), or
    /// the group is not switched to pop for the topic
    /// (`mqadmin setConsumeMode -c <cluster> -g <group> -t <topic> -m POP`).
    #[error("pop consumption of topic {topic:?} by group {group:?} is not available on {addr}: {reason}")]
    PopNotAvailable {
        /// The topic.
        topic: String,
        /// The consumer group.
        group: String,
        /// The broker asked.
        addr: String,
        /// Why: the broker's answer, or the group's request mode.
        reason: String,
    },
    /// A send failed on every attempt; each attempt's error is kept, in order.
    #[error("send failed after {} attempt(s): {}", attempts.len(), list_attempts(attempts))]
    SendFailed {
        /// The error of each attempt, first to last.
        attempts: Vec<Error>,
    },
}

/// What a response refers to, used to pick an error variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OperationKind {
    /// Sending messages.
    Send,
    /// Pulling messages.
    Pull,
    /// Reading or writing offsets.
    Offset,
    /// Anything else.
    Other,
}

/// Context of a failed response, for [`Error::from_response`].
#[derive(Debug, Clone, Copy)]
pub struct ResponseContext<'a> {
    /// Operation name, e.g. `"send"`.
    pub operation: &'static str,
    /// Kind of operation.
    pub kind: OperationKind,
    /// Peer address.
    pub addr: &'a str,
    /// Topic involved, if any.
    pub topic: &'a str,
    /// Queue involved, if any (-1 when none).
    pub queue_id: i32,
}

impl Error {
    /// Maps a non-success response code to a variant (see the module table).
    pub fn from_response(code: ResponseCode, remark: Option<&str>, ctx: ResponseContext<'_>) -> Error {
        let remark = remark.unwrap_or("").to_string();
        let addr = ctx.addr.to_string();
        let operation = ctx.operation;
        use ResponseCode as R;
        match access_refusal(code, &remark) {
            Some(AccessRefusal::Authentication) => return Error::Authentication { code, remark, operation, addr },
            Some(AccessRefusal::Authorization) => return Error::Authorization { code, remark, operation, addr },
            None => {}
        }
        match code {
            R::SystemBusy | R::FlowControl | R::PollingFull => Error::BrokerBusy { code, remark, operation, addr },
            R::TopicNotExist => Error::TopicNotFound { topic: ctx.topic.to_string(), remark },
            R::NoPermission => Error::NoPermission { operation, addr, remark },
            R::SystemError
            | R::ServiceNotAvailable
            | R::RequestCodeNotSupported
            | R::VersionNotSupported
            | R::GoAway => Error::System { code, remark, operation, addr },
            R::TransactionFailed => Error::Transaction { remark, addr },
            R::NotLeaderForQueue => {
                Error::QueueNotFound { topic: ctx.topic.to_string(), queue_id: ctx.queue_id, remark }
            }
            R::MessageIllegal if ctx.kind == OperationKind::Send => Error::MessageSend { code, remark, addr },
            R::SubscriptionParseFailed
            | R::SubscriptionNotExist
            | R::SubscriptionNotLatest
            | R::SubscriptionGroupNotExist
            | R::FilterDataNotExist
            | R::FilterDataNotLatest
                if ctx.kind == OperationKind::Pull =>
            {
                Error::MessagePull { code, remark, addr, topic: ctx.topic.to_string(), queue_id: ctx.queue_id }
            }
            _ if ctx.kind == OperationKind::Offset => {
                Error::Offset { code, remark, operation, addr, topic: ctx.topic.to_string(), queue_id: ctx.queue_id }
            }
            _ => Error::Broker { code, remark, operation, addr },
        }
    }

    /// The broker's response code, when the error came from a response.
    pub fn response_code(&self) -> Option<ResponseCode> {
        match self {
            Error::BrokerBusy { code, .. }
            | Error::MessageSend { code, .. }
            | Error::MessagePull { code, .. }
            | Error::Offset { code, .. }
            | Error::System { code, .. }
            | Error::Authentication { code, .. }
            | Error::Authorization { code, .. }
            | Error::Broker { code, .. } => Some(*code),
            Error::TopicNotFound { .. } => Some(ResponseCode::TopicNotExist),
            Error::NoPermission { .. } => Some(ResponseCode::NoPermission),
            Error::Transaction { .. } => Some(ResponseCode::TransactionFailed),
            Error::QueueNotFound { .. } => Some(ResponseCode::NotLeaderForQueue),
            _ => None,
        }
    }

    /// Whether the operation timed out (a request without a reply in time too).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. } | Error::RequestTimeout { .. })
    }

    /// Whether the failure was in the connection (connect, closed, timeout).
    pub fn is_connection(&self) -> bool {
        matches!(self, Error::Connect { .. } | Error::ConnectionClosed { .. } | Error::Timeout { .. })
    }

    /// Whether trying again (possibly on another broker) may succeed.
    ///
    /// True for connection failures, timeouts, busy brokers and the broker
    /// system errors the Java producer retries on; false for bad input,
    /// permissions (access control included) and protocol violations.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Connect { .. }
            | Error::ConnectionClosed { .. }
            | Error::Timeout { .. }
            | Error::BrokerBusy { .. } => true,
            Error::System { code, .. } => {
                !matches!(code, ResponseCode::RequestCodeNotSupported | ResponseCode::VersionNotSupported)
            }
            Error::TopicNotFound { .. } | Error::QueueNotFound { .. } => true,
            _ => false,
        }
    }

    /// The last attempt's error of a [`Error::SendFailed`], or `self`.
    pub fn last_cause(&self) -> &Error {
        match self {
            Error::SendFailed { attempts } => attempts.last().map_or(self, Error::last_cause),
            other => other,
        }
    }

    pub(crate) fn protocol(addr: &str, source: ProtocolError) -> Error {
        Error::Protocol { addr: addr.to_string(), source }
    }

    pub(crate) fn invalid(what: &'static str, reason: impl fmt::Display) -> Error {
        Error::InvalidArgument { what, reason: reason.to_string() }
    }
}

/// Which side of access control refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AccessRefusal {
    Authentication,
    Authorization,
}

/// Tells an access-control refusal from the response code and remark.
///
/// Both kinds come with the same code, so the remark decides. 5.x (ACL 2.0)
/// answers `NO_PERMISSION` with the message of its `AuthenticationException`
/// or `AuthorizationException`; 4.x (ACL 1.0) answers `SYSTEM_ERROR` with
/// `"...AclException: <message>, <stack frame>"`.
fn access_refusal(code: ResponseCode, remark: &str) -> Option<AccessRefusal> {
    const AUTHENTICATION: &[&str] = &[
        // 5.x
        "check signature failed",
        "authentication failed",
        "username cannot be null",
        "authenticationexception",
        // 4.x: no or unknown access key, wrong signature
        "no accesskey is configured",
        "no acl config for",
        "no plainaccessresource for",
    ];
    const AUTHORIZATION: &[&str] = &[
        // 5.x
        "has no permission to access",
        "authorizationexception",
        // 4.x
        "no default permission for",
        "need admin permission",
    ];
    let lower = remark.to_ascii_lowercase();
    let acl_1 = lower.contains("aclexception");
    match code {
        ResponseCode::NoPermission | ResponseCode::SystemError => {}
        _ => return None,
    }
    if code == ResponseCode::SystemError && !acl_1 {
        return None;
    }
    let user_unknown = lower.contains("user:") && (lower.contains("not found") || lower.contains("is disabled"));
    if user_unknown || AUTHENTICATION.iter().any(|p| lower.contains(p)) {
        Some(AccessRefusal::Authentication)
    } else if acl_1 || AUTHORIZATION.iter().any(|p| lower.contains(p)) {
        Some(AccessRefusal::Authorization)
    } else {
        None
    }
}

fn list_attempts(attempts: &[Error]) -> String {
    let parts: Vec<String> = attempts.iter().enumerate().map(|(i, e)| format!("#{} {e}", i + 1)).collect();
    parts.join("; ")
}

impl From<ProtocolError> for Error {
    fn from(source: ProtocolError) -> Self {
        Error::Protocol { addr: String::new(), source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_and_offset_errors_name_topic_and_queue() {
        let ctx = |kind| ResponseContext { operation: "op", kind, addr: "b:1", topic: "T", queue_id: 3 };
        let pull = Error::from_response(ResponseCode::SubscriptionNotExist, Some("r"), ctx(OperationKind::Pull));
        assert!(matches!(pull, Error::MessagePull { ref topic, queue_id: 3, .. } if topic == "T"), "{pull:?}");
        assert!(pull.to_string().contains("\"T\" queue 3"), "{pull}");
        let offset = Error::from_response(ResponseCode::QueryNotFound, None, ctx(OperationKind::Offset));
        assert!(matches!(offset, Error::Offset { ref topic, queue_id: 3, .. } if topic == "T"), "{offset:?}");
        assert!(offset.to_string().contains("\"T\" queue 3"), "{offset}");
    }

    fn classify(code: ResponseCode, remark: &str) -> Error {
        let ctx =
            ResponseContext { operation: "send", kind: OperationKind::Send, addr: "b:1", topic: "T", queue_id: 0 };
        Error::from_response(code, Some(remark), ctx)
    }

    #[test]
    fn access_control_refusals_are_typed() {
        use ResponseCode as R;
        for (code, remark) in [
            (R::NoPermission, "check signature failed."),
            (R::NoPermission, "Authentication failed. Please verify the credentials and try again."),
            (R::NoPermission, "User:nobody is not found."),
            (R::NoPermission, "username cannot be null."),
            (R::SystemError, "org.apache.rocketmq.acl.common.AclException: Check signature failed for accessKey=u, org.apache.rocketmq.acl.plain.PlainPermissionManager.validate(PlainPermissionManager.java:683)"),
            (R::SystemError, "org.apache.rocketmq.acl.common.AclException: No acl config for x, at"),
        ] {
            let e = classify(code, remark);
            assert!(matches!(e, Error::Authentication { .. }), "{remark}: {e:?}");
            assert_eq!(e.response_code(), Some(code));
            assert!(!e.is_retryable());
        }
        for (code, remark) in [
            (R::NoPermission, "User:u has no permission to access Topic:T from 127.0.0.1, no matched policies."),
            (R::SystemError, "org.apache.rocketmq.acl.common.AclException: No default permission for topic=T, org.apache"),
            (R::SystemError, "org.apache.rocketmq.acl.common.AclException: Need admin permission for request code=17, but accessKey=u is not, x"),
        ] {
            let e = classify(code, remark);
            assert!(matches!(e, Error::Authorization { .. }), "{remark}: {e:?}");
            assert!(!e.is_retryable());
        }
        // Not access control: a write-only topic, a plain system error.
        let e = classify(R::NoPermission, "the topic[T] pulling message is forbidden");
        assert!(matches!(e, Error::NoPermission { .. }), "{e:?}");
        let e = classify(R::SystemError, "store error: check signature failed");
        assert!(matches!(e, Error::System { .. }), "{e:?}");
        assert!(e.is_retryable());
    }
}
