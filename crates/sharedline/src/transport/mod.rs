//! The sockets: UDP receive loops ([`udp`]) and TCP connections ([`tcp`]).
//!
//! Transports only move bytes. They cut the stream into frames, drop what is
//! too large, answer RFC 5626 keep-alives and enforce the connection limits;
//! every real message goes to the engine task as an [`Input`] and everything
//! the engine sends comes back through the engine task. No SIP logic here.

pub mod tcp;
pub mod udp;

use crate::config::Limits;
use bytes::Bytes;
use engine::{ConnId, Source};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, watch, Semaphore};

/// What the engine task is told; everything arrives on one channel so the
/// task owns the engine without a lock.
#[derive(Debug)]
pub enum Input {
    /// A datagram, or one whole frame from a stream.
    Bytes {
        /// Where it came from.
        source: Source,
        /// The message.
        bytes: Bytes,
    },
    /// Datagrams read from one UDP socket in one system call, end to end in
    /// one buffer.
    Datagrams(udp::Received),
    /// The store made more batches durable; the task reads the watermark.
    Durable,
    /// A connection was accepted; bytes for it go to `writer`.
    Opened {
        /// The connection's id, as it will appear in [`Source::conn`].
        conn: ConnId,
        /// The connection's write queue.
        writer: mpsc::Sender<Bytes>,
    },
    /// A connection ended (closed by either side, idle, failed to connect).
    Closed(ConnId),
    /// The peer stopped sending; once nothing is queued for the connection,
    /// drop its write queue so it can close.
    Drain(ConnId),
    /// A question or an operator action from the HTTP interface; the engine
    /// task answers on the call's reply channel.
    Http(crate::http::Call),
}

/// Shutdown notice shared by every task: set once, never cleared.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// A trigger and its first listener.
    pub fn new() -> (watch::Sender<bool>, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (tx, Shutdown(rx))
    }

    /// Resolves once shutdown has begun (or the trigger is gone, which
    /// means the server is going away anyway).
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

/// What every transport task needs; cheap to clone.
#[derive(Debug, Clone)]
pub struct Context {
    /// The engine task's input channel.
    pub inputs: mpsc::Sender<Input>,
    /// Size and time limits.
    pub limits: Limits,
    /// One permit per open TCP connection.
    pub permits: Arc<Semaphore>,
    /// Source of connection ids, shared by accepted and opened connections.
    pub next_conn: Arc<AtomicU64>,
    /// Shutdown notice.
    pub shutdown: Shutdown,
}

impl Context {
    /// A fresh connection id.
    pub fn conn_id(&self) -> ConnId {
        ConnId(self.next_conn.fetch_add(1, Ordering::Relaxed))
    }
}
