//! Creates a topic, sends one message, pulls it back and prints its ids.
//!
//! `ROCKETMQ_EXAMPLE_TOPIC` names another topic than `QuickstartTopic`.
//! Built with the `tls` feature it speaks TLS when `ROCKETMQ_TLS=1` (CA
//! file and the rest from the `ROCKETMQ_TLS_*` variables).
//!
//! ```text
//! eval "$(tests/broker/rocketmq.sh start)" && cargo run --example quickstart
//! ```

use rocketmq_blocking::broker::{BrokerClient, ClientConfig, PullRequest, PullStatus};
use rocketmq_blocking::namesrv::DEFAULT_NAMESRV_TIMEOUT;
use rocketmq_blocking::{Message, MessageQueue, NameServerClient, TopicConfig};

/// Plain TCP, or TLS as the environment says (`tls` feature).
fn client_config() -> Result<ClientConfig, rocketmq_blocking::Error> {
    #[cfg(feature = "tls")]
    if let Some(tls) = rocketmq_blocking::tls::TlsConfig::from_env()? {
        return ClientConfig::builder().tls(tls).build();
    }
    Ok(ClientConfig::default())
}

fn main() -> Result<(), rocketmq_blocking::Error> {
    let namesrv = std::env::var("ROCKETMQ_NAMESRV_ADDR").unwrap_or_else(|_| "127.0.0.1:19876".into());
    let config = client_config()?;
    let ns = NameServerClient::with_config(&namesrv, config.connection().clone(), DEFAULT_NAMESRV_TIMEOUT)?;
    let topic = std::env::var("ROCKETMQ_EXAMPLE_TOPIC").unwrap_or_else(|_| "QuickstartTopic".into());
    let topic = topic.as_str();
    let brokers = ns.create_topic("DefaultCluster", &TopicConfig::new(topic).queues(4))?;
    println!("topic {topic} created on {brokers:?}");

    // Wait (bounded) for the name server to publish the route.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let route = loop {
        match ns.topic_route(topic) {
            Ok(route) if !route.queue_datas.is_empty() => break route,
            _ if std::time::Instant::now() < deadline => std::thread::sleep(std::time::Duration::from_millis(200)),
            Ok(_) => {
                return Err(rocketmq_blocking::Error::TopicNotFound { topic: topic.into(), remark: String::new() })
            }
            Err(e) => return Err(e),
        }
    };
    let broker = &route.broker_datas[0];
    let addr = broker.master_addr().expect("a master address");
    let client = BrokerClient::connect(addr, &config)?;
    let queue = MessageQueue::new(topic, broker.broker_name.clone(), 0);

    let msg = Message::new(topic, "Hello, RocketMQ!").with_tags("greeting").with_keys(["quickstart"]);
    let sent = client.send("quickstart_producer", &queue, &msg)?;
    println!(
        "sent: status {:?}, msg id {}, offset msg id {}, queue offset {}",
        sent.status, sent.msg_id, sent.offset_msg_id, sent.queue_offset
    );

    let pulled = client.pull(&PullRequest::new("quickstart_consumer", queue, sent.queue_offset))?;
    assert_eq!(pulled.status, PullStatus::Found);
    let m = &pulled.messages[0];
    println!(
        "pulled: {:?} tags {:?} keys {:?} msg id {} offset msg id {} stored by {} at {}",
        String::from_utf8_lossy(&m.body),
        m.tags(),
        m.keys(),
        m.msg_id,
        m.offset_msg_id,
        m.store_host,
        m.store_timestamp
    );
    Ok(())
}
