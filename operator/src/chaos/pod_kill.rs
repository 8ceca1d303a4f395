//! Pod kills: delete a random running worker pod, the Redis pod (with
//! RedisRaft, a random running replica) or the RedisRaft leader's pod,
//! every `every` from `after` past the job's start, at most `maxKills` times.

use super::scene::{count, record, Scene};
use crate::{
    context::{Context, Error, Result},
    crd::{FaultKind, PodKillTarget, PodKills, WordCountJob, WordCountJobStatus},
    metrics::TargetLabels,
    pods::of_component,
    resources::Component,
};
use k8s_openapi::{api::core::v1::Pod, jiff::Timestamp};
use kube::{api::DeleteParams, Api, ResourceExt};
use std::time::Duration;
use tracing::info;

/// Kills a pod if one is due (`start` is the job's start while it runs);
/// returns when the next kill is due.
pub async fn run(
    ctx: &Context,
    job: &WordCountJob,
    scene: &Scene<'_>,
    start: Option<Timestamp>,
    status: &mut WordCountJobStatus,
) -> Result<Option<Duration>> {
    let (Some(kills), Some(start)) = (job.spec.pod_kills(), start) else {
        return Ok(None);
    };
    let done = count(status, FaultKind::PodKill);
    match next(kills, start, done, scene.now) {
        Next::Kill => {
            kill(ctx, job, scene, kills, done, status).await?;
            // Again soon: the next kill may be due already, or this one
            // found no pod to kill.
            Ok(Some(Duration::from_secs(1)))
        }
        Next::Wait(d) => Ok(Some(d)),
        Next::Done => Ok(None),
    }
}

/// Deletes one random running pod of the target and records it.
async fn kill(
    ctx: &Context,
    job: &WordCountJob,
    scene: &Scene<'_>,
    kills: &PodKills,
    done: usize,
    status: &mut WordCountJobStatus,
) -> Result<()> {
    let target = kills.target.as_str();
    let Some(victim) = pick(&candidates(scene.pods, kills.target, scene.raft_leader)) else {
        info!(target, "pod kill due, but no running pod to kill");
        return Ok(());
    };
    let pod_name = victim.name_any();
    let ns = victim.namespace().ok_or(Error::NoNamespace)?;
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    match api.delete(&pod_name, &DeleteParams::default()).await {
        Ok(_) => {}
        // Gone meanwhile: no kill happened, try again on the next reconcile.
        Err(kube::Error::Api(s)) if s.is_not_found() => return Ok(()),
        Err(source) => {
            return Err(Error::DeleteResource {
                kind: "Pod".into(),
                name: pod_name,
                source,
            })
        }
    }
    ctx.metrics
        .pod_kills
        .get_or_create(&TargetLabels {
            target: target.into(),
        })
        .inc();
    info!(pod = %pod_name, "chaos: deleted pod");
    let note = format!(
        "deleted {target} pod {pod_name} (kill {} of {})",
        done + 1,
        kills.max_kills
    );
    record(
        ctx,
        job,
        status,
        (FaultKind::PodKill, pod_name),
        "PodKilled",
        note,
    )
    .await;
    Ok(())
}

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

/// Pods that may be killed: running, not already being deleted, of the
/// target component; for the RedisRaft leader, the leader's pod (`leader`,
/// none while no leader is known). Killing a pod that is already going
/// proves nothing.
fn candidates<'a>(pods: &'a [Pod], target: PodKillTarget, leader: Option<&str>) -> Vec<&'a Pod> {
    let component = match target {
        PodKillTarget::Worker => Component::Worker,
        PodKillTarget::Redis | PodKillTarget::RedisLeader => Component::Redis,
    };
    of_component(pods, component)
        .filter(|p| target != PodKillTarget::RedisLeader || Some(p.name_any().as_str()) == leader)
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        .collect()
}

/// One candidate at random.
fn pick<'a>(candidates: &[&'a Pod]) -> Option<&'a Pod> {
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
            names(candidates(&pods, PodKillTarget::Worker, None)),
            ["w0", "w3"]
        );
        assert_eq!(names(candidates(&pods, PodKillTarget::Redis, None)), ["r"]);

        let workers = candidates(&pods, PodKillTarget::Worker, None);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            seen.insert(pick(&workers).unwrap().metadata.name.clone().unwrap());
        }
        assert_eq!(seen.len(), 2, "both candidates get picked");
        assert!(pick(&[]).is_none());
    }

    #[test]
    fn redis_leader_is_the_leaders_pod_and_redis_any_replica() {
        let pods = vec![
            pod("demo-redis-0", Component::Redis, "Running", false),
            pod("demo-redis-1", Component::Redis, "Running", false),
            pod("demo-redis-2", Component::Redis, "Pending", false),
            pod("w0", Component::Worker, "Running", false),
        ];
        let names = |c: Vec<&Pod>| {
            c.iter()
                .map(|p| p.metadata.name.clone().unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(candidates(
                &pods,
                PodKillTarget::Redis,
                Some("demo-redis-1")
            )),
            ["demo-redis-0", "demo-redis-1"]
        );
        assert_eq!(
            names(candidates(
                &pods,
                PodKillTarget::RedisLeader,
                Some("demo-redis-1")
            )),
            ["demo-redis-1"]
        );
        // No leader known (an election, or Redis unread): nobody.
        assert!(candidates(&pods, PodKillTarget::RedisLeader, None).is_empty());
        // A leader whose pod is not running yet: nobody either.
        assert!(candidates(&pods, PodKillTarget::RedisLeader, Some("demo-redis-2")).is_empty());
    }
}
