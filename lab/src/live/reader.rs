//! Reads a local run into the live view's model, look after look: Redis
//! through the job's backend, and the runner's own events.

use crate::timeline::{epoch_ms, EventLog};
use std::time::Duration;
use wordcount_job::backend::{self, Backend};
use wordcount_job::queue::{ResultCursor, Results};
use wordcount_protocol::RedisMode;
use wordcount_view::{phase, Job, Look, Sample, Seen, TOP};

/// Files read from the commit record at each look, at most.
const BATCH: usize = 10_000;

pub struct LocalReader {
    mode: RedisMode,
    url: String,
    prefix: String,
    backend: Option<Box<dyn Backend + Send>>,
    cursor: ResultCursor,
    log: EventLog,
    log_seen: usize,
    seen: Seen,
}

impl LocalReader {
    pub fn new(mode: RedisMode, url: &str, prefix: &str, log: EventLog) -> Self {
        LocalReader {
            mode,
            url: url.into(),
            prefix: prefix.into(),
            backend: None,
            cursor: ResultCursor::default(),
            log,
            log_seen: 0,
            seen: Seen::default(),
        }
    }

    /// What happened since the last look. Redis may be down (a fault the
    /// run injected): then only the runner's events, and why not more.
    pub fn look(&mut self) -> (Look, anyhow::Result<()>) {
        let mut look = Look {
            events: self.log.since(self.log_seen),
            ..Look::default()
        };
        self.log_seen += look.events.len();
        let read = self.read(&mut look);
        (look, read)
    }

    fn read(&mut self, look: &mut Look) -> anyhow::Result<()> {
        let b = match &mut self.backend {
            Some(b) => b,
            None => self.backend.insert(backend::open_quiet(
                self.mode,
                &self.url,
                &self.prefix,
                // Short: a look that fails is tried again at the next one.
                Duration::from_millis(200),
            )?),
        };
        let p = b.state().progress()?;
        let depth = b.depth()?;
        look.sample = Some(Sample {
            at_ms: epoch_ms(),
            lag: depth.lag,
            pending: depth.pending,
        });
        let figures = b.state().read_stream()?;
        look.events
            .extend(self.seen.throttle(figures.iter(), epoch_ms()));
        look.job = Some(Job {
            phase: phase(p.created, p.is_done(), p.finished),
            files: p.files,
            files_done: p.files_done,
            files_failed: p.files_failed,
            words: p.words,
            bytes: p.bytes,
            bytes_done: p.bytes_done,
            commits_ignored: p.commits_ignored,
            top: b
                .state()
                .top(TOP)?
                .into_iter()
                .map(|w| (String::from_utf8_lossy(&w.word).into_owned(), w.count))
                .collect(),
            stream: figures.into_iter().collect(),
            ..Job::default()
        });
        while let Results::More(done) = b.commits_since(&mut self.cursor, BATCH)? {
            if done.is_empty() {
                break;
            }
            look.files
                .extend(self.seen.files(done.into_iter().map(|d| d.record)));
        }
        look.events
            .extend(self.seen.faults(b.state().faults_fired()?));
        Ok(())
    }
}
