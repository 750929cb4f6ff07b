//! UDP: one receive loop per bound socket. Sending happens in the engine
//! task (`send_to` on the socket the engine names), so this module only
//! reads.

use super::{Context, Input};
use bytes::Bytes;
use engine::{Source, Transport};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;

/// Whether a datagram is a keep-alive (RFC 5626 §3.5.1 CRLFs, or empty):
/// nothing for the engine.
pub fn is_keepalive(datagram: &[u8]) -> bool {
    datagram.iter().all(|b| matches!(b, b'\r' | b'\n'))
}

/// Read datagrams from `socket` (bound to `local`) until shutdown, feeding
/// each message to the engine task.
pub async fn recv_loop(socket: Arc<UdpSocket>, local: SocketAddr, mut ctx: Context) {
    let max = ctx.limits.max_message_size;
    // One byte more than allowed: a datagram that fills it was truncated by
    // the kernel, so it is too large.
    let mut buf = vec![0u8; max + 1];
    loop {
        let received = tokio::select! {
            _ = ctx.shutdown.wait() => return,
            r = socket.recv_from(&mut buf) => r,
        };
        match received {
            Ok((n, remote)) => {
                if n > max {
                    tracing::debug!(%remote, %local, "datagram larger than max_message_size ({max}) dropped");
                    continue;
                }
                let data = &buf[..n];
                if is_keepalive(data) {
                    continue;
                }
                let source = Source {
                    transport: Transport::Udp,
                    local,
                    remote,
                    conn: None,
                };
                let input = Input::Bytes {
                    source,
                    bytes: Bytes::copy_from_slice(data),
                };
                if ctx.inputs.send(input).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                // Linux reports ICMP errors for earlier sends here; they are
                // about a peer, not this socket, so keep reading. The pause
                // keeps a persistent error from spinning a core.
                tracing::debug!(%local, error = %e, "udp receive error");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalives_are_only_crlf() {
        assert!(is_keepalive(b"\r\n\r\n"));
        assert!(is_keepalive(b"\r\n"));
        assert!(is_keepalive(b""));
        assert!(!is_keepalive(b"\r\nOPTIONS sip:x SIP/2.0\r\n"));
    }
}

/// Kernel buffers for each UDP socket. A fan-out sends thousands of NOTIFYs
/// in a burst and their 200 OKs come back in one; at the default (about
/// 200 KiB, where each datagram counts several times its size) the answers
/// overflow it and are dropped, and the NOTIFYs are retransmitted for nothing.
pub const UDP_BUFFER: usize = 8 << 20;

/// Bind a non-blocking UDP socket with large buffers (the kernel may cap them at
/// net.core.rmem_max / wmem_max; what it grants is logged).
pub fn bind(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    // Best effort: a smaller buffer still works, only sooner overflows.
    let _ = socket.set_recv_buffer_size(UDP_BUFFER);
    let _ = socket.set_send_buffer_size(UDP_BUFFER);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    tracing::debug!(
        %addr,
        recv = socket.recv_buffer_size().unwrap_or(0),
        send = socket.send_buffer_size().unwrap_or(0),
        "udp socket buffers"
    );
    Ok(socket.into())
}
