//! Manages every master broker of the cluster: adds them, starts the health
//! thread, makes a few requests through the pools and prints the stats.
//!
//! ```text
//! eval "$(tests/broker/rocketmq.sh start)" && cargo run --example broker_manager
//! ```

use std::time::{Duration, Instant};

use rocketmq_blocking::broker::{BrokerManager, BrokerManagerConfig, BrokerState};
use rocketmq_blocking::protocol::{request, RemotingCommand, ResponseCode};
use rocketmq_blocking::{Error, NameServerClient};

fn main() -> Result<(), Error> {
    let namesrv = std::env::var("ROCKETMQ_NAMESRV_ADDR").unwrap_or_else(|_| "127.0.0.1:19876".into());
    let cluster = NameServerClient::new(&namesrv)?.cluster_info()?;

    let config = BrokerManagerConfig::builder().health_check_interval(Duration::from_secs(5)).build()?;
    let manager = BrokerManager::new(config);
    for (name, data) in &cluster.broker_addr_table {
        if let Some(addr) = data.master_addr() {
            manager.add_broker(addr, Some(name))?;
            println!("added {name} at {addr}");
        }
    }
    manager.start()?;

    // The first round of health checks runs at once; wait (bounded) for it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while manager.all_brokers_stats().iter().any(|b| b.state == BrokerState::Unknown) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("healthy: {:?}", manager.healthy_brokers());

    // A few requests through the pools; `call` records each in the stats.
    for addr in manager.healthy_brokers() {
        for _ in 0..3 {
            let mut conn = manager.connection(&addr)?;
            let resp = conn.call(|c| {
                c.invoke(RemotingCommand::request(request::GET_BROKER_RUNTIME_INFO), Duration::from_secs(3))
            })?;
            assert_eq!(resp.response_code(), ResponseCode::Success);
        } // each guard gives its connection back here
    }

    for b in manager.all_brokers_stats() {
        println!(
            "{} ({}): {}, {} requests, success rate {:?}, average latency {:?}, connections {} active / {} idle / {} total, last check {:?} took {:?}",
            b.name,
            b.addr,
            b.state,
            b.requests.total,
            b.requests.success_rate(),
            b.requests.average_latency(),
            b.connections.active,
            b.connections.idle,
            b.connections.total(),
            b.last_check,
            b.last_check_latency,
        );
    }
    manager.shutdown();
    Ok(())
}
