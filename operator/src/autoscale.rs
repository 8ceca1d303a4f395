//! Scaling a stream's workers with its lag (`spec.stream.autoscale`).
//!
//! The decision is a pure function of the spec, the autoscaler's last state
//! (recorded in the status, as the operator's own faults are) and the lag
//! Redis says now (`P:stream`), so that it can be tested without a
//! cluster and an operator restart neither repeats nor forgets a step. The
//! controller applies it to the workers' Indexed Job, whose parallelism and
//! completions move together (Kubernetes allows that for Indexed Jobs).

use crate::{
    controller::{self, Context, Error},
    crd::{Autoscale, AutoscaleStatus, Phase, WordCountJob, WordCountJobStatus},
    events, resources,
};
use k8s_openapi::{
    apimachinery::pkg::apis::meta::v1::Time,
    jiff::{SignedDuration, Timestamp},
};
use kube::runtime::events::EventType;

/// At most one change this often, so that a pod starting (and the lag it
/// has not drained yet) does not make it flap.
pub const COOLDOWN: SignedDuration = SignedDuration::from_secs(15);
/// How long the stream must have had no lag before a worker is taken away.
pub const IDLE: SignedDuration = SignedDuration::from_secs(15);

/// A change of the number of workers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scale {
    pub from: i32,
    pub to: i32,
    /// Why, for the Event.
    pub reason: String,
}

impl Scale {
    pub fn up(&self) -> bool {
        self.to > self.from
    }
}

/// The autoscaler's state before its first decision: the job's own workers,
/// kept within the bounds.
pub fn initial(spec: &Autoscale, workers: i32) -> AutoscaleStatus {
    AutoscaleStatus {
        workers: clamp(spec, workers),
        last_scale_time: None,
        no_lag_since: None,
    }
}

/// The state after seeing `lag` at `now`, and the change to make, if any.
/// `lag` is `None` when it could not be read (Redis unreachable, or the
/// driver has not written `P:stream` yet): nothing changes then. Nothing
/// is scaled unless `running`.
pub fn step(
    spec: &Autoscale,
    state: &AutoscaleStatus,
    lag: Option<i64>,
    running: bool,
    now: Timestamp,
) -> (AutoscaleStatus, Option<Scale>) {
    let mut next = state.clone();
    let Some(lag) = lag else {
        return (next, None);
    };
    next.no_lag_since = match (lag, &state.no_lag_since) {
        (0, Some(since)) => Some(since.clone()),
        (0, None) => Some(Time(now)),
        _ => None,
    };
    let cooling = state
        .last_scale_time
        .as_ref()
        .is_some_and(|t| now.duration_since(t.0) < COOLDOWN);
    if !running || cooling {
        return (next, None);
    }
    let workers = state.workers;
    let target = i64::from(spec.target_lag.max(1));
    let (to, reason) = if lag > target && workers < spec.max_workers {
        // In proportion, like a HorizontalPodAutoscaler: twice the target
        // lag, twice the workers; at least one more.
        let wanted = i64::from(workers)
            .saturating_mul(lag)
            .saturating_add(target - 1)
            / target;
        let to = i32::try_from(wanted).unwrap_or(i32::MAX);
        let to = clamp(spec, to.max(workers + 1));
        let reason = format!("lag {lag} above targetLag {target}: {workers} -> {to} workers");
        (to, reason)
    } else if lag == 0 && workers > spec.min_workers {
        let idle = next
            .no_lag_since
            .as_ref()
            .map_or(SignedDuration::ZERO, |t| now.duration_since(t.0));
        if idle < IDLE {
            return (next, None);
        }
        let to = workers - 1;
        let reason = format!("no lag for {}s: {workers} -> {to} workers", idle.as_secs());
        (to, reason)
    } else {
        return (next, None);
    };
    next.workers = to;
    next.last_scale_time = Some(Time(now));
    // Another worker goes only after another idle spell.
    if next.no_lag_since.is_some() {
        next.no_lag_since = Some(Time(now));
    }
    (
        next,
        Some(Scale {
            from: workers,
            to,
            reason,
        }),
    )
}

