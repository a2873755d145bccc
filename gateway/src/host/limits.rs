//! Sandbox limits: a deadline per call and a memory cap per instance.

use std::time::Duration;

/// The limits every plugin call runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock budget of one call (one batch). Enforced by epoch interruption, so it is
    /// rounded up to the epoch tick.
    pub deadline: Duration,
    /// The most linear memory one instance may have, in bytes.
    pub memory_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            deadline: Duration::from_secs(2),
            memory_bytes: 256 << 20,
        }
    }
}

impl Limits {
    /// The deadline in epoch ticks, at least one.
    pub fn deadline_ticks(&self) -> u64 {
        (self
            .deadline
            .as_millis()
            .div_ceil(super::EPOCH_TICK.as_millis()) as u64)
            .max(1)
    }
}

/// Store data: enforces the memory cap and remembers that it refused growth, so a trap that
/// follows can be reported as what it is.
pub(crate) struct MemoryCap {
    pub(crate) limit: usize,
    pub(crate) refused: bool,
}

impl wasmtime::ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.limit;
        self.refused |= !allowed;
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}
