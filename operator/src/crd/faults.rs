//! The faults a spec asks for: the workers' own (crashes, stragglers, in
//! their `--fault` grammar) and the operator's (pod kills, partitions).

use crate::duration::Duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use wordcount_protocol::{
    fault::{FIRST_FILE, MAX_SLOW, MIN_SLOW},
    CrashPoint, Fault,
};

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
