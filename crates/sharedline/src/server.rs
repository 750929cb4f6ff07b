//! The server: startup, the engine task, shutdown.
//!
//! Startup order matters to anyone scripting the binary: the store is loaded
//! and the engine restored, then every listener is bound, and only then is
//! one `listening <transport>:<addr>` line per listener printed to stdout. A
//! client that has seen the lines can send at once.
//!
//! The engine task owns the [`Engine`] outright (no lock). It takes inputs
//! from one channel, hands each to the engine, drains
//! [`Engine::poll_output`] (bytes to sockets, batches to the store writer)
//! and sleeps until the next input or [`Engine::next_timeout`]. Shutdown
//! (SIGINT or SIGTERM) stops the listeners and connections, ends the engine
//! task and closes the store writer, which flushes what is queued.

use crate::cli::ListenSpec;
use crate::config::Settings;
use crate::store::{self, StoreError, StoreWriter};
use crate::transport::{self, Context, Input, Shutdown};
use bytes::Bytes;
use engine::{ConnId, Engine, Output, StoreBatch, Time, Transmit, Transport};
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;

/// Inputs queued for the engine before transports wait (backpressure: a
/// flood fills the kernel's socket buffers, not our memory).
const INPUT_QUEUE: usize = 4096;
/// Messages handled in one go before outputs are drained, so a burst is
/// answered in batches without starving the sockets of replies.
const INPUT_BATCH: usize = 64;
/// UDP datagrams collected from one engine drain before they are sent
/// (batched with `sendmmsg`). The bound keeps a huge drain (a restore, a
/// busy line's fan-out) from holding every NOTIFY back until the last is
/// built, and its memory in between.
const UDP_FLUSH_AT: usize = 1024;

/// Why the server stopped with an error. `Display` is one line.
#[derive(Debug)]
pub enum ServerError {
    /// The store could not be opened or loaded.
    Store(StoreError),
    /// A listener could not be bound.
    Bind {
        /// The listener.
        listener: ListenSpec,
        /// Why.
        error: std::io::Error,
    },
    /// The async runtime or signal handling could not start.
    Runtime(std::io::Error),
    /// The engine task ended by itself (a bug: it panicked).
    Engine(String),
    /// The HTTP listener could not be bound.
    HttpBind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        error: std::io::Error,
    },
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::Store(e) => write!(f, "store: {e}"),
            ServerError::Bind { listener, error } => {
                write!(f, "cannot listen on {listener}: {error}")
            }
            ServerError::Runtime(e) => write!(f, "cannot start: {e}"),
            ServerError::Engine(why) => write!(f, "engine stopped: {why}"),
            ServerError::HttpBind { addr, error } => {
                write!(f, "cannot listen on http:{addr}: {error}")
            }
        }
    }
}

impl std::error::Error for ServerError {}

/// The wall clock as the engine counts it.
pub fn now() -> Time {
    // A clock before 1970 is a broken host; treat it as the epoch.
    Time(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    )
}

/// Run the server on a new runtime until SIGINT or SIGTERM.
pub fn run(settings: Settings) -> Result<(), ServerError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sharedline")
        .build()
        .map_err(ServerError::Runtime)?;
    let result = runtime.block_on(async {
        let signals = shutdown_signal().map_err(ServerError::Runtime)?;
        serve(settings, signals).await
    });
    // Connection tasks stop on the shutdown notice; do not let a stuck one
    // hold the exit.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed before this
/// returns, so a signal sent right after the `listening` lines is caught.
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => tracing::info!("SIGINT: shutting down"),
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        }
    })
}

