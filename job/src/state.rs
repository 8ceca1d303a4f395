//! The job's state that every Redis mode keeps alike, in hashes, strings
//! and sorted sets: settings, progress, failures, the result, the top
//! words, fired faults, the summary, and staged counts.

use crate::connection::Redis;
use crate::dump;
use crate::queue::Entry;
use anyhow::{Context, Result};
use rayon::slice::ParallelSliceMut;
use std::collections::HashMap;
use std::time::Duration;
use wordcount_count::counts::{Counts, WordCount};
use wordcount_protocol::keys::meta;
use wordcount_protocol::state::{Meta, Stats};
use wordcount_protocol::{Commit, Tokenizer};

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
    /// The workers' object store's transient failures, retried.
    pub store_retries: u64,
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

/// The job's shared keys as the loops and the watchers read and write
/// them, the same for every backend ([`crate::backend::Backend::state`]).
pub struct State<'a> {
    redis: &'a mut Redis,
}

impl<'a> State<'a> {
    pub(crate) fn new(redis: &'a mut Redis) -> Self {
        State { redis }
    }

    /// Adds `n` transient failures of the object store, retried.
    pub fn add_store_retries(&mut self, n: u64) -> Result<()> {
        let redis = &mut *self.redis;
        redis.run(|c, k| {
            redis::cmd("HINCRBY")
                .arg(&k.stats)
                .arg(wordcount_protocol::keys::stats::STORE_RETRIES)
                .arg(n)
                .exec(c)
        })
    }

    pub fn end_enqueue(&mut self) -> Result<()> {
        let redis = &mut *self.redis;
        redis.run(|c, k| {
            redis::cmd("HSET")
                .arg(&k.meta)
                .arg(meta::ENQUEUE_DONE)
                .arg(1)
                .exec(c)
        })
    }

    /// Replaces the fields of `P:stream`.
    pub fn write_stream(&mut self, fields: &[(&str, String)]) -> Result<()> {
        let redis = &mut *self.redis;
        redis.run(|c, k| redis::cmd("HSET").arg(&k.stream).arg(fields).exec(c))
    }

    pub fn read_stream(&mut self) -> Result<HashMap<String, String>> {
        let redis = &mut *self.redis;
        redis.run(|c, k| redis::cmd("HGETALL").arg(&k.stream).query(c))
    }

    /// Replaces `P:top` with `top`.
    pub fn write_top(&mut self, top: &[WordCount]) -> Result<()> {
        let redis = &mut *self.redis;
        redis.run(|c, k| {
            let mut tx = redis::pipe();
            tx.atomic().cmd("DEL").arg(&k.top).ignore();
            if !top.is_empty() {
                let mut zadd = redis::cmd("ZADD");
                zadd.arg(&k.top);
                for w in top {
                    zadd.arg(w.count).arg(&w.word);
                }
                tx.add_command(zadd).ignore();
            }
            tx.exec(c)
        })
    }

    /// The first `n` words of `P:top`, most frequent first.
    pub fn top(&mut self, n: usize) -> Result<Vec<WordCount>> {
        let redis = &mut *self.redis;
        let words: Vec<(Vec<u8>, u64)> = redis.run(|c, k| {
            redis::cmd("ZRANGE")
                .arg(&k.top)
                .arg(0)
                .arg(n.saturating_sub(1))
                .arg("REV")
                .arg("WITHSCORES")
                .query(c)
        })?;
        Ok(words
            .into_iter()
            .map(|(word, count)| WordCount { word, count })
            .collect())
    }

    /// Files that could not be counted: path -> error.
    pub fn failures(&mut self) -> Result<Vec<(String, String)>> {
        let redis = &mut *self.redis;
        let mut v: Vec<(String, String)> =
            redis.run(|c, k| redis::cmd("HGETALL").arg(&k.failed).query(c))?;
        v.sort();
        Ok(v)
    }

