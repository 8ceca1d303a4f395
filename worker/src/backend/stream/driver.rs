//! The driver's side: job settings, enqueueing, progress, folding results
//! into the counts, and the final ranking.

use super::worker::{as_array, as_string, field};
use crate::backend::{Depth, Done, Injection, JobSettings, Progress, Redis, ResultCursor, Results};
use crate::counts::{Counts, WordCount};
use anyhow::{Context, Result};
use redis::Value;
use std::collections::HashMap;
use std::time::Duration;
use wordcount_protocol::keys::{meta, stats};
use wordcount_protocol::library;
use wordcount_protocol::CommitRecord;

/// Pairs per command when writing or reading the counts.
const BATCH: usize = 10_000;

/// Creates the queue's consumer group, then records the settings: a
/// snapshot that has the settings has the group too.
pub fn create_job(redis: &mut Redis, s: &JobSettings) -> Result<()> {
    redis.run(|c, k| {
        match redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&k.queue)
            .arg(k.group())
            .arg("0")
            .arg("MKSTREAM")
            .exec(c)
        {
            Err(e) if e.code() == Some("BUSYGROUP") => {}
            r => r?,
        }
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
            .arg(crate::timeline::epoch_ms())
            .ignore()
            .exec(c)
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

/// Enqueues each injection not enqueued yet (`wc_enqueue` skips those it
/// has seen, so after Redis restarts from an older snapshot this restores
/// what it lacks).
pub fn enqueue(redis: &mut Redis, injections: &[Injection]) -> Result<u64> {
    let mut added = 0;
    for chunk in injections.chunks(1024) {
        let replies: Vec<Value> = redis.run(|c, k| {
            let mut pipe = redis::pipe();
            for i in chunk {
                pipe.cmd("FCALL")
                    .arg(library::ENQUEUE)
                    .arg(3)
                    .arg(&k.queue)
                    .arg(&k.enqueued)
                    .arg(&k.meta)
                    .arg(i.seq)
                    .arg(&i.path)
                    .arg(i.size)
                    .arg(i.late.as_millis() as u64);
            }
            pipe.query(c)
        })?;
        added += replies.iter().filter(|v| !matches!(v, Value::Nil)).count() as u64;
    }
    Ok(added)
}

pub fn end_enqueue(redis: &mut Redis) -> Result<()> {
    redis.run(|c, k| {
        redis::cmd("HSET")
            .arg(&k.meta)
            .arg(meta::ENQUEUE_DONE)
            .arg(1)
            .exec(c)
    })
}

/// The group's lag and pending count (`XINFO GROUPS`).
pub fn depth(redis: &mut Redis) -> Result<Depth> {
    redis.run(|c, k| {
        let groups: Vec<HashMap<String, Value>> =
            match redis::cmd("XINFO").arg("GROUPS").arg(&k.queue).query(c) {
                // No queue yet (or lost with Redis): nothing waits.
                Err(e) if e.code() == Some("ERR") => Vec::new(),
                r => r?,
            };
        let ours = groups
            .iter()
            .find(|g| g.get("name").and_then(as_string).as_deref() == Some(k.group()));
        let num = |name: &str| match ours.and_then(|g| g.get(name)) {
            Some(Value::Int(n)) => u64::try_from(*n).unwrap_or(0),
            _ => 0,
        };
        Ok(Depth {
            lag: num("lag"),
            pending: num("pending"),
        })
    })
}

/// Replaces the fields of `P:stream`.
pub fn write_stream(redis: &mut Redis, fields: &[(&str, String)]) -> Result<()> {
    redis.run(|c, k| redis::cmd("HSET").arg(&k.stream).arg(fields).exec(c))
}

pub fn read_stream(redis: &mut Redis) -> Result<HashMap<String, String>> {
    redis.run(|c, k| redis::cmd("HGETALL").arg(&k.stream).query(c))
}

pub fn progress(redis: &mut Redis) -> Result<Progress> {
    type Reply = (HashMap<String, String>, HashMap<String, u64>, bool);
    let (fields, counters, finished): Reply = redis.run(|c, k| {
        redis::pipe()
            .cmd("HGETALL")
            .arg(&k.meta)
            .cmd("HGETALL")
            .arg(&k.stats)
            .cmd("EXISTS")
            .arg(&k.summary)
            .query(c)
    })?;
    let num = |key: &str| fields.get(key).and_then(|v| v.parse().ok()).unwrap_or(0);
    let stat = |key: &str| counters.get(key).copied().unwrap_or(0);
    Ok(Progress {
        files: num(meta::FILES),
        bytes: num(meta::BYTES),
        created: fields.contains_key(meta::TOKENIZER),
        enqueue_done: fields.get(meta::ENQUEUE_DONE).is_some_and(|v| v == "1"),
        files_done: stat(stats::FILES_DONE),
        files_failed: stat(stats::FILES_FAILED),
        words: stat(stats::WORDS),
        bytes_done: stat(stats::BYTES_DONE),
        commits_ignored: stat(stats::COMMITS_IGNORED),
        finished,
    })
}

/// Files that could not be counted: path -> error.
pub fn failures(redis: &mut Redis) -> Result<Vec<(String, String)>> {
    let mut v: Vec<(String, String)> =
        redis.run(|c, k| redis::cmd("HGETALL").arg(&k.failed).query(c))?;
    v.sort();
    Ok(v)
}

/// Committed results after `cursor`: the `P:latency` entries after its
/// position name the files committed since, in commit order, and
/// `P:results` holds their counts. Both are written by the one `wc_commit`
/// call, so any snapshot has both or neither. Without `with_counts`, only
/// the `P:latency` entries: what a watcher needs.
pub fn results_since(
    redis: &mut Redis,
    cursor: &mut ResultCursor,
    max: usize,
    wait: Duration,
    with_counts: bool,
) -> Result<Results> {
    let start = if cursor.position.is_empty() {
        "0-0"
    } else {
        cursor.position.as_str()
    };
    let (last, mut done): (Option<String>, Vec<Done>) = redis.run(|c, k| {
        let mut xread = redis::cmd("XREAD");
        xread.arg("COUNT").arg(max);
        // Wakes at the next commit: the driver sees it at once. (BLOCK 0
        // would wait forever.)
        let block_ms = wait.as_millis() as u64;
        if block_ms > 0 {
            xread.arg("BLOCK").arg(block_ms);
        }
        let reply: Value = xread.arg("STREAMS").arg(&k.latency).arg(start).query(c)?;
        // [[stream, [[entry id, [field, value, ...]], ...]]]
        let entries = as_array(&reply)
            .first()
            .and_then(|s| as_array(s).get(1))
            .map(as_array)
            .unwrap_or_default();
        let last = entries
            .last()
            .and_then(|e| as_array(e).first())
            .and_then(as_string);
        let done: Vec<Done> = entries.iter().filter_map(parse_done).collect();
        if done.is_empty() || !with_counts {
            return Ok((last, done));
        }
        let ids: Vec<&str> = done.iter().map(|d| d.record.id.as_str()).collect();
        let packed: Vec<Option<Vec<u8>>> =
            redis::cmd("HMGET").arg(&k.results).arg(&ids).query(c)?;
        let done = done
            .into_iter()
            .zip(packed)
            .map(|(d, counts)| Done { counts, ..d })
            .collect();
        Ok((last, done))
    })?;
    let now = redis.connects();
    if *cursor.session.get_or_insert(now) != now {
        *cursor = ResultCursor::default();
        return Ok(Results::Lost);
    }
    if let Some(last) = last {
        cursor.position = last;
    }
    done.shrink_to_fit();
    Ok(Results::More(done))
}

/// A `P:latency` entry, without its counts.
fn parse_done(e: &Value) -> Option<Done> {
    let parts = as_array(e);
    let fields = parts.get(1)?;
    let record = CommitRecord::parse(&as_string(parts.first()?)?, |name| field(fields, name))?;
    Some(Done {
        record,
        counts: None,
    })
}

/// Sets the count of each word in the sorted set `P:counts`.
pub fn write_counts(redis: &mut Redis, words: &[(&[u8], u64)]) -> Result<()> {
    // In the set's own order, each insert lands next to the one before: the
    // skiplist's search path stays in cache (twice as fast as random order
    // on large vocabularies).
    let mut words = words.to_vec();
    words.sort_unstable_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(b.0)));
    redis.run(|c, k| {
        // One pipeline: Redis inserts while the rest is on its way.
        let mut pipe = redis::pipe();
        for chunk in words.chunks(BATCH) {
            let zadd = pipe.cmd("ZADD").arg(&k.counts);
            for (w, n) in chunk {
                zadd.arg(*n).arg(*w);
            }
            zadd.ignore();
        }
        pipe.exec(c)
    })
}

