//! The worker's side: taking files from the queue, stealing them from
//! workers that went quiet, and committing their counts.

use crate::connection::{error_code, Redis};
use crate::queue::{stage_gone_as_none, Carry, Committed, Entry, Held, Unit};
use crate::state;
use anyhow::{bail, Result};
use redis::{RedisResult, Value};
use std::time::Duration;
use wordcount_protocol::{keys::entry, library};

/// The next file nobody has taken yet, waiting up to `wait`.
pub fn read_new(redis: &mut Redis, consumer: &str, wait: Duration) -> Result<Option<Entry>> {
    Ok(read_group(redis, consumer, ">", 1, wait)?.pop())
}

/// The files this consumer took and has not committed: after Redis came
/// back from a snapshot, those whose commit was lost with it, and those it
/// holds to commit.
pub fn read_own(redis: &mut Redis, consumer: &str) -> Result<Vec<Entry>> {
    read_group(redis, consumer, "0", OWN_MAX, Duration::ZERO)
}

/// Most of its own files a consumer reads again at once.
const OWN_MAX: usize = 1024;

/// XREADGROUP of up to `count` entries from `id` (`>`: new ones; `0`: this
/// consumer's).
fn read_group(
    redis: &mut Redis,
    consumer: &str,
    id: &str,
    count: usize,
    wait: Duration,
) -> Result<Vec<Entry>> {
    let block_ms = wait.as_millis() as u64;
    let reply: Value = redis.run(|c, k| {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP").arg(k.group()).arg(consumer);
        cmd.arg("COUNT").arg(count);
        // BLOCK 0 would wait forever.
        if block_ms > 0 {
            cmd.arg("BLOCK").arg(block_ms);
        }
        let r = cmd.arg("STREAMS").arg(&k.queue).arg(id).query(c);
        no_group_is_empty(r, block_ms)
    })?;
    // [[stream, [[id, [field, value, ...]], ...]]]
    let entries = as_array(&reply)
        .first()
        .and_then(|s| as_array(s).get(1))
        .map(as_array)
        .unwrap_or_default();
    entries.iter().map(parse_entry).collect()
}

/// A file another worker has held for longer than `min_idle_ms`, now ours.
pub fn claim(redis: &mut Redis, consumer: &str, min_idle: Duration) -> Result<Option<Entry>> {
    let min_idle_ms = min_idle.as_millis() as u64;
    let reply: Value = redis.run(|c, k| {
        let r = redis::cmd("XAUTOCLAIM")
            .arg(&k.queue)
            .arg(k.group())
            .arg(consumer)
            .arg(min_idle_ms)
            .arg("0-0")
            .arg("COUNT")
            .arg(1)
            .query(c);
        no_group_is_empty(r, 0)
    })?;
    // [next cursor, [[id, [field, value, ...]]], [deleted ids]]
    let entry = as_array(&reply)
        .get(1)
        .and_then(|es| as_array(es).first().cloned());
    entry.map(|e| parse_entry(&e)).transpose()
}

/// Commits files, their counts summed in `carry`: acknowledges each and,
/// only if none was acknowledged before, records their counts.
pub fn commit(
    redis: &mut Redis,
    files: &[Held],
    consumer: &str,
    carry: Carry,
) -> Result<Committed> {
    let Some(first) = files.first() else {
        return Ok(Committed::Settled { before: Vec::new() });
    };
    let first = &first.taken.entry;
    // Counts carried in the call are staged in the same round trip: the
    // function renames the stage, and the counts never pass through Lua.
    let (how, payload) = match carry {
        Carry::Inline(_) => ("staged", &b""[..]),
        _ => carry.wire(),
    };
    let before: Option<Vec<String>> = redis.run(|c, k| {
        let stage = k.stage(&first.id, consumer);
        let mut pipe = redis::pipe();
        if let Carry::Inline(counts) = carry {
            pipe.cmd("SET")
                .arg(&stage)
                .arg(counts)
                .arg("PX")
                .arg(state::STAGE_TTL_MS)
                .ignore();
        }
        let call = pipe
            .cmd("FCALL")
            .arg(library::COMMIT)
            .arg(6)
            .arg(&k.queue)
            .arg(k.result(&first.id))
            .arg(&k.stats)
            .arg(&k.latency)
            .arg(&stage)
            .arg(&k.failed)
            .arg(k.group())
            .arg(consumer)
            .arg(how)
            .arg(payload);
        for held in files {
            let e = &held.taken.entry;
            call.arg(&e.id)
                .arg(e.unit.label())
                .arg(e.unit.size)
                .arg(held.words)
                .arg(if held.taken.stolen { "1" } else { "0" });
        }
        let r: RedisResult<(Vec<String>,)> = call.query(c);
        stage_gone_as_none(r.map(|(before,)| before))
    })?;
    Ok(match before {
        Some(before) => Committed::Settled { before },
        None => Committed::StageGone(first.id.clone()),
    })
}

/// Marks a fault as fired; false if it had fired before in this job.
pub fn fire(redis: &mut Redis, spec: &str) -> Result<bool> {
    let n: i64 = redis.run(|c, k| {
        redis::cmd("FCALL")
            .arg(library::FIRE)
            .arg(1)
            .arg(&k.faults)
            .arg(spec)
            .query(c)
    })?;
    Ok(n == 1)
}

/// Before the driver creates the group (or after Redis lost it), there is
/// nothing to read yet: wait as a blocking read would, then say so.
fn no_group_is_empty(r: RedisResult<Value>, wait_ms: u64) -> RedisResult<Value> {
    match r {
        Err(e) if error_code(&e).as_deref() == Some("NOGROUP") => {
            std::thread::sleep(std::time::Duration::from_millis(wait_ms.clamp(10, 200)));
            Ok(Value::Nil)
        }
        r => r,
    }
}

pub(super) fn as_array(v: &Value) -> &[Value] {
    match v {
        Value::Array(items) => items,
        _ => &[],
    }
}

pub(super) fn as_string(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

fn parse_entry(v: &Value) -> Result<Entry> {
    let parts = as_array(v);
    let (Some(id), Some(fields)) = (parts.first().and_then(as_string), parts.get(1)) else {
        bail!("malformed queue entry {v:?}");
    };
    let (Some(path), Some(size)) = (field(fields, entry::PATH), field(fields, entry::SIZE)) else {
        bail!("queue entry {id} lacks path or size");
    };
    let range = match field(fields, entry::RANGE) {
        None => None,
        Some(r) => match entry::parse_range(&r) {
            Some(r) => Some(r),
            None => bail!("queue entry {id} has a malformed range {r:?}"),
        },
    };
    Ok(Entry {
        id,
        unit: Unit {
            path,
            size: size.parse().unwrap_or(0),
            range,
            version: field(fields, entry::VERSION),
        },
        seq: field(fields, entry::SEQ).map_or(0, |s| s.parse().unwrap_or(0)),
    })
}

/// The value of `name` in a stream entry's `[field, value, ...]`.
pub(super) fn field(fields: &Value, name: &str) -> Option<String> {
    as_array(fields)
        .chunks(2)
        .find(|kv| as_string(&kv[0]).as_deref() == Some(name))
        .and_then(|kv| kv.get(1).and_then(as_string))
}