/// Start everything, print the `listening` lines, run until `stop`
/// resolves, then shut down cleanly.
pub async fn serve(settings: Settings, stop: impl Future<Output = ()>) -> Result<(), ServerError> {
    let (input_tx, input_rx) = mpsc::channel(INPUT_QUEUE);

    // The store publishes the highest durable seq (plus one, so zero means
    // none) and nudges the engine task, once until the task has looked. It
    // never blocks: if the input queue is full the task is busy and will
    // read the watermark anyway.
    let durable = Arc::new(Durable::default());
    let on_durable = {
        let durable = Arc::clone(&durable);
        let tx = input_tx.clone();
        Box::new(move |seq: u64| {
            // SeqCst here and in the task: either the task's read sees the
            // new value or this sees its cleared flag and nudges again.
            durable
                .seq
                .fetch_max(seq.saturating_add(1), Ordering::SeqCst);
            if !durable.nudged.swap(true, Ordering::SeqCst) {
                let _ = tx.try_send(Input::Durable);
            }
        })
    };
    let spec = settings.store.clone();
    let (snapshot, writer) = tokio::task::spawn_blocking(move || store::open(&spec, on_durable))
        .await
        .map_err(|e| ServerError::Store(StoreError(format!("store loader failed: {e}"))))?
        .map_err(ServerError::Store)?;

    let mut engine = Engine::new(settings.engine.clone(), random_seed());
    engine.restore(now(), snapshot);

    let (stop_tx, shutdown) = Shutdown::new();
    let ctx = Context {
        inputs: input_tx,
        limits: settings.limits,
        permits: Arc::new(Semaphore::new(settings.limits.max_connections)),
        next_conn: Arc::new(AtomicU64::new(1)),
        shutdown: shutdown.clone(),
    };

    let mut udp_sockets = HashMap::new();
    let mut tasks: Vec<JoinHandle<()>> = Vec::new();
    let mut lines = String::new();
    let mut pending_tcp = Vec::new();
    for spec in &settings.listeners {
        let bind_err = |error| ServerError::Bind {
            listener: *spec,
            error,
        };
        match spec.transport {
            Transport::Udp => {
                let socket = Arc::new(
                    transport::udp::bind(spec.addr)
                        .and_then(UdpSocket::from_std)
                        .map_err(bind_err)?,
                );
                let local = socket.local_addr().map_err(bind_err)?;
                udp_sockets.insert(local, Arc::clone(&socket));
                lines.push_str(&format!("listening udp:{local}\n"));
                tasks.push(tokio::spawn(transport::udp::recv_loop(
                    socket,
                    local,
                    ctx.clone(),
                )));
            }
            Transport::Tcp => {
                let listener = TcpListener::bind(spec.addr).await.map_err(bind_err)?;
                let local = listener.local_addr().map_err(bind_err)?;
                lines.push_str(&format!("listening tcp:{local}\n"));
                pending_tcp.push((listener, local));
            }
        }
    }
    // HTTP last: its `listening http:` line follows the SIP ones.
    let http = match &settings.http {
        Some(h) => {
            let bind_err = |error| ServerError::HttpBind {
                addr: h.listen,
                error,
            };
            let listener = TcpListener::bind(h.listen).await.map_err(bind_err)?;
            let local = listener.local_addr().map_err(bind_err)?;
            if h.token.is_none() && !local.ip().is_loopback() {
                tracing::warn!(%local, "HTTP on a non-loopback address without a token: reads are open to all, writes refused");
            }
            let (hooks, shared) = crate::http::EngineHooks::new(
                &mut engine,
                h.clone(),
                ctx.inputs.clone(),
                shutdown.clone(),
            );
            lines.push_str(&format!("listening http:{local}\n"));
            tasks.push(tokio::spawn(crate::http::serve(listener, shared)));
            Some(hooks)
        }
        None => None,
    };
    for (listener, local) in pending_tcp {
        tasks.push(tokio::spawn(transport::tcp::accept_loop(
            listener,
            local,
            ctx.clone(),
        )));
    }

    let task = EngineTask {
        engine,
        inputs: input_rx,
        store: writer,
        durable,
        store_out: Vec::new(),
        acked: 0,
        udp: udp_sockets,
        udp_out: Vec::new(),
        conns: HashMap::new(),
        draining: Vec::new(),
        ctx: ctx.clone(),
        http,
    };
    let mut engine_task = tokio::spawn(task.run(shutdown));

    {
        let mut out = std::io::stdout().lock();
        // If stdout is gone nobody is waiting for the lines; keep serving.
        let _ = out.write_all(lines.as_bytes()).and_then(|()| out.flush());
    }
    for line in lines.lines() {
        tracing::info!("{line}");
    }

    let ended = tokio::select! {
        _ = stop => None,
        ended = &mut engine_task => Some(ended),
    };
    // Whatever ended us, everyone else stops now.
    let _ = stop_tx.send(true);
    drop(ctx);
    let writer = match ended {
        None => engine_task
            .await
            .map_err(|e| ServerError::Engine(join_error(e)))?,
        Some(Ok(writer)) => {
            let _ = tokio::task::spawn_blocking(move || writer.close()).await;
            return Err(ServerError::Engine(
                "the engine task ended unexpectedly".into(),
            ));
        }
        Some(Err(e)) => return Err(ServerError::Engine(join_error(e))),
    };
    for t in tasks {
        let _ = t.await;
    }
    // Flushing is blocking file I/O; keep it off the runtime's workers.
    let _ = tokio::task::spawn_blocking(move || writer.close()).await;
    tracing::info!("stopped");
    Ok(())
}

