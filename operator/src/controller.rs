//! The reconciler of `WordCountJob`s.
//!
//! Each reconcile, top to bottom: apply every child (server-side apply of
//! what the builders in `resources` say), observe the batch Jobs, the pods
//! and Redis, inject a scheduled fault if one is due, derive the status and
//! write it, and emit Events for what changed.

use crate::{
    chaos,
    crd::{FaultKind, InjectedFault, Phase, PodKills, WordCountJob, WordCountJobStatus},
    metrics::{ErrorLabels, Metrics, PhaseLabels, TargetLabels},
    pods,
    progress::{Endpoint, ProgressReader},
    resources::{self, Names, LABEL_JOB, MANAGER, PASSWORD_KEY, PREFIX, REDIS_PORT},
    status::{self, Observed},
};
use futures::{stream::BoxStream, StreamExt};
use k8s_openapi::{
    api::{
        apps::v1::Deployment,
        batch::v1::Job,
        core::v1::{Event as CoreEvent, Pod, Secret},
        networking::v1::NetworkPolicy,
    },
    apimachinery::pkg::apis::meta::v1::Time,
    jiff::Timestamp,
    NamespaceResourceScope,
};
use kube::{
    api::{DeleteParams, ListParams, Patch, PatchParams},
    runtime::{
        controller::{self, Action},
        events::{Event, EventType, Recorder},
        watcher, Controller,
    },
    Api, Client, Resource, ResourceExt,
};
use serde::{de::DeserializeOwned, Serialize};
use std::{fmt::Debug, sync::Arc, time::Duration};
use tracing::{info, warn};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("the job has no namespace")]
    NoNamespace,
}

impl Error {
    /// A short label for metrics.
    pub fn kind(&self) -> String {
        match self {
            Error::Kube(kube::Error::Api(s)) => format!("api_{}", s.code),
            Error::Kube(_) => "kube".into(),
            Error::NoNamespace => "no_namespace".into(),
        }
    }
}

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub progress: Arc<dyn ProgressReader>,
    pub metrics: Arc<Metrics>,
    /// Images for jobs whose spec names none.
    pub job_image: String,
    pub redis_image: Option<String>,
}

impl Context {
    pub fn new(client: Client, progress: Arc<dyn ProgressReader>, metrics: Arc<Metrics>) -> Self {
        Self {
            recorder: Recorder::new(client.clone(), MANAGER.into()),
            client,
            progress,
            metrics,
            job_image: crate::crd::DEFAULT_IMAGE.into(),
            redis_image: None,
        }
    }

    pub fn with_images(mut self, job_image: String, redis_image: Option<String>) -> Self {
        self.job_image = job_image;
        self.redis_image = redis_image;
        self
    }
}

/// How often to look again while a job runs; pods and Jobs changing also
/// trigger a reconcile, but Redis progress does not.
const POLL_RUNNING: Duration = Duration::from_secs(5);
const POLL_REDIS_DOWN: Duration = Duration::from_secs(10);
const POLL_FINISHED: Duration = Duration::from_secs(300);
/// While a partition is in force: how often worker connections that got
/// through are ended.
const PARTITION_POLL: Duration = Duration::from_secs(1);

pub async fn reconcile(job: Arc<WordCountJob>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    ctx.metrics.reconciles.inc();
    let result = reconcile_job(&job, &ctx).await;
    ctx.metrics
        .reconcile_duration
        .observe(started.elapsed().as_secs_f64());
    result
}

