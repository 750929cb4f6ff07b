//! UDP: one receive loop per bound socket, and the batched send path the
//! engine task uses ([`send_batch`]: `sendmmsg`, so one fan-out of NOTIFYs
//! costs a few system calls rather than one per datagram).

use super::{Context, Input};
use bytes::Bytes;
use engine::{Source, Transport};
use nix::sys::socket::{recvmmsg, MsgFlags, MultiHeaders, SockaddrStorage};
use rustix::net::{MMsgHdr, SendAncillaryBuffer, SendFlags, SocketAddrAny};
use std::io::{self, IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Most datagrams handed to one `sendmmsg` call (the kernel caps a call at
/// UIO_MAXIOV, 1024; 64 keeps the per-call header arrays small).
pub const SEND_BATCH: usize = 64;

/// One datagram waiting to leave a socket: destination and payload.
pub type Datagram = (SocketAddr, Vec<u8>);

/// Whether a datagram is a keep-alive (RFC 5626 §3.5.1 CRLFs, or empty):
/// nothing for the engine.
pub fn is_keepalive(datagram: &[u8]) -> bool {
    datagram.iter().all(|b| matches!(b, b'\r' | b'\n'))
}

/// Most datagrams read by one `recvmmsg` call. A busy socket is drained 32
/// at a time: one system call and one hand-over to the engine task each.
pub const RECV_BATCH: usize = 32;

/// The largest UDP payload (65 535 less the IPv4 and UDP headers).
const MAX_DATAGRAM: usize = 65_507;

/// Datagrams of one socket, as the engine task receives them: their bytes
/// end to end in `payload`, and per datagram its sender and its range.
#[derive(Debug)]
pub struct Received {
    /// The socket's bound address.
    pub local: SocketAddr,
    /// Every datagram's bytes, in arrival order.
    pub payload: Bytes,
    /// Sender, start and end in `payload` of each datagram.
    pub items: Vec<(SocketAddr, u32, u32)>,
}

impl Received {
    /// Each datagram with its source.
    pub fn iter(&self) -> impl Iterator<Item = (Source, &[u8])> + '_ {
        self.items.iter().map(|&(remote, from, to)| {
            let source = Source {
                transport: Transport::Udp,
                local: self.local,
                remote,
                conn: None,
            };
            (
                source,
                self.payload
                    .get(from as usize..to as usize)
                    .unwrap_or_default(),
            )
        })
    }
}

/// Read datagrams from `socket` (bound to `local`) until shutdown, feeding
/// them to the engine task a batch at a time.
pub async fn recv_loop(socket: Arc<UdpSocket>, local: SocketAddr, mut ctx: Context) {
    let max = ctx.limits.max_message_size;
    // One byte more than allowed: a datagram that fills its slot was
    // truncated by the kernel, so it is too large. Only the pages datagrams
    // land in are ever touched.
    let slot = (max + 1).min(MAX_DATAGRAM + 1);
    let mut slots = vec![0u8; slot * RECV_BATCH];
    let mut got: Vec<(Option<SocketAddr>, usize)> = Vec::with_capacity(RECV_BATCH);
    loop {
        tokio::select! {
            _ = ctx.shutdown.wait() => return,
            r = socket.readable() => if r.is_err() { return },
        }
        // Drain what is queued; `readable` is armed again by WouldBlock.
        loop {
            got.clear();
            let read = socket.try_io(Interest::READABLE, || {
                recv_some(&socket, &mut slots, slot, &mut got)
            });
            match read {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Linux reports ICMP errors for earlier sends here; they
                    // are about a peer, not this socket, so keep reading. The
                    // pause keeps a persistent error from spinning a core.
                    tracing::debug!(%local, error = %e, "udp receive error");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    break;
                }
            }
            let batch = collect(local, &slots, slot, max, &got);
            if !batch.items.is_empty() && ctx.inputs.send(Input::Datagrams(batch)).await.is_err() {
                return;
            }
            if got.len() < RECV_BATCH {
                break;
            }
        }
    }
}

