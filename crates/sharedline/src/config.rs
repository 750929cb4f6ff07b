//! Settings: the config file (TOML) merged with the command line, checked,
//! and split into what the engine needs ([`engine::Config`]) and what the
//! shell itself needs ([`Limits`], listeners, store, log filter).
//!
//! Flags win over the file; the file wins over the built-in defaults. Every
//! problem becomes a [`ConfigError`] whose `Display` is one line naming where
//! the bad value came from (`config /etc/x.toml: ...`, `--store ...`), so
//! `main` can print it and exit with status 2.

use crate::cli::{ListenSpec, ServeArgs};
use crate::store::StoreSpec;
use engine::config::{Cidr, ExpiresLimits, Timers};
use engine::Transport;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Largest accepted `max_message_size`: a bound on one connection's buffer.
const MAX_MESSAGE_SIZE_CEILING: u64 = 16 * 1024 * 1024;
/// Smallest accepted `max_message_size`: RFC 3261 requests must fit.
const MAX_MESSAGE_SIZE_FLOOR: u64 = 256;
/// Longest accepted `tcp_idle_timeout` (a year): keeps deadlines far from
/// overflowing the clock.
const MAX_IDLE_SECS: u64 = 365 * 24 * 3600;
/// Longest accepted timer value (an hour); RFC 3261's are seconds.
const MAX_TIMER_MS: u64 = 3_600_000;

/// Everything the server needs to start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Listeners to bind, in order.
    pub listeners: Vec<ListenSpec>,
    /// Where state is kept.
    pub store: StoreSpec,
    /// The tracing filter for stderr.
    pub log: String,
    /// Limits the shell enforces on sockets.
    pub limits: Limits,
    /// What the engine is told.
    pub engine: engine::Config,
    /// The HTTP interface, if enabled.
    pub http: Option<crate::http::HttpSettings>,
}

/// Limits the shell enforces before the engine sees a byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest message in bytes: longer datagrams are dropped, longer TCP
    /// frames close their connection.
    pub max_message_size: usize,
    /// Open TCP connections allowed at once (accepted and opened).
    pub max_connections: usize,
    /// A TCP connection silent in both directions this long is closed.
    pub tcp_idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 65535,
            max_connections: 10_000,
            tcp_idle_timeout: Duration::from_secs(600),
        }
    }
}