    pub fn write_summary(&mut self, json: &str) -> Result<()> {
        let redis = &mut *self.redis;
        redis.run(|c, k| redis::cmd("SET").arg(&k.summary).arg(json).exec(c))
    }

    /// The counts in `P:counts`.
    pub fn counts(&mut self) -> Result<Counts> {
        let redis = &mut *self.redis;
        let mut counts = Counts::new();
        let mut start = 0;
        loop {
            let page: Vec<(Vec<u8>, f64)> = redis.run(|c, k| {
                redis::cmd("ZRANGE")
                    .arg(&k.counts)
                    .arg(start)
                    .arg(start + BATCH - 1)
                    .arg("WITHSCORES")
                    .query(c)
            })?;
            for (w, n) in &page {
                counts.add(w, *n as u64);
            }
            if page.len() < BATCH {
                return Ok(counts);
            }
            start += BATCH;
        }
    }

    /// Faults that fired so far: spec -> when (ms since the epoch).
    pub fn faults_fired(&mut self) -> Result<Vec<(String, u64)>> {
        let redis = &mut *self.redis;
        redis.run(|c, k| redis::cmd("HGETALL").arg(&k.faults).query(c))
    }

    pub fn progress(&mut self) -> Result<Progress> {
        let redis = &mut *self.redis;
        type Reply = (HashMap<String, String>, HashMap<String, String>, bool);
        let (meta_hash, stats_hash, finished): Reply = redis.run(|c, k| {
            redis::pipe()
                .cmd("HGETALL")
                .arg(&k.meta)
                .cmd("HGETALL")
                .arg(&k.stats)
                .cmd("EXISTS")
                .arg(&k.summary)
                .query(c)
        })?;
        let meta = Meta::parse(&meta_hash).context("the job's P:meta")?;
        let stats = Stats::parse(&stats_hash).context("the job's P:stats")?;
        let meta = meta.unwrap_or_default();
        Ok(Progress {
            files: meta.files.unwrap_or(0).max(0) as u64,
            bytes: meta.bytes.unwrap_or(0).max(0) as u64,
            created: meta.created,
            enqueue_done: meta.enqueue_done,
            files_done: stats.files_done,
            files_failed: stats.files_failed,
            words: stats.words,
            bytes_done: stats.bytes_done,
            commits_ignored: stats.commits_ignored,
            store_retries: stats.store_retries,
            finished,
        })
    }

    /// The job's settings, once the driver has written them.
    pub fn settings(&mut self) -> Result<Option<JobSettings>> {
        let redis = &mut *self.redis;
        let fields: HashMap<String, String> =
            redis.run(|c, k| redis::cmd("HGETALL").arg(&k.meta).query(c))?;
        let (Some(t), Some(m), Some(ms)) = (
            fields.get(meta::TOKENIZER),
            fields.get(meta::COMMIT),
            fields.get(meta::CLAIM_TIMEOUT_MS),
        ) else {
            return Ok(None);
        };
        Ok(Some(JobSettings {
            tokenizer: t.parse()?,
            commit: m.parse()?,
            claim_timeout: Duration::from_millis(ms.parse().context("bad claim_timeout_ms")?),
        }))
    }
}

/// Pairs per command when writing or reading the counts.
const BATCH: usize = 10_000;

/// Records the settings workers read, and when the job started.
pub fn write_settings(redis: &mut Redis, s: &JobSettings) -> Result<()> {
    redis.run(|c, k| {
        redis::pipe()
            .hset_multiple(
                &k.meta,
                &[
                    (meta::TOKENIZER, s.tokenizer.as_str().to_string()),
                    (meta::COMMIT, s.commit.as_str().to_string()),
                    (
                        meta::CLAIM_TIMEOUT_MS,
                        s.claim_timeout.as_millis().to_string(),
                    ),
                ],
            )
            .ignore()
            .cmd("HSETNX")
            .arg(&k.meta)
            .arg(meta::STARTED_MS)
            .arg(wordcount_protocol::epoch_ms())
            .ignore()
            .exec(c)
    })
}