fn join_error(e: tokio::task::JoinError) -> String {
    if e.is_panic() {
        let payload = e.into_panic();
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        format!("panicked: {msg}")
    } else {
        "cancelled".into()
    }
}

/// A seed for the engine's tags and ETags that differs per run: std's
/// `RandomState` is keyed from the OS's random source.
fn random_seed() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// The store's watermark, shared with the engine task.
#[derive(Default)]
struct Durable {
    /// Highest durable seq plus one.
    seq: AtomicU64,
    /// An `Input::Durable` is on its way and the task has not looked yet.
    nudged: AtomicBool,
}

/// The task that owns the engine.
struct EngineTask {
    engine: Engine,
    inputs: mpsc::Receiver<Input>,
    store: StoreWriter,
    /// What the store has made durable.
    durable: Arc<Durable>,
    /// Batches of this round, handed to the store together.
    store_out: Vec<StoreBatch>,
    /// The value of `durable` last passed to the engine.
    acked: u64,
    /// UDP sockets by bound address.
    udp: HashMap<SocketAddr, Arc<UdpSocket>>,
    /// Datagrams collected from one drain of the engine, per sending
    /// socket (by its bound address), in the engine's order. Kept between
    /// rounds so the queues' memory is reused.
    udp_out: Vec<(SocketAddr, Vec<transport::udp::Datagram>)>,
    /// Open TCP connections' write queues.
    conns: HashMap<ConnId, mpsc::Sender<Bytes>>,
    /// Connections whose peer stopped sending, closed once nothing is owed.
    draining: Vec<ConnId>,
    /// For opening connections.
    ctx: Context,
    /// The HTTP interface's hooks, when it is enabled.
    http: Option<crate::http::EngineHooks>,
}

impl EngineTask {
    /// Run until shutdown; give back the store writer so the caller can
    /// flush it.
    async fn run(mut self, mut shutdown: Shutdown) -> StoreWriter {
        // Restoring may already have produced work (expired state to report).
        self.after_inputs().await;
        loop {
            let sleep = self
                .engine
                .next_timeout()
                .map(|t| Duration::from_millis(t - now()));
            tokio::select! {
                biased;
                _ = shutdown.wait() => break,
                input = self.inputs.recv() => {
                    let Some(input) = input else { break };
                    let mut handled = self.handle(input);
                    while handled < INPUT_BATCH {
                        match self.inputs.try_recv() {
                            Ok(input) => handled += self.handle(input),
                            Err(_) => break,
                        }
                    }
                }
                _ = tokio::time::sleep(sleep.unwrap_or_default()), if sleep.is_some() => {}
            }
            self.after_inputs().await;
        }
        // Nothing more can be sent; what the engine queued for the store is
        // still worth keeping.
        while let Some(out) = self.engine.poll_output() {
            if let Output::Store(batch) = out {
                self.store.submit(batch);
            }
        }
        self.store
    }

    /// Give one input to the engine; returns how many messages it held.
    fn handle(&mut self, input: Input) -> usize {
        match input {
            Input::Bytes { source, bytes } => self.engine.handle_bytes(now(), source, &bytes),
            Input::Datagrams(batch) => {
                let t = now();
                for (source, bytes) in batch.iter() {
                    self.engine.handle_bytes(t, source, bytes);
                }
                return batch.items.len();
            }
            Input::Durable => {}
            Input::Opened { conn, writer } => {
                self.conns.insert(conn, writer);
            }
            Input::Closed(conn) => {
                self.conns.remove(&conn);
                self.engine.handle_closed(conn);
            }
            Input::Drain(conn) => self.draining.push(conn),
            Input::Http(call) => {
                // Calls exist only when the HTTP interface (and so the hooks) does.
                if let Some(h) = &mut self.http {
                    h.answer(&mut self.engine, &self.store, call);
                }
            }
        }
        1
    }

    /// Acknowledge durable batches, fire due timers, then send everything
    /// the engine has to say.
    async fn after_inputs(&mut self) {
        let t = now();
        if self.engine.next_timeout().is_some_and(|due| due <= t) {
            self.engine.handle_timeout(t);
        }
        // The memory store acknowledges inside `submit`: go round until
        // nothing new is durable, so what waited on it leaves in this round.
        loop {
            // Cleared before reading, so a later advance nudges again.
            self.durable.nudged.store(false, Ordering::SeqCst);
            let durable = self.durable.seq.load(Ordering::SeqCst);
            if durable > self.acked {
                self.acked = durable;
                self.engine.handle_durable(now(), durable - 1);
                if let Some(h) = &mut self.http {
                    h.store_durable(durable - 1);
                }
            }
            self.drain_outputs().await;
            if self.durable.seq.load(Ordering::Acquire) <= self.acked {
                break;
            }
        }
        self.send_udp().await;
        self.after_round();
    }

