//! The `sharedline` binary; everything is in the library (see its Layout).

// jemalloc hands memory back to the system after a burst (100k phones
// subscribing after an outage leave as many finished transactions behind);
// the system allocator keeps it, and the server's RSS with it.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options: a background thread purges freed pages after a
/// second, so an idle server gives a burst's memory back too (without it,
/// purging only happens while allocating). One arena: nearly all
/// allocation happens on the engine's thread, and an arena per thread left
/// partly used pages in each (about 50 bytes per held subscription).
#[export_name = "_rjem_malloc_conf"]
pub static MALLOC_CONF: &[u8; 70] =
    b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0,narenas:1\0";

fn main() -> std::process::ExitCode {
    sharedline::main()
}
