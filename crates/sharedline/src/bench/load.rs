//! The load client. Every simulated phone (a call-info watcher, a publisher,
//! a seizer, a churning subscriber) is a few counters in one table; they
//! share a handful of sockets and are told apart by Call-ID, which encodes
//! what the phone is and its number, so routing a message is a parse of
//! its Call-ID, not a map lookup.
//!
//! One tokio current-thread runtime runs a reader task per socket or
//! connection, a writer task per TCP connection, and a clock that
//! retransmits unanswered UDP requests, moves the phases along (setup,
//! measure, drain) and stops the run. Work is paced by completions: a line
//! starts its next operation only when the previous one got its response
//! and every NOTIFY it caused, so each NOTIFY is attributed to exactly one
//! request and nothing is ambiguous about loss or latency.

use super::procstat::{own_cpu_s, Usage, Watched};
use super::report::{Latency, Report};
use super::{HoldArgs, LoadArgs};
use engine::Transport;
use hdrhistogram::Histogram;
use sip::{HeaderName, Message, ResponseWriter};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::io::Write as _;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Notify;

/// Which workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// call-info PUBLISH fan-out.
    PublishFanout,
    /// line-seize cycles fanned out to watchers.
    SeizeFanout,
    /// SUBSCRIBE / unSUBSCRIBE loops.
    SubscribeChurn,
    /// Many long-lived subscriptions.
    Hold,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::PublishFanout => "publish-fanout",
            Workload::SeizeFanout => "seize-fanout",
            Workload::SubscribeChurn => "subscribe-churn",
            Workload::Hold => "hold",
        }
    }
}

/// RFC 3261 T1: the first retransmission interval of a UDP request.
const T1: Duration = Duration::from_millis(500);
/// A UDP request unanswered after this many sends has failed (T1 * 64 ≈ 32 s).
const MAX_SENDS: u32 = 7;
/// The largest message we read.
const MAX_MESSAGE: usize = 65_535;

