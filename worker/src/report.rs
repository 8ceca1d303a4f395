//! What a count prints: the top words as `count word` lines, or one JSON
//! object with totals and timings.

use crate::counts::{Counts, WordCount};
use crate::latency::Percentiles;
use serde::Serialize;
use std::io::Write;

#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct Report {
    pub words: u64,
    pub distinct: u64,
    pub top: Vec<WordCount>,
    pub seconds: f64,
    /// `run` only: seconds per phase.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub phases: Option<Phases>,
    /// `run` and `driver`: what the faults did.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub job: Option<JobFacts>,
    /// A stream's latency and rates (`--stream`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub stream: Option<StreamReport>,
    /// The CRDT mode's instances, one per site (`--redis crdt`); a site's
    /// driver (`driver --site`) reports its own instance only.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub instances: Option<Vec<InstanceReport>>,
}

/// One CRDT instance at the end of a job.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct InstanceReport {
    /// Files it holds (every file of the job, once converged).
    pub files_known: u64,
    /// Of those, files it learnt by read repair.
    pub files_repaired: u64,
    /// From the end of the last cut (here: of the sites' jobs) until every
    /// instance held the same files.
    pub converged_ms: u64,
}

/// What a stream did: files a second, latencies from Redis in milliseconds.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct StreamReport {
    /// The rate asked for.
    pub rate: f64,
    pub backpressure: String,
    pub injected: u64,
    pub committed: u64,
    /// Commit time minus due time, measured by Redis.
    pub latency_ms: Percentiles,
    /// Files committed per second, over the stream: from the first file
    /// due to the last commit, or to the end of the last tick if later.
    pub throughput_files_per_s: f64,
    /// Files injected per second, from the first tick to the end of the last.
    pub effective_rate: f64,
    /// The most entries waiting or being counted at once (lag + pending).
    pub max_lag: u64,
    /// Time the source held back files that were due.
    pub throttled_ms: u64,
}

impl StreamReport {
    /// One line for the text summary.
    pub fn line(&self) -> String {
        let l = &self.latency_ms;
        format!(
            "stream: {} injected, {} committed, {:.1} files/s (asked {}, injected at {:.1}); \
             latency p50 {} ms, p90 {}, p99 {}, max {}; max lag {}; throttled {:.1} s ({})",
            self.injected,
            self.committed,
            self.throughput_files_per_s,
            self.rate,
            self.effective_rate,
            l.p50,
            l.p90,
            l.p99,
            l.max,
            self.max_lag,
            self.throttled_ms as f64 / 1000.0,
            self.backpressure
        )
    }
}

/// Seconds of each phase of `wordcount run`, one after the other.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct Phases {
    /// redis-server started until it answers.
    pub redis_start: f64,
    /// The worker processes spawned.
    pub workers_start: f64,
    /// The driver: input listed, connected (the function library loaded),
    /// job created, files enqueued.
    pub enqueue: f64,
    /// Until every file is committed and merged.
    pub count_and_commit: f64,
    /// The counts and the summary written into Redis.
    pub write_result: f64,
    /// The workers seeing the end and exiting.
    pub workers_exit: f64,
    /// The last figures read, redis-server stopped.
    pub redis_stop: f64,
    /// The serial count of `--verify` (0 without).
    pub verify: f64,
}

impl Phases {
    /// `name seconds` pairs in order, for a summary line.
    pub fn named(&self) -> [(&'static str, f64); 8] {
        [
            ("redis start", self.redis_start),
            ("workers start", self.workers_start),
            ("enqueue", self.enqueue),
            ("count+commit", self.count_and_commit),
            ("write result", self.write_result),
            ("workers exit", self.workers_exit),
            ("redis stop", self.redis_stop),
            ("verify", self.verify),
        ]
    }
}

#[derive(Clone, Debug, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct JobFacts {
    pub files: u64,
    pub bytes: u64,
    /// Second commits of a file that changed nothing (a straggler and its thief).
    pub commits_ignored: u64,
    pub files_failed: u64,
    /// Worker processes that died and were replaced.
    pub worker_restarts: u64,
    /// Workers killed by `--kill-every`.
    pub workers_killed: u64,
    /// Faults that fired, each once per job: crashes, and stragglers at
    /// their first file.
    pub faults_fired: u64,
    /// The most workers at once (`--autoscale` changes it).
    #[serde(default)]
    pub peak_workers: u64,
    /// Times `--autoscale` changed the number of workers.
    #[serde(default)]
    pub scalings: u64,
    /// Times Redis was killed and started again from its last snapshot
    /// (RedisRaft: a replica, from its log).
    #[serde(default)]
    pub redis_restarts: u64,
    /// Commits a restart rolled back, which the job made again (RedisRaft:
    /// commits that went missing, which must be none).
    #[serde(default)]
    pub files_redone: u64,
    /// Checkpoints (`BGSAVE`) taken by `--snapshot-interval`.
    #[serde(default)]
    pub snapshots: u64,
    /// What the checkpoints cost Redis: its time in `fork()` over all of
    /// them (`latest_fork_usec`, during which it serves no one), and the
    /// most memory one copied on write while the job went on writing
    /// (`rdb_last_cow_size`).
    #[serde(default)]
    pub snapshot_fork_us: u64,
    #[serde(default)]
    pub snapshot_cow_bytes: u64,
    /// RedisRaft's replicas (0 for one Redis).
    #[serde(default)]
    pub replicas: u64,
    /// Replicas killed by `--replica-fault` and `--redis-kill-every`.
    #[serde(default)]
    pub replica_kills: u64,
    /// Raft terms begun during the job: leader elections.
    #[serde(default)]
    pub leader_elections: u64,
    /// The faults asked for that fired, and those that did not (the job
    /// ended first, or never gave them their moment), in the flags' own
    /// grammar.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults_fired_specs: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults_unfired: Vec<String>,
    /// The seed of the run's random choices (`--seed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// How long each Redis restart took to answer again (loading its
    /// snapshot), and the driver to take away what it rolled back (ms).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redis_load_ms: Vec<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rollback_ms: Vec<f64>,
}

impl Report {
    pub fn from_counts(counts: &Counts, top: usize, seconds: f64) -> Self {
        Report {
            words: counts.total(),
            distinct: counts.distinct() as u64,
            top: counts.top(top),
            seconds,
            phases: None,
            job: None,
            stream: None,
            instances: None,
        }
    }

    /// Prints the report: `count word` lines, or JSON.
    pub fn print(&self, json: bool) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        if json {
            serde_json::to_writer(&mut out, self)?;
            out.write_all(b"\n")?;
        } else {
            for e in &self.top {
                write!(out, "{} ", e.count)?;
                out.write_all(&e.word)?;
                out.write_all(b"\n")?;
            }
        }
        out.flush()
    }
}
