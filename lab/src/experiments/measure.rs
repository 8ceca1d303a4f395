//! Timing: every point runs `repeat` times and is reported by its median, so
//! one slow run (a busy core, a page-cache miss) does not move it. One place
//! times a local count and one a job through Redis, for every experiment.

use super::plot::Chart;
use super::table::{Row, Table, TIMED};
pub use super::timed::Timed;
use crate::local::{self, RunOptions, RunOutcome};
use anyhow::{bail, Result};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wordcount_count::engine::{count_files, Parallelism};
use wordcount_count::input;
use wordcount_count::tokenize::Tokenizer;
use wordcount_job::fault::Fault;
use wordcount_job::report::JobFacts;
use wordcount_job::state::JobSettings;
use wordcount_protocol::Commit;

/// The timer of one experiment.
pub struct Measure {
    experiment: &'static str,
    pub repeat: usize,
    stop: Arc<AtomicBool>,
}

/// How the words are counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Serial,
    Threads,
    Processes,
    /// `wordcount run`: redis-server, the driver and worker processes.
    Redis,
    /// The same, with files larger than SIZE counted as byte ranges
    /// (`--split SIZE`); not in [`Method::PARALLEL`]: an experiment asks.
    RedisSplit(u64),
}

impl Method {
    /// The methods that use `p` workers, in the order plots list them.
    pub const PARALLEL: [Method; 3] = [Method::Threads, Method::Processes, Method::Redis];

    pub fn name(self) -> &'static str {
        match self {
            Method::Serial => "serial",
            Method::Threads => "threads",
            Method::Processes => "processes",
            Method::Redis => "redis",
            Method::RedisSplit(_) => "redis-split",
        }
    }
}

/// What one job through Redis did, besides its time.
#[derive(Clone, Debug, Default)]
pub struct JobSample {
    pub words: u64,
    /// What its faults did.
    pub job: JobFacts,
    /// Of its time, starting Redis (RedisRaft: forming the cluster).
    pub redis_start: f64,
}

/// One method timed at one point, with its parallel efficiency
/// T_serial / (p * T_p) against the serial count of the same input.
pub struct Point {
    pub method: Method,
    pub workers: usize,
    pub timed: Timed<()>,
    pub efficiency: f64,
}

/// The columns that [`write_points`] fills after the point's own.
pub const POINT_COLUMNS: [&str; 7] = [
    "method",
    "workers",
    TIMED[0],
    TIMED[1],
    TIMED[2],
    "mib_per_s",
    "efficiency",
];

/// One row per point: `lead` (the point's own columns), then [`POINT_COLUMNS`].
pub fn write_points(table: &mut Table, points: &[Point], bytes: u64, lead: impl Fn() -> Row) {
    for p in points {
        table.push(
            lead()
                .cell(p.method.name())
                .cell(p.workers)
                .timed(&p.timed)
                .num(mib_per_s(bytes, p.timed.median), 1)
                .num(p.efficiency, 3),
        );
    }
}

/// Adds every point to the chart's line of its method.
pub fn plot_points(
    chart: &mut Chart,
    points: &[Point],
    x: impl Fn(&Point) -> f64,
    y: impl Fn(&Point) -> f64,
) {
    for p in points {
        chart.series(p.method.name()).push((x(p), y(p)));
    }
}

impl Measure {
    pub fn new(experiment: &'static str, repeat: usize, stop: Arc<AtomicBool>) -> Self {
        Measure {
            experiment,
            repeat,
            stop,
        }
    }

    /// Progress on stderr, tagged with the experiment.
    pub fn say(&self, msg: impl std::fmt::Display) {
        eprintln!("[{}] {msg}", self.experiment);
    }

    /// Runs `once` `repeat` times; `once` returns the seconds it measured
    /// and anything else the run saw.
    pub fn repeat<T>(
        &self,
        label: &str,
        mut once: impl FnMut() -> Result<(f64, T)>,
    ) -> Result<Timed<T>> {
        let mut runs = Vec::with_capacity(self.repeat);
        for _ in 0..self.repeat {
            if self.stop.load(Ordering::Relaxed) {
                bail!("interrupted");
            }
            runs.push(once()?);
        }
        runs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (min, max) = (runs[0].0, runs[runs.len() - 1].0);
        let (median, detail) = runs.swap_remove(runs.len() / 2);
        self.say(format_args!(
            "{label}: {median:.3} s (median of {}, {min:.3}..{max:.3})",
            self.repeat
        ));
        Ok(Timed {
            median,
            min,
            max,
            detail,
        })
    }

