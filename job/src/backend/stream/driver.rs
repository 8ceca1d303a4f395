//! The driver's side: the consumer group, enqueueing, the queue's depth,
//! reading committed results, waking the workers.

use super::worker::{as_array, as_string, field};
use crate::connection::{error_code, Redis};
use crate::queue::{Depth, Done, Injection, ResultCursor, Results, Saves};
use crate::state;
use crate::state::JobSettings;
use anyhow::Result;
use redis::Value;
use std::collections::HashMap;
use std::time::Duration;
use wordcount_protocol::library;
use wordcount_protocol::CommitRecord;
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
            Err(e) if error_code(&e).as_deref() == Some("BUSYGROUP") => Ok(()),
            r => r,
        }
    })?;
    state::write_settings(redis, s)
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
                    .arg(&i.unit.path)
                    .arg(i.unit.size)
                    .arg(i.late.as_millis() as u64);
                let (range, version) = i.unit.wire();
                pipe.arg(range).arg(version);
            }
            pipe.query(c)
        })?;
        added += replies.iter().filter(|v| !matches!(v, Value::Nil)).count() as u64;
    }
    Ok(added)
}

/// The group's lag and pending count (`XINFO GROUPS`).
pub fn depth(redis: &mut Redis) -> Result<Depth> {
    redis.run(|c, k| {
        let groups: Vec<HashMap<String, Value>> =
            match redis::cmd("XINFO").arg("GROUPS").arg(&k.queue).query(c) {
                // No queue yet (or lost with Redis): nothing waits.
                Err(e) if error_code(&e).as_deref() == Some("ERR") => Vec::new(),
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

/// Committed results after `cursor`: the `P:latency` entries after its
/// position name the files committed since, in commit order, and
/// `P:result:ID` holds the counts of each commit, by its first file. Both
/// are written by the one `wc_commit` call, so any snapshot has both or
/// neither. Without `with_counts`, only the `P:latency` entries: what a
/// watcher needs.
///
/// A snapshot holds the entries up to some point, and a Redis restarted
/// from it gives later entries later ids: so the cursor's own entry tells,
/// on the same connection as the read, whether anything read was rolled
/// back, and the entry before it that is still there where the rollback
/// went to. A reconnect to a Redis that lost nothing costs nothing.
pub fn results_since(
    redis: &mut Redis,
    cursor: &mut ResultCursor,
    max: usize,
    wait: Duration,
    with_counts: bool,
) -> Result<Results> {
    let position = cursor.position.clone();
    let (kept, last, mut done) = redis.run(|c, k| {
        let kept = if position.is_empty() {
            String::new()
        } else {
            let last: Value = redis::cmd("XREVRANGE")
                .arg(&k.latency)
                .arg(&position)
                .arg("-")
                .arg("COUNT")
                .arg(1)
                .query(c)?;
            as_array(&last)
                .first()
                .and_then(|e| as_array(e).first())
                .and_then(as_string)
                .unwrap_or_default()
        };
        if kept != position {
            return Ok((kept, None, Vec::new()));
        }
        let start = if position.is_empty() {
            "0-0"
        } else {
            &position
        };
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
            return Ok((kept, last, done));
        }
        let keys: Vec<String> = done.iter().map(|d| k.result(&d.record.id)).collect();
        let packed: Vec<Option<Vec<u8>>> = redis::cmd("MGET").arg(&keys).query(c)?;
        let done = done
            .into_iter()
            .zip(packed)
            .map(|(d, counts)| Done { counts, ..d })
            .collect();
        Ok((kept, last, done))
    })?;
    if kept != position {
        cursor.position = kept.clone();
        return Ok(Results::RolledBack(kept));
    }
    if let Some(last) = last {
        cursor.position = last;
    }
    done.shrink_to_fit();
    Ok(Results::More(done))
}

/// What Redis has written to disk (`INFO persistence` and `server`).
pub fn saves(redis: &mut Redis) -> Result<Saves> {
    let info: redis::InfoDict =
        redis.run(|c, _| redis::cmd("INFO").arg("persistence").arg("server").query(c))?;
    Ok(Saves {
        run_id: info.get("run_id").unwrap_or_default(),
        done: info.get("rdb_saves").unwrap_or(0),
        in_progress: info.get::<u8>("rdb_bgsave_in_progress") == Some(1),
    })
}

/// A `P:latency` entry, without its counts.
fn parse_done(e: &Value) -> Option<Done> {
    let parts = as_array(e);
    let fields = parts.get(1)?;
    let pos = as_string(parts.first()?)?;
    let record = CommitRecord::parse(&pos, |name| field(fields, name))?;
    Some(Done {
        pos,
        record,
        counts: None,
    })
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
