//! The job's status, derived afresh on every reconcile from what the cluster
//! and Redis say now (the batch Jobs, the Redis Deployment, the pods, Redis'
//! keys), never from remembered transitions, so it cannot go stale when a pod
//! dies. Two things are carried over from the previous status, on purpose:
//! the operator's own faults (nothing else records them) and, while Redis
//! cannot be read, the last figures read from it (marked by Ready=False).
//!
//! The phase is decided by one ordered list of rules, so that whichever
//! sign of an outcome is observed first (the driver's summary, its exit
//! code, its Job's condition), the same phase follows, and it never flips.
//! A job whose output could not be written is not over (its counts wait
//! in Redis for a driver that writes it), so it never finishes that way:
//! see `output_unwritten_message`.

use crate::{
    crd::{
        AutoscaleStatus, FaultKind, InjectedFault, InstanceStatus, Latency, Phase, RedisStatus,
        StreamStatus, WordCountJob, WordCountJobStatus, WorkerCounts,
    },
    duration,
    redis::{
        progress::{Progress, StreamFigures},
        ReadError,
    },
    resources::Names,
};
use k8s_openapi::{
    api::{
        apps::v1::{Deployment, StatefulSet},
        batch::v1::Job,
    },
    apimachinery::pkg::apis::meta::v1::{Condition, Time},
    jiff::{SignedDuration, Timestamp},
};
use wordcount_protocol::{exit, OnUnreadable};

pub const READY: &str = "Ready";
pub const PROGRESSING: &str = "Progressing";
pub const COMPLETE: &str = "Complete";
pub const FAILED: &str = "Failed";
/// Reasons of a job whose counts are whole but whose output could not be
/// written: the driver's Job runs the driver again, or has given up.
pub const OUTPUT_RETRYING: &str = "OutputRetrying";
pub const OUTPUT_FAILED: &str = "OutputFailed";

/// Everything the status is derived from, gathered by the controller.
#[derive(Debug, Default)]
pub struct Observed {
    /// One Redis, or a Crdt job's instances, one a site.
    pub redis_deployments: Vec<Deployment>,
    /// RedisRaft's replicas.
    pub redis_stateful_set: Option<StatefulSet>,
    /// The driver's Job, or each Crdt site's.
    pub drivers: Vec<Job>,
    /// The workers' Job, or each Crdt site's.
    pub workers: Vec<Job>,
    /// Redis' keys, or why they could not be read.
    pub progress: Option<Result<Progress, ReadError>>,
    /// Why the input cannot be mounted, when a pod's events say so.
    pub input_error: Option<String>,
    /// The termination message of the last failed driver pod.
    pub driver_error: Option<String>,
    /// The exit code of the driver container of the last failed driver pod.
    pub driver_exit_code: Option<i32>,
    /// Why a driver or worker pod cannot start its containers (a Secret or
    /// a key it names is missing), as the kubelet says.
    pub pod_config_error: Option<String>,
    /// Faults the operator made (pod kills, partitions), including any made
    /// in this reconcile.
    pub injected: Vec<InjectedFault>,
}

/// A Job's condition of the given type, if it is True.
fn job_condition<'a>(
    job: &'a Job,
    type_: &str,
) -> Option<&'a k8s_openapi::api::batch::v1::JobCondition> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_ && c.status == "True")
}

/// The first of `jobs` (a site's Job each) that failed, and how.
fn any_failed(jobs: &[Job]) -> Option<&k8s_openapi::api::batch::v1::JobCondition> {
    jobs.iter().find_map(|j| job_condition(j, "Failed"))
}

/// Whether every one of `jobs` is complete (and there is one).
fn all_complete(jobs: &[Job]) -> bool {
    !jobs.is_empty() && jobs.iter().all(|j| job_condition(j, "Complete").is_some())
}

/// The pods of `jobs`, summed over the sites.
fn job_counts(jobs: &[Job]) -> WorkerCounts {
    let mut counts = WorkerCounts::default();
    for s in jobs.iter().filter_map(|j| j.status.as_ref()) {
        counts.active += s.active.unwrap_or(0);
        counts.ready += s.ready.unwrap_or(0);
        counts.succeeded += s.succeeded.unwrap_or(0);
        counts.failed += s.failed.unwrap_or(0);
    }
    counts
}

/// Redis available (each Crdt instance), or a majority of RedisRaft's
/// replicas ready.
fn redis_available(obs: &Observed) -> bool {
    let one = !obs.redis_deployments.is_empty()
        && obs.redis_deployments.iter().all(|d| {
            d.status
                .as_ref()
                .and_then(|s| s.available_replicas)
                .unwrap_or(0)
                > 0
        });
    let quorum = obs.redis_stateful_set.as_ref().is_some_and(|set| {
        let replicas = set.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
        ready_replicas(set) * 2 > replicas && replicas > 0
    });
    one || quorum
}

fn ready_replicas(set: &StatefulSet) -> i32 {
    set.status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0)
}

/// RedisRaft's replicas as the StatefulSet counts them, and the leader and
/// term as the replicas said them when the keys were read (the last ones
/// read while they cannot be).
fn redis_status(
    job: &WordCountJob,
    obs: &Observed,
    progress: Option<&Progress>,
    previous: &WordCountJobStatus,
) -> Option<RedisStatus> {
    let replicas = job.spec.raft_replicas()?;
    let before = previous.redis.as_ref();
    let (leader, term) = match progress.and_then(|p| p.raft.as_ref()) {
        Some(r) => (
            Some(crate::resources::redis_raft::pod_of(&r.leader).to_string()),
            Some(r.term),
        ),
        None if progress.is_some() => (None, None),
        None => (
            before.and_then(|b| b.leader.clone()),
            before.and_then(|b| b.term),
        ),
    };
    Some(RedisStatus {
        replicas,
        ready_replicas: obs.redis_stateful_set.as_ref().map_or(0, ready_replicas),
        leader,
        term,
    })
}

/// Each Crdt instance as read: what it holds, and whether it holds what
/// every other does, every site being done.
fn instances(p: &Progress) -> Vec<InstanceStatus> {
    let done = p.instances.iter().all(|i| i.site_done);
    (p.instances.iter().enumerate())
        .map(|(n, i)| InstanceStatus {
            instance: n as i32,
            files_known: i.files_known,
            files_repaired: i.files_repaired,
            converged: done && p.instances.iter().all(|o| o.digests == i.digests),
        })
        .collect()
}

