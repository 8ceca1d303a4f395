//! Reads a job's Redis into its live view: the keys the status reads
//! (`P:meta`, `P:stats`, `P:faults`, `P:stream`), and for the page also
//! the top words so far, the queue's depth and the commit record
//! (`P:latency`), a look every `TICK`.

use crate::redis::{connect, unreachable, Endpoint, ReadError};
use redis::aio::MultiplexedConnection;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use wordcount_protocol::state::{BadField, Meta, Stats};
use wordcount_protocol::{CommitRecord, Keys};
use wordcount_view::{epoch_ms, phase, Job, Look, Sample, Seen, TOP};

/// Commits read from the record in one command, at most.
const BATCH: usize = 10_000;

pub struct Reader {
    endpoint: Endpoint,
    keys: Keys,
    /// Kept between looks; dropped when a look fails.
    con: Option<MultiplexedConnection>,
    /// The last `P:latency` entry read on this connection.
    after: Option<String>,
    seen: Seen,
}

impl Reader {
    pub fn new(endpoint: Endpoint) -> Self {
        Reader {
            keys: Keys::new(&endpoint.prefix),
            endpoint,
            con: None,
            after: None,
            seen: Seen::default(),
        }
    }

    /// What is new since the last look; nothing when Redis does not answer
    /// (killed, partitioned, or gone with a finished job).
    pub async fn look(&mut self) -> Look {
        let mut look = Look::default();
        if let Err(e) = self.read(&mut look).await {
            tracing::debug!(error = %e, "live view: Redis not read");
            self.con = None;
        }
        look
    }

    async fn read(&mut self, look: &mut Look) -> Result<(), ReadError> {
        let con = match &mut self.con {
            Some(c) => c,
            None => {
                // A new connection may be to a Redis that came back from a
                // snapshot: the record is read again from its start, and
                // `Seen` keeps only what is new.
                self.after = None;
                let con = connect(&self.endpoint, Duration::from_secs(2)).await?;
                self.con.insert(con)
            }
        };
        let k = &self.keys;
        let failed = unreachable(&self.endpoint);
        type Read = (
            HashMap<String, String>,
            HashMap<String, String>,
            bool,
            BTreeMap<String, String>,
            Vec<(String, u64)>,
            Vec<(String, u64)>,
        );
        let (meta, stats, finished, stream, top, faults): Read = redis::pipe()
            .hgetall(&k.meta)
            .hgetall(&k.stats)
            .exists(&k.summary)
            .hgetall(&k.stream)
            .cmd("ZRANGE")
            .arg(&k.top)
            .arg(0)
            .arg(TOP - 1)
            .arg("REV")
            .arg("WITHSCORES")
            .hgetall(&k.faults)
            .query_async(con)
            .await
            .map_err(&failed)?;
        let at_ms = epoch_ms();
        look.sample = Some(depth(con, k, at_ms).await);
        look.events.extend(self.seen.throttle(stream.iter(), at_ms));
        let malformed =
            |what: &'static str| move |e: BadField| ReadError::Malformed(format!("{what}: {e}"));
        let meta = Meta::parse(&meta)
            .map_err(malformed("P:meta"))?
            .unwrap_or_default();
        let stats = Stats::parse(&stats).map_err(malformed("P:stats"))?;
        let files = meta.files.unwrap_or(0).max(0) as u64;
        let counted = stats.files_done + stats.files_failed;
        look.job = Some(Job {
            phase: phase(
                meta.created,
                meta.enqueue_done && counted >= files,
                finished,
            ),
            files,
            files_done: stats.files_done,
            files_failed: stats.files_failed,
            words: stats.words,
            bytes: meta.bytes.unwrap_or(0).max(0) as u64,
            bytes_done: stats.bytes_done,
            commits_ignored: stats.commits_ignored,
            top,
            stream,
            ..Job::default()
        });
        loop {
            // After the last entry read (exclusive), or from the start.
            let from = self.after.as_ref().map_or("-".into(), |a| format!("({a}"));
            let entries: Vec<(String, HashMap<String, String>)> = redis::cmd("XRANGE")
                .arg(&k.latency)
                .arg(from)
                .arg("+")
                .arg("COUNT")
                .arg(BATCH)
                .query_async(con)
                .await
                .map_err(&failed)?;
            let Some((last, _)) = entries.last() else {
                break;
            };
            self.after = Some(last.clone());
            let full = entries.len() == BATCH;
            let records = entries
                .iter()
                .filter_map(|(id, f)| CommitRecord::parse(id, |name| f.get(name).cloned()));
            look.files.extend(self.seen.files(records));
            if !full {
                break;
            }
        }
        look.events.extend(self.seen.faults(faults));
        Ok(())
    }
}

/// The group's lag and pending count (`XINFO GROUPS`); none before the
/// driver made the queue.
async fn depth(con: &mut MultiplexedConnection, k: &Keys, at_ms: u64) -> Sample {
    let groups: Vec<HashMap<String, redis::Value>> = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(&k.queue)
        .query_async(con)
        .await
        .unwrap_or_default();
    let ours = groups.iter().find(|g| {
        g.get("name").is_some_and(|n| {
            redis::from_redis_value_ref::<String>(n).ok().as_deref() == Some(k.group())
        })
    });
    let num = |name: &str| {
        ours.and_then(|g| g.get(name))
            .and_then(|v| redis::from_redis_value_ref::<u64>(v).ok())
            .unwrap_or(0)
    };
    Sample {
        at_ms,
        lag: num("lag"),
        pending: num("pending"),
    }
}
