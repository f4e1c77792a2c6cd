//! Message trace records in the Java client's format (`TraceDataEncoder`,
//! `TraceContext`, `TraceBean`, `TraceConstants`): pure functions, no I/O.
//!
//! A record is one line of fields separated by [`CONTENT_SPLITOR`] (char 1)
//! and ended by [`FIELD_SPLITOR`] (char 2); a trace message's body is the
//! records of one batch one after the other, and its keys are the message ids
//! and keys the records name, so the broker's index finds the trace by the
//! traced message's id (`mqadmin queryMsgTraceById`).
//!
//! Field order per type, as Java writes it:
//!
//! | type | fields |
//! |---|---|
//! | `Pub` | type, timestamp, region, group, topic, msg id, tags, keys, store host, body length, cost ms, message type, offset msg id, success |
//! | `SubBefore` (one per message) | type, timestamp, region, group, request id, msg id, retry times, keys |
//! | `SubAfter` (one per message) | type, request id, msg id, cost ms, success, keys, context code, timestamp, group |
//! | `EndTransaction` | type, timestamp, region, group, topic, msg id, tags, keys, store host, message type, transaction id, transaction state, from check |
//!
//! A field Java leaves `null` (no tags, no keys) is written `null`, as
//! Java's `StringBuilder` does.
//!
//! ```
//! use rocketmq_blocking::protocol::trace::{encode, MessageType, TraceBean, TraceContext, TraceType};
//!
//! let mut ctx = TraceContext::new(TraceType::Pub, 1_700_000_000_000, "pg");
//! ctx.region_id = "DefaultRegion".into();
//! ctx.beans.push(TraceBean { topic: "T".into(), msg_id: "ID".into(), keys: Some("k".into()), ..TraceBean::default() });
//! let line = encode(&ctx);
//! assert!(line.starts_with("Pub\u{1}1700000000000\u{1}DefaultRegion\u{1}pg\u{1}T\u{1}ID\u{1}null\u{1}k\u{1}"));
//! assert!(line.ends_with("true\u{2}"));
//! # let _ = MessageType::Normal;
//! ```

use crate::error::ProtocolError;

/// Separates the fields of a record (Java `TraceConstants.CONTENT_SPLITOR`, char 1).
pub const CONTENT_SPLITOR: char = '\u{1}';
/// Ends a record (Java `TraceConstants.FIELD_SPLITOR`, char 2).
pub const FIELD_SPLITOR: char = '\u{2}';
/// The default trace topic (Java `TopicValidator.RMQ_SYS_TRACE_TOPIC`).
pub const DEFAULT_TRACE_TOPIC: &str = "RMQ_SYS_TRACE_TOPIC";
/// Region of a record whose message names none (Java `MixAll.DEFAULT_TRACE_REGION_ID`).
pub const DEFAULT_REGION: &str = "DefaultRegion";
/// Prefix of the group of the producer that sends the traces (Java `TraceConstants.GROUP_NAME_PREFIX`).
pub const TRACE_GROUP_PREFIX: &str = "_INNER_TRACE_PRODUCER";

/// The kind of a record (Java `TraceType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TraceType {
    /// A message sent.
    Pub,
    /// A consumer about to call its listener.
    SubBefore,
    /// A consumer's listener returned.
    SubAfter,
    /// A transaction committed or rolled back (or left unknown).
    EndTransaction,
}

impl TraceType {
    /// The name Java writes.
    pub fn name(self) -> &'static str {
        match self {
            TraceType::Pub => "Pub",
            TraceType::SubBefore => "SubBefore",
            TraceType::SubAfter => "SubAfter",
            TraceType::EndTransaction => "EndTransaction",
        }
    }

    fn from_name(name: &str) -> Option<TraceType> {
        [TraceType::Pub, TraceType::SubBefore, TraceType::SubAfter, TraceType::EndTransaction]
            .into_iter()
            .find(|t| t.name() == name)
    }
}

