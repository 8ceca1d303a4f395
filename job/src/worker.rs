//! The worker loop: take a file (new, or stolen from a worker that went
//! quiet), count it locally into the files it holds, and commit those
//! together when no other file waits (see `Batch`), until the job is done.

use crate::backend::{self, Backend};
use crate::fault::{crash_at, crash_now, slow_fault, CrashPoint, Fault};
use crate::input::Input;
use crate::queue::{Carry, Committed, Held, Taken, STAGE_CHUNK};
use crate::state::JobSettings;
use anyhow::{Context, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use wordcount_count::counts::Counts;
use wordcount_protocol::{Commit, RedisMode};
use wordcount_store::Location;

pub struct WorkerOptions {
    pub redis: String,
    pub mode: RedisMode,
    pub prefix: String,
    pub input: Location,
    pub index: u32,
    pub name: String,
    pub faults: Vec<Fault>,
    pub patience: Duration,
}

/// What one worker process did.
#[derive(Debug, Default)]
pub struct WorkerStats {
    pub files: u64,
    pub stolen: u64,
    pub ignored: u64,
}

/// A worker asked to stop (SIGTERM, SIGINT: a scale-down, a pod deleted)
/// finishes and commits the files it holds, then ends with this error: not
/// a success, since the job is not done.
#[derive(Debug, thiserror::Error)]
#[error("stopped, after committing the files it held")]
pub struct Stopped;

/// How long a worker holds counted files at most before it commits them,
/// for the job's progress and a stream's latency (and at most a quarter of
/// the claim timeout, so that nobody steals them meanwhile).
const MAX_BATCH_AGE: Duration = Duration::from_millis(250);

pub fn run(opts: WorkerOptions, stop: &AtomicBool) -> Result<WorkerStats> {
    let backend = backend::open(opts.mode, &opts.redis, &opts.prefix, opts.patience)?;
    let mut w = Worker {
        input: Input::open(&opts.input)?,
        retries_reported: 0,
        opts,
        backend,
        batch: Batch::default(),
        stats: WorkerStats::default(),
        slowed: false,
    };
    let settings = w.wait_for_settings()?;
    // Look for files to steal a few times per claim timeout, and notice
    // the end of the job soon after it comes.
    let wait =
        (settings.claim_timeout / 4).clamp(Duration::from_millis(10), Duration::from_millis(50));
    let max_age = MAX_BATCH_AGE.min(settings.claim_timeout / 4);
    loop {
        if stop.load(Ordering::Relaxed) {
            w.commit_batch(&settings)?;
            return Err(Stopped.into());
        }
        // A worker that holds files looks for more without waiting, and
        // commits them when there is none.
        let wait = match w.batch.files.is_empty() {
            true => wait,
            false => Duration::ZERO,
        };
        match w.backend.take(&w.opts.name, wait, settings.claim_timeout)? {
            // Read again after a reconnect: already counted.
            Some(taken) if w.batch.holds(&taken.entry.id) => {}
            Some(taken) => {
                w.stats.files += 1;
                w.stats.stolen += taken.stolen as u64;
                let (e, stolen) = (&taken.entry, taken.stolen);
                let span = tracing::info_span!("file", unit = %e.unit.label(), id = %e.id, stolen);
                let nth = w.stats.files;
                span.in_scope(|| w.process(&settings, taken, nth, max_age))?;
                w.report_retries()?;
            }
            None if !w.batch.files.is_empty() => w.commit_batch(&settings)?,
            // The driver wakes the waiting workers once it has finished.
            None if w.backend.state().progress()?.finished => return Ok(w.stats),
            None => {}
        }
    }
}

struct Worker {
    opts: WorkerOptions,
    input: Input,
    /// The store's retries already added to the job's.
    retries_reported: u64,
    backend: Box<dyn Backend + Send>,
    batch: Batch,
    stats: WorkerStats,
    /// Its straggler fault has been marked fired.
    slowed: bool,
}

/// The files a worker has counted and holds, to commit them in one call
/// with their counts summed: a word found in many files is packed, sent
/// and merged once, not once per file.
#[derive(Default)]
struct Batch {
    files: Vec<Held>,
    /// Each file's number among those the worker took (for its faults).
    nth: Vec<u64>,
    /// The files' counts, summed; kept from batch to batch so that the
    /// table has grown once.
    counts: Counts,
    /// When the worker took the oldest.
    since: Option<Instant>,
}

impl Batch {
    fn holds(&self, id: &str) -> bool {
        self.files.iter().any(|h| h.taken.entry.id == id)
    }

    fn clear(&mut self) {
        self.files.clear();
        self.nth.clear();
        self.counts.clear();
        self.since = None;
    }
}

impl Worker {
    fn wait_for_settings(&mut self) -> Result<JobSettings> {
        let started = Instant::now();
        loop {
            if let Some(s) = self.backend.state().settings()? {
                return Ok(s);
            }
            if started.elapsed() > self.opts.patience {
                anyhow::bail!(
                    "no job in Redis after {:?}: is the driver running?",
                    self.opts.patience
                );
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Dies here if a crash fault says so (once per job).
    fn maybe_crash(&mut self, point: CrashPoint, nth: u64) -> Result<()> {
        if let Some(f) = crash_at(&self.opts.faults, self.opts.index, point, nth) {
            if self.backend.fire(&f.to_string())? {
                tracing::warn!("fault {f}: crashing");
                crash_now();
            }
        }
        Ok(())
    }

    /// Counts a file into the batch, and commits the batch when it is full
    /// or its oldest file would be held longer than `max_age` after the
    /// next. A file that cannot be read, and a per-word commit, are
    /// committed at once, alone.
    fn process(
        &mut self,
        settings: &JobSettings,
        taken: Taken,
        nth: u64,
        max_age: Duration,
    ) -> Result<()> {
        self.maybe_crash(CrashPoint::AfterRead, nth)?;
        let started = Instant::now();
        let committed = match settings.commit {
            Commit::PerFile => {
                let before = self.batch.counts.total();
                let unit = &taken.entry.unit;
                match (self.input).count(unit, settings.tokenizer, &mut self.batch.counts) {
                    Err(e) => {
                        tracing::warn!("cannot count the file: {e:#}");
                        // Failed half way: part of its words are in the batch.
                        if self.batch.counts.total() != before {
                            self.recount(settings)?;
                        }
                        let held = Held { taken, words: 0 };
                        let name = self.opts.name.clone();
                        let why = format!("{e:#}");
                        self.backend.commit(&[held], &name, Carry::Failed(&why))?
                    }
                    Ok(_) => {
                        self.straggle(started)?;
                        self.maybe_crash(CrashPoint::AfterCount, nth)?;
                        let words = self.batch.counts.total() - before;
                        let b = &mut self.batch;
                        let since = *b.since.get_or_insert(started);
                        b.files.push(Held { taken, words });
                        b.nth.push(nth);
                        if b.files.len() >= self.backend.batch_limit()
                            || since.elapsed() + started.elapsed() >= max_age
                        {
                            self.commit_batch(settings)?;
                        }
                        return Ok(());
                    }
                }
            }
            Commit::PerWord => self.commit_per_word(settings, taken, started, nth)?,
        };
        self.stats.ignored += committed.before().len() as u64;
        tracing::debug!(?committed, "file done");
        self.maybe_crash(CrashPoint::AfterCommit, nth)
    }

    /// Adds the store's retries since the last report to the job's.
    fn report_retries(&mut self) -> Result<()> {
        let retries = self.input.retries();
        if retries > self.retries_reported {
            let n = retries - self.retries_reported;
            self.backend.state().add_store_retries(n)?;
            self.retries_reported = retries;
        }
        Ok(())
    }

    /// A straggler takes `factor` times as long as the work took; its
    /// fault is marked fired at its first file.
    fn straggle(&mut self, started: Instant) -> Result<()> {
        let Some((f, factor)) = slow_fault(&self.opts.faults, self.opts.index) else {
            return Ok(());
        };
        if !self.slowed {
            self.slowed = true;
            self.backend.fire(&f.to_string())?;
        }
        std::thread::sleep(started.elapsed().mul_f64(factor - 1.0));
        Ok(())
    }

    /// Commits the files held. When another worker committed some of them
    /// first, counts the rest again without them, and commits those.
    fn commit_batch(&mut self, settings: &JobSettings) -> Result<()> {
        while !self.batch.files.is_empty() {
            let committed = self.commit_counts()?;
            self.stats.ignored += committed.before().len() as u64;
            if committed.before().len() < self.batch.files.len() && !committed.took_effect() {
                tracing::info!(
                    before = ?committed.before(),
                    "other workers committed some of the files held first; counting the rest again"
                );
                let b = &mut self.batch;
                (b.files, b.nth) = std::mem::take(&mut b.files)
                    .into_iter()
                    .zip(std::mem::take(&mut b.nth))
                    .filter(|(h, _)| !committed.before().contains(&h.taken.entry.id))
                    .unzip();
                self.recount(settings)?;
                continue;
            }
            tracing::debug!(files = self.batch.files.len(), ?committed, "batch done");
            let nth = std::mem::take(&mut self.batch.nth);
            self.batch.clear();
            for n in nth {
                self.maybe_crash(CrashPoint::AfterCommit, n)?;
            }
        }
        Ok(())
    }

    /// Counts the files held again, into emptied counts.
    fn recount(&mut self, settings: &JobSettings) -> Result<()> {
        let b = &mut self.batch;
        b.counts.clear();
        for held in &mut b.files {
            let before = b.counts.total();
            (self.input)
                .count(&held.taken.entry.unit, settings.tokenizer, &mut b.counts)
                .context("counting again a file counted before")?;
            held.words = b.counts.total() - before;
        }
        Ok(())
    }

    /// Commits the batch's counts: in the call, or staged first when too
    /// large for one (or when a test wants a crash in between).
    fn commit_counts(&mut self) -> Result<Committed> {
        let packed = self.batch.counts.pack();
        let (faults, index) = (&self.opts.faults, self.opts.index);
        let crash_mid_stage = (self.batch.nth.iter())
            .find(|&&n| crash_at(faults, index, CrashPoint::MidStage, n).is_some())
            .copied();
        let name = self.opts.name.clone();
        if packed.len() <= STAGE_CHUNK && crash_mid_stage.is_none() {
            return (self.backend).commit(&self.batch.files, &name, Carry::Inline(&packed));
        }
        let chunk = match crash_mid_stage {
            Some(_) => packed.len().div_ceil(2).max(1),
            None => STAGE_CHUNK,
        };
        let first = self.batch.files[0].taken.entry.clone();
        loop {
            // An empty vocabulary still stages (nothing), so the commit finds it.
            let parts: Vec<&[u8]> = if packed.is_empty() {
                vec![&[]]
            } else {
                packed.chunks(chunk).collect()
            };
            for (i, part) in parts.into_iter().enumerate() {
                self.backend.stage(&first, &name, part, i == 0)?;
                if let (0, Some(n)) = (i, crash_mid_stage) {
                    self.maybe_crash(CrashPoint::MidStage, n)?;
                }
            }
            match (self.backend).commit(&self.batch.files, &name, Carry::Staged) {
                Ok(Committed::StageGone(id)) => tracing::warn!(
                    "the staged counts of {id} are gone, lost with a Redis restart; staging again"
                ),
                r => return r,
            }
        }
    }

    fn commit_per_word(
        &mut self,
        settings: &JobSettings,
        taken: Taken,
        started: Instant,
        nth: u64,
    ) -> Result<Committed> {
        let mut words: Vec<Vec<u8>> = Vec::new();
        let mut total = 0u64;
        let flush = |backend: &mut dyn Backend, words: &mut Vec<Vec<u8>>| -> Result<()> {
            if words.is_empty() {
                return Ok(());
            }
            let refs: Vec<&[u8]> = words.iter().map(|w| w.as_slice()).collect();
            backend.add_words(&refs)?;
            words.clear();
            Ok(())
        };
        let mut error = None;
        let unit = taken.entry.unit.clone();
        let scanned = self.input.scan(&unit, settings.tokenizer, |w| {
            total += 1;
            words.push(w.to_vec());
            if words.len() == 10_000 && error.is_none() {
                error = flush(self.backend.as_mut(), &mut words).err();
            }
        });
        if let Some(e) = error {
            return Err(e);
        }
        let name = self.opts.name.clone();
        if let Err(e) = scanned {
            let held = Held { taken, words: 0 };
            return (self.backend).commit(&[held], &name, Carry::Failed(&format!("{e:#}")));
        }
        flush(self.backend.as_mut(), &mut words)?;
        self.straggle(started)?;
        self.maybe_crash(CrashPoint::AfterCount, nth)?;
        let held = Held {
            taken,
            words: total,
        };
        self.backend.commit(&[held], &name, Carry::Added)
    }
}
