//! The driver: enqueues the input files, merges committed results in its
//! memory while workers run, and writes the counts and the summary when
//! every file is in.

use crate::backend::{self, Backend, JobSettings, Progress};
use crate::input::{self, InputFile};
use crate::merge::Merge;
use crate::report::{JobFacts, Report};
use anyhow::{bail, Result};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use wordcount_protocol::{Commit, OnUnreadable, RedisMode};

pub struct DriverOptions {
    pub redis: String,
    pub mode: RedisMode,
    pub prefix: String,
    pub input: PathBuf,
    pub settings: JobSettings,
    pub top: usize,
    pub patience: Duration,
}

/// What the driver saw, with the time each phase took.
pub struct DriverOutcome {
    pub report: Report,
    pub progress: Progress,
    pub failures: Vec<(String, String)>,
    /// Listing the input, creating the job, enqueueing.
    pub enqueue: Duration,
    /// Until every file is committed and merged.
    pub count_and_commit: Duration,
    /// Writing the counts and the summary into Redis.
    pub write_result: Duration,
}

/// How long the driver waits for a commit before it looks at the progress again.
const TICK: Duration = Duration::from_millis(10);
/// How often the driver rewrites the top words while the job runs.
const TOP_EVERY: Duration = Duration::from_secs(1);

pub fn run(opts: &DriverOptions, stop: &AtomicBool) -> Result<DriverOutcome> {
    let started = Instant::now();
    let files = input::list_relative(&opts.input)?;
    if files.is_empty() {
        tracing::warn!("input {} holds no files", opts.input.display());
    }
    let mut backend = backend::open(opts.mode, &opts.redis, &opts.prefix, opts.patience)?;
    backend.create_job(&opts.settings)?;
    backend.enqueue_all(&files)?;
    let enqueue = started.elapsed();

    let per_file = opts.settings.commit == Commit::PerFile;
    let mut merge = Merge::default();
    let mut ticker = Ticker::new();
    let mut count_and_commit;
    let progress = loop {
        let p = wait_until_merged(
            opts,
            &files,
            backend.as_mut(),
            &mut merge,
            &mut ticker,
            stop,
        )?;
        count_and_commit = started.elapsed() - enqueue;
        // With per-file commits, the result is written whole unless Redis
        // lost something meanwhile; then it is merged and written again.
        if !per_file || merge.finish(backend.as_mut())? {
            break p;
        }
    };

    let counts = if per_file {
        merge.into_counts()
    } else {
        backend.counts()?
    };
    let top = counts.top(opts.top);
    backend.write_top(&top)?;
    let failures = backend.failures()?;
    let report = Report {
        words: counts.total(),
        distinct: counts.distinct() as u64,
        top,
        seconds: started.elapsed().as_secs_f64(),
        phases: None,
        job: Some(JobFacts {
            files: progress.files,
            bytes: progress.bytes,
            commits_ignored: progress.commits_ignored,
            files_failed: progress.files_failed,
            ..JobFacts::default()
        }),
    };
    backend.write_summary(&serde_json::to_string(&report)?)?;
    backend.wake_workers()?;
    let write_result = started.elapsed() - enqueue - count_and_commit;
    ticker.finish();
    Ok(DriverOutcome {
        report,
        progress,
        failures,
        enqueue,
        count_and_commit,
        write_result,
    })
}

/// Merges committed results as they come until every file is committed
/// and, with per-file commits, merged; returns the progress then.
fn wait_until_merged(
    opts: &DriverOptions,
    files: &[InputFile],
    backend: &mut dyn Backend,
    merge: &mut Merge,
    ticker: &mut Ticker,
    stop: &AtomicBool,
) -> Result<Progress> {
    let per_file = opts.settings.commit == Commit::PerFile;
    let mut top_written = (Instant::now(), 0);
    loop {
        if stop.load(Ordering::Relaxed) {
            bail!("interrupted");
        }
        let p = backend.progress()?;
        if !p.enqueue_done {
            // Redis came back from a snapshot older than the enqueueing (or
            // from nothing): restore what it lacks.
            tracing::warn!("Redis lost the queue; enqueueing again what it lacks");
            backend.create_job(&opts.settings)?;
            backend.enqueue_all(files)?;
            continue;
        }
        if !per_file {
            if p.is_done() {
                return Ok(p);
            }
            std::thread::sleep(TICK);
            continue;
        }
        // Every commit is in once the job is done: no need to wait (an
        // idle Redis ends a short block only at its next cron tick).
        let wait = if p.is_done() { Duration::ZERO } else { TICK };
        merge.catch_up(backend, wait)?;
        if p.is_done() && merge.files() == p.files_done {
            return Ok(p);
        }
        if merge.files() > top_written.1 && top_written.0.elapsed() >= TOP_EVERY {
            backend.write_top(&merge.top(opts.top))?;
            top_written = (Instant::now(), merge.files());
        }
        ticker.tick(&p);
    }
}

/// Files that could not be read (path, why). The job still counted every
/// other file and reported the totals; this makes it end failed, naming them.
#[derive(Debug, thiserror::Error)]
#[error("{}", describe(.0))]
pub struct Unreadable(pub Vec<(String, String)>);

/// How many files of a list to name in a message.
const NAMED: usize = 3;

fn describe(files: &[(String, String)]) -> String {
    let named: Vec<String> = files
        .iter()
        .take(NAMED)
        .map(|(path, why)| format!("{path} ({why})"))
        .collect();
    let more = match files.len().saturating_sub(NAMED) {
        0 => String::new(),
        n => format!(", and {n} more"),
    };
    format!(
        "{} file(s) could not be read: {}{more}",
        files.len(),
        named.join("; ")
    )
}

/// What unreadable files do to a finished job: with `fail` an
/// [`Unreadable`] error, with `skip` a warning.
pub fn judge_unreadable(failures: &[(String, String)], policy: OnUnreadable) -> Result<()> {
    if failures.is_empty() {
        return Ok(());
    }
    match policy {
        OnUnreadable::Fail => Err(Unreadable(failures.to_vec()).into()),
        OnUnreadable::Skip => {
            eprintln!("wordcount: warning: {} (skipped)", describe(failures));
            Ok(())
        }
    }
}

/// Progress on stderr: a line that rewrites itself on a terminal, a log
/// line every few seconds elsewhere (a pod's log).
struct Ticker {
    last: Instant,
    tty: bool,
    shown: bool,
}

impl Ticker {
    fn new() -> Self {
        Ticker {
            last: Instant::now(),
            tty: std::io::stderr().is_terminal(),
            shown: false,
        }
    }

    fn tick(&mut self, p: &Progress) {
        let every = if self.tty {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(5)
        };
        if self.last.elapsed() < every {
            return;
        }
        self.last = Instant::now();
        let line = format!(
            "{}/{} files, {:.1}/{:.1} MB, {} words",
            p.files_done + p.files_failed,
            p.files,
            p.bytes_done as f64 / 1e6,
            p.bytes as f64 / 1e6,
            p.words
        );
        if self.tty {
            eprint!("\r\x1b[2K{line}");
            self.shown = true;
        } else {
            tracing::info!("{line}");
        }
    }

    fn finish(&self) {
        if self.shown {
            eprint!("\r\x1b[2K");
        }
    }
}
