//! Faults the operator itself injects while a job runs, each in its own
//! module with its schedule (a pure function of the job's start time and
//! the faults already recorded in its status, so an operator restart neither
//! repeats nor forgets one) and its side effects:
//!
//! - `pod_kill`: delete a worker, the Redis pod (a RedisRaft replica) or
//!   the RedisRaft leader on a schedule;
//! - `partition`: cut the workers off from Redis for a while.
//!
//! Crash and straggler faults are the workers' own (`--fault`).

pub mod partition;
pub mod pod_kill;

use crate::{
    controller::{Context, Error},
    crd::{FaultKind, InjectedFault, Phase, WordCountJob, WordCountJobStatus},
    events,
    progress::Endpoint,
    status,
};
use k8s_openapi::{api::core::v1::Pod, apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
use kube::runtime::events::EventType;
use std::time::Duration;

/// What one reconcile saw that the faults act on.
pub struct Scene<'a> {
    pub pods: &'a [Pod],
    pub redis: &'a Endpoint,
    /// RedisRaft: the leader's pod, as the replicas said it now.
    pub raft_leader: Option<&'a str>,
    pub now: Timestamp,
}

/// Runs every fault that is due and records those that happened in
/// `status`; returns when the next one is due. Nothing is due unless the job
/// runs; the standing NetworkPolicy is applied (narrowed or not) always.
pub async fn inject(
    ctx: &Context,
    job: &WordCountJob,
    scene: &Scene<'_>,
    status: &mut WordCountJobStatus,
) -> Result<Option<Duration>, Error> {
    let start = match (status.phase, &status.start_time) {
        (Some(Phase::Running), Some(start)) => Some(start.0),
        _ => None,
    };
    let kill = pod_kill::run(ctx, job, scene, start, status).await?;
    let cut = partition::run(ctx, job, scene, start, status).await?;
    Ok([kill, cut].into_iter().flatten().min())
}

/// How many faults of this kind the operator has made so far.
fn count(status: &WordCountJobStatus, kind: FaultKind) -> usize {
    status.faults.iter().filter(|f| f.kind == kind).count()
}

/// Records a fault the operator made in the status, and announces it with
/// a Warning Event.
async fn record(
    ctx: &Context,
    job: &WordCountJob,
    status: &mut WordCountJobStatus,
    fault: (FaultKind, String),
    reason: &str,
    note: String,
) {
    events::publish(ctx, job, EventType::Warning, reason, "InjectFault", note).await;
    let (kind, target) = fault;
    status::record(
        status,
        InjectedFault {
            kind,
            target,
            time: Time(Timestamp::now()),
        },
    );
}
