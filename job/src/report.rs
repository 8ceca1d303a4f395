//! What a count prints: the top words as `count word` lines, or one JSON
//! object with totals and timings.

use crate::latency::Percentiles;
use serde::Serialize;
use std::io::Write;
use wordcount_count::counts::{Counts, WordCount};
use wordcount_protocol::summary::Output;

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
    /// Where every word's count was written (`--output`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub output: Option<Output>,
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
    /// Transient failures of the object store (an HTTP 5xx, a cut read),
    /// retried with back-off, by the driver and the workers.
    #[serde(default)]
    pub store_retries: u64,
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
            output: None,
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

    /// What a person reads after a job, besides the counts: how long it
    /// took and in which phases, what its faults did, and what each mode
    /// (stream, CRDT sites, RedisRaft, snapshots, autoscaling) saw. One
    /// line each; empty for a plain count.
    pub fn summary(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let Some(job) = &self.job else {
            return lines;
        };
        let phases = self.phases.as_ref().map_or(String::new(), |p| {
            let named: Vec<String> = p
                .named()
                .iter()
                .map(|(name, s)| format!("{name} {s:.3}"))
                .collect();
            format!(" ({})", named.join(", "))
        });
        lines.push(format!(
            "{} files, {} words in {:.3} s{}; \
             {} workers killed, {} restarted, {} duplicate commits ignored",
            job.files,
            self.words,
            self.seconds,
            phases,
            job.workers_killed,
            job.worker_restarts,
            job.commits_ignored
        ));
        if job.store_retries > 0 {
            lines.push(format!(
                "object store: {} transient failures retried",
                job.store_retries
            ));
        }
        if !job.faults_fired_specs.is_empty() {
            lines.push(format!(
                "faults fired: {}",
                job.faults_fired_specs.join("; ")
            ));
        }
        for f in &job.faults_unfired {
            lines.push(format!(
                "fault {f} never fired: the job ended at {:.2} s",
                self.seconds
            ));
        }
        if let Some(s) = &self.stream {
            lines.push(s.line());
        }
        if let Some(o) = &self.output {
            lines.push(format!(
                "output: {} words written to {}",
                o.words, o.location
            ));
        }
        if let Some(instances) = &self.instances {
            let each = |f: fn(&InstanceReport) -> u64| {
                let v: Vec<String> = instances.iter().map(|i| f(i).to_string()).collect();
                v.join(" / ")
            };
            lines.push(format!(
                "crdt: {} instances, files known {}, repaired {}, converged {} ms after the sites were done",
                instances.len(),
                each(|i| i.files_known),
                each(|i| i.files_repaired),
                instances.first().map_or(0, |i| i.converged_ms)
            ));
        }
        if job.replicas > 0 {
            lines.push(format!(
                "redisraft: {} replicas, {} killed, {} restarted, {} leader elections, {} commits lost",
                job.replicas,
                job.replica_kills,
                job.redis_restarts,
                job.leader_elections,
                job.files_redone
            ));
        } else if job.redis_restarts > 0 || job.snapshots > 0 {
            lines.push(format!(
                "redis: {} snapshots (fork {:.1} ms in all, at most {:.1} MiB \
                 copied on write), {} restarts, {} files redone",
                job.snapshots,
                job.snapshot_fork_us as f64 / 1e3,
                job.snapshot_cow_bytes as f64 / (1u64 << 20) as f64,
                job.redis_restarts,
                job.files_redone
            ));
            if !job.redis_load_ms.is_empty() {
                let most = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
                lines.push(format!(
                    "recovery: Redis answered again {:.0} ms after a restart at most \
                     (loading its snapshot); the driver took back {} rollbacks in \
                     {:.1} ms at most",
                    most(&job.redis_load_ms),
                    job.rollback_ms.len(),
                    most(&job.rollback_ms)
                ));
            }
        }
        if job.scalings > 0 {
            lines.push(format!(
                "autoscale: {} changes, at most {} workers",
                job.scalings, job.peak_workers
            ));
        }
        if let Some(seed) = job.seed {
            lines.push(format!(
                "seed {seed} (--seed {seed} replays the run's random choices)"
            ));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wordcount_protocol::summary::{Summary, TopWord};

    /// What the driver writes in `P:summary` reads back as the contract's
    /// summary.
    #[test]
    fn the_summary_reads_back_as_the_contract_says() {
        let mut counts = Counts::new();
        counts.add(b"caf\xc3\xa9", 3);
        counts.add(b"x", 1);
        let mut report = Report::from_counts(&counts, 10, 1.25);
        report.job = Some(JobFacts::default());
        let json = serde_json::to_string(&report).unwrap();
        let s = Summary::parse(&json).unwrap();
        assert_eq!((s.words, s.distinct, s.seconds), (4, 2, 1.25));
        let word = |w: &str, count| TopWord {
            word: w.into(),
            count,
        };
        assert_eq!(s.top, vec![word("café", 3), word("x", 1)]);
    }
}
