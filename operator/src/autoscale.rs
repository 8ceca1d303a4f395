//! Scaling a stream's workers with its lag (`spec.stream.autoscale`).
//!
//! The rule is the contract's (`wordcount_protocol::Autoscale`, which
//! `wordcount run --autoscale` follows too): one more worker while the lag
//! is above the target, one fewer once there has been no lag for a whole
//! cool-down, at most one change per cool-down. What the operator adds is
//! the state the rule needs (the workers now, the last change, since when
//! there has been no lag), kept in the status as the operator's own record
//! (as its faults are), so that a step is a pure function of the spec, that
//! state and the lag Redis says now: tested without a cluster, and an
//! operator restart neither repeats nor forgets a change. The controller
//! applies it to the workers' Indexed Job, whose parallelism and
//! completions move together (Kubernetes allows that for Indexed Jobs).

use crate::{
    context::{apply, Context, Error, Result},
    crd::{Autoscale, AutoscaleStatus, Phase, WordCountJob, WordCountJobStatus},
    events, resources,
};
use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
use kube::runtime::events::EventType;
use std::time::Duration;

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

/// The contract's rule with the spec's figures.
pub fn rule(spec: &Autoscale) -> wordcount_protocol::Autoscale {
    let positive = |n: i32| u32::try_from(n).unwrap_or(0);
    wordcount_protocol::Autoscale {
        min_workers: positive(spec.min_workers),
        max_workers: positive(spec.max_workers),
        target_lag: u64::from(positive(spec.target_lag)),
        cooldown: spec.cooldown.as_std(),
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
    if !running {
        return (next, None);
    }
    let since = |t: &Option<Time>| {
        t.as_ref()
            .map(|t| Duration::try_from(now.duration_since(t.0)).unwrap_or(Duration::ZERO))
    };
    let decided = rule(spec).decide(
        u32::try_from(state.workers).unwrap_or(0),
        u64::try_from(lag).unwrap_or(0),
        // Never scaled: as long ago as can be.
        since(&state.last_scale_time).unwrap_or(Duration::MAX),
        since(&next.no_lag_since).unwrap_or(Duration::ZERO),
    );
    let Some(scaling) = decided else {
        return (next, None);
    };
    let to = i32::try_from(scaling.to).unwrap_or(i32::MAX);
    let reason = format!("{}: {} -> {to} workers", scaling.reason, state.workers);
    next.workers = to;
    next.last_scale_time = Some(Time(now));
    // Another worker goes only after another spell without lag.
    if next.no_lag_since.is_some() {
        next.no_lag_since = Some(Time(now));
    }
    (
        next,
        Some(Scale {
            from: state.workers,
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
) -> Result<()> {
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
    apply(ctx, ns, &resources::workers::job(&scaled, None, false))
        .await
        .map_err(|e| Error::Autoscale {
            workers: scale.to,
            source: Box::new(e),
        })?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Autoscale {
        Autoscale {
            min_workers: 1,
            max_workers: 4,
            target_lag: 10,
            cooldown: crate::duration::Duration::from_secs(15),
        }
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).unwrap()
    }

    fn state(workers: i32) -> AutoscaleStatus {
        AutoscaleStatus::initial(&spec(), workers)
    }

    #[test]
    fn lag_above_the_target_adds_one_worker_up_to_the_maximum() {
        let (next, scale) = step(&spec(), &state(2), Some(35), true, at(0));
        let scale = scale.unwrap();
        assert_eq!((scale.from, scale.to, scale.up()), (2, 3, true));
        assert_eq!(scale.reason, "lag 35 above the target 10: 2 -> 3 workers");
        assert_eq!(next.workers, 3);
        assert_eq!(next.last_scale_time, Some(Time(at(0))));
        // At the target, or already at the maximum: nothing.
        assert_eq!(step(&spec(), &state(2), Some(10), true, at(0)).1, None);
        assert_eq!(step(&spec(), &state(4), Some(500), true, at(0)).1, None);
    }

    #[test]
    fn no_change_within_the_cool_down() {
        let (scaled, first) = step(&spec(), &state(1), Some(50), true, at(0));
        assert_eq!(first.unwrap().to, 2);
        let (_, again) = step(&spec(), &scaled, Some(400), true, at(14));
        assert_eq!(again, None, "within 15 s of the last change");
        let (_, later) = step(&spec(), &scaled, Some(400), true, at(15));
        assert_eq!(later.unwrap().to, 3);
    }

    #[test]
    fn one_worker_goes_after_a_whole_cool_down_without_lag() {
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
        // The next one needs another spell (and the cool-down).
        assert_eq!(step(&spec(), &s, Some(0), true, at(29)).1, None);
        assert_eq!(step(&spec(), &s, Some(0), true, at(30)).1.unwrap().to, 2);
        // Any lag ends the spell.
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
        assert_eq!(state(20).workers, 4);
    }

    #[test]
    fn the_rule_is_the_contracts_with_the_specs_figures() {
        let r = rule(&spec());
        assert_eq!(
            (r.min_workers, r.max_workers, r.target_lag, r.cooldown),
            (1, 4, 10, Duration::from_secs(15))
        );
    }
}
