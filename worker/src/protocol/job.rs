//! The driver's side: job settings, enqueueing, progress, folding results
//! into the counts, and the final ranking.

use super::Redis;
use crate::counts::{Counts, WordCount};
use crate::input::InputFile;
use crate::tokenize::Tokenizer;
use anyhow::{Context, Result};
use redis::Value;
use std::collections::HashMap;
use std::time::Duration;

/// How workers commit a file's counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Commit {
    /// One atomic, idempotent function call per file.
    #[default]
    PerFile,
    /// The naive way, for comparison: ZINCRBY by 1 per occurrence,
    /// pipelined, then the acknowledgement. Not exactly-once under faults.
    PerWord,
}

impl Commit {
    pub fn as_str(self) -> &'static str {
        match self {
            Commit::PerFile => "per-file",
            Commit::PerWord => "per-word",
        }
    }
}

/// What the driver decides for every worker, kept in `P:meta`.
#[derive(Clone, Debug, PartialEq)]
pub struct JobSettings {
    pub tokenizer: Tokenizer,
    pub commit: Commit,
    pub claim_timeout: Duration,
}

/// Where a job stands, from `P:meta` and `P:stats`.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Progress {
    pub files: u64,
    pub bytes: u64,
    pub enqueue_done: bool,
    pub files_done: u64,
    pub files_failed: u64,
    pub words: u64,
    pub bytes_done: u64,
    pub files_folded: u64,
    pub commits_ignored: u64,
}

impl Progress {
    /// Every file enqueued and committed (or failed).
    pub fn is_done(&self) -> bool {
        self.enqueue_done && self.files_done + self.files_failed >= self.files
    }
}

/// Pairs per command when staging a fold or reading the counts.
const BATCH: usize = 10_000;