/// Run one workload and print its report. `Ok(false)`: the run completed
/// but failed (loss, error responses, setup timeout).
pub fn run(w: Workload, a: &LoadArgs, hold: Option<&HoldArgs>) -> Result<bool, String> {
    if a.lines == 0 || a.outstanding == 0 || a.sockets == 0 {
        return Err("--lines, --outstanding and --sockets must be at least 1".into());
    }
    if matches!(w, Workload::PublishFanout | Workload::SeizeFanout) && a.watchers == 0 {
        return Err("--watchers must be at least 1".into());
    }
    if !(a.duration.is_finite() && a.duration >= 0.0) {
        return Err("--duration must be a number of seconds".into());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let local = tokio::task::LocalSet::new();
    let report = local.block_on(&rt, drive(w, a.clone(), hold.cloned()))?;
    report
        .emit(a.results.as_deref())
        .map_err(|e| format!("cannot write the report: {e}"))?;
    Ok(report.ok)
}

/// One socket (UDP) or connection (TCP) of the client.
struct Link {
    local: SocketAddr,
    io: LinkIo,
    /// UDP: while the reader handles a burst, what the handlers send is
    /// gathered here and leaves with `sendmmsg` at the end of the burst (a
    /// system call per 200 OK made the client the bottleneck).
    outbox: RefCell<Vec<crate::transport::udp::Datagram>>,
    gathering: Cell<bool>,
}

impl Link {
    fn new(local: SocketAddr, io: LinkIo) -> Link {
        Link {
            local,
            io,
            outbox: RefCell::new(Vec::new()),
            gathering: Cell::new(false),
        }
    }
}

enum LinkIo {
    Udp(Rc<UdpSocket>),
    Tcp(Rc<TcpOut>),
}

/// The write side of a TCP connection: bytes queue here and a writer task
/// drains them, so a handler never waits on the network.
struct TcpOut {
    buf: RefCell<Vec<u8>>,
    ready: Notify,
    dead: Cell<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Setup,
    Measure,
    Drain,
    Restart,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Publish,
    Seize,
    Release,
    Subscribe,
    Unsubscribe,
}

/// A line's operation in flight.
struct Op {
    step: Step,
    sent: Instant,
    answered: bool,
    expected: u32,
    got: u32,
}

/// A line, and the phone that acts on it (publisher, seizer or churner).
struct Line {
    link: usize,
    /// Watchers on this line.
    watchers: u32,
    gen: u32,
    cseq: u32,
    etag: Option<String>,
    flip: bool,
    to_tag: Option<String>,
    /// Highest NOTIFY CSeq seen in the current dialog (seizer, churner).
    notify_cseq: u32,
    op: Option<Op>,
}

struct Watcher {
    line: u32,
    link: u16,
    answered: bool,
    notified: bool,
    done: bool,
    last_cseq: u32,
}

/// An unanswered UDP request.
struct Pending {
    bytes: Vec<u8>,
    link: usize,
    next: Instant,
    interval: Duration,
    sends: u32,
}

struct Stats {
    requests: u64,
    expected: u64,
    received: u64,
    client_retx: u64,
    server_retx: u64,
    errors: u64,
    hist: Histogram<u64>,
    last_progress: Instant,
}

impl Stats {
    fn new(now: Instant) -> Stats {
        Stats {
            requests: 0,
            expected: 0,
            received: 0,
            client_retx: 0,
            server_retx: 0,
            errors: 0,
            // 1 µs to 10 min at 3 significant digits: fixed bounds that are
            // valid, so construction cannot fail.
            hist: Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds"),
            last_progress: now,
        }
    }
}

struct State {
    phase: Phase,
    lines: Vec<Line>,
    watchers: Vec<Watcher>,
    /// Watchers still to subscribe, and how many are in flight.
    setup_queue: VecDeque<u32>,
    setup_inflight: usize,
    setup_done: usize,
    /// Lines free for their next operation.
    idle: VecDeque<u32>,
    active: usize,
    pending: HashMap<u64, Pending>,
    stats: Stats,
    branch: u64,
    scratch: Vec<u8>,
    /// When the restarted server first answered an OPTIONS.
    ready_at: Option<Instant>,
    options_sent: u32,
    failure: Option<String>,
    /// The status line of the last error response.
    last_error: Option<String>,
    /// NOTIFYs after a restart whose CSeq was not above the last one seen.
    stale_after_restart: u64,
    /// Lines published on since the restart.
    restart_published: usize,
}

struct Bench {
    w: Workload,
    transport: Transport,
    server: SocketAddr,
    domain: String,
    run: u32,
    outstanding: usize,
    /// Open loop: operations started per second (`--rate`).
    rate: Option<f64>,
    links: Vec<Rc<Link>>,
    /// TCP: where the server may open connections to reach our phones.
    tcp_contact: Option<SocketAddr>,
    st: RefCell<State>,
}

/// Key of a request in `pending`: what sent it (kind byte, number).
fn key(kind: u8, id: u32) -> u64 {
    (u64::from(kind) << 32) | u64::from(id)
}

async fn drive(w: Workload, a: LoadArgs, hold: Option<HoldArgs>) -> Result<Report, String> {
    let transport = a.target.transport;
    let server = a.target.addr;
    let bind: SocketAddr = SocketAddr::new(
        if server.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        },
        0,
    );
    let mut links = Vec::new();
    let mut tcp_listener = None;
    let mut tcp_readers = Vec::new();
    match transport {
        Transport::Udp => {
            for _ in 0..a.sockets {
                // Large buffers, as the server has: thousands of NOTIFYs
                // arrive in a burst on a few sockets.
                let s = crate::transport::udp::bind(bind)
                    .and_then(UdpSocket::from_std)
                    .map_err(|e| format!("cannot bind a UDP socket: {e}"))?;
                let local = s.local_addr().map_err(|e| e.to_string())?;
                links.push(Rc::new(Link::new(local, LinkIo::Udp(Rc::new(s)))));
            }
        }
        Transport::Tcp => {
            let l = TcpListener::bind(bind)
                .await
                .map_err(|e| format!("cannot listen on TCP: {e}"))?;
            tcp_listener = Some(l);
            for _ in 0..a.sockets {
                let s = TcpStream::connect(server)
                    .await
                    .map_err(|e| format!("cannot connect to {server}: {e}"))?;
                let _ = s.set_nodelay(true);
                let local = s.local_addr().map_err(|e| e.to_string())?;
                let out = Rc::new(TcpOut {
                    buf: RefCell::new(Vec::new()),
                    ready: Notify::new(),
                    dead: Cell::new(false),
                });
                let link = Rc::new(Link::new(local, LinkIo::Tcp(out)));
                tcp_readers.push((s, link.clone()));
                links.push(link);
            }
        }
    }
    let tcp_contact = match &tcp_listener {
        Some(l) => Some(l.local_addr().map_err(|e| e.to_string())?),
        None => None,
    };

    // Shape: which lines, which watchers on which line.
    let (n_lines, n_watchers) = match w {
        Workload::PublishFanout | Workload::SeizeFanout => (a.lines, a.lines * a.watchers),
        Workload::SubscribeChurn => (a.lines.max(a.outstanding), 0),
        Workload::Hold => {
            let n = hold.as_ref().map_or(0, |h| h.subscriptions);
            (a.lines.min(n.max(1)), n)
        }
    };
    let now = Instant::now();
    let mut lines: Vec<Line> = (0..n_lines)
        .map(|i| Line {
            link: i % links.len(),
            watchers: 0,
            gen: 0,
            cseq: 0,
            etag: None,
            flip: false,
            to_tag: None,
            notify_cseq: 0,
            op: None,
        })
        .collect();
    let watchers: Vec<Watcher> = (0..n_watchers)
        .map(|i| {
            let line = match w {
                Workload::Hold => i % n_lines,
                _ => i / a.watchers,
            };
            lines[line].watchers += 1;
            Watcher {
                line: line as u32,
                link: (i % links.len()) as u16,
                answered: false,
                notified: false,
                done: false,
                last_cseq: 0,
            }
        })
        .collect();
    let run = std::process::id() ^ wall_nanos();
    let bench = Rc::new(Bench {
        w,
        transport,
        server,
        domain: match server {
            SocketAddr::V4(v) => v.ip().to_string(),
            SocketAddr::V6(v) => format!("[{}]", v.ip()),
        },
        run: run % 1_000_000,
        outstanding: a.outstanding,
        rate: a.rate,
        links,
        tcp_contact,
        st: RefCell::new(State {
            phase: Phase::Setup,
            setup_queue: (0..n_watchers as u32).collect(),
            setup_inflight: 0,
            setup_done: 0,
            idle: (0..n_lines as u32).collect(),
            active: 0,
            lines,
            watchers,
            pending: HashMap::new(),
            stats: Stats::new(now),
            branch: 0,
            scratch: Vec::with_capacity(2048),
            ready_at: None,
            options_sent: 0,
            failure: None,
            last_error: None,
            stale_after_restart: 0,
            restart_published: 0,
        }),
    });

    // Readers and writers.
    for link in bench.links.iter() {
        if let LinkIo::Udp(sock) = &link.io {
            tokio::task::spawn_local(udp_reader(bench.clone(), link.clone(), sock.clone()));
        }
    }
    for (stream, link) in tcp_readers {
        spawn_tcp(bench.clone(), stream, link);
    }
    if let Some(l) = tcp_listener {
        let b = bench.clone();
        tokio::task::spawn_local(async move {
            while let Ok((stream, _)) = l.accept().await {
                let _ = stream.set_nodelay(true);
                let Ok(local) = stream.local_addr() else {
                    continue;
                };
                let link = Rc::new(Link::new(
                    local,
                    LinkIo::Tcp(Rc::new(TcpOut {
                        buf: RefCell::new(Vec::new()),
                        ready: Notify::new(),
                        dead: Cell::new(false),
                    })),
                ));
                spawn_tcp(b.clone(), stream, link);
            }
        });
    }

    let watched = match (a.server_pgid, a.server_pid) {
        (Some(g), _) => Watched::Group(g),
        (None, Some(p)) => Watched::Pid(p),
        (None, None) => Watched::Nobody,
    };
    let before_setup = watched.read();
    let setup_deadline = Instant::now() + Duration::from_secs_f64(a.setup_timeout);
    let setup_start = Instant::now();
    let client_cpu_setup = own_cpu_s().unwrap_or(0.0);

    // Setup: subscribe every watcher, at most max(K, 64) at once.
    {
        let mut st = bench.st.borrow_mut();
        let st = &mut *st;
        let window = a.outstanding.max(64);
        while st.setup_inflight < window {
            let Some(wi) = st.setup_queue.pop_front() else {
                break;
            };
            bench.subscribe_watcher(st, wi, Instant::now());
        }
    }
    // Housekeeping (retransmissions, phases); an open-loop run's
    // operations are started by `pace`, not from this loop.
    let tick = Duration::from_millis(if a.rate.is_some() { 1 } else { 10 });
    let mut measure_start = Instant::now();
    let mut measure_end = Instant::now();
    let mut drain_end = Instant::now();
    let mut usage_start: Option<Usage> = None;
    let mut client_cpu_start = 0.0;
    let mut report = Report {
        workload: w.name().into(),
        transport: crate::cli::ListenSpec::scheme(transport).into(),
        server: a.label.clone(),
        lines: n_lines,
        watchers: if w == Workload::Hold {
            n_watchers
        } else {
            a.watchers
        },
        outstanding: a.outstanding,
        rate: a.rate,
        ..Report::default()
    };
    let mut restart_t0 = None;
    let mut restarted: Option<std::process::Child> = None;
    let mut hold_elapsed: Option<f64> = None;
    loop {
        tokio::time::sleep(tick).await;
        let now = Instant::now();
        bench.retransmit(now);
        let mut continue_hold = false;
        {
            let mut st = bench.st.borrow_mut();
            let st = &mut *st;
            match st.phase {
                Phase::Setup => {
                    if st.stats.errors > 0 {
                        st.failure = Some(format!(
                            "{} error responses while subscribing the watchers (last: {})",
                            st.stats.errors,
                            st.last_error.as_deref().unwrap_or("no answer")
                        ));
                        if w == Workload::Hold {
                            let elapsed = now.duration_since(setup_start).as_secs_f64();
                            fill_counts(&mut report, &st.stats, elapsed);
                        }
                        st.phase = Phase::Done;
                    } else if st.setup_done == n_watchers {
                        if w == Workload::Hold {
                            // The subscriptions were the load.
                            let elapsed = now.duration_since(setup_start).as_secs_f64();
                            fill_counts(&mut report, &st.stats, elapsed);
                            report.client_cpu_s = own_cpu_s().unwrap_or(0.0) - client_cpu_setup;
                            report.client_cpu_util = report.client_cpu_s / elapsed.max(1e-9);
                            hold_elapsed = Some(elapsed);
                            st.phase = Phase::Done;
                            continue_hold = true;
                        } else {
                            st.phase = Phase::Measure;
                            st.stats = Stats::new(now);
                            measure_start = now;
                            measure_end = now + Duration::from_secs_f64(a.duration);
                            usage_start = watched.read();
                            client_cpu_start = own_cpu_s().unwrap_or(0.0);
                            match bench.rate {
                                None => {
                                    let n = bench.outstanding.min(st.lines.len());
                                    for _ in 0..n {
                                        bench.start_next(st, now);
                                    }
                                }
                                Some(rate) => {
                                    tokio::task::spawn_local(pace(
                                        bench.clone(),
                                        rate,
                                        now,
                                        measure_end,
                                    ));
                                }
                            }
                        }
                    } else if now > setup_deadline {
                        st.failure = Some(format!(
                            "setup timed out: {} of {} watchers subscribed",
                            st.setup_done, n_watchers
                        ));
                        if w == Workload::Hold {
                            let elapsed = now.duration_since(setup_start).as_secs_f64();
                            fill_counts(&mut report, &st.stats, elapsed);
                        }
                        st.phase = Phase::Done;
                    }
                }
                Phase::Measure => {
                    if now >= measure_end {
                        st.phase = Phase::Drain;
                        drain_end = now + Duration::from_secs_f64(a.drain);
                    }
                }
                Phase::Drain => {
                    if st.active == 0 || now >= drain_end {
                        if st.active > 0 {
                            st.failure = Some(format!(
                            "{} operations still waiting for responses or NOTIFYs after the drain",
                            st.active
                        ));
                        }
                        let end = if st.active == 0 {
                            st.stats.last_progress.max(measure_start)
                        } else {
                            now
                        };
                        let elapsed = end.duration_since(measure_start).as_secs_f64();
                        fill_counts(&mut report, &st.stats, elapsed);
                        report.client_cpu_s = own_cpu_s().unwrap_or(0.0) - client_cpu_start;
                        report.client_cpu_util = report.client_cpu_s / elapsed.max(1e-9);
                        if let (Some(b), Some(u)) = (usage_start, watched.read()) {
                            report.server_cpu_s = Some(u.cpu_s - b.cpu_s);
                            report.server_cpu_util = Some((u.cpu_s - b.cpu_s) / elapsed.max(1e-9));
                            report.server_rss_kb = Some(u.mem_kb);
                        }
                        st.phase = Phase::Done;
                    }
                }
                Phase::Restart => {
                    let t0 = restart_t0.unwrap_or(now);
                    if st.ready_at.is_none() {
                        // Ask until the new server answers.
                        if st.options_sent < 3000 {
                            bench.send_options(st);
                        } else {
                            st.failure = Some("the restarted server never answered".into());
                            st.phase = Phase::Done;
                        }
                    } else if st.active == 0
                        && st.idle.len() == st.lines.len()
                        && st.stats.requests > 0
                    {
                        // Every line published once and all its watchers NOTIFYd.
                        report.restart_ready_s =
                            st.ready_at.map(|r| r.duration_since(t0).as_secs_f64());
                        report.restart_serve_s =
                            Some(st.stats.last_progress.duration_since(t0).as_secs_f64());
                        report.restart_notified = Some(st.stats.received);
                        st.phase = Phase::Done;
                    } else if st.stats.requests == 0 {
                        // Publish on every line, keeping about 100 NOTIFYs
                        // in flight: a larger burst overflows a UDP receive
                        // buffer and times retransmissions, not the restart.
                        let per_line = st.lines.iter().map(|l| l.watchers).max().unwrap_or(1);
                        let n = (100 / per_line.max(1) as usize)
                            .clamp(1, bench.outstanding)
                            .min(st.lines.len());
                        for _ in 0..n {
                            bench.start_publish_from_idle(st, now);
                        }
                    } else if now.duration_since(t0) > Duration::from_secs_f64(a.setup_timeout) {
                        st.failure = Some(format!(
                            "after the restart only {} of {} subscriptions were NOTIFYd \
                             ({} NOTIFYs came with a CSeq not above the last one seen)",
                            st.stats.received, n_watchers, st.stale_after_restart
                        ));
                        report.restart_notified = Some(st.stats.received);
                        report.restart_ready_s =
                            st.ready_at.map(|r| r.duration_since(t0).as_secs_f64());
                        st.phase = Phase::Done;
                    }
                }
                Phase::Done => break,
            }
        }
        if continue_hold {
            // Let the server finish what the last answers started (store
            // writes) before reading its memory.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let elapsed = hold_elapsed.unwrap_or(0.0);
            let after = watched.read();
            report.rss_before_kb = before_setup.map(|u| u.mem_kb);
            if let (Some(b), Some(u)) = (before_setup, after) {
                report.server_cpu_s = Some(u.cpu_s - b.cpu_s);
                report.server_cpu_util = Some((u.cpu_s - b.cpu_s) / elapsed.max(1e-9));
                report.server_rss_kb = Some(u.mem_kb);
                report.bytes_per_subscription =
                    Some((u.mem_kb as f64 - b.mem_kb as f64) * 1024.0 / (n_watchers.max(1)) as f64);
            }
            let settle = hold.as_ref().map_or(0.0, |h| h.settle);
            if settle > 0.0 {
                tokio::time::sleep(Duration::from_secs_f64(settle)).await;
                if let (Some(b), Some(u)) = (before_setup, watched.read()) {
                    report.bytes_per_subscription_settled = Some(
                        (u.mem_kb as f64 - b.mem_kb as f64) * 1024.0 / (n_watchers.max(1)) as f64,
                    );
                }
            }
            let cmd = hold.as_ref().and_then(|h| h.restart_cmd.clone());
            let result = match (cmd, a.server_pid) {
                (Some(cmd), Some(pid)) => Some(restart(pid, &cmd).await),
                (Some(_), None) => Some(Err("--restart-cmd needs --server-pid".to_string())),
                _ => None,
            };
            let mut st = bench.st.borrow_mut();
            match result {
                Some(Ok(child)) => {
                    restarted = Some(child);
                    restart_t0 = Some(Instant::now());
                    st.phase = Phase::Restart;
                    st.stats = Stats::new(Instant::now());
                }
                Some(Err(e)) => st.failure = Some(e),
                None => {}
            }
        }
    }
    if let Some(mut child) = restarted {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let _ = child.wait();
    }
    let st = bench.st.borrow();
    if let Some(f) = &st.failure {
        report.failure = Some(f.clone());
    } else if report.notifies_lost > 0 {
        report.failure = Some(format!("{} NOTIFYs lost", report.notifies_lost));
    } else if report.error_responses > 0 {
        report.failure = Some(format!("{} error responses", report.error_responses));
    }
    report.ok = report.failure.is_none();
    Ok(report)
}

