//! The `WordCountJob` custom resource: spec, status and the generated CRD.
//!
//! Validation lives in the schema so the API server refuses a bad spec with a
//! message naming the field: bounds, enums and patterns where the type can say
//! it, CEL rules (`x-kubernetes-validations`) for what spans several fields.

use crate::duration::Duration;
use k8s_openapi::{
    api::core::v1::ResourceRequirements,
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    apimachinery::pkg::{api::resource::Quantity, apis::meta::v1::Condition, apis::meta::v1::Time},
};
use kube::{CustomResource, CustomResourceExt, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;
use wordcount_protocol::{
    fault::{FIRST_FILE, MAX_SLOW, MIN_SLOW},
    Backpressure, Commit, CrashPoint, Fault, OnUnreadable, RedisMode, Tokenizer,
};

pub const GROUP: &str = "wordcount.dev";
pub const VERSION: &str = "v1alpha1";
pub const KIND: &str = "WordCountJob";

/// A distributed word count over a set of files, coordinated through Redis.
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "wordcount.dev",
    version = "v1alpha1",
    kind = "WordCountJob",
    namespaced,
    status = "WordCountJobStatus",
    shortname = "wcj",
    category = "all",
    derive = "PartialEq",
    doc = "A distributed word-count job: Redis, a driver and N workers counting a shared set of files",
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Progress", type_ = "string", json_path = ".status.progress"),
    printcolumn(name = "Workers", type_ = "integer", json_path = ".spec.workers"),
    printcolumn(name = "Mode", type_ = "string", json_path = ".spec.redis.mode"),
    printcolumn(name = "Duration", type_ = "string", json_path = ".status.duration"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    // Children are named after the job ("<name>-redis-data", a Service
    // "<name>-redis"), so the name must make valid names for them.
    validation = Rule::new("self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$') && size(self.metadata.name) <= 40")
        .message("metadata.name must be a lowercase DNS label of at most 40 characters (children are named after it)")
)]
// A job is a one-shot run: its batch Jobs' pod templates are immutable, and
// changing the input or the workers half way would make the result meaningless.
#[x_kube(validation = Rule::new("self == oldSelf").message("spec is immutable: delete the WordCountJob and create a new one"))]
#[x_kube(validation = Rule::new("!has(self.faults) || !has(self.faults.crashes) || self.faults.crashes.all(c, c.worker < self.workers)")
    .message("faults.crashes[].worker must be less than workers")
    .field_path(".faults.crashes"))]
#[x_kube(validation = Rule::new("!has(self.faults) || !has(self.faults.stragglers) || self.faults.stragglers.all(s, s.worker < self.workers)")
    .message("faults.stragglers[].worker must be less than workers")
    .field_path(".faults.stragglers"))]
#[x_kube(validation = Rule::new("!has(self.faults) || !has(self.faults.podKills) || self.faults.podKills.target != 'redis-leader' || (has(self.redis) && has(self.redis.mode) && self.redis.mode == 'RedisRaft')")
    .message("faults.podKills.target redis-leader needs redis.mode RedisRaft (one Redis has no leader)")
    .field_path(".faults.podKills.target"))]
#[x_kube(validation = Rule::new("!has(self.stream) || !has(self.redis) || !has(self.redis.mode) || self.redis.mode != 'Crdt'")
    .message("stream is not supported with redis.mode Crdt: its sites run batches")
    .field_path(".stream"))]
#[x_kube(validation = Rule::new("!has(self.commit) || self.commit != 'per-word' || !has(self.redis) || !has(self.redis.mode) || self.redis.mode != 'Crdt'")
    .message("commit per-word cannot be used with redis.mode Crdt: a word added twice would count twice")
    .field_path(".commit"))]
#[x_kube(validation = Rule::new("!has(self.faults) || !has(self.faults.podKills) || self.faults.podKills.target != 'redis' || !has(self.redis) || !has(self.redis.mode) || self.redis.mode != 'Crdt'")
    .message("faults.podKills.target redis cannot be used with redis.mode Crdt: an instance restarted after its site's driver ended would have no one to repair it (wordcount run --redis crdt --redis-kill-every restarts instances locally)")
    .field_path(".faults.podKills.target"))]
#[x_kube(validation = Rule::new("!has(self.faults) || !has(self.faults.partitions) || self.faults.partitions.all(p, (!has(p.sites) && !has(p.redis)) || (has(self.redis) && has(self.redis.mode) && self.redis.mode == 'Crdt'))")
    .message("faults.partitions[].sites and redis are for redis.mode Crdt (one Redis has one site)")
    .field_path(".faults.partitions"))]