/// Replaces the sorted set `P:counts`, the job's result, with `counts`,
/// at once: whoever reads it sees the old set or the new one.
///
/// The set goes in as a listpack (see `dump`), and Redis keeps it as one
/// if `zset-max-listpack-entries` allows: the transaction raises that
/// limit for its `RESTORE` and sets it back, so no other set is affected.
/// A listpack of the whole vocabulary costs Redis a copy to load, from
/// the `RESTORE` or from a snapshot. Reading the top words stays cheap
/// (they are at its end); a lookup or an update of one word scans it
/// (milliseconds); adding a word turns it into a skiplist. RedisRaft runs `CONFIG`
/// at once rather than in the transaction, so under it the replicas make
/// a skiplist as they apply the `RESTORE`.
pub fn replace_counts(redis: &mut Redis, counts: &Counts) -> Result<()> {
    const LIMIT: &str = "zset-max-listpack-entries";
    if counts.distinct() == 0 {
        return redis.run(|c, k| redis::cmd("DEL").arg(&k.counts).exec(c));
    }
    let payload = dump::sorted_set(&sorted_as_redis(counts));
    redis.run(|c, k| {
        let (_, limit): (String, u64) = redis::cmd("CONFIG").arg("GET").arg(LIMIT).query(c)?;
        redis::pipe()
            .atomic()
            .cmd("CONFIG")
            .arg("SET")
            .arg(LIMIT)
            .arg(limit.max(counts.distinct() as u64))
            .ignore()
            .cmd("RESTORE")
            .arg(&k.counts)
            .arg(0)
            .arg(&payload)
            .arg("REPLACE")
            .ignore()
            .cmd("CONFIG")
            .arg("SET")
            .arg(LIMIT)
            .arg(limit)
            .ignore()
            .exec(c)
    })
}

/// How long a stage outlives its writer at most: one left by a crash must
/// not outlive the job by much.
pub const STAGE_TTL_MS: u64 = 3_600_000;

/// Appends one chunk of packed counts to this worker's stage for `entry`.
pub fn stage(
    redis: &mut Redis,
    entry: &Entry,
    consumer: &str,
    chunk: &[u8],
    first: bool,
) -> Result<()> {
    redis.run(|c, k| {
        let key = k.stage(&entry.id, consumer);
        let mut pipe = redis::pipe();
        if first {
            pipe.cmd("DEL").arg(&key).ignore();
        }
        pipe.cmd("APPEND").arg(&key).arg(chunk).ignore();
        pipe.cmd("PEXPIRE").arg(&key).arg(STAGE_TTL_MS).ignore();
        pipe.exec(c)
    })
}

/// Adds one occurrence of each word, pipelined: the naive commit.
pub fn add_words(redis: &mut Redis, words: &[&[u8]]) -> Result<()> {
    redis.run(|c, k| {
        let mut pipe = redis::pipe();
        for w in words {
            pipe.cmd("ZINCRBY").arg(&k.counts).arg(1).arg(*w).ignore();
        }
        pipe.exec(c)
    })
}

/// `(member, score)` sorted as Redis orders a sorted set: by score, then
/// member. Each member's first 8 bytes, as a number beside the score,
/// settle most comparisons without following the pointer to the member;
/// the workers are idle by now, so every core sorts.
fn sorted_as_redis(counts: &Counts) -> Vec<(&[u8], u64)> {
    let prefix = |w: &[u8]| {
        let mut b = [0u8; 8];
        let n = w.len().min(8);
        b[..n].copy_from_slice(&w[..n]);
        u64::from_be_bytes(b)
    };
    let mut keyed: Vec<(u64, u64, &[u8])> = counts.iter().map(|(w, n)| (n, prefix(w), w)).collect();
    keyed.par_sort_unstable();
    keyed.into_iter().map(|(n, _, w)| (w, n)).collect()
}
