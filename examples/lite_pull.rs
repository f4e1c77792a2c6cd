//! A lite pull consumer: assigns one queue, seeks to an offset, polls,
//! commits and shuts down.
//!
//! ```text
//! eval "$(tests/broker/rocketmq.sh start)" && cargo run --example lite_pull
//! ```

use std::time::{Duration, Instant};

use rocketmq_blocking::broker::{BrokerClient, ClientConfig};
use rocketmq_blocking::consumer::{ConsumerConfig, LitePullConsumer};
use rocketmq_blocking::{Error, Message, NameServerClient, TopicConfig};

fn main() -> Result<(), Error> {
    let namesrv = std::env::var("ROCKETMQ_NAMESRV_ADDR").unwrap_or_else(|_| "127.0.0.1:19876".into());
    let topic = "LitePullExampleTopic";
    let ns = NameServerClient::new(&namesrv)?;
    ns.create_topic("DefaultCluster", &TopicConfig::new(topic).queues(2))?;

    let config = ConsumerConfig::builder()
        .group("lite_pull_example_group")
        .namesrv_addr(namesrv.clone())
        .auto_commit(false)
        .env_overrides()?
        .build()?;
    let consumer = LitePullConsumer::new(config)?;
    let queue = consumer.fetch_message_queues(topic)?.into_iter().next().expect("the topic has queues");

    // Send five messages to that queue.
    let route = ns.topic_route(topic)?;
    let addr = route.broker(&queue.broker_name).and_then(|b| b.master_addr()).unwrap_or_default().to_string();
    let client = BrokerClient::connect(&addr, &ClientConfig::default())?;
    let mut first = None;
    for i in 0..5 {
        let sent = client.send("lite_pull_example_producer", &queue, &Message::new(topic, format!("message {i}")))?;
        first.get_or_insert(sent.queue_offset);
    }
    let start = first.unwrap_or(0) + 2;

    consumer.assign(std::slice::from_ref(&queue))?;
    consumer.seek(&queue, start)?; // skip the first two of ours
    consumer.start()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut got = 0;
    while got < 3 && Instant::now() < deadline {
        for m in consumer.poll(Duration::from_secs(1))? {
            println!("offset {} body {:?}", m.queue_offset, String::from_utf8_lossy(&m.body));
            got += 1;
        }
    }
    consumer.commit_sync()?;
    println!("committed offset: {:?}", consumer.committed(&queue)?);
    consumer.shutdown();
    Ok(())
}
