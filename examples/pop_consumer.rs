//! A pop consumer (RocketMQ 5.x) that does some work per message: the
//! brokers hand out messages, not queues, so any number of these may share
//! a group. Switch the group to pop first:
//!
//! ```sh
//! tests/broker/rocketmq.sh mqadmin setConsumeMode -c DefaultCluster -g pop_demo -t Orders -m POP -q 8
//! cargo run --example pop_consumer -- Orders pop_demo 50
//! ```
//!
//! Arguments: topic, group, milliseconds of work per message (default 0).
//! Prints `body <TAB> reconsume_times` after each message's work; the
//! message is acked when the listener returns. Messages popped and not
//! acked (e.g. the process was killed) come back to the group after the
//! invisible time, 5 s here (Java's default is 60 s).

use std::io::Write;
use std::time::Duration;

use rocketmq_blocking::consumer::{
    ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus, ConsumeFromWhere, ConsumerConfig, PopConsumer, PopOptions,
};
use rocketmq_blocking::MessageExt;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (topic, group) = match (args.first(), args.get(1)) {
        (Some(t), Some(g)) => (t.clone(), g.clone()),
        _ => return Err("usage: pop_consumer TOPIC GROUP [WORK_MS]".into()),
    };
    let work = Duration::from_millis(args.get(2).map_or(Ok(0), |s| s.parse())?);
    let config = ConsumerConfig::builder()
        .group(group)
        .namesrv_addr("127.0.0.1:9876")
        .env_overrides()? // ROCKETMQ_NAMESRV_ADDR
        .consume_from_where(ConsumeFromWhere::FirstOffset)
        .build()?;
    let consumer = PopConsumer::with_options(config, PopOptions::default().invisible_time(Duration::from_secs(5)))?;
    consumer.subscribe(&topic, "*")?;
    consumer.register_concurrently(move |msgs: &[MessageExt], _: &mut ConsumeConcurrentlyContext| {
        for m in msgs {
            std::thread::sleep(work);
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}\t{}", String::from_utf8_lossy(&m.body), m.reconsume_times);
            let _ = out.flush();
        }
        ConsumeConcurrentlyStatus::ConsumeSuccess
    })?;
    consumer.start()?;
    eprintln!("popping {topic}; assignment {:?}", consumer.assignment());
    loop {
        std::thread::park();
    }
}
