//! The contract's clock: milliseconds since the epoch. The pods, the local
//! runner and the operator stamp what they record with it, so their times
//! line up on one machine (and on nodes whose clocks agree).

/// Milliseconds since the epoch, by this machine's clock.
pub fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
