//! Sockets and threads: a blocking remoting connection.

mod connection;
pub(crate) mod fanout;

pub(crate) use connection::resolve as connection_resolve;
pub use connection::{
    Connection, ConnectionConfig, RequestHandler, ResponseCallback, DEFAULT_CONNECT_TIMEOUT, DEFAULT_WRITE_TIMEOUT,
};
