//! What the queue holds and a commit carries: the types every backend
//! speaks in, below the seam ([`crate::backend::Backend`]) and the loops.

use anyhow::Result;
use std::ops::Range;
use std::time::Duration;
use wordcount_count::input::is_compressed;
use wordcount_protocol::{keys, CommitRecord};

/// What one entry of the queue counts: a whole file, or a byte range of a
/// large one split (see `wordcount_count::range`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unit {
    /// Relative to the input (a directory, or an object store's prefix).
    pub path: String,
    /// The bytes it counts: the file's size, or the range's length.
    pub size: u64,
    pub range: Option<Range<u64>>,
    /// What reads are pinned to, where the store has versions (an
    /// object's ETag as listed): a file rewritten since fails clearly
    /// instead of mixing two versions.
    pub version: Option<String>,
}

impl Unit {
    /// A whole file.
    pub fn file(path: impl Into<String>, size: u64) -> Self {
        Unit {
            path: path.into(),
            size,
            ..Unit::default()
        }
    }

    /// The units a file (or object) of `size` bytes is enqueued as: byte
    /// ranges when it is larger than `split` (0: never) and not
    /// compressed, else itself.
    pub fn plan(path: String, size: u64, version: Option<String>, split: u64) -> Vec<Unit> {
        let whole = || Unit {
            path: path.clone(),
            size,
            range: None,
            version: version.clone(),
        };
        match wordcount_count::range::split(size, split) {
            Some(ranges) if !is_compressed(&path) => ranges
                .into_iter()
                .map(|r| Unit {
                    size: r.end - r.start,
                    range: Some(r),
                    ..whole()
                })
                .collect(),
            _ => vec![whole()],
        }
    }

    /// How logs, failures and the timeline name it: the path, and a
    /// range's bytes.
    pub fn label(&self) -> String {
        match &self.range {
            None => self.path.clone(),
            Some(r) => format!("{} [{}]", self.path, keys::entry::range_text(r)),
        }
    }

    /// Its range and version as the enqueue functions take them ('' for none).
    pub(crate) fn wire(&self) -> (String, &str) {
        let range = self.range.as_ref().map(keys::entry::range_text);
        (
            range.unwrap_or_default(),
            self.version.as_deref().unwrap_or(""),
        )
    }
}

/// One unit to count, as the queue holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Unique per enqueueing; a backend's own id (a stream entry id).
    pub id: String,
    pub unit: Unit,
    /// The injection's sequence number (0 where the queue keeps none).
    pub seq: u64,
}

/// One injection of a unit into the queue: a batch injects each once, a
/// stream injects at a rate, a file maybe many times.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Injection {
    /// Unique per job and per injection: what makes enqueueing idempotent.
    pub seq: u64,
    pub unit: Unit,
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
    pub(crate) fn of(held: &Held, took_effect: bool) -> Self {
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
pub(crate) fn only(files: &[Held]) -> Result<&Held> {
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
            if crate::connection::error_code(&e).as_deref()
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
    pub(crate) position: String,
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
