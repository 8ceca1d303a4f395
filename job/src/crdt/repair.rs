//! Read repair: one instance learns what another has and it lacks, through
//! the same `wc_crdt_apply` that workers call, so it is idempotent and safe
//! beside writers (a file written meanwhile is moved now or next time).

use super::site_of;
use crate::connection::Redis;
use crate::report::InstanceReport;
use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};
use wordcount_count::counts::Counts;
use wordcount_protocol::state::CrdtStats;
use wordcount_protocol::{library, Keys};

/// What one repair moved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RepairStats {
    /// Files new to the instance repaired.
    pub files: u64,
    /// Bytes of their packed counts.
    pub bytes: u64,
    pub elapsed: Duration,
}

impl RepairStats {
    fn add(&mut self, other: RepairStats) {
        self.files += other.files;
        self.bytes += other.bytes;
        self.elapsed += other.elapsed;
    }
}

/// About how many bytes of packed counts one apply call carries: a call
/// only stores them, so it holds Redis for a few milliseconds.
const BATCH_BYTES: usize = 8 << 20;
const MAX_BATCH_FILES: usize = 4096;

/// The `wc_crdt_apply` call for `files` (global id, packed counts).
pub fn apply_cmd(keys: &Keys, files: &[(&str, &[u8])], repair: bool) -> redis::Cmd {
    let mut cmd = redis::cmd("FCALL");
    cmd.arg(library::crdt::APPLY)
        .arg(3)
        .arg(&keys.crdt_files)
        .arg(&keys.crdt_digest)
        .arg(&keys.crdt_stats)
        .arg(u8::from(repair))
        .arg(files.len());
    for (id, packed) in files {
        cmd.arg(*id).arg(*packed);
    }
    cmd
}

/// Applies `files` to one instance; returns the files and bytes new to it.
pub fn apply(redis: &mut Redis, files: &[(&str, &[u8])], repair: bool) -> Result<(u64, u64)> {
    let cmd = apply_cmd(&redis.keys, files, repair);
    redis.run(|c, _| cmd.query(c))
}

/// What one instance's `P:crdt:stats` says it holds, with `converged_ms`
/// as the caller measured it.
pub fn instance_report(redis: &mut Redis, converged_ms: u64) -> Result<InstanceReport> {
    let stats: std::collections::HashMap<String, String> =
        redis.run(|c, k| redis::cmd("HGETALL").arg(&k.crdt_stats).query(c))?;
    let stats = CrdtStats::parse(&stats).context("an instance's P:crdt:stats")?;
    Ok(InstanceReport {
        files_known: stats.files_known,
        files_repaired: stats.files_repaired,
        converged_ms,
    })
}

/// Origin site -> digest (`count:xor`) of one instance.
pub fn digests(redis: &mut Redis) -> Result<BTreeMap<String, String>> {
    redis.run(|c, k| redis::cmd("HGETALL").arg(&k.crdt_digest).query(c))
}

/// The counts of one instance: the sum of the files it holds, folded here
/// (`HSCAN`, a few hundred files a round trip) rather than in Redis's one
/// thread as they arrive.
pub fn counts(redis: &mut Redis) -> Result<Counts> {
    let mut counts = Counts::new();
    let mut seen = HashSet::new();
    let mut cursor = 0u64;
    loop {
        let (next, pairs): (u64, Vec<Vec<u8>>) = redis.run(|c, k| {
            redis::cmd("HSCAN")
                .arg(&k.crdt_files)
                .arg(cursor)
                .arg("COUNT")
                .arg(256)
                .query(c)
        })?;
        // id, packed, id, packed, ...; SCAN may return an element twice.
        for pair in pairs.chunks_exact(2) {
            if seen.insert(pair[0].clone()) {
                counts.add_packed(&pair[1])?;
            }
        }
        if next == 0 {
            return Ok(counts);
        }
        cursor = next;
    }
}

