//! What a run found: counters, latency percentiles and the server's cost,
//! printed as a table for people and as one JSON line for scripts.

use serde::Serialize;
use std::io::Write;
use std::path::Path;

/// Latency percentiles in microseconds, from the request to each NOTIFY it
/// caused.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    /// Median.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Largest.
    pub max_us: u64,
}

/// One run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// `publish-fanout`, `seize-fanout`, `subscribe-churn` or `hold`.
    pub workload: String,
    /// `udp` or `tcp`.
    pub transport: String,
    /// The `--label` given.
    pub server: String,
    /// Lines, watchers per line, operations in flight, client sockets.
    pub lines: usize,
    /// call-info watchers per line (hold: subscriptions in all).
    pub watchers: usize,
    /// Operations in flight at most.
    pub outstanding: usize,
    /// Open loop: operations started per second asked for (`--rate`).
    pub rate: Option<f64>,
    /// Seconds the load ran (from the first measured request to the last
    /// NOTIFY of the drain).
    pub elapsed_s: f64,
    /// Requests the measured operations sent (PUBLISH, SUBSCRIBE), first
    /// transmissions only.
    pub requests: u64,
    /// requests / elapsed.
    pub requests_per_s: f64,
    /// NOTIFYs the measured operations should cause.
    pub notifies_expected: u64,
    /// Distinct NOTIFYs received for them.
    pub notifies_received: u64,
    /// expected - received (any is a failure).
    pub notifies_lost: u64,
    /// received / elapsed.
    pub notifies_per_s: f64,
    /// Request to NOTIFY.
    pub latency: Latency,
    /// Requests the client sent again after T1 without an answer (UDP).
    pub client_retransmissions: u64,
    /// NOTIFYs that arrived again (the server's retransmissions).
    pub server_retransmissions: u64,
    /// Responses other than 1xx/2xx.
    pub error_responses: u64,
    /// Server CPU seconds during the load (None: no --server-pid/--server-pgid).
    pub server_cpu_s: Option<f64>,
    /// server_cpu_s / elapsed (1.0 = one core busy).
    pub server_cpu_util: Option<f64>,
    /// Server RSS (a group: summed PSS) at the end, KiB.
    pub server_rss_kb: Option<u64>,
    /// This client's CPU seconds during the load.
    pub client_cpu_s: f64,
    /// client_cpu_s / elapsed: well under 1.0 means the client was not the bottleneck.
    pub client_cpu_util: f64,
    /// hold: server memory before subscribing, KiB.
    pub rss_before_kb: Option<u64>,
    /// hold: bytes of server memory per held subscription, half a second
    /// after the last SUBSCRIBE (finished transactions still held).
    pub bytes_per_subscription: Option<f64>,
    /// hold with --settle: the same once the server's transactions from the
    /// burst have ended (what the subscriptions themselves cost).
    pub bytes_per_subscription_settled: Option<f64>,
    /// hold: seconds from starting the restarted server to its first answer.
    pub restart_ready_s: Option<f64>,
    /// hold: seconds from starting the restarted server until every held
    /// subscription got a NOTIFY again.
    pub restart_serve_s: Option<f64>,
    /// hold: subscriptions NOTIFYd after the restart.
    pub restart_notified: Option<u64>,
    /// No loss, no error response, setup completed.
    pub ok: bool,
    /// Why not ok, if not.
    pub failure: Option<String>,
}

