//! The driver: enqueues the input files, merges committed results in its
//! memory while workers run, and writes the counts and the summary when
//! every file is in.

use crate::backend::{self, Backend};
use crate::crdt::anti_entropy::Convergence;
use crate::crdt::site::Site;
use crate::input::Input;
use crate::latency::Percentiles;
use crate::merge::Merge;
use crate::queue::{Depth, Done, Injection, Unit};
use crate::report::{JobFacts, Report, StreamReport};
use crate::source::{Source, SourceEvent, StreamPlan};
use crate::state::{JobSettings, Progress};
use anyhow::{bail, Result};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use wordcount_protocol::epoch_ms;
use wordcount_protocol::keys::stream;
use wordcount_protocol::summary::Output;
use wordcount_protocol::{Backpressure, Commit, OnUnreadable, RedisMode};
use wordcount_store::Location;

pub struct DriverOptions {
    pub redis: String,
    pub mode: RedisMode,
    /// The CRDT mode without a runner (`--site`): this site's instance is
    /// the I-th of `redis`; the driver enqueues its share of the input,
    /// then converges its own instance with the others and writes the
    /// whole job's result there (`crate::crdt::anti_entropy`).
    pub site: Option<usize>,
    pub prefix: String,
    pub input: Location,
    /// Files larger than this are enqueued as byte ranges of at most this
    /// size (0: never split).
    pub split: u64,
    /// Where every word's count is written once the job is done (a path,
    /// or s3://BUCKET/KEY).
    pub output: Option<String>,
    pub settings: JobSettings,
    pub top: usize,
    pub patience: Duration,
    /// Makes the job a stream.
    pub stream: Option<StreamPlan>,
    /// Called once, between the two halves of the first enqueueing:
    /// `--redis-fault at=enqueue` kills Redis there, on a job of any size.
    pub mid_enqueue: Option<MidEnqueue>,
}

/// What runs between the two halves of the first enqueueing.
pub type MidEnqueue = Box<dyn FnOnce() + Send>;

/// What the driver saw, with the time each phase took.
pub struct DriverOutcome {
    pub report: Report,
    pub progress: Progress,
    pub failures: Vec<(String, String)>,
    /// Listing the input, creating the job, enqueueing (a stream: its first tick).
    pub enqueue: Duration,
    /// Until every file is committed and merged.
    pub count_and_commit: Duration,
    /// Writing the counts and the summary into Redis.
    pub write_result: Duration,
    pub stream: Option<StreamRecord>,
    /// Each rollback the merge took away.
    pub rollbacks: Vec<crate::merge::Rollback>,
}

/// Everything a stream did, for its timeline.
pub struct StreamRecord {
    /// When the source started (ms since the epoch).
    pub started_ms: u64,
    pub injected: Vec<Injection>,
    /// Every file committed, in commit order.
    pub done: Vec<Done>,
    /// The queue every [`SAMPLE_EVERY`].
    pub samples: Vec<Sample>,
    /// Throttling on and off, since the start.
    pub events: Vec<(Duration, SourceEvent)>,
}

/// The queue and the source at one moment.
#[derive(Clone, Debug)]
pub struct Sample {
    /// Since the start.
    pub at: Duration,
    pub depth: Depth,
    pub injected: u64,
    pub committed: u64,
    /// Files a second the source injects at (adaptive) or was asked to.
    pub rate_now: f64,
    pub throttled: bool,
}

/// How long the driver waits for a commit before it looks at the progress again.
const TICK: Duration = Duration::from_millis(10);
/// How often the driver rewrites the top words and a stream's figures.
const TOP_EVERY: Duration = Duration::from_secs(1);
/// How often a stream's driver looks at the depth of the queue.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// The window of a stream's live throughput and rate.
const RATE_WINDOW: Duration = Duration::from_secs(5);

