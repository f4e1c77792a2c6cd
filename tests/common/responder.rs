//! A request-reply responder for the tests: our push consumer answering
//! each request with `create_reply_message`, sent by our producer.

use std::sync::{Arc, Mutex};

use rocketmq_blocking::consumer::{ConsumeConcurrentlyStatus, ConsumeFromWhere, PushConsumer};
use rocketmq_blocking::producer::{create_reply_message, Producer, ProducerConfig};
use rocketmq_blocking::MessageExt;

use super::{consumer_config, namesrv_addr, unique};

/// A started producer of `group` on the harness's name server.
pub fn producer(group: &str) -> Producer {
    let config = ProducerConfig::builder().group(group).namesrv_addr(namesrv_addr()).build().unwrap();
    let p = Producer::new(config).unwrap();
    p.start().unwrap();
    p
}

/// Our responder: a push consumer of `topic` (new group, from the first
/// offset) that answers every request with `prefix` + its body, and keeps
/// the requests it saw.
pub struct Responder {
    pub consumer: PushConsumer,
    _producer: Arc<Producer>,
    /// The requests answered, in order.
    pub seen: Arc<Mutex<Vec<MessageExt>>>,
}

pub fn responder(topic: &str, prefix: &'static str) -> Responder {
    let producer = Arc::new(producer(&unique("reply_responder_pg")));
    let config = consumer_config(&unique("reply_responder_cg")).consume_from_where(ConsumeFromWhere::FirstOffset);
    let consumer = PushConsumer::new(config.build().unwrap()).unwrap();
    consumer.subscribe(topic, "*").unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (replier, log) = (Arc::clone(&producer), Arc::clone(&seen));
    consumer
        .register_concurrently(move |msgs: &[MessageExt], _ctx: &mut _| {
            for m in msgs {
                // Kept before the reply goes: the requester may look as soon as it has the reply.
                log.lock().unwrap().push(m.clone());
                let body = [prefix.as_bytes(), &m.body].concat();
                if let Err(e) = create_reply_message(m, body).and_then(|r| replier.send(&r)) {
                    eprintln!("reply to {} not sent: {e}", m.msg_id);
                    return ConsumeConcurrentlyStatus::ReconsumeLater;
                }
            }
            ConsumeConcurrentlyStatus::ConsumeSuccess
        })
        .unwrap();
    consumer.start().unwrap();
    Responder { consumer, _producer: producer, seen }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.consumer.shutdown();
    }
}
