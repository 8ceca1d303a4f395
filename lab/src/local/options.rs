//! What a local run is asked (`RunOptions`, and the CRDT mode's
//! `CrdtSetup` with its partitions) and what it gives back (`RunOutcome`).

use super::job_redis::RaftSetup;
use super::RedisFaults;
use crate::live::View;
use crate::timeline;
use anyhow::Result;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use wordcount_job::fault::Fault;
use wordcount_job::report::Report;
use wordcount_job::source::StreamPlan;
use wordcount_job::state::JobSettings;
use wordcount_protocol::Autoscale;
use wordcount_store::Location;

pub struct RunOptions {
    pub input: Location,
    /// Files larger than this are counted as byte ranges (0: never).
    pub split: u64,
    /// Where every word's count is written once the job is done.
    pub output: Option<String>,
    pub workers: usize,
    pub top: usize,
    pub settings: JobSettings,
    pub faults: Vec<Fault>,
    pub kill_every: Option<Duration>,
    pub verify: bool,
    /// Makes the job a stream.
    pub stream: Option<StreamPlan>,
    /// Where to write a stream's timeline (CSV).
    pub timeline: Option<PathBuf>,
    /// Scale the workers on the queue's lag, starting from `workers`.
    pub autoscale: Option<Autoscale>,
    /// Checkpoints and kills of Redis (of replicas, with `raft`).
    pub redis_faults: RedisFaults,
    /// RedisRaft's replicas instead of one Redis.
    pub raft: Option<RaftSetup>,
    /// Sites with a Redis each and a CRDT of the counts instead.
    pub crdt: Option<CrdtSetup>,
    /// Serve a live view of the job here (`--ui`).
    pub ui: Option<SocketAddr>,
    /// Where every random choice of the run comes from (see `seeded`).
    pub seed: u64,
}

pub struct RunOutcome {
    pub report: Report,
    /// With `--verify`: the first difference from a serial count, if any.
    pub mismatch: Option<String>,
    pub failures: Vec<(String, String)>,
    /// A stream's timeline (empty for a batch).
    pub timeline: Vec<timeline::Row>,
    /// The CRDT mode's instances and cuts over time.
    pub sites: Option<SitesTimeline>,
    /// The live view, showing the finished job until dropped.
    pub view: Option<View>,
}

/// Sites of the CRDT mode (`--redis crdt`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CrdtSetup {
    pub sites: usize,
    pub partitions: Vec<Partition>,
    /// A random site cut from a random instance this often, for so long.
    pub partition_every: Option<(Duration, Duration)>,
}

/// `--partition sites=I[,J],redis=K[,L],at=DUR,for=DUR`: the named sites'
/// workers cut from the named instances, `at` after the start, `for` long.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    pub sites: Vec<usize>,
    pub redis: Vec<usize>,
    pub at: Duration,
    pub lasts: Duration,
}

impl std::str::FromStr for Partition {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad =
            |why: String| format!("{s:?}: {why} (expected sites=I[,J],redis=K[,L],at=DUR,for=DUR)");
        let (mut sites, mut redis, mut at, mut lasts) = (Vec::new(), Vec::new(), None, None);
        let mut key = "";
        for part in s.split(',') {
            let value = match part.split_once('=') {
                Some((k, v)) => {
                    key = k;
                    v
                }
                // More of the list before: sites=0,1.
                None => part,
            };
            let index = || {
                value
                    .parse::<usize>()
                    .map_err(|_| bad(format!("{key} {value:?} is not a number")))
            };
            let duration =
                || humantime::parse_duration(value).map_err(|e| bad(format!("{key}: {e}")));
            match key {
                "sites" => sites.push(index()?),
                "redis" => redis.push(index()?),
                "at" => at = Some(duration()?),
                "for" => lasts = Some(duration()?),
                _ => return Err(bad(format!("unknown key {key:?}"))),
            }
        }
        if sites.is_empty() || redis.is_empty() {
            return Err(bad("no sites= or no redis=".into()));
        }
        Ok(Partition {
            sites,
            redis,
            at: at.ok_or_else(|| bad("no at=".into()))?,
            lasts: lasts.ok_or_else(|| bad("no for=".into()))?,
        })
    }
}

/// What a CRDT run saw over time: each instance's files known, and the
/// cuts, in milliseconds from the start of the job.
#[derive(Clone, Debug, Default)]
pub struct SitesTimeline {
    pub samples: Samples,
    pub cuts: Vec<CutSpan>,
}

/// (ms, files known by each instance), every [`SAMPLE_EVERY`].
pub type Samples = Vec<(u64, Vec<u64>)>;

/// Site `site` cut from instance `instance` from `from_ms` to `to_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CutSpan {
    pub site: usize,
    pub instance: usize,
    pub from_ms: u64,
    pub to_ms: u64,
}
