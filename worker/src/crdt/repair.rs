//! Read repair: one instance learns what another has and it lacks, through
//! the same `wc_crdt_apply` that workers call, so it is idempotent and safe
//! beside writers (a file written meanwhile is moved now or next time).

use super::site_of;
use crate::backend::Redis;
use crate::counts::Counts;
use anyhow::{bail, Result};
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};
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

/// About how many bytes of packed counts one apply call carries: large
/// enough that summing words across files saves Redis most of its sorted
/// set updates, small enough that a call holds Redis for milliseconds.
const BATCH_BYTES: usize = 2 << 20;
const MAX_BATCH_FILES: usize = 4096;

/// The `wc_crdt_apply` call for `files` (global id, packed counts).
pub fn apply_cmd(keys: &Keys, files: &[(&str, &[u8])], repair: bool) -> redis::Cmd {
    let mut cmd = redis::cmd("FCALL");
    cmd.arg(library::crdt::APPLY)
        .arg(4)
        .arg(&keys.crdt_files)
        .arg(&keys.counts)
        .arg(&keys.crdt_digest)
        .arg(&keys.crdt_stats)
        .arg(u8::from(repair));
    for (id, packed) in files {
        cmd.arg(*id).arg(*packed);
    }
    cmd
}

/// Applies `files` to one instance; returns the files and bytes new to it.
pub fn apply(redis: &mut Redis, files: &[(&str, &[u8])], repair: bool) -> Result<(u64, u64)> {
    redis.run(|c, k| apply_cmd(k, files, repair).query(c))
}

/// Origin site -> digest (`count:xor`) of one instance.
pub fn digests(redis: &mut Redis) -> Result<BTreeMap<String, String>> {
    redis.run(|c, k| redis::cmd("HGETALL").arg(&k.crdt_digest).query(c))
}

/// The counts materialised on one instance (`P:counts`).
pub fn counts(redis: &mut Redis) -> Result<Counts> {
    let words: Vec<(Vec<u8>, u64)> = redis.run(|c, k| {
        redis::cmd("ZRANGE")
            .arg(&k.counts)
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .query(c)
    })?;
    let mut counts = Counts::new();
    for (w, n) in &words {
        counts.add(w, *n);
    }
    Ok(counts)
}

/// Copies to `to` every file `from` has and `to` lacks. Equal digests cost
/// one read on each side; otherwise both id sets are read (HKEYS) and the
/// files missing of the sites whose digests differ are fetched (HMGET) and
/// applied in batches.
pub fn repair(from: &mut Redis, to: &mut Redis) -> Result<RepairStats> {
    let started = Instant::now();
    let mut stats = RepairStats::default();
    let (have, want) = (digests(from)?, digests(to)?);
    let stale: HashSet<&str> = (have.iter())
        .filter(|(site, d)| want.get(*site) != Some(d))
        .map(|(site, _)| site.as_str())
        .collect();
    if !stale.is_empty() {
        let known: HashSet<String> =
            to.run(|c, k| redis::cmd("HKEYS").arg(&k.crdt_files).query(c))?;
        let ids: Vec<String> = from.run(|c, k| redis::cmd("HKEYS").arg(&k.crdt_files).query(c))?;
        let missing: Vec<String> = (ids.into_iter())
            .filter(|id| site_of(id).is_some_and(|s| stale.contains(s)) && !known.contains(id))
            .collect();
        let (mut rest, mut per_batch) = (&missing[..], 16);
        while !rest.is_empty() {
            let (batch, tail) = rest.split_at(per_batch.min(rest.len()));
            rest = tail;
            let packed: Vec<Option<Vec<u8>>> =
                from.run(|c, k| redis::cmd("HMGET").arg(&k.crdt_files).arg(batch).query(c))?;
            // None: `from` lost it since (restarted from an older snapshot).
            let files: Vec<(&str, &[u8])> = (batch.iter().zip(&packed))
                .filter_map(|(id, p)| Some((id.as_str(), p.as_deref()?)))
                .collect();
            let sent: usize = files.iter().map(|(_, p)| p.len()).sum();
            let (new, bytes) = apply(to, &files, true)?;
            stats.files += new;
            stats.bytes += bytes;
            per_batch = (BATCH_BYTES * batch.len() / sent.max(1)).clamp(1, MAX_BATCH_FILES);
        }
    }
    stats.elapsed = started.elapsed();
    Ok(stats)
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
                let (from, to) = pair(instances, i, j);
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

/// Two distinct elements of `v`, both mutable.
pub(crate) fn pair<T>(v: &mut [T], i: usize, j: usize) -> (&mut T, &mut T) {
    assert_ne!(i, j);
    if i < j {
        let (a, b) = v.split_at_mut(j);
        (&mut a[i], &mut b[0])
    } else {
        let (a, b) = v.split_at_mut(i);
        (&mut b[0], &mut a[j])
    }
}
