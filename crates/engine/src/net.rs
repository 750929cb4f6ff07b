//! Where a message came from and where output goes. The engine never opens
//! sockets; it names the listener (`local`), the peer (`remote`) and, on
//! stream transports, the connection to reuse.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// A transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Transport {
    /// UDP: unreliable, the engine retransmits (Timer E).
    Udp,
    /// TCP: reliable and ordered.
    Tcp,
}

impl Transport {
    /// Whether the transport is reliable (no retransmissions).
    pub fn reliable(self) -> bool {
        matches!(self, Transport::Tcp)
    }
    /// The Via token, `UDP` or `TCP`.
    pub fn via_token(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }
}

/// Identifies one accepted or opened stream connection, chosen by the shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ConnId(pub u64);

/// Where a message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Source {
    /// The transport it came over.
    pub transport: Transport,
    /// The listener's address (the socket it arrived on).
    pub local: SocketAddr,
    /// The peer's address (the packet's source).
    pub remote: SocketAddr,
    /// For streams, the connection it arrived on.
    pub conn: Option<ConnId>,
}

/// Bytes to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The transport to send over.
    pub transport: Transport,
    /// The listener to send from (UDP: that socket; TCP: the listener whose
    /// address a new connection should present in Via).
    pub local: SocketAddr,
    /// The destination.
    pub remote: SocketAddr,
    /// For streams: send on this connection if it is still open, otherwise
    /// open a new one to `remote`.
    pub conn: Option<ConnId>,
    /// The whole message.
    pub bytes: Vec<u8>,
}
