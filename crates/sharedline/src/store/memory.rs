//! The memory store: keeps nothing across restarts.
//!
//! The engine already holds the live state in memory and never reads the
//! store back while running, so a copy here would only cost memory. This
//! backend therefore commits by doing nothing, yet still goes through the
//! writer thread so acknowledgements arrive exactly as they do with SQLite
//! (from another thread, after `submit` has returned).

use super::{Backend, StoreError};
use engine::StoreBatch;

/// A store with no durability; every commit succeeds at once.
pub(crate) struct MemoryStore;

impl Backend for MemoryStore {
    fn commit(&mut self, _batches: &[StoreBatch]) -> Result<(), StoreError> {
        Ok(())
    }
}
