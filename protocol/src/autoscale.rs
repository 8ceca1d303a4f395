//! Scaling a stream's workers on lag: the rule both the operator (the
//! worker Job's parallelism) and `wordcount run --autoscale` (processes)
//! follow, so that a job scales the same way wherever it runs.
//!
//! One worker at a time, at most once per cool-down: up while more than
//! `target_lag` entries wait for a worker, down once none has waited for a
//! whole cool-down. Steps of one are slow on purpose: each is visible on a
//! timeline, and a cool-down keeps a bursty stream from flapping.

use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Autoscale {
    pub min_workers: u32,
    pub max_workers: u32,
    /// Entries waiting for a worker above which one more is added.
    pub target_lag: u64,
    /// Least time between two changes, and the time the queue must have
    /// stayed empty before one worker goes.
    pub cooldown: Duration,
}

/// A change of the number of workers, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scaling {
    pub from: u32,
    pub to: u32,
    pub reason: String,
}

impl Autoscale {
    /// What to do with `workers` workers when `lag` entries wait, the last
    /// change was `since_change` ago and the queue has been empty for
    /// `idle_for`.
    pub fn decide(
        &self,
        workers: u32,
        lag: u64,
        since_change: Duration,
        idle_for: Duration,
    ) -> Option<Scaling> {
        let scale = |to: u32, reason: String| {
            Some(Scaling {
                from: workers,
                to,
                reason,
            })
        };
        if workers < self.min_workers {
            return scale(
                self.min_workers,
                format!("below minWorkers {}", self.min_workers),
            );
        }
        if workers > self.max_workers {
            return scale(
                self.max_workers,
                format!("above maxWorkers {}", self.max_workers),
            );
        }
        if since_change < self.cooldown {
            return None;
        }
        if lag > self.target_lag && workers < self.max_workers {
            return scale(
                workers + 1,
                format!("lag {lag} above the target {}", self.target_lag),
            );
        }
        if lag == 0 && idle_for >= self.cooldown && workers > self.min_workers {
            return scale(workers - 1, format!("no lag for {}s", idle_for.as_secs()));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Autoscale = Autoscale {
        min_workers: 1,
        max_workers: 3,
        target_lag: 10,
        cooldown: Duration::from_secs(5),
    };
    const LONG: Duration = Duration::from_secs(60);
    const SHORT: Duration = Duration::from_secs(1);

    fn to(s: Option<Scaling>) -> Option<u32> {
        s.map(|s| s.to)
    }

    #[test]
    fn grows_one_at_a_time_on_lag_up_to_max() {
        assert_eq!(to(S.decide(1, 50, LONG, Duration::ZERO)), Some(2));
        assert_eq!(to(S.decide(3, 50, LONG, Duration::ZERO)), None);
        assert_eq!(
            to(S.decide(2, 10, LONG, Duration::ZERO)),
            None,
            "at the target"
        );
        let s = S.decide(2, 11, LONG, Duration::ZERO).unwrap();
        assert_eq!(s.reason, "lag 11 above the target 10");
    }

    #[test]
    fn shrinks_only_after_a_whole_cooldown_without_lag() {
        assert_eq!(to(S.decide(3, 0, LONG, SHORT)), None);
        assert_eq!(to(S.decide(3, 0, LONG, LONG)), Some(2));
        assert_eq!(to(S.decide(3, 1, LONG, LONG)), None);
        assert_eq!(to(S.decide(1, 0, LONG, LONG)), None, "never below min");
    }

    #[test]
    fn waits_a_cooldown_between_changes_but_fixes_bounds_at_once() {
        assert_eq!(to(S.decide(1, 50, SHORT, Duration::ZERO)), None);
        assert_eq!(to(S.decide(0, 0, SHORT, Duration::ZERO)), Some(1));
        assert_eq!(to(S.decide(5, 50, SHORT, Duration::ZERO)), Some(3));
    }
}