pub fn run(mut opts: DriverOptions, stop: &AtomicBool) -> Result<DriverOutcome> {
    let started = Instant::now();
    let site = Site::parse(opts.mode, &opts.redis, opts.site)?;
    if site.is_some() {
        if opts.stream.is_some() {
            bail!("--site runs a batch: no --stream");
        }
        if opts.settings.commit == Commit::PerWord {
            bail!(
                "--commit per-word is not a CRDT (a word added twice counts twice); use per-file"
            );
        }
    }
    let input = Input::open(&opts.input)?;
    let mut files: Vec<Unit> = (input.list()?.into_iter())
        .flat_map(|o| Unit::plan(o.key, o.size, o.version, opts.split))
        .collect();
    if files.is_empty() {
        tracing::warn!("input {} holds no files", opts.input);
    }
    let mut backend = match site {
        Some(s) => {
            files = s.share(files);
            backend::open_site(s, &opts.prefix, opts.patience)?
        }
        None => backend::open(opts.mode, &opts.redis, &opts.prefix, opts.patience)?,
    };
    backend.create_job(&opts.settings)?;
    let mut feed = Feed::new(Source::new(files, opts.stream.clone()));
    feed.mid_enqueue = opts.mid_enqueue.take();
    feed.pump(backend.as_mut())?;
    let enqueue = started.elapsed();

    let per_file = opts.settings.commit == Commit::PerFile;
    let mut merge = Merge::default();
    let mut ticker = Ticker::new();
    let mut count_and_commit;
    let mut session;
    let mut converged = None;
    let progress = loop {
        let p = wait_until_merged(
            &opts,
            backend.as_mut(),
            &mut feed,
            &mut merge,
            &mut ticker,
            stop,
        )?;
        count_and_commit = started.elapsed() - enqueue;
        session = backend.session();
        // With per-file commits, the result is written whole unless Redis
        // lost something meanwhile; then it is merged and written again.
        if per_file && !merge.finish(backend.as_mut())? {
            continue;
        }
        // A CRDT site is done: its instance learns the others' files.
        match backend.converge(opts.patience, stop)? {
            Convergence::Alone => break p,
            Convergence::Converged(c) => {
                converged = Some(c);
                count_and_commit = started.elapsed() - enqueue;
                session = backend.session();
                break p;
            }
            Convergence::OwnSiteUndone => continue,
        }
    };

    let stream = feed.report(&merge).map(|s| Live {
        // Over: the rates of the whole stream.
        throughput: s.report.throughput_files_per_s,
        effective_rate: s.report.effective_rate,
        ..s
    });
    if let Some(s) = &stream {
        backend.state().write_stream(&s.fields(&feed))?;
    }
    let rollbacks = merge.rollbacks().to_vec();
    let (merged, done) = merge.into_parts();
    // A site's result is the whole job's: the converged CRDT's counts.
    let (counts, instance) = match converged {
        Some(c) => (c.counts, Some(c.instance)),
        None if per_file => (merged, None),
        None => (backend.state().counts()?, None),
    };
    if let Some(i) = &instance {
        backend.write_converged(&counts, i)?;
    }
    let top = counts.top(opts.top);
    backend.state().write_top(&top)?;
    let failures = backend.state().failures()?;
    let output = match &opts.output {
        Some(target) => Some(write_output(target, &counts)?),
        None => None,
    };
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
            store_retries: progress.store_retries + input.retries(),
            ..JobFacts::default()
        }),
        stream: stream.map(|s| s.report),
        instances: instance.clone().map(|i| vec![i]),
        output,
    };
    let summary = serde_json::to_string(&report)?;
    backend.state().write_summary(&summary)?;
    // A Redis that restarted meanwhile came back from a snapshot taken
    // before the result was whole; the merge is: write it all again, until
    // one session has it all.
    while backend.session() != session {
        session = backend.session();
        tracing::warn!("Redis restarted while the result was written; writing it again");
        if let Some(i) = &instance {
            backend.write_converged(&counts, i)?;
        } else if per_file {
            backend.replace_counts(&counts)?;
        }
        backend.state().write_top(&report.top)?;
        backend.state().write_summary(&summary)?;
    }
    backend.wake_workers()?;
    let write_result = started.elapsed() - enqueue - count_and_commit;
    ticker.finish();
    let stream = feed.source.plan().is_some().then(|| StreamRecord {
        started_ms: feed.started_ms,
        injected: feed.source.injected().to_vec(),
        done,
        samples: feed.samples,
        events: feed.source.events().to_vec(),
    });
    Ok(DriverOutcome {
        report,
        progress,
        failures,
        enqueue,
        count_and_commit,
        write_result,
        stream,
        rollbacks,
    })
}

/// The job's counts are whole, but its output could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the output to {location}: {error:#}")]
pub struct OutputFailed {
    pub location: String,
    pub error: anyhow::Error,
}

/// Writes every word's count to `target`, whole or not at all.
pub fn write_output(target: &str, counts: &wordcount_count::counts::Counts) -> Result<Output> {
    let started = Instant::now();
    wordcount_store::write_atomically(target, &counts.lines()).map_err(|error| OutputFailed {
        location: target.to_string(),
        error,
    })?;
    tracing::info!(
        "wrote {} words to {target} in {:.2?}",
        counts.distinct(),
        started.elapsed()
    );
    Ok(Output {
        location: target.to_string(),
        words: counts.distinct() as u64,
    })
}

