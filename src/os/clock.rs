//! The clocks: model reads none, so the moments it stamps events with are read here.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::model::timeline::{Event, Kind, Stamp};

/// Milliseconds on CLOCK_MONOTONIC: the same clock in every process of this boot.
pub fn mono_ms() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1000 + t.tv_nsec() as u64 / 1_000_000)
        .unwrap_or(0)
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Now, on both clocks.
pub fn now() -> Stamp {
    Stamp {
        at_ms: now_ms(),
        mono_ms: mono_ms(),
    }
}

impl Event {
    /// An event of `kind` now, with only its message; callers fill in what applies.
    pub fn new(kind: Kind, message: impl Into<String>) -> Event {
        Event::at(kind, message, now())
    }
}