pub fn clear_counts(redis: &mut Redis) -> Result<()> {
    redis.run(|c, k| redis::cmd("DEL").arg(&k.counts).exec(c))
}

/// The first `n` words of `P:top`, most frequent first.
pub fn top(redis: &mut Redis, n: usize) -> Result<Vec<WordCount>> {
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

/// Replaces `P:top` with `top`.
pub fn write_top(redis: &mut Redis, top: &[WordCount]) -> Result<()> {
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

/// The counts in `P:counts`.
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

/// Unblocks every client blocked in `XREADGROUP`: workers waiting for a
/// file, which then find the job done.
pub fn wake_workers(redis: &mut Redis) -> Result<()> {
    let list: String = redis.run(|c, _| {
        redis::cmd("CLIENT")
            .arg("LIST")
            .arg("TYPE")
            .arg("normal")
            .query(c)
    })?;
    let blocked = list.lines().filter_map(|line| {
        let field = |key: &str| {
            line.split(' ')
                .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
        };
        (field("cmd")? == "xreadgroup" && field("flags")?.contains('b')).then(|| field("id"))?
    });
    let ids: Vec<&str> = blocked.collect();
    if ids.is_empty() {
        return Ok(());
    }
    redis.run(|c, _| {
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.cmd("CLIENT").arg("UNBLOCK").arg(*id).ignore();
        }
        pipe.exec(c)
    })
}

/// Faults that fired so far: spec -> when (ms since the epoch).
pub fn faults_fired(redis: &mut Redis) -> Result<Vec<(String, u64)>> {
    redis.run(|c, k| redis::cmd("HGETALL").arg(&k.faults).query(c))
}

pub fn write_summary(redis: &mut Redis, json: &str) -> Result<()> {
    redis.run(|c, k| redis::cmd("SET").arg(&k.summary).arg(json).exec(c))
}
