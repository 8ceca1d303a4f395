//! The reconciler of `WordCountJob`s.
//!
//! Each reconcile, top to bottom: apply every child (server-side apply of
//! what the builders in `resources` say), observe the batch Jobs, the pods
//! and Redis once, derive the status from that observation, let the chaos
//! faults that are due act (they record themselves in the status), emit
//! Events for what changed and write the status. A finished job only lets
//! go (`finish`). This only orchestrates: what the steps share (`Context`,
//! `Error`, `apply`) is in `context`, below them all.

use crate::{
    autoscale, chaos,
    context::{apply, Context, Error, Result},
    crd::{FaultKind, Phase, WordCountJob, WordCountJobStatus},
    events, finish,
    metrics::ErrorLabels,
    pods,
    redis::Endpoint,
    resources::{self, Names, LABEL_JOB, MANAGER, PASSWORD_KEY, REDIS_PORT},
    status::{self, Observed},
};
use futures::{stream::BoxStream, StreamExt};
use k8s_openapi::{
    api::{
        apps::v1::{Deployment, StatefulSet},
        batch::v1::Job,
        core::v1::{Event as CoreEvent, Pod, Secret},
    },
    jiff::Timestamp,
};
use kube::{
    api::{ListParams, Patch, PatchParams},
    runtime::{
        controller::{self, Action},
        watcher, Controller,
    },
    Api, Client, Resource, ResourceExt,
};
use std::{sync::Arc, time::Duration};
use tracing::{instrument, warn, Span};
use wordcount_protocol::DEFAULT_PREFIX;

/// How often to look again while a job runs; pods and Jobs changing also
/// trigger a reconcile, but Redis progress does not.
const POLL_RUNNING: Duration = Duration::from_secs(5);
/// A stream's figures (latency, throttling) change by the second.
const POLL_STREAM: Duration = Duration::from_secs(2);
const POLL_REDIS_DOWN: Duration = Duration::from_secs(10);

/// The reconcile of one job; its span names the job, so logs inside do not.
#[instrument(skip(job, ctx), fields(name, namespace, generation))]
pub async fn reconcile(job: Arc<WordCountJob>, ctx: Arc<Context>) -> Result<Action> {
    let span = Span::current();
    span.record("name", job.name_any());
    if let Some(ns) = job.namespace() {
        span.record("namespace", ns);
    }
    if let Some(generation) = job.metadata.generation {
        span.record("generation", generation);
    }
    let started = std::time::Instant::now();
    ctx.metrics.reconciles.inc();
    let result = reconcile_job(&job, &ctx).await;
    ctx.metrics
        .reconcile_duration
        .observe(started.elapsed().as_secs_f64());
    result
}

