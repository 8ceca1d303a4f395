//! A job's status as the operator writes it, with the state the
//! autoscaler starts from.

use super::spec::Autoscale;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;

/// What the job is doing, derived on every reconcile from its pods and Redis.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WordCountJobStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// Ready (Redis answers), Progressing, Complete, Failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_total: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_done: Option<i64>,
    /// Files that could not be counted (unreadable); see the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_failed: Option<i64>,
    /// "done/total", for the printer column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    /// Time from start to completion (or to now while running), e.g. "1m30s".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// Words counted in total, from the driver's summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub words: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distinct_words: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub top_words: Vec<WordCount>,
    /// Where every word's count was written (`spec.output`), once it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<OutputStatus>,
    /// Worker pods: active (created, not finished) and ready (running).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<WorkerCounts>,
    /// Faults that fired so far: crash faults (as recorded in Redis) and pod
    /// kills (done by the operator).
    #[serde(default)]
    pub faults_injected: i32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<InjectedFault>,
    /// A stream's latency, from when a file was due to its commit (the
    /// driver's percentiles in `P:stream`); set once a file is committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Latency>,
    /// A stream's files committed a second, over the last few seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput: Option<f64>,
    /// Where a stream's source stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamStatus>,
    /// RedisRaft: its replicas, the leader and the Raft term.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisStatus>,
    /// Crdt: each Redis instance, as last read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<InstanceStatus>,
    /// The autoscaler's decisions (`spec.stream.autoscale`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscale: Option<AutoscaleStatus>,
    /// What is wrong, or what the job is waiting for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The job's whole result, written out.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutputStatus {
    /// `s3://BUCKET/KEY`.
    pub location: String,
    /// Distinct words: the lines written.
    pub words: i64,
}

/// Percentiles of a stream's latency, in milliseconds.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Latency {
    pub p50: i64,
    pub p99: i64,
}

/// A RedisRaft cluster as last seen: the StatefulSet's replicas, and what
/// the replicas say (`INFO raft`).
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RedisStatus {
    /// Replicas asked for.
    pub replicas: i32,
    /// Replicas in the cluster and up (their readiness probe).
    pub ready_replicas: i32,
    /// The leader's pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    /// The current Raft term: one more for each election.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<i64>,
}

/// One Redis instance of a Crdt job: what its CRDT holds.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceStatus {
    /// Its index: site I's own Redis.
    pub instance: i32,
    /// Files whose counts it holds, from any site.
    pub files_known: i64,
    /// Of those, files it learnt by read repair rather than from a worker.
    pub files_repaired: i64,
    /// Whether it holds the same files as every other instance, every
    /// site having finished its own.
    pub converged: bool,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoscaleStatus {
    /// The workers the operator runs now: the workers' Job's parallelism
    /// and completions.
    pub workers: i32,
    /// When it last scaled them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scale_time: Option<Time>,
    /// Since when the stream has had no lag, while it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_lag_since: Option<Time>,
}

impl AutoscaleStatus {
    /// The autoscaler's state before its first decision: the job's own
    /// workers, kept within the bounds.
    pub fn initial(spec: &Autoscale, workers: i32) -> AutoscaleStatus {
        AutoscaleStatus {
            workers: workers.clamp(spec.min_workers, spec.max_workers.max(spec.min_workers)),
            last_scale_time: None,
            no_lag_since: None,
        }
    }
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StreamStatus {
    /// Files injected so far (a file injected twice counts twice).
    pub injected: i64,
    /// Injected files committed so far.
    pub committed: i64,
    /// Files injected but not delivered to any worker yet.
    pub lag: i64,
    /// Files delivered to a worker but not committed yet.
    pub pending: i64,
    /// Files injected a second, over the last few seconds.
    pub effective_rate: f64,
    /// Whether the source holds back files that are due (backpressure).
    pub throttled: bool,
    /// Milliseconds the source has spent throttled so far.
    pub throttled_ms: i64,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Phase {
    Pending,
    Running,
    Succeeded,
    Failed,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Running => "Running",
            Phase::Succeeded => "Succeeded",
            Phase::Failed => "Failed",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Phase::Succeeded | Phase::Failed)
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WordCount {
    pub word: String,
    pub count: i64,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkerCounts {
    pub active: i32,
    pub ready: i32,
    pub succeeded: i32,
    pub failed: i32,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InjectedFault {
    pub kind: FaultKind,
    /// The crash spec ("worker=1,crash=after-read"), the deleted pod's name,
    /// or the partition's NetworkPolicy.
    pub target: String,
    pub time: Time,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum FaultKind {
    Crash,
    PodKill,
    Partition,
}