/// Copies to `to` every file `from` has and `to` lacks. Equal digests cost
/// one read on each side; otherwise both id sets are read (HKEYS) and the
/// files missing of the sites whose digests differ are fetched (HMGET) and
/// applied in batches, the next fetched while Redis applies one.
pub fn repair(from: &mut Redis, to: &mut Redis) -> Result<RepairStats> {
    let started = Instant::now();
    let mut stats = RepairStats::default();
    let (have, want) = (digests(from)?, digests(to)?);
    let stale: HashSet<&str> = (have.iter())
        .filter(|(site, d)| want.get(*site) != Some(d))
        .map(|(site, _)| site.as_str())
        .collect();
    let missing = if stale.is_empty() {
        Vec::new()
    } else {
        let known: HashSet<String> =
            to.run(|c, k| redis::cmd("HKEYS").arg(&k.crdt_files).query(c))?;
        let ids: Vec<String> = from.run(|c, k| redis::cmd("HKEYS").arg(&k.crdt_files).query(c))?;
        (ids.into_iter())
            .filter(|id| site_of(id).is_some_and(|s| stale.contains(s)) && !known.contains(id))
            .collect::<Vec<String>>()
    };
    if !missing.is_empty() {
        // Their sizes (HSTRLEN, one round trip), to batch by bytes.
        let sizes: Vec<usize> = from.run(|c, k| {
            let mut pipe = redis::pipe();
            for id in &missing {
                pipe.cmd("HSTRLEN").arg(&k.crdt_files).arg(id);
            }
            pipe.query(c)
        })?;
        let batches = batches(&missing, &sizes);
        let keys = to.keys.clone();
        std::thread::scope(|scope| -> Result<()> {
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            scope.spawn(move || {
                for batch in batches {
                    let fetched = fetch(from, &keys, batch);
                    let failed = fetched.is_err();
                    // An error, or the receiver gone (it failed): stop.
                    if tx.send(fetched).is_err() || failed {
                        break;
                    }
                }
            });
            for fetched in rx {
                let cmd = fetched?;
                let (new, bytes): (u64, u64) = to.run(|c, _| cmd.query(c))?;
                stats.files += new;
                stats.bytes += bytes;
            }
            Ok(())
        })?;
    }
    stats.elapsed = started.elapsed();
    Ok(stats)
}

/// `ids` cut in runs of about [`BATCH_BYTES`] (by `sizes`) each.
fn batches<'a>(ids: &'a [String], sizes: &[usize]) -> Vec<&'a [String]> {
    let (mut out, mut start, mut bytes) = (Vec::new(), 0, 0);
    for (i, size) in sizes.iter().enumerate() {
        bytes += size;
        if bytes >= BATCH_BYTES || i + 1 - start == MAX_BATCH_FILES || i + 1 == ids.len() {
            out.push(&ids[start..=i]);
            (start, bytes) = (i + 1, 0);
        }
    }
    out
}

/// The apply call, for `to`'s keys, of the files `ids` as `from` has them.
fn fetch(from: &mut Redis, keys: &Keys, ids: &[String]) -> Result<redis::Cmd> {
    let packed: Vec<Option<Vec<u8>>> =
        from.run(|c, k| redis::cmd("HMGET").arg(&k.crdt_files).arg(ids).query(c))?;
    // None: `from` lost it since (restarted from an older snapshot).
    let files: Vec<(&str, &[u8])> = (ids.iter().zip(&packed))
        .filter_map(|(id, p)| Some((id.as_str(), p.as_deref()?)))
        .collect();
    Ok(apply_cmd(keys, &files, true))
}

/// Repairs every ordered pair of `instances` until all their digests agree;
/// returns the sum of what moved. While writers keep adding, it runs on
/// until it catches up with them.
pub fn converge(instances: &mut [Redis]) -> Result<RepairStats> {
    let mut total = RepairStats::default();
    let mut idle_rounds = 0;
    loop {
        let digests = (instances.iter_mut())
            .map(digests)
            .collect::<Result<Vec<_>>>()?;
        if digests.windows(2).all(|w| w[0] == w[1]) {
            return Ok(total);
        }
        let mut round = RepairStats::default();
        for i in 0..instances.len() {
            for j in (0..instances.len()).filter(|&j| j != i) {
                let [from, to] = instances
                    .get_disjoint_mut([i, j])
                    .expect("two distinct instances");
                round.add(repair(from, to)?);
            }
        }
        // Nothing moved yet the digests differ: only a writer between the
        // last repair and the check explains it, and not for long.
        idle_rounds = if round.files == 0 { idle_rounds + 1 } else { 0 };
        if idle_rounds > 3 {
            bail!("the instances' digests disagree but repair finds nothing to move: {digests:?}");
        }
        total.add(round);
    }
}