async fn reconcile_job(job: &WordCountJob, ctx: &Context) -> Result<Action> {
    let ns = job.namespace().ok_or(Error::NoNamespace)?;
    let name = job.name_any();
    let jobs: Api<WordCountJob> = Api::namespaced(ctx.client.clone(), &ns);
    // The watch cache may lag our own last status write; decisions below
    // (kills done, phase changes) need the latest.
    let found = jobs.get_opt(&name).await.map_err(|source| Error::GetJob {
        name: name.clone(),
        source,
    })?;
    let Some(mut job) = found else {
        return Ok(Action::await_change());
    };
    if job.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    job.spec = job.spec.with_default_images(
        &ctx.job_image,
        ctx.redis_image.as_deref(),
        ctx.redisraft_image.as_deref(),
    );
    let previous = job.status.clone().unwrap_or_default();
    // A finished job's status is final; it only lets go of its pods.
    if previous.phase.is_some_and(Phase::is_terminal) {
        ctx.view(&job, None, &previous).await;
        return finish::finished(ctx, &job, &previous).await;
    }

    // 1. The children, in the order they are needed; none for a job that
    // cannot run as its spec says (its status says why).
    let runnable = job.spec.unrunnable().is_none();
    let children = if runnable {
        Some(apply_children(ctx, &ns, &job).await?)
    } else {
        None
    };

    // 2. One observation: the Jobs, the pods and Redis.
    let pods = list_pods(ctx, &ns, &job).await?;
    let endpoint = endpoint(
        &job,
        &ns,
        children
            .as_ref()
            .and_then(|c| c.password.clone())
            .unwrap_or_default(),
    );
    let progress = if runnable {
        Some(ctx.progress.read(&endpoint).await)
    } else {
        None
    };
    if progress.as_ref().is_some_and(Result::is_err) {
        ctx.metrics.redis_unreachable.inc();
    }
    let raft_leader = progress
        .as_ref()
        .and_then(|p| p.as_ref().ok())
        .and_then(|p| p.raft.as_ref())
        .map(|r| resources::redis_raft::pod_of(&r.leader).to_string());
    let children = children.unwrap_or_default();
    let observed = Observed {
        redis_deployments: children.redis_deployments,
        redis_stateful_set: children.redis_stateful_set,
        drivers: children.drivers,
        workers: children.workers,
        progress,
        input_error: input_error(ctx, &ns, &job, &pods).await?,
        driver_error: pods::driver_error(&pods),
        driver_exit_code: pods::driver_exit_code(&pods),
        pod_config_error: pods::config_error(&pods),
        injected: previous
            .faults
            .iter()
            .filter(|f| matches!(f.kind, FaultKind::PodKill | FaultKind::Partition))
            .cloned()
            .collect(),
    };

    // 3. The status, derived once from it.
    let now = Timestamp::now();
    let mut status = status::derive(&job, &observed, now);

    // 3b. A stream's workers follow its lag, as Redis says it now.
    let lag = match &observed.progress {
        Some(Ok(p)) => p.stream.as_ref().map(|s| s.lag),
        _ => None,
    };
    autoscale::run(ctx, &ns, &job, lag, &mut status, now).await?;

    // 4. Chaos that is due while the job runs; the standing NetworkPolicy.
    let scene = chaos::Scene {
        pods: &pods,
        redis: &endpoint,
        raft_leader: raft_leader.as_deref(),
        now,
    };
    let next_fault = chaos::inject(ctx, &job, &scene, &mut status).await?;

    // 5. Events for what changed, then the status (and the live view).
    events::changes(ctx, &job, &previous, &status).await;
    match write_status(&jobs, &name, &status).await {
        // Deleted while this reconcile ran: there is nothing left to do.
        Err(Error::PatchStatus {
            source: kube::Error::Api(s),
        }) if s.is_not_found() => return Ok(Action::await_change()),
        r => r?,
    }
    ctx.view(&job, Some(&endpoint), &status).await;

    // 6. When to look again; a job that has just finished lets go now.
    if status.phase.is_some_and(Phase::is_terminal) {
        return finish::finished(ctx, &job, &status).await;
    }
    Ok(Action::requeue(requeue_after(&job, &status, next_fault)))
}

/// The children as applied (with their status), for the observation.
#[derive(Default)]
struct Children {
    /// One Redis' password (every Crdt instance's); RedisRaft has none.
    password: Option<String>,
    redis_deployments: Vec<Deployment>,
    redis_stateful_set: Option<StatefulSet>,
    drivers: Vec<Job>,
    workers: Vec<Job>,
}

