//! sharedline's shell: the binary around the sans-IO [`engine`]. It reads
//! the command line and config file, owns the sockets, the clock and the
//! store, and feeds the engine what happens. No SIP logic lives here.
//!
//! # Layout
//! - [`cli`]: the command line (clap); the server is the default command.
//! - [`config`]: config file + flags → [`config::Settings`] (engine config,
//!   shell limits, listeners, store, log filter), with one-line errors.
//! - [`server`]: startup, the engine task (owns the [`engine::Engine`], no
//!   lock; inputs on one channel, outputs drained after each), shutdown.
//! - [`transport`]: UDP receive loops and TCP connections (framing,
//!   keep-alives, limits); they talk to the engine task only.
//! - [`store`]: the durable store (SQLite or memory) on its own thread.
//! - [`http`]: the optional HTTP interface: JSON API, metrics, live page.
//! - [`client`]: `watch`, `publish`, `seize`: a small SIP client for people and scripts.
//! - [`bench`]: `bench`: the load client and the bare responder.
//!
//! `main.rs` only calls [`main`].

// `unsafe` is refused everywhere but in `sched` (one libc call with no
// safe wrapper in our dependencies).
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod bench;
pub mod cli;
pub mod client;
pub mod config;
pub mod http;
#[allow(unsafe_code)]
mod sched;
pub mod server;
pub mod store;
pub mod transport;

use clap::Parser;
use std::io::IsTerminal;
use std::process::ExitCode;

/// Exit status for usage and configuration errors (as clap uses).
pub const EXIT_USAGE: u8 = 2;
/// Exit status for a failure while running (bind, store, engine).
pub const EXIT_FAILURE: u8 = 1;

/// The whole program: parse, configure, run. Errors are one line on stderr.
pub fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_error(e),
    };
    match cli.command {
        Some(cli::Command::Watch(a)) => return client::watch(a),
        Some(cli::Command::Publish(a)) => return client::publish(a),
        Some(cli::Command::Seize(a)) => return client::seize(a),
        Some(cli::Command::Bench(a)) => return bench::run(a),
        _ => {}
    }
    let args = cli.into_serve_args();
    let settings = match config::Settings::resolve(&args, std::env::var("RUST_LOG").ok()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sharedline: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    // The filter was validated by `resolve`; a second subscriber can only
    // exist in tests that call this twice, where keeping the first is fine.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&settings.log))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
    match server::run(settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("sharedline: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// Help and version go to stdout with status 0; anything else is a usage
/// error: its first line on stderr, status 2.
fn clap_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        _ => {
            let text = e.render().to_string();
            let first = text
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("invalid arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("sharedline: {first} (see --help)");
            ExitCode::from(EXIT_USAGE)
        }
    }
}
