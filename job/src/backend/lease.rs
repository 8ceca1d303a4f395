//! The backend of RedisRaft: a queue of leases in plain lists, hashes and
//! sorted sets, since RedisRaft refuses streams. A worker takes a file by
//! leasing it (`wc_lease_take`); a lease older than the claim timeout is
//! stolen; `wc_lease_commit` records a file once, guarded by a set of done
//! files. Functions may not read the time under RedisRaft, so the caller
//! passes its clock. Nothing waits inside Redis: workers and the driver
//! poll with cheap reads, and write only when there is something to take.
//!
//! RedisRaft never rolls back what it acknowledged, so a reader's cursor
//! (an index into `P:log`) stays valid across replica restarts and leader
//! changes.

use super::Backend;
use crate::connection::Redis;
use crate::queue::{
    only, Carry, Committed, Depth, Done, Entry, Held, Injection, ResultCursor, Results, Taken, Unit,
};
use crate::state::JobSettings;
use anyhow::{bail, Context, Result};
use redis::Value;
use std::time::{Duration, Instant};
use wordcount_protocol::epoch_ms;
use wordcount_protocol::{keys::entry, library, CommitRecord};

/// How often a worker or the driver looks again while there is nothing.
const POLL: Duration = Duration::from_millis(5);

pub struct Lease {
    redis: Redis,
    /// Unique to this process: a retried take returns what the first took,
    /// and a new process with the same consumer name takes anew.
    ticket_base: String,
    takes: u64,
    /// The file the last commit took for this worker, and the claim
    /// timeout of the last take (a commit takes with it).
    next: Option<Taken>,
    claim_timeout: Duration,
}

impl Lease {
    pub fn open(url: &str, prefix: &str, patience: Duration) -> Result<Self> {
        use rand::RngExt;
        Ok(Lease {
            redis: Redis::open(url, prefix, patience)?.with_reply_timeout(),
            ticket_base: format!("{:016x}", rand::rng().random::<u64>()),
            takes: 0,
            next: None,
            claim_timeout: Duration::ZERO,
        })
    }

    /// A ticket for the next take: unique to this process and take.
    fn ticket(&mut self) -> String {
        self.takes += 1;
        format!("{}.{}", self.ticket_base, self.takes)
    }

    /// Whether a take could find something now: a file nobody took, or a
    /// lease older than the claim timeout. Reads only.
    fn anything_to_take(&mut self, claim_timeout: Duration) -> Result<bool> {
        let cutoff = epoch_ms().saturating_sub(claim_timeout.as_millis() as u64);
        let (ready, expired): (u64, u64) = self.redis.run(|c, k| {
            redis::pipe()
                .cmd("LLEN")
                .arg(&k.ready)
                .cmd("ZCOUNT")
                .arg(&k.leases)
                .arg("-inf")
                .arg(cutoff)
                .query(c)
        })?;
        Ok(ready + expired > 0)
    }

    fn take_now(&mut self, consumer: &str, claim_timeout: Duration) -> Result<Option<Taken>> {
        let ticket = self.ticket();
        let reply: Value = self.redis.run(|c, k| {
            redis::cmd("FCALL")
                .arg(library::lease::TAKE)
                .arg(5)
                .arg(&k.ready)
                .arg(&k.leases)
                .arg(&k.holders)
                .arg(&k.tickets)
                .arg(&k.entries)
                .arg(consumer)
                .arg(&ticket)
                .arg(epoch_ms())
                .arg(claim_timeout.as_millis() as u64)
                .query(c)
        })?;
        parse_taken(&reply)
    }
}

/// A taken file as `lease_next` returns it: `[id, entry, stolen]`, or nil.
fn parse_taken(reply: &Value) -> Result<Option<Taken>> {
    let Value::Array(parts) = reply else {
        return Ok(None);
    };
    let (Some(id), Some(json), Some(Value::Int(stolen))) =
        (parts.first(), parts.get(1), parts.get(2))
    else {
        bail!("malformed lease reply: {parts:?}");
    };
    let id: String = redis::from_redis_value(id.clone())?;
    let json: String = redis::from_redis_value(json.clone())?;
    let e: EntryJson =
        serde_json::from_str(&json).with_context(|| format!("queue entry {id}: {json}"))?;
    Ok(Some(Taken {
        entry: Entry {
            unit: Unit {
                path: e.path,
                size: e.size,
                range: match e.range {
                    None => None,
                    Some(r) => Some(
                        entry::parse_range(&r)
                            .with_context(|| format!("queue entry {id}: malformed range {r:?}"))?,
                    ),
                },
                version: e.version,
            },
            id,
            seq: 0,
        },
        stolen: *stolen == 1,
    }))
}

