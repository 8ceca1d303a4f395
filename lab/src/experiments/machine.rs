//! The machine under the experiments: what it is (for a report's header),
//! how late a thread that sleeps wakes, and how much CPU the hypervisor
//! takes (steal). On a shared VM the last two are a floor under every
//! latency a stream measures, so the stream experiments print them beside
//! their figures.

use anyhow::{Context, Result};
use procfs::{CpuInfo, Current, CurrentSI, KernelStats, Meminfo};
use std::time::{Duration, Instant};
use wordcount_job::latency::Percentiles;

/// What the machine is, as (what, value) lines; what cannot be read says so.
pub fn describe() -> Vec<(&'static str, String)> {
    let unknown = |e: &dyn std::fmt::Display| format!("unknown ({e})");
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = CpuInfo::current()
        .ok()
        .and_then(|c| c.model_name(0).map(str::to_owned));
    let memory = Meminfo::current().map_or_else(
        |e| unknown(&e),
        |m| format!("{:.1} GiB", m.mem_total as f64 / (1u64 << 30) as f64),
    );
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|e| unknown(&e), |k| format!("Linux {}", k.trim()));
    vec![
        (
            "cores",
            match cpu {
                Some(model) => format!("{cores} ({model})"),
                None => cores.to_string(),
            },
        ),
        ("memory", memory),
        ("kernel", kernel),
        ("Redis", redis_version().unwrap_or_else(|e| unknown(&e))),
    ]
}

/// `redis-server --version`'s `v=` field.
fn redis_version() -> Result<String> {
    let out = std::process::Command::new("redis-server")
        .arg("--version")
        .output()
        .context("cannot run redis-server --version")?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .find_map(|f| f.strip_prefix("v="))
        .map(|v| format!("redis-server {v}"))
        .with_context(|| format!("no version in {:?}", text.trim()))
}

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
    fn describes_cores_memory_kernel_and_redis() {
        let lines = describe();
        let names: Vec<&str> = lines.iter().map(|l| l.0).collect();
        assert_eq!(names, ["cores", "memory", "kernel", "Redis"]);
        assert!(lines[1].1.ends_with(" GiB"), "{lines:?}");
        assert!(lines[2].1.starts_with("Linux "), "{lines:?}");
    }

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
