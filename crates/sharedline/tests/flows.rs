//! Whole flows through the shell: a SUBSCRIBE answered only once the store
//! made it durable, NOTIFYs routed back over UDP and TCP (opening a new
//! connection when the subscriber's is gone), and state surviving a restart
//! with the SQLite store.

mod common;

use common::{request, response_to, start_line, Server, TcpClient, UdpClient};
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(5);

/// Receive over UDP until a message whose start line starts with `prefix`,
/// answering any NOTIFY seen on the way with 200 so it is not retransmitted.
fn udp_until(client: &UdpClient, server: SocketAddr, prefix: &str) -> Vec<u8> {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (msg, _) = client
            .recv(left)
            .unwrap_or_else(|| panic!("nothing starting with {prefix:?} arrived"));
        if start_line(&msg).starts_with("NOTIFY ") {
            client.send(server, &response_to(&msg, 200, "OK"));
        }
        if start_line(&msg).starts_with(prefix) {
            return msg;
        }
    }
}

fn subscribe_call_info(client: &UdpClient, server: SocketAddr, id: &str) {
    client.send(
        server,
        &request(
            "SUBSCRIBE",
            "UDP",
            client.addr(),
            ";rport",
            id,
            "Event: call-info\r\nExpires: 600\r\n",
        ),
    );
    let ok = udp_until(client, server, "SIP/2.0 2");
    assert!(
        start_line(&ok).starts_with("SIP/2.0 200"),
        "{}",
        String::from_utf8_lossy(&ok)
    );
    let notify = udp_until(client, server, "NOTIFY ");
    assert!(String::from_utf8_lossy(&notify).contains("call-info"));
}

/// Seize appearance `index` of line1 from a fresh UDP phone.
fn seize(server: SocketAddr, index: u32) -> UdpClient {
    let phone = UdpClient::new();
    let extra = format!(
        "Event: line-seize\r\nExpires: 15\r\nCall-Info: <sip:line1@127.0.0.1>;appearance-index={index}\r\n"
    );
    phone.send(
        server,
        &request(
            "SUBSCRIBE",
            "UDP",
            phone.addr(),
            ";rport",
            &format!("seize-{index}"),
            &extra,
        ),
    );
    let ok = udp_until(&phone, server, "SIP/2.0 2");
    assert!(
        start_line(&ok).starts_with("SIP/2.0 200"),
        "{}",
        String::from_utf8_lossy(&ok)
    );
    phone
}

#[test]
fn udp_subscribe_is_answered_after_the_store_and_notified() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("x.db").display());
    let server = Server::start(&[
        "--sip",
        "udp:127.0.0.1:0",
        "--sip",
        "tcp:127.0.0.1:0",
        "--store",
        &db,
    ]);
    let watcher = UdpClient::new();
    subscribe_call_info(&watcher, server.udp, "watch-udp");
    // A seize on the line reaches the watcher as a new NOTIFY.
    let _phone = seize(server.udp, 1);
    let notify = udp_until(&watcher, server.udp, "NOTIFY ");
    assert!(
        String::from_utf8_lossy(&notify).contains("appearance-index=1"),
        "{}",
        String::from_utf8_lossy(&notify)
    );
}

#[test]
fn tcp_notify_opens_a_new_connection_when_the_old_one_is_gone() {
    let server = Server::start_local(&[]);
    // The phone's own listener, named in its Contact.
    let phone_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let contact = phone_listener.local_addr().unwrap();
    let mut c = TcpClient::connect(server.tcp);
    c.send(&request(
        "SUBSCRIBE",
        "TCP",
        contact,
        "",
        "watch-tcp",
        "Event: call-info\r\nExpires: 600\r\n",
    ));
    let mut got_200 = false;
    let mut got_notify = false;
    while !(got_200 && got_notify) {
        let msg = c
            .read_message(WAIT)
            .expect("SUBSCRIBE not answered over its connection");
        let line = start_line(&msg);
        if line.starts_with("NOTIFY ") {
            got_notify = true;
            c.send(&response_to(&msg, 200, "OK"));
        } else if line.starts_with("SIP/2.0 200") {
            got_200 = true;
        } else {
            panic!("unexpected {line}");
        }
    }
    drop(c);
    std::thread::sleep(Duration::from_millis(200));

    let _phone = seize(server.udp, 2);
    phone_listener.set_nonblocking(false).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let accepted = phone_listener.accept();
        let _ = tx.send(accepted);
    });
    let (mut stream, _) = rx
        .recv_timeout(WAIT)
        .expect("server opened no connection")
        .expect("accept");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("\r\n\r\n") {
        let n = common::read_retrying(&mut stream, &mut chunk).expect("read NOTIFY");
        assert!(n > 0, "connection closed before a NOTIFY");
        got.extend_from_slice(&chunk[..n]);
    }
    assert!(
        start_line(&got).starts_with("NOTIFY "),
        "{}",
        String::from_utf8_lossy(&got)
    );
}

