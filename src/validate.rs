//! Checks on user input made before anything is sent (Java's `Validators`).

use crate::error::{Error, Result};
use crate::protocol::message::property;
use crate::protocol::Message;

/// Longest topic name (Java: 127).
pub const TOPIC_MAX_LENGTH: usize = 127;
/// Longest group name (Java: 255).
pub const GROUP_MAX_LENGTH: usize = 255;
/// Largest message body by default (Java: 4 MiB).
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 4 * 1024 * 1024;
/// Highest delay level (Java's 18 levels).
pub const MAX_DELAY_LEVEL: i32 = 18;

fn legal_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '%' || c == '|'
}

fn check_name(what: &'static str, name: &str, max: usize) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid(what, "is empty"));
    }
    if name.len() > max {
        return Err(Error::invalid(what, format!("{} characters, more than {max}", name.len())));
    }
    if let Some(c) = name.chars().find(|c| !legal_char(*c)) {
        return Err(Error::invalid(
            what,
            format!("{name:?} contains {c:?}; allowed are letters, digits, %, |, _ and -"),
        ));
    }
    Ok(())
}

/// A topic name: 1..=127 characters of `[%|a-zA-Z0-9_-]`.
pub fn check_topic(topic: &str) -> Result<()> {
    check_name("topic", topic, TOPIC_MAX_LENGTH)
}

/// A group name: 1..=255 characters of `[%|a-zA-Z0-9_-]`.
pub fn check_group(group: &str) -> Result<()> {
    check_name("group", group, GROUP_MAX_LENGTH)
}

/// A queue id: not negative.
pub fn check_queue_id(queue_id: i32) -> Result<()> {
    if queue_id < 0 {
        return Err(Error::invalid("queue id", format!("{queue_id} is negative")));
    }
    Ok(())
}

/// A message: valid topic, a body of 1..=`max_size` bytes, properties
/// without the separator characters, a delay level in range.
pub fn check_message(msg: &Message, max_size: usize) -> Result<()> {
    check_topic(msg.topic())?;
    if msg.body().is_empty() {
        return Err(Error::invalid("message body", "is empty"));
    }
    if msg.body().len() > max_size {
        return Err(Error::invalid("message body", format!("{} bytes, more than {max_size}", msg.body().len())));
    }
    for (k, v) in msg.properties() {
        if k.is_empty() || k.contains(['\u{1}', '\u{2}']) || v.contains(['\u{1}', '\u{2}']) {
            return Err(Error::invalid("message property", format!("{k:?} contains a separator character")));
        }
    }
    if let Some(v) = msg.property(property::DELAY_TIME_LEVEL) {
        match v.parse::<i32>() {
            Ok(l) if (0..=MAX_DELAY_LEVEL).contains(&l) => {}
            _ => return Err(Error::invalid("delay level", format!("{v:?} is not in 1..={MAX_DELAY_LEVEL}"))),
        }
    }
    Ok(())
}

/// A batch: not empty, one topic, no delayed or retry messages, each valid,
/// and the encoded batch within `max_size`.
pub fn check_batch(msgs: &[Message], max_size: usize) -> Result<()> {
    let first = msgs.first().ok_or_else(|| Error::invalid("batch", "is empty"))?;
    let mut total = 0;
    for m in msgs {
        check_message(m, max_size)?;
        if m.topic() != first.topic() {
            return Err(Error::invalid("batch", "messages of one batch must share one topic"));
        }
        if m.delay_level().unwrap_or(0) > 0 || m.property(property::TIMER_DELIVER_MS).is_some() {
            return Err(Error::invalid("batch", "delayed messages cannot be batched"));
        }
        if m.topic().starts_with("%RETRY%") {
            return Err(Error::invalid("batch", "retry messages cannot be batched"));
        }
        total += crate::protocol::message::batch_entry_size(m);
    }
    if total > max_size {
        return Err(Error::invalid("batch", format!("{total} bytes encoded, more than {max_size}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_topic("Topic_1-a%b|c").is_ok());
        assert!(check_topic("").is_err());
        assert!(check_topic(&"t".repeat(128)).is_err());
        assert!(check_topic("bad topic").is_err());
        assert!(check_group(&"g".repeat(255)).is_ok());
        assert!(check_group(&"g".repeat(256)).is_err());
    }

    #[test]
    fn messages_and_batches() {
        let ok = Message::new("T", "x");
        assert!(check_message(&ok, 10).is_ok());
        assert!(check_message(&Message::new("T", ""), 10).is_err());
        assert!(check_message(&Message::new("T", vec![0; 11]), 10).is_err());
        assert!(check_message(&ok.clone().with_property("a\u{1}", "b"), 10).is_err());
        assert!(check_message(&ok.clone().with_delay_level(19), 10).is_err());
        assert!(check_batch(&[ok.clone(), Message::new("U", "x")], 1000).is_err());
        assert!(check_batch(&[ok.clone(), ok.clone().with_delay_level(2)], 1000).is_err());
        assert!(check_batch(&[], 1000).is_err());
        assert!(check_batch(&[ok.clone(), ok], 1000).is_ok());
    }
}
