//! The `WordCountJob` resource: its spec's top level, with the CRD's
//! printer columns and the CEL rules that span several fields, and what the
//! operator asks of a spec (its faults, its images, whether it can run).

use super::{
    faults::{Crash, Faults, Partition, PodKills, Straggler},
    spec::{
        Autoscale, Input, Output, PodResources, PullPolicy, RedisSpec, S3Input, S3Output,
        StorageSpec, StreamSpec, CRDT_SITES, DEFAULT_RAFT_REPLICAS,
    },
    status::WordCountJobStatus,
};
use crate::duration::Duration;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};
use wordcount_protocol::{Commit, Fault, OnUnreadable, RedisMode, Tokenizer};

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
    // `kubectl get wcj -o wide`: where the result went.
    printcolumn(name = "Output", type_ = "string", json_path = ".status.output.location", priority = 1),
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
// A pod has one set of AWS_* variables: the driver's, which reads the
// input and writes the output, serves both.
#[x_kube(validation = Rule::new("!has(self.input.s3) || !has(self.output) || !has(self.output.s3) || (\
        self.input.s3.credentialsSecret == self.output.s3.credentialsSecret && \
        (has(self.input.s3.endpoint) ? self.input.s3.endpoint : '') == (has(self.output.s3.endpoint) ? self.output.s3.endpoint : '') && \
        (has(self.input.s3.region) ? self.input.s3.region : 'us-east-1') == (has(self.output.s3.region) ? self.output.s3.region : 'us-east-1'))")
    .message("output.s3 must have the same endpoint, region and credentialsSecret as input.s3 (the driver has one set of AWS_* variables for both)")
    .field_path(".output.s3"))]
#[x_kube(validation = Rule::new("!has(self.claimTimeout) || duration(self.claimTimeout) >= duration('10ms')")
    .message("claimTimeout must be at least 10ms: a claim timeout of 0 would steal every file at once")
    .field_path(".claimTimeout"))]
#[serde(rename_all = "camelCase")]
pub struct WordCountJobSpec {
    /// Where the files come from: a volume every pod mounts, or an S3
    /// bucket the pods read.
    #[x_kube(validation = Rule::new("[has(self.hostPath), has(self.pvc), has(self.synthetic), has(self.s3)].filter(x, x).size() == 1")
        .message("input must set exactly one of hostPath, pvc, synthetic, s3"))]
    pub input: Input,

    /// Where the driver writes every word's count once the job is done;
    /// only the status's top words when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("[has(self.s3)].filter(x, x).size() == 1")
        .message("output must set exactly one of s3"))]
    pub output: Option<Output>,

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

    pub fn s3_input(&self) -> Option<&S3Input> {
        match &self.input {
            Input::S3(s3) => Some(s3),
            Input::HostPath(_) | Input::Pvc(_) | Input::Synthetic(_) => None,
        }
    }

    pub fn s3_output(&self) -> Option<&S3Output> {
        self.output.as_ref().map(|Output::S3(s3)| s3)
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
