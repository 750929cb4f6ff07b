//! TCP: the accept loop, outgoing connections, and one task per connection
//! that frames the byte stream with [`sip::frame_len`], answers keep-alive
//! pings, and writes what the engine queues for it.
//!
//! Every connection, accepted or opened, holds a permit from
//! [`Context::permits`] for its whole life; that is how `max_connections`
//! is enforced. A connection reports [`Input::Closed`] when it ends, however
//! it ends.

use super::{Context, Input};
use bytes::{Buf, Bytes, BytesMut};
use engine::{ConnId, Source, Transport};
use sip::FrameError;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio::time::{sleep_until, Instant};

/// Messages queued for one connection before the engine gives up on it (a
/// peer that stops reading must not make the server buffer without bound).
/// A proxy in front carries every watcher of a line on one connection, so a
/// PUBLISH to a line of a thousand watchers queues a thousand NOTIFYs at
/// once: the bound sits above the engine's NOTIFY cap (4096 in flight).
pub const WRITE_QUEUE: usize = 8192;
/// How long an outgoing connection may take to establish.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Read-buffer growth step.
const READ_CHUNK: usize = 8 * 1024;

/// Accept connections on `listener` (bound to `local`) until shutdown.
///
/// The limit is checked after `accept` rather than before it: a client left
/// waiting in the kernel's backlog cannot tell it is refused, while one that
/// is accepted and closed at once fails over immediately.
pub async fn accept_loop(listener: TcpListener, local: SocketAddr, mut ctx: Context) {
    let mut backoff = Duration::from_millis(10);
    loop {
        let accepted = tokio::select! {
            _ = ctx.shutdown.wait() => return,
            r = listener.accept() => r,
        };
        let (stream, remote) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Usually out of file descriptors: wait for some to close.
                tracing::warn!(%local, error = %e, "accept failed; backing off {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        backoff = Duration::from_millis(10);
        let Ok(permit) = ctx.permits.clone().try_acquire_owned() else {
            tracing::warn!(%remote, %local, "connection refused: max_connections ({}) reached", ctx.limits.max_connections);
            drop(stream);
            continue;
        };
        let conn = ctx.conn_id();
        let (writer, queue) = mpsc::channel(WRITE_QUEUE);
        // Registered before the first frame is read, so the engine knows the
        // connection by the time it can answer on it.
        if ctx
            .inputs
            .send(Input::Opened { conn, writer })
            .await
            .is_err()
        {
            return;
        }
        tracing::debug!(conn = conn.0, %remote, %local, "tcp connection accepted");
        tokio::spawn(run_connection(
            stream,
            conn,
            local,
            remote,
            queue,
            ctx.clone(),
            permit,
        ));
    }
}

/// Open a connection to `remote` for bytes the engine must send when no
/// connection to reuse exists. `queue` already holds them; the connection is
/// already registered under `conn`. Frames read from it feed the engine with
/// `local` (the listener the engine named) as their local address.
pub fn spawn_outbound(
    ctx: Context,
    conn: ConnId,
    local: SocketAddr,
    remote: SocketAddr,
    queue: mpsc::Receiver<Bytes>,
) {
    tokio::spawn(async move {
        let Ok(permit) = ctx.permits.clone().try_acquire_owned() else {
            tracing::warn!(%remote, "cannot open a connection: max_connections ({}) reached", ctx.limits.max_connections);
            let _ = ctx.inputs.send(Input::Closed(conn)).await;
            return;
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, connect(local, remote)).await {
            Ok(Ok(stream)) => {
                tracing::debug!(conn = conn.0, %remote, "tcp connection opened");
                run_connection(stream, conn, local, remote, queue, ctx, permit).await;
            }
            Ok(Err(e)) => {
                tracing::warn!(%remote, error = %e, "cannot open a connection");
                let _ = ctx.inputs.send(Input::Closed(conn)).await;
            }
            Err(_) => {
                tracing::warn!(%remote, "cannot open a connection: timed out after {CONNECT_TIMEOUT:?}");
                let _ = ctx.inputs.send(Input::Closed(conn)).await;
            }
        }
    });
}

/// Connect from the listener's IP when it is a specific one, so the peer
/// sees the address our Via names.
async fn connect(local: SocketAddr, remote: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = if remote.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if !local.ip().is_unspecified() && local.is_ipv4() == remote.is_ipv4() {
        socket.bind(SocketAddr::new(local.ip(), 0))?;
    }
    socket.connect(remote).await
}

/// What became of the bytes at the front of a read buffer.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// A double CRLF ping was consumed: answer with one CRLF.
    Ping,
    /// A lone CRLF was consumed.
    Skip,
    /// A whole message.
    Frame(Bytes),
    /// Nothing more can be taken until more bytes arrive.
    NeedMore,
}