fn ms_to_time(ms: i64) -> Option<Time> {
    Timestamp::from_millisecond(ms).ok().map(Time)
}

/// The status for `job` given what was observed, at time `now`: the
/// figures, the faults, Redis and the workers, then the phase decided from
/// them, its times, the conditions and the message.
pub fn derive(job: &WordCountJob, obs: &Observed, now: Timestamp) -> WordCountJobStatus {
    let previous = job.status.clone().unwrap_or_default();
    let progress = match &obs.progress {
        Some(Ok(p)) => Some(p),
        _ => None,
    };
    let redis_error = match &obs.progress {
        Some(Err(e)) => Some(e.to_string()),
        None => Some("Redis has not been read yet".to_string()),
        Some(Ok(_)) => None,
    };

    let mut status = figures(job, progress, &previous);
    status.faults = faults(progress, &previous);
    status.faults.extend(obs.injected.iter().cloned());
    count_faults(&mut status);

    status.redis = redis_status(job, obs, progress, &previous);
    status.workers = (!obs.workers.is_empty()).then_some(job_counts(&obs.workers));
    // The autoscaler's own record, like the operator's faults: carried over.
    status.autoscale = job.spec.autoscale().map(|spec| {
        previous
            .autoscale
            .clone()
            .unwrap_or_else(|| AutoscaleStatus::initial(spec, job.spec.workers))
    });

    let (phase, reason, message) = phase(job, obs, progress, &status);
    status.phase = Some(phase);
    times(&mut status, obs, progress, phase, now);
    status.conditions = conditions(job, &previous, &redis_error, phase, reason, &message, now);

    // The message says what is wrong, else what the job waits for.
    status.message = Some(match (phase, &redis_error) {
        (Phase::Failed, _) => message,
        (Phase::Succeeded, _) => message,
        (_, Some(e)) if progress.is_none() => format!("{message}; {e}"),
        _ => message,
    });
    status
}

/// Figures from Redis, or the last ones read while it cannot be read.
fn figures(
    job: &WordCountJob,
    progress: Option<&Progress>,
    previous: &WordCountJobStatus,
) -> WordCountJobStatus {
    let mut status = WordCountJobStatus {
        observed_generation: job.metadata.generation,
        ..WordCountJobStatus::default()
    };
    match progress {
        Some(p) => {
            status.files_total = p.meta.as_ref().and_then(|m| m.files);
            status.files_done = p.meta.as_ref().map(|_| p.files_done);
            status.files_failed = Some(p.files_failed).filter(|n| *n > 0);
            status.start_time = p
                .meta
                .as_ref()
                .and_then(|m| m.started_ms)
                .and_then(ms_to_time);
            if let Some(s) = &p.summary {
                status.words = Some(s.words);
                status.distinct_words = Some(s.distinct);
                status.top_words = s
                    .top
                    .iter()
                    .take(job.spec.top_n.max(0) as usize)
                    .cloned()
                    .collect();
                status.output = s.output.clone();
            }
            if let Some(f) = &p.stream {
                stream_figures(&mut status, f);
            }
            status.instances = instances(p);
        }
        None => {
            status.latency = previous.latency;
            status.throughput = previous.throughput;
            status.stream = previous.stream.clone();
            status.files_total = previous.files_total;
            status.files_done = previous.files_done;
            status.files_failed = previous.files_failed;
            status.start_time = previous.start_time.clone();
            status.words = previous.words;
            status.distinct_words = previous.distinct_words;
            status.top_words = previous.top_words.clone();
            status.output = previous.output.clone();
            status.instances = previous.instances.clone();
        }
    }
    if let (Some(done), Some(total)) = (status.files_done, status.files_total) {
        status.progress = Some(format!("{done}/{total}"));
    }
    status
}

/// Crashes as Redis recorded them (a straggler's, recorded at its first
/// file, is no crash), else as last read; the operator's own faults are
/// added by the caller.
fn faults(progress: Option<&Progress>, previous: &WordCountJobStatus) -> Vec<InjectedFault> {
    match progress {
        Some(p) => p
            .faults
            .iter()
            .filter(|(spec, _)| {
                spec.parse::<wordcount_protocol::Fault>()
                    .is_ok_and(|f| matches!(f, wordcount_protocol::Fault::Crash { .. }))
            })
            .filter_map(|(spec, ms)| {
                Some(InjectedFault {
                    kind: FaultKind::Crash,
                    target: spec.clone(),
                    time: ms_to_time(*ms)?,
                })
            })
            .collect(),
        None => previous
            .faults
            .iter()
            .filter(|f| f.kind == FaultKind::Crash)
            .cloned()
            .collect(),
    }
}

