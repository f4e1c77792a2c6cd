//! A consumer the brokers or the name server keep refusing says so:
//! `refusals()` names the subject and the typed error instead of a
//! consumer that silently receives nothing.

mod common;

use std::time::Duration;

use common::*;
use rocketmq_blocking::consumer::{
    ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus, LitePullConsumer, PushConsumer,
};
use rocketmq_blocking::{Error, MessageExt};

fn route_refusal(refusals: Vec<(String, std::sync::Arc<Error>)>, topic: &str) -> Option<String> {
    refusals
        .into_iter()
        .find(|(s, e)| s == &format!("route of {topic}") && matches!(**e, Error::TopicNotFound { .. }))
        .map(|(s, e)| format!("{s}: {e}"))
}

#[test]
fn a_consumer_of_a_missing_topic_reports_topic_not_found() {
    let topic = unique("no_such_topic");
    let push = PushConsumer::new(consumer_config(&unique("refused_push")).build().unwrap()).unwrap();
    push.subscribe(&topic, "*").unwrap();
    push.register_concurrently(|_: &[MessageExt], _: &mut ConsumeConcurrentlyContext| {
        ConsumeConcurrentlyStatus::ConsumeSuccess
    })
    .unwrap();
    push.start().unwrap();
    let lite = LitePullConsumer::new(consumer_config(&unique("refused_lite")).build().unwrap()).unwrap();
    lite.subscribe(&topic, "*").unwrap();
    lite.start().unwrap();
    // Rebalance interval 1 s: the first one runs at start.
    let said = wait_for(Duration::from_secs(20), "the push consumer to report the missing topic", || {
        route_refusal(push.refusals(), &topic)
    });
    println!("push: {said}");
    let said = wait_for(Duration::from_secs(20), "the lite pull consumer to report the missing topic", || {
        route_refusal(lite.refusals(), &topic)
    });
    println!("lite pull: {said}");
    assert!(lite.poll(Duration::from_millis(100)).unwrap().is_empty());

    // Once the topic exists, the refusal goes away.
    create_topic(&topic, 1);
    wait_for(Duration::from_secs(20), "the refusal to clear", || {
        route_refusal(push.refusals(), &topic).is_none().then_some(())
    });
    push.shutdown();
    lite.shutdown();
}
