//! A push consumer: creates a topic, sends ten messages, consumes them with
//! a concurrent listener and shuts down.
//!
//! `ROCKETMQ_EXAMPLE_TOPIC` names another topic than `ConsumerExampleTopic`.
//!
//! ```text
//! eval "$(tests/broker/rocketmq.sh start)" && cargo run --example consumer
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rocketmq_blocking::broker::{BrokerClient, ClientConfig};
use rocketmq_blocking::consumer::{
    ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus, ConsumeFromWhere, ConsumerConfig, PushConsumer,
};
use rocketmq_blocking::{Error, Message, MessageExt, MessageQueue, NameServerClient, TopicConfig};

fn main() -> Result<(), Error> {
    let namesrv = std::env::var("ROCKETMQ_NAMESRV_ADDR").unwrap_or_else(|_| "127.0.0.1:19876".into());
    let topic = std::env::var("ROCKETMQ_EXAMPLE_TOPIC").unwrap_or_else(|_| "ConsumerExampleTopic".into());
    let topic = topic.as_str();
    // TLS from ROCKETMQ_TLS* (`tls` feature), as the consumer's env_overrides.
    let client_config = ClientConfig::builder();
    #[cfg(feature = "tls")]
    let client_config = match rocketmq_blocking::tls::TlsConfig::from_env()? {
        Some(tls) => client_config.tls(tls),
        None => client_config,
    };
    let client_config = client_config.build()?;
    let ns = NameServerClient::with_config(
        &namesrv,
        client_config.connection().clone(),
        rocketmq_blocking::namesrv::DEFAULT_NAMESRV_TIMEOUT,
    )?;
    ns.create_topic("DefaultCluster", &TopicConfig::new(topic).queues(4))?;

    // Environment variables (ROCKETMQ_CONSUMER_*) may override the values set before `env_overrides`.
    let config = ConsumerConfig::builder()
        .group("consumer_example_group")
        .namesrv_addr(namesrv.clone())
        .consume_from_where(ConsumeFromWhere::FirstOffset)
        .env_overrides()?
        .build()?;
    let consumer = PushConsumer::new(config)?;
    consumer.subscribe(topic, "TagA || TagB")?;
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&seen);
    consumer.register_concurrently(move |msgs: &[MessageExt], ctx: &mut ConsumeConcurrentlyContext| {
        for m in msgs {
            println!(
                "queue {}:{} offset {} tag {:?} body {:?} (reconsumed {} times)",
                ctx.queue().broker_name,
                ctx.queue().queue_id,
                m.queue_offset,
                m.tags(),
                String::from_utf8_lossy(&m.body),
                m.reconsume_times
            );
        }
        counter.fetch_add(msgs.len(), Ordering::SeqCst);
        ConsumeConcurrentlyStatus::ConsumeSuccess
    })?;
    consumer.start()?;

    // Send ten messages (TagC is filtered out) to the first broker of the route.
    let route = ns.topic_route(topic)?;
    let broker = &route.broker_datas[0];
    let client = BrokerClient::connect(broker.master_addr().unwrap_or_default(), &client_config)?;
    for i in 0..10 {
        let queue = MessageQueue::new(topic, broker.broker_name.clone(), i % 4);
        let tag = ["TagA", "TagB", "TagC"][(i % 3) as usize];
        client.send("consumer_example_producer", &queue, &Message::new(topic, format!("hello {i}")).with_tags(tag))?;
    }

    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.load(Ordering::SeqCst) < 7 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("consumed {} messages; assignment: {:?}", seen.load(Ordering::SeqCst), consumer.assignment());
    consumer.shutdown();
    Ok(())
}
