//! A consumer that access control refuses says so (issue 16 §4): a
//! lite-pull consumer of a group the user may not subscribe with either
//! fails `start` with the typed error or reports it in `refusals()` —
//! never an `Ok` start and an empty `poll` forever with no word.
//!
//! Needs the harness in ACL mode (see tests/acl.rs); skips without it:
//!
//! ```sh
//! ROCKETMQ_ACL=1 ROCKETMQ_VERSION=4.9.7 ROCKETMQ_PORT_OFFSET=300 tests/run.sh --test acl_refusals
//! ```
#![cfg(feature = "acl")]

mod common;

use std::time::Duration;

use common::*;
use rocketmq_blocking::acl::Credentials;
use rocketmq_blocking::consumer::LitePullConsumer;
use rocketmq_blocking::net::ConnectionConfig;
use rocketmq_blocking::{Error, NameServerClient, TopicConfig};

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: start the harness with ROCKETMQ_ACL=1"))
}

#[test]
fn a_lite_pull_consumer_of_a_forbidden_group_reports_the_refusal() {
    if std::env::var("ROCKETMQ_ACL").as_deref() != Ok("1") {
        eprintln!("skipped: the brokers run without access control (start the harness with ROCKETMQ_ACL=1)");
        return;
    }
    let user = Credentials::new(var("ROCKETMQ_ACL_USER"), var("ROCKETMQ_ACL_USER_SECRET")).unwrap();
    let topic = var("ROCKETMQ_ACL_TOPIC");
    // Topics are an admin's business (as in tests/acl.rs).
    let admin = Credentials::new(var("ROCKETMQ_ACL_ADMIN"), var("ROCKETMQ_ACL_ADMIN_SECRET")).unwrap();
    let config = ConnectionConfig { credentials: Some(admin), ..ConnectionConfig::default() };
    let ns = NameServerClient::with_config(&namesrv_addr(), config, Duration::from_secs(10)).unwrap();
    ns.create_topic(CLUSTER, &TopicConfig::new(&topic).queues(2)).expect("admin creates the ACL topic");
    wait_for(Duration::from_secs(30), "route of the ACL topic", || {
        ns.topic_route(&topic).ok().filter(|r| r.queue_datas.len() >= 2)
    });
    let config = consumer_config(&unique("acl_forbidden_cg")).credentials(user).build().unwrap();
    let consumer = LitePullConsumer::new(config).unwrap();
    consumer.subscribe(&topic, "*").unwrap();
    let err = match consumer.start() {
        Err(e) => e.to_string(),
        Ok(()) => wait_for(Duration::from_secs(30), "the refusal", || {
            assert!(consumer.poll(Duration::from_millis(200)).unwrap().is_empty());
            consumer
                .refusals()
                .into_iter()
                .find(|(_, e)| matches!(**e, Error::Authorization { .. }))
                .map(|(s, e)| format!("{s}: {e}"))
        }),
    };
    println!("refused: {err}");
    assert!(err.contains("not authorized"), "{err}");
}
