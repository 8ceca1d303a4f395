//! Experiments: each generates its input, times real counts and real jobs
//! through Redis, and writes `OUT/NAME.csv` and `OUT/NAME.png`, and prints a
//! table. Every number written is a median of `--repeat` measured runs.

mod backpressure;
mod checkpoint;
mod claim_timeout;
mod commit;
pub(crate) mod corpus;
mod crdt;
mod efficiency;
mod filesize;
pub(crate) mod machine;
mod measure;
mod plot;
mod raft;
mod skew;
mod straggler;
mod stream;
mod stream_faults;
mod stream_rate;
pub(crate) mod table;
mod timed;

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use corpus::Inputs;
use measure::Measure;
use plot::Chart;
use table::Table;

/// The experiments, as named on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Experiment {
    /// Parallel efficiency: 1..N workers on a fixed input, and N workers on a growing number of files.
    Efficiency,
    /// One atomic commit per file against one ZINCRBY per word.
    Commit,
    /// File size from 100 B up, at equal total bytes.
    Filesize,
    /// Many equal files and one larger one.
    Skew,
    /// A slow worker: completion time against the claim timeout.
    Straggler,
    /// Completion time against the claim timeout, with and without a crash.
    ClaimTimeout,
    /// Streams: latency and throughput against the injection rate, up to 150 % of the batch throughput.
    StreamRate,
    /// A stream at half its capacity through a crash, a straggler and repeated kills.
    StreamFaults,
    /// Backpressure none, pause and adaptive at 150 % of capacity.
    Backpressure,
    /// Redis snapshots: completion time against the snapshot interval.
    CheckpointCost,
    /// Redis killed and restarted from its snapshot: time and files redone against the kill interval.
    RedisKill,
    /// RedisRaft with 3 and 5 replicas against one Redis (needs the module).
    RaftCost,
    /// RedisRaft replicas killed: one, the leader, two of three, one every N (needs the module).
    RaftKill,
    /// The CRDT mode's three sites against one Redis (and RedisRaft, when its module is here).
    CrdtCost,
    /// Read repair: convergence time against the files an instance missed (needs root).
    ReadRepair,
    /// Cut-and-heal cycles: files known per instance over time, the cuts shaded (needs root).
    Partitions,
    /// Redis restarted from old snapshots: files recomputed by workers against repaired from peers.
    CheckpointRecovery,
    /// Every experiment, one after the other.
    All,
}

impl Experiment {
    const EACH: [Experiment; 17] = [
        Experiment::Efficiency,
        Experiment::Commit,
        Experiment::Filesize,
        Experiment::Skew,
        Experiment::Straggler,
        Experiment::ClaimTimeout,
        Experiment::StreamRate,
        Experiment::StreamFaults,
        Experiment::Backpressure,
        Experiment::CheckpointCost,
        Experiment::RedisKill,
        Experiment::RaftCost,
        Experiment::RaftKill,
        Experiment::CrdtCost,
        Experiment::ReadRepair,
        Experiment::Partitions,
        Experiment::CheckpointRecovery,
    ];

    /// Why it cannot run here, if it cannot: RedisRaft's module (no
    /// package carries it) is missing, or partitions need root.
    pub fn unavailable(self) -> Option<String> {
        match self {
            Experiment::RaftCost | Experiment::RaftKill => crate::local::raft::find_module(None)
                .err()
                .map(|e| format!("{e:#}")),
            // SAFETY: geteuid has no preconditions.
            Experiment::ReadRepair | Experiment::Partitions if unsafe { libc::geteuid() } != 0 => {
                Some(
                    "it cuts instances off with network namespaces and iptables, which needs root"
                        .into(),
                )
            }
            _ => None,
        }
    }

