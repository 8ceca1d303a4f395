//! The seam between the job's loops and the way Redis is run: the worker
//! loop (take a file, count it, commit it) and the driver loop (enqueue,
//! wait, fold, summarise) talk only to [`Backend`]. Each Redis mode is one
//! implementation: [`Stream`] (one Redis, a stream and a consumer group,
//! Redis Functions) and [`Lease`] (RedisRaft: a queue of leases). The
//! state both keep alike is in `state`, as the trait's default methods.
//! docs/src/protocol.md describes the seam and every key and function.

pub mod crdt;
mod dump;
pub mod lease;
mod redis;
mod state;
pub mod stream;

pub use self::redis::{error_code, redact, Redis};
pub use crdt::Crdt;
pub use lease::Lease;
pub use stream::Stream;

use anyhow::Result;
use std::time::Duration;
use wordcount_count::counts::{Counts, WordCount};
use wordcount_protocol::{Commit, CommitRecord, RedisMode, Tokenizer};

/// One file to count, as the queue holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Unique per enqueueing; a backend's own id (a stream entry id).
    pub id: String,
    /// Relative to the input directory.
    pub path: String,
    pub size: u64,
    /// The injection's sequence number (0 where the queue keeps none).
    pub seq: u64,
}

/// One injection of a file into the queue: a batch injects each file once,
/// a stream injects files at a rate, a file maybe many times.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Injection {
    /// Unique per job and per injection: what makes enqueueing idempotent.
    pub seq: u64,
    /// Relative to the input directory.
    pub path: String,
    pub size: u64,
    /// How long after it was due the source injects it (backpressure).
    pub late: Duration,
}

/// A file a worker took: new, or stolen from a worker that went quiet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Taken {
    pub entry: Entry,
    pub stolen: bool,
}

/// How a commit carries the file's counts.
pub enum Carry<'a> {
    /// In the call itself (packed, see `Counts::pack`).
    Inline(&'a [u8]),
    /// Already staged with [`Backend::stage`].
    Staged,
    /// Already added word by word (`--commit per-word`).
    Added,
    /// The file could not be counted; the message says why.
    Failed(&'a str),
}

impl Carry<'_> {
    /// How the commit functions take it: `how` and the payload.
    pub fn wire(&self) -> (&'static str, &[u8]) {
        match self {
            Carry::Inline(p) => ("inline", p),
            Carry::Staged => ("staged", b""),
            Carry::Added => ("added", b""),
            Carry::Failed(e) => ("failed", e.as_bytes()),
        }
    }
}

/// A file counted and not committed yet: how it was taken, and its words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    pub taken: Taken,
    pub words: u64,
}

/// What a commit did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Committed {
    /// Settled: `before` names the files another worker had committed
    /// first. None: the commit took effect. All: it was ignored. Some: it
    /// was refused, since its counts hold theirs; nothing was recorded, and
    /// the worker commits the others again without them.
    Settled { before: Vec<String> },
    /// A commit of [`Carry::Staged`] found the stage of this file gone
    /// (Redis came back from a snapshot taken before it was staged):
    /// nothing was recorded; stage again, then commit.
    StageGone(String),
}

impl Committed {
    /// The files another worker had committed first.
    pub fn before(&self) -> &[String] {
        match self {
            Committed::Settled { before } => before,
            Committed::StageGone(_) => &[],
        }
    }

    pub fn took_effect(&self) -> bool {
        matches!(self, Committed::Settled { before } if before.is_empty())
    }

    /// The outcome of a one-file commit: whether it took effect.
    fn of(held: &Held, took_effect: bool) -> Self {
        Committed::Settled {
            before: match took_effect {
                true => Vec::new(),
                false => vec![held.taken.entry.id.clone()],
            },
        }
    }
}

/// The one file of a commit, where a commit is of one file
/// ([`Backend::batch_limit`] 1).
fn only(files: &[Held]) -> Result<&Held> {
    match files {
        [held] => Ok(held),
        _ => anyhow::bail!("a commit here is of one file, not {}", files.len()),
    }
}

/// A commit's reply, its `WCSTAGEGONE` error read as `None`: not a
/// failure to retry; the commit answers [`Committed::StageGone`].
pub(crate) fn stage_gone_as_none<T>(r: ::redis::RedisResult<T>) -> ::redis::RedisResult<Option<T>> {
    match r {
        Err(e)
            if redis::error_code(&e).as_deref()
                == Some(wordcount_protocol::library::error::STAGE_GONE) =>
        {
            Ok(None)
        }
        r => r.map(Some),
    }
}

/// How far a reader has read the committed results.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResultCursor {
    /// A backend's own position: that of the last result read ([`Done::pos`]).
    position: String,
}