/// An entry of `P:entries`.
#[derive(serde::Deserialize)]
struct EntryJson {
    path: String,
    size: u64,
    range: Option<String>,
    version: Option<String>,
}

/// A commit record of `P:log`.
#[derive(serde::Deserialize)]
struct RecordJson {
    id: String,
    path: String,
    worker: String,
    stolen: String,
    due_ms: i64,
    injected_ms: i64,
    committed_ms: i64,
    taken_ms: i64,
    latency_ms: i64,
}

impl From<RecordJson> for CommitRecord {
    fn from(r: RecordJson) -> Self {
        // Clocks of different machines may disagree by a little.
        let ms = |v: i64| v.max(0) as u64;
        CommitRecord {
            id: r.id,
            path: r.path,
            worker: r.worker,
            stolen: r.stolen == "1",
            due_ms: ms(r.due_ms),
            injected_ms: ms(r.injected_ms),
            committed_ms: ms(r.committed_ms),
            taken_ms: ms(r.taken_ms),
            latency_ms: ms(r.latency_ms),
        }
    }
}

impl super::sealed::Connected for Lease {
    fn redis(&mut self) -> &mut Redis {
        &mut self.redis
    }
}

impl Backend for Lease {
    fn create_job(&mut self, settings: &JobSettings) -> Result<()> {
        crate::state::write_settings(&mut self.redis, settings)
    }

    fn enqueue(&mut self, injections: &[Injection]) -> Result<u64> {
        let mut added = 0;
        // One call a chunk: each call is one entry of the Raft log, written
        // to a majority before it is applied.
        for chunk in injections.chunks(512) {
            let now = epoch_ms();
            added += self.redis.run(|c, k| {
                let mut call = redis::cmd("FCALL");
                call.arg(library::lease::ENQUEUE)
                    .arg(4)
                    .arg(&k.ready)
                    .arg(&k.entries)
                    .arg(&k.enqueued)
                    .arg(&k.meta)
                    .arg(now);
                for i in chunk {
                    let (range, version) = i.unit.wire();
                    call.arg(i.seq)
                        .arg(&i.unit.path)
                        .arg(i.unit.size)
                        .arg(i.late.as_millis() as u64)
                        .arg(range)
                        .arg(version);
                }
                call.query::<u64>(c)
            })?;
        }
        Ok(added)
    }

    fn depth(&mut self) -> Result<Depth> {
        let (lag, pending) = self.redis.run(|c, k| {
            redis::pipe()
                .cmd("LLEN")
                .arg(&k.ready)
                .cmd("ZCARD")
                .arg(&k.leases)
                .query(c)
        })?;
        Ok(Depth { lag, pending })
    }

    fn results_since(
        &mut self,
        cursor: &mut ResultCursor,
        max: usize,
        wait: Duration,
    ) -> Result<Results> {
        read_log(&mut self.redis, cursor, max, wait, true)
    }

    fn commits_since(&mut self, cursor: &mut ResultCursor, max: usize) -> Result<Results> {
        read_log(&mut self.redis, cursor, max, Duration::ZERO, false)
    }

    /// Nobody blocks in Redis: workers poll.
    fn wake_workers(&mut self) -> Result<()> {
        Ok(())
    }

    /// RedisRaft does not roll back: one session for good.
    fn session(&self) -> u64 {
        0
    }

    fn take(
        &mut self,
        consumer: &str,
        wait: Duration,
        claim_timeout: Duration,
    ) -> Result<Option<Taken>> {
        self.claim_timeout = claim_timeout;
        if let Some(taken) = self.next.take() {
            return Ok(Some(taken));
        }
        let started = Instant::now();
        loop {
            if self.anything_to_take(claim_timeout)? {
                if let Some(taken) = self.take_now(consumer, claim_timeout)? {
                    return Ok(Some(taken));
                }
            }
            if started.elapsed() >= wait {
                return Ok(None);
            }
            std::thread::sleep(POLL);
        }
    }