/// Feeds the queue from the source, watching its depth (a stream's
/// backpressure), and restores what Redis lost.
struct Feed {
    source: Source,
    started: Instant,
    started_ms: u64,
    /// The end of enqueueing is marked.
    ended: bool,
    depth: Depth,
    samples: Vec<Sample>,
    next_sample: Duration,
    /// Files committed and merged, as the driver last saw.
    committed: u64,
    mid_enqueue: Option<MidEnqueue>,
}

impl Feed {
    fn new(source: Source) -> Self {
        Feed {
            source,
            started: Instant::now(),
            started_ms: epoch_ms(),
            ended: false,
            depth: Depth::default(),
            samples: Vec::new(),
            next_sample: Duration::ZERO,
            committed: 0,
            mid_enqueue: None,
        }
    }

    /// Samples the queue when due, runs the source's tick when due.
    fn pump(&mut self, backend: &mut dyn Backend) -> Result<()> {
        let now = self.started.elapsed();
        let tick_due = self.source.next_tick_at().is_some_and(|at| at <= now);
        let sample_due = self.is_stream() && now >= self.next_sample;
        // Backpressure decides on the depth of now, not of the last sample;
        // without it a tick needs no depth (a read less at every tick).
        let throttles = self
            .source
            .plan()
            .is_some_and(|p| p.backpressure != Backpressure::None);
        if sample_due || (tick_due && throttles) {
            self.depth = backend.depth()?;
        }
        if sample_due {
            self.next_sample = now + SAMPLE_EVERY;
            self.samples.push(Sample {
                at: now,
                depth: self.depth,
                injected: self.source.injected().len() as u64,
                committed: self.committed,
                rate_now: self.source.rate_now(),
                throttled: self.source.throttled(),
            });
        }
        let batch = self.source.step(now, self.depth);
        if !batch.is_empty() {
            let (first, rest) = match self.mid_enqueue {
                Some(_) => batch.split_at(batch.len() / 2),
                None => (&batch[..], &[][..]),
            };
            backend.enqueue(first)?;
            if let Some(hook) = self.mid_enqueue.take() {
                hook();
            }
            backend.enqueue(rest)?;
        }
        if self.source.is_done() && !self.ended {
            backend.state().end_enqueue()?;
            self.ended = true;
        }
        Ok(())
    }

    /// Redis came back from a snapshot older than some enqueueing (or from
    /// nothing): restores what it lacks. True if it had to.
    fn restore_if_lost(
        &mut self,
        backend: &mut dyn Backend,
        p: &Progress,
        settings: &JobSettings,
    ) -> Result<bool> {
        let injected = self.source.injected();
        if p.created && p.files >= injected.len() as u64 && (p.enqueue_done || !self.ended) {
            return Ok(false);
        }
        tracing::warn!("Redis lost part of the queue; enqueueing again what it lacks");
        backend.create_job(settings)?;
        backend.enqueue(injected)?;
        if self.ended {
            backend.state().end_enqueue()?;
        }
        Ok(true)
    }

    fn is_stream(&self) -> bool {
        self.source.plan().is_some()
    }

    /// How long to wait for a commit before the next tick or sample.
    fn wait(&self) -> Duration {
        let now = self.started.elapsed();
        let next = [Some(self.next_sample), self.source.next_tick_at()]
            .into_iter()
            .flatten()
            .filter(|_| self.source.plan().is_some())
            .min();
        next.map_or(TICK, |at| at.saturating_sub(now).min(TICK))
    }