async fn reconcile_job(job: &WordCountJob, ctx: &Context) -> Result<Action, Error> {
    let ns = job.namespace().ok_or(Error::NoNamespace)?;
    let name = job.name_any();
    let jobs: Api<WordCountJob> = Api::namespaced(ctx.client.clone(), &ns);
    // The watch cache may lag our own last status write; decisions below
    // (kills done, phase changes) need the latest.
    let Some(mut job) = jobs.get_opt(&name).await? else {
        return Ok(Action::await_change());
    };
    if job.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    job.spec = job
        .spec
        .with_default_images(&ctx.job_image, ctx.redis_image.as_deref());

    // 1. The children, in the order they are needed.
    let password = redis_password(ctx, &ns, &job).await?;
    apply(ctx, &ns, &resources::redis::secret(&job, &password)).await?;
    apply(ctx, &ns, &resources::redis::data_claim(&job)).await?;
    let redis_deployment = apply(ctx, &ns, &resources::redis::deployment(&job)).await?;
    apply(ctx, &ns, &resources::redis::service(&job)).await?;
    if let Some(claim) = resources::input::claim(&job) {
        apply(ctx, &ns, &claim).await?;
    }
    let driver = apply(ctx, &ns, &resources::driver::job(&job)).await?;
    let workers = apply(ctx, &ns, &resources::workers::job(&job)).await?;

    // 2. What the pods and Redis say.
    let pods = list_pods(ctx, &ns, &job).await?;
    let endpoint = Endpoint {
        // The Service's name in the cluster DNS: the operator runs in
        // another namespace than the job.
        host: format!("{}.{ns}.svc", Names::of(&job).redis),
        port: REDIS_PORT as u16,
        password,
        prefix: PREFIX.into(),
    };
    let progress = ctx.progress.read(&endpoint).await;
    if progress.is_err() {
        ctx.metrics.redis_unreachable.inc();
    }
    let previous = job.status.clone().unwrap_or_default();
    let mut observed = Observed {
        redis_deployment: Some(redis_deployment),
        driver: Some(driver),
        workers: Some(workers),
        progress: Some(progress),
        input_error: input_error(ctx, &ns, &pods).await?,
        driver_error: pods::driver_error(&pods),
        injected: previous
            .faults
            .iter()
            .filter(|f| matches!(f.kind, FaultKind::PodKill | FaultKind::Partition))
            .cloned()
            .collect(),
    };

    // 3. Chaos: kill a pod if one is due (only while the job runs).
    let now = Timestamp::now();
    let mut status = status::derive(&job, &observed, now);
    let next_kill = match (
        status.phase,
        job.spec.pod_kills(),
        status.start_time.clone(),
    ) {
        (Some(Phase::Running), Some(kills), Some(start)) => {
            let done = injected_count(&observed, FaultKind::PodKill);
            match chaos::next(kills, start.0, done, now) {
                chaos::Next::Kill => {
                    if let Some(killed) = kill_pod(ctx, &job, &pods, kills, done).await? {
                        observed.injected.push(killed);
                        status = status::derive(&job, &observed, now);
                    }
                    Some(Duration::from_secs(1))
                }
                chaos::Next::Wait(d) => Some(d),
                chaos::Next::Done => None,
            }
        }
        _ => None,
    };

    // 3b. Partitions: while one is in force its NetworkPolicy exists, and
    // the workers' connections to Redis are ended on every reconcile (one
    // may get through before the policy takes effect). Lifted otherwise.
    let cut = match (status.phase, status.start_time.clone()) {
        (Some(Phase::Running), Some(start)) => chaos::cut(job.spec.partitions(), start.0, now),
        _ => chaos::Cut::default(),
    };
    if !job.spec.partitions().is_empty() {
        if let Some(record) = partition(ctx, &job, &endpoint, &pods, &observed, cut.active).await? {
            observed.injected.push(record);
            status = status::derive(&job, &observed, now);
        }
    }
    let next_cut = match cut.active {
        Some(_) => Some(PARTITION_POLL),
        None => cut.next_change,
    };
    let next_fault = [next_kill, next_cut].into_iter().flatten().min();

    // 4. Events for what changed, then the status.
    publish_changes(ctx, &job, &previous, &status).await;
    let patch = Patch::Apply(serde_json::json!({
        "apiVersion": WordCountJob::api_version(&()),
        "kind": WordCountJob::kind(&()),
        "status": status,
    }));
    jobs.patch_status(&name, &PatchParams::apply(MANAGER).force(), &patch)
        .await?;

    // 5. When to look again.
    Ok(Action::requeue(requeue_after(&status, next_fault)))
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

fn requeue_after(status: &WordCountJobStatus, next_fault: Option<Duration>) -> Duration {
    let redis_down = status::find(status, status::READY).is_some_and(|c| c.status != "True");
    let poll = match status.phase {
        Some(p) if p.is_terminal() => POLL_FINISHED,
        _ if redis_down => POLL_REDIS_DOWN,
        _ => POLL_RUNNING,
    };
    next_fault.map_or(poll, |k| poll.min(k.max(Duration::from_millis(200))))
}

/// Server-side apply of a desired child; returns it as stored (with status).
async fn apply<K>(ctx: &Context, ns: &str, obj: &K) -> Result<K, Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), ns);
    let params = PatchParams::apply(MANAGER).force();
    Ok(api
        .patch(&obj.name_any(), &params, &Patch::Apply(obj))
        .await?)
}