impl Redis {
    /// Records the settings and creates the queue's consumer group.
    pub fn create_job(&mut self, s: &JobSettings) -> Result<()> {
        self.run(|c, k| {
            redis::pipe()
                .hset_multiple(
                    &k.meta,
                    &[
                        ("tokenizer", s.tokenizer.as_str().to_string()),
                        ("commit", s.commit.as_str().to_string()),
                        ("claim_timeout_ms", s.claim_timeout.as_millis().to_string()),
                    ],
                )
                .ignore()
                .cmd("HSETNX")
                .arg(&k.meta)
                .arg("started_ms")
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
    pub fn settings(&mut self) -> Result<Option<JobSettings>> {
        let meta: HashMap<String, String> =
            self.run(|c, k| redis::cmd("HGETALL").arg(&k.meta).query(c))?;
        let (Some(t), Some(m), Some(ms)) = (
            meta.get("tokenizer"),
            meta.get("commit"),
            meta.get("claim_timeout_ms"),
        ) else {
            return Ok(None);
        };
        Ok(Some(JobSettings {
            tokenizer: t.parse().map_err(anyhow::Error::msg)?,
            commit: <Commit as clap::ValueEnum>::from_str(m, true).map_err(anyhow::Error::msg)?,
            claim_timeout: Duration::from_millis(ms.parse().context("bad claim_timeout_ms")?),
        }))
    }

    /// Enqueues `files` (paths relative to the input directory) and marks
    /// the end of enqueueing. Idempotent: a file already enqueued is skipped,
    /// so after Redis restarts from an older snapshot this restores what it lacks.
    pub fn enqueue_all(&mut self, files: &[InputFile]) -> Result<u64> {
        let bytes: u64 = files.iter().map(|f| f.size).sum();
        self.run(|c, k| {
            redis::cmd("HSET")
                .arg(&k.meta)
                .arg("files")
                .arg(files.len())
                .arg("bytes")
                .arg(bytes)
                .exec(c)
        })?;
        let mut added = 0;
        for chunk in files.chunks(1024) {
            let replies: Vec<Value> = self.run(|c, k| {
                let mut pipe = redis::pipe();
                for f in chunk {
                    pipe.cmd("FCALL")
                        .arg("wc_enqueue")
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
        self.run(|c, k| {
            redis::cmd("HSET")
                .arg(&k.meta)
                .arg("enqueue_done")
                .arg(1)
                .exec(c)
        })?;
        Ok(added)
    }

    pub fn progress(&mut self) -> Result<Progress> {
        let (meta, stats): (HashMap<String, String>, HashMap<String, u64>) = self.run(|c, k| {
            redis::pipe()
                .cmd("HGETALL")
                .arg(&k.meta)
                .cmd("HGETALL")
                .arg(&k.stats)
                .query(c)
        })?;
        let num = |key: &str| meta.get(key).and_then(|v| v.parse().ok()).unwrap_or(0);
        let stat = |key: &str| stats.get(key).copied().unwrap_or(0);
        Ok(Progress {
            files: num("files"),
            bytes: num("bytes"),
            enqueue_done: meta.get("enqueue_done").is_some_and(|v| v == "1"),
            files_done: stat("files_done"),
            files_failed: stat("files_failed"),
            words: stat("words"),
            bytes_done: stat("bytes_done"),
            files_folded: stat("files_folded"),
            commits_ignored: stat("commits_ignored"),
        })
    }

    /// Files that could not be counted: path -> error.
    pub fn failures(&mut self) -> Result<Vec<(String, String)>> {
        let mut v: Vec<(String, String)> =
            self.run(|c, k| redis::cmd("HGETALL").arg(&k.failed).query(c))?;
        v.sort();
        Ok(v)
    }

    /// Folds the committed results into the counts, a batch at a time: their
    /// sum is staged, then one function call adds it and removes them.
    /// Returns the number of results folded.
    pub fn fold(&mut self) -> Result<u64> {
        let mut folded = 0;
        let mut cursor = 0u64;
        loop {
            let (next, pairs): (u64, Vec<(String, Vec<u8>)>) = self.run(|c, k| {
                redis::cmd("HSCAN")
                    .arg(&k.results)
                    .arg(cursor)
                    .arg("COUNT")
                    .arg(64)
                    .query(c)
            })?;
            if !pairs.is_empty() {
                folded += self.fold_batch(&pairs)?;
            }
            if next == 0 {
                return Ok(folded);
            }
            cursor = next;
        }
    }

    fn fold_batch(&mut self, pairs: &[(String, Vec<u8>)]) -> Result<u64> {
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
        self.run(|c, k| {
            let stage = k.fold_stage();
            redis::cmd("DEL").arg(&stage).exec(c)?;
            for chunk in words.chunks(BATCH) {
                let mut zadd = redis::cmd("ZADD");
                zadd.arg(&stage);
                for (w, n) in chunk {
                    zadd.arg(*n).arg(*w);
                }
                zadd.exec(c)?;
            }
            redis::cmd("FCALL")
                .arg("wc_fold")
                .arg(4)
                .arg(&k.results)
                .arg(&k.counts)
                .arg(&k.stats)
                .arg(&stage)
                .arg(words.len())
                .arg(&ids)
                .query(c)
        })
    }

    /// All folded counts.
    pub fn counts(&mut self) -> Result<Counts> {
        let mut counts = Counts::new();
        let mut start = 0;
        loop {
            let page: Vec<(Vec<u8>, f64)> = self.run(|c, k| {
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
    pub fn top(&mut self, k: usize) -> Result<(Vec<WordCount>, u64)> {
        let distinct: u64 = self.run(|c, keys| redis::cmd("ZCARD").arg(&keys.counts).query(c))?;
        if k == 0 || distinct == 0 {
            return Ok((Vec::new(), distinct));
        }
        // Redis breaks ties by word descending; take every word that ties
        // with the k-th and order them ourselves.
        let kth: Vec<(Vec<u8>, f64)> = self.run(|c, keys| {
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
        let candidates: Vec<(Vec<u8>, f64)> = self.run(|c, keys| {
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
    pub fn faults_fired(&mut self) -> Result<Vec<(String, u64)>> {
        self.run(|c, k| redis::cmd("HGETALL").arg(&k.faults).query(c))
    }

    pub fn write_summary(&mut self, json: &str) -> Result<()> {
        self.run(|c, k| redis::cmd("SET").arg(&k.summary).arg(json).exec(c))
    }
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
