//! `sharedline bench`: the load client and the bare responder.
//!
//! The load client drives a presence server (sharedline, Kamailio's `sca`,
//! or the bare responder) with one of four workloads over UDP or TCP and
//! reports what an operator sizes a box by: requests/s, NOTIFYs/s, NOTIFYs
//! expected vs received, latency from a request to the NOTIFYs it causes,
//! retransmissions, and the server's RSS and CPU seconds read from /proc.
//! It prints a table and one JSON line.
//!
//! # Layout
//! - [`load`]: the client: simulated watchers, publishers, seizers and
//!   churners multiplexed over a few sockets on one tokio current-thread
//!   runtime, so one core is enough to keep a server busy.
//! - [`responder`]: a UDP program that answers SUBSCRIBE and PUBLISH with
//!   canned 200s and sends NOTIFYs from pre-built heads; the machine's ceiling.
//! - [`report`]: the counters, the table and the JSON line.
//! - [`procstat`]: CPU seconds and memory of a process or a process group.

pub mod load;
pub mod procstat;
pub mod report;
pub mod responder;

use crate::cli::ListenSpec;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Flags of `bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The workload, or the responder.
    #[command(subcommand)]
    pub what: BenchCommand,
}

/// What `bench` runs.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// L lines x W call-info watchers, then a stream of call-info PUBLISHes
    /// (initial, then modifies with SIP-If-Match), at most K lines in flight.
    PublishFanout(LoadArgs),
    /// L lines x W watchers, then line-seize SUBSCRIBE / unSUBSCRIBE cycles;
    /// each cycle NOTIFYs every watcher of the line twice.
    SeizeFanout(LoadArgs),
    /// K clients each looping SUBSCRIBE, NOTIFY, unSUBSCRIBE, final NOTIFY.
    SubscribeChurn(LoadArgs),
    /// N long-lived call-info subscriptions: memory per subscription and,
    /// with --restart-cmd, how long a restart takes to serve them again.
    Hold(HoldArgs),
    /// The bare responder: canned 200s and pre-built NOTIFYs over UDP.
    Responder(ResponderArgs),
    /// Print the side-by-side table of a results file (JSON lines), with
    /// sharedline's requests/s divided by each server's.
    Table(TableArgs),
}

/// Flags of `table`.
#[derive(Debug, Clone, Args)]
pub struct TableArgs {
    /// A file of JSON lines written by the workloads' --results.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The server label the ratios are taken against.
    #[arg(long, default_value = "sharedline")]
    pub base: String,
}

/// Flags shared by the load workloads.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// The server, `udp:HOST:PORT` or `tcp:HOST:PORT`.
    #[arg(long, value_name = "LISTENER")]
    pub target: ListenSpec,
    /// Lines (addresses of record).
    #[arg(long, default_value_t = 100)]
    pub lines: usize,
    /// call-info watchers per line.
    #[arg(long, default_value_t = 10)]
    pub watchers: usize,
    /// At most this many operations in flight (lines for the fan-out
    /// workloads, clients for subscribe-churn).
    #[arg(long, default_value_t = 32)]
    pub outstanding: usize,
    /// Seconds of load after setup.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Open loop: start this many operations per second (a PUBLISH; a
    /// seize or subscribe cycle of two requests), evenly spaced, instead of
    /// starting the next as each ends, for latency at a given load; latency
    /// counts from each operation's due instant. --outstanding still caps
    /// operations in flight. The client keeps its core busy in this mode
    /// (it yields between operations rather than sleeping).
    #[arg(long, value_name = "PER_SECOND")]
    pub rate: Option<f64>,
    /// Client sockets (UDP) or connections (TCP) the simulated phones share.
    #[arg(long, default_value_t = 4)]
    pub sockets: usize,
    /// PID of the server, for its CPU seconds and RSS.
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,
    /// Process group of the server (all its processes are summed; memory is
    /// the sum of PSS so shared pages count once).
    #[arg(long, value_name = "PGID")]
    pub server_pgid: Option<u32>,
    /// Name of the server in the report.
    #[arg(long, default_value = "server")]
    pub label: String,
    /// Append the JSON line to this file too.
    #[arg(long, value_name = "FILE")]
    pub results: Option<PathBuf>,
    /// Seconds to wait for setup (subscribing the watchers) before failing.
    #[arg(long, default_value_t = 120.0)]
    pub setup_timeout: f64,
    /// Seconds to wait, after the load stops, for NOTIFYs still owed.
    #[arg(long, default_value_t = 5.0)]
    pub drain: f64,
}

/// Flags of `hold`.
#[derive(Debug, Clone, Args)]
pub struct HoldArgs {
    /// Common flags (`--lines` spreads the subscriptions; `--watchers` and
    /// `--duration` are not used).
    #[command(flatten)]
    pub load: LoadArgs,
    /// How many subscriptions to hold.
    #[arg(long, default_value_t = 100_000)]
    pub subscriptions: usize,
    /// After subscribing, wait this many seconds and read the server's
    /// memory again: the burst's finished transactions (kept 64*T1 = 32 s
    /// by default, RFC 3261 Timer J) have gone, the subscriptions remain.
    #[arg(long, default_value_t = 0.0, value_name = "SECONDS")]
    pub settle: f64,
    /// After subscribing: stop the server (SIGTERM to --server-pid), run this
    /// shell command to start it again on the same address, and time until
    /// every held subscription is NOTIFYd again. The bench stops the
    /// restarted server when done.
    #[arg(long, value_name = "CMD")]
    pub restart_cmd: Option<String>,
}

/// Flags of `responder`.
#[derive(Debug, Clone, Args)]
pub struct ResponderArgs {
    /// Where to listen: `udp:HOST:PORT` (port 0: the OS chooses).
    #[arg(long, value_name = "LISTENER", default_value = "udp:127.0.0.1:0")]
    pub listen: ListenSpec,
}

/// Run `bench`.
pub fn run(args: BenchArgs) -> ExitCode {
    let result = match args.what {
        BenchCommand::PublishFanout(a) => load::run(load::Workload::PublishFanout, &a, None),
        BenchCommand::SeizeFanout(a) => load::run(load::Workload::SeizeFanout, &a, None),
        BenchCommand::SubscribeChurn(a) => load::run(load::Workload::SubscribeChurn, &a, None),
        BenchCommand::Hold(h) => load::run(load::Workload::Hold, &h.load, Some(&h)),
        BenchCommand::Responder(a) => responder::run(&a).map(|()| true),
        BenchCommand::Table(t) => std::fs::read_to_string(&t.file)
            .map_err(|e| format!("cannot read {}: {e}", t.file.display()))
            .map(|text| {
                print!("{}", report::comparison(&text, &t.base));
                true
            }),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(crate::EXIT_FAILURE),
        Err(e) => {
            eprintln!("sharedline bench: {e}");
            ExitCode::from(crate::EXIT_FAILURE)
        }
    }
}
