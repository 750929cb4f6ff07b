//! SIP messages for sharedline: the model, a zero-copy parser and a writer.
//!
//! This crate owns the bytes of a SIP message and nothing else: no sockets, no
//! clock, no transactions. Everything it returns borrows from the buffer it
//! was given, so parsing allocates only the small header index, and the typed
//! views (through the `*_iter` accessors for list headers) allocate nothing.
//!
//! A server should call [`parse_typed`], then [`Parsed::check`], then the
//! accessors of [`Parsed`]: the same answers as [`parse()`], [`check_request`]
//! and `Message`'s accessors, without reading the common headers twice.
//!
//! # Layout
//! - [`message`]: [`Message`], its start line and the header index.
//! - [`mod@parse`]: [`parse()`] (one whole message) and [`frame_len`] (stream framing).
//! - [`peek`]: the status and top Via branch of a response, without a full parse.
//! - [`header`]: typed views of the headers the server reads, parsed lazily on access.
//! - `simd`: 16-byte SSE2 searches (line ends, header names, `<uri>`,
//!   parameter names and values), host-name byte masks, and the AVX-512
//!   byte-class masks of `pass`; the crate's only `unsafe` code.
//! - `swar`: word-at-a-time name compares, and the searches of `simd` on
//!   targets without SSE2.
//! - `pass`: [`parse_typed`]'s fast path on CPUs with AVX-512 VBMI: one
//!   pass over byte-class bit masks that builds the same [`Parsed`] as
//!   `parse` + `Parsed::new` for the usual shapes of a request, and
//!   declines the rest.
//! - `scan`: single-pass scanners for the usual shapes of those headers,
//!   with the general parsers in `header` behind them.
//! - [`Parsed`] / [`parse_typed`]: a message with the headers every request
//!   needs (top Via, From, To, Call-ID, CSeq, Max-Forwards, Expires, Event,
//!   Content-Type, Content-Length, first Contact/Route/Record-Route) read
//!   once at parse time; [`Parsed::check`] and its accessors reuse them.
//! - [`uri`]: SIP/SIPS URIs and host names (RFC 3261 §19.1, RFC 5118 IPv6 references).
//! - [`check`]: the request checks a UAS makes before it acts (mandatory headers,
//!   versions, schemes), returning the status code and reason to answer with.
//! - [`mod@write`]: builders that append requests and responses to a `Vec<u8>`.
//!
//! Text rules shared by all of them (LWS with line folding, tokens, quoted
//! strings, comma lists that respect quotes and angle brackets) live in `text`.

// `unsafe` is refused everywhere but in `simd` (SSE2 intrinsics and one
// 16-byte load), whose every block says why it is sound.
#![deny(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod check;
#[cfg(test)]
mod difftest;
pub mod header;
mod known;
pub mod message;
pub mod parse;
mod pass;
pub mod peek;
mod scan;
#[allow(unsafe_code)]
mod simd;
mod swar;
mod text;
pub mod uri;
pub mod write;

pub use check::{check_request, Invalid};
pub use header::{
    CSeq, CallInfo, ContentType, Event, HeaderError, NameAddr, Param, ParamIter, Params, SubState,
    SubscriptionState, Via,
};
pub use known::{parse_typed, Parsed};
pub use message::{HeaderName, Message, Method, StartLine};
pub use parse::{frame_len, parse, FrameError, ParseError};
pub use peek::{peek_response, ResponseHead};
pub use uri::{Host, Uri};
pub use write::{RequestWriter, ResponseWriter};
