//! sharedline's core, sans-IO: everything that decides what to answer and
//! whom to notify, and nothing that touches a socket, a file or the clock.
//!
//! The shell (the `sharedline` crate) feeds the [`Engine`] with what
//! happened: a datagram or stream frame arrived ([`Engine::handle_bytes`]),
//! time passed ([`Engine::handle_timeout`]), the store made writes durable
//! ([`Engine::handle_durable`]). After each call it drains
//! [`Engine::poll_output`]: bytes to send and batches of writes to make
//! durable. [`Engine::next_timeout`] says when to call again. Time is a
//! [`Time`] the caller passes in, so tests run whole scenarios in
//! microseconds and replay them exactly.
//!
//! # Layout
//! - [`time`]: the clock value every input carries.
//! - [`net`]: where a message came from and where output goes.
//! - [`transaction`]: RFC 3261 §17 non-INVITE transactions (server: absorb
//!   retransmissions; client: our NOTIFYs, Timers E/F/K).
//! - [`store`]: the records the store keeps and the writes the engine asks for.
//! - [`config`]: limits and policy.
//! - `engine`: the facade that routes requests to publications,
//!   subscriptions and packages.

#![forbid(unsafe_code)]

pub mod admin;
pub mod config;
mod engine;
mod expiry;
pub mod inspect;
pub mod net;
pub mod package;
mod publish;
mod rng;
mod salvage;
pub mod sca;
mod sharded;
pub mod stats;
pub mod store;
mod subscribe;
pub mod subscription;
pub mod time;
pub mod transaction;

pub use config::Config;
pub use engine::Engine;
pub use net::{ConnId, Source, Transmit, Transport};
pub use store::{
    PublicationRecord, Snapshot, StoreBatch, StoreFold, StoreModel, StoreOp, SubscriptionRecord,
};
pub use time::Time;

/// What the shell must do next; see [`Engine::poll_output`].
#[derive(Debug)]
pub enum Output {
    /// Send these bytes.
    Transmit(Transmit),
    /// Make these writes durable, then call [`Engine::handle_durable`] with
    /// the batch's `seq` (batches may be committed together; acknowledging a
    /// seq acknowledges every lower one).
    Store(StoreBatch),
}
