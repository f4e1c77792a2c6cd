//! Transactional messages: a half message, the local transaction, then
//! commit, rollback, or "unknown" answered later by the check listener.
//!
//! ```text
//! eval "$(tests/broker/rocketmq.sh start)" && cargo run --example transaction
//! ```

use std::time::Duration;

use rocketmq_blocking::producer::{LocalTransactionState, ProducerConfig, TransactionProducer};
use rocketmq_blocking::{Message, MessageExt, NameServerClient, TopicConfig};

fn main() -> Result<(), rocketmq_blocking::Error> {
    let config = ProducerConfig::builder()
        .group("example-tx-producer")
        .namesrv_addr("127.0.0.1:19876")
        .env_overrides()?
        .build()?;
    NameServerClient::new(config.namesrv_addr())?.create_topic("DefaultCluster", &TopicConfig::new("PaymentTopic"))?;
    // Asked by the broker about half messages whose outcome it did not get.
    let listener = |msg: &MessageExt| {
        println!("check-back for {}: committing", msg.msg_id);
        LocalTransactionState::CommitMessage
    };
    let producer = TransactionProducer::new(config, listener)?;
    producer.start()?;
    for (body, outcome) in [
        ("debit 10", LocalTransactionState::CommitMessage),
        ("debit 20", LocalTransactionState::RollbackMessage),
        ("debit 30", LocalTransactionState::Unknown),
    ] {
        let r = producer.send_message_in_transaction(&Message::new("PaymentTopic", body), |_msg, _sent| outcome)?;
        println!("{body}: half message {} -> {:?}", r.send_result.msg_id, r.local_state);
    }
    // Give the broker time to ask about the unknown one (its check interval).
    std::thread::sleep(Duration::from_secs(10));
    producer.shutdown();
    Ok(())
}
