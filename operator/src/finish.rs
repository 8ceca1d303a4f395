//! A finished job lets go: the pods that still run or wait are stopped
//! (Redis scaled to zero, the batch Jobs that have not finished suspended),
//! a partition is lifted, and the status, Events and Redis' data volume stay
//! until the job is deleted, by someone or by `ttlSecondsAfterFinished`.
//! A job whose output could not be written is not finished (`status`): its
//! Redis holds the counts a driver run again writes out, so it stays up.

use crate::{
    context::{apply, Context, Error, Result},
    crd::{WordCountJob, WordCountJobStatus},
    resources::{self, network_policy},
    status,
};
use k8s_openapi::{
    api::{apps::v1::StatefulSet, batch::v1::Job},
    jiff::Timestamp,
};
use kube::{
    api::{DeleteParams, PropagationPolicy},
    runtime::controller::Action,
    Api, ResourceExt,
};
use std::time::Duration;
use tracing::info;

/// How often a finished job is looked at again (sooner when its TTL is
/// due): it only has to let go of what still runs.
pub(crate) const POLL_FINISHED: Duration = Duration::from_secs(300);

/// What a reconcile of a finished job does.
pub async fn finished(
    ctx: &Context,
    job: &WordCountJob,
    status: &WordCountJobStatus,
) -> Result<Action> {
    let ns = job.namespace().ok_or(Error::NoNamespace)?;
    let_go_or_delete(ctx, job, status, &ns)
        .await
        .map_err(|e| Error::Finish {
            source: Box::new(e),
        })
}

/// Deletes a job whose TTL is over, else stops what of it still runs.
async fn let_go_or_delete(
    ctx: &Context,
    job: &WordCountJob,
    status: &WordCountJobStatus,
    ns: &str,
) -> Result<Action> {
    let left = ttl_left(
        job.spec.ttl_seconds_after_finished,
        status::finished_at(status),
        Timestamp::now(),
    );
    if left == Some(Duration::ZERO) {
        let jobs: Api<WordCountJob> = Api::namespaced(ctx.client.clone(), ns);
        let params = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..DeleteParams::default()
        };
        match jobs.delete(&job.name_any(), &params).await {
            Ok(_) => info!("ttlSecondsAfterFinished passed: deleted the job"),
            Err(kube::Error::Api(s)) if s.is_not_found() => {}
            Err(source) => {
                return Err(Error::DeleteResource {
                    kind: "WordCountJob".into(),
                    name: job.name_any(),
                    source,
                })
            }
        }
        return Ok(Action::await_change());
    }
    let_go(ctx, job, ns).await?;
    Ok(Action::requeue(
        left.map_or(POLL_FINISHED, |l| l.min(POLL_FINISHED)),
    ))
}

/// Time until a job that finished at `finished` is deleted, if it has a TTL:
/// zero once it is due.
pub fn ttl_left(ttl: Option<i32>, finished: Option<Timestamp>, now: Timestamp) -> Option<Duration> {
    let ttl = Duration::from_secs(u64::try_from(ttl?).ok()?);
    let due = finished?.checked_add(ttl).ok()?;
    Some(now.duration_until(due).try_into().unwrap_or(Duration::ZERO))
}

/// Stops whatever of the job still runs or waits; idempotent.
async fn let_go(ctx: &Context, job: &WordCountJob, ns: &str) -> Result<()> {
    // Redis to zero: one, or RedisRaft's replicas; none was made for a job
    // that could not run.
    if job.spec.raft_replicas().is_some() {
        let sets: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), ns);
        let stopped = resources::redis_raft::stateful_set(job, true);
        let name = stopped.name_any();
        let current = sets
            .get_opt(&name)
            .await
            .map_err(|source| Error::GetResource {
                kind: "StatefulSet".into(),
                name: name.clone(),
                source,
            })?;
        if current.is_some() {
            apply(ctx, ns, &stopped).await?;
        }
    } else {
        for site in resources::sites(job) {
            apply(ctx, ns, &resources::redis::deployment(job, site, true)).await?;
        }
    }
    let batch: Api<Job> = Api::namespaced(ctx.client.clone(), ns);
    let sites = resources::sites(job);
    let stopped = sites.iter().flat_map(|&site| {
        [
            resources::driver::job(job, site, true),
            resources::workers::job(job, site, true),
        ]
    });
    for stopped in stopped {
        // A Job that finished by itself has no pod left to stop.
        let name = stopped.name_any();
        let current = batch
            .get_opt(&name)
            .await
            .map_err(|source| Error::GetResource {
                kind: "Job".into(),
                name: name.clone(),
                source,
            })?;
        match current {
            Some(current) if !job_finished(&current) && !suspended(&current) => {
                apply(ctx, ns, &stopped).await?;
                info!(batch_job = %stopped.name_any(), "suspended: the job is over");
            }
            _ => {}
        }
    }
    for site in sites {
        let open = network_policy::redis_ingress(job, site, &ctx.operator_pods, None);
        apply(ctx, ns, &open).await?;
    }
    Ok(())
}

fn job_finished(job: &Job) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        })
}

fn suspended(job: &Job) -> bool {
    job.spec.as_ref().and_then(|s| s.suspend) == Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn ttl_counts_from_the_finish() {
        let done = Some(t("2025-01-01T00:00:00Z"));
        let at = |s: &str| ttl_left(Some(60), done, t(s));
        assert_eq!(at("2025-01-01T00:00:20Z"), Some(Duration::from_secs(40)));
        assert_eq!(at("2025-01-01T00:01:00Z"), Some(Duration::ZERO));
        assert_eq!(at("2025-01-01T01:00:00Z"), Some(Duration::ZERO));
        // Zero: deleted as soon as it finishes.
        assert_eq!(
            ttl_left(Some(0), done, t("2025-01-01T00:00:00Z")),
            Some(Duration::ZERO)
        );
        // No TTL, or no finish: kept.
        assert_eq!(ttl_left(None, done, t("2025-01-01T01:00:00Z")), None);
        assert_eq!(ttl_left(Some(60), None, t("2025-01-01T01:00:00Z")), None);
    }
}
