//! Pop consumption requests of [`BrokerClient`] (RocketMQ 5.x): which
//! queues the broker assigns, pop, ack, change invisible time. The wire
//! formats are in [`crate::protocol::pop`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::BrokerClient;
use crate::error::{Error, OperationKind, Result};
use crate::protocol::body::MessageModel;
use crate::protocol::message::{self, MessageExt};
use crate::protocol::pop::{
    self, ExtraInfo, MessageQueueAssignment, PopMessageRequestHeader, PopMessageResponseHeader,
};
use crate::protocol::{request, MessageQueue, RemotingCommand, ResponseCode};
use crate::validate;

/// Java's default invisible time of popped messages (60 s).
pub const DEFAULT_POP_INVISIBLE_TIME: Duration = Duration::from_secs(60);
/// Java's long poll of a pop at the broker (15 s).
pub const DEFAULT_POP_POLL_TIME: Duration = Duration::from_secs(15);

/// One POP_MESSAGE request.
///
/// ```
/// use rocketmq_blocking::broker::PopRequest;
/// use rocketmq_blocking::MessageQueue;
///
/// let req = PopRequest::new("billing", MessageQueue::new("Orders", "broker-a", -1));
/// assert_eq!((req.max_msgs, req.invisible_time.as_secs()), (32, 60));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PopRequest {
    /// Consumer group (wire name).
    pub consumer_group: String,
    /// Topic and broker; queue id -1 pops from every queue of the broker.
    pub queue: MessageQueue,
    /// Most messages in the answer (1..=32 in Java; default 32).
    pub max_msgs: i32,
    /// How long the messages stay invisible to the group's other consumers
    /// unless acked (default 60 s).
    pub invisible_time: Duration,
    /// Long poll at the broker (default 15 s); `None` answers at once.
    pub poll_time: Option<Duration>,
    /// Where a new group starts: [`pop::INIT_MODE_MAX`] (default) or [`pop::INIT_MODE_MIN`].
    pub init_mode: i32,
    /// Filter type, `TAG` (default) or `SQL92`.
    pub expression_type: String,
    /// Filter expression (default `*`).
    pub expression: String,
}

impl PopRequest {
    /// A pop of `queue` with Java's defaults.
    pub fn new(consumer_group: impl Into<String>, queue: MessageQueue) -> Self {
        PopRequest {
            consumer_group: consumer_group.into(),
            queue,
            max_msgs: 32,
            invisible_time: DEFAULT_POP_INVISIBLE_TIME,
            poll_time: Some(DEFAULT_POP_POLL_TIME),
            init_mode: pop::INIT_MODE_MAX,
            expression_type: "TAG".into(),
            expression: "*".into(),
        }
    }
}

/// Whether a pop found messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PopStatus {
    /// Messages in [`PopResult::messages`].
    Found,
    /// None within the long poll (POLLING_TIMEOUT or PULL_NOT_FOUND).
    NoNewMsg,
}

