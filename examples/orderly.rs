//! Ordered messages: every message of one order goes to the same queue
//! (selected by the order id's hash), so a consumer reads them in order.
//!
//! ```text
//! eval "$(tests/broker/rocketmq.sh start)" && cargo run --example orderly
//! ```

use rocketmq_blocking::producer::{Producer, ProducerConfig, SelectByHash};
use rocketmq_blocking::{Message, NameServerClient, TopicConfig};

fn main() -> Result<(), rocketmq_blocking::Error> {
    let config = ProducerConfig::builder()
        .group("example-orderly-producer")
        .namesrv_addr("127.0.0.1:19876")
        .env_overrides()?
        .build()?;
    NameServerClient::new(config.namesrv_addr())?.create_topic("DefaultCluster", &TopicConfig::new("OrderTopic"))?;
    let producer = Producer::new(config)?;
    producer.start()?;
    for order in ["order-1", "order-2", "order-3"] {
        for step in ["created", "paid", "shipped"] {
            let msg = Message::new("OrderTopic", format!("{order} {step}")).with_keys([order]);
            let r = producer.send_with_selector(&msg, &SelectByHash, order)?;
            println!("{order} {step:8} -> {}/{} offset {}", r.queue.broker_name, r.queue.queue_id, r.queue_offset);
        }
    }
    producer.shutdown();
    Ok(())
}
