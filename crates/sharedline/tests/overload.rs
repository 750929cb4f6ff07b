//! Overload at the process level: a SUBSCRIBE flood from one address gets
//! 503 with Retry-After past its quota, the server's memory stays bounded,
//! and another address is still served.

mod common;

use common::{start_line, Server};
use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn subscribe(sock: &UdpSocket, server: SocketAddr, n: usize) {
    let me = sock.local_addr().unwrap();
    let req = format!(
        "SUBSCRIBE sip:line{line}@example.com SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKflood{n};rport\r\nMax-Forwards: 70\r\nFrom: <sip:f@example.com>;tag=f{n}\r\nTo: <sip:line{line}@example.com>\r\nCall-ID: flood-{n}-{me}\r\nCSeq: 1 SUBSCRIBE\r\nContact: <sip:f@{me}>\r\nEvent: call-info\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n",
        line = n % 50
    );
    sock.send_to(req.as_bytes(), server).unwrap();
}

/// Send `count` SUBSCRIBEs in paced bursts and count the final responses by
/// status (NOTIFYs are left unanswered: these watchers are silent).
fn flood(sock: &UdpSocket, server: SocketAddr, first: usize, count: usize) -> HashMap<u16, usize> {
    let mut codes: HashMap<u16, usize> = HashMap::new();
    let mut buf = vec![0u8; 65536];
    let mut sent = 0;
    while sent < count {
        // Small bursts: each answer comes with a NOTIFY, and a socket's receive
        // buffer counts every datagram at several times its size.
        let burst = 20.min(count - sent);
        for i in 0..burst {
            subscribe(sock, server, first + sent + i);
        }
        sent += burst;
        let want: usize = codes.values().sum::<usize>() + burst;
        let deadline = Instant::now() + Duration::from_secs(5);
        while codes.values().sum::<usize>() < want && Instant::now() < deadline {
            let Ok((len, _)) = sock.recv_from(&mut buf) else {
                continue;
            };
            let msg = &buf[..len];
            let line = start_line(msg);
            if let Some(code) = line
                .strip_prefix("SIP/2.0 ")
                .and_then(|r| r.get(..3)?.parse::<u16>().ok())
            {
                if code == 503 {
                    let text = String::from_utf8_lossy(msg);
                    assert!(
                        text.contains("\r\nRetry-After: "),
                        "503 without Retry-After:\n{text}"
                    );
                }
                *codes.entry(code).or_default() += 1;
            }
        }
    }
    codes
}

#[test]
fn subscribe_flood_is_refused_with_503_and_memory_stays_bounded() {
    let server = Server::start_with_config(
        "[limits]\nmax_subscriptions = 2000\nmax_subscriptions_per_source = 300\nmax_subscriptions_per_line = 1000\n",
    );
    let pid = server.child.id();
    let flooder = UdpSocket::bind("127.0.0.1:0").unwrap();
    flooder
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    // Warm up, then take the baseline.
    let warm = flood(&flooder, server.udp, 0, 100);
    assert_eq!(warm.get(&200), Some(&100));
    let before = rss_kib(pid);

    let codes = flood(&flooder, server.udp, 100, 5_000);
    assert_eq!(
        codes.get(&200),
        Some(&200),
        "the quota of 300 from one address: {codes:?}"
    );
    assert_eq!(codes.get(&503), Some(&4_800), "{codes:?}");
    let after = rss_kib(pid);
    eprintln!("RSS before {before} KiB, after 5,000 refused and accepted SUBSCRIBEs {after} KiB");
    assert!(
        after < before + 32 * 1024,
        "RSS grew from {before} to {after} KiB"
    );

    // Another address is still served.
    let other = UdpSocket::bind("127.0.0.2:0").unwrap();
    other
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let codes = flood(&other, server.udp, 100_000, 50);
    assert_eq!(codes.get(&200), Some(&50), "{codes:?}");
    // One log line per interval, not one per refusal.
    let refusals_logged = server.stderr().matches("quota full").count();
    assert!(
        (1..=2).contains(&refusals_logged),
        "logged {refusals_logged} times"
    );
}