/// Take the next thing off the front of `buf`. Keep-alives are handled here
/// rather than by `frame_len`, because a ping needs an answer.
fn next_step(buf: &mut BytesMut, max: usize) -> Result<Step, String> {
    if buf.is_empty() {
        return Ok(Step::NeedMore);
    }
    if buf.starts_with(b"\r\n\r\n") {
        buf.advance(4);
        return Ok(Step::Ping);
    }
    if buf.starts_with(b"\r\n") {
        // Two CRLFs may still arrive in separate segments; decide only when
        // the bytes after the first CRLF show it is not a ping.
        if buf.len() >= 4 || (buf.len() == 3 && buf[2] != b'\r') {
            buf.advance(2);
            return Ok(Step::Skip);
        }
        return Ok(Step::NeedMore);
    }
    if buf[..] == b"\r"[..] {
        return Ok(Step::NeedMore);
    }
    match sip::frame_len(buf, max) {
        Ok(0) => Err("framing made no progress".into()),
        Ok(n) if n > buf.len() => Err("framing overran the buffer".into()),
        Ok(n) => Ok(Step::Frame(buf.split_to(n).freeze())),
        Err(FrameError::Incomplete) if buf.len() > max => {
            Err(format!("message larger than max_message_size ({max})"))
        }
        Err(FrameError::Incomplete) => Ok(Step::NeedMore),
        Err(FrameError::Invalid(why)) => Err(format!("cannot frame the stream: {why}")),
    }
}

/// Serve one connection until the peer closes it, it idles out, it breaks a
/// limit, the engine drops it, or the server shuts down.
/// How long at most a connection whose peer stopped sending waits for the
/// answers still owed to it.
const LINGER_MAX: Duration = Duration::from_secs(2);