/// A committed file as the driver reads it back: its `P:latency` entry,
/// and its counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Done {
    /// The reader's position once this one is read: what
    /// [`Results::RolledBack`] names.
    pub pos: String,
    pub record: CommitRecord,
    /// Packed counts (see `Counts::pack`) of every file of its commit, on
    /// the first file; none on the others, and for per-word commits,
    /// whose words are in the result already.
    pub counts: Option<Vec<u8>>,
}

/// How deep the queue is: what a stream's backpressure looks at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Depth {
    /// Entries no worker has taken yet.
    pub lag: u64,
    /// Entries taken but not committed.
    pub pending: u64,
}

impl Depth {
    pub fn total(&self) -> u64 {
        self.lag + self.pending
    }
}

/// Committed results, as the driver reads them to merge them.
#[derive(Debug, PartialEq, Eq)]
pub enum Results {
    /// Each file committed since the cursor, in commit order; empty when
    /// none is new.
    More(Vec<Done>),
    /// Redis came back from a snapshot without some results read before:
    /// every result after the one at this position ([`Done::pos`]; empty:
    /// all of them) is gone, and the cursor is back there. The results
    /// before it are still there, and are not read again.
    RolledBack(String),
}

/// What a Redis has written to disk, as its `INFO` tells: a result read
/// before a snapshot started is in every restart from then on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Saves {
    /// The Redis process (`run_id`): its counts start again with it.
    pub run_id: String,
    /// Snapshots written whole since it started (`rdb_saves`).
    pub done: u64,
    /// One is being written (`rdb_bgsave_in_progress`).
    pub in_progress: bool,
}

/// Largest packed counts sent in one call; more is staged in chunks.
pub const STAGE_CHUNK: usize = 8 << 20;

/// What the driver decides for every worker.
#[derive(Clone, Debug, PartialEq)]
pub struct JobSettings {
    pub tokenizer: Tokenizer,
    pub commit: Commit,
    pub claim_timeout: Duration,
}

/// Where a job stands.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Progress {
    /// The driver has created the job (its settings and queue are there).
    pub created: bool,
    pub files: u64,
    pub bytes: u64,
    pub enqueue_done: bool,
    pub files_done: u64,
    pub files_failed: u64,
    pub words: u64,
    pub bytes_done: u64,
    pub commits_ignored: u64,
    /// The driver has written the result and the summary: the job is over.
    /// Until then workers stay, to redo what a Redis restart may roll back.
    pub finished: bool,
}

impl Progress {
    /// Every file enqueued and committed (or failed).
    pub fn is_done(&self) -> bool {
        self.enqueue_done && self.files_done + self.files_failed >= self.files
    }
}

/// A coordination backend: every step is idempotent, so a retry after a
/// lost reply or a Redis restart changes nothing the first try did not.
pub trait Backend {
    /// The connection the job's state is kept on (see `state`).
    fn redis(&mut self) -> &mut Redis;

    // The driver's side.

    /// Records the settings and makes the queue ready.
    fn create_job(&mut self, settings: &JobSettings) -> Result<()>;
    /// Enqueues the injections not enqueued yet; returns how many it added.
    fn enqueue(&mut self, injections: &[Injection]) -> Result<u64>;
    /// Marks the end of enqueueing: once every file enqueued is committed,
    /// the job is done.
    fn end_enqueue(&mut self) -> Result<()> {
        state::end_enqueue(self.redis())
    }
    /// How many entries wait for a worker and how many are being counted.
    fn depth(&mut self) -> Result<Depth>;
    /// Publishes a stream's figures (`P:stream`: field, value).
    fn write_stream(&mut self, fields: &[(&str, String)]) -> Result<()> {
        state::write_stream(self.redis(), fields)
    }
    /// A stream's figures as last published (none for a batch).
    fn read_stream(&mut self) -> Result<std::collections::HashMap<String, String>> {
        state::read_stream(self.redis())
    }
    /// Up to `max` results committed after `cursor`, which it advances,
    /// waiting up to `wait` for one when none is there yet.
    /// [`Results::RolledBack`] when results read before were rolled back
    /// (Redis came back from an older snapshot): the cursor goes back to
    /// the last one still there.
    fn results_since(
        &mut self,
        cursor: &mut ResultCursor,
        max: usize,
        wait: Duration,
    ) -> Result<Results>;
    /// Snapshots written so far; none for a backend that never rolls back
    /// (RedisRaft: a write is in a majority's log before it is answered).
    fn saves(&mut self) -> Result<Option<Saves>> {
        Ok(None)
    }
    /// Like `results_since`, without the counts and without waiting: the
    /// commits as whoever watches the job sees them.
    fn commits_since(&mut self, cursor: &mut ResultCursor, max: usize) -> Result<Results>;
    /// Replaces the job's result with `counts`, at once.
    fn replace_counts(&mut self, counts: &Counts) -> Result<()> {
        state::replace_counts(self.redis(), counts)
    }
    /// Writes the most frequent words so far, for whoever watches the job.
    fn write_top(&mut self, top: &[WordCount]) -> Result<()> {
        state::write_top(self.redis(), top)
    }
    /// The most frequent words so far (at most `n`), as last written.
    fn top(&mut self, n: usize) -> Result<Vec<WordCount>> {
        state::top(self.redis(), n)
    }
    /// Files that could not be counted: path -> why, sorted by path.
    fn failures(&mut self) -> Result<Vec<(String, String)>> {
        state::failures(self.redis())
    }
    fn write_summary(&mut self, json: &str) -> Result<()> {
        state::write_summary(self.redis(), json)
    }
    /// The job is done: wake the workers that wait for a file, so that
    /// they see it at once rather than when their wait runs out.
    fn wake_workers(&mut self) -> Result<()>;
    /// The job's result as written (or, for per-word commits, as added).
    fn counts(&mut self) -> Result<Counts> {
        state::counts(self.redis())
    }
    /// Faults that fired so far: spec -> when (ms since the epoch).
    fn faults_fired(&mut self) -> Result<Vec<(String, u64)>> {
        state::faults_fired(self.redis())
    }

