//! One function per subcommand: each takes its parsed flags, does the work
//! through the library crates and prints what a person (or a pod's log)
//! reads.

use crate::args::{Conn, Data, Job, Output, StreamArgs, Unreadables};
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;
use wordcount_count::engine::{count_files, Parallelism};
use wordcount_count::generate::{generate, generate_tweets, CorpusSpec, TweetSpec};
use wordcount_count::input;
use wordcount_job::driver::{self, judge_unreadable, DriverOptions};
use wordcount_job::report::Report;
use wordcount_job::worker::{self, WorkerOptions};
use wordcount_protocol::Fault;

/// `wordcount count`: the files' words on this machine.
pub fn count(
    paths: &[PathBuf],
    out: &Output,
    threads: Option<usize>,
    processes: Option<usize>,
) -> Result<()> {
    let started = Instant::now();
    let files = input::list(paths)?;
    let par = match (threads, processes) {
        (Some(n), _) => Parallelism::Threads(n),
        (_, Some(n)) => Parallelism::Processes(n),
        _ => Parallelism::Serial,
    };
    if matches!(par, Parallelism::Threads(0) | Parallelism::Processes(0)) {
        bail!("--threads and --processes take at least 1");
    }
    let counts = count_files(&files, out.tokenizer, par)?;
    Report::from_counts(&counts, out.top, started.elapsed().as_secs_f64()).print(out.json)?;
    Ok(())
}

/// `wordcount driver`: enqueue the input and wait for the workers (a
/// driver pod, or a CRDT site).
pub fn driver(
    conn: Conn,
    data: Data,
    job: &Job,
    out: &Output,
    unreadable: &Unreadables,
    stream: &StreamArgs,
    stop: &AtomicBool,
) -> Result<()> {
    let opts = DriverOptions {
        redis: conn.redis,
        mode: conn.redis_mode,
        site: conn.site,
        prefix: conn.prefix,
        input: data.input,
        split: data.split,
        output: data.output,
        settings: job.settings(out),
        top: out.top,
        patience: conn.patience,
        stream: stream.plan(),
        mid_enqueue: None,
    };
    let outcome = driver::run(opts, stop)?;
    if let Some(s) = &outcome.report.stream {
        tracing::info!("{}", s.line());
    }
    outcome.report.print(out.json)?;
    judge_unreadable(&outcome.failures, unreadable.on_unreadable)
}

/// `wordcount worker`: take files from the queue and count them (a worker
/// pod, or a worker process of `run`).
pub fn worker(
    conn: &Conn,
    input: wordcount_store::Location,
    index: u32,
    name: Option<String>,
    faults: Vec<Fault>,
    stop: &AtomicBool,
) -> Result<()> {
    let name = name.unwrap_or_else(|| format!("worker-{index}-{}", std::process::id()));
    let stats = worker::run(
        WorkerOptions {
            redis: conn.own_first()?,
            mode: conn.redis_mode,
            prefix: conn.prefix.clone(),
            input,
            index,
            name,
            faults,
            patience: conn.patience,
        },
        stop,
    )?;
    tracing::info!(
        files = stats.files,
        stolen = stats.stolen,
        ignored = stats.ignored,
        "job done"
    );
    Ok(())
}

/// `wordcount generate --tweets`.
pub fn tweets(out: &Path, spec: &TweetSpec) -> Result<()> {
    let written = generate_tweets(out, spec)?;
    eprintln!(
        "wrote {} files of tweets into {}",
        written.len(),
        out.display()
    );
    Ok(())
}

/// `wordcount generate`: a synthetic corpus.
pub fn corpus(out: &Path, spec: &CorpusSpec) -> Result<()> {
    let written = generate(out, spec)?;
    eprintln!("wrote {} files into {}", written.len(), out.display());
    Ok(())
}

/// `wordcount run`: a whole job on this machine.
#[cfg(feature = "lab")]
pub fn run(a: crate::args::run::RunArgs, stop: std::sync::Arc<AtomicBool>) -> Result<()> {
    use std::sync::atomic::Ordering;
    use std::time::Duration;
    use wordcount_lab::local::{self, RunOptions};
    use wordcount_protocol::Autoscale;

    let autoscale = a.autoscale.map(|(min, max)| Autoscale {
        min_workers: min,
        max_workers: max,
        target_lag: a.target_lag,
        cooldown: a.cooldown,
    });
    let opts = RunOptions {
        input: a.data.input,
        split: a.data.split,
        output: a.data.output,
        workers: match autoscale {
            Some(rule) => rule.min_workers as usize,
            None => a
                .workers
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
        },
        top: a.out.top,
        settings: a.job.settings(&a.out),
        faults: a.faults,
        kill_every: a.kill_every,
        verify: a.verify,
        stream: a.stream.plan(),
        timeline: a.timeline,
        autoscale,
        redis_faults: a.redis.faults(),
        raft: a.mode.raft()?,
        crdt: a.mode.crdt()?,
        ui: a.ui,
        seed: a.seed.unwrap_or_else(rand::random),
    };
    let outcome = local::run(&opts, stop.clone())?;
    outcome.report.print(a.out.json)?;
    if !a.out.json {
        for line in outcome.report.summary() {
            eprintln!("{line}");
        }
    }
    if let Some(view) = &outcome.view {
        // Keeps the live view up after the run for --ui-linger, or until Ctrl-C.
        if !a.ui_linger.is_zero() {
            eprintln!(
                "live view: {} stays up for {} (Ctrl-C to end)",
                view.url(),
                humantime::format_duration(a.ui_linger)
            );
            let until = Instant::now() + a.ui_linger;
            while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    if let Some(diff) = outcome.mismatch {
        bail!("verification failed: {diff}");
    }
    if opts.verify {
        eprintln!("verified: the counts equal a serial count");
    }
    judge_unreadable(&outcome.failures, a.unreadable.on_unreadable)
}
