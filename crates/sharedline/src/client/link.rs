//! The client's socket: one UDP socket or one TCP connection to the server,
//! moving whole SIP messages with blocking calls and short timeouts, so a
//! wait can notice Ctrl-C.

use super::dialog::Local;
use engine::Transport;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Largest message we read (a UDP datagram's maximum).
const MAX_MESSAGE: usize = 65_535;
/// How often a wait looks at the stop flag.
const POLL: Duration = Duration::from_millis(100);

/// What a wait for a message found.
#[derive(Debug)]
pub(crate) enum Recv {
    /// A whole message.
    Message(Vec<u8>),
    /// The deadline passed.
    Timeout,
    /// The user asked to stop (Ctrl-C).
    Stopped,
}

enum Socket {
    Udp(UdpSocket),
    Tcp { stream: TcpStream, buf: Vec<u8> },
}

/// A connection to the server.
pub(crate) struct Link {
    socket: Socket,
    server: SocketAddr,
    local: Local,
}

impl Link {
    /// Open a socket on port 0 towards `server`.
    pub(crate) fn open(server: SocketAddr, tcp: bool) -> std::io::Result<Link> {
        if tcp {
            let stream = TcpStream::connect_timeout(&server, Duration::from_secs(5))?;
            stream.set_nodelay(true)?;
            let local = Local {
                addr: stream.local_addr()?,
                transport: Transport::Tcp,
            };
            return Ok(Link {
                socket: Socket::Tcp {
                    stream,
                    buf: Vec::new(),
                },
                server,
                local,
            });
        }
        let any: SocketAddr = if server.is_ipv4() {
            "0.0.0.0:0".parse().map_err(std::io::Error::other)?
        } else {
            "[::]:0".parse().map_err(std::io::Error::other)?
        };
        let sock = UdpSocket::bind(any)?;
        // The wildcard bind says nothing of the address the server sees; a
        // connected probe socket asks the routing table which one it is.
        let probe = UdpSocket::bind(any)?;
        probe.connect(server)?;
        let addr = SocketAddr::new(probe.local_addr()?.ip(), sock.local_addr()?.port());
        Ok(Link {
            socket: Socket::Udp(sock),
            server,
            local: Local {
                addr,
                transport: Transport::Udp,
            },
        })
    }

    /// Our address and transport.
    pub(crate) fn local(&self) -> Local {
        self.local
    }

    /// Whether requests must be retransmitted (UDP).
    pub(crate) fn unreliable(&self) -> bool {
        matches!(self.socket, Socket::Udp(_))
    }

    /// Send one message.
    pub(crate) fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match &mut self.socket {
            Socket::Udp(s) => s.send_to(bytes, self.server).map(|_| ()),
            Socket::Tcp { stream, .. } => stream.write_all(bytes),
        }
    }

    /// The next message, waiting until `deadline`; with `stop` given, also
    /// returns once it is set. Datagrams from anyone but the server, and
    /// ones that are only keep-alive CRLFs, are skipped.
    pub(crate) fn recv(
        &mut self,
        deadline: Instant,
        stop: Option<&AtomicBool>,
    ) -> std::io::Result<Recv> {
        loop {
            if let Socket::Tcp { buf, .. } = &mut self.socket {
                if let Some(msg) = take_frame(buf)? {
                    return Ok(Recv::Message(msg));
                }
            }
            if stop.is_some_and(|s| s.load(Ordering::SeqCst)) {
                return Ok(Recv::Stopped);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(Recv::Timeout);
            }
            let wait = left.min(POLL);
            match &mut self.socket {
                Socket::Udp(s) => {
                    s.set_read_timeout(Some(wait))?;
                    let mut data = vec![0u8; MAX_MESSAGE];
                    match s.recv_from(&mut data) {
                        Ok((n, from)) => {
                            data.truncate(n);
                            let blank = data.iter().all(|b| matches!(b, b'\r' | b'\n'));
                            if from == self.server && !blank {
                                return Ok(Recv::Message(data));
                            }
                        }
                        Err(e) if is_timeout(&e) => {}
                        Err(e) => return Err(e),
                    }
                }
                Socket::Tcp { stream, buf } => {
                    stream.set_read_timeout(Some(wait))?;
                    let mut chunk = [0u8; 16 * 1024];
                    match stream.read(&mut chunk) {
                        Ok(0) => {
                            return Err(std::io::Error::new(
                                ErrorKind::ConnectionAborted,
                                "the server closed the connection",
                            ))
                        }
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        Err(e) if is_timeout(&e) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
    )
}

/// Cut the first whole message off a TCP buffer, dropping keep-alive CRLFs.
fn take_frame(buf: &mut Vec<u8>) -> std::io::Result<Option<Vec<u8>>> {
    loop {
        match sip::frame_len(buf, MAX_MESSAGE) {
            Ok(n) => {
                let frame: Vec<u8> = buf.drain(..n).collect();
                if frame.iter().all(|b| matches!(b, b'\r' | b'\n')) {
                    continue;
                }
                return Ok(Some(frame));
            }
            Err(sip::FrameError::Incomplete) => return Ok(None),
            Err(sip::FrameError::Invalid(why)) => {
                return Err(std::io::Error::new(
                    ErrorKind::InvalidData,
                    format!("the server sent a stream we cannot frame: {why}"),
                ))
            }
        }
    }
}
