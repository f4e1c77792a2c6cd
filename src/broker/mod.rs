//! Brokers: [`BrokerClient`] (one connection, one method per operation).

mod client;

pub use client::{
    default_client_id, BrokerClient, ClientConfig, ClientConfigBuilder, EndTransaction, PullRequest, PullResult,
    PullStatus, SendResult, SendStatus, TransactionResolution, DEFAULT_COMPRESS_LEVEL, DEFAULT_COMPRESS_OVER,
    DEFAULT_PULL_BATCH_SIZE, DEFAULT_REQUEST_TIMEOUT,
};
