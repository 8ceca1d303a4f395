//! The driver's side: job settings, enqueueing, progress, folding results
//! into the counts, and the final ranking.

use crate::backend::{JobSettings, Progress, Redis};
use crate::counts::{Counts, WordCount};
use crate::input::InputFile;
use anyhow::{Context, Result};
use redis::Value;
use std::collections::HashMap;
use std::time::Duration;
use wordcount_protocol::keys::{meta, stats};
use wordcount_protocol::library;

/// Pairs per command when staging a fold or reading the counts.
const BATCH: usize = 10_000;

/// Records the settings and creates the queue's consumer group.
pub fn create_job(redis: &mut Redis, s: &JobSettings) -> Result<()> {
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
            .arg(now_ms())
            .ignore()
            .exec(c)?;
        match redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&k.queue)
            .arg(k.group())
            .arg("0")
            .arg("MKSTREAM")
            .exec(c)
        {
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            r => r,
        }
    })
}

/// The job's settings, once the driver has written them.
pub fn settings(redis: &mut Redis) -> Result<Option<JobSettings>> {
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

/// Enqueues `files` (paths relative to the input directory) and marks
/// the end of enqueueing. Idempotent: a file already enqueued is skipped,
/// so after Redis restarts from an older snapshot this restores what it lacks.
pub fn enqueue_all(redis: &mut Redis, files: &[InputFile]) -> Result<u64> {
    let bytes: u64 = files.iter().map(|f| f.size).sum();
    redis.run(|c, k| {
        redis::cmd("HSET")
            .arg(&k.meta)
            .arg(meta::FILES)
            .arg(files.len())
            .arg(meta::BYTES)
            .arg(bytes)
            .exec(c)
    })?;
    let mut added = 0;
    for chunk in files.chunks(1024) {
        let replies: Vec<Value> = redis.run(|c, k| {
            let mut pipe = redis::pipe();
            for f in chunk {
                pipe.cmd("FCALL")
                    .arg(library::ENQUEUE)
                    .arg(2)
                    .arg(&k.queue)
                    .arg(&k.enqueued)
                    .arg(f.path.to_string_lossy().as_ref())
                    .arg(f.size);
            }
            pipe.query(c)
        })?;
        added += replies.iter().filter(|v| !matches!(v, Value::Nil)).count() as u64;
    }
    redis.run(|c, k| {
        redis::cmd("HSET")
            .arg(&k.meta)
            .arg(meta::ENQUEUE_DONE)
            .arg(1)
            .exec(c)
    })?;
    Ok(added)
}

pub fn progress(redis: &mut Redis) -> Result<Progress> {
    let (fields, counters): (HashMap<String, String>, HashMap<String, u64>) =
        redis.run(|c, k| {
            redis::pipe()
                .cmd("HGETALL")
                .arg(&k.meta)
                .cmd("HGETALL")
                .arg(&k.stats)
                .query(c)
        })?;
    let num = |key: &str| fields.get(key).and_then(|v| v.parse().ok()).unwrap_or(0);
    let stat = |key: &str| counters.get(key).copied().unwrap_or(0);
    Ok(Progress {
        files: num(meta::FILES),
        bytes: num(meta::BYTES),
        enqueue_done: fields.get(meta::ENQUEUE_DONE).is_some_and(|v| v == "1"),
        files_done: stat(stats::FILES_DONE),
        files_failed: stat(stats::FILES_FAILED),
        words: stat(stats::WORDS),
        bytes_done: stat(stats::BYTES_DONE),
        files_folded: stat(stats::FILES_FOLDED),
        commits_ignored: stat(stats::COMMITS_IGNORED),
    })
}

/// Files that could not be counted: path -> error.
pub fn failures(redis: &mut Redis) -> Result<Vec<(String, String)>> {
    let mut v: Vec<(String, String)> =
        redis.run(|c, k| redis::cmd("HGETALL").arg(&k.failed).query(c))?;
    v.sort();
    Ok(v)
}

/// Folds the committed results into the counts, a batch at a time: their
/// sum is staged, then one function call adds it and removes them.
/// Returns the number of results folded.
pub fn fold(redis: &mut Redis) -> Result<u64> {
    let mut folded = 0;
    let mut cursor = 0u64;
    loop {
        let (next, pairs): (u64, Vec<(String, Vec<u8>)>) = redis.run(|c, k| {
            redis::cmd("HSCAN")
                .arg(&k.results)
                .arg(cursor)
                .arg("COUNT")
                .arg(64)
                .query(c)
        })?;
        if !pairs.is_empty() {
            folded += fold_batch(redis, &pairs)?;
        }
        if next == 0 {
            return Ok(folded);
        }
        cursor = next;
    }
}

fn fold_batch(redis: &mut Redis, pairs: &[(String, Vec<u8>)]) -> Result<u64> {
    let mut sum = Counts::new();
    let mut ids: Vec<&str> = Vec::with_capacity(pairs.len());
    for (id, packed) in pairs {
        sum.add_packed(packed)
            .with_context(|| format!("result {id} is malformed"))?;
        ids.push(id);
    }
    ids.sort_unstable();
    ids.dedup();
    let words: Vec<(&[u8], u64)> = sum.iter().collect();
    redis.run(|c, k| loop {
        redis::cmd("DEL").arg(&k.fold_stage).exec(c)?;
        for chunk in words.chunks(BATCH) {
            let mut zadd = redis::cmd("ZADD");
            zadd.arg(&k.fold_stage);
            for (w, n) in chunk {
                zadd.arg(*n).arg(*w);
            }
            zadd.exec(c)?;
        }
        match redis::cmd("FCALL")
            .arg(library::FOLD)
            .arg(4)
            .arg(&k.results)
            .arg(&k.counts)
            .arg(&k.stats)
            .arg(&k.fold_stage)
            .arg(words.len())
            .arg(&ids)
            .query(c)
        {
            // Redis lost part of the stage (it restarted in between): again.
            Err(e) if e.code() == Some(library::error::FOLD_STAGE) => continue,
            r => return r,
        }
    })
}

/// All folded counts.
pub fn counts(redis: &mut Redis) -> Result<Counts> {
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

/// The `k` most frequent folded words, count descending then word
/// ascending, and the number of distinct words.
pub fn top(redis: &mut Redis, k: usize) -> Result<(Vec<WordCount>, u64)> {
    let distinct: u64 = redis.run(|c, keys| redis::cmd("ZCARD").arg(&keys.counts).query(c))?;
    if k == 0 || distinct == 0 {
        return Ok((Vec::new(), distinct));
    }
    // Redis breaks ties by word descending; take every word that ties
    // with the k-th and order them ourselves.
    let kth: Vec<(Vec<u8>, f64)> = redis.run(|c, keys| {
        redis::cmd("ZREVRANGE")
            .arg(&keys.counts)
            .arg(k - 1)
            .arg(k - 1)
            .arg("WITHSCORES")
            .query(c)
    })?;
    let floor = kth
        .first()
        .map_or("-inf".to_string(), |(_, s)| s.to_string());
    let candidates: Vec<(Vec<u8>, f64)> = redis.run(|c, keys| {
        redis::cmd("ZRANGE")
            .arg(&keys.counts)
            .arg("+inf")
            .arg(&floor)
            .arg("BYSCORE")
            .arg("REV")
            .arg("WITHSCORES")
            .query(c)
    })?;
    let mut top: Vec<WordCount> = candidates
        .into_iter()
        .map(|(word, n)| WordCount {
            word,
            count: n as u64,
        })
        .collect();
    top.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.word.cmp(&b.word)));
    top.truncate(k);
    Ok((top, distinct))
}

/// Faults that fired so far: spec -> when (ms since the epoch).
pub fn faults_fired(redis: &mut Redis) -> Result<Vec<(String, u64)>> {
    redis.run(|c, k| redis::cmd("HGETALL").arg(&k.faults).query(c))
}

pub fn write_summary(redis: &mut Redis, json: &str) -> Result<()> {
    redis.run(|c, k| redis::cmd("SET").arg(&k.summary).arg(json).exec(c))
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