#[x_kube(validation = Rule::new("!has(self.stream) || !has(self.stream.duration) || !has(self.stream.tick) || duration(self.stream.tick) <= duration(self.stream.duration)")
    .message("stream.tick must not be longer than stream.duration")
    .field_path(".stream.tick"))]
#[x_kube(validation = Rule::new("!has(self.stream) || !has(self.stream.autoscale) || (self.stream.autoscale.minWorkers <= self.workers && self.workers <= self.stream.autoscale.maxWorkers)")
    .message("workers must be from stream.autoscale.minWorkers to maxWorkers (the workers the job starts with)")
    .field_path(".workers"))]
#[x_kube(validation = Rule::new("!has(self.claimTimeout) || duration(self.claimTimeout) >= duration('10ms')")
    .message("claimTimeout must be at least 10ms: a claim timeout of 0 would steal every file at once")
    .field_path(".claimTimeout"))]
#[serde(rename_all = "camelCase")]
pub struct WordCountJobSpec {
    /// Where the files come from; they end up in a volume every pod mounts.
    #[x_kube(validation = Rule::new("[has(self.hostPath), has(self.pvc), has(self.synthetic)].filter(x, x).size() == 1")
        .message("input must set exactly one of hostPath, pvc, synthetic"))]
    pub input: Input,

    /// Number of worker pods (an Indexed Job: worker I has index I); for
    /// redis.mode Crdt, of each site (worker faults apply on every site).
    #[serde(default = "default_workers")]
    #[schemars(range(min = 1, max = 1000))]
    pub workers: i32,

    #[serde(default)]
    pub tokenizer: Tokenizer,

    /// How many of the most frequent words the summary and the status keep.
    #[serde(default = "default_top_n")]
    #[schemars(range(min = 1, max = 1000))]
    pub top_n: i32,

    /// A file claimed but not committed for this long is stolen by another worker.
    #[serde(default = "default_claim_timeout")]
    pub claim_timeout: Duration,

    #[serde(default)]
    pub commit: Commit,

    /// What a file that cannot be read does to the job: `Fail` (the
    /// default) counts every readable file, then ends the job Failed naming
    /// the unreadable ones; `Skip` ends it Succeeded with a warning.
    #[serde(default)]
    pub on_unreadable: OnUnreadable,

    /// Deletes the whole job, its status and volumes included, this many
    /// seconds after it finished (as a batch Job's field does); kept until
    /// deleted when left out. Its pods stop as soon as it finishes either way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub ttl_seconds_after_finished: Option<i32>,

    #[serde(default)]
    pub redis: RedisSpec,

    /// Faults to inject, to watch the job survive them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<Faults>,

    /// The image with the `wordcount` binary (driver, worker, generate);
    /// the operator's default (`--job-image`) when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub image: Option<String>,

    #[serde(default)]
    pub image_pull_policy: PullPolicy,

    #[serde(default)]
    pub storage: StorageSpec,

    /// Resources of each kind of pod; sensible requests when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<PodResources>,

    /// Makes the job a stream: the driver injects the input files at a
    /// rate, cycling over them, rather than all at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamSpec>,
}

fn default_workers() -> i32 {
    3
}
fn default_top_n() -> i32 {
    10
}
fn default_claim_timeout() -> Duration {
    Duration::from_secs(30)
}
/// The `wordcount` image when neither the spec nor the operator names one.
pub const DEFAULT_IMAGE: &str = "wordcount:dev";

/// Exactly one of the sources. The enum shape gives the schema a `oneOf`; the
/// CEL rule on `spec.input` says the same thing in words.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Input {
    /// A directory on the node (e.g. a kind extraMount), mounted read-only.
    HostPath(HostPathInput),
    /// An existing PersistentVolumeClaim holding the files.
    Pvc(PvcInput),
    /// A corpus generated by the job itself (`wordcount generate`) before the
    /// driver enqueues, into a volume the job creates.
    Synthetic(SyntheticInput),
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostPathInput {
    #[schemars(length(min = 1, max = 4096), regex(pattern = "^/"))]
    pub path: String,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PvcInput {
    #[schemars(length(min = 1, max = 253))]
    pub claim_name: String,
    /// A folder inside the claim; the whole claim when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub sub_path: Option<String>,
}

/// Arguments of `wordcount generate`; those left out take its defaults.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyntheticInput {
    #[schemars(range(min = 1, max = 1_000_000))]
    pub files: i32,
    #[schemars(range(min = 1))]
    pub bytes_per_file: i64,
    /// Distinct words to draw from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub vocabulary: Option<i64>,
    /// Zipf exponent of the word frequencies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub zipf: Option<f64>,
    /// Size factor of the one skewed (larger) file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1.0))]
    pub skew_factor: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub seed: Option<i64>,
}

