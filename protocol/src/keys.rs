//! The Redis keys of one job, all under one prefix `P`, and the fields of its
//! hashes. docs/src/protocol.md describes each.

/// The prefix of a job's keys when none is given (`--prefix`). On
/// Kubernetes every job has a Redis of its own, so it always uses this one.
pub const DEFAULT_PREFIX: &str = "wc";

/// Names of a job's keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keys {
    pub prefix: String,
    /// Stream of files to count, consumer group `P`.
    pub queue: String,
    /// Set of injections already enqueued (their sequence numbers).
    pub enqueued: String,
    /// Hash of the job's settings and size: [`meta`].
    pub meta: String,
    /// Hash path -> why it could not be counted.
    pub failed: String,
    /// Sorted set word -> count: the result, written as the driver merges
    /// committed files, whole once the summary is written.
    pub counts: String,
    /// Sorted set word -> count: the most frequent words so far, rewritten
    /// about once a second while the job runs.
    pub top: String,
    /// Hash of counters: [`stats`].
    pub stats: String,
    /// Stream of one entry per committed file, with its latency.
    pub latency: String,
    /// Hash fault spec -> when it fired (ms since the epoch).
    pub faults: String,
    /// The driver's JSON summary, written when the job is done.
    pub summary: String,
    /// Hash of a stream's figures, rewritten by the driver about once a
    /// second while it runs: [`stream`].
    pub stream: String,
    /// The lease queue (RedisRaft mode), in place of `queue`: the list of
    /// entry ids no worker has taken yet.
    pub ready: String,
    /// Hash entry id -> the entry as JSON ([`entry`] fields and
    /// `injected_ms`).
    pub entries: String,
    /// Sorted set entry id -> when its holder took it (the caller's clock):
    /// the files being counted.
    pub leases: String,
    /// Hash entry id -> the consumer holding it.
    pub holders: String,
    /// Hash consumer -> `TICKET ID STOLEN` of its last take.
    pub tickets: String,
    /// Set of the entry ids committed.
    pub done: String,
    /// List of one JSON commit record per committed file ([`latency`]
    /// fields and `injected_ms`, `committed_ms`): the lease queue's
    /// `latency`.
    pub log: String,
    /// The CRDT (three sites): hash global id -> the file's packed counts,
    /// grow-only.
    pub crdt_files: String,
    /// Hash origin site -> `count:xor`, the digest of that site's ids in
    /// `crdt_files` (see docs/src/protocol.md).
    pub crdt_digest: String,
    /// Hash of the CRDT's counters: [`crdt_stats`].
    pub crdt_stats: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        let k = |s: &str| format!("{prefix}:{s}");
        Keys {
            prefix: prefix.to_string(),
            queue: k("queue"),
            enqueued: k("enqueued"),
            meta: k("meta"),
            failed: k("failed"),
            counts: k("counts"),
            top: k("top"),
            stats: k("stats"),
            latency: k("latency"),
            faults: k("faults"),
            summary: k("summary"),
            stream: k("stream"),
            ready: k("ready"),
            entries: k("entries"),
            leases: k("leases"),
            holders: k("holders"),
            tickets: k("tickets"),
            done: k("done"),
            log: k("log"),
            crdt_files: k("crdt:files"),
            crdt_digest: k("crdt:digest"),
            crdt_stats: k("crdt:stats"),
        }
    }

    /// The consumer group of the queue.
    pub fn group(&self) -> &str {
        &self.prefix
    }

    /// Where a worker stages a commit's counts (`id`: its first file's
    /// entry) before making it.
    pub fn stage(&self, id: &str, consumer: &str) -> String {
        format!("{}:stage:{id}:{consumer}", self.prefix)
    }

    /// A commit's packed counts, by its first file's entry id: a string of
    /// its own, so that a commit moves the staged counts with `RENAME` and
    /// they never pass through Lua (which hashes every string it is
    /// given, about 2 ns a byte).
    pub fn result(&self, id: &str) -> String {
        format!("{}:result:{id}", self.prefix)
    }
}

impl Default for Keys {
    fn default() -> Self {
        Keys::new(DEFAULT_PREFIX)
    }
}

/// Fields of `P:meta`, written by the driver.
pub mod meta {
    /// Files to count, once enqueueing has begun.
    pub const FILES: &str = "files";
    pub const BYTES: &str = "bytes";
    /// `1` once every file is enqueued.
    pub const ENQUEUE_DONE: &str = "enqueue_done";
    pub const TOKENIZER: &str = "tokenizer";
    pub const COMMIT: &str = "commit";
    pub const CLAIM_TIMEOUT_MS: &str = "claim_timeout_ms";
    /// When the driver first created the job (ms since the epoch).
    pub const STARTED_MS: &str = "started_ms";
    /// The lease queue's last entry id.
    pub const NEXT_ID: &str = "next_id";
}

