//! SIP over the real binary: requests from real UDP and TCP sockets, the
//! answers the engine gives, and how the shell routes them back.

mod common;

use common::{request, via_params, Server, TcpClient, UdpClient};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(3);

fn assert_options_200(resp: &common::Response) {
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.raw));
    let allow = resp.list("Allow");
    // A notifier does not take NOTIFY requests, so Allow need not list it.
    for m in ["OPTIONS", "SUBSCRIBE", "PUBLISH"] {
        assert!(
            allow.iter().any(|a| a.eq_ignore_ascii_case(m)),
            "Allow {allow:?} lacks {m}"
        );
    }
    assert!(resp.header("Accept").is_some(), "no Accept header");
    let events = resp.list("Allow-Events");
    for e in ["call-info", "line-seize"] {
        assert!(
            events.iter().any(|x| x.eq_ignore_ascii_case(e)),
            "Allow-Events {events:?} lacks {e}"
        );
    }
}

#[test]
fn options_over_udp_gets_200_with_capabilities() {
    let server = Server::start_local(&[]);
    let client = UdpClient::new();
    client.send(
        server.udp,
        &request("OPTIONS", "UDP", client.addr(), "", "opt-udp", ""),
    );
    let (bytes, from) = client.recv(WAIT).expect("no response to OPTIONS over UDP");
    assert_eq!(
        from, server.udp,
        "the response must come from the listener's socket"
    );
    let resp = common::Response::parse(&bytes);
    assert_options_200(&resp);
    assert!(resp.header("Call-ID").is_some_and(|c| c == "opt-udp@test"));
}

#[test]
fn options_over_tcp_gets_200_on_the_same_connection() {
    let server = Server::start_local(&[]);
    let mut c = TcpClient::connect(server.tcp);
    let addr = c.addr();
    c.send(&request("OPTIONS", "TCP", addr, "", "opt-tcp", ""));
    let resp = c
        .read_response(WAIT)
        .expect("no response to OPTIONS over TCP");
    assert_options_200(&resp);
    // Two more, in one write, are both answered in order.
    let mut two = request("OPTIONS", "TCP", addr, "", "opt-tcp-2", "");
    two.extend(request("OPTIONS", "TCP", addr, "", "opt-tcp-3", ""));
    c.send(&two);
    for id in ["opt-tcp-2@test", "opt-tcp-3@test"] {
        let resp = c
            .read_response(WAIT)
            .expect("no response to pipelined OPTIONS");
        assert_eq!(resp.status, 200);
        assert_eq!(resp.header("Call-ID"), Some(id));
    }
}

#[test]
fn rport_response_goes_to_the_source_port_with_received_and_rport() {
    let server = Server::start_local(&[]);
    let client = UdpClient::new();
    // The Via claims port 9, where nobody listens: only rport gets the
    // answer back to the socket that sent the request.
    let claimed = "127.0.0.1:9".parse().unwrap();
    client.send(
        server.udp,
        &request("OPTIONS", "UDP", claimed, ";rport", "rport", ""),
    );
    let resp = client
        .recv_response(WAIT)
        .expect("response did not reach the source port");
    assert_eq!(resp.status, 200);
    let via = resp.header("Via").expect("Via in response");
    let params = via_params(via);
    assert_eq!(
        params.get("rport").map(String::as_str),
        Some(client.addr().port().to_string().as_str()),
        "{via}"
    );
    assert_eq!(
        params.get("received").map(String::as_str),
        Some("127.0.0.1"),
        "{via}"
    );
}

#[test]
fn invite_gets_405_with_allow() {
    let server = Server::start_local(&[]);
    let client = UdpClient::new();
    client.send(
        server.udp,
        &request("INVITE", "UDP", client.addr(), "", "invite", ""),
    );
    // An INVITE server transaction may send 100 Trying first.
    let mut resp = client.recv_response(WAIT).expect("no response to INVITE");
    if resp.status == 100 {
        resp = client
            .recv_response(WAIT)
            .expect("no final response to INVITE");
    }
    assert_eq!(resp.status, 405, "{}", String::from_utf8_lossy(&resp.raw));
    assert!(!resp.list("Allow").is_empty(), "405 without Allow");
    assert!(!resp
        .list("Allow")
        .iter()
        .any(|m| m.eq_ignore_ascii_case("INVITE")));
}

#[test]
fn unknown_method_gets_501() {
    let server = Server::start_local(&[]);
    let client = UdpClient::new();
    client.send(
        server.udp,
        &request("FROBNICATE", "UDP", client.addr(), "", "frob", ""),
    );
    let resp = client
        .recv_response(WAIT)
        .expect("no response to unknown method");
    assert_eq!(resp.status, 501, "{}", String::from_utf8_lossy(&resp.raw));
}

#[test]
fn udp_retransmission_gets_the_identical_response() {
    let server = Server::start_local(&[]);
    let client = UdpClient::new();
    let req = request("OPTIONS", "UDP", client.addr(), "", "retrans", "");
    client.send(server.udp, &req);
    let (first, _) = client.recv(WAIT).expect("no first response");
    client.send(server.udp, &req);
    let (second, _) = client
        .recv(WAIT)
        .expect("no response to the retransmission");
    assert_eq!(
        String::from_utf8_lossy(&first),
        String::from_utf8_lossy(&second),
        "a retransmission must get the same response"
    );
    // Exactly one response per copy of the request.
    assert!(client.recv(Duration::from_millis(300)).is_none());
}

#[test]
fn garbage_datagram_does_not_stop_the_server() {
    let server = Server::start_local(&[]);
    let client = UdpClient::new();
    client.send(server.udp, b"\x00\x01 not sip at all \xff\r\n\r\n");
    client.send(
        server.udp,
        &request("OPTIONS", "UDP", client.addr(), "", "after-garbage", ""),
    );
    let mut got_200 = false;
    while let Some(resp) = client.recv_response(WAIT) {
        if resp.status == 200 {
            got_200 = true;
            break;
        }
    }
    assert!(got_200, "server stopped answering after a garbage datagram");
}