    /// Hand every output of the engine to the store and the transports.
    async fn drain_outputs(&mut self) {
        while let Some(out) = self.engine.poll_output() {
            match out {
                Output::Store(batch) => {
                    if let Some(h) = &mut self.http {
                        h.store_submitted(batch.seq);
                    }
                    self.store_out.push(batch)
                }
                Output::Transmit(tx) => match tx.transport {
                    Transport::Udp => {
                        if self.queue_udp(tx) >= UDP_FLUSH_AT {
                            self.send_udp().await;
                        }
                    }
                    Transport::Tcp => self.send_tcp(tx),
                },
            }
        }
        // Nothing that waits on these has left: the engine holds it back
        // until they are durable.
        if !self.store_out.is_empty() {
            self.store.submit_all(std::mem::take(&mut self.store_out));
        }
    }

    /// The rest of a round, once the engine has said everything.
    fn after_round(&mut self) {
        if let Some(h) = &mut self.http {
            h.after_round(&mut self.engine);
        }
        if !self.draining.is_empty() {
            let engine = &self.engine;
            let conns = &mut self.conns;
            // Dropping the queue's sender lets the connection task finish
            // writing what it holds and close.
            self.draining.retain(|c| {
                let owed = engine.has_pending_transmit(*c);
                if !owed {
                    conns.remove(c);
                }
                owed
            });
        }
    }

    /// Queue a UDP transmit behind the others for its socket; returns how
    /// many datagrams are now queued in all.
    fn queue_udp(&mut self, tx: Transmit) -> usize {
        let local = if self.udp.contains_key(&tx.local) {
            Some(tx.local)
        } else {
            self.udp
                .keys()
                .find(|a| a.is_ipv4() == tx.remote.is_ipv4())
                .copied()
        };
        let Some(local) = local else {
            tracing::warn!(local = %tx.local, remote = %tx.remote, "no UDP socket to send from; message dropped");
            return self.udp_out.iter().map(|(_, q)| q.len()).sum();
        };
        match self.udp_out.iter_mut().position(|(a, _)| *a == local) {
            Some(i) => self.udp_out[i].1.push((tx.remote, tx.bytes)),
            None => self.udp_out.push((local, vec![(tx.remote, tx.bytes)])),
        }
        self.udp_out.iter().map(|(_, q)| q.len()).sum()
    }

    /// Send every queued datagram, batched per socket with `sendmmsg`.
    /// Order is kept per socket, so per destination (the engine sends to
    /// one destination from one socket).
    async fn send_udp(&mut self) {
        for (local, queue) in &mut self.udp_out {
            if queue.is_empty() {
                continue;
            }
            // Queues are only made for addresses found in `udp`, which
            // never changes after start-up.
            if let Some(socket) = self.udp.get(local) {
                transport::udp::send_batch(socket, queue).await;
            }
            queue.clear();
        }
    }

    fn send_tcp(&mut self, tx: Transmit) {
        let bytes = Bytes::from(tx.bytes);
        if let Some(conn) = tx.conn {
            if let Some(writer) = self.conns.get(&conn) {
                match writer.try_send(bytes) {
                    Ok(()) => return,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        // The peer stopped reading. Dropping the queue closes
                        // the connection; it reports Closed like any other.
                        tracing::warn!(conn = conn.0, remote = %tx.remote, "write queue full; closing the connection");
                        self.conns.remove(&conn);
                        return;
                    }
                    Err(mpsc::error::TrySendError::Closed(b)) => {
                        self.conns.remove(&conn);
                        return self.open_and_send(tx.local, tx.remote, b);
                    }
                }
            }
        }
        self.open_and_send(tx.local, tx.remote, bytes);
    }

    fn open_and_send(&mut self, local: SocketAddr, remote: SocketAddr, bytes: Bytes) {
        let conn = self.ctx.conn_id();
        let (writer, queue) = mpsc::channel(transport::tcp::WRITE_QUEUE);
        // A fresh queue has room for one message.
        let _ = writer.try_send(bytes);
        self.conns.insert(conn, writer);
        transport::tcp::spawn_outbound(self.ctx.clone(), conn, local, remote, queue);
    }
}
