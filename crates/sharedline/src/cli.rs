//! The command line: what the user typed, parsed by clap and nothing more.
//!
//! Turning flags into settings (merging them with the config file and
//! checking values against each other) is [`crate::config`]'s job. The
//! server is the default action; `sharedline serve` names it explicitly, and
//! further subcommands (`watch`, `publish`, `seize`, `bench`) will join
//! [`Command`] as variants of their own.

use clap::{Args, Parser, Subcommand};
use engine::Transport;
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::str::FromStr;

/// `sharedline`: a SIP presence server for shared call appearances.
#[derive(Debug, Parser)]
#[command(name = "sharedline", version, about, color = clap::ColorChoice::Never)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// What to do; the server when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Server flags, accepted without the `serve` word.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve(ServeArgs),
    /// Watch a line: subscribe to its call-info and print its appearances on every change.
    Watch(crate::client::WatchArgs),
    /// Publish an appearance's call state to a line (as a PBX would).
    Publish(crate::client::PublishArgs),
    /// Seize an appearance of a line and hold it until Ctrl-C.
    Seize(crate::client::SeizeArgs),
    /// Load a server with SIP traffic and report throughput, latency and cost.
    Bench(crate::bench::BenchArgs),
}

impl Cli {
    /// The server flags, whichever way the server was asked for.
    pub fn into_serve_args(self) -> ServeArgs {
        match self.command {
            Some(Command::Serve(args)) => args,
            _ => self.serve,
        }
    }
}

/// Flags of the server.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// TOML config file; flags given here override its keys.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A listener, `udp:HOST:PORT` or `tcp:HOST:PORT` (IPv6 as `udp:[::1]:5060`,
    /// port 0 lets the OS choose). Repeatable. Default: UDP and TCP on 127.0.0.1:5060.
    #[arg(long = "sip", value_name = "LISTENER")]
    pub sip: Vec<ListenSpec>,
    /// Where state is kept: `sqlite:PATH` or `memory`. Default: sqlite:./sharedline.db.
    #[arg(long, value_name = "STORE")]
    pub store: Option<String>,
    /// Log filter for stderr: a level (error, warn, info, debug, trace) or a
    /// tracing directive list. Default: RUST_LOG, else the config file, else info.
    #[arg(long, value_name = "LEVEL")]
    pub log: Option<String>,
    /// Serve the HTTP API, metrics and live page on `HOST:PORT` (off unless
    /// given here or in the config file's `[http]` table; port 0 lets the OS choose).
    #[arg(long, value_name = "HOST:PORT")]
    pub http: Option<SocketAddr>,
}

/// One listener: a transport and the address to bind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenSpec {
    /// UDP or TCP.
    pub transport: Transport,
    /// The address to bind (port 0: the OS chooses).
    pub addr: SocketAddr,
}

impl ListenSpec {
    /// The `udp:` / `tcp:` prefix.
    pub fn scheme(transport: Transport) -> &'static str {
        match transport {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

impl fmt::Display for ListenSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", Self::scheme(self.transport), self.addr)
    }
}

impl FromStr for ListenSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (scheme, rest) = s
            .split_once(':')
            .ok_or_else(|| format!("expected udp:HOST:PORT or tcp:HOST:PORT, got `{s}`"))?;
        let transport = match scheme.to_ascii_lowercase().as_str() {
            "udp" => Transport::Udp,
            "tcp" => Transport::Tcp,
            other => return Err(format!("unknown transport `{other}` (expected udp or tcp)")),
        };
        let addr = match rest.parse::<SocketAddr>() {
            Ok(a) => a,
            // A host name such as `localhost:5060`: bind what it resolves to
            // first, as a listener binds one address.
            Err(_) => {
                if !matches!(rest.rsplit_once(':'), Some((host, _)) if !host.is_empty()) {
                    return Err(format!(
                        "expected HOST:PORT after `{scheme}:`, got `{rest}`"
                    ));
                }
                rest.to_socket_addrs()
                    .map_err(|e| format!("cannot resolve `{rest}`: {e}"))?
                    .next()
                    .ok_or_else(|| format!("`{rest}` resolves to no address"))?
            }
        };
        Ok(ListenSpec { transport, addr })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_spec_parses_v4_v6_and_rejects_junk() {
        let v4: ListenSpec = "udp:127.0.0.1:0".parse().unwrap();
        assert_eq!(v4.transport, Transport::Udp);
        assert_eq!(v4.addr, "127.0.0.1:0".parse().unwrap());
        let v6: ListenSpec = "tcp:[::1]:5060".parse().unwrap();
        assert_eq!(v6.transport, Transport::Tcp);
        assert_eq!(v6.to_string(), "tcp:[::1]:5060");
        assert!("sctp:127.0.0.1:1".parse::<ListenSpec>().is_err());
        assert!("udp:127.0.0.1".parse::<ListenSpec>().is_err());
        assert!("udp:127.0.0.1:99999".parse::<ListenSpec>().is_err());
        assert!("127.0.0.1:5060".parse::<ListenSpec>().is_err());
    }

    #[test]
    fn server_is_the_default_and_serve_also_works() {
        let cli = Cli::try_parse_from(["sharedline", "--sip", "udp:127.0.0.1:0"]).unwrap();
        assert_eq!(cli.into_serve_args().sip.len(), 1);
        let cli = Cli::try_parse_from(["sharedline", "serve", "--store", "memory"]).unwrap();
        assert_eq!(cli.into_serve_args().store.as_deref(), Some("memory"));
    }
}
