//! Sockets and threads: a blocking remoting connection.
//!
//! # Timeouts and desynchronised streams
//! A request that times out normally leaves the connection open: a slow
//! answer is simply dropped when it arrives. But a peer stuck half-way
//! through a frame leaves the stream out of step, and every later request
//! would time out behind it. So a timeout closes the connection (every
//! waiter gets [`Error::ConnectionClosed`](crate::Error::ConnectionClosed), [`Connection::is_closed`] turns
//! true and owners open a new one on the next call) when
//! - the reader holds part of a frame at that moment (the stream may be
//!   desynchronised), or
//! - it is the [`MAX_CONSECUTIVE_TIMEOUTS`]th timeout in a row with no
//!   response received in between (3, so a dead-but-open socket is given up
//!   after three request timeouts).
//!
//! A [`BrokerConnectionPool`](crate::broker::BrokerConnectionPool) then
//! discards the connection, the producer and the consumers open a new one
//! to that broker on their next request, and a
//! [`NameServerClient`](crate::NameServerClient) reconnects, starting its
//! next request at the following name server address.
//!
//! # Addresses
//! `host:port` strings (from the user or from a route) are checked before
//! any resolver is asked: a host over 253 bytes (the DNS limit), digits and
//! dots that are not an IPv4 address, port 0 or a port that is not a
//! number are [`Error::InvalidAddress`](crate::Error::InvalidAddress).

mod connection;
pub(crate) mod fanout;

pub(crate) use connection::resolve as connection_resolve;
pub use connection::{
    Connection, ConnectionConfig, RequestHandler, ResponseCallback, DEFAULT_CONNECT_TIMEOUT, DEFAULT_WRITE_TIMEOUT,
    MAX_CONSECUTIVE_TIMEOUTS,
};