async fn run_connection(
    stream: TcpStream,
    conn: ConnId,
    local: SocketAddr,
    remote: SocketAddr,
    mut queue: mpsc::Receiver<Bytes>,
    mut ctx: Context,
    permit: OwnedSemaphorePermit,
) {
    // SIP messages are small and latency matters more than packing.
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let max = ctx.limits.max_message_size;
    let idle = ctx.limits.tcp_idle_timeout;
    let source = Source {
        transport: Transport::Tcp,
        local,
        remote,
        conn: Some(conn),
    };
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut gather = Vec::new();
    let mut deadline = Instant::now() + idle;

    // `drain`: the peer stopped sending (EOF) or sent what cannot be framed,
    // but answers to what it sent before may still be on their way from the
    // engine: write those before closing.
    let (reason, drain): (String, bool) = 'conn: loop {
        if buf.capacity() - buf.len() < READ_CHUNK {
            buf.reserve(READ_CHUNK);
        }
        tokio::select! {
            _ = ctx.shutdown.wait() => break 'conn ("server shutting down".into(), false),
            _ = sleep_until(deadline) => break 'conn (format!("idle for {}s", idle.as_secs()), false),
            out = queue.recv() => match out {
                None => break 'conn ("dropped by the engine".into(), false),
                Some(bytes) => {
                    if let Err(e) = write_queued(&mut writer, bytes, &mut queue, &mut gather).await {
                        break 'conn (format!("write failed: {e}"), false);
                    }
                    deadline = Instant::now() + idle;
                }
            },
            read = reader.read_buf(&mut buf) => {
                match read {
                    Ok(0) if buf.iter().all(|b| matches!(b, b'\r' | b'\n')) => break 'conn ("closed by peer".into(), true),
                    Ok(0) => break 'conn ("closed by peer in the middle of a message".into(), true),
                    Ok(_) => {}
                    Err(e) => break 'conn (format!("read failed: {e}"), false),
                }
                deadline = Instant::now() + idle;
                loop {
                    match next_step(&mut buf, max) {
                        Ok(Step::NeedMore) => break,
                        Ok(Step::Skip) => {}
                        Ok(Step::Ping) => {
                            if let Err(e) = writer.write_all(b"\r\n").await {
                                break 'conn (format!("write failed: {e}"), false);
                            }
                        }
                        Ok(Step::Frame(bytes)) => {
                            if ctx.inputs.send(Input::Bytes { source, bytes }).await.is_err() {
                                break 'conn ("server shutting down".into(), false);
                            }
                        }
                        Err(why) => break 'conn (why, true),
                    }
                }
            }
        }
    };
    if drain && ctx.inputs.send(Input::Drain(conn)).await.is_ok() {
        // The engine task drops our queue once every answer owed to this
        // peer has been handed over; the cap bounds a stuck store.
        let hard = Instant::now() + LINGER_MAX;
        loop {
            tokio::select! {
                _ = ctx.shutdown.wait() => break,
                _ = sleep_until(hard) => break,
                next = queue.recv() => match next {
                    Some(bytes) => {
                        if write_queued(&mut writer, bytes, &mut queue, &mut gather).await.is_err() {
                            break;
                        }
                    }
                    None => break,
                },
            }
        }
        let _ = writer.shutdown().await;
    }
    tracing::debug!(conn = conn.0, %remote, "tcp connection closed: {reason}");
    drop((reader, writer, permit));
    let _ = ctx.inputs.send(Input::Closed(conn)).await;
}

/// At most this much is gathered from the queue into one write.
const WRITE_GATHER: usize = 64 * 1024;

/// Write `first` and whatever else is already queued behind it, in one
/// system call where they fit: a line's fan-out puts many NOTIFYs on one
/// proxy connection at once, and a write each would cost a call each.
async fn write_queued(
    writer: &mut (impl AsyncWriteExt + Unpin),
    first: Bytes,
    queue: &mut mpsc::Receiver<Bytes>,
    gather: &mut Vec<u8>,
) -> std::io::Result<()> {
    let Ok(second) = queue.try_recv() else {
        return writer.write_all(&first).await;
    };
    gather.clear();
    gather.extend_from_slice(&first);
    gather.extend_from_slice(&second);
    while gather.len() < WRITE_GATHER {
        match queue.try_recv() {
            Ok(more) => gather.extend_from_slice(&more),
            Err(_) => break,
        }
    }
    let result = writer.write_all(gather).await;
    // A burst's buffer is not kept for the connection's life.
    if gather.capacity() > 4 * WRITE_GATHER {
        *gather = Vec::new();
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(bytes: &[u8]) -> (Vec<Step>, BytesMut) {
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        loop {
            match next_step(&mut buf, 1000).expect("keep-alives never fail") {
                Step::NeedMore => return (out, buf),
                s => out.push(s),
            }
        }
    }

    #[test]
    fn double_crlf_is_a_ping_and_lone_crlf_is_skipped() {
        assert_eq!(steps(b"\r\n\r\n").0, vec![Step::Ping]);
        assert_eq!(steps(b"\r\n\r\n\r\n\r\n").0, vec![Step::Ping, Step::Ping]);
        // A split ping waits for its second half instead of being skipped.
        let (s, rest) = steps(b"\r\n");
        assert!(s.is_empty());
        assert_eq!(&rest[..], b"\r\n");
        let (s, rest) = steps(b"\r\n\r");
        assert!(s.is_empty());
        assert_eq!(&rest[..], b"\r\n\r");
    }
}