/// Nanoseconds of the wall clock, to vary names between runs.
fn wall_nanos() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
        .unwrap_or(0)
}

fn fill_counts(r: &mut Report, s: &Stats, elapsed: f64) {
    let e = elapsed.max(1e-9);
    r.elapsed_s = elapsed;
    r.requests = s.requests;
    r.requests_per_s = s.requests as f64 / e;
    r.notifies_expected = s.expected;
    r.notifies_received = s.received;
    r.notifies_lost = s.expected.saturating_sub(s.received);
    r.notifies_per_s = s.received as f64 / e;
    r.latency = Latency {
        p50_us: s.hist.value_at_quantile(0.50),
        p99_us: s.hist.value_at_quantile(0.99),
        p999_us: s.hist.value_at_quantile(0.999),
        max_us: s.hist.max(),
    };
    r.client_retransmissions = s.client_retx;
    r.server_retransmissions = s.server_retx;
    r.error_responses = s.errors;
}

/// Stop the server (SIGTERM, wait for it to go), then start `cmd` with sh.
async fn restart(pid: u32, cmd: &str) -> Result<std::process::Child, String> {
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let gone = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            // A zombie has exited; only its parent has yet to reap it.
            Ok(s) => {
                s.rfind(')')
                    .and_then(|i| s[i + 1..].split_whitespace().next())
                    == Some("Z")
            }
        };
        if gone {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("server {pid} did not exit within 30 s of SIGTERM"));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("exec {cmd}"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run the restart command: {e}"))
}

