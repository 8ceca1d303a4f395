//! The worker loop: take a file (new, or stolen from a worker that went
//! quiet), count it locally, commit it, until the job is done.

use crate::backend::{self, Backend, Carry, Committed, JobSettings, StageGone, Taken, STAGE_CHUNK};
use crate::count::{count_file, scan_file};
use crate::counts::Counts;
use crate::fault::{crash_at, crash_now, slow_factor, CrashPoint, Fault};
use anyhow::Result;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use wordcount_protocol::{Commit, RedisMode};

pub struct WorkerOptions {
    pub redis: String,
    pub mode: RedisMode,
    pub prefix: String,
    pub input: PathBuf,
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
/// finishes and commits the file it holds, then ends with this error: not
/// a success, since the job is not done.
#[derive(Debug, thiserror::Error)]
#[error("stopped, after committing the file it held")]
pub struct Stopped;

pub fn run(opts: WorkerOptions, stop: &AtomicBool) -> Result<WorkerStats> {
    let backend = backend::open(opts.mode, &opts.redis, &opts.prefix, opts.patience)?;
    let mut w = Worker {
        opts,
        backend,
        counts: Counts::new(),
    };
    let settings = w.wait_for_settings()?;
    // Look for files to steal a few times per claim timeout, and notice
    // the end of the job soon after it comes.
    let wait =
        (settings.claim_timeout / 4).clamp(Duration::from_millis(10), Duration::from_millis(50));
    let mut stats = WorkerStats::default();
    loop {
        if stop.load(Ordering::Relaxed) {
            return Err(Stopped.into());
        }
        match w.backend.take(&w.opts.name, wait, settings.claim_timeout)? {
            Some(taken) => {
                stats.files += 1;
                stats.stolen += taken.stolen as u64;
                let (e, stolen) = (&taken.entry, taken.stolen);
                let span = tracing::info_span!("file", path = %e.path, id = %e.id, stolen);
                let committed = span.in_scope(|| w.process(&settings, &taken, stats.files))?;
                stats.ignored += !committed.took_effect as u64;
            }
            // The driver wakes the waiting workers once it has finished.
            None if w.backend.progress()?.finished => return Ok(stats),
            None => {}
        }
    }
}

struct Worker {
    opts: WorkerOptions,
    backend: Box<dyn Backend + Send>,
    /// One file's counts; kept from file to file so that its table has
    /// grown once.
    counts: Counts,
}

impl Worker {
    fn wait_for_settings(&mut self) -> Result<JobSettings> {
        let started = Instant::now();
        loop {
            if let Some(s) = self.backend.settings()? {
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

    /// Counts and commits one file.
    fn process(&mut self, settings: &JobSettings, taken: &Taken, nth: u64) -> Result<Committed> {
        self.maybe_crash(CrashPoint::AfterRead, nth)?;
        let started = Instant::now();
        let path = self.opts.input.join(&taken.entry.path);
        let name = self.opts.name.clone();
        let committed = match settings.commit {
            Commit::PerFile => {
                let mut counts = std::mem::take(&mut self.counts);
                counts.clear();
                let committed = match count_file(&path, settings.tokenizer, &mut counts) {
                    Err(e) => {
                        tracing::warn!("cannot count the file: {e:#}");
                        self.backend
                            .commit(taken, &name, 0, Carry::Failed(&format!("{e:#}")))?
                    }
                    Ok(_) => {
                        self.straggle(started);
                        self.maybe_crash(CrashPoint::AfterCount, nth)?;
                        self.commit_counts(taken, &counts, nth)?
                    }
                };
                self.counts = counts;
                committed
            }
            Commit::PerWord => self.commit_per_word(settings, taken, &path, started, nth)?,
        };
        self.maybe_crash(CrashPoint::AfterCommit, nth)?;
        tracing::debug!(?committed, "file done");
        Ok(committed)
    }

    /// A straggler takes `factor` times as long as the work took.
    fn straggle(&self, started: Instant) {
        let factor = slow_factor(&self.opts.faults, self.opts.index);
        if factor > 1.0 {
            std::thread::sleep(started.elapsed().mul_f64(factor - 1.0));
        }
    }

    fn commit_counts(&mut self, taken: &Taken, counts: &Counts, nth: u64) -> Result<Committed> {
        let packed = counts.pack();
        let crash_mid_stage = crash_at(
            &self.opts.faults,
            self.opts.index,
            CrashPoint::MidStage,
            nth,
        )
        .is_some();
        let name = self.opts.name.clone();
        if packed.len() <= STAGE_CHUNK && !crash_mid_stage {
            return self
                .backend
                .commit(taken, &name, counts.total(), Carry::Inline(&packed));
        }
        // Too large for one call (or a test wants a crash in between):
        // stage in chunks, then commit them in one atomic call.
        let chunk = if crash_mid_stage {
            packed.len().div_ceil(2).max(1)
        } else {
            STAGE_CHUNK
        };
        loop {
            // An empty vocabulary still stages (nothing), so the commit finds it.
            let parts: Vec<&[u8]> = if packed.is_empty() {
                vec![&[]]
            } else {
                packed.chunks(chunk).collect()
            };
            for (i, part) in parts.into_iter().enumerate() {
                self.backend.stage(&taken.entry, &name, part, i == 0)?;
                if i == 0 {
                    self.maybe_crash(CrashPoint::MidStage, nth)?;
                }
            }
            match self
                .backend
                .commit(taken, &name, counts.total(), Carry::Staged)
            {
                Err(e) if e.is::<StageGone>() => {
                    tracing::warn!("{e}, lost with a Redis restart; staging again")
                }
                r => return r,
            }
        }
    }

    fn commit_per_word(
        &mut self,
        settings: &JobSettings,
        taken: &Taken,
        path: &Path,
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
        let scanned = scan_file(path, settings.tokenizer, |w| {
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
            return self
                .backend
                .commit(taken, &name, 0, Carry::Failed(&format!("{e:#}")));
        }
        flush(self.backend.as_mut(), &mut words)?;
        self.straggle(started);
        self.maybe_crash(CrashPoint::AfterCount, nth)?;
        self.backend.commit(taken, &name, total, Carry::Added)
    }
}