/// The message type of a `Pub` or `EndTransaction` record (Java
/// `MessageType`, written as its ordinal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MessageType {
    /// 0: a normal message.
    #[default]
    Normal,
    /// 1: a transaction's half message.
    TransHalf,
    /// 2: a transaction's end.
    TransCommit,
    /// 3: a delayed (or timed) message.
    Delay,
    /// 4: an ordered message.
    Order,
}

impl MessageType {
    /// Java's ordinal.
    pub fn ordinal(self) -> u8 {
        self as u8
    }

    fn from_ordinal(n: u8) -> Option<MessageType> {
        [MessageType::Normal, MessageType::TransHalf, MessageType::TransCommit, MessageType::Delay, MessageType::Order]
            .get(n as usize)
            .copied()
    }
}

/// One message's part of a record (Java `TraceBean`). `None` is Java's `null`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TraceBean {
    /// Topic (without the namespace).
    pub topic: String,
    /// The client message id (unique key).
    pub msg_id: String,
    /// The broker's offset message id.
    pub offset_msg_id: String,
    /// Tags.
    pub tags: Option<String>,
    /// Keys, space-separated.
    pub keys: Option<String>,
    /// The broker address the message went to.
    pub store_host: String,
    /// Body length (`Pub`).
    pub body_length: i32,
    /// Times the message was consumed before (`SubBefore`).
    pub retry_times: i32,
    /// Message type.
    pub msg_type: MessageType,
    /// Transaction id (`EndTransaction`).
    pub transaction_id: Option<String>,
    /// `COMMIT_MESSAGE`, `ROLLBACK_MESSAGE` or `UNKNOW` (`EndTransaction`).
    pub transaction_state: String,
    /// Whether a check-back ended the transaction (`EndTransaction`).
    pub from_transaction_check: bool,
}

/// One record (Java `TraceContext`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// Kind.
    pub trace_type: TraceType,
    /// When, ms since the epoch.
    pub timestamp_ms: i64,
    /// Region (from the broker).
    pub region_id: String,
    /// Producer or consumer group (without the namespace).
    pub group: String,
    /// Cost, ms (per message for `SubAfter`).
    pub cost_ms: i32,
    /// Whether the send or the consumption succeeded.
    pub success: bool,
    /// Ties a `SubAfter` to its `SubBefore`.
    pub request_id: String,
    /// `SubAfter`: Java's `ConsumeReturnType` ordinal (0 success, 1 time-out,
    /// 2 exception, 3 null, 4 failed).
    pub context_code: i32,
    /// The messages: one for `Pub` and `EndTransaction`, a batch for the `Sub` records.
    pub beans: Vec<TraceBean>,
}

impl TraceContext {
    /// A record of `trace_type` with Java's defaults (success, no region, cost 0).
    pub fn new(trace_type: TraceType, timestamp_ms: i64, group: impl Into<String>) -> TraceContext {
        TraceContext {
            trace_type,
            timestamp_ms,
            region_id: String::new(),
            group: group.into(),
            cost_ms: 0,
            success: true,
            request_id: String::new(),
            context_code: 0,
            beans: Vec::new(),
        }
    }
}

fn opt(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("null")
}