/// Open loop: start operations `1/rate` apart from `start` until `end`.
/// Each one's latency counts from the instant it was due, not from when it
/// left: if the client (or a busy line: none idle, or `--outstanding`
/// reached) makes one late, the lateness shows in the figures instead of
/// being hidden (coordinated omission).
///
/// Tokio's timers tick in milliseconds, which would send a millisecond's
/// operations in one burst that then queues at the server. Within 2 ms of
/// the next instant this task yields to the others instead of sleeping, so
/// the client's core stays busy. That is deliberate: on the virtual
/// machines measured, a core that goes idle takes hundreds of microseconds
/// to wake (a kernel interval timer here gave a median of 0.7-0.9 ms
/// against the bare responder at 500/s, this loop 0.13 ms), and that delay
/// would be counted as the server's.
async fn pace(bench: Rc<Bench>, rate: f64, start: Instant, end: Instant) {
    let due = |n: u64| start + Duration::from_secs_f64(n as f64 / rate);
    let mut started: u64 = 0;
    loop {
        let now = Instant::now();
        {
            let mut st = bench.st.borrow_mut();
            let st = &mut *st;
            if st.phase != Phase::Measure {
                return;
            }
            // What is due but finds no idle line waits its turn.
            while due(started) <= now
                && due(started) < end
                && st.active < bench.outstanding
                && !st.idle.is_empty()
            {
                bench.start_next(st, due(started));
                started += 1;
            }
        }
        let next = due(started);
        if next >= end {
            return;
        }
        let wait = next.saturating_duration_since(Instant::now());
        if wait > Duration::from_millis(2) {
            tokio::time::sleep(wait - Duration::from_millis(1)).await;
        } else {
            tokio::task::yield_now().await;
        }
    }
}

