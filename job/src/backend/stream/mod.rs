//! The backend of one Redis (Snapshot mode): a stream of file entries and
//! one consumer group; `XREADGROUP` takes, `XAUTOCLAIM` steals, and the
//! `wc_commit` function XACKs and records a file in one atomic step.

mod driver;
mod worker;

use super::Backend;
use crate::connection::Redis;
use crate::queue::{
    Carry, Committed, Depth, Entry, Held, Injection, ResultCursor, Results, Saves, Taken,
};
use crate::state::JobSettings;
use anyhow::Result;
use std::collections::VecDeque;
use std::time::Duration;

/// Most files in one commit: a worker commits sooner when nothing waits
/// or its oldest file is about to be stolen (see `worker`).
const BATCH_LIMIT: usize = 256;

pub struct Stream {
    redis: Redis,
    /// The connections made when this worker last took a file, none before
    /// its first: a new one since may be to a Redis that came back from a
    /// snapshot.
    took_on: Option<u64>,
    /// This worker's own files, read again after a reconnect, to take.
    own: VecDeque<Entry>,
}

impl Stream {
    pub fn open(url: &str, prefix: &str, patience: Duration) -> Result<Self> {
        Ok(Stream {
            redis: Redis::open(url, prefix, patience)?,
            took_on: None,
            own: VecDeque::new(),
        })
    }
}

impl super::sealed::Connected for Stream {
    fn redis(&mut self) -> &mut Redis {
        &mut self.redis
    }
}

impl Backend for Stream {
    fn create_job(&mut self, settings: &JobSettings) -> Result<()> {
        driver::create_job(&mut self.redis, settings)
    }
    fn enqueue(&mut self, injections: &[Injection]) -> Result<u64> {
        driver::enqueue(&mut self.redis, injections)
    }
    fn depth(&mut self) -> Result<Depth> {
        driver::depth(&mut self.redis)
    }
    fn results_since(
        &mut self,
        cursor: &mut ResultCursor,
        max: usize,
        wait: Duration,
    ) -> Result<Results> {
        driver::results_since(&mut self.redis, cursor, max, wait, true)
    }
    fn saves(&mut self) -> Result<Option<Saves>> {
        driver::saves(&mut self.redis).map(Some)
    }
    fn commits_since(&mut self, cursor: &mut ResultCursor, max: usize) -> Result<Results> {
        driver::results_since(&mut self.redis, cursor, max, Duration::ZERO, false)
    }
    fn wake_workers(&mut self) -> Result<()> {
        driver::wake_workers(&mut self.redis)
    }
    fn session(&self) -> u64 {
        self.redis.connects()
    }
    fn take(
        &mut self,
        consumer: &str,
        wait: Duration,
        claim_timeout: Duration,
    ) -> Result<Option<Taken>> {
        // A commit lost with a restart leaves its files pending on this
        // worker, where nobody else takes them before the claim timeout
        // (with the files it holds, which the worker skips). Not
        // at a worker's first take: a pod restarted after a crash may have
        // its predecessor's name (its PID), and those files are for the
        // others to steal, as from any crashed worker.
        let connects = self.redis.connects();
        let reconnected = self.took_on.is_some_and(|t| t != connects);
        self.took_on = Some(connects);
        if reconnected {
            self.own = worker::read_own(&mut self.redis, consumer)?.into();
        }
        if let Some(entry) = self.own.pop_front() {
            return Ok(Some(Taken {
                entry,
                stolen: false,
            }));
        }
        if let Some(entry) = worker::read_new(&mut self.redis, consumer, wait)? {
            return Ok(Some(Taken {
                entry,
                stolen: false,
            }));
        }
        let stolen = worker::claim(&mut self.redis, consumer, claim_timeout)?;
        Ok(stolen.map(|entry| Taken {
            entry,
            stolen: true,
        }))
    }
    fn batch_limit(&self) -> usize {
        BATCH_LIMIT
    }
    fn commit(&mut self, files: &[Held], consumer: &str, carry: Carry) -> Result<Committed> {
        worker::commit(&mut self.redis, files, consumer, carry)
    }
    fn fire(&mut self, fault: &str) -> Result<bool> {
        worker::fire(&mut self.redis, fault)
    }
}