/// The record's text, as Java's `TraceDataEncoder.encoderFromContextBean`
/// writes it (for a client that is not on Alibaba Cloud); empty when it
/// has no bean.
pub fn encode(ctx: &TraceContext) -> String {
    let mut out = String::with_capacity(256);
    let mut line = |fields: &[&str]| {
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                out.push(CONTENT_SPLITOR);
            }
            out.push_str(f);
        }
        out.push(FIELD_SPLITOR);
    };
    let (ts, cost, success) = (ctx.timestamp_ms.to_string(), ctx.cost_ms.to_string(), ctx.success.to_string());
    match ctx.trace_type {
        TraceType::Pub | TraceType::EndTransaction => {
            if let Some(b) = ctx.beans.first() {
                let ty = b.msg_type.ordinal().to_string();
                let (len, check) = (b.body_length.to_string(), b.from_transaction_check.to_string());
                let mut f = vec![ctx.trace_type.name(), &ts, &ctx.region_id, &ctx.group, &b.topic, &b.msg_id];
                f.extend([opt(&b.tags), opt(&b.keys), &b.store_host]);
                if ctx.trace_type == TraceType::Pub {
                    f.extend([len.as_str(), &cost, &ty, &b.offset_msg_id, &success]);
                } else {
                    f.extend([ty.as_str(), opt(&b.transaction_id), &b.transaction_state, &check]);
                }
                line(&f);
            }
        }
        TraceType::SubBefore => {
            for b in &ctx.beans {
                let retry = b.retry_times.to_string();
                line(&["SubBefore", &ts, &ctx.region_id, &ctx.group, &ctx.request_id, &b.msg_id, &retry, opt(&b.keys)]);
            }
        }
        TraceType::SubAfter => {
            let code = ctx.context_code.to_string();
            for b in &ctx.beans {
                line(&["SubAfter", &ctx.request_id, &b.msg_id, &cost, &success, opt(&b.keys), &code, &ts, &ctx.group]);
            }
        }
    }
    out
}

/// The keys the trace message carries for this record (Java's
/// `TraceTransferBean.transKey`): each bean's message id and its keys.
pub fn index_keys(ctx: &TraceContext) -> Vec<String> {
    let mut keys = Vec::new();
    for b in &ctx.beans {
        keys.push(b.msg_id.clone());
        if let Some(k) = b.keys.as_deref().filter(|k| !k.is_empty()) {
            keys.extend(k.split(' ').map(str::to_string));
        }
    }
    keys
}

fn field<T: std::str::FromStr>(line: &[&str], i: usize, name: &'static str) -> Result<T, ProtocolError> {
    let v = line.get(i).ok_or(ProtocolError::MissingField(name))?;
    v.parse().map_err(|_| ProtocolError::BadField { field: name, value: v.to_string() })
}

fn text(line: &[&str], i: usize, name: &'static str) -> Result<String, ProtocolError> {
    line.get(i).map(|s| s.to_string()).ok_or(ProtocolError::MissingField(name))
}

fn nullable(line: &[&str], i: usize, name: &'static str) -> Result<Option<String>, ProtocolError> {
    text(line, i, name).map(|s| (s != "null").then_some(s))
}

/// Timestamp, region and group: fields 1 to 3 of every record but `SubAfter`.
fn read_head(line: &[&str], ctx: &mut TraceContext) -> Result<(), ProtocolError> {
    ctx.timestamp_ms = field(line, 1, "timestamp")?;
    ctx.region_id = text(line, 2, "region")?;
    ctx.group = text(line, 3, "group")?;
    Ok(())
}

