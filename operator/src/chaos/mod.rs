//! Faults the operator itself injects while a job runs, each in its own
//! module with its schedule (a pure function of the job's start time and
//! the faults already recorded in its status, so an operator restart neither
//! repeats nor forgets one) and its side effects:
//!
//! - `pod_kill`: delete a worker, the Redis pod (a RedisRaft replica) or
//!   the RedisRaft leader on a schedule;
//! - `partition`: cut the workers off from Redis for a while.
//!
//! What they share is in `scene`; this only runs them. Crash and straggler
//! faults are the workers' own (`--fault`).

pub mod partition;
pub mod pod_kill;
mod scene;

pub use scene::Scene;

use crate::{
    context::{Context, Error, Result},
    crd::{FaultKind, Phase, WordCountJob, WordCountJobStatus},
};
use std::time::Duration;

/// Runs every fault that is due and records those that happened in
/// `status`; returns when the next one is due. Nothing is due unless the job
/// runs; the standing NetworkPolicy is applied (narrowed or not) always.
pub async fn inject(
    ctx: &Context,
    job: &WordCountJob,
    scene: &Scene<'_>,
    status: &mut WordCountJobStatus,
) -> Result<Option<Duration>> {
    let start = match (status.phase, &status.start_time) {
        (Some(Phase::Running), Some(start)) => Some(start.0),
        _ => None,
    };
    let kill = pod_kill::run(ctx, job, scene, start, status)
        .await
        .map_err(Error::chaos(FaultKind::PodKill))?;
    let cut = partition::run(ctx, job, scene, start, status)
        .await
        .map_err(Error::chaos(FaultKind::Partition))?;
    Ok([kill, cut].into_iter().flatten().min())
}