impl Report {
    /// The JSON line.
    pub fn json(&self) -> String {
        // Serialising plain numbers and strings cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A human table, one `name value` row per figure.
    pub fn table(&self) -> String {
        let mut rows: Vec<(String, String)> = vec![
            (
                "workload".into(),
                format!("{} over {}", self.workload, self.transport),
            ),
            ("server".into(), self.server.clone()),
            (
                "shape".into(),
                format!(
                    "{} lines x {} watchers, {} in flight{}",
                    self.lines,
                    self.watchers,
                    self.outstanding,
                    self.rate
                        .map_or(String::new(), |r| format!(", {r} operations/s offered"))
                ),
            ),
            ("elapsed".into(), format!("{:.2} s", self.elapsed_s)),
            ("requests/s".into(), format!("{:.0}", self.requests_per_s)),
            ("NOTIFYs/s".into(), format!("{:.0}", self.notifies_per_s)),
            (
                "NOTIFYs expected/received/lost".into(),
                format!(
                    "{} / {} / {}",
                    self.notifies_expected, self.notifies_received, self.notifies_lost
                ),
            ),
            (
                "latency p50/p99/p999/max".into(),
                format!(
                    "{} / {} / {} / {} us",
                    self.latency.p50_us,
                    self.latency.p99_us,
                    self.latency.p999_us,
                    self.latency.max_us
                ),
            ),
            (
                "retransmissions client/server".into(),
                format!(
                    "{} / {}",
                    self.client_retransmissions, self.server_retransmissions
                ),
            ),
            ("error responses".into(), self.error_responses.to_string()),
            (
                "server CPU".into(),
                match (self.server_cpu_s, self.server_cpu_util) {
                    (Some(s), Some(u)) => format!("{s:.2} s ({:.0}% of a core)", u * 100.0),
                    _ => "n/a (no --server-pid)".into(),
                },
            ),
            (
                "server RSS".into(),
                self.server_rss_kb
                    .map_or("n/a".into(), |kb| format!("{:.1} MiB", kb as f64 / 1024.0)),
            ),
            (
                "client CPU".into(),
                format!(
                    "{:.2} s ({:.0}% of a core)",
                    self.client_cpu_s,
                    self.client_cpu_util * 100.0
                ),
            ),
        ];
        if let Some(b) = self.bytes_per_subscription {
            rows.push(("bytes/subscription".into(), format!("{b:.0}")));
        }
        if let Some(b) = self.bytes_per_subscription_settled {
            rows.push(("bytes/subscription, settled".into(), format!("{b:.0}")));
        }
        if let Some(s) = self.restart_ready_s {
            rows.push(("restart: first answer".into(), format!("{s:.2} s")));
        }
        if let Some(s) = self.restart_serve_s {
            rows.push(("restart: all NOTIFYd again".into(), format!("{s:.2} s")));
        }
        rows.push((
            "result".into(),
            if self.ok {
                "ok".into()
            } else {
                format!("FAILED: {}", self.failure.as_deref().unwrap_or("?"))
            },
        ));
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        rows.iter()
            .map(|(k, v)| format!("{k:<width$}  {v}\n"))
            .collect()
    }

    /// Print the table and the JSON line to stdout, and append the JSON
    /// line to `results` if given.
    pub fn emit(&self, results: Option<&Path>) -> std::io::Result<()> {
        let json = self.json();
        let mut out = std::io::stdout().lock();
        out.write_all(self.table().as_bytes())?;
        writeln!(out, "{json}")?;
        out.flush()?;
        if let Some(path) = results {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            writeln!(f, "{json}")?;
        }
        Ok(())
    }
}

/// The side-by-side table of a results file: one row per run, and in the
/// last column `base`'s requests/s divided by this row's, for the same
/// workload, transport and shape (2.0: `base` served twice as many).
pub fn comparison(jsonl: &str, base: &str) -> String {
    use serde_json::Value;
    let rows: Vec<Value> = jsonl
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let f = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64);
    let lat = |v: &Value, k: &str| {
        v.get("latency")
            .and_then(|l| l.get(k))
            .and_then(Value::as_f64)
            .map_or("-".to_string(), |us| format!("{:.1}", us / 1000.0))
    };
    // Lines x watchers, operations in flight, and the offered rate of an
    // open-loop run: rows compare only with rows of the same shape.
    let shape = |v: &Value| {
        let n = |k: &str| f(v, k).map_or(0, |x| x as u64);
        let mut t = match s(v, "workload").as_str() {
            "subscribe-churn" => format!("{} clients", n("outstanding")),
            "hold" => format!("{} subs", n("watchers")),
            _ => format!(
                "{}x{}, {} in flight",
                n("lines"),
                n("watchers"),
                n("outstanding")
            ),
        };
        if let Some(rate) = f(v, "rate") {
            t = format!("{}x{} at {rate}/s", n("lines"), n("watchers"));
        }
        t
    };
    let header = [
        "workload",
        "transport",
        "shape",
        "server",
        "req/s",
        "NOTIFY/s",
        "lost",
        "p50 ms",
        "p99 ms",
        "p999 ms",
        "srv CPU s",
        "srv core%",
        "srv MiB",
        "client core%",
        "result",
        &format!("{base} / this"),
    ];
    let mut table: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    for r in &rows {
        let base_rps = rows
            .iter()
            .find(|b| {
                s(b, "server") == base
                    && s(b, "workload") == s(r, "workload")
                    && s(b, "transport") == s(r, "transport")
                    && shape(b) == shape(r)
            })
            .and_then(|b| f(b, "requests_per_s"));
        let ratio = match (base_rps, f(r, "requests_per_s")) {
            (Some(b), Some(x)) if x > 0.0 => format!("{:.2}", b / x),
            _ => "-".into(),
        };
        let opt = |k: &str, scale: f64, digits: usize| {
            f(r, k).map_or("-".to_string(), |x| format!("{:.*}", digits, x * scale))
        };
        table.push(vec![
            s(r, "workload"),
            s(r, "transport"),
            shape(r),
            s(r, "server"),
            opt("requests_per_s", 1.0, 0),
            opt("notifies_per_s", 1.0, 0),
            opt("notifies_lost", 1.0, 0),
            lat(r, "p50_us"),
            lat(r, "p99_us"),
            lat(r, "p999_us"),
            opt("server_cpu_s", 1.0, 2),
            opt("server_cpu_util", 100.0, 0),
            opt("server_rss_kb", 1.0 / 1024.0, 0),
            opt("client_cpu_util", 100.0, 0),
            if r.get("ok").and_then(Value::as_bool) == Some(true) {
                "ok".into()
            } else {
                "FAILED".into()
            },
            ratio,
        ]);
    }
    let cols = table[0].len();
    let widths: Vec<usize> = (0..cols)
        .map(|c| table.iter().map(|row| row[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (i, row) in table.iter().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, cell)| format!("{cell:<w$}", w = widths[c]))
            .collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
        if i == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            out.push_str(&format!("|-{}-|\n", rule.join("-|-")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparison_divides_the_base_by_each_row() {
        let a = Report {
            workload: "seize-fanout".into(),
            transport: "udp".into(),
            server: "sharedline".into(),
            requests_per_s: 300.0,
            ok: true,
            ..Report::default()
        };
        let b = Report {
            server: "kamailio".into(),
            requests_per_s: 100.0,
            ok: false,
            ..a.clone()
        };
        let text = format!("{}\n{}\nnot json\n", a.json(), b.json());
        let t = comparison(&text, "sharedline");
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        assert!(lines[2].contains("| 1.00"), "{t}");
        assert!(
            lines[3].contains("kamailio") && lines[3].contains("| 3.00"),
            "{t}"
        );
        assert!(lines[3].contains("FAILED"), "{t}");
    }
}