/// The phase, and the reason and message of its conditions: failure
/// first, then completion, then whether anything runs. `status` has the
/// figures already.
fn phase(
    job: &WordCountJob,
    obs: &Observed,
    progress: Option<&Progress>,
    status: &WordCountJobStatus,
) -> (Phase, &'static str, String) {
    let driver_failed = any_failed(&obs.drivers);
    let workers_failed = any_failed(&obs.workers);
    let driver_complete = all_complete(&obs.drivers);
    let summary = progress.and_then(|p| p.summary.as_ref());
    let unreadable = progress.is_some_and(|p| p.files_failed > 0 || !p.failed.is_empty());
    // The driver exits UNREADABLE (and its pod failure policy fails its Job
    // at once) after writing the summary, so either may be seen first.
    let driver_unreadable = obs.driver_exit_code == Some(exit::UNREADABLE)
        || driver_failed.is_some_and(|c| c.reason.as_deref() == Some("PodFailurePolicy"));
    // Exit OUTPUT comes before the summary, which says where the output
    // went once a driver has written it.
    let output_unwritten =
        obs.driver_exit_code == Some(exit::OUTPUT) && summary.is_none_or(|s| s.output.is_none());
    // With an output, the job's result is the output written.
    let done =
        driver_complete || summary.is_some_and(|s| job.spec.output.is_none() || s.output.is_some());
    if let Some(e) = job.spec.unrunnable() {
        (Phase::Failed, "RedisRaftImageMissing", e)
    } else if let Some(e) = &obs.input_error {
        (
            Phase::Failed,
            "InputUnavailable",
            format!("the input cannot be mounted: {e}"),
        )
    } else if driver_unreadable
        || (summary.is_some() && unreadable && job.spec.on_unreadable == OnUnreadable::Fail)
    {
        let mut message = counted(progress, status);
        if progress.is_none() {
            message = format!(
                "the driver exited with code {}: some files could not be read",
                exit::UNREADABLE
            );
            if let Some(n) = status.files_failed {
                message.push_str(&format!(" ({n} files)"));
            }
        }
        (Phase::Failed, "UnreadableFiles", message)
    } else if output_unwritten {
        let (reason, message) = output_unwritten_message(job, obs, status);
        (Phase::Running, reason, message)
    } else if let Some(c) = driver_failed {
        let why = obs
            .driver_error
            .clone()
            .or_else(|| c.message.clone())
            .unwrap_or_else(|| "no message".into());
        (
            Phase::Failed,
            "DriverFailed",
            format!("the driver failed: {}", why.trim()),
        )
    } else if let Some(c) = workers_failed {
        let why = c.message.clone().unwrap_or_else(|| "no message".into());
        (
            Phase::Failed,
            "WorkersFailed",
            format!("the workers failed: {why}"),
        )
    } else if done {
        let mut message = counted(progress, status);
        if unreadable {
            message.push_str(" (skipped: onUnreadable is Skip)");
        }
        (Phase::Succeeded, "Succeeded", message)
    } else if progress.is_some_and(|p| p.meta.is_some())
        || job_counts(&obs.drivers).ready + job_counts(&obs.workers).ready > 0
    {
        (Phase::Running, "Running", running(job, obs, status))
    } else {
        let mut message = format!("waiting for {}", waiting_for(job, obs));
        if let Some(e) = &obs.pod_config_error {
            message.push_str(&format!("; {e}"));
        }
        (Phase::Pending, "Pending", message)
    }
}

/// The reason and message of a job whose driver could not write the
/// output (exit `OUTPUT`): what the driver said, and how it will be
/// written. It stays Running, so that Redis is kept (a finished job lets
/// it go) and its driver's Job is applied again on every reconcile: the
/// Job retries the driver itself up to its `backoffLimit`
/// (`resources::driver`); once it has given up (Progressing turns False),
/// deleting it makes the operator create it afresh, and its driver writes
/// the output from the counts in Redis.
fn output_unwritten_message(
    job: &WordCountJob,
    obs: &Observed,
    status: &WordCountJobStatus,
) -> (&'static str, String) {
    let why = obs
        .driver_error
        .clone()
        .unwrap_or_else(|| format!("the driver exited with code {}", exit::OUTPUT));
    let files = status
        .progress
        .as_ref()
        .map_or(String::new(), |p| format!(" ({p} files)"));
    let mut message =
        format!("the counts are whole in Redis{files}, but the output could not be written: {why}");
    let given_up: Vec<String> = (obs.drivers.iter())
        .filter(|d| job_condition(d, "Failed").is_some())
        .map(|d| (d.metadata.name.clone()).unwrap_or_else(|| Names::of(job).driver))
        .collect();
    if given_up.is_empty() {
        message.push_str("; the driver's Job runs the driver again to write it");
        return (OUTPUT_RETRYING, message);
    }
    let ns = job.metadata.namespace.as_deref().unwrap_or("default");
    message.push_str(&format!(
        "; the driver's Job gave up: once the cause is fixed, `kubectl delete job -n {ns} {}` \
         and the operator runs the driver again, which writes it (Redis keeps the counts until then)",
        given_up.join(" ")
    ));
    (OUTPUT_FAILED, message)
}

/// What a job that has a result counted, and the files it could not read.
fn counted(progress: Option<&Progress>, status: &WordCountJobStatus) -> String {
    let mut message = match progress.and_then(|p| p.summary.as_ref()) {
        Some(s) => format!(
            "counted {} words ({} distinct) in {} files",
            s.words,
            s.distinct,
            status.files_done.unwrap_or(0)
        ),
        None => "the driver finished".into(),
    };
    if let Some(o) = &status.output {
        message.push_str(&format!(", written to {}", o.location));
    }
    if let Some(p) = progress.filter(|p| p.files_failed > 0 || !p.failed.is_empty()) {
        message.push_str(&failed_files(p));
    }
    message
}

/// How far a running job is: its files, its workers, a Crdt job's
/// instances and a throttled source.
fn running(job: &WordCountJob, obs: &Observed, status: &WordCountJobStatus) -> String {
    let mut message = match &status.progress {
        Some(p) => format!(
            "{p} files committed, {} of {} workers running",
            job_counts(&obs.workers).ready,
            job.workers_now() * job.spec.crdt_sites().unwrap_or(1) as i32
        ),
        None => "the driver is enqueueing".into(),
    };
    if !status.instances.is_empty() {
        let known: Vec<String> = (status.instances.iter())
            .map(|i| i.files_known.to_string())
            .collect();
        message.push_str(&format!("; the instances know {} files", known.join(", ")));
    }
    if let Some(s) = status.stream.as_ref().filter(|s| s.throttled) {
        message.push_str(&format!(
            "; the source is throttled ({} files waiting, {} in flight)",
            s.lag, s.pending
        ));
    }
    message
}

/// What a pending job waits for.
fn waiting_for(job: &WordCountJob, obs: &Observed) -> &'static str {
    if !redis_available(obs) {
        if job.spec.raft_replicas().is_some() {
            "a majority of the RedisRaft replicas to be ready"
        } else if job.spec.crdt_sites().is_some() {
            "every site's Redis to become available"
        } else {
            "Redis to become available"
        }
    } else if input_generating(&obs.drivers, job) {
        "the input to be generated and the driver to start"
    } else {
        "the driver to start"
    }
}