    fn commit(&mut self, files: &[Held], consumer: &str, carry: Carry) -> Result<Committed> {
        let held = only(files)?;
        let (taken, words) = (&held.taken, held.words);
        let entry = &taken.entry;
        let (how, payload) = carry.wire();
        let now = epoch_ms();
        let ticket = self.ticket();
        let claim_timeout = self.claim_timeout.as_millis() as u64;
        let reply: Option<(i64, Value)> = self.redis.run(|c, k| {
            let r = redis::cmd("FCALL")
                .arg(library::lease::COMMIT)
                .arg(11)
                .arg(&k.done)
                .arg(&k.leases)
                .arg(&k.holders)
                .arg(&k.entries)
                .arg(k.result(&entry.id))
                .arg(&k.stats)
                .arg(&k.log)
                .arg(k.stage(&entry.id, consumer))
                .arg(&k.failed)
                .arg(&k.ready)
                .arg(&k.tickets)
                .arg(&entry.id)
                .arg(consumer)
                .arg(entry.unit.label())
                .arg(entry.unit.size)
                .arg(words)
                .arg(how)
                .arg(if taken.stolen { "1" } else { "0" })
                .arg(now)
                .arg(&ticket)
                .arg(claim_timeout)
                .arg(payload)
                .query(c);
            crate::queue::stage_gone_as_none(r)
        })?;
        let Some((n, next)) = reply else {
            return Ok(Committed::StageGone(entry.id.clone()));
        };
        self.next = parse_taken(&next)?;
        Ok(Committed::of(held, n == 1))
    }

    fn fire(&mut self, fault: &str) -> Result<bool> {
        let n: i64 = self.redis.run(|c, k| {
            redis::cmd("FCALL")
                .arg(library::lease::FIRE)
                .arg(1)
                .arg(&k.faults)
                .arg(fault)
                .arg(epoch_ms())
                .query(c)
        })?;
        Ok(n == 1)
    }
}

/// Commit records of `P:log` after the cursor (an index), with their
/// counts from `P:result:ID` when asked, waiting up to `wait` for one.
fn read_log(
    redis: &mut Redis,
    cursor: &mut ResultCursor,
    max: usize,
    wait: Duration,
    with_counts: bool,
) -> Result<Results> {
    let from: usize = if cursor.position.is_empty() {
        0
    } else {
        cursor.position.parse().context("bad cursor")?
    };
    let started = Instant::now();
    let (len, records) = loop {
        let (len, records): (usize, Vec<String>) = redis.run(|c, k| {
            redis::pipe()
                .cmd("LLEN")
                .arg(&k.log)
                .cmd("LRANGE")
                .arg(&k.log)
                .arg(from)
                .arg(from + max.max(1) - 1)
                .query(c)
        })?;
        if !records.is_empty() || started.elapsed() >= wait {
            break (len, records);
        }
        std::thread::sleep(POLL);
    };
    if len < from {
        // A log shorter than what was read: the replicas lost their logs.
        let kept = if len == 0 {
            String::new()
        } else {
            len.to_string()
        };
        cursor.position = kept.clone();
        return Ok(Results::RolledBack(kept));
    }
    let mut done = records
        .iter()
        .enumerate()
        .map(|(i, json)| {
            let r: RecordJson =
                serde_json::from_str(json).with_context(|| format!("bad commit record {json}"))?;
            Ok(Done {
                pos: (from + i + 1).to_string(),
                record: r.into(),
                counts: None,
            })
        })
        .collect::<Result<Vec<Done>>>()?;
    if with_counts && !done.is_empty() {
        let packed: Vec<Option<Vec<u8>>> = redis.run(|c, k| {
            let keys: Vec<String> = done.iter().map(|d| k.result(&d.record.id)).collect();
            redis::cmd("MGET").arg(&keys).query(c)
        })?;
        for (d, counts) in done.iter_mut().zip(packed) {
            d.counts = counts;
        }
    }
    cursor.position = (from + done.len()).to_string();
    Ok(Results::More(done))
}
