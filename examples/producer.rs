//! Sends messages with the producer: sync, async, a batch and a delayed one.
//!
//! `ROCKETMQ_EXAMPLE_TOPIC` names another topic than `ExampleTopic`.
//!
//! ```text
//! eval "$(tests/broker/rocketmq.sh start)" && cargo run --example producer
//! ```

use std::sync::mpsc;

use rocketmq_blocking::producer::{Producer, ProducerConfig};
use rocketmq_blocking::{Message, NameServerClient, TopicConfig};

fn main() -> Result<(), rocketmq_blocking::Error> {
    let config = ProducerConfig::builder()
        .group("example-producer")
        .namesrv_addr("127.0.0.1:19876")
        .env_overrides()? // ROCKETMQ_NAMESRV_ADDR and ROCKETMQ_PRODUCER_* win
        .build()?;
    let topic = std::env::var("ROCKETMQ_EXAMPLE_TOPIC").unwrap_or_else(|_| "ExampleTopic".into());
    let topic = topic.as_str();
    // TLS as the producer has it (`tls` feature, ROCKETMQ_TLS*).
    #[cfg_attr(not(feature = "tls"), allow(unused_mut))]
    let mut conn = rocketmq_blocking::net::ConnectionConfig::default();
    #[cfg(feature = "tls")]
    {
        conn.tls = config.tls().cloned();
    }
    NameServerClient::with_config(config.namesrv_addr(), conn, rocketmq_blocking::namesrv::DEFAULT_NAMESRV_TIMEOUT)?
        .create_topic("DefaultCluster", &TopicConfig::new(topic))?;

    let producer = Producer::new(config)?;
    producer.start()?;

    let sent = producer.send(&Message::new(topic, "hello").with_tags("greeting").with_keys(["k1"]))?;
    println!(
        "sync: {} -> {}/{} offset {}",
        sent.msg_id, sent.queue.broker_name, sent.queue.queue_id, sent.queue_offset
    );

    let (tx, rx) = mpsc::channel();
    for i in 0..10 {
        let tx = tx.clone();
        producer.send_async(Message::new(topic, format!("async {i}")), move |r| {
            let _ = tx.send(r);
        });
    }
    drop(tx);
    let ok = rx.iter().filter(|r| r.is_ok()).count();
    println!("async: {ok} of 10 acknowledged");

    let batch: Vec<Message> = (0..5).map(|i| Message::new(topic, format!("batch {i}"))).collect();
    let b = producer.send_batch(&batch)?;
    println!("batch: ids {}", b.msg_id);

    let d = producer.send(&Message::new(topic, "in 10 seconds").with_delay_level(3))?;
    println!("delayed (level 3 = 10 s): {}", d.msg_id);

    for (broker, health) in producer.stats().brokers {
        println!(
            "{broker}: {:?}, {} ok, {} failed, avg {:?}",
            health.state(),
            health.successes(),
            health.failures(),
            health.average_latency()
        );
    }
    producer.shutdown();
    Ok(())
}