/// The job's Redis: one server with RDB snapshots (`Snapshot`), 2f+1
/// replicas of Redis with the RedisRaft module (`RedisRaft`), a
/// StatefulSet, or three sites (`Crdt`), each with its own Redis (with RDB
/// snapshots), driver and `workers` workers, the counts a CRDT that every
/// worker writes to every instance it reaches, and read repair between them.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.replicas) || self.replicas % 2 == 1")
    .message("redis.replicas must be odd (2f+1 replicas survive f failures)")
    .field_path(".replicas"))]
#[x_kube(validation = Rule::new("!has(self.replicas) || (has(self.mode) && self.mode == 'RedisRaft')")
    .message("redis.replicas is for mode RedisRaft (Snapshot runs one Redis, Crdt one a site)")
    .field_path(".replicas"))]
pub struct RedisSpec {
    #[serde(default)]
    pub mode: RedisMode,
    /// RDB snapshot period (`save <seconds> 1`): how much work a Redis
    /// restart can lose. Snapshot and Crdt: RedisRaft keeps no RDB file.
    #[serde(default = "default_snapshot_interval")]
    pub snapshot_interval: Duration,
    /// RedisRaft replicas (odd, 3 to 7; 3 when left out): the cluster
    /// survives the loss of a minority of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = MIN_RAFT_REPLICAS, max = MAX_RAFT_REPLICAS))]
    pub replicas: Option<i32>,
    /// Image with `redis-server`; the operator's default (`--redis-image`),
    /// else the job's `image`, when left out. For RedisRaft, an image that
    /// also has the module at `/usr/lib/redis/modules/redisraft.so`; the
    /// operator's `--redisraft-image` when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub image: Option<String>,
}

impl Default for RedisSpec {
    fn default() -> Self {
        Self {
            mode: RedisMode::default(),
            snapshot_interval: default_snapshot_interval(),
            replicas: None,
            image: None,
        }
    }
}

/// The sites of a Crdt job: three, as the lab has it.
pub const CRDT_SITES: usize = 3;

/// Bounds and default of `redis.replicas` (RedisRaft).
pub const MIN_RAFT_REPLICAS: i32 = 3;
pub const MAX_RAFT_REPLICAS: i32 = 7;
pub const DEFAULT_RAFT_REPLICAS: i32 = 3;

fn default_snapshot_interval() -> Duration {
    Duration::from_secs(10)
}

/// The highest `stream.rate` the schema admits, in files a second.
pub const MAX_RATE: f64 = 100_000.0;

/// A stream (`wordcount driver --stream`): the driver injects `rate` files
/// a second in micro-batches one `tick` apart, cycling over the input
/// files, until `duration` is over; then it waits until everything
/// injected is committed and writes the result, like a batch.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.rate > 0.0").message("stream.rate must be greater than 0").field_path(".rate"))]
#[x_kube(validation = Rule::new("!has(self.duration) || duration(self.duration) > duration('0s')")
    .message("stream.duration must be greater than 0")
    .field_path(".duration"))]
#[x_kube(validation = Rule::new("!has(self.tick) || (duration(self.tick) >= duration('10ms') && duration(self.tick) <= duration('1m'))")
    .message("stream.tick must be from 10ms to 1m")
    .field_path(".tick"))]
pub struct StreamSpec {
    /// Files injected a second (more than 0); a fraction is fine (0.5 is
    /// one file every 2 s).
    #[schemars(range(min = 0.0, max = MAX_RATE))]
    pub rate: f64,
    /// How long the source injects; every input file exactly once (at the
    /// rate) when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Duration>,
    /// Time between two micro-batches.
    #[serde(default = "default_tick")]
    pub tick: Duration,
    /// What the source does when the workers fall behind: `None` injects on
    /// schedule whatever happens, `Pause` holds back while lag + pending is
    /// above `maxLag`, `Adaptive` steers the rate toward what the workers
    /// manage.
    #[serde(default)]
    pub backpressure: Backpressure,
    /// Files waiting or in flight (lag + pending) above which backpressure
    /// acts.
    #[serde(default = "default_max_lag")]
    #[schemars(range(min = 1, max = 1_000_000))]
    pub max_lag: i32,
    /// The operator scales the workers with the stream's lag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.minWorkers <= self.maxWorkers")
        .message("stream.autoscale.minWorkers must not be more than maxWorkers"))]
    pub autoscale: Option<Autoscale>,
}