/// Times. Completion: the driver Job's, else the driver's own count of
/// seconds; duration runs to now while the job is not finished.
fn times(
    status: &mut WordCountJobStatus,
    obs: &Observed,
    progress: Option<&Progress>,
    phase: Phase,
    now: Timestamp,
) {
    if phase == Phase::Succeeded {
        let summary = progress.and_then(|p| p.summary.as_ref());
        status.completion_time = driver_complete_time(&obs.drivers).or_else(|| {
            let start = status.start_time.as_ref()?;
            let secs = summary?.seconds;
            start
                .0
                .checked_add(SignedDuration::from_secs_f64(secs))
                .ok()
                .map(Time)
        });
    }
    if let Some(start) = &status.start_time {
        let end = match (&status.completion_time, phase.is_terminal()) {
            (Some(t), _) => Some(t.0),
            (None, false) => Some(now),
            (None, true) => None,
        };
        if let Some(end) = end {
            let d = end.duration_since(start.0).unsigned_abs();
            status.duration = Some(duration::human(d));
        }
    }
}

/// Conditions, keeping the transition time of any that did not change.
fn conditions(
    job: &WordCountJob,
    previous: &WordCountJobStatus,
    redis_error: &Option<String>,
    phase: Phase,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> Vec<Condition> {
    let conditions = [
        match redis_error {
            None => condition(READY, true, "RedisReady", "Redis answers".into()),
            Some(e) => condition(READY, false, "RedisUnreachable", e.clone()),
        },
        // A job waiting for someone to retry its output is not finished,
        // and not progressing either.
        condition(
            PROGRESSING,
            !phase.is_terminal() && reason != OUTPUT_FAILED,
            reason,
            message.into(),
        ),
        condition(COMPLETE, phase == Phase::Succeeded, reason, message.into()),
        condition(FAILED, phase == Phase::Failed, reason, message.into()),
    ];
    conditions
        .into_iter()
        .map(|c| keep_transition_time(c, &previous.conditions, job.metadata.generation, now))
        .collect()
}

/// A stream's figures as the driver last wrote them: the latency once a
/// file has been committed, the throughput, where the source stands.
fn stream_figures(status: &mut WordCountJobStatus, f: &StreamFigures) {
    status.latency = (f.committed > 0).then_some(Latency {
        p50: f.p50_ms,
        p99: f.p99_ms,
    });
    status.throughput = Some(round_to_tenth(f.throughput));
    status.stream = Some(StreamStatus {
        injected: f.injected,
        committed: f.committed,
        lag: f.lag,
        pending: f.pending,
        effective_rate: round_to_tenth(f.effective_rate),
        throttled: f.throttled,
        throttled_ms: f.throttled_ms,
    });
}

/// Rates in the status to a tenth of a file a second: finer is noise, and
/// every change of the status is a write.
fn round_to_tenth(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Adds a fault to the status, in time order, and counts it.
pub fn record(status: &mut WordCountJobStatus, fault: InjectedFault) {
    status.faults.push(fault);
    count_faults(status);
}

fn count_faults(status: &mut WordCountJobStatus) {
    status
        .faults
        .sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.target.cmp(&b.target)));
    status.faults_injected = status.faults.len() as i32;
}

/// When a finished job finished: its completion time, else when its
/// Complete or Failed condition became true.
pub fn finished_at(status: &WordCountJobStatus) -> Option<Timestamp> {
    if !status.phase?.is_terminal() {
        return None;
    }
    status.completion_time.as_ref().map(|t| t.0).or_else(|| {
        [COMPLETE, FAILED]
            .iter()
            .filter_map(|t| find(status, t))
            .find(|c| c.status == "True")
            .map(|c| c.last_transition_time.0)
    })
}

/// "; 2 files could not be read: a.bin: ...; b.bin: ..." (the first few).
fn failed_files(p: &Progress) -> String {
    const SHOWN: usize = 3;
    let n = p.files_failed.max(p.failed.len() as i64);
    let mut out = format!("; {n} files could not be read");
    let reasons: Vec<String> = p
        .failed
        .iter()
        .take(SHOWN)
        .map(|(path, why)| format!("{path}: {why}"))
        .collect();
    if !reasons.is_empty() {
        out.push_str(": ");
        out.push_str(&reasons.join("; "));
    }
    if p.failed.len() > SHOWN {
        out.push_str(&format!("; and {} more", p.failed.len() - SHOWN));
    }
    out
}

fn input_generating(drivers: &[Job], job: &WordCountJob) -> bool {
    matches!(job.spec.input, crate::crd::Input::Synthetic(_)) && job_counts(drivers).active > 0
}

/// When the last driver completed, once all have.
fn driver_complete_time(drivers: &[Job]) -> Option<Time> {
    if !all_complete(drivers) {
        return None;
    }
    drivers
        .iter()
        .map(|d| d.status.as_ref()?.completion_time.clone())
        .collect::<Option<Vec<_>>>()?
        .into_iter()
        .max_by_key(|t| t.0)
}

struct NewCondition {
    type_: &'static str,
    status: bool,
    reason: String,
    message: String,
}

fn condition(type_: &'static str, status: bool, reason: &str, message: String) -> NewCondition {
    NewCondition {
        type_,
        status,
        reason: reason.to_string(),
        message,
    }
}

fn keep_transition_time(
    c: NewCondition,
    previous: &[Condition],
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    let status = if c.status { "True" } else { "False" };
    let since = previous
        .iter()
        .find(|p| p.type_ == c.type_ && p.status == status)
        .map(|p| p.last_transition_time.clone())
        .unwrap_or(Time(now));
    Condition {
        type_: c.type_.to_string(),
        status: status.to_string(),
        reason: c.reason,
        message: c.message,
        observed_generation: generation,
        last_transition_time: since,
    }
}