#[test]
fn sqlite_state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("x.db").display());
    let args = [
        "--sip",
        "udp:127.0.0.1:0",
        "--sip",
        "tcp:127.0.0.1:0",
        "--store",
        db.as_str(),
    ];
    let watcher = UdpClient::new();
    {
        let mut server = Server::start(&args);
        subscribe_call_info(&watcher, server.udp, "watch-restart");
        server.signal("TERM");
        let status = server.wait_exit(WAIT).expect("exit after SIGTERM");
        assert_eq!(status.code(), Some(0));
    }
    // New ports: the restored subscription's NOTIFYs still leave from a UDP
    // socket of the new server.
    let server = Server::start(&args);
    // The restart first re-sends the state to a watcher notified moments
    // before it (that NOTIFY could have been lost with the process).
    let resync = udp_until(&watcher, server.udp, "NOTIFY ");
    assert!(String::from_utf8_lossy(&resync).contains("Call-ID: watch-restart@test"));
    let _phone = seize(server.udp, 3);
    let notify = udp_until(&watcher, server.udp, "NOTIFY ");
    assert!(
        String::from_utf8_lossy(&notify).contains("appearance-index=3"),
        "{}",
        String::from_utf8_lossy(&notify)
    );
}

/// A proxy carries many watchers of one line on one TCP connection: a
/// PUBLISH to that line queues all their NOTIFYs on it at once, and none may
/// be dropped (nor the connection closed).
#[test]
fn one_connection_carries_hundreds_of_watchers_of_a_line() {
    const N: usize = 600;
    let server = Server::start_local(&[]);
    let mut proxy = TcpClient::connect(server.tcp);
    let me = proxy.addr();
    for i in 0..N {
        let req = format!(
            "SUBSCRIBE sip:big@example.com SIP/2.0\r\nVia: SIP/2.0/TCP {me};branch=z9hG4bKbig{i}\r\nMax-Forwards: 70\r\nFrom: <sip:w{i}@example.com>;tag=t{i}\r\nTo: <sip:big@example.com>\r\nCall-ID: big-{i}\r\nCSeq: 1 SUBSCRIBE\r\nContact: <sip:w{i}@{me};transport=tcp>\r\nEvent: call-info\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n"
        );
        proxy.send(req.as_bytes());
    }
    // Every SUBSCRIBE gets its 200 and its first NOTIFY, each NOTIFY answered.
    let mut oks = 0;
    let mut notifies = 0;
    while oks < N || notifies < N {
        let msg = proxy.read_message(WAIT).expect("answers keep coming");
        if start_line(&msg).starts_with("NOTIFY ") {
            notifies += 1;
            proxy.send(&response_to(&msg, 200, "OK"));
        } else if start_line(&msg).starts_with("SIP/2.0 200") {
            oks += 1;
        }
    }
    let pbx = UdpClient::new();
    let publish = format!(
        "PUBLISH sip:big@example.com SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKbigpub;rport\r\nMax-Forwards: 70\r\nFrom: <sip:pbx@example.com>;tag=p\r\nTo: <sip:big@example.com>\r\nCall-ID: big-pub\r\nCSeq: 1 PUBLISH\r\nEvent: call-info\r\nCall-Info: <sip:example.com>;appearance-index=1;appearance-state=alerting\r\nContent-Length: 0\r\n\r\n",
        pbx.addr()
    );
    pbx.send(server.udp, publish.as_bytes());
    let ok = pbx.recv_response(WAIT).expect("PUBLISH answered");
    assert_eq!(ok.status, 200);
    let mut alerting = 0;
    while alerting < N {
        let msg = proxy
            .read_message(WAIT)
            .unwrap_or_else(|| panic!("only {alerting} of {N} NOTIFYs arrived"));
        if start_line(&msg).starts_with("NOTIFY ") {
            assert!(String::from_utf8_lossy(&msg).contains("appearance-state=alerting"));
            alerting += 1;
            proxy.send(&response_to(&msg, 200, "OK"));
        }
    }
    assert!(!server.stderr().contains("write queue full"));
}