/// Scales the workers' Indexed Job (its parallelism and completions
/// together) between `minWorkers` and `maxWorkers` by the contract's rule
/// (`wordcount_protocol::Autoscale`, as `wordcount run --autoscale` does):
/// one more worker while the stream's lag (files injected, not yet
/// delivered to a worker) is above `targetLag`, one fewer once there has
/// been no lag for a whole `cooldown`; at most one change per `cooldown`.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Autoscale {
    #[schemars(range(min = 1, max = 1000))]
    pub min_workers: i32,
    #[schemars(range(min = 1, max = 1000))]
    pub max_workers: i32,
    /// Files waiting for a worker above which one more is added.
    #[serde(default = "default_target_lag")]
    #[schemars(range(min = 1, max = 1_000_000))]
    pub target_lag: i32,
    /// Least time between two changes, and how long no file must have
    /// waited before a worker goes. Longer than `wordcount run`'s 5 s
    /// default: a pod takes seconds to start where a process does not.
    #[serde(default = "default_cooldown")]
    pub cooldown: Duration,
}

fn default_target_lag() -> i32 {
    10
}
fn default_cooldown() -> Duration {
    Duration::from_secs(15)
}

fn default_tick() -> Duration {
    Duration::from_secs(1)
}
fn default_max_lag() -> i32 {
    100
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Faults {
    /// Worker I dies (SIGKILL) at a point of its commit path, once per job.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub crashes: Vec<Crash>,
    /// Worker I runs slower by a factor.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub stragglers: Vec<Straggler>,
    /// The operator deletes pods on a schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_kills: Option<PodKills>,
    /// The operator cuts the workers off from Redis for a while: a
    /// NetworkPolicy, and the workers' open connections ended.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub partitions: Vec<Partition>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Partition {
    /// Time from the job's start to the cut.
    pub after: Duration,
    /// How long the workers stay cut off.
    pub duration: Duration,
    /// Crdt: the sites (0 to 2) whose pods, driver and workers, are cut
    /// off; every site when left out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 3), inner(range(min = 0, max = 2)))]
    pub sites: Vec<i32>,
    /// Crdt: the Redis instances (0 to 2) they are cut off from; every
    /// instance when left out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 3), inner(range(min = 0, max = 2)))]
    pub redis: Vec<i32>,
}

impl Partition {
    /// Whether it cuts site `site` off from instance `instance` (Crdt).
    pub fn cuts(&self, site: usize, instance: usize) -> bool {
        let names = |list: &[i32], i: usize| list.is_empty() || list.contains(&(i as i32));
        names(&self.sites, site) && names(&self.redis, instance)
    }
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Crash {
    #[schemars(range(min = 0))]
    pub worker: i32,
    pub point: CrashPoint,
    /// Crash on the worker's N-th file rather than its first (files count
    /// from 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = FIRST_FILE, max = i32::MAX))]
    pub file: Option<i32>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Straggler {
    #[schemars(range(min = 0))]
    pub worker: i32,
    /// 2.0 takes twice as long per file.
    #[schemars(range(min = MIN_SLOW, max = MAX_SLOW))]
    pub slow_factor: f64,
}

impl Crash {
    /// The fault in the workers' grammar; `None` for a worker or file the
    /// schema refuses (negative, or file 0).
    pub fn fault(&self) -> Option<Fault> {
        let file = match self.file {
            None => FIRST_FILE,
            Some(f) => u32::try_from(f).ok().filter(|f| *f >= FIRST_FILE)?,
        };
        Some(Fault::Crash {
            worker: u32::try_from(self.worker).ok()?,
            point: self.point,
            file,
        })
    }
}

impl Straggler {
    /// The fault in the workers' grammar; `None` for what the schema refuses.
    pub fn fault(&self) -> Option<Fault> {
        (MIN_SLOW..=MAX_SLOW)
            .contains(&self.slow_factor)
            .then_some(Fault::Slow {
                worker: u32::try_from(self.worker).ok()?,
                factor: self.slow_factor,
            })
    }
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodKills {
    pub target: PodKillTarget,
    /// Time between two kills.
    pub every: Duration,
    /// Time from the job's start to the first kill.
    #[serde(default)]
    pub after: Duration,
    #[serde(default = "default_max_kills")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_kills: i32,
}

fn default_max_kills() -> i32 {
    1
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PodKillTarget {
    /// A random running worker pod.
    Worker,
    /// The Redis pod (it restarts from its last RDB snapshot); with
    /// RedisRaft, a random running replica.
    Redis,
    /// RedisRaft only: the replica that is the Raft leader.
    #[serde(rename = "redis-leader")]
    RedisLeader,
}

impl PodKillTarget {
    pub fn as_str(self) -> &'static str {
        match self {
            PodKillTarget::Worker => "worker",
            PodKillTarget::Redis => "redis",
            PodKillTarget::RedisLeader => "redis-leader",
        }
    }
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum PullPolicy {
    Always,
    /// Right for images loaded into kind (`kind load docker-image`).
    #[default]
    IfNotPresent,
    Never,
}

impl PullPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Always => "Always",
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Never => "Never",
        }
    }
}

/// Volumes the job creates: Redis' data, and the input for a synthetic corpus.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageSpec {
    /// StorageClass of the claims; the cluster's default when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub class_name: Option<String>,
    /// Access mode of the input claim. ReadWriteOnce is enough when all pods
    /// share one node (kind's single node); use ReadWriteMany otherwise.
    #[serde(default)]
    pub access_mode: AccessMode,
    #[serde(default = "default_input_size")]
    pub input_size: Quantity,
    #[serde(default = "default_redis_size")]
    pub redis_size: Quantity,
}

impl Default for StorageSpec {
    fn default() -> Self {
        Self {
            class_name: None,
            access_mode: AccessMode::default(),
            input_size: default_input_size(),
            redis_size: default_redis_size(),
        }
    }
}

fn default_input_size() -> Quantity {
    Quantity("1Gi".into())
}
fn default_redis_size() -> Quantity {
    Quantity("256Mi".into())
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum AccessMode {
    #[default]
    ReadWriteOnce,
    ReadWriteMany,
    ReadWriteOncePod,
}

impl AccessMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessMode::ReadWriteOnce => "ReadWriteOnce",
            AccessMode::ReadWriteMany => "ReadWriteMany",
            AccessMode::ReadWriteOncePod => "ReadWriteOncePod",
        }
    }
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodResources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<ResourceRequirements>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<ResourceRequirements>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<ResourceRequirements>,
}

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