/// Applies every child, in the order they are needed: Redis (one, with its
/// password and volume, RedisRaft's replicas, or one a Crdt site), the
/// input, the drivers and the workers (one of each a site).
async fn apply_children(ctx: &Context, ns: &str, job: &WordCountJob) -> Result<Children> {
    let mut children = Children::default();
    let sites = resources::sites(job);
    if job.spec.raft_replicas().is_some() {
        use resources::redis_raft;
        apply(ctx, ns, &redis_raft::service(job)).await?;
        children.redis_stateful_set =
            Some(apply(ctx, ns, &redis_raft::stateful_set(job, false)).await?);
    } else {
        use resources::redis;
        let password = redis_password(ctx, ns, job).await?;
        apply(ctx, ns, &redis::secret(job, &password)).await?;
        for &site in &sites {
            apply(ctx, ns, &redis::data_claim(job, site)).await?;
            let deployment = apply(ctx, ns, &redis::deployment(job, site, false)).await?;
            children.redis_deployments.push(deployment);
            apply(ctx, ns, &redis::service(job, site)).await?;
        }
        children.password = Some(password);
    }
    if let Some(claim) = resources::input::claim(job) {
        apply(ctx, ns, &claim).await?;
    }
    for &site in &sites {
        let driver = resources::driver::job(job, site, false);
        children.drivers.push(apply(ctx, ns, &driver).await?);
        let workers = resources::workers::job(job, site, false);
        children.workers.push(apply(ctx, ns, &workers).await?);
    }
    Ok(children)
}

/// Where the operator reads the job's Redis: its Service, RedisRaft's
/// replicas or the Crdt instances, by their names in the cluster DNS (the
/// operator runs in another namespace than the job).
fn endpoint(job: &WordCountJob, ns: &str, password: String) -> Endpoint {
    let in_ns = |host: String| format!("{host}.{ns}.svc");
    Endpoint {
        host: in_ns(Names::of_site(job, job.spec.crdt_sites().map(|_| 0)).redis),
        port: REDIS_PORT as u16,
        password,
        prefix: DEFAULT_PREFIX.into(),
        replicas: resources::redis_raft::replica_hosts(job),
        instances: match job.spec.crdt_sites() {
            Some(_) => resources::pod::redis_hosts(job)
                .into_iter()
                .map(in_ns)
                .collect(),
            None => Vec::new(),
        },
    }
}

async fn write_status(
    jobs: &Api<WordCountJob>,
    name: &str,
    status: &WordCountJobStatus,
) -> Result<()> {
    let patch = Patch::Apply(serde_json::json!({
        "apiVersion": WordCountJob::api_version(&()),
        "kind": WordCountJob::kind(&()),
        "status": status,
    }));
    jobs.patch_status(name, &PatchParams::apply(MANAGER).force(), &patch)
        .await
        .map_err(|source| Error::PatchStatus { source })?;
    Ok(())
}

/// Requeue on the operator's side: failures are logged and counted, and the
/// job is tried again soon; nothing is ever given up on.
pub fn error_policy(job: Arc<WordCountJob>, error: &Error, ctx: Arc<Context>) -> Action {
    warn!(job = %job.name_any(), namespace = ?job.namespace(), %error, "reconcile failed");
    ctx.metrics
        .reconcile_errors
        .get_or_create(&ErrorLabels {
            error: error.kind(),
        })
        .inc();
    Action::requeue(Duration::from_secs(10))
}

fn requeue_after(
    job: &WordCountJob,
    status: &WordCountJobStatus,
    next_fault: Option<Duration>,
) -> Duration {
    let redis_down = status::find(status, status::READY).is_some_and(|c| c.status != "True");
    let poll = if redis_down {
        POLL_REDIS_DOWN
    } else if job.spec.stream.is_some() {
        POLL_STREAM
    } else {
        POLL_RUNNING
    };
    next_fault.map_or(poll, |k| poll.min(k.max(Duration::from_millis(200))))
}

/// The job's Redis password: the one in its Secret, or a new one the first
/// time. Never changed once set, or Redis and its clients would disagree.
async fn redis_password(ctx: &Context, ns: &str, job: &WordCountJob) -> Result<String> {
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let secret = Names::of(job).secret;
    let existing = secrets
        .get_opt(&secret)
        .await
        .map_err(|source| Error::ReadPassword { secret, source })?;
    let stored = existing
        .and_then(|s| s.data)
        .and_then(|d| d.get(PASSWORD_KEY).cloned())
        .and_then(|b| String::from_utf8(b.0).ok())
        .filter(|p| !p.is_empty());
    Ok(stored.unwrap_or_else(resources::redis::new_password))
}