    /// The name on the command line, also the stem of the files written.
    pub fn name(self) -> &'static str {
        match self {
            Experiment::Efficiency => "efficiency",
            Experiment::Commit => "commit",
            Experiment::Filesize => "filesize",
            Experiment::Skew => "skew",
            Experiment::Straggler => "straggler",
            Experiment::ClaimTimeout => "claim-timeout",
            Experiment::StreamRate => "stream-rate",
            Experiment::StreamFaults => "stream-faults",
            Experiment::Backpressure => "backpressure",
            Experiment::CheckpointCost => "checkpoint-cost",
            Experiment::RedisKill => "redis-kill",
            Experiment::RaftCost => "raft-cost",
            Experiment::RaftKill => "raft-kill",
            Experiment::CrdtCost => "crdt-cost",
            Experiment::ReadRepair => "read-repair",
            Experiment::Partitions => "partitions",
            Experiment::CheckpointRecovery => "checkpoint-recovery",
            Experiment::All => "all",
        }
    }
}

/// How large the inputs are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Scale {
    /// A minute or two per experiment on 2 cores.
    #[default]
    Small,
    /// The sizes of the issue: up to 1 GB files (long).
    Full,
    /// Seconds: for the tests.
    #[value(hide = true)]
    Tiny,
}

#[derive(clap::Args, Debug)]
pub struct ExperimentArgs {
    /// Which experiment to run.
    #[arg(value_enum)]
    pub name: Experiment,
    #[command(flatten)]
    pub settings: Settings,
}

/// How experiments run, for `experiment` and `report` alike.
#[derive(clap::Args, Debug)]
pub struct Settings {
    /// Directory for each experiment's NAME.csv and NAME.png, and for a
    /// report's report.md and report.html (created if needed).
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value_t)]
    pub scale: Scale,
    /// Worker counts: the sweep of `efficiency`; the other experiments use
    /// the largest [default: 1 up to the number of cores].
    #[arg(long, num_args = 1.., value_name = "N")]
    pub workers: Vec<usize>,
    /// Runs per measurement point; the median is reported.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub repeat: usize,
    /// Keep the generated input under OUT/input instead of a temporary directory.
    #[arg(long)]
    pub keep_input: bool,
}

/// What an experiment hands back: its rows and its plot.
pub(crate) struct Outcome {
    /// One line saying what was measured, for the table and the plot.
    pub title: String,
    pub table: Table,
    pub charts: Vec<Chart>,
    /// Lines printed under the table: how to read it, what it summarises.
    pub notes: Vec<String>,
}

/// What every experiment gets: the settings, the input, the timer.
pub(crate) struct Ctx {
    pub scale: Scale,
    /// Worker counts to sweep (sorted, deduplicated, at least 1).
    pub workers: Vec<usize>,
    pub inputs: Inputs,
    pub measure: Measure,
}

impl Ctx {
    /// The worker count of experiments that do not sweep it.
    pub fn max_workers(&self) -> usize {
        *self.workers.last().expect("at least one worker count")
    }
}

pub fn run(args: ExperimentArgs) -> Result<()> {
    run_with_stop(args, Arc::new(AtomicBool::new(false)))
}

/// Like [`run`]; setting `stop` (Ctrl-C) ends the current run and the experiment.
pub fn run_with_stop(args: ExperimentArgs, stop: Arc<AtomicBool>) -> Result<()> {
    let runner = Runner::new(args.settings, stop)?;
    let which: Vec<Experiment> = match args.name {
        Experiment::All => Experiment::EACH.to_vec(),
        one => vec![one],
    };
    for exp in which {
        if let Some(why) = exp.unavailable().filter(|_| args.name == Experiment::All) {
            eprintln!("[{}] skipped: {why}", exp.name());
            continue;
        }
        runner.run(exp)?;
    }
    Ok(())
}

/// Runs experiments with one set of [`Settings`], checked once.
pub(crate) struct Runner {
    settings: Settings,
    /// Worker counts to sweep (sorted, deduplicated, at least 1).
    workers: Vec<usize>,
    stop: Arc<AtomicBool>,
}

