//! What every fault shares: the scene it acts on, how many of its kind
//! were made, and how one is recorded and announced.

use crate::{
    context::Context,
    crd::{FaultKind, InjectedFault, WordCountJob, WordCountJobStatus},
    events,
    redis::Endpoint,
    status,
};
use k8s_openapi::{api::core::v1::Pod, apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
use kube::runtime::events::EventType;

/// What one reconcile saw that the faults act on.
pub struct Scene<'a> {
    pub pods: &'a [Pod],
    pub redis: &'a Endpoint,
    /// RedisRaft: the leader's pod, as the replicas said it now.
    pub raft_leader: Option<&'a str>,
    pub now: Timestamp,
}

/// How many faults of this kind the operator has made so far.
pub(super) fn count(status: &WordCountJobStatus, kind: FaultKind) -> usize {
    status.faults.iter().filter(|f| f.kind == kind).count()
}

/// Records a fault the operator made in the status, and announces it with
/// a Warning Event.
pub(super) async fn record(
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
