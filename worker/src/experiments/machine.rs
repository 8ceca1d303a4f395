//! The machine under the experiments: how late a thread that sleeps wakes,
//! and how much CPU the hypervisor takes (steal). On a shared VM these are
//! a floor under every latency a stream measures, so the stream experiments
//! print them beside their figures.

use crate::latency::Percentiles;
use anyhow::{Context, Result};
use procfs::{CurrentSI, KernelStats};
use std::time::{Duration, Instant};

/// How late a thread wakes from `samples` sleeps of `nap`, in µs.
pub fn wake_delay_us(nap: Duration, samples: usize) -> Percentiles {
    Percentiles::of((0..samples).map(|_| {
        let t = Instant::now();
        std::thread::sleep(nap);
        t.elapsed().saturating_sub(nap).as_micros() as u64
    }))
}

/// The CPU time of the whole machine so far, to take a share of steal from.
pub struct CpuClock {
    steal: u64,
    total: u64,
}

impl CpuClock {
    pub fn now() -> Result<Self> {
        let t = KernelStats::current().context("reading /proc/stat")?.total;
        let steal = t.steal.unwrap_or(0);
        let total = [t.user, t.nice, t.system, t.idle]
            .into_iter()
            .chain([t.iowait, t.irq, t.softirq, t.steal].into_iter().flatten())
            .sum();
        Ok(CpuClock { steal, total })
    }

    /// The share of the machine's CPU time stolen since `self` (0 to 1).
    pub fn steal_since(&self) -> Result<f64> {
        let now = CpuClock::now()?;
        let total = now.total.saturating_sub(self.total);
        Ok(match total {
            0 => 0.0,
            t => now.steal.saturating_sub(self.steal) as f64 / t as f64,
        })
    }
}

/// A line for an experiment's notes: the wake-up delay measured now, and
/// the steal since `since`.
pub fn note(since: &CpuClock) -> Result<String> {
    let nap = Duration::from_millis(1);
    let late = wake_delay_us(nap, 1000);
    Ok(format!(
        "machine: a thread sleeping {} ms woke {} µs late at p50, {} µs at p99, {} µs at most \
         (1,000 naps); the hypervisor took {:.1} % of the CPU time during the experiment \
         (steal): no latency here is measured below these",
        nap.as_millis(),
        late.p50,
        late.p99,
        late.max,
        100.0 * since.steal_since()?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wake_delays_are_in_microseconds() {
        // Linux lets a sleeping thread's timer slip by its timer slack
        // (50 µs by default): the median is late by some microseconds,
        // which whole milliseconds would round to 0.
        let d = wake_delay_us(Duration::from_millis(1), 50);
        assert!(d.p50 >= 1, "{d:?}");
    }

    #[test]
    fn steal_is_a_share() {
        let clock = CpuClock::now().unwrap();
        // Burn a little CPU so that the total moves.
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(30) {}
        let s = clock.steal_since().unwrap();
        assert!((0.0..=1.0).contains(&s), "{s}");
    }
}
