//! What the real broker cannot be made to do: a peer that sends garbage, an
//! oversize frame, or hangs. A local listener plays that peer (this is not a
//! test of any broker feature; those run against the real brokers).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use rocketmq_blocking::net::{Connection, ConnectionConfig};
use rocketmq_blocking::protocol::{request, RemotingCommand};
use rocketmq_blocking::{Error, ProtocolError};

/// A peer that reads one request and then writes `reply` (raw bytes).
fn peer(reply: Vec<u8>, then_wait: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf);
        s.write_all(&reply).unwrap();
        if then_wait {
            let _ = s.read(&mut buf);
        }
    });
    addr
}

fn call(addr: &str, config: &ConnectionConfig) -> (Result<RemotingCommand, Error>, Duration, Connection) {
    let conn = Connection::connect(addr, config).unwrap();
    let t = Instant::now();
    let r = conn.invoke(RemotingCommand::request(request::GET_MAX_OFFSET), Duration::from_secs(20));
    (r, t.elapsed(), conn)
}

#[test]
fn garbage_from_the_peer_fails_waiters_at_once_with_a_protocol_error() {
    let mut garbage = 20i32.to_be_bytes().to_vec();
    garbage.extend_from_slice(&[7, 0, 0, 4]); // serialize type 7
    garbage.extend_from_slice(&[0; 16]);
    let (r, took, conn) = call(&peer(garbage, true), &ConnectionConfig::default());
    assert!(matches!(r, Err(Error::Protocol { source: ProtocolError::UnknownSerializeType(7), .. })), "{r:?}");
    assert!(took < Duration::from_secs(5), "woke after {took:?}");
    assert!(conn.is_closed());
    let again = conn.invoke(RemotingCommand::request(request::GET_MAX_OFFSET), Duration::from_secs(1));
    assert!(matches!(again, Err(Error::Protocol { .. })), "{again:?}");
}

#[test]
fn oversize_frame_is_refused_by_its_length() {
    let config = ConnectionConfig { max_frame_size: 1024, ..ConnectionConfig::default() };
    let (r, took, _) = call(&peer(100_000i32.to_be_bytes().to_vec(), true), &config);
    assert!(
        matches!(r, Err(Error::Protocol { source: ProtocolError::FrameTooLarge { len: 100_000, max: 1024 }, .. })),
        "{r:?}"
    );
    assert!(took < Duration::from_secs(5));
}

#[test]
fn peer_closing_mid_frame_wakes_the_waiter() {
    let (r, took, conn) = call(&peer(vec![0, 0, 1, 0, 0, 0], false), &ConnectionConfig::default());
    assert!(matches!(r, Err(Error::ConnectionClosed { .. })), "{r:?}");
    assert!(took < Duration::from_secs(5));
    assert!(conn.is_closed());
}

#[test]
fn silent_peer_times_out_naming_the_operation() {
    let addr = peer(Vec::new(), true);
    let conn = Connection::connect(&addr, &ConnectionConfig::default()).unwrap();
    let r = conn.invoke(RemotingCommand::request(request::GET_MAX_OFFSET), Duration::from_millis(300));
    match r {
        Err(e @ Error::Timeout { .. }) => {
            assert!(e.is_timeout() && e.is_retryable());
            assert!(e.to_string().contains("get max offset"), "{e}");
            assert!(e.to_string().contains("300ms"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!conn.is_closed(), "a timeout leaves the connection usable");
}

#[test]
fn bad_addresses_are_typed_errors() {
    for bad in ["nohost", "127.0.0.1", "127.0.0.1:notaport", ":9876", "::1:9876", "127.0.0.1:70000"] {
        let r = Connection::connect(bad, &ConnectionConfig::default());
        assert!(matches!(r, Err(Error::InvalidAddress { ref input, .. }) if input == bad), "{bad}: {r:?}");
    }
    // A port nobody listens on: a connect error, not a hang.
    let free = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let r = Connection::connect(&free.to_string(), &ConnectionConfig::default());
    assert!(matches!(r, Err(Error::Connect { .. })), "{r:?}");
}

#[test]
fn dropping_a_connection_joins_its_reader_thread_quickly() {
    let addr = peer(Vec::new(), true);
    let conn = Connection::connect(&addr, &ConnectionConfig::default()).unwrap();
    let t = Instant::now();
    drop(conn);
    assert!(t.elapsed() < Duration::from_secs(1));
}