/// One step of a job's autoscaler, if it has one: the decision recorded in
/// `status`, the workers' Job scaled, and `ScaledUp` or `ScaledDown` said.
/// `lag` is what Redis says now (never a figure carried over).
pub async fn run(
    ctx: &Context,
    ns: &str,
    job: &WordCountJob,
    lag: Option<i64>,
    status: &mut WordCountJobStatus,
    now: Timestamp,
) -> Result<(), Error> {
    let (Some(spec), Some(state)) = (job.spec.autoscale(), status.autoscale.as_ref()) else {
        return Ok(());
    };
    let running = status.phase == Some(Phase::Running);
    let (next, scale) = step(spec, state, lag, running, now);
    status.autoscale = Some(next);
    let Some(scale) = scale else {
        return Ok(());
    };
    let mut scaled = job.clone();
    scaled.status = Some(status.clone());
    controller::apply(ctx, ns, &resources::workers::job(&scaled, false)).await?;
    let reason = if scale.up() { "ScaledUp" } else { "ScaledDown" };
    events::publish(
        ctx,
        job,
        EventType::Normal,
        reason,
        "Autoscale",
        scale.reason,
    )
    .await;
    Ok(())
}

fn clamp(spec: &Autoscale, workers: i32) -> i32 {
    workers.clamp(spec.min_workers, spec.max_workers.max(spec.min_workers))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Autoscale {
        Autoscale {
            min_workers: 1,
            max_workers: 8,
            target_lag: 10,
        }
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).unwrap()
    }

    fn state(workers: i32) -> AutoscaleStatus {
        initial(&spec(), workers)
    }

    #[test]
    fn lag_above_the_target_scales_up_in_proportion_within_the_bounds() {
        let (next, scale) = step(&spec(), &state(2), Some(35), true, at(0));
        let scale = scale.unwrap();
        // 2 workers * 35 / 10, rounded up.
        assert_eq!((scale.from, scale.to, scale.up()), (2, 7, true));
        assert_eq!(scale.reason, "lag 35 above targetLag 10: 2 -> 7 workers");
        assert_eq!(next.workers, 7);
        assert_eq!(next.last_scale_time, Some(Time(at(0))));
        // Far above: no more than maxWorkers.
        let (_, scale) = step(&spec(), &state(3), Some(10_000), true, at(0));
        assert_eq!(scale.unwrap().to, 8);
        // Just above: one more at least.
        let (_, scale) = step(&spec(), &state(4), Some(11), true, at(0));
        assert_eq!(scale.unwrap().to, 5);
        // At the target, or already at the maximum: nothing.
        assert_eq!(step(&spec(), &state(4), Some(10), true, at(0)).1, None);
        assert_eq!(step(&spec(), &state(8), Some(500), true, at(0)).1, None);
    }

    #[test]
    fn no_change_within_the_cool_down() {
        let (scaled, first) = step(&spec(), &state(2), Some(20), true, at(0));
        assert_eq!(first.unwrap().to, 4);
        let (_, again) = step(&spec(), &scaled, Some(400), true, at(14));
        assert_eq!(again, None, "within 15 s of the last change");
        let (_, later) = step(&spec(), &scaled, Some(400), true, at(15));
        assert_eq!(later.unwrap().to, 8);
    }

    #[test]
    fn scales_down_one_worker_after_a_spell_without_lag() {
        let s = state(4);
        // Lag 0 is first seen at 0 s; 10 s later it is not long enough.
        let (s, none) = step(&spec(), &s, Some(0), true, at(0));
        assert_eq!((none, s.no_lag_since.clone()), (None, Some(Time(at(0)))));
        let (s, none) = step(&spec(), &s, Some(0), true, at(10));
        assert_eq!(none, None);
        assert_eq!(s.no_lag_since, Some(Time(at(0))), "kept while lag stays 0");
        let (s, down) = step(&spec(), &s, Some(0), true, at(15));
        let down = down.unwrap();
        assert_eq!((down.from, down.to, down.up()), (4, 3, false));
        assert_eq!(down.reason, "no lag for 15s: 4 -> 3 workers");
        // The next one needs another idle spell (and the cool-down).
        assert_eq!(step(&spec(), &s, Some(0), true, at(29)).1, None);
        assert_eq!(step(&spec(), &s, Some(0), true, at(30)).1.unwrap().to, 2);
        // Any lag resets the spell.
        let (s, _) = step(&spec(), &s, Some(3), true, at(31));
        assert_eq!(s.no_lag_since, None);
        // Never below minWorkers.
        let (s, _) = step(&spec(), &state(1), Some(0), true, at(0));
        assert_eq!(step(&spec(), &s, Some(0), true, at(100)).1, None);
    }

    #[test]
    fn nothing_happens_unless_running_with_a_lag_read() {
        let s = state(2);
        assert_eq!(step(&spec(), &s, None, true, at(0)), (s.clone(), None));
        let (next, scale) = step(&spec(), &s, Some(100), false, at(0));
        assert_eq!((next.workers, scale), (2, None));
    }

    #[test]
    fn the_first_state_keeps_the_jobs_workers_within_the_bounds() {
        assert_eq!(state(3).workers, 3);
        assert_eq!(state(0).workers, 1);
        assert_eq!(state(20).workers, 8);
    }
}