    /// Times `wordcount count` of the files under `dir` (listing included,
    /// as the command does it).
    pub fn count(&self, label: &str, dir: &Path, par: Parallelism) -> Result<Timed<()>> {
        self.repeat(label, || {
            let started = Instant::now();
            let files = input::list(&[dir.to_path_buf()])?;
            count_files(&files, Tokenizer::Alnum, par)?;
            Ok((started.elapsed().as_secs_f64(), ()))
        })
    }

    /// Times a job through Redis until its result is ready: Redis start,
    /// workers start, enqueueing, counting and committing, writing the
    /// result. Not the workers' exit afterwards, which a straggler can draw
    /// out, nor stopping Redis, nor `verify` (whose difference fails it).
    pub fn job(&self, label: &str, opts: &RunOptions) -> Result<Timed<JobSample>> {
        self.repeat(label, || {
            let outcome = local::run(opts, self.stop.clone())?;
            if let Some((path, err)) = outcome.failures.first() {
                bail!("the job could not count {path}: {err}");
            }
            if let Some(diff) = outcome.mismatch {
                bail!("the job's counts differ from a serial count: {diff}");
            }
            let report = outcome.report;
            let phases = report.phases.clone().unwrap_or_default();
            let shutdown = phases.workers_exit + phases.redis_stop + phases.verify;
            let sample = JobSample {
                words: report.words,
                job: report.job.unwrap_or_default(),
                redis_start: phases.redis_start,
            };
            Ok((report.seconds - shutdown, sample))
        })
    }

    /// Runs one job through Redis, a batch or a stream, once, and hands
    /// back all it saw (a stream's report and timeline).
    pub fn run(&self, opts: &RunOptions) -> Result<RunOutcome> {
        if self.stop.load(Ordering::Relaxed) {
            bail!("interrupted");
        }
        let outcome = local::run(opts, self.stop.clone())?;
        if let Some((path, err)) = outcome.failures.first() {
            bail!("the job could not count {path}: {err}");
        }
        Ok(outcome)
    }

    /// Times one method on `p` workers over the files under `dir`.
    pub fn method(&self, method: Method, dir: &Path, p: usize, what: &str) -> Result<Timed<()>> {
        let label = format!("{} p={p} {what}", method.name());
        match method {
            Method::Serial => self.count(&label, dir, Parallelism::Serial),
            Method::Threads => self.count(&label, dir, Parallelism::Threads(p)),
            Method::Processes => self.count(&label, dir, Parallelism::Processes(p)),
            Method::Redis | Method::RedisSplit(_) => {
                let split = match method {
                    Method::RedisSplit(size) => size,
                    _ => 0,
                };
                let opts = RunOptions {
                    split,
                    ..job_options(dir, p)
                };
                let t = self.job(&label, &opts)?;
                Ok(Timed {
                    median: t.median,
                    min: t.min,
                    max: t.max,
                    detail: (),
                })
            }
        }
    }

    /// Serial, then every parallel method on each worker count of `ps`,
    /// over the files under `dir`.
    pub fn points(&self, dir: &Path, ps: &[usize], what: &str) -> Result<Vec<Point>> {
        self.points_of(&Method::PARALLEL, dir, ps, what)
    }

    /// Serial, then each of `methods` on each worker count of `ps`.
    pub fn points_of(
        &self,
        methods: &[Method],
        dir: &Path,
        ps: &[usize],
        what: &str,
    ) -> Result<Vec<Point>> {
        let serial = self.method(Method::Serial, dir, 1, what)?;
        let t_serial = serial.median;
        let mut points = vec![Point {
            method: Method::Serial,
            workers: 1,
            timed: serial,
            efficiency: 1.0,
        }];
        for &p in ps {
            for &method in methods {
                let timed = self.method(method, dir, p, what)?;
                let efficiency = t_serial / (p as f64 * timed.median);
                points.push(Point {
                    method,
                    workers: p,
                    timed,
                    efficiency,
                });
            }
        }
        Ok(points)
    }
}

/// A job's options as `wordcount run --input DIR --workers P` has them,
/// without `--verify`: the experiments time the job alone, with files
/// counted whole (`--split 0`) unless an experiment says otherwise.
pub fn job_options(dir: &Path, workers: usize) -> RunOptions {
    RunOptions {
        input: wordcount_store::Location::Dir(dir.to_path_buf()),
        split: 0,
        output: None,
        workers,
        top: 10,
        settings: JobSettings {
            tokenizer: Tokenizer::Alnum,
            commit: Commit::PerFile,
            claim_timeout: Duration::from_millis(5000),
        },
        faults: Vec::<Fault>::new(),
        kill_every: None,
        verify: false,
        stream: None,
        timeline: None,
        autoscale: None,
        redis_faults: Default::default(),
        raft: None,
        crdt: None,
        ui: None,
        seed: rand::random(),
    }
}

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 20) as f64
}

pub fn mib_per_s(bytes: u64, seconds: f64) -> f64 {
    mib(bytes) / seconds
}