/// The condition of the given type, if present.
pub fn find<'a>(status: &'a WordCountJobStatus, type_: &str) -> Option<&'a Condition> {
    status.conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        crd::{OutputStatus, WordCount},
        redis::progress::{Meta, Summary},
        resources::fixtures,
    };
    use k8s_openapi::api::{
        apps::v1::DeploymentStatus,
        batch::v1::{JobCondition, JobStatus},
    };
    use std::collections::BTreeMap;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn job_with(status: JobStatus) -> Job {
        Job {
            status: Some(status),
            ..Job::default()
        }
    }

    fn cond(type_: &str, message: &str) -> JobCondition {
        JobCondition {
            type_: type_.into(),
            status: "True".into(),
            message: Some(message.into()),
            ..JobCondition::default()
        }
    }

    fn available_redis() -> Vec<Deployment> {
        vec![Deployment {
            status: Some(DeploymentStatus {
                available_replicas: Some(1),
                ..DeploymentStatus::default()
            }),
            ..Deployment::default()
        }]
    }

    fn unreachable() -> Option<Result<Progress, ReadError>> {
        Some(Err(ReadError::Unreachable {
            addr: "demo-redis.ns1.svc:6379".into(),
            reason: "connection refused".into(),
        }))
    }

    fn running_progress(done: i64) -> Progress {
        Progress {
            meta: Some(Meta {
                files: Some(8),
                enqueue_done: true,
                started_ms: Some(t("2025-01-01T00:00:00Z").as_millisecond()),
            }),
            files_done: done,
            faults: BTreeMap::from([(
                "worker=1,crash=after-read".into(),
                t("2025-01-01T00:00:05Z").as_millisecond(),
            )]),
            ..Progress::default()
        }
    }

    #[test]
    fn fresh_job_without_pods_is_pending_and_not_ready() {
        let job = fixtures::synthetic("demo");
        let obs = Observed {
            drivers: vec![job_with(JobStatus {
                active: Some(1), // pods exist but none runs (no kubelet)
                ..JobStatus::default()
            })],
            workers: vec![job_with(JobStatus::default())],
            progress: unreachable(),
            ..Observed::default()
        };
        let s = derive(&job, &obs, t("2025-01-01T00:00:00Z"));
        assert_eq!(s.phase, Some(Phase::Pending));
        let ready = find(&s, READY).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "RedisUnreachable")
        );
        assert!(ready.message.contains("connection refused"));
        assert_eq!(find(&s, PROGRESSING).unwrap().status, "True");
        assert_eq!(find(&s, COMPLETE).unwrap().status, "False");
        assert_eq!(find(&s, FAILED).unwrap().status, "False");
        assert_eq!(s.observed_generation, Some(1));
        assert!(
            s.message.as_ref().unwrap().contains("waiting for Redis"),
            "{:?}",
            s.message
        );
        assert!(s.progress.is_none() && s.start_time.is_none() && s.duration.is_none());
    }

    #[test]
    fn running_job_reports_progress_faults_and_a_ticking_duration() {
        let job = fixtures::synthetic("demo");
        let obs = Observed {
            redis_deployments: available_redis(),
            workers: vec![job_with(JobStatus {
                active: Some(3),
                ready: Some(2),
                ..JobStatus::default()
            })],
            progress: Some(Ok(running_progress(3))),
            ..Observed::default()
        };
        let s = derive(&job, &obs, t("2025-01-01T00:01:30Z"));
        assert_eq!(s.phase, Some(Phase::Running));
        assert_eq!(s.progress.as_deref(), Some("3/8"));
        assert_eq!((s.files_done, s.files_total), (Some(3), Some(8)));
        assert_eq!(s.duration.as_deref(), Some("1m30s"));
        assert_eq!(s.faults_injected, 1);
        assert_eq!(s.faults[0].kind, FaultKind::Crash);
        assert_eq!(s.workers.unwrap().ready, 2);
        assert_eq!(find(&s, READY).unwrap().status, "True");
    }

    #[test]
    fn summary_means_succeeded_with_top_words_and_completion_time() {
        let mut job = fixtures::synthetic("demo");
        job.spec.top_n = 2;
        let mut p = running_progress(8);
        p.summary = Some(Summary {
            words: 100,
            distinct: 3,
            top: vec![
                WordCount {
                    word: "a".into(),
                    count: 50,
                },
                WordCount {
                    word: "b".into(),
                    count: 30,
                },
                WordCount {
                    word: "c".into(),
                    count: 20,
                },
            ],
            seconds: 42.0,
            output: None,
        });
        let obs = Observed {
            redis_deployments: available_redis(),
            progress: Some(Ok(p)),
            ..Observed::default()
        };
        let s = derive(&job, &obs, t("2025-01-01T01:00:00Z"));
        assert_eq!(s.phase, Some(Phase::Succeeded));
        assert_eq!(s.top_words.len(), 2);
        assert_eq!((s.words, s.distinct_words), (Some(100), Some(3)));
        // No Job completion time: start + the driver's 42 s.
        assert_eq!(
            s.completion_time.as_ref().unwrap().0,
            t("2025-01-01T00:00:42Z")
        );
        assert_eq!(s.duration.as_deref(), Some("42s"));
        assert_eq!(find(&s, COMPLETE).unwrap().status, "True");
        assert_eq!(find(&s, PROGRESSING).unwrap().status, "False");
    }

    /// Redis after a driver that could not read some files: the summary of
    /// the readable ones, and the unreadable ones named.
    fn with_unreadable(n: usize) -> Progress {
        let mut p = running_progress(8 - n as i64);
        p.files_failed = n as i64;
        for i in 0..n {
            p.failed
                .insert(format!("x/{i}.bin"), "Permission denied".into());
        }
        p.summary = Some(Summary {
            words: 10,
            distinct: 2,
            ..Summary::default()
        });
        p
    }

    fn driver_failed_by_policy() -> Job {
        let mut c = cond("Failed", "Container driver for pod ns1/demo-driver-x failed with exit code 3 matching FailJob rule at index 0");
        c.reason = Some("PodFailurePolicy".into());
        job_with(JobStatus {
            conditions: Some(vec![c]),
            failed: Some(1),
            ..JobStatus::default()
        })
    }

    #[test]
    fn unreadable_files_fail_the_job_naming_them_with_the_totals() {
        let job = fixtures::synthetic("demo");
        let obs = Observed {
            progress: Some(Ok(with_unreadable(5))),
            ..Observed::default()
        };
        let s = derive(&job, &obs, t("2025-01-01T00:01:00Z"));
        assert_eq!(s.phase, Some(Phase::Failed));
        assert_eq!(find(&s, FAILED).unwrap().reason, "UnreadableFiles");
        assert_eq!((s.files_failed, s.words), (Some(5), Some(10)));
        assert_eq!(
            s.message.as_deref(),
            Some("counted 10 words (2 distinct) in 3 files; 5 files could not be read: \
                  x/0.bin: Permission denied; x/1.bin: Permission denied; x/2.bin: Permission denied; and 2 more")
        );
    }

    #[test]
    fn skipped_unreadable_files_leave_the_job_succeeded_with_a_warning() {
        let mut job = fixtures::synthetic("demo");
        job.spec.on_unreadable = OnUnreadable::Skip;
        let obs = Observed {
            progress: Some(Ok(with_unreadable(1))),
            ..Observed::default()
        };
        let s = derive(&job, &obs, t("2025-01-01T00:01:00Z"));
        assert_eq!(s.phase, Some(Phase::Succeeded));
        assert_eq!(s.files_failed, Some(1));
        assert_eq!(
            s.message.as_deref(),
            Some("counted 10 words (2 distinct) in 7 files; 1 files could not be read: x/0.bin: Permission denied (skipped: onUnreadable is Skip)")
        );
    }

    #[test]
    fn unreadable_files_mean_failed_whichever_sign_comes_first() {
        let job = fixtures::synthetic("demo");
        let at = t("2025-01-01T00:01:00Z");
        // 1. The summary, the driver still running.
        let summary_first = Observed {
            progress: Some(Ok(with_unreadable(2))),
            ..Observed::default()
        };
        // 2. The driver's exit code, Redis not readable (or not yet read).
        let exit_first = Observed {
            driver_exit_code: Some(exit::UNREADABLE),
            progress: unreachable(),
            ..Observed::default()
        };
        // 3. Its Job failed by the pod failure policy, with the summary.
        let both = Observed {
            drivers: vec![driver_failed_by_policy()],
            driver_exit_code: Some(exit::UNREADABLE),
            driver_error: Some("driver: 2 files could not be read".into()),
            progress: Some(Ok(with_unreadable(2))),
            ..Observed::default()
        };
        // 4. Only the Job's condition (its pod gone).
        let condition_only = Observed {
            drivers: vec![driver_failed_by_policy()],
            progress: unreachable(),
            ..Observed::default()
        };
        for (i, obs) in [summary_first, exit_first, both, condition_only]
            .iter()
            .enumerate()
        {
            let s = derive(&job, obs, at);
            assert_eq!(s.phase, Some(Phase::Failed), "case {}", i + 1);
            assert_eq!(
                find(&s, FAILED).unwrap().reason,
                "UnreadableFiles",
                "case {}",
                i + 1
            );
        }
        // The sequence a cluster shows: summary, then the Job fails. Never
        // Succeeded in between.
        let mut job = job;
        job.status = Some(derive(
            &job,
            &Observed {
                progress: Some(Ok(with_unreadable(2))),
                ..Observed::default()
            },
            at,
        ));
        let later = derive(
            &job,
            &Observed {
                drivers: vec![driver_failed_by_policy()],
                progress: unreachable(),
                ..Observed::default()
            },
            at,
        );
        assert_eq!(later.phase, Some(Phase::Failed));
        assert_eq!(later.files_failed, Some(2));
        assert_eq!(later.words, Some(10));
    }

    #[test]
    fn failed_driver_quotes_its_termination_message() {
        let job = fixtures::synthetic("demo");
        let obs = Observed {
            redis_deployments: available_redis(),
            drivers: vec![job_with(JobStatus {
                conditions: Some(vec![cond(
                    "Failed",
                    "Job has reached the specified backoff limit",
                )]),
                ..JobStatus::default()
            })],
            driver_error: Some("error: input directory /input does not exist\n".into()),
            progress: Some(Ok(Progress::default())),
            ..Observed::default()
        };
        let s = derive(&job, &obs, t("2025-01-01T00:00:00Z"));
        assert_eq!(s.phase, Some(Phase::Failed));
        let failed = find(&s, FAILED).unwrap();
        assert_eq!(
            (failed.status.as_str(), failed.reason.as_str()),
            ("True", "DriverFailed")
        );
        assert_eq!(
            s.message.as_deref(),
            Some("the driver failed: error: input directory /input does not exist")
        );
    }

    #[test]
    fn input_that_cannot_mount_fails_the_job() {
        let job = fixtures::synthetic("demo");
        let obs = Observed {
            input_error: Some("hostPath type check failed: /data/nope is not a directory".into()),
            progress: unreachable(),
            ..Observed::default()
        };
        let s = derive(&job, &obs, t("2025-01-01T00:00:00Z"));
        assert_eq!(s.phase, Some(Phase::Failed));
        assert_eq!(find(&s, FAILED).unwrap().reason, "InputUnavailable");
    }

    #[test]
    fn unreachable_redis_keeps_the_last_figures_but_says_so() {
        let mut job = fixtures::synthetic("demo");
        let before = derive(
            &job,
            &Observed {
                redis_deployments: available_redis(),
                workers: vec![job_with(JobStatus {
                    ready: Some(3),
                    ..JobStatus::default()
                })],
                progress: Some(Ok(running_progress(5))),
                ..Observed::default()
            },
            t("2025-01-01T00:00:10Z"),
        );
        job.status = Some(before.clone());
        // Redis pod deleted: the workers still run, Redis does not answer.
        let after = derive(
            &job,
            &Observed {
                workers: vec![job_with(JobStatus {
                    ready: Some(3),
                    ..JobStatus::default()
                })],
                progress: unreachable(),
                ..Observed::default()
            },
            t("2025-01-01T00:00:20Z"),
        );
        assert_eq!(after.phase, Some(Phase::Running));
        assert_eq!(after.progress.as_deref(), Some("5/8"));
        assert_eq!(after.faults, before.faults);
        assert_eq!(find(&after, READY).unwrap().status, "False");
        assert!(after.message.unwrap().contains("cannot reach Redis"));
    }

    #[test]
    fn transition_times_change_only_with_the_status() {
        let mut job = fixtures::synthetic("demo");
        let obs = Observed {
            progress: unreachable(),
            ..Observed::default()
        };
        let first = derive(&job, &obs, t("2025-01-01T00:00:00Z"));
        job.status = Some(first);
        let second = derive(&job, &obs, t("2025-01-01T00:05:00Z"));
        assert_eq!(
            find(&second, READY).unwrap().last_transition_time.0,
            t("2025-01-01T00:00:00Z")
        );
        job.status = Some(second);
        let obs = Observed {
            redis_deployments: available_redis(),
            progress: Some(Ok(Progress::default())),
            ..Observed::default()
        };
        let third = derive(&job, &obs, t("2025-01-01T00:06:00Z"));
        let ready = find(&third, READY).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.last_transition_time.0),
            ("True", t("2025-01-01T00:06:00Z"))
        );
    }

    fn stream_progress(committed: i64, throttled: bool) -> Progress {
        let mut p = running_progress(committed);
        p.stream = Some(StreamFigures {
            injected: 40,
            committed,
            p50_ms: 35,
            p99_ms: 480,
            throughput: 19.46,
            effective_rate: 20.04,
            lag: 12,
            pending: 3,
            throttled,
            throttled_ms: 2500,
        });
        p
    }

    #[test]
    fn a_stream_reports_latency_throughput_and_its_source() {
        let job = fixtures::synthetic("demo");
        let obs = Observed {
            redis_deployments: available_redis(),
            progress: Some(Ok(stream_progress(30, true))),
            ..Observed::default()
        };
        let s = derive(&job, &obs, t("2025-01-01T00:00:30Z"));
        assert_eq!(s.phase, Some(Phase::Running));
        assert_eq!(s.latency, Some(Latency { p50: 35, p99: 480 }));
        assert_eq!(s.throughput, Some(19.5));
        let stream = s.stream.clone().unwrap();
        assert_eq!(
            (
                stream.injected,
                stream.committed,
                stream.lag,
                stream.pending
            ),
            (40, 30, 12, 3)
        );
        assert_eq!(stream.effective_rate, 20.0);
        assert!(stream.throttled);
        assert_eq!(stream.throttled_ms, 2500);
        assert!(
            s.message
                .as_deref()
                .unwrap()
                .ends_with("; the source is throttled (12 files waiting, 3 in flight)"),
            "{:?}",
            s.message
        );

        // Nothing committed yet: no latency to speak of.
        let early = derive(
            &job,
            &Observed {
                progress: Some(Ok(stream_progress(0, false))),
                ..Observed::default()
            },
            t("2025-01-01T00:00:01Z"),
        );
        assert_eq!(early.latency, None);
        assert!(!early.message.unwrap().contains("throttled"));

        // Redis unreachable: the last figures stay, like the counts.
        let mut job = job;
        job.status = Some(s.clone());
        let later = derive(
            &job,
            &Observed {
                progress: unreachable(),
                ..Observed::default()
            },
            t("2025-01-01T00:00:40Z"),
        );
        assert_eq!(
            (later.latency, later.throughput, later.stream),
            (s.latency, s.throughput, s.stream)
        );
    }

    #[test]
    fn a_batch_has_no_stream_figures() {
        let s = derive(
            &fixtures::synthetic("demo"),
            &Observed {
                progress: Some(Ok(running_progress(3))),
                ..Observed::default()
            },
            t("2025-01-01T00:00:30Z"),
        );
        assert_eq!((s.latency, s.throughput, s.stream), (None, None, None));
    }

    #[test]
    fn pod_kills_are_counted_with_crashes_in_time_order() {
        let job = fixtures::synthetic("demo");
        let kill = InjectedFault {
            kind: FaultKind::PodKill,
            target: "demo-workers-0-abcde".into(),
            time: Time(t("2025-01-01T00:00:02Z")),
        };
        let obs = Observed {
            progress: Some(Ok(running_progress(1))),
            injected: vec![kill.clone()],
            ..Observed::default()
        };
        let s = derive(&job, &obs, t("2025-01-01T00:00:10Z"));
        assert_eq!(s.faults_injected, 2);
        assert_eq!(s.faults[0], kill);
        assert_eq!(s.faults[1].kind, FaultKind::Crash);
    }

    #[test]
    fn a_crdt_job_shows_each_instance_and_completes_when_every_site_driver_has() {
        use crate::redis::progress::InstanceFigures;
        let mut job = fixtures::synthetic("demo");
        job.spec.redis.mode = wordcount_protocol::RedisMode::Crdt;
        let instance = |known, digest: &str, site_done| InstanceFigures {
            files_known: known,
            files_repaired: known / 2,
            digests: BTreeMap::from([("s".to_string(), digest.to_string())]),
            site_done,
        };
        let progress = |instances| Progress {
            meta: Some(Meta {
                files: Some(9),
                enqueue_done: true,
                started_ms: Some(1_735_689_600_000),
            }),
            files_done: 9,
            instances,
            ..Progress::default()
        };
        let complete = job_with(JobStatus {
            conditions: Some(vec![cond("Complete", "")]),
            ..JobStatus::default()
        });
        let running = job_with(JobStatus {
            active: Some(1),
            ready: Some(1),
            ..JobStatus::default()
        });
        // Instance 2 behind: none has converged, and two drivers still run.
        let obs = Observed {
            redis_deployments: [available_redis(), available_redis(), available_redis()].concat(),
            drivers: vec![complete.clone(), running.clone(), running],
            progress: Some(Ok(progress(vec![
                instance(9, "a", true),
                instance(9, "a", true),
                instance(3, "b", true),
            ]))),
            ..Observed::default()
        };
        let s = derive(&job, &obs, t("2025-01-01T00:00:10Z"));
        assert_eq!(s.phase, Some(Phase::Running));
        let known: Vec<(i64, bool)> = s
            .instances
            .iter()
            .map(|i| (i.files_known, i.converged))
            .collect();
        assert_eq!(known, [(9, false), (9, false), (3, false)]);
        assert!(s
            .message
            .unwrap()
            .contains("the instances know 9, 9, 3 files"));

        // The same files everywhere, every site done, every driver complete.
        let obs = Observed {
            drivers: vec![complete.clone(), complete.clone(), complete],
            progress: Some(Ok(progress(vec![instance(9, "a", true); 3]))),
            ..obs
        };
        let s = derive(&job, &obs, t("2025-01-01T00:00:20Z"));
        assert_eq!(s.phase, Some(Phase::Succeeded));
        assert!(s
            .instances
            .iter()
            .all(|i| i.converged && i.files_known == 9));
        assert_eq!(s.instances[2].instance, 2);
    }

    /// What the driver's pods and Redis say after a driver that could not
    /// write the output: every file committed, no summary, exit OUTPUT.
    fn output_unwritten(drivers: Vec<Job>) -> Observed {
        Observed {
            redis_deployments: available_redis(),
            drivers,
            workers: vec![job_with(JobStatus {
                active: Some(3),
                ready: Some(3),
                ..JobStatus::default()
            })],
            progress: Some(Ok(running_progress(8))),
            driver_exit_code: Some(exit::OUTPUT),
            driver_error: Some(
                "driver: cannot write the output to s3://results/demo.txt: bucket results does not exist"
                    .into(),
            ),
            ..Observed::default()
        }
    }

    fn gave_up() -> Job {
        let mut c = cond("Failed", "Job has reached the specified backoff limit");
        c.reason = Some("BackoffLimitExceeded".into());
        let mut j = job_with(JobStatus {
            conditions: Some(vec![c]),
            failed: Some(4),
            ..JobStatus::default()
        });
        j.metadata.name = Some("demo-driver".into());
        j
    }

    /// The output's retry, step one: while the driver's Job runs the driver
    /// again, the job runs on (its Redis kept), saying what failed.
    #[test]
    fn an_unwritten_output_keeps_the_job_running_while_the_driver_job_retries() {
        let job = fixtures::s3("demo");
        let retrying = job_with(JobStatus {
            active: Some(1),
            failed: Some(1),
            ..JobStatus::default()
        });
        let s = derive(
            &job,
            &output_unwritten(vec![retrying]),
            t("2025-01-01T00:01:00Z"),
        );
        assert_eq!(s.phase, Some(Phase::Running));
        assert_eq!(condition_of(&s, PROGRESSING), ("True", OUTPUT_RETRYING));
        assert_eq!(condition_of(&s, FAILED), ("False", OUTPUT_RETRYING));
        assert_eq!(
            s.message.as_deref(),
            Some(
                "the counts are whole in Redis (8/8 files), but the output could not be written: \
                 driver: cannot write the output to s3://results/demo.txt: bucket results does not exist; \
                 the driver's Job runs the driver again to write it"
            )
        );
        assert_eq!(s.output, None);
    }

    /// Step two: the driver's Job has given up. The job neither fails nor
    /// finishes (either would let Redis go); it stops progressing and says
    /// how to write the output: delete the driver's Job, which the
    /// operator makes again.
    #[test]
    fn an_output_given_up_by_the_driver_job_waits_for_its_deletion_not_failed() {
        let job = fixtures::s3("demo");
        let s = derive(
            &job,
            &output_unwritten(vec![gave_up()]),
            t("2025-01-01T00:02:00Z"),
        );
        assert_eq!(s.phase, Some(Phase::Running));
        assert!(!s.phase.unwrap().is_terminal());
        assert_eq!(condition_of(&s, PROGRESSING), ("False", OUTPUT_FAILED));
        assert_eq!(condition_of(&s, FAILED).0, "False");
        assert_eq!(condition_of(&s, COMPLETE).0, "False");
        let message = s.message.unwrap();
        assert!(
            message.contains("bucket results does not exist")
                && message.contains("`kubectl delete job -n ns1 demo-driver`"),
            "{message}"
        );
        // The same with Redis out of reach a moment: the exit code says it.
        let mut obs = output_unwritten(vec![gave_up()]);
        obs.progress = unreachable();
        let s = derive(&job, &obs, t("2025-01-01T00:02:00Z"));
        assert_eq!(condition_of(&s, PROGRESSING), ("False", OUTPUT_FAILED));
    }

    /// Step three: a driver has written the output (old pods may still say
    /// exit 4): the job succeeds, with where the output went.
    #[test]
    fn the_output_written_makes_the_job_succeed_with_its_location() {
        let job = fixtures::s3("demo");
        let mut obs = output_unwritten(vec![job_with(JobStatus {
            active: Some(1),
            ..JobStatus::default()
        })]);
        let mut p = running_progress(8);
        p.summary = Some(Summary {
            words: 100,
            distinct: 3,
            output: Some(OutputStatus {
                location: "s3://results/demo.txt".into(),
                words: 3,
            }),
            ..Summary::default()
        });
        obs.progress = Some(Ok(p));
        let s = derive(&job, &obs, t("2025-01-01T00:03:00Z"));
        assert_eq!(s.phase, Some(Phase::Succeeded));
        assert_eq!(
            s.output,
            Some(OutputStatus {
                location: "s3://results/demo.txt".into(),
                words: 3
            })
        );
        assert_eq!(
            s.message.as_deref(),
            Some("counted 100 words (3 distinct) in 8 files, written to s3://results/demo.txt")
        );
        // Kept while Redis cannot be read, like the other figures.
        let mut job = job;
        job.status = Some(s.clone());
        let later = derive(
            &job,
            &Observed {
                progress: unreachable(),
                ..Observed::default()
            },
            t("2025-01-01T00:04:00Z"),
        );
        assert_eq!(later.output, s.output);
    }

    /// A summary without the output the spec asks for is no result yet; a
    /// job with no output succeeds on its summary as before.
    #[test]
    fn with_an_output_the_summary_alone_is_not_success() {
        let mut p = running_progress(8);
        p.summary = Some(Summary {
            words: 100,
            distinct: 3,
            ..Summary::default()
        });
        let obs = Observed {
            redis_deployments: available_redis(),
            progress: Some(Ok(p)),
            ..Observed::default()
        };
        let at = t("2025-01-01T00:03:00Z");
        assert_eq!(
            derive(&fixtures::s3("demo"), &obs, at).phase,
            Some(Phase::Running)
        );
        let mut plain = fixtures::s3("demo");
        plain.spec.output = None;
        assert_eq!(derive(&plain, &obs, at).phase, Some(Phase::Succeeded));
    }

    #[test]
    fn a_pending_job_says_which_secret_its_pods_wait_for() {
        let obs = Observed {
            redis_deployments: available_redis(),
            pod_config_error: Some(
                "demo-driver-x cannot start: secret \"s3-credentials\" not found".into(),
            ),
            progress: Some(Ok(Progress::default())),
            ..Observed::default()
        };
        let s = derive(&fixtures::s3("demo"), &obs, t("2025-01-01T00:00:10Z"));
        assert_eq!(s.phase, Some(Phase::Pending));
        assert_eq!(
            s.message.as_deref(),
            Some("waiting for the driver to start; demo-driver-x cannot start: secret \"s3-credentials\" not found")
        );
    }

    fn condition_of<'a>(s: &'a WordCountJobStatus, type_: &str) -> (&'a str, &'a str) {
        let c = find(s, type_).unwrap();
        (c.status.as_str(), c.reason.as_str())
    }
}
