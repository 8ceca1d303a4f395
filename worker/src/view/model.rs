//! What the live view shows, read from where the job records it: Redis
//! (progress, each commit with its take and commit times, faults fired,
//! the top words) and the runner's own events. Only ever appended to, so
//! a page can ask for what is new since its last look.

use crate::backend::{self, Backend, Progress, ResultCursor, Results};
use crate::timeline::{epoch_ms, Event, EventLog};
use serde::Serialize;
use std::collections::HashSet;
use std::time::Duration;
use wordcount_protocol::{keys::stream, RedisMode};

/// Files read from the commit record at each look, at most.
const BATCH: usize = 10_000;
/// Top words shown.
const TOP: usize = 15;

/// One committed file: a bar from take to commit on its worker's lane.
#[derive(Clone, Debug, Serialize)]
pub struct FileBar {
    pub path: String,
    pub worker: String,
    pub taken_ms: u64,
    pub committed_ms: u64,
    pub latency_ms: u64,
    pub stolen: bool,
}

/// The queue at one look: what the lag chart draws.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Sample {
    pub at_ms: u64,
    /// Files waiting for a worker.
    pub lag: u64,
    /// Files taken and not committed yet.
    pub pending: u64,
}

/// Where the job stands now (sent whole at every update).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Job {
    /// `starting`, `counting`, `writing the result`, `done`.
    pub phase: &'static str,
    pub started_ms: u64,
    pub files: u64,
    pub files_done: u64,
    pub files_failed: u64,
    pub words: u64,
    pub bytes: u64,
    pub bytes_done: u64,
    pub commits_ignored: u64,
    pub top: Vec<(String, u64)>,
    /// A stream's figures (`P:stream`), empty for a batch.
    pub stream: std::collections::BTreeMap<String, String>,
    /// `--verify`'s verdict once the run has checked the counts.
    pub verified: Option<bool>,
    /// The run is over: nothing will change any more.
    pub ended: bool,
}

/// Everything seen so far.
#[derive(Debug, Default)]
pub struct Model {
    pub job: Job,
    pub files: Vec<FileBar>,
    pub events: Vec<Event>,
    pub samples: Vec<Sample>,
}

/// What one look found.
#[derive(Debug, Default)]
pub struct Look {
    /// Where the job stands, if Redis answered.
    pub job: Option<Job>,
    pub files: Vec<FileBar>,
    pub events: Vec<Event>,
    pub sample: Option<Sample>,
}

impl Model {
    pub fn add(&mut self, look: Look) {
        if let Some(job) = look.job {
            self.job = Job {
                started_ms: self.job.started_ms,
                ..job
            };
        }
        self.files.extend(look.files);
        self.events.extend(look.events);
        self.samples.extend(look.sample);
    }
}

/// Reads the job into a [`Model`], look after look.
pub struct Reader {
    url: String,
    prefix: String,
    backend: Option<Box<dyn Backend + Send>>,
    cursor: ResultCursor,
    log: EventLog,
    log_seen: usize,
    faults_seen: HashSet<String>,
    /// Commits seen (queue entry id, commit time): read again after a
    /// restart from a snapshot, they are not new.
    commits_seen: HashSet<(String, u64)>,
    /// Whether the stream's source was holding files back at the last look.
    throttled: bool,
}

impl Reader {
    pub fn new(url: &str, prefix: &str, log: EventLog) -> Self {
        Reader {
            url: url.into(),
            prefix: prefix.into(),
            backend: None,
            cursor: ResultCursor::default(),
            log,
            log_seen: 0,
            faults_seen: HashSet::new(),
            commits_seen: HashSet::new(),
            throttled: false,
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
            None => self.backend.insert(backend::open(
                RedisMode::Snapshot,
                &self.url,
                &self.prefix,
                // Short: a look that fails is tried again at the next one.
                Duration::from_millis(200),
            )?),
        };
        let p = b.progress()?;
        let depth = b.depth()?;
        look.sample = Some(Sample {
            at_ms: epoch_ms(),
            lag: depth.lag,
            pending: depth.pending,
        });
        let figures = b.read_stream()?;
        // Throttling as the driver publishes it, seen at each look.
        let throttled = figures.get(stream::THROTTLED).is_some_and(|v| v == "1");
        if throttled != self.throttled {
            self.throttled = throttled;
            look.events.push(Event::throttle(throttled, epoch_ms()));
        }
        look.job = Some(Job {
            phase: phase(&p),
            files: p.files,
            files_done: p.files_done,
            files_failed: p.files_failed,
            words: p.words,
            bytes: p.bytes,
            bytes_done: p.bytes_done,
            commits_ignored: p.commits_ignored,
            top: b
                .top(TOP)?
                .into_iter()
                .map(|w| (String::from_utf8_lossy(&w.word).into_owned(), w.count))
                .collect(),
            stream: figures.into_iter().collect(),
            ..Job::default()
        });
        // After a restart from a snapshot the record is read again: files
        // shown before stay (their work was done), and the ones redone
        // show again, as they are.
        while let Results::More(done) = b.commits_since(&mut self.cursor, BATCH)? {
            if done.is_empty() {
                break;
            }
            let seen = &mut self.commits_seen;
            let new = done
                .into_iter()
                .filter(|d| seen.insert((d.id.clone(), d.committed_ms)));
            look.files.extend(new.map(|d| FileBar {
                path: d.path,
                worker: d.worker,
                taken_ms: d.taken_ms,
                committed_ms: d.committed_ms,
                latency_ms: d.latency_ms,
                stolen: d.stolen,
            }));
        }
        for (spec, at_ms) in b.faults_fired()? {
            if self.faults_seen.insert(spec.clone()) {
                look.events.push(Event::fault_fired(spec, at_ms));
            }
        }
        Ok(())
    }
}

fn phase(p: &Progress) -> &'static str {
    if p.finished {
        "done"
    } else if p.is_done() {
        "writing the result"
    } else if p.created {
        "counting"
    } else {
        "starting"
    }
}