/// The answer to a pop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PopResult {
    /// Found or not.
    pub status: PopStatus,
    /// The messages, each with its receipt (`POP_CK` property) and the
    /// topic popped (a redelivery's stored topic is the pop retry topic).
    pub messages: Vec<MessageExt>,
    /// Messages left in the queues (when found).
    pub rest_num: i64,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl BrokerClient {
    /// The queues of `topic` this broker assigns to `client_id` in `group`,
    /// with their mode (QUERY_ASSIGNMENT, 5.x). `strategy` is Java's name
    /// of the allocation (`AVG`, ...). A 4.x broker answers with
    /// [`Error::System`] (REQUEST_CODE_NOT_SUPPORTED).
    pub fn query_assignment(
        &self,
        topic: &str,
        group: &str,
        client_id: &str,
        strategy: &str,
        model: MessageModel,
    ) -> Result<Vec<MessageQueueAssignment>> {
        validate::check_group(group)?;
        validate::check_topic(topic)?;
        let body = pop::QueryAssignmentRequest {
            topic: topic.to_string(),
            consumer_group: group.to_string(),
            client_id: client_id.to_string(),
            strategy_name: strategy.to_string(),
            message_model: model,
        };
        let cmd = RemotingCommand::request(request::QUERY_ASSIGNMENT).with_body(body.encode());
        let resp = self.invoke(cmd, self.config().request_timeout())?;
        self.expect_success(&resp, "query assignment", OperationKind::Other, topic, -1)?;
        pop::decode_assignments(&resp.body).map_err(|e| Error::protocol(self.addr(), e))
    }

    /// Sets how `group` consumes `topic` on this broker: `mode` `POP` or
    /// `PULL`, `pop_share_queue_num` -1 for "every consumer pops every
    /// queue" (what `mqadmin setConsumeMode` sends to each broker).
    pub fn set_message_request_mode(
        &self,
        topic: &str,
        group: &str,
        mode: &str,
        pop_share_queue_num: i32,
    ) -> Result<()> {
        validate::check_group(group)?;
        validate::check_topic(topic)?;
        if mode != pop::MODE_POP && mode != pop::MODE_PULL {
            return Err(Error::invalid("mode", "must be POP or PULL"));
        }
        let body = pop::encode_request_mode(topic, group, mode, pop_share_queue_num);
        let cmd = RemotingCommand::request(request::SET_MESSAGE_REQUEST_MODE).with_body(body);
        let resp = self.invoke(cmd, self.config().request_timeout())?;
        self.expect_success(&resp, "set message request mode", OperationKind::Other, topic, -1)
    }

    /// Pops messages (POP_MESSAGE, 5.x), waiting up to the long poll.
    pub fn pop(&self, req: &PopRequest) -> Result<PopResult> {
        let (cmd, timeout) = self.pop_command(req)?;
        let resp = self.invoke(cmd, timeout)?;
        self.pop_result(req, resp)
    }

    /// The POP_MESSAGE request for `req`, and how long to wait for its
    /// answer (request timeout + long poll).
    pub(crate) fn pop_command(&self, req: &PopRequest) -> Result<(RemotingCommand, Duration)> {
        validate::check_group(&req.consumer_group)?;
        validate::check_topic(&req.queue.topic)?;
        if !(1..=32).contains(&req.max_msgs) {
            return Err(Error::invalid("max messages", "a pop takes 1 to 32 messages"));
        }
        let poll = req.poll_time.unwrap_or_default();
        let header = PopMessageRequestHeader {
            consumer_group: req.consumer_group.clone(),
            topic: req.queue.topic.clone(),
            queue_id: req.queue.queue_id,
            max_msg_nums: req.max_msgs,
            invisible_time: req.invisible_time.as_millis() as i64,
            poll_time: poll.as_millis() as i64,
            born_time: now_ms(),
            init_mode: req.init_mode,
            exp_type: Some(req.expression_type.clone()),
            exp: Some(req.expression.clone()),
            order: Some(false),
            attempt_id: None,
            broker_name: Some(req.queue.broker_name.clone()),
        };
        let cmd = RemotingCommand::request(request::POP_MESSAGE).with_ext_fields(header.to_ext_fields());
        Ok((cmd, self.config().request_timeout() + poll))
    }

    /// Reads the answer to the pop `req`.
    pub(crate) fn pop_result(&self, req: &PopRequest, resp: RemotingCommand) -> Result<PopResult> {
        let q = &req.queue;
        match resp.response_code() {
            ResponseCode::Success => {}
            ResponseCode::PollingTimeout | ResponseCode::PullNotFound => {
                return Ok(PopResult { status: PopStatus::NoNewMsg, messages: Vec::new(), rest_num: 0 })
            }
            _ => {
                self.expect_success(&resp, "pop message", OperationKind::Pull, &q.topic, q.queue_id)?;
            }
        }
        let protocol = |e| Error::protocol(self.addr(), e);
        let h = PopMessageResponseHeader::from_ext_fields(&resp.ext_fields).map_err(protocol)?;
        let mut messages = message::decode_messages(&resp.body).map_err(protocol)?;
        pop::attach_receipts(&mut messages, &h, &q.topic, &q.broker_name).map_err(protocol)?;
        Ok(PopResult { status: PopStatus::Found, messages, rest_num: h.rest_num })
    }

    /// The ACK_MESSAGE request for a popped message of `topic` (wire name).
    pub(crate) fn ack_command(group: &str, topic: &str, receipt: &ExtraInfo) -> RemotingCommand {
        RemotingCommand::request(request::ACK_MESSAGE).with_ext_fields(pop::ack_header(group, topic, receipt))
    }

    /// Acknowledges a popped message (ACK_MESSAGE): the broker will not
    /// deliver it again. `topic` is the topic popped.
    pub fn ack_message(&self, group: &str, topic: &str, msg: &MessageExt) -> Result<()> {
        let receipt = pop::receipt(msg).map_err(|e| Error::protocol(self.addr(), e))?;
        let resp = self.invoke(Self::ack_command(group, topic, &receipt), self.config().request_timeout())?;
        self.expect_success(&resp, "ack message", OperationKind::Other, topic, receipt.queue_id)
    }

    /// Makes a popped message visible again `invisible_time` from now
    /// (CHANGE_MESSAGE_INVISIBLETIME): its redelivery then counts one more
    /// reconsume time.
    pub fn change_invisible_time(
        &self,
        group: &str,
        topic: &str,
        msg: &MessageExt,
        invisible_time: Duration,
    ) -> Result<()> {
        let receipt = pop::receipt(msg).map_err(|e| Error::protocol(self.addr(), e))?;
        let header = pop::change_invisible_header(group, topic, &receipt, invisible_time.as_millis() as i64);
        let cmd = RemotingCommand::request(request::CHANGE_MESSAGE_INVISIBLETIME).with_ext_fields(header);
        let resp = self.invoke(cmd, self.config().request_timeout())?;
        self.expect_success(&resp, "change invisible time", OperationKind::Other, topic, receipt.queue_id)
    }
}
