//! TCP behaviour the shell owns: RFC 5626 keep-alives, the connection
//! limit, the message size limit and the idle timeout. Real binary, real
//! sockets.

mod common;

use common::{Got, Server, TcpClient};
use std::time::{Duration, Instant};

#[test]
fn double_crlf_ping_gets_a_single_crlf_pong() {
    let server = Server::start_local(&[]);
    let mut c = TcpClient::connect(server.tcp);
    c.send(b"\r\n\r\n");
    assert_eq!(
        c.read_some(Duration::from_secs(2)),
        Got::Data(b"\r\n".to_vec())
    );
    // A ping split across two writes is still one ping.
    c.send(b"\r\n");
    std::thread::sleep(Duration::from_millis(100));
    c.send(b"\r\n");
    assert_eq!(
        c.read_some(Duration::from_secs(2)),
        Got::Data(b"\r\n".to_vec())
    );
    // Nothing more follows.
    assert_eq!(c.read_some(Duration::from_millis(300)), Got::Timeout);
}

#[test]
fn lone_crlf_gets_no_answer_and_keeps_the_connection() {
    let server = Server::start_local(&[]);
    let mut c = TcpClient::connect(server.tcp);
    c.send(b"\r\n");
    assert_eq!(c.read_some(Duration::from_millis(400)), Got::Timeout);
    c.send(b"\r\n\r\n");
    assert_eq!(
        c.read_some(Duration::from_secs(2)),
        Got::Data(b"\r\n".to_vec())
    );
}

#[test]
fn max_connections_is_enforced() {
    let server = Server::start_with_config("[limits]\nmax_connections = 2\n");
    let mut a = TcpClient::connect(server.tcp);
    let mut b = TcpClient::connect(server.tcp);
    for c in [&mut a, &mut b] {
        c.send(b"\r\n\r\n");
        assert_eq!(
            c.read_some(Duration::from_secs(2)),
            Got::Data(b"\r\n".to_vec())
        );
    }
    // The third is accepted by the kernel, then closed by the server.
    let mut third = TcpClient::connect(server.tcp);
    let _ = third.try_send(b"\r\n\r\n");
    assert!(
        third.closed_within(Duration::from_secs(3)),
        "third connection was not refused"
    );
    assert!(
        server.stderr().contains("max_connections"),
        "refusal not logged"
    );
    // Freeing a slot lets a new client in.
    drop(a);
    std::thread::sleep(Duration::from_millis(300));
    let mut fourth = TcpClient::connect(server.tcp);
    fourth.send(b"\r\n\r\n");
    assert_eq!(
        fourth.read_some(Duration::from_secs(2)),
        Got::Data(b"\r\n".to_vec())
    );
    // The survivors are untouched.
    b.send(b"\r\n\r\n");
    assert_eq!(
        b.read_some(Duration::from_secs(2)),
        Got::Data(b"\r\n".to_vec())
    );
}

#[test]
fn oversize_frame_closes_the_connection() {
    let server = Server::start_with_config("[limits]\nmax_message_size = 1000\n");
    // Headers that never end and already exceed the limit.
    let mut c = TcpClient::connect(server.tcp);
    let mut big = b"OPTIONS sip:line1@127.0.0.1 SIP/2.0\r\n".to_vec();
    for i in 0..40 {
        big.extend_from_slice(format!("X-Padding-{i}: {}\r\n", "a".repeat(40)).as_bytes());
    }
    let _ = c.try_send(&big);
    assert!(
        c.closed_within(Duration::from_secs(3)),
        "oversize headers did not close the connection"
    );

    // A complete message whose Content-Length makes it too large.
    let mut c = TcpClient::connect(server.tcp);
    let body = "b".repeat(2000);
    let msg = format!(
        "MESSAGE sip:line1@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK-big\r\n\
         From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:line1@127.0.0.1>\r\nCall-ID: big@test\r\n\
         CSeq: 1 MESSAGE\r\nMax-Forwards: 70\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = c.try_send(msg.as_bytes());
    assert!(
        c.closed_within(Duration::from_secs(3)),
        "oversize body did not close the connection"
    );

    // Other connections are unaffected.
    let mut ok = TcpClient::connect(server.tcp);
    ok.send(b"\r\n\r\n");
    assert_eq!(
        ok.read_some(Duration::from_secs(2)),
        Got::Data(b"\r\n".to_vec())
    );
}

#[test]
fn unframeable_stream_closes_the_connection() {
    let server = Server::start_local(&[]);
    let mut c = TcpClient::connect(server.tcp);
    // RFC 3261 §18.3: a stream message must carry Content-Length.
    let _ = c.try_send(
        b"OPTIONS sip:line1@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK-x\r\n\
          From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:line1@127.0.0.1>\r\nCall-ID: x@test\r\n\
          CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n\r\n",
    );
    assert!(
        c.closed_within(Duration::from_secs(3)),
        "a frame without Content-Length did not close the connection"
    );
}

#[test]
fn idle_connection_is_closed_and_activity_keeps_it_open() {
    let server = Server::start_with_config("[limits]\ntcp_idle_timeout = 1\n");
    let mut idle = TcpClient::connect(server.tcp);
    let mut busy = TcpClient::connect(server.tcp);
    let start = Instant::now();
    // `busy` pings every 300 ms for 2 s, outliving the 1 s timeout.
    while start.elapsed() < Duration::from_secs(2) {
        busy.send(b"\r\n\r\n");
        assert_eq!(
            busy.read_some(Duration::from_secs(2)),
            Got::Data(b"\r\n".to_vec()),
            "busy connection was closed"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    // `idle` has been silent for 2 s: it must be closed by now (or very soon).
    assert!(
        idle.closed_within(Duration::from_secs(2)),
        "idle connection still open"
    );
    assert!(start.elapsed() >= Duration::from_secs(1));
}
