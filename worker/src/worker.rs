//! The worker loop: take a file (new, or stolen from a worker that went
//! quiet), count it locally, commit it, until the job is done.

use crate::count::{count_file, scan_file};
use crate::counts::Counts;
use crate::fault::{crash_now, CrashPoint, Fault};
use crate::protocol::queue::{Carry, Committed, STAGE_CHUNK};
use crate::protocol::{Commit, Entry, JobSettings, Redis};
use anyhow::Result;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub struct WorkerOptions {
    pub redis: String,
    pub prefix: String,
    pub input: PathBuf,
    pub index: usize,
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

pub fn run(opts: WorkerOptions) -> Result<WorkerStats> {
    let mut w = Worker::new(opts)?;
    let settings = w.wait_for_settings()?;
    let claim_ms = settings.claim_timeout.as_millis() as u64;
    // Look for files to steal a few times per claim timeout, and notice
    // the end of the job soon after it comes.
    let block_ms = (claim_ms / 4).clamp(10, 50);
    let mut stats = WorkerStats::default();
    loop {
        let name = &w.opts.name;
        let (entry, stolen) = match w.redis.read_new(name, block_ms)? {
            Some(e) => (Some(e), false),
            None => (w.redis.claim(name, claim_ms)?, true),
        };
        match entry {
            Some(entry) => {
                stats.files += 1;
                stats.stolen += stolen as u64;
                let committed = w.process(&settings, &entry, stats.files)?;
                stats.ignored += !committed.took_effect as u64;
                // The last commit ends the job: no need to wait for a read to time out.
                if committed.job_done {
                    return Ok(stats);
                }
            }
            None if w.redis.progress()?.is_done() => return Ok(stats),
            None => {}
        }
    }
}

struct Worker {
    opts: WorkerOptions,
    redis: Redis,
}

impl Worker {
    fn new(opts: WorkerOptions) -> Result<Self> {
        let redis = Redis::open(&opts.redis, &opts.prefix, opts.patience)?;
        Ok(Worker { opts, redis })
    }

    fn wait_for_settings(&mut self) -> Result<JobSettings> {
        let started = Instant::now();
        loop {
            if let Some(s) = self.redis.settings()? {
                return Ok(s);
            }
            if started.elapsed() > self.opts.patience {
                anyhow::bail!(
                    "no job in Redis after {:?}: is the driver running?",
                    self.opts.patience
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Dies here if a crash fault says so (once per job).
    fn maybe_crash(&mut self, point: CrashPoint, nth: u64) -> Result<()> {
        let fault = self.opts.faults.iter().find(|f| {
            matches!(f, Fault::Crash { worker, point: p, file }
                if *worker == self.opts.index && *p == point && *file == nth)
        });
        if let Some(f) = fault {
            if self.redis.fire(&f.to_string())? {
                tracing::warn!("fault {f}: crashing");
                crash_now();
            }
        }
        Ok(())
    }

    fn slow_factor(&self) -> f64 {
        self.opts
            .faults
            .iter()
            .find_map(|f| match f {
                Fault::Slow { worker, factor } if *worker == self.opts.index => Some(*factor),
                _ => None,
            })
            .unwrap_or(1.0)
    }

    /// Counts and commits one file.
    fn process(&mut self, settings: &JobSettings, entry: &Entry, nth: u64) -> Result<Committed> {
        self.maybe_crash(CrashPoint::AfterRead, nth)?;
        let started = Instant::now();
        let path = self.opts.input.join(&entry.path);
        let name = self.opts.name.clone();
        let committed = match settings.commit {
            Commit::PerFile => {
                let mut counts = Counts::new();
                match count_file(&path, settings.tokenizer, &mut counts) {
                    Err(e) => {
                        self.redis
                            .commit(entry, &name, 0, Carry::Failed(&format!("{e:#}")))?
                    }
                    Ok(_) => {
                        self.straggle(started);
                        self.maybe_crash(CrashPoint::AfterCount, nth)?;
                        self.commit_counts(entry, &counts, nth)?
                    }
                }
            }
            Commit::PerWord => self.commit_per_word(settings, entry, &path, started, nth)?,
        };
        self.maybe_crash(CrashPoint::AfterCommit, nth)?;
        tracing::debug!(path = entry.path, ?committed, "file done");
        Ok(committed)
    }

    /// A straggler takes `factor` times as long as the work took.
    fn straggle(&self, started: Instant) {
        let factor = self.slow_factor();
        if factor > 1.0 {
            std::thread::sleep(started.elapsed().mul_f64(factor - 1.0));
        }
    }

    fn commit_counts(&mut self, entry: &Entry, counts: &Counts, nth: u64) -> Result<Committed> {
        let packed = counts.pack();
        let crash_mid_stage = self.opts.faults.iter().any(|f| {
            matches!(f, Fault::Crash { worker, point: CrashPoint::MidStage, file }
                if *worker == self.opts.index && *file == nth)
        });
        if packed.len() <= STAGE_CHUNK && !crash_mid_stage {
            return self.redis.commit(
                entry,
                &self.opts.name,
                counts.total(),
                Carry::Inline(&packed),
            );
        }
        // Too large for one call (or a test wants a crash in between):
        // stage in chunks, then commit them in one atomic call.
        let chunk = if crash_mid_stage {
            packed.len().div_ceil(2).max(1)
        } else {
            STAGE_CHUNK
        };
        let name = self.opts.name.clone();
        loop {
            // An empty vocabulary still stages (nothing), so the commit finds it.
            let parts: Vec<&[u8]> = if packed.is_empty() {
                vec![&[]]
            } else {
                packed.chunks(chunk).collect()
            };
            for (i, part) in parts.into_iter().enumerate() {
                self.redis.stage(entry, &name, part, i == 0)?;
                if i == 0 {
                    self.maybe_crash(CrashPoint::MidStage, nth)?;
                }
            }
            match self
                .redis
                .commit(entry, &name, counts.total(), Carry::Staged)
            {
                // Redis restarted from a snapshot without our stage: again.
                Err(e) if e.to_string().contains("staged counts of") => continue,
                r => return r,
            }
        }
    }

    fn commit_per_word(
        &mut self,
        settings: &JobSettings,
        entry: &Entry,
        path: &std::path::Path,
        started: Instant,
        nth: u64,
    ) -> Result<Committed> {
        let mut words: Vec<Vec<u8>> = Vec::new();
        let mut total = 0u64;
        let flush = |redis: &mut Redis, words: &mut Vec<Vec<u8>>| -> Result<()> {
            if words.is_empty() {
                return Ok(());
            }
            let refs: Vec<&[u8]> = words.iter().map(|w| w.as_slice()).collect();
            redis.add_words(&refs)?;
            words.clear();
            Ok(())
        };
        let mut error = None;
        let scanned = scan_file(path, settings.tokenizer, |w| {
            total += 1;
            words.push(w.to_vec());
            if words.len() == 10_000 && error.is_none() {
                error = flush(&mut self.redis, &mut words).err();
            }
        });
        if let Some(e) = error {
            return Err(e);
        }
        let name = self.opts.name.clone();
        if let Err(e) = scanned {
            return self
                .redis
                .commit(entry, &name, 0, Carry::Failed(&format!("{e:#}")));
        }
        flush(&mut self.redis, &mut words)?;
        self.straggle(started);
        self.maybe_crash(CrashPoint::AfterCount, nth)?;
        self.redis.commit(entry, &name, total, Carry::Added)
    }
}