    // Both sides.

    fn progress(&mut self) -> Result<Progress> {
        state::progress(self.redis())
    }
    /// Changes whenever the backend connects again: Redis may have come
    /// back from a snapshot, without what was written since it was taken.
    fn session(&self) -> u64;
    /// The settings, once the driver has written them.
    fn settings(&mut self) -> Result<Option<JobSettings>> {
        state::settings(self.redis())
    }

    // The worker's side.

    /// A new file, waiting up to `wait`; else one another worker has held
    /// for longer than `claim_timeout`; else none.
    fn take(
        &mut self,
        consumer: &str,
        wait: Duration,
        claim_timeout: Duration,
    ) -> Result<Option<Taken>>;
    /// Appends a chunk of packed counts to `consumer`'s stage for `entry`.
    fn stage(&mut self, entry: &Entry, consumer: &str, chunk: &[u8], first: bool) -> Result<()> {
        state::stage(self.redis(), entry, consumer, chunk, first)
    }
    /// Adds one occurrence of each word to the counts (`--commit per-word`).
    fn add_words(&mut self, words: &[&[u8]]) -> Result<()> {
        state::add_words(self.redis(), words)
    }
    /// Most files one commit may carry, their counts summed: a worker
    /// holds up to this many files before it commits.
    fn batch_limit(&self) -> usize {
        1
    }
    /// Commits files (at most [`Backend::batch_limit`]) exactly once, in
    /// one atomic step: a second commit changes nothing. `carry` holds
    /// their summed counts. Answers [`Committed::StageGone`] when staged counts
    /// were lost.
    fn commit(&mut self, files: &[Held], consumer: &str, carry: Carry) -> Result<Committed>;
    /// Marks a fault as fired; false if it had fired before in this job.
    fn fire(&mut self, fault: &str) -> Result<bool>;
}

/// Replaces the job's result, `P:counts`, with `counts` at once, in the
/// Redis of `redis`: what writes a CRDT's converged counts, whose backend's
/// [`Backend::replace_counts`] keeps a site's share to itself.
pub fn write_counts(redis: &mut Redis, counts: &Counts) -> Result<()> {
    state::replace_counts(redis, counts)
}

/// Where the job stands in the Redis of `redis` (another site's instance,
/// in the CRDT mode).
pub fn progress_of(redis: &mut Redis) -> Result<Progress> {
    state::progress(redis)
}

/// The backend of a Redis mode at `url`.
pub fn open(
    mode: RedisMode,
    url: &str,
    prefix: &str,
    patience: Duration,
) -> Result<Box<dyn Backend + Send>> {
    match mode {
        RedisMode::Snapshot => Ok(Box::new(Stream::open(url, prefix, patience)?)),
        RedisMode::RedisRaft => Ok(Box::new(Lease::open(url, prefix, patience)?)),
        RedisMode::Crdt => Ok(Box::new(Crdt::open(url, prefix, patience)?)),
    }
}

/// Like [`open`], for a client beside the job's own (the runner's look at
/// Redis, the live view, the autoscaler): it logs no outage, which the
/// driver reports once.
pub fn open_quiet(
    mode: RedisMode,
    url: &str,
    prefix: &str,
    patience: Duration,
) -> Result<Box<dyn Backend + Send>> {
    let mut backend = open(mode, url, prefix, patience)?;
    backend.redis().quiet();
    Ok(backend)
}