/// Why the settings cannot be built. `Display` is one line.
#[derive(Debug)]
pub enum ConfigError {
    /// The config file cannot be read.
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The config file is not valid TOML for our keys (syntax, unknown key,
    /// wrong type).
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line of the problem, when known.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// A value is out of range or inconsistent.
    Invalid {
        /// Where it came from: `config FILE: KEY` or a flag.
        origin: String,
        /// What is wrong.
        message: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, error } => {
                write!(f, "config {}: cannot read: {error}", path.display())
            }
            ConfigError::Parse {
                path,
                line,
                message,
            } => {
                write!(f, "config {}: ", path.display())?;
                if let Some(line) = line {
                    write!(f, "line {line}: ")?;
                }
                f.write_str(message)
            }
            ConfigError::Invalid { origin, message } => write!(f, "{origin}: {message}"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The config file as written. Every key is optional; unknown keys are errors
/// so that a typo does not silently keep a default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    sip: Option<Vec<String>>,
    store: Option<String>,
    log: Option<String>,
    #[serde(default)]
    limits: FileLimits,
    #[serde(default)]
    timers: FileTimers,
    #[serde(default)]
    policy: FilePolicy,
    #[serde(default)]
    packages: BTreeMap<String, FilePackage>,
    http: Option<FileHttp>,
}

/// `[http]`: present means enabled (on loopback unless `listen` says otherwise).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileHttp {
    listen: Option<String>,
    token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLimits {
    max_message_size: Option<u64>,
    max_connections: Option<u64>,
    tcp_idle_timeout: Option<u64>,
    max_subscriptions: Option<u64>,
    max_subscriptions_per_line: Option<u64>,
    max_subscriptions_per_source: Option<u64>,
    max_publications_per_line: Option<u64>,
    max_notifies_in_flight: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTimers {
    t1_ms: Option<u64>,
    t2_ms: Option<u64>,
    t4_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePolicy {
    trusted_publishers: Option<Vec<String>>,
    max_appearances: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePackage {
    min_expires: Option<u32>,
    max_expires: Option<u32>,
    default_expires: Option<u32>,
}

impl Settings {
    /// Build the settings from the flags, the config file they name (if
    /// any) and `rust_log` (the `RUST_LOG` variable, passed in so tests need
    /// not touch the environment).
    pub fn resolve(args: &ServeArgs, rust_log: Option<String>) -> Result<Settings, ConfigError> {
        let (file, origin) = match &args.config {
            Some(path) => (read_file(path)?, format!("config {}", path.display())),
            None => (FileConfig::default(), "config".to_string()),
        };
        let at = |key: &str| format!("{origin}: {key}");
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            origin: at(key),
            message,
        };

        let listeners = if !args.sip.is_empty() {
            args.sip.clone()
        } else if let Some(list) = &file.sip {
            let mut out = Vec::with_capacity(list.len());
            for (i, s) in list.iter().enumerate() {
                out.push(
                    s.parse::<ListenSpec>()
                        .map_err(|m| invalid(&format!("sip[{i}]"), m))?,
                );
            }
            if out.is_empty() {
                return Err(invalid("sip", "no listener given".into()));
            }
            out
        } else {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 5060));
            vec![
                ListenSpec {
                    transport: Transport::Udp,
                    addr,
                },
                ListenSpec {
                    transport: Transport::Tcp,
                    addr,
                },
            ]
        };

        let store = match (&args.store, &file.store) {
            (Some(s), _) => parse_store(s).map_err(|m| ConfigError::Invalid {
                origin: format!("--store {s}"),
                message: m,
            })?,
            (None, Some(s)) => parse_store(s).map_err(|m| invalid("store", m))?,
            (None, None) => StoreSpec::Sqlite(PathBuf::from("./sharedline.db")),
        };

        let (log, log_origin) = match (
            &args.log,
            rust_log.filter(|s| !s.trim().is_empty()),
            &file.log,
        ) {
            (Some(l), _, _) => (l.clone(), format!("--log {l}")),
            (None, Some(env), _) => (env.clone(), format!("RUST_LOG={env}")),
            (None, None, Some(l)) => (l.clone(), at("log")),
            (None, None, None) => ("info".to_string(), "log".to_string()),
        };
        tracing_subscriber::EnvFilter::try_new(&log).map_err(|e| ConfigError::Invalid {
            origin: log_origin,
            message: format!("not a log level or filter: {e}"),
        })?;

        let defaults = Limits::default();
        let max_message_size = match file.limits.max_message_size {
            None => defaults.max_message_size,
            Some(n) if (MAX_MESSAGE_SIZE_FLOOR..=MAX_MESSAGE_SIZE_CEILING).contains(&n) => {
                n as usize
            }
            Some(n) => {
                return Err(invalid(
                    "limits.max_message_size",
                    format!("{n} is outside {MAX_MESSAGE_SIZE_FLOOR}..={MAX_MESSAGE_SIZE_CEILING}"),
                ))
            }
        };
        let max_connections = match file.limits.max_connections {
            None => defaults.max_connections,
            // The semaphore's own ceiling is far above any useful value.
            Some(n) if (1..=1_000_000).contains(&n) => n as usize,
            Some(n) => {
                return Err(invalid(
                    "limits.max_connections",
                    format!("{n} is outside 1..=1000000"),
                ))
            }
        };
        let tcp_idle_timeout = match file.limits.tcp_idle_timeout {
            None => defaults.tcp_idle_timeout,
            Some(n) if (1..=MAX_IDLE_SECS).contains(&n) => Duration::from_secs(n),
            Some(n) => {
                return Err(invalid(
                    "limits.tcp_idle_timeout",
                    format!("{n} is outside 1..={MAX_IDLE_SECS} seconds"),
                ))
            }
        };

        let base = Timers::default();
        let t1 = file.timers.t1_ms.unwrap_or(base.t1);
        let t2 = file.timers.t2_ms.unwrap_or(base.t2);
        let t4 = file.timers.t4_ms.unwrap_or(base.t4);
        for (key, v) in [
            ("timers.t1_ms", t1),
            ("timers.t2_ms", t2),
            ("timers.t4_ms", t4),
        ] {
            if !(1..=MAX_TIMER_MS).contains(&v) {
                return Err(invalid(key, format!("{v} is outside 1..={MAX_TIMER_MS}")));
            }
        }
        if t2 < t1 {
            return Err(invalid(
                "timers.t2_ms",
                format!("{t2} is below t1_ms ({t1})"),
            ));
        }

        let mut config = engine::Config {
            timers: Timers { t1, t2, t4 },
            ..engine::Config::default()
        };
        let q = &mut config.quotas;
        for (key, value, slot) in [
            (
                "limits.max_subscriptions",
                file.limits.max_subscriptions,
                &mut q.max_subscriptions,
            ),
            (
                "limits.max_subscriptions_per_line",
                file.limits.max_subscriptions_per_line,
                &mut q.max_subscriptions_per_line,
            ),
            (
                "limits.max_subscriptions_per_source",
                file.limits.max_subscriptions_per_source,
                &mut q.max_subscriptions_per_source,
            ),
            (
                "limits.max_publications_per_line",
                file.limits.max_publications_per_line,
                &mut q.max_publications_per_line,
            ),
            (
                "limits.max_notifies_in_flight",
                file.limits.max_notifies_in_flight,
                &mut q.max_notifies_in_flight,
            ),
        ] {
            match value {
                None => {}
                Some(n) if (1..=100_000_000).contains(&n) => *slot = n as usize,
                Some(n) => return Err(invalid(key, format!("{n} is outside 1..=100000000"))),
            }
        }
        if let Some(list) = &file.policy.trusted_publishers {
            let mut cidrs = Vec::with_capacity(list.len());
            for (i, s) in list.iter().enumerate() {
                cidrs.push(
                    Cidr::parse(s)
                        .map_err(|m| invalid(&format!("policy.trusted_publishers[{i}]"), m))?,
                );
            }
            config.trusted_publishers = cidrs;
        }
        if let Some(n) = file.policy.max_appearances {
            if n == 0 {
                return Err(invalid(
                    "policy.max_appearances",
                    "must be at least 1 (omit it for unlimited)".into(),
                ));
            }
            config.max_appearances = Some(n);
        }
        let known = engine::package::Packages::new(&BTreeMap::new());
        for (name, p) in &file.packages {
            let Some((_, base)) = known.get(name) else {
                let names: Vec<&str> = known.iter().map(|p| p.name()).collect();
                return Err(invalid(
                    &format!("packages.{name}"),
                    format!("unknown event package (known: {})", names.join(", ")),
                ));
            };
            let limits =
                package_limits(p, base).map_err(|m| invalid(&format!("packages.{name}"), m))?;
            config.package_limits.insert(name.clone(), limits);
        }

        let http = match (args.http, &file.http) {
            (None, None) => None,
            (flag, section) => {
                let section = section.as_ref();
                let listen = match (flag, section.and_then(|h| h.listen.as_deref())) {
                    (Some(addr), _) => addr,
                    (None, Some(s)) => s.parse().map_err(|e| {
                        invalid("http.listen", format!("expected HOST:PORT, got `{s}`: {e}"))
                    })?,
                    (None, None) => crate::http::DEFAULT_LISTEN,
                };
                let token = match section.and_then(|h| h.token.clone()) {
                    Some(t) if t.trim().is_empty() || t.chars().any(char::is_whitespace) => {
                        return Err(invalid(
                            "http.token",
                            "must be non-empty and contain no whitespace".into(),
                        ))
                    }
                    t => t,
                };
                Some(crate::http::HttpSettings { listen, token })
            }
        };

        Ok(Settings {
            http,
            listeners,
            store,
            log,
            limits: Limits {
                max_message_size,
                max_connections,
                tcp_idle_timeout,
            },
            engine: config,
        })
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.to_owned(),
        error,
    })?;
    toml::from_str(&text).map_err(|e| {
        // toml's message may span lines; keep it to one. Its key path is not
        // public, so quote the offending line, which holds the key.
        let mut message = e
            .message()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        let line = e.span().map(|span| {
            let start = span.start.min(text.len());
            let number = text[..start].matches('\n').count() + 1;
            let source = text.lines().nth(number - 1).unwrap_or("").trim();
            if !source.is_empty() && !message.contains(source) {
                let quoted: String = source.chars().take(60).collect();
                message = format!("{message} (in `{quoted}`)");
            }
            number
        });
        ConfigError::Parse {
            path: path.to_owned(),
            line,
            message,
        }
    })
}

fn parse_store(s: &str) -> Result<StoreSpec, String> {
    s.parse::<StoreSpec>().map_err(|e| e.to_string())
}

/// Fill what a package section leaves out, then check the bounds agree.
/// Omitted values follow the given ones: no `default_expires` means the
/// maximum, no `max_expires` means an hour (or more if min/default say so).
fn package_limits(p: &FilePackage, base: ExpiresLimits) -> Result<ExpiresLimits, String> {
    // Keys left out keep the package's own defaults, widened only as far
    // as the keys given require.
    let max = p.max_expires.unwrap_or_else(|| {
        base.max
            .max(p.min_expires.unwrap_or(0))
            .max(p.default_expires.unwrap_or(0))
    });
    let min = p
        .min_expires
        .unwrap_or_else(|| base.min.min(p.default_expires.unwrap_or(u32::MAX)).min(max));
    // `clamp` needs min <= max, which is checked just below.
    let default = p
        .default_expires
        .unwrap_or_else(|| base.default.max(min).min(max));
    if min == 0 {
        return Err("min_expires must be at least 1".into());
    }
    if min > max {
        return Err(format!("min_expires ({min}) is above max_expires ({max})"));
    }
    if default < min {
        return Err(format!(
            "default_expires ({default}) is below min_expires ({min})"
        ));
    }
    if default > max {
        return Err(format!(
            "default_expires ({default}) is above max_expires ({max})"
        ));
    }
    Ok(ExpiresLimits { min, max, default })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn with_file(toml: &str) -> (tempfile::NamedTempFile, ServeArgs) {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        f.write_all(toml.as_bytes()).expect("write temp file");
        let args = ServeArgs {
            config: Some(f.path().to_owned()),
            ..ServeArgs::default()
        };
        (f, args)
    }

    #[test]
    fn defaults_without_file_or_flags() {
        let s = Settings::resolve(&ServeArgs::default(), None).unwrap();
        assert_eq!(s.listeners.len(), 2);
        assert_eq!(s.listeners[0].to_string(), "udp:127.0.0.1:5060");
        assert_eq!(s.listeners[1].to_string(), "tcp:127.0.0.1:5060");
        assert_eq!(
            s.store.to_string(),
            StoreSpec::Sqlite("./sharedline.db".into()).to_string()
        );
        assert_eq!(s.log, "info");
        assert_eq!(s.limits, Limits::default());
        assert_eq!(s.engine.timers, Timers::default());
    }

    #[test]
    fn full_example_file_maps_to_engine_config() {
        let (_f, args) = with_file(
            r#"
sip = ["udp:127.0.0.1:5070"]
store = "memory"
log = "debug"
[limits]
max_message_size = 4000
max_connections = 7
tcp_idle_timeout = 30
max_subscriptions = 500
max_subscriptions_per_line = 40
max_subscriptions_per_source = 300
max_publications_per_line = 3
max_notifies_in_flight = 64
[timers]
t1_ms = 100
t2_ms = 800
t4_ms = 1000
[policy]
trusted_publishers = ["10.0.0.0/8", "::1"]
max_appearances = 24
[packages.call-info]
min_expires = 60
max_expires = 3600
default_expires = 3600
[packages.line-seize]
min_expires = 5
max_expires = 30
default_expires = 15
"#,
        );
        let s = Settings::resolve(&args, None).unwrap();
        assert_eq!(s.listeners.len(), 1);
        assert_eq!(s.log, "debug");
        assert_eq!(s.store.to_string(), StoreSpec::Memory.to_string());
        assert_eq!(
            s.limits,
            Limits {
                max_message_size: 4000,
                max_connections: 7,
                tcp_idle_timeout: Duration::from_secs(30)
            }
        );
        assert_eq!(
            s.engine.timers,
            Timers {
                t1: 100,
                t2: 800,
                t4: 1000
            }
        );
        assert_eq!(s.engine.trusted_publishers.len(), 2);
        assert!(s.engine.trusted_publishers[0].contains("10.1.2.3".parse().unwrap()));
        assert_eq!(s.engine.max_appearances, Some(24));
        assert_eq!(
            s.engine.quotas,
            engine::config::Quotas {
                max_subscriptions: 500,
                max_subscriptions_per_line: 40,
                max_subscriptions_per_source: 300,
                max_publications_per_line: 3,
                max_notifies_in_flight: 64,
            }
        );
        assert_eq!(
            s.engine.package_limits["line-seize"],
            ExpiresLimits {
                min: 5,
                max: 30,
                default: 15
            }
        );
        assert_eq!(s.engine.package_limits["call-info"].default, 3600);
    }

    #[test]
    fn flags_win_over_file() {
        let (_f, mut args) =
            with_file("sip = [\"udp:127.0.0.1:5070\"]\nstore = \"memory\"\nlog = \"warn\"\n");
        args.sip = vec!["tcp:127.0.0.1:0".parse().unwrap()];
        args.log = Some("trace".into());
        let s = Settings::resolve(&args, Some("error".into())).unwrap();
        assert_eq!(s.listeners[0].to_string(), "tcp:127.0.0.1:0");
        assert_eq!(s.log, "trace");
        // RUST_LOG beats the file but not the flag.
        args.log = None;
        assert_eq!(
            Settings::resolve(&args, Some("error".into())).unwrap().log,
            "error"
        );
    }

    #[test]
    fn errors_are_one_line_and_name_the_problem() {
        let cases = [
            ("foo = 1", "unknown field `foo`"),
            ("[limits]\nmax_conections = 3", "max_conections"),
            ("sip = [", "line 1"),
            ("sip = [\"quic:1.2.3.4:5\"]", "sip[0]"),
            ("[limits]\nmax_message_size = 10", "limits.max_message_size"),
            ("[limits]\nmax_connections = 0", "limits.max_connections"),
            (
                "[limits]\nmax_subscriptions_per_line = 0",
                "limits.max_subscriptions_per_line",
            ),
            ("[limits]\nmax_connections = -1", "max_connections"),
            ("[timers]\nt1_ms = 900\nt2_ms = 800", "timers.t2_ms"),
            ("[timers]\nt4_ms = 0", "timers.t4_ms"),
            ("[timers]\nt2_ms = 99999999999", "timers.t2_ms"),
            ("[limits]\ntcp_idle_timeout = 0", "limits.tcp_idle_timeout"),
            (
                "[limits]\ntcp_idle_timeout = 9223372036854775807",
                "limits.tcp_idle_timeout",
            ),
            (
                "[policy]\ntrusted_publishers = [\"10.0.0.0/33\"]",
                "trusted_publishers[0]",
            ),
            (
                "[packages.call-info]\nmin_expires = 100\nmax_expires = 50",
                "min_expires (100) is above",
            ),
            (
                "[packages.line-seize]\ndefault_expires = 5000\nmax_expires = 60",
                "default_expires (5000) is above",
            ),
            (
                "[packages.call-info]\nmin_expires = 0",
                "packages.call-info",
            ),
            ("log = \"bogus[\"", "log"),
            ("store = \"postgres:x\"", "store"),
        ];
        for (toml, needle) in cases {
            let (f, args) = with_file(toml);
            let err = Settings::resolve(&args, None).expect_err(toml).to_string();
            assert!(
                !err.contains('\n'),
                "{toml:?} gave a multi-line error: {err}"
            );
            assert!(err.contains(needle), "{toml:?}: {err:?} lacks {needle:?}");
            assert!(
                err.contains(&f.path().display().to_string()),
                "{err} does not name the file"
            );
        }
    }

    #[test]
    fn missing_file_names_the_path() {
        let args = ServeArgs {
            config: Some("/nonexistent/sharedline.toml".into()),
            ..ServeArgs::default()
        };
        let err = Settings::resolve(&args, None).unwrap_err().to_string();
        assert!(
            err.starts_with("config /nonexistent/sharedline.toml: cannot read"),
            "{err}"
        );
    }

    #[test]
    fn partial_package_sections_keep_the_package_defaults() {
        let call_info = ExpiresLimits {
            min: 60,
            max: 3600,
            default: 3600,
        };
        let line_seize = ExpiresLimits {
            min: 1,
            max: 15,
            default: 15,
        };
        let only_default = FilePackage {
            default_expires: Some(15),
            ..FilePackage::default()
        };
        assert_eq!(
            package_limits(&only_default, call_info).unwrap(),
            ExpiresLimits {
                min: 15,
                max: 3600,
                default: 15
            }
        );
        let only_max = FilePackage {
            max_expires: Some(30),
            ..FilePackage::default()
        };
        assert_eq!(
            package_limits(&only_max, call_info).unwrap(),
            ExpiresLimits {
                min: 30,
                max: 30,
                default: 30
            }
        );
        // line-seize keeps its own minimum of 1 and default of 15.
        assert_eq!(
            package_limits(&only_max, line_seize).unwrap(),
            ExpiresLimits {
                min: 1,
                max: 30,
                default: 15
            }
        );
        let only_min = FilePackage {
            min_expires: Some(5),
            ..FilePackage::default()
        };
        assert_eq!(
            package_limits(&only_min, line_seize).unwrap(),
            ExpiresLimits {
                min: 5,
                max: 15,
                default: 15
            }
        );
    }

    #[test]
    fn http_is_off_unless_asked_and_defaults_to_loopback() {
        assert!(Settings::resolve(&ServeArgs::default(), None)
            .unwrap()
            .http
            .is_none());
        let (_f, args) = with_file("[http]\ntoken = \"abc\"\n");
        let h = Settings::resolve(&args, None)
            .unwrap()
            .http
            .expect("enabled by [http]");
        assert_eq!(h.listen, crate::http::DEFAULT_LISTEN);
        assert!(h.listen.ip().is_loopback());
        assert_eq!(h.token.as_deref(), Some("abc"));
        assert!(!format!("{h:?}").contains("abc"), "the token is not logged");
        // The flag wins over the file's address and keeps its token.
        let (_f, mut args) = with_file("[http]\nlisten = \"127.0.0.1:9000\"\ntoken = \"abc\"\n");
        args.http = Some("127.0.0.1:0".parse().unwrap());
        let h = Settings::resolve(&args, None).unwrap().http.unwrap();
        assert_eq!(h.listen.port(), 0);
        assert_eq!(h.token.as_deref(), Some("abc"));
        for (toml, needle) in [
            ("[http]\nlisten = \"localhost\"\n", "http.listen"),
            ("[http]\ntoken = \"\"\n", "http.token"),
            ("[http]\ntoken = \"a b\"\n", "http.token"),
            ("[http]\nport = 1\n", "port"),
        ] {
            let (_f, args) = with_file(toml);
            let err = Settings::resolve(&args, None).expect_err(toml).to_string();
            assert!(err.contains(needle), "{toml:?}: {err}");
        }
    }

    #[test]
    fn unknown_package_is_an_error() {
        let (_f, args) = with_file(
            "[packages.presense]
min_expires = 5",
        );
        let err = Settings::resolve(&args, None).unwrap_err().to_string();
        assert!(
            err.contains("packages.presense") && err.contains("call-info"),
            "{err}"
        );
    }
}