/// Reads the records of a trace message's body, as Java's
/// `TraceDataEncoder.decoderFromTraceDataString` does: one context per
/// record (types it does not know, such as 5.x's `Recall`, are skipped); a
/// record of a known type with a missing or unparsable field is an error
/// naming the field.
pub fn decode(data: &str) -> Result<Vec<TraceContext>, ProtocolError> {
    let mut out = Vec::new();
    for record in data.split(FIELD_SPLITOR).filter(|r| !r.is_empty()) {
        let l: Vec<&str> = record.split(CONTENT_SPLITOR).collect();
        let Some(ty) = TraceType::from_name(l[0]) else { continue };
        let mut bean = TraceBean::default();
        let mut ctx = TraceContext::new(ty, 0, "");
        match ty {
            TraceType::Pub | TraceType::EndTransaction => {
                read_head(&l, &mut ctx)?;
                bean.topic = text(&l, 4, "topic")?;
                bean.msg_id = text(&l, 5, "msg id")?;
                bean.tags = nullable(&l, 6, "tags")?;
                bean.keys = nullable(&l, 7, "keys")?;
                bean.store_host = text(&l, 8, "store host")?;
                let type_at = if ty == TraceType::Pub { 11 } else { 9 };
                let ordinal: u8 = field(&l, type_at, "message type")?;
                bean.msg_type = MessageType::from_ordinal(ordinal)
                    .ok_or(ProtocolError::BadField { field: "message type", value: ordinal.to_string() })?;
                if ty == TraceType::Pub {
                    bean.body_length = field(&l, 9, "body length")?;
                    ctx.cost_ms = field(&l, 10, "cost")?;
                    if l.len() == 13 {
                        ctx.success = field(&l, 12, "success")?;
                    } else if l.len() >= 14 {
                        bean.offset_msg_id = text(&l, 12, "offset msg id")?;
                        ctx.success = field(&l, 13, "success")?;
                    }
                } else {
                    bean.transaction_id = nullable(&l, 10, "transaction id")?;
                    bean.transaction_state = text(&l, 11, "transaction state")?;
                    bean.from_transaction_check = field(&l, 12, "from check")?;
                }
            }
            TraceType::SubBefore => {
                read_head(&l, &mut ctx)?;
                ctx.request_id = text(&l, 4, "request id")?;
                bean.msg_id = text(&l, 5, "msg id")?;
                bean.retry_times = field(&l, 6, "retry times")?;
                bean.keys = nullable(&l, 7, "keys")?;
            }
            TraceType::SubAfter => {
                ctx.request_id = text(&l, 1, "request id")?;
                bean.msg_id = text(&l, 2, "msg id")?;
                ctx.cost_ms = field(&l, 3, "cost")?;
                ctx.success = field(&l, 4, "success")?;
                bean.keys = nullable(&l, 5, "keys")?;
                if l.len() >= 7 {
                    ctx.context_code = field(&l, 6, "context code")?;
                }
                if l.len() >= 9 {
                    ctx.timestamp_ms = field(&l, 7, "timestamp")?;
                    ctx.group = text(&l, 8, "group")?;
                }
            }
        }
        ctx.beans.push(bean);
        out.push(ctx);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visible(s: &str) -> String {
        s.replace(CONTENT_SPLITOR, "|").replace(FIELD_SPLITOR, "#")
    }

    #[test]
    fn sub_records_are_one_line_per_message_and_decode_back() {
        let mut ctx = TraceContext::new(TraceType::SubAfter, 5, "cg");
        ctx.request_id = "R".into();
        ctx.cost_ms = 3;
        ctx.beans.push(TraceBean { msg_id: "A".into(), keys: Some("k1 k2".into()), ..TraceBean::default() });
        ctx.beans.push(TraceBean { msg_id: "B".into(), ..TraceBean::default() });
        let s = encode(&ctx);
        assert_eq!(visible(&s), "SubAfter|R|A|3|true|k1 k2|0|5|cg#SubAfter|R|B|3|true|null|0|5|cg#");
        assert_eq!(index_keys(&ctx), ["A", "k1", "k2", "B"]);
        let back = decode(&s).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].beans[0].keys.as_deref(), Some("k1 k2"));
        assert_eq!(back[1].beans[0].keys, None);
        assert_eq!(back[1].group, "cg");
    }

    #[test]
    fn bad_records_are_typed_errors_and_unknown_types_are_skipped() {
        assert!(matches!(decode("Pub\u{1}x\u{2}"), Err(ProtocolError::BadField { field: "timestamp", .. })));
        assert!(matches!(decode("SubBefore\u{1}1\u{2}"), Err(ProtocolError::MissingField("region"))));
        assert_eq!(decode("Recall\u{1}1\u{1}r\u{2}\u{2}garbage").unwrap(), Vec::new());
    }
}
