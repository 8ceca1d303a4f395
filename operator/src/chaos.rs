//! Chaos on a schedule. Pod kills: delete a random worker pod, or the Redis
//! pod, every `every` from `after` past the job's start, at most `maxKills`
//! times. Partitions: cut the workers off from Redis from `after` for
//! `duration`.
//!
//! Each schedule is a pure function of the job's start time (and the kills
//! already recorded in its status), so an operator restart neither repeats
//! nor forgets a fault.

use crate::{
    crd::{Partition, PodKillTarget, PodKills},
    pods::of_component,
    resources::Component,
};
use k8s_openapi::{api::core::v1::Pod, jiff::Timestamp};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Kill one pod now.
    Kill,
    /// The next kill is this far away.
    Wait(Duration),
    /// Every kill is done.
    Done,
}

/// What the schedule says at `now`, given the job started at `start` and
/// `done` kills happened. Kill k (from 0) is due at start + after + k*every.
pub fn next(kills: &PodKills, start: Timestamp, done: usize, now: Timestamp) -> Next {
    if done >= kills.max_kills.max(0) as usize {
        return Next::Done;
    }
    let offset = kills.after.as_std() + kills.every.as_std() * done as u32;
    let Ok(due) = start.checked_add(offset) else {
        return Next::Done;
    };
    if now >= due {
        Next::Kill
    } else {
        Next::Wait(now.duration_until(due).unsigned_abs())
    }
}

/// Where the partition schedule stands at a moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cut {
    /// The partition (index in the spec) in force now, if any.
    pub active: Option<usize>,
    /// Time to the next start or end of a partition.
    pub next_change: Option<Duration>,
}

/// Partition i is in force over [start + after, start + after + duration).
pub fn cut(partitions: &[Partition], start: Timestamp, now: Timestamp) -> Cut {
    let mut result = Cut::default();
    let mut note = |at: Timestamp| {
        if at > now {
            let d = now.duration_until(at).unsigned_abs();
            result.next_change = Some(result.next_change.map_or(d, |n: Duration| n.min(d)));
        }
    };
    for (i, p) in partitions.iter().enumerate() {
        let (Ok(from), Ok(to)) = (
            start.checked_add(p.after.as_std()),
            start.checked_add(p.after.as_std() + p.duration.as_std()),
        ) else {
            continue;
        };
        if from <= now && now < to && result.active.is_none() {
            result.active = Some(i);
        }
        note(from);
        note(to);
    }
    result
}

/// Pods that may be killed: running, not already being deleted, of the
/// target component. Killing a pod that is already going proves nothing.
pub fn candidates(pods: &[Pod], target: PodKillTarget) -> Vec<&Pod> {
    let component = match target {
        PodKillTarget::Worker => Component::Worker,
        PodKillTarget::Redis => Component::Redis,
    };
    of_component(pods, component)
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        .collect()
}

/// The addresses of the job's worker pods (any phase: a pod on its way
/// out may still hold a connection).
pub fn worker_ips(pods: &[Pod]) -> Vec<String> {
    of_component(pods, Component::Worker)
        .filter_map(|p| p.status.as_ref()?.pod_ip.clone())
        .collect()
}

/// One candidate at random.
pub fn pick<'a>(candidates: &[&'a Pod]) -> Option<&'a Pod> {
    use rand::seq::IndexedRandom;
    candidates.choose(&mut rand::rng()).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{Component, LABEL_COMPONENT};
    use k8s_openapi::{
        api::core::v1::PodStatus,
        apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time},
    };
    use std::collections::BTreeMap;

    fn kills(after: &str, every: &str, max: i32) -> PodKills {
        PodKills {
            target: PodKillTarget::Worker,
            every: every.parse().unwrap(),
            after: after.parse().unwrap(),
            max_kills: max,
        }
    }

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn partitions_are_in_force_over_their_window() {
        let parts = [
            Partition {
                after: "2s".parse().unwrap(),
                duration: "3s".parse().unwrap(),
            },
            Partition {
                after: "10s".parse().unwrap(),
                duration: "1s".parse().unwrap(),
            },
        ];
        let start = t("2025-01-01T00:00:00Z");
        let at = |s: &str| {
            let c = cut(&parts, start, t(&format!("2025-01-01T00:00:{s}Z")));
            (c.active, c.next_change)
        };
        let secs = Duration::from_secs;
        assert_eq!(at("01"), (None, Some(secs(1))));
        assert_eq!(at("02"), (Some(0), Some(secs(3))));
        assert_eq!(at("05"), (None, Some(secs(5))));
        assert_eq!(at("10"), (Some(1), Some(secs(1))));
        assert_eq!(at("11"), (None, None));
    }

    #[test]
    fn schedule_starts_after_the_offset_and_repeats() {
        let k = kills("5s", "10s", 3);
        let start = t("2025-01-01T00:00:00Z");
        assert_eq!(
            next(&k, start, 0, t("2025-01-01T00:00:01Z")),
            Next::Wait(Duration::from_secs(4))
        );
        assert_eq!(next(&k, start, 0, t("2025-01-01T00:00:05Z")), Next::Kill);
        // One kill done: the next is at 15 s.
        assert_eq!(
            next(&k, start, 1, t("2025-01-01T00:00:06Z")),
            Next::Wait(Duration::from_secs(9))
        );
        assert_eq!(next(&k, start, 1, t("2025-01-01T00:00:15Z")), Next::Kill);
        // A late reconcile kills once, not once per missed slot.
        assert_eq!(next(&k, start, 1, t("2025-01-01T00:10:00Z")), Next::Kill);
        assert_eq!(next(&k, start, 3, t("2025-01-01T00:10:00Z")), Next::Done);
    }

    fn pod(name: &str, component: Component, phase: &str, deleting: bool) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(BTreeMap::from([(
                    LABEL_COMPONENT.into(),
                    component.as_str().into(),
                )])),
                deletion_timestamp: deleting.then(|| Time(t("2025-01-01T00:00:00Z"))),
                ..ObjectMeta::default()
            },
            status: Some(PodStatus {
                phase: Some(phase.into()),
                ..PodStatus::default()
            }),
            ..Pod::default()
        }
    }

    #[test]
    fn only_running_pods_of_the_target_are_candidates() {
        let pods = vec![
            pod("w0", Component::Worker, "Running", false),
            pod("w1", Component::Worker, "Running", true),
            pod("w2", Component::Worker, "Pending", false),
            pod("w3", Component::Worker, "Running", false),
            pod("d", Component::Driver, "Running", false),
            pod("r", Component::Redis, "Running", false),
        ];
        let names = |c: Vec<&Pod>| {
            c.iter()
                .map(|p| p.metadata.name.clone().unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(candidates(&pods, PodKillTarget::Worker)),
            ["w0", "w3"]
        );
        assert_eq!(names(candidates(&pods, PodKillTarget::Redis)), ["r"]);

        let workers = candidates(&pods, PodKillTarget::Worker);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            seen.insert(pick(&workers).unwrap().metadata.name.clone().unwrap());
        }
        assert_eq!(seen.len(), 2, "both candidates get picked");
        assert!(pick(&[]).is_none());
    }
}
