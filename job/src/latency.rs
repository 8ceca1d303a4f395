//! Latency percentiles of a stream, from the per-file latencies Redis
//! measured (commit time minus due time, on its own clock), in ms; the
//! experiments also take the machine's wake-up delays with them, in µs.

use serde::{Deserialize, Serialize};

/// Nearest-rank percentiles, in the unit of the values they were taken of.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Percentiles {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
}

impl Percentiles {
    pub fn of(latencies: impl IntoIterator<Item = u64>) -> Self {
        let mut v: Vec<u64> = latencies.into_iter().collect();
        v.sort_unstable();
        Percentiles {
            p50: percentile(&v, 0.50),
            p90: percentile(&v, 0.90),
            p99: percentile(&v, 0.99),
            max: v.last().copied().unwrap_or(0),
        }
    }
}

/// The nearest-rank `q` quantile of sorted values (0 for none).
pub fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let l = Percentiles::of(1..=100);
        assert_eq!((l.p50, l.p90, l.p99, l.max), (50, 90, 99, 100));
        assert_eq!(Percentiles::of([7]).p99, 7);
        assert_eq!(Percentiles::of([]), Percentiles::default());
        assert_eq!(percentile(&[1, 2, 3, 4], 0.5), 2);
    }
}