    /// A stream's figures so far (none for a batch).
    fn report(&self, merge: &Merge) -> Option<Live> {
        let plan = self.source.plan()?;
        let done = merge.done();
        let injected = self.source.injected().len() as u64;
        let last_commit = done
            .iter()
            .map(|d| d.record.committed_ms)
            .max()
            .unwrap_or(0);
        let first_due = done.iter().map(|d| d.record.due_ms).min().unwrap_or(0);
        // Injecting takes whole ticks; committing may take longer.
        let injecting_s = self
            .source
            .injected_at()
            .last()
            .map_or(0.0, |t| (*t + plan.tick).as_secs_f64());
        let span_s = injecting_s.max(last_commit.saturating_sub(first_due) as f64 / 1000.0);
        let now = self.started.elapsed();
        Some(Live {
            report: StreamReport {
                rate: plan.rate,
                backpressure: plan.backpressure.to_string(),
                injected,
                committed: done.len() as u64,
                latency_ms: Percentiles::of(done.iter().map(|d| d.record.latency_ms)),
                throughput_files_per_s: per_second(done.len(), span_s),
                effective_rate: per_second(injected as usize, injecting_s),
                max_lag: self
                    .samples
                    .iter()
                    .map(|s| s.depth.total())
                    .max()
                    .unwrap_or(0),
                throttled_ms: self.source.throttled_for(now).as_millis() as u64,
            },
            throughput: recent(done.iter().rev().map(|d| d.record.committed_ms), epoch_ms()),
            effective_rate: recent(
                self.source
                    .injected_at()
                    .iter()
                    .rev()
                    .map(|t| self.started_ms + t.as_millis() as u64),
                self.started_ms + now.as_millis() as u64,
            ),
        })
    }
}

/// A stream's figures: whole, and its rates while it runs over the last
/// [`RATE_WINDOW`].
struct Live {
    report: StreamReport,
    throughput: f64,
    effective_rate: f64,
}

impl Live {
    /// The fields of `P:stream`.
    fn fields(&self, feed: &Feed) -> Vec<(&'static str, String)> {
        let r = &self.report;
        vec![
            (stream::RATE, r.rate.to_string()),
            (stream::INJECTED, r.injected.to_string()),
            (stream::COMMITTED, r.committed.to_string()),
            (stream::P50_MS, r.latency_ms.p50.to_string()),
            (stream::P90_MS, r.latency_ms.p90.to_string()),
            (stream::P99_MS, r.latency_ms.p99.to_string()),
            (stream::MAX_MS, r.latency_ms.max.to_string()),
            (stream::THROUGHPUT, format!("{:.2}", self.throughput)),
            (
                stream::EFFECTIVE_RATE,
                format!("{:.2}", self.effective_rate),
            ),
            (stream::LAG, feed.depth.lag.to_string()),
            (stream::PENDING, feed.depth.pending.to_string()),
            (
                stream::THROTTLED,
                u8::from(feed.source.throttled()).to_string(),
            ),
            (stream::THROTTLED_MS, r.throttled_ms.to_string()),
        ]
    }
}

/// Events a second over the last [`RATE_WINDOW`] before `now_ms`, of
/// times (ms) given latest first.
fn recent(latest_first: impl Iterator<Item = u64>, now_ms: u64) -> f64 {
    let window = RATE_WINDOW.as_millis() as u64;
    let n = latest_first.take_while(|t| t + window >= now_ms).count();
    per_second(n, RATE_WINDOW.as_secs_f64())
}

fn per_second(n: usize, seconds: f64) -> f64 {
    if seconds > 0.0 {
        n as f64 / seconds
    } else {
        0.0
    }
}

/// Feeds the queue and merges committed results as they come until every
/// file is injected, committed and merged; returns the progress then.
fn wait_until_merged(
    opts: &DriverOptions,
    backend: &mut dyn Backend,
    feed: &mut Feed,
    merge: &mut Merge,
    ticker: &mut Ticker,
    stop: &AtomicBool,
) -> Result<Progress> {
    let per_file = opts.settings.commit == Commit::PerFile;
    let mut written = (Instant::now(), 0);
    loop {
        if stop.load(Ordering::Relaxed) {
            bail!("interrupted");
        }
        feed.pump(backend)?;
        let p = backend.state().progress()?;
        if feed.restore_if_lost(backend, &p, &opts.settings)? {
            continue;
        }
        // Every commit is in once the job is done: no need to wait. A
        // stream's driver waits here, not in Redis: an idle Redis ends a
        // short block only at its next cron tick (100 ms at hz 10), too
        // late for the next tick.
        let wait = if p.is_done() {
            Duration::ZERO
        } else {
            feed.wait()
        };
        if feed.is_stream() {
            merge.catch_up(backend, Duration::ZERO)?;
            std::thread::sleep(wait);
        } else {
            merge.catch_up(backend, wait)?;
        }
        feed.committed = merge.files();
        if p.is_done() && merge.files() == p.files_done {
            return Ok(p);
        }
        if merge.files() > written.1 && written.0.elapsed() >= TOP_EVERY {
            if per_file {
                backend.state().write_top(&merge.top(opts.top))?;
            }
            if let Some(live) = feed.report(merge) {
                backend.state().write_stream(&live.fields(feed))?;
            }
            written = (Instant::now(), merge.files());
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