/// The job's Redis password: the one in its Secret, or a new one the first
/// time. Never changed once set, or Redis and its clients would disagree.
async fn redis_password(ctx: &Context, ns: &str, job: &WordCountJob) -> Result<String, Error> {
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let existing = secrets.get_opt(&Names::of(job).secret).await?;
    let stored = existing
        .and_then(|s| s.data)
        .and_then(|d| d.get(PASSWORD_KEY).cloned())
        .and_then(|b| String::from_utf8(b.0).ok())
        .filter(|p| !p.is_empty());
    Ok(stored.unwrap_or_else(resources::redis::new_password))
}

async fn list_pods(ctx: &Context, ns: &str, job: &WordCountJob) -> Result<Vec<Pod>, Error> {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let selector = format!("{LABEL_JOB}={}", job.name_any());
    Ok(api
        .list(&ListParams::default().labels(&selector))
        .await?
        .items)
}

/// Why the input can never be mounted, if a pod says so: a missing claim
/// (the scheduler's condition) or a hostPath that is not a directory (a
/// kubelet event, looked up only for pods stuck before their containers start).
async fn input_error(ctx: &Context, ns: &str, pods: &[Pod]) -> Result<Option<String>, Error> {
    if let Some(msg) = pods::missing_claim(pods) {
        return Ok(Some(msg));
    }
    let events: Api<CoreEvent> = Api::namespaced(ctx.client.clone(), ns);
    for pod in pods::stuck_creating(pods) {
        let fields = format!(
            "involvedObject.kind=Pod,involvedObject.name={},reason=FailedMount",
            pod.name_any()
        );
        let found = events.list(&ListParams::default().fields(&fields)).await?;
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

/// Deletes one random running pod of the target; returns the record of it.
async fn kill_pod(
    ctx: &Context,
    job: &WordCountJob,
    pods: &[Pod],
    kills: &PodKills,
    done: usize,
) -> Result<Option<InjectedFault>, Error> {
    let target = kills.target.as_str();
    let candidates = chaos::candidates(pods, kills.target);
    let Some(victim) = chaos::pick(&candidates) else {
        info!(job = %job.name_any(), target, "pod kill due, but no running pod to kill");
        return Ok(None);
    };
    let pod_name = victim.name_any();
    let ns = victim.namespace().ok_or(Error::NoNamespace)?;
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    match api.delete(&pod_name, &DeleteParams::default()).await {
        Ok(_) => {}
        // Gone meanwhile: no kill happened, try again on the next reconcile.
        Err(kube::Error::Api(s)) if s.is_not_found() => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    ctx.metrics
        .pod_kills
        .get_or_create(&TargetLabels {
            target: target.into(),
        })
        .inc();
    info!(job = %job.name_any(), pod = %pod_name, "chaos: deleted pod");
    let note = format!(
        "deleted {target} pod {pod_name} (kill {} of {})",
        done + 1,
        kills.max_kills
    );
    Ok(Some(
        injected(ctx, job, FaultKind::PodKill, pod_name, "PodKilled", note).await,
    ))
}

/// The record of a fault the operator made, announced by a Warning Event.
async fn injected(
    ctx: &Context,
    job: &WordCountJob,
    kind: FaultKind,
    target: String,
    reason: &str,
    note: String,
) -> InjectedFault {
    publish(ctx, job, EventType::Warning, reason, "InjectFault", note).await;
    InjectedFault {
        kind,
        target,
        time: Time(Timestamp::now()),
    }
}

/// How many faults of this kind the operator has made so far.
fn injected_count(observed: &Observed, kind: FaultKind) -> usize {
    observed.injected.iter().filter(|f| f.kind == kind).count()
}

/// Puts partition `active` (or none) in force: applies or deletes the
/// NetworkPolicy, and ends the workers' Redis connections while it is in
/// force. Returns the record of a partition that starts now.
async fn partition(
    ctx: &Context,
    job: &WordCountJob,
    endpoint: &Endpoint,
    pods: &[Pod],
    observed: &Observed,
    active: Option<usize>,
) -> Result<Option<InjectedFault>, Error> {
    let ns = job.namespace().ok_or(Error::NoNamespace)?;
    let policies: Api<NetworkPolicy> = Api::namespaced(ctx.client.clone(), &ns);
    let name = Names::of(job).partition;
    let Some(index) = active else {
        if policies.get_opt(&name).await?.is_some() {
            policies.delete(&name, &DeleteParams::default()).await?;
            info!(job = %job.name_any(), "chaos: partition lifted");
            let note = "workers can reach Redis again".to_string();
            publish(
                ctx,
                job,
                EventType::Normal,
                "PartitionLifted",
                "InjectFault",
                note,
            )
            .await;
        }
        return Ok(None);
    };
    apply(ctx, &ns, &resources::partition::network_policy(job)).await?;
    let ips = chaos::worker_ips(pods);
    let ended = match ctx.progress.end_clients(endpoint, &ips).await {
        Ok(n) => n,
        Err(e) => {
            warn!(job = %job.name_any(), error = %e, "partition: could not end the workers' connections");
            0
        }
    };
    if injected_count(observed, FaultKind::Partition) > index {
        if ended > 0 {
            info!(job = %job.name_any(), ended, "partition: ended worker connections that got through");
        }
        return Ok(None);
    }
    info!(job = %job.name_any(), policy = %name, ended, "chaos: partition");
    let note = format!(
        "cut the workers off from Redis with NetworkPolicy {name} (partition {} of {}); ended {ended} open connections",
        index + 1,
        job.spec.partitions().len()
    );
    Ok(Some(
        injected(ctx, job, FaultKind::Partition, name, "Partitioned", note).await,
    ))
}

/// Events for a phase change and for crash faults seen for the first time.
async fn publish_changes(
    ctx: &Context,
    job: &WordCountJob,
    previous: &WordCountJobStatus,
    now: &WordCountJobStatus,
) {
    if let Some(phase) = now.phase.filter(|p| previous.phase != Some(*p)) {
        ctx.metrics
            .phase_transitions
            .get_or_create(&PhaseLabels {
                phase: phase.as_str().into(),
            })
            .inc();
        let type_ = if phase == Phase::Failed {
            EventType::Warning
        } else {
            EventType::Normal
        };
        let note = now.message.clone().unwrap_or_default();
        publish(ctx, job, type_, phase.as_str(), "Reconcile", note).await;
    }
    for fault in now.faults.iter().filter(|f| f.kind == FaultKind::Crash) {
        if !previous.faults.contains(fault) {
            let note = format!("crash fault {} fired", fault.target);
            publish(
                ctx,
                job,
                EventType::Warning,
                "FaultInjected",
                "InjectFault",
                note,
            )
            .await;
        }
    }
}

/// Events are for people watching; failing to write one must not fail the reconcile.
async fn publish(
    ctx: &Context,
    job: &WordCountJob,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(truncate(note, 1024)),
        action: action.into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &job.object_ref(&())).await {
        warn!(job = %job.name_any(), reason, error = %e, "could not publish event");
    }
}

/// At most `max` bytes, cut at a character boundary: the API server refuses
/// Event notes over 1 kB.
fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
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
            let (jobs, batch, deployments) = match &ns {
                Some(ns) => (
                    Api::<WordCountJob>::namespaced(client.clone(), ns),
                    Api::<Job>::namespaced(client.clone(), ns),
                    Api::<Deployment>::namespaced(client.clone(), ns),
                ),
                None => (
                    Api::all(client.clone()),
                    Api::all(client.clone()),
                    Api::all(client.clone()),
                ),
            };
            Controller::new(jobs, watcher::Config::default())
                .owns(batch, children.clone())
                .owns(deployments, children.clone())
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
