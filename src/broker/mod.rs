//! Brokers: [`BrokerClient`] (one connection, one method per operation).

mod client;
mod manager;
mod pool;
mod pop;

pub use client::{
    default_client_id, BrokerClient, ClientConfig, ClientConfigBuilder, EndTransaction, PullRequest, PullResult,
    PullStatus, SendResult, SendStatus, TransactionResolution, DEFAULT_COMPRESS_LEVEL, DEFAULT_COMPRESS_OVER,
    DEFAULT_PULL_BATCH_SIZE, DEFAULT_REQUEST_TIMEOUT,
};
pub use manager::{
    BrokerConnectionInfo, BrokerManager, BrokerManagerConfig, BrokerManagerConfigBuilder, BrokerState,
    DEFAULT_CHECKOUT_TIMEOUT, DEFAULT_CHECK_TIMEOUT, DEFAULT_HEALTH_CHECK_INTERVAL, DEFAULT_MAX_CONSECUTIVE_FAILURES,
    DEFAULT_RECOVERY_SUCCESSES,
};
pub use pool::{BrokerConnectionPool, PoolStats, PooledConnection, RequestStats, DEFAULT_POOL_SIZE};
pub use pop::{PopRequest, PopResult, PopStatus, DEFAULT_POP_INVISIBLE_TIME, DEFAULT_POP_POLL_TIME};