/// Fields of `P:stats`, counted by the functions.
pub mod stats {
    pub const FILES_DONE: &str = "files_done";
    pub const FILES_FAILED: &str = "files_failed";
    pub const WORDS: &str = "words";
    pub const BYTES_DONE: &str = "bytes_done";
    /// Second commits of a file, ignored.
    pub const COMMITS_IGNORED: &str = "commits_ignored";
    /// Transient failures of the object store (an HTTP 5xx, a cut read)
    /// that the workers retried, added as they happen.
    pub const STORE_RETRIES: &str = "store_retries";
}

/// Fields of `P:crdt:stats`, counted by `wc_crdt_apply` (but the last).
pub mod crdt_stats {
    /// Files in `P:crdt:files`, and the bytes of their packed counts.
    pub const FILES_KNOWN: &str = "files_known";
    pub const BYTES_KNOWN: &str = "bytes_known";
    /// Of those, what read repair brought.
    pub const FILES_REPAIRED: &str = "files_repaired";
    pub const BYTES_REPAIRED: &str = "bytes_repaired";
    /// Written by a site's driver (`--site`) once its instance holds every
    /// file: milliseconds from its own site done to every instance equal.
    pub const CONVERGED_MS: &str = "converged_ms";
}

/// Fields of a `P:queue` entry.
pub mod entry {
    pub const PATH: &str = "path";
    pub const SIZE: &str = "size";
    /// When the file was due (ms since the epoch, Redis's clock): the
    /// enqueue time minus how late the source was (backpressure).
    pub const DUE_MS: &str = "due_ms";
    /// The injection's sequence number, unique per job (a file's global
    /// id in the CRDT).
    pub const SEQ: &str = "seq";
    /// Only on a byte range of a large file split: `START-END`, END
    /// excluded (see [`range_text`]).
    pub const RANGE: &str = "range";
    /// Only where the store has one: the version reads are pinned to (an
    /// object's ETag as listed).
    pub const VERSION: &str = "version";

    /// A range as [`RANGE`] holds it.
    pub fn range_text(r: &std::ops::Range<u64>) -> String {
        format!("{}-{}", r.start, r.end)
    }

    /// [`RANGE`]'s value read back; `None` when malformed.
    pub fn parse_range(text: &str) -> Option<std::ops::Range<u64>> {
        let (start, end) = text.split_once('-')?;
        let (start, end) = (start.parse().ok()?, end.parse().ok()?);
        (start <= end).then_some(start..end)
    }
}

/// Fields of a `P:latency` entry (one per committed file; its own id is
/// the commit time).
pub mod latency {
    /// The file's `P:queue` entry id; the first file of a commit's names
    /// its counts `P:result:ID`.
    pub const ID: &str = "id";
    pub const PATH: &str = "path";
    pub const WORKER: &str = "worker";
    /// Commit time minus due time, by Redis's clock.
    pub const LATENCY_MS: &str = "latency_ms";
    pub const DUE_MS: &str = "due_ms";
    pub const BYTES: &str = "bytes";
    /// `1` when the committing worker had stolen the file.
    pub const STOLEN: &str = "stolen";
    /// When the committing worker took the file (read or stole it), by
    /// Redis's clock: its time idle in the group's pending list subtracted
    /// from the commit time.
    pub const TAKEN_MS: &str = "taken_ms";
}

/// Fields of `P:stream`, written by the driver of a stream (`--stream`);
/// latencies in milliseconds, rates in files a second.
pub mod stream {
    /// The rate asked for.
    pub const RATE: &str = "rate";
    pub const INJECTED: &str = "injected";
    pub const COMMITTED: &str = "committed";
    pub const P50_MS: &str = "p50_ms";
    pub const P90_MS: &str = "p90_ms";
    pub const P99_MS: &str = "p99_ms";
    pub const MAX_MS: &str = "max_ms";
    /// Files committed a second, over the last few seconds.
    pub const THROUGHPUT: &str = "throughput";
    /// Files injected a second, over the last few seconds.
    pub const EFFECTIVE_RATE: &str = "effective_rate";
    /// Entries not delivered to any worker yet.
    pub const LAG: &str = "lag";
    /// Entries delivered but not committed.
    pub const PENDING: &str = "pending";
    /// `1` while the source holds back files that are due.
    pub const THROTTLED: &str = "throttled";
    /// Milliseconds spent throttled so far.
    pub const THROTTLED_MS: &str = "throttled_ms";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_the_prefix() {
        let k = Keys::new("job7");
        assert_eq!(k.queue, "job7:queue");
        assert_eq!(k.group(), "job7");
        assert_eq!(k.stage("1-0", "w"), "job7:stage:1-0:w");
        assert_eq!(Keys::default().counts, "wc:counts");
        assert_eq!(k.crdt_files, "job7:crdt:files");
    }
}
