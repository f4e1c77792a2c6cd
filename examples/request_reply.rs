//! Request-reply (RPC over the broker): a responder, a push consumer that
//! answers each request with `create_reply_message`, and a requester whose
//! `Producer::request` waits for the reply the broker pushes back.
//!
//! ```text
//! eval "$(tests/broker/rocketmq.sh start)" && cargo run --example request_reply
//! ```

use std::sync::Arc;
use std::time::Duration;

use rocketmq_blocking::consumer::{ConsumeConcurrentlyStatus, ConsumeFromWhere, ConsumerConfig, PushConsumer};
use rocketmq_blocking::producer::{create_reply_message, Producer, ProducerConfig};
use rocketmq_blocking::{Error, Message, MessageExt, NameServerClient, TopicConfig};

fn main() -> Result<(), Error> {
    let requester_config = ProducerConfig::builder()
        .group("example-requester")
        .namesrv_addr("127.0.0.1:19876")
        .env_overrides()?
        .build()?;
    let namesrv = requester_config.namesrv_addr().to_string();
    NameServerClient::new(&namesrv)?.create_topic("DefaultCluster", &TopicConfig::new("PriceRequests"))?;

    // The responder: its replies go out through a producer of its own.
    let replier = Arc::new(Producer::new(
        ProducerConfig::builder().group("example-pricer").namesrv_addr(namesrv.as_str()).build()?,
    )?);
    replier.start()?;
    let consumer = PushConsumer::new(
        ConsumerConfig::builder()
            .group("example-pricer")
            .namesrv_addr(namesrv.as_str())
            .consume_from_where(ConsumeFromWhere::FirstOffset)
            .build()?,
    )?;
    consumer.subscribe("PriceRequests", "*")?;
    let sender = Arc::clone(&replier);
    consumer.register_concurrently(move |msgs: &[MessageExt], _ctx: &mut _| {
        for m in msgs {
            let symbol = String::from_utf8_lossy(&m.body);
            let answer = format!("{symbol}: {}", 100 + symbol.len());
            // Not sent (the requester gave up, or it is gone): it times out.
            if let Err(e) = create_reply_message(m, answer).and_then(|reply| sender.send(&reply)) {
                eprintln!("reply not sent: {e}");
            }
        }
        ConsumeConcurrentlyStatus::ConsumeSuccess
    })?;
    consumer.start()?;

    // The requester: each call waits for its own reply, or fails in time.
    let requester = Producer::new(requester_config)?;
    requester.start()?;
    for (i, symbol) in ["AAPL", "MSFT", "RKT"].into_iter().enumerate() {
        // The first may wait for the responder's first rebalance.
        let timeout = Duration::from_secs(if i == 0 { 30 } else { 5 });
        match requester.request(&Message::new("PriceRequests", symbol), timeout) {
            Ok(reply) => println!("{symbol} -> {}", String::from_utf8_lossy(&reply.body)),
            Err(Error::RequestTimeout { .. }) => println!("{symbol}: no reply within {timeout:?}"),
            Err(e) => return Err(e),
        }
    }
    requester.shutdown();
    consumer.shutdown();
    replier.shutdown();
    Ok(())
}
