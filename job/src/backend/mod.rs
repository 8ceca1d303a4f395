//! The seam between the job's loops and the way Redis is run: the worker
//! loop (take a file, count it, commit it) and the driver loop (enqueue,
//! wait, fold, summarise) talk only to [`Backend`]. Each Redis mode is one
//! implementation: [`Stream`] (one Redis, a stream and a consumer group,
//! Redis Functions) and [`Lease`] (RedisRaft: a queue of leases). The
//! state both keep alike is in `state`, as the trait's default methods.
//! docs/src/protocol.md describes the seam and every key and function.

pub mod crdt;
pub mod lease;
pub mod stream;

pub use crdt::Crdt;
pub use lease::Lease;
pub use stream::Stream;

use crate::crdt::anti_entropy::Convergence;
use crate::crdt::site::Site;
use crate::queue::{
    Carry, Committed, Depth, Entry, Held, Injection, ResultCursor, Results, Saves, Taken,
};
use crate::report::InstanceReport;
use crate::state::{self, JobSettings, State};
use anyhow::Result;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use wordcount_count::counts::Counts;
use wordcount_protocol::RedisMode;

/// The seam is sealed: the connection a backend keeps the job's state on
/// is for the state's default methods below, never for the loops, which
/// speak only through [`Backend`]. Outside this module no one can name
/// [`sealed::Connected`], so no one can call `redis()` or implement it.
mod sealed {
    use crate::connection::Redis;

    pub trait Connected {
        /// The connection the job's state is kept on (see `state`).
        fn redis(&mut self) -> &mut Redis;
    }
}

use sealed::Connected;

/// A coordination backend: every step is idempotent, so a retry after a
/// lost reply or a Redis restart changes nothing the first try did not.
pub trait Backend: Connected {
    /// The job's shared keys (settings, progress, failures, the result,
    /// the top words, fired faults, the summary, a stream's figures), kept
    /// alike by every backend on its connection.
    fn state(&mut self) -> State<'_> {
        State::new(self.redis())
    }

    // The driver's side.

    /// Records the settings and makes the queue ready.
    fn create_job(&mut self, settings: &JobSettings) -> Result<()>;
    /// Enqueues the injections not enqueued yet; returns how many it added.
    fn enqueue(&mut self, injections: &[Injection]) -> Result<u64>;
    /// How many entries wait for a worker and how many are being counted.
    fn depth(&mut self) -> Result<Depth>;
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
    /// The job is done: wake the workers that wait for a file, so that
    /// they see it at once rather than when their wait runs out.
    fn wake_workers(&mut self) -> Result<()>;
    /// Once the own files are all in: a CRDT site's driver (`--site`)
    /// pulls the other sites' files into its own instance until every
    /// instance agrees, and the job's result is the converged one. Every
    /// other backend's Redis holds the whole job already.
    fn converge(&mut self, _patience: Duration, _stop: &AtomicBool) -> Result<Convergence> {
        Ok(Convergence::Alone)
    }
    /// Writes the result of a [`Convergence::Converged`] job on the own
    /// instance: its counts and its figures.
    fn write_converged(&mut self, _counts: &Counts, _instance: &InstanceReport) -> Result<()> {
        anyhow::bail!("only a CRDT site's driver converges")
    }

    // Both sides.

    /// Changes whenever the backend connects again: Redis may have come
    /// back from a snapshot, without what was written since it was taken.
    fn session(&self) -> u64;

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

/// The backend of site `site` of a CRDT job run without a runner
/// (`--site`): its own instance first, and its driver converges with the
/// other sites' ([`Backend::converge`]).
pub fn open_site(site: Site, prefix: &str, patience: Duration) -> Result<Box<dyn Backend + Send>> {
    Ok(Box::new(Crdt::open_site(site, prefix, patience)?))
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