impl WordCountJobSpec {
    /// The crash and straggler faults for the workers, in spec order
    /// (what the schema refuses never reaches here).
    pub fn worker_faults(&self) -> Vec<Fault> {
        let Some(faults) = &self.faults else {
            return Vec::new();
        };
        faults
            .crashes
            .iter()
            .map(Crash::fault)
            .chain(faults.stragglers.iter().map(Straggler::fault))
            .flatten()
            .collect()
    }

    pub fn pod_kills(&self) -> Option<&PodKills> {
        self.faults.as_ref().and_then(|f| f.pod_kills.as_ref())
    }

    pub fn partitions(&self) -> &[Partition] {
        self.faults.as_ref().map_or(&[], |f| &f.partitions)
    }

    pub fn autoscale(&self) -> Option<&Autoscale> {
        self.stream.as_ref().and_then(|s| s.autoscale.as_ref())
    }

    pub fn image(&self) -> &str {
        self.image.as_deref().unwrap_or(DEFAULT_IMAGE)
    }

    /// The image of Redis' pods. For RedisRaft, once the operator's
    /// defaults are in (`with_default_images`), see `redisraft_image`.
    pub fn redis_image(&self) -> &str {
        self.redis.image.as_deref().unwrap_or(self.image())
    }

    /// RedisRaft's replicas; `None` for one Redis.
    pub fn raft_replicas(&self) -> Option<i32> {
        (self.redis.mode == RedisMode::RedisRaft)
            .then(|| self.redis.replicas.unwrap_or(DEFAULT_RAFT_REPLICAS))
    }

    /// A Crdt job's sites (each a Redis, a driver and workers); `None`
    /// for the other modes, which have one.
    pub fn crdt_sites(&self) -> Option<usize> {
        (self.redis.mode == RedisMode::Crdt).then_some(CRDT_SITES)
    }