impl Runner {
    pub fn new(settings: Settings, stop: Arc<AtomicBool>) -> Result<Self> {
        if settings.repeat == 0 {
            bail!("--repeat takes at least 1");
        }
        if settings.workers.contains(&0) {
            bail!("--workers takes counts of at least 1");
        }
        prepare_out(&settings.out)?;
        let mut workers = settings.workers.clone();
        if workers.is_empty() {
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
            workers = (1..=cores).collect();
        }
        workers.sort_unstable();
        workers.dedup();
        Ok(Runner {
            settings,
            workers,
            stop,
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Runs `exp`, writes its CSV and PNG into the output directory, prints
    /// its table, and hands back what it measured.
    pub fn run(&self, exp: Experiment) -> Result<Outcome> {
        let s = &self.settings;
        let ctx = Ctx {
            scale: s.scale,
            workers: self.workers.clone(),
            inputs: Inputs::new(&s.out, exp.name(), s.keep_input)?,
            measure: Measure::new(exp.name(), s.repeat, self.stop.clone()),
        };
        run_one(exp, &ctx, &s.out)
    }
}

fn run_one(exp: Experiment, ctx: &Ctx, out: &Path) -> Result<Outcome> {
    let started = Instant::now();
    eprintln!(
        "[{}] starting ({} scale, repeat {})",
        exp.name(),
        format!("{:?}", ctx.scale).to_lowercase(),
        ctx.measure.repeat
    );
    warn_if_busy(exp.name());
    let outcome = match exp {
        Experiment::Efficiency => efficiency::run(ctx),
        Experiment::Commit => commit::run(ctx),
        Experiment::Filesize => filesize::run(ctx),
        Experiment::Skew => skew::run(ctx),
        Experiment::Straggler => straggler::run(ctx),
        Experiment::ClaimTimeout => claim_timeout::run(ctx),
        Experiment::StreamRate => stream_rate::run(ctx),
        Experiment::StreamFaults => stream_faults::run(ctx),
        Experiment::Backpressure => backpressure::run(ctx),
        Experiment::CheckpointCost => checkpoint::cost(ctx),
        Experiment::RedisKill => checkpoint::kill(ctx),
        Experiment::RaftCost => raft::cost(ctx),
        Experiment::RaftKill => raft::kill(ctx),
        Experiment::CrdtCost => crdt::cost(ctx),
        Experiment::ReadRepair => crdt::read_repair(ctx),
        Experiment::Partitions => crdt::partitions(ctx),
        Experiment::CheckpointRecovery => crdt::checkpoint_recovery(ctx),
        Experiment::All => unreachable!("expanded by the caller"),
    }
    .with_context(|| format!("experiment {} failed", exp.name()))?;
    let csv = out.join(format!("{}.csv", exp.name()));
    let png = out.join(format!("{}.png", exp.name()));
    outcome.table.write_csv(&csv)?;
    plot::draw(&png, &outcome.title, &outcome.charts)?;
    println!("\n{}: {}", exp.name(), outcome.title);
    print!("{}", outcome.table.render());
    for note in &outcome.notes {
        println!("note: {note}");
    }
    eprintln!(
        "[{}] done in {:.1} s: wrote {} and {}",
        exp.name(),
        started.elapsed().as_secs_f64(),
        csv.display(),
        png.display()
    );
    Ok(outcome)
}

/// Says so when other work keeps the cores busy while this process idles
/// between experiments: the timings will show it, and readers should know.
fn warn_if_busy(name: &str) {
    let Some(before) = cpu_times() else { return };
    std::thread::sleep(std::time::Duration::from_millis(300));
    let Some(after) = cpu_times() else { return };
    let (busy, total) = (after.0 - before.0, after.1 - before.1);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let others = busy as f64 / total.max(1) as f64 * cores as f64;
    if others >= 0.3 {
        eprintln!(
            "[{name}] note: other processes keep {others:.1} of {cores} cores busy; \
             the timings will be slower and noisier than on an idle machine"
        );
    }
}

/// Busy and total CPU time of the machine so far, from /proc/stat.
fn cpu_times() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = fields.iter().take(8).sum();
    // idle and iowait
    let idle = fields.get(3)? + fields.get(4).unwrap_or(&0);
    Some((total - idle, total))
}

/// Creates `out` and checks that it takes files, so that a bad `--out`
/// fails before minutes of measuring rather than after.
fn prepare_out(out: &Path) -> Result<()> {
    std::fs::create_dir_all(out)
        .with_context(|| format!("cannot create the output directory {}", out.display()))?;
    let probe = out.join(".wordcount-write-test");
    std::fs::write(&probe, b"")
        .with_context(|| format!("cannot write into the output directory {}", out.display()))?;
    std::fs::remove_file(&probe).ok();
    Ok(())
}
