//! Transactional messages: a half message, the local transaction, then
//! commit, rollback, or "unknown" answered later by the check listener.
//!
//! ```text
//! eval "$(tests/broker/rocketmq.sh start)" && cargo run --example transaction
//! ```

use std::sync::mpsc;
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
    let (checked, check_backs) = mpsc::channel();
    let listener = move |msg: &MessageExt| {
        println!("check-back for {}: committing", msg.msg_id);
        let _ = checked.send(msg.msg_id.clone());
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
    // The broker asks about the unknown one after its check interval (up to a
    // minute with the broker's defaults; seconds with the test harness's).
    match check_backs.recv_timeout(Duration::from_secs(90)) {
        Ok(id) => println!("the broker asked about {id}; it is committed now"),
        Err(_) => println!("no check-back within 90 s"),
    }
    producer.shutdown();
    Ok(())
}