/// One `recvmmsg` call into `slots` (`RECV_BATCH` slots of `slot` bytes):
/// each datagram's sender and length go to `got`.
fn recv_some(
    socket: &UdpSocket,
    slots: &mut [u8],
    slot: usize,
    got: &mut Vec<(Option<SocketAddr>, usize)>,
) -> io::Result<()> {
    HEADERS.with(|headers| {
        let mut headers = headers.borrow_mut();
        let mut iovs: Vec<[IoSliceMut<'_>; 1]> = slots
            .chunks_mut(slot)
            .map(|c| [IoSliceMut::new(c)])
            .collect();
        let results = recvmmsg(
            socket.as_raw_fd(),
            &mut headers,
            iovs.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        )
        .map_err(io::Error::from)?;
        for r in results {
            got.push((r.address.and_then(|a| to_std(&a)), r.bytes));
        }
        Ok(())
    })
}

thread_local! {
    /// `recvmmsg`'s message headers, made once per thread: they hold raw
    /// pointers, so a task (which may move between threads at an await)
    /// cannot own them, and making them per call cost an allocation and
    /// 32 headers for every datagram when traffic is light.
    static HEADERS: std::cell::RefCell<MultiHeaders<SockaddrStorage>> =
        std::cell::RefCell::new(MultiHeaders::preallocate(RECV_BATCH, None));
}

fn to_std(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
}

/// The datagrams of one call worth giving the engine, copied out of their
/// slots: too large ones (logged) and keep-alives are left out.
fn collect(
    local: SocketAddr,
    slots: &[u8],
    slot: usize,
    max: usize,
    got: &[(Option<SocketAddr>, usize)],
) -> Received {
    let mut payload = Vec::with_capacity(got.iter().map(|&(_, n)| n.min(slot)).sum());
    let mut items = Vec::with_capacity(got.len());
    for (i, &(remote, n)) in got.iter().enumerate() {
        let Some(remote) = remote else { continue };
        if n > max {
            tracing::debug!(%remote, %local, "datagram larger than max_message_size ({max}) dropped");
            continue;
        }
        let data = slots.get(i * slot..i * slot + n).unwrap_or_default();
        if is_keepalive(data) {
            continue;
        }
        // Offsets fit: a batch is at most 32 datagrams of 64 KiB.
        let from = payload.len() as u32;
        payload.extend_from_slice(data);
        items.push((remote, from, payload.len() as u32));
    }
    Received {
        local,
        payload: Bytes::from(payload),
        items,
    }
}

/// Send `msgs` from `socket`, in order, with as few `sendmmsg` calls as
/// the kernel allows. A datagram the kernel refuses (too large, unreachable
/// family, ...) is logged and skipped: UDP is lossy and the engine
/// retransmits requests, so one bad destination must not hold up the rest.
pub async fn send_batch(socket: &UdpSocket, msgs: &[Datagram]) {
    let mut next = 0;
    while next < msgs.len() {
        let end = msgs.len().min(next + SEND_BATCH);
        let chunk = &msgs[next..end];
        match socket.try_io(Interest::WRITABLE, || send_some(socket, chunk)) {
            // The kernel stops a call at the first datagram it cannot take,
            // so a short count means "try again from there". Zero cannot
            // happen for a non-empty chunk; skipping one keeps the loop
            // finite if it ever did.
            Ok(sent) => next += sent.max(1),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if let Err(e) = socket.writable().await {
                    tracing::debug!(error = %e, dropped = msgs.len() - next, "udp socket not writable");
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                // An error for a whole call is the error of its first
                // datagram: drop that one and go on with the rest.
                tracing::debug!(remote = %chunk[0].0, error = %e, "udp send failed");
                next += 1;
            }
        }
    }
}

/// One `sendmmsg` call for `chunk` (non-empty, at most [`SEND_BATCH`]):
/// how many datagrams the kernel took, from the front.
fn send_some(socket: &UdpSocket, chunk: &[Datagram]) -> io::Result<usize> {
    let addrs: Vec<SocketAddrAny> = chunk.iter().map(|(a, _)| SocketAddrAny::from(*a)).collect();
    let iovs: Vec<[IoSlice<'_>; 1]> = chunk.iter().map(|(_, b)| [IoSlice::new(b)]).collect();
    let mut controls: Vec<SendAncillaryBuffer<'_, '_, '_>> = chunk
        .iter()
        .map(|_| SendAncillaryBuffer::default())
        .collect();
    let mut headers: Vec<MMsgHdr<'_>> = addrs
        .iter()
        .zip(&iovs)
        .zip(controls.iter_mut())
        .map(|((addr, iov), control)| MMsgHdr::new_with_addr(addr, iov, control))
        .collect();
    Ok(rustix::net::sendmmsg(
        socket,
        &mut headers,
        SendFlags::empty(),
    )?)
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

    /// Receive `n` datagrams (or fewer, if they stop coming) as strings.
    async fn receive(socket: &UdpSocket, n: usize) -> Vec<String> {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 2048];
        while got.len() < n {
            match tokio::time::timeout(Duration::from_secs(2), socket.recv_from(&mut buf)).await {
                Ok(Ok((len, _))) => got.push(String::from_utf8_lossy(&buf[..len]).into_owned()),
                _ => break,
            }
        }
        got
    }

    async fn udp(addr: &str) -> Option<UdpSocket> {
        let addr: SocketAddr = addr.parse().ok()?;
        UdpSocket::from_std(bind(addr).ok()?).ok()
    }

    #[tokio::test]
    async fn batch_keeps_order_per_destination_and_skips_refused_datagrams() {
        let sender = udp("127.0.0.1:0").await.expect("bind sender");
        let a = udp("127.0.0.1:0").await.expect("bind receiver a");
        let b = udp("127.0.0.1:0").await.expect("bind receiver b");
        let (addr_a, addr_b) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        let mut msgs = Vec::new();
        let (mut want_a, mut want_b) = (Vec::new(), Vec::new());
        // More than two batches, so calls are split; two datagrams the kernel
        // refuses sit in the middle (one too large for UDP, one to an IPv6
        // address from an IPv4 socket) and must not stop what follows.
        for i in 0..200 {
            if i == 70 {
                msgs.push((addr_a, vec![b'x'; 70_000]));
            }
            if i == 130 {
                msgs.push(("[::1]:5060".parse().unwrap(), b"v6".to_vec()));
            }
            let (to, want) = if i % 3 == 0 {
                (addr_b, &mut want_b)
            } else {
                (addr_a, &mut want_a)
            };
            let text = format!("msg {i}");
            msgs.push((to, text.clone().into_bytes()));
            want.push(text);
        }
        send_batch(&sender, &msgs).await;
        let got_a = receive(&a, want_a.len()).await;
        let got_b = receive(&b, want_b.len()).await;
        assert_eq!(got_a, want_a);
        assert_eq!(got_b, want_b);
    }

    #[tokio::test]
    async fn batch_sends_to_ipv6_destinations() {
        // Hosts without IPv6 loopback cannot run this; there is nothing to check.
        let (Some(sender), Some(rx)) = (udp("[::1]:0").await, udp("[::1]:0").await) else {
            eprintln!("no IPv6 loopback; skipped");
            return;
        };
        let to = rx.local_addr().unwrap();
        let want: Vec<String> = (0..100).map(|i| format!("six {i}")).collect();
        let msgs: Vec<Datagram> = want.iter().map(|t| (to, t.clone().into_bytes())).collect();
        send_batch(&sender, &msgs).await;
        assert_eq!(receive(&rx, want.len()).await, want);
    }
}