async fn udp_reader(bench: Rc<Bench>, link: Rc<Link>, sock: Rc<UdpSocket>) {
    let mut buf = vec![0u8; MAX_MESSAGE];
    loop {
        match sock.recv_from(&mut buf).await {
            Ok((n, from)) => {
                let now = Instant::now();
                link.gathering.set(true);
                bench.on_message(&link, from, &buf[..n], now);
                // Drain what is already queued before yielding.
                for _ in 0..64 {
                    match sock.try_recv_from(&mut buf) {
                        Ok((n, from)) => bench.on_message(&link, from, &buf[..n], Instant::now()),
                        Err(_) => break,
                    }
                }
                link.gathering.set(false);
                let out = std::mem::take(&mut *link.outbox.borrow_mut());
                if !out.is_empty() {
                    crate::transport::udp::send_batch(&sock, &out).await;
                }
            }
            // ICMP errors for earlier sends surface here; keep reading.
            Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
        }
    }
}

fn spawn_tcp(bench: Rc<Bench>, stream: TcpStream, link: Rc<Link>) {
    let (mut rd, mut wr) = stream.into_split();
    let LinkIo::Tcp(out) = &link.io else { return };
    let out = out.clone();
    tokio::task::spawn_local(async move {
        loop {
            let chunk = std::mem::take(&mut *out.buf.borrow_mut());
            if chunk.is_empty() {
                out.ready.notified().await;
                continue;
            }
            if wr.write_all(&chunk).await.is_err() {
                out.dead.set(true);
                return;
            }
        }
    });
    tokio::task::spawn_local(async move {
        let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
        let mut chunk = vec![0u8; 1 << 16];
        loop {
            let n = match rd.read(&mut chunk).await {
                Ok(0) | Err(_) => {
                    if let LinkIo::Tcp(o) = &link.io {
                        o.dead.set(true);
                    }
                    return;
                }
                Ok(n) => n,
            };
            buf.extend_from_slice(&chunk[..n]);
            let now = Instant::now();
            let mut start = 0;
            while start < buf.len() {
                match sip::frame_len(&buf[start..], MAX_MESSAGE) {
                    Ok(len) => {
                        let frame = &buf[start..start + len];
                        if !frame.iter().all(|b| matches!(b, b'\r' | b'\n')) {
                            bench.on_message(&link, link.local, frame, now);
                        }
                        start += len;
                    }
                    Err(sip::FrameError::Incomplete) => break,
                    Err(sip::FrameError::Invalid(_)) => {
                        bench.st.borrow_mut().stats.errors += 1;
                        return;
                    }
                }
            }
            buf.drain(..start);
        }
    });
}

/// What a Call-ID says: kind byte, number, generation; `None` if it is not
/// one of ours (or from another run).
fn parse_call_id(cid: &str, run: u32) -> Option<(u8, u32, u32)> {
    let b = cid.as_bytes();
    let kind = *b.first()?;
    let mut parts = cid.get(1..)?.split('.');
    let id = parts.next()?.parse().ok()?;
    let gen = parts.next()?.parse().ok()?;
    let r: u32 = parts.next()?.parse().ok()?;
    (r == run).then_some((kind, id, gen))
}