async fn list_pods(ctx: &Context, ns: &str, job: &WordCountJob) -> Result<Vec<Pod>> {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let selector = format!("{LABEL_JOB}={}", job.name_any());
    Ok(api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|source| Error::ListPods { source })?
        .items)
}

/// Why the input can never be mounted, if a pod says so: a missing claim
/// (the scheduler's condition) or a hostPath that is not a directory (a
/// kubelet event, looked up only for pods stuck before their containers start).
/// A claim the operator makes itself (a synthetic input) is applied before
/// the Jobs: if the scheduler says it is missing, its cache lags behind for
/// a moment and it tries again, so only a user's claim counts.
async fn input_error(
    ctx: &Context,
    ns: &str,
    job: &WordCountJob,
    pods: &[Pod],
) -> Result<Option<String>> {
    if resources::input::claim(job).is_none() {
        if let Some(msg) = pods::missing_claim(pods) {
            return Ok(Some(msg));
        }
    }
    let events: Api<CoreEvent> = Api::namespaced(ctx.client.clone(), ns);
    for pod in pods::stuck_creating(pods) {
        let fields = format!(
            "involvedObject.kind=Pod,involvedObject.name={},reason=FailedMount",
            pod.name_any()
        );
        let found = events
            .list(&ListParams::default().fields(&fields))
            .await
            .map_err(|source| Error::ListPodEvents {
                pod: pod.name_any(),
                source,
            })?;
        if let Some(msg) = found
            .items
            .iter()
            .filter_map(|e| e.message.as_deref())
            .find(|m| pods::is_permanent_mount_failure(m))
        {
            return Ok(Some(msg.to_string()));
        }
    }
    Ok(None)
}

/// One controller per watched namespace (or one for all), run until a signal.
pub async fn run(client: Client, namespaces: Vec<String>, ctx: Arc<Context>) {
    let children =
        watcher::Config::default().labels(&format!("app.kubernetes.io/managed-by={MANAGER}"));
    let scopes: Vec<Option<String>> = if namespaces.is_empty() {
        vec![None]
    } else {
        namespaces.into_iter().map(Some).collect()
    };
    let streams: Vec<BoxStream<'static, _>> = scopes
        .into_iter()
        .map(|ns| {
            let (jobs, batch, deployments, sets) = match &ns {
                Some(ns) => (
                    Api::<WordCountJob>::namespaced(client.clone(), ns),
                    Api::<Job>::namespaced(client.clone(), ns),
                    Api::<Deployment>::namespaced(client.clone(), ns),
                    Api::<StatefulSet>::namespaced(client.clone(), ns),
                ),
                None => (
                    Api::all(client.clone()),
                    Api::all(client.clone()),
                    Api::all(client.clone()),
                    Api::all(client.clone()),
                ),
            };
            let controller = Controller::new(jobs, watcher::Config::default());
            if let Some(views) = &ctx.views {
                views.watch(controller.store());
            }
            controller
                .owns(batch, children.clone())
                .owns(deployments, children.clone())
                .owns(sets, children.clone())
                .with_config(controller::Config::default().debounce(Duration::from_millis(500)))
                .shutdown_on_signal()
                .run(reconcile, error_policy, ctx.clone())
                .boxed()
        })
        .collect();
    ctx.metrics.ready.set(1);
    futures::stream::select_all(streams)
        .for_each(|result| async move {
            match result {
                Ok((obj, _)) => tracing::debug!(job = %obj.name, "reconciled"),
                Err(e) => warn!(error = %e, "controller"),
            }
        })
        .await;
}

/// Whether the operator can list `WordCountJob`s (the CRD is installed and
/// RBAC allows it), in each namespace it watches.
pub async fn check_access(client: &Client, namespaces: &[String]) -> Result<(), kube::Error> {
    let lp = ListParams::default().limit(1);
    if namespaces.is_empty() {
        Api::<WordCountJob>::all(client.clone()).list(&lp).await?;
    }
    for ns in namespaces {
        Api::<WordCountJob>::namespaced(client.clone(), ns)
            .list(&lp)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "controller_tests.rs"]
mod tests;