    /// Fills in the images the spec leaves out with the operator's
    /// defaults: Redis' from `--redis-image`, or for RedisRaft from
    /// `--redisraft-image` only (the job image has no module).
    pub fn with_default_images(
        mut self,
        job_image: &str,
        redis_image: Option<&str>,
        redisraft_image: Option<&str>,
    ) -> Self {
        if self.image.is_none() {
            self.image = Some(job_image.to_string());
        }
        if self.redis.image.is_none() {
            self.redis.image = match self.redis.mode {
                RedisMode::RedisRaft => redisraft_image,
                RedisMode::Snapshot | RedisMode::Crdt => redis_image,
            }
            .map(str::to_string);
        }
        self
    }

    /// Why the job cannot run as its spec says, whatever the cluster does:
    /// RedisRaft with no image known to have the module.
    pub fn unrunnable(&self) -> Option<String> {
        (self.redis.mode == RedisMode::RedisRaft && self.redis.image.is_none()).then(|| {
            "redis.mode RedisRaft needs an image with the RedisRaft module: set \
             spec.redis.image, or the operator's --redisraft-image"
                .to_string()
        })
    }
}

impl WordCountJob {
    /// The workers it runs now: as the autoscaler last decided (recorded in
    /// the status), else `spec.workers`.
    pub fn workers_now(&self) -> i32 {
        match (self.spec.autoscale(), &self.status) {
            (Some(_), Some(status)) => status
                .autoscale
                .as_ref()
                .map_or(self.spec.workers, |a| a.workers),
            _ => self.spec.workers,
        }
    }
}

/// The CRD as installed (what `crdgen` prints).
pub fn crd() -> CustomResourceDefinition {
    WordCountJob::crd()
}

/// The CRD as YAML, with a header saying where it comes from.
pub fn crd_yaml() -> String {
    let body = serde_yaml::to_string(&crd()).expect("the CRD serializes to YAML");
    format!(
        "# Generated by `cargo run -p wordcount-operator --bin crdgen`; do not edit.\n\
         # A test fails when this file differs from the generated one.\n{body}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> WordCountJobSpec {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn images_come_from_the_spec_then_the_operator_then_the_default() {
        let bare = spec(serde_json::json!({"input": {"hostPath": {"path": "/d"}}}));
        assert_eq!(
            (bare.image(), bare.redis_image()),
            (DEFAULT_IMAGE, DEFAULT_IMAGE)
        );

        let op = bare
            .clone()
            .with_default_images("reg/wordcount:1", None, None);
        assert_eq!(
            (op.image(), op.redis_image()),
            ("reg/wordcount:1", "reg/wordcount:1")
        );
        let op = bare
            .clone()
            .with_default_images("reg/wordcount:1", Some("reg/redis:7"), None);
        assert_eq!(op.redis_image(), "reg/redis:7");

        let own = spec(
            serde_json::json!({"input": {"hostPath": {"path": "/d"}}, "image": "mine:2",
            "redis": {"image": "myredis:7"}}),
        )
        .with_default_images("reg/wordcount:1", Some("reg/redis:7"), Some("reg/raft:1"));
        assert_eq!((own.image(), own.redis_image()), ("mine:2", "myredis:7"));

        // RedisRaft takes the operator's RedisRaft image, never its plain
        // Redis or job image: those have no module.
        let mut raft = bare;
        raft.redis.mode = RedisMode::RedisRaft;
        assert_eq!(raft.raft_replicas(), Some(DEFAULT_RAFT_REPLICAS));
        let none = raft
            .clone()
            .with_default_images("reg/wordcount:1", Some("reg/redis:7"), None);
        assert_eq!(none.redis.image, None);
        assert!(none.unrunnable().unwrap().contains("--redisraft-image"));
        let op =
            raft.with_default_images("reg/wordcount:1", Some("reg/redis:7"), Some("reg/raft:1"));
        assert_eq!((op.redis_image(), op.unrunnable()), ("reg/raft:1", None));
    }

    #[test]
    fn worker_faults_keep_spec_order() {
        let s = spec(serde_json::json!({
            "input": {"hostPath": {"path": "/d"}},
            "faults": {"crashes": [{"worker": 0, "point": "after-commit", "file": 3}],
                       "stragglers": [{"worker": 1, "slowFactor": 2.5}]}
        }));
        let args: Vec<String> = s.worker_faults().iter().map(Fault::to_string).collect();
        assert_eq!(
            args,
            ["worker=0,crash=after-commit,file=3", "worker=1,slow=2.5"]
        );
    }
}