impl Bench {
    fn send(&self, link: &Link, to: SocketAddr, bytes: &[u8]) {
        match &link.io {
            LinkIo::Udp(_) if link.gathering.get() => {
                link.outbox.borrow_mut().push((to, bytes.to_vec()));
            }
            LinkIo::Udp(s) => match s.try_send_to(bytes, to) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    let s = s.clone();
                    let b = bytes.to_vec();
                    tokio::task::spawn_local(async move {
                        let _ = s.send_to(&b, to).await;
                    });
                }
                // The UDP loss shows up as a retransmission or a lost NOTIFY.
                Err(_) => {}
            },
            LinkIo::Tcp(t) => {
                if !t.dead.get() {
                    t.buf.borrow_mut().extend_from_slice(bytes);
                    t.ready.notify_one();
                }
            }
        }
    }

    fn via_transport(&self) -> &'static str {
        match self.transport {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }

    /// Write a request from `link` into `out`.
    #[allow(clippy::too_many_arguments)]
    fn write_request(
        &self,
        out: &mut Vec<u8>,
        branch: u64,
        link: &Link,
        method: &str,
        aor: &str,
        user: &str,
        call_id: &str,
        to_tag: Option<&str>,
        cseq: u32,
        extra: std::fmt::Arguments<'_>,
    ) {
        let d = &self.domain;
        let (contact, tp) = match self.tcp_contact {
            Some(c) => (c, ";transport=tcp"),
            None => (link.local, ""),
        };
        let _ = write!(
            out,
            "{method} sip:{aor}@{d} SIP/2.0\r\n\
             Via: SIP/2.0/{} {};branch=z9hG4bK{}x{branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:{user}@{d}>;tag={user}\r\n\
             To: <sip:{aor}@{d}>",
            self.via_transport(),
            link.local,
            self.run,
        );
        if let Some(t) = to_tag {
            let _ = write!(out, ";tag={t}");
        }
        let _ = write!(
            out,
            "\r\nCall-ID: {call_id}\r\n\
             CSeq: {cseq} {method}\r\n\
             Contact: <sip:{user}@{contact}{tp}>\r\n\
             {extra}\
             Content-Length: 0\r\n\r\n"
        );
    }

    /// Send the request in `st.scratch` on `link_idx` and, over UDP,
    /// remember it for retransmission under `k`.
    fn transmit(&self, st: &mut State, link_idx: usize, k: u64, now: Instant) {
        let link = &self.links[link_idx];
        self.send(link, self.server, &st.scratch);
        if self.transport == Transport::Udp {
            st.pending.insert(
                k,
                Pending {
                    bytes: st.scratch.clone(),
                    link: link_idx,
                    next: now + T1,
                    interval: T1,
                    sends: 1,
                },
            );
        }
    }

    fn subscribe_watcher(&self, st: &mut State, wi: u32, now: Instant) {
        let (line, link) = {
            let w = &st.watchers[wi as usize];
            (w.line, w.link as usize)
        };
        st.setup_inflight += 1;
        st.stats.requests += 1;
        st.stats.expected += 1;
        st.branch += 1;
        let mut out = std::mem::take(&mut st.scratch);
        out.clear();
        let aor = self.aor(line);
        let user = format!("b{}w{wi}", self.run);
        let cid = format!("w{wi}.0.{}", self.run);
        self.write_request(
            &mut out,
            st.branch,
            &self.links[link],
            "SUBSCRIBE",
            &aor,
            &user,
            &cid,
            None,
            1,
            format_args!("Event: call-info\r\nExpires: 3600\r\n"),
        );
        st.scratch = out;
        self.transmit(st, link, key(b'w', wi), now);
    }

    fn aor(&self, line: u32) -> String {
        match self.w {
            Workload::SubscribeChurn => format!("b{}c{line}", self.run),
            _ => format!("b{}l{line}", self.run),
        }
    }

    /// Start the next operation on the next idle line (Measure phase).
    fn start_next(&self, st: &mut State, now: Instant) {
        let Some(l) = st.idle.pop_front() else { return };
        let step = match self.w {
            Workload::PublishFanout | Workload::Hold => Step::Publish,
            Workload::SeizeFanout => Step::Seize,
            Workload::SubscribeChurn => Step::Subscribe,
        };
        st.active += 1;
        self.start_step(st, l, step, now);
    }

    /// After a restart: publish on each line once.
    fn start_publish_from_idle(&self, st: &mut State, now: Instant) {
        if st.restart_published >= st.lines.len() {
            return;
        }
        let Some(l) = st.idle.pop_front() else { return };
        st.restart_published += 1;
        st.active += 1;
        self.start_step(st, l, Step::Publish, now);
    }

    fn start_step(&self, st: &mut State, l: u32, step: Step, now: Instant) {
        let aor = self.aor(l);
        let d = &self.domain;
        st.branch += 1;
        let branch = st.branch;
        let line = &mut st.lines[l as usize];
        line.cseq += 1;
        let expected = match step {
            Step::Publish => line.watchers,
            Step::Seize | Step::Release => line.watchers + 1,
            Step::Subscribe | Step::Unsubscribe => 1,
        };
        if matches!(step, Step::Seize | Step::Subscribe) {
            line.gen += 1;
            line.cseq = 1;
            line.to_tag = None;
            line.notify_cseq = 0;
        }
        line.op = Some(Op {
            step,
            sent: now,
            answered: false,
            expected,
            got: 0,
        });
        let link_idx = line.link;
        let cseq = line.cseq;
        let gen = line.gen;
        let run = self.run;
        let mut out = std::mem::take(&mut st.scratch);
        out.clear();
        let link = &self.links[link_idx];
        let k = match step {
            Step::Publish => {
                line.flip = !line.flip;
                let state = if line.flip { "alerting" } else { "active" };
                let user = format!("b{run}p{l}");
                let cid = format!("p{l}.0.{run}");
                let ci = format!(
                    "Event: call-info\r\nCall-Info: <sip:{aor}@{d}>;appearance-index=1;appearance-state={state}\r\n"
                );
                match &line.etag {
                    Some(e) => self.write_request(
                        &mut out,
                        branch,
                        link,
                        "PUBLISH",
                        &aor,
                        &user,
                        &cid,
                        None,
                        cseq,
                        format_args!("SIP-If-Match: {e}\r\n{ci}"),
                    ),
                    None => self.write_request(
                        &mut out,
                        branch,
                        link,
                        "PUBLISH",
                        &aor,
                        &user,
                        &cid,
                        None,
                        cseq,
                        format_args!("{ci}"),
                    ),
                }
                key(b'p', l)
            }
            Step::Seize | Step::Release => {
                let user = format!("b{run}s{l}");
                let cid = format!("s{l}.{gen}.{run}");
                let expires = if step == Step::Seize { 15 } else { 0 };
                self.write_request(
                    &mut out,
                    branch,
                    link,
                    "SUBSCRIBE",
                    &aor,
                    &user,
                    &cid,
                    line.to_tag.as_deref(),
                    cseq,
                    format_args!(
                        "Event: line-seize\r\nExpires: {expires}\r\nCall-Info: <sip:{aor}@{d}>;appearance-index=1\r\n"
                    ),
                );
                key(b's', l)
            }
            Step::Subscribe | Step::Unsubscribe => {
                let user = format!("b{run}c{l}");
                let cid = format!("c{l}.{gen}.{run}");
                let expires = if step == Step::Subscribe { 600 } else { 0 };
                self.write_request(
                    &mut out,
                    branch,
                    link,
                    "SUBSCRIBE",
                    &aor,
                    &user,
                    &cid,
                    line.to_tag.as_deref(),
                    cseq,
                    format_args!("Event: call-info\r\nExpires: {expires}\r\n"),
                );
                key(b'c', l)
            }
        };
        st.scratch = out;
        st.stats.requests += 1;
        st.stats.expected += u64::from(expected);
        self.transmit(st, link_idx, k, now);
    }

    fn send_options(&self, st: &mut State) {
        st.options_sent += 1;
        st.branch += 1;
        let mut out = std::mem::take(&mut st.scratch);
        out.clear();
        let cid = format!("o0.{}.{}", st.options_sent, self.run);
        let user = format!("b{}o", self.run);
        self.write_request(
            &mut out,
            st.branch,
            &self.links[0],
            "OPTIONS",
            "ping",
            &user,
            &cid,
            None,
            1,
            format_args!(""),
        );
        self.send(&self.links[0], self.server, &out);
        st.scratch = out;
    }

    /// An operation finished (or failed): move the line on.
    fn finish_op(&self, st: &mut State, l: u32, now: Instant) {
        let line = &mut st.lines[l as usize];
        let Some(op) = line.op.take() else { return };
        st.stats.last_progress = now;
        let next = match op.step {
            Step::Seize => Some(Step::Release),
            Step::Subscribe => Some(Step::Unsubscribe),
            _ => None,
        };
        // The second half of a cycle runs even while draining, so every
        // seize is released and every subscription ended.
        if let (Some(step), true) = (next, line.to_tag.is_some()) {
            self.start_step(st, l, step, now);
            return;
        }
        st.active -= 1;
        st.idle.push_back(l);
        match st.phase {
            Phase::Measure if self.rate.is_none() => self.start_next(st, now),
            Phase::Restart => self.start_publish_from_idle(st, now),
            _ => {}
        }
    }

    fn check_op(&self, st: &mut State, l: u32, now: Instant) {
        let done = st.lines[l as usize]
            .op
            .as_ref()
            .is_some_and(|op| op.answered && op.got >= op.expected);
        if done {
            self.finish_op(st, l, now);
        }
    }

    fn on_message(&self, link: &Link, from: SocketAddr, bytes: &[u8], now: Instant) {
        let stream = self.transport == Transport::Tcp;
        let Ok(msg) = sip::parse(bytes, stream) else {
            return;
        };
        let mut st = self.st.borrow_mut();
        let st = &mut *st;
        if msg.is_request() {
            if msg.method().map(|m| m.as_str()) == Some("NOTIFY") {
                let mut out = std::mem::take(&mut st.scratch);
                out.clear();
                ResponseWriter::new(&mut out, &msg, 200, "OK", None, None).finish();
                self.send(link, from, &out);
                st.scratch = out;
                self.on_notify(st, &msg, now);
            }
            return;
        }
        self.on_response(st, &msg, now);
    }

    fn on_notify(&self, st: &mut State, msg: &Message<'_>, now: Instant) {
        let Some((kind, id, gen)) = msg
            .header(HeaderName::CallId)
            .and_then(|c| parse_call_id(c, self.run))
        else {
            return;
        };
        let Some(cseq) = cseq_of(msg) else { return };
        match kind {
            b'w' => {
                let Some(w) = st.watchers.get_mut(id as usize) else {
                    return;
                };
                if cseq <= w.last_cseq {
                    st.stats.server_retx += 1;
                    if st.phase == Phase::Restart {
                        // A NOTIFY whose CSeq does not rise is one a phone
                        // must refuse (RFC 3261 §12.2.2): not served.
                        st.stale_after_restart += 1;
                    }
                    return;
                }
                w.last_cseq = cseq;
                if !w.done {
                    w.notified = true;
                    st.stats.received += 1;
                    self.check_watcher(st, id, now);
                    return;
                }
                let l = w.line;
                let line = &mut st.lines[l as usize];
                if let Some(op) = line.op.as_mut() {
                    if op.got < op.expected {
                        op.got += 1;
                        st.stats.received += 1;
                        let us = now.duration_since(op.sent).as_micros() as u64;
                        st.stats.hist.saturating_record(us.max(1));
                        st.stats.last_progress = now;
                    }
                }
                self.check_op(st, l, now);
            }
            b's' | b'c' => {
                let Some(line) = st.lines.get_mut(id as usize) else {
                    return;
                };
                if gen != line.gen || cseq <= line.notify_cseq {
                    st.stats.server_retx += 1;
                    return;
                }
                line.notify_cseq = cseq;
                if let Some(op) = line.op.as_mut() {
                    if op.got < op.expected {
                        op.got += 1;
                        st.stats.received += 1;
                        let us = now.duration_since(op.sent).as_micros() as u64;
                        st.stats.hist.saturating_record(us.max(1));
                    }
                }
                self.check_op(st, id, now);
            }
            _ => {}
        }
    }

    fn check_watcher(&self, st: &mut State, wi: u32, now: Instant) {
        let w = &mut st.watchers[wi as usize];
        if w.done || !(w.answered && w.notified) {
            return;
        }
        w.done = true;
        st.setup_inflight -= 1;
        st.setup_done += 1;
        st.stats.last_progress = now;
        if let Some(next) = st.setup_queue.pop_front() {
            self.subscribe_watcher(st, next, now);
        }
    }

    fn on_response(&self, st: &mut State, msg: &Message<'_>, now: Instant) {
        let Some(code) = msg.status() else { return };
        if code < 200 {
            return;
        }
        let Some((kind, id, gen)) = msg
            .header(HeaderName::CallId)
            .and_then(|c| parse_call_id(c, self.run))
        else {
            return;
        };
        let Some(cseq) = cseq_of(msg) else { return };
        let ok = code < 300;
        if !ok {
            let reason = match msg.start {
                sip::StartLine::Response { reason, .. } => reason,
                sip::StartLine::Request { .. } => "",
            };
            st.last_error = Some(format!("{code} {reason}"));
        }
        match kind {
            b'o' => {
                st.ready_at.get_or_insert(now);
            }
            b'w' => {
                let Some(w) = st.watchers.get_mut(id as usize) else {
                    return;
                };
                if w.answered || w.done {
                    return;
                }
                st.pending.remove(&key(b'w', id));
                if !ok {
                    st.stats.errors += 1;
                    st.stats.expected = st.stats.expected.saturating_sub(1);
                    // Give up on this watcher: setup cannot complete.
                    w.answered = true;
                    return;
                }
                w.answered = true;
                self.check_watcher(st, id, now);
            }
            b'p' | b's' | b'c' => {
                let Some(line) = st.lines.get_mut(id as usize) else {
                    return;
                };
                if (kind != b'p' && gen != line.gen) || cseq != line.cseq {
                    return;
                }
                let Some(op) = line.op.as_mut() else { return };
                if op.answered {
                    return;
                }
                st.pending.remove(&key(kind, id));
                op.answered = true;
                if !ok {
                    st.stats.errors += 1;
                    // A refused request causes no NOTIFYs.
                    let owed = u64::from(op.expected - op.got);
                    st.stats.expected = st.stats.expected.saturating_sub(owed);
                    op.expected = op.got;
                    if kind == b'p' {
                        line.etag = None;
                    }
                    line.to_tag = None;
                } else if kind == b'p' {
                    line.etag = msg.header(HeaderName::SipETag).map(str::to_owned);
                } else if line.to_tag.is_none() {
                    line.to_tag = msg
                        .to()
                        .ok()
                        .flatten()
                        .and_then(|t| t.tag())
                        .map(str::to_owned);
                }
                self.check_op(st, id, now);
            }
            _ => {}
        }
    }

    /// Resend UDP requests whose timer ran out; give up after MAX_SENDS.
    fn retransmit(&self, now: Instant) {
        let mut st = self.st.borrow_mut();
        let st = &mut *st;
        let mut failed = Vec::new();
        for (k, p) in st.pending.iter_mut() {
            if now < p.next {
                continue;
            }
            if p.sends >= MAX_SENDS {
                failed.push(*k);
                continue;
            }
            self.send(&self.links[p.link], self.server, &p.bytes);
            p.sends += 1;
            p.interval = (p.interval * 2).min(Duration::from_secs(4));
            p.next = now + p.interval;
            st.stats.client_retx += 1;
        }
        for k in failed {
            st.pending.remove(&k);
            st.stats.errors += 1;
            let (kind, id) = ((k >> 32) as u8, k as u32);
            if kind != b'w' {
                if let Some(op) = st.lines.get_mut(id as usize).and_then(|l| l.op.as_mut()) {
                    let owed = u64::from(op.expected - op.got);
                    st.stats.expected = st.stats.expected.saturating_sub(owed);
                    op.expected = op.got;
                    op.answered = true;
                }
                if let Some(l) = st.lines.get_mut(id as usize) {
                    l.to_tag = None;
                }
                self.check_op(st, id, now);
            }
        }
    }
}

fn cseq_of(msg: &Message<'_>) -> Option<u32> {
    msg.header(HeaderName::CSeq)
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_ids_round_trip_and_foreign_ones_are_ignored() {
        assert_eq!(parse_call_id("w12.0.77", 77), Some((b'w', 12, 0)));
        assert_eq!(parse_call_id("s3.9.77", 77), Some((b's', 3, 9)));
        assert_eq!(parse_call_id("s3.9.78", 77), None);
        assert_eq!(parse_call_id("abc@host", 77), None);
        assert_eq!(parse_call_id("", 77), None);
        assert_ne!(key(b'w', 1), key(b'p', 1));
    }
}
