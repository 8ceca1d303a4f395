//! The CRDT mode: what three sites cost against one Redis (`crdt-cost`),
//! how long read repair takes to bring back an instance that missed files
//! (`read-repair`), and instances that fall behind and catch up through
//! cut-and-heal cycles (`partitions`), and instances restarted from old
//! snapshots (`checkpoint-recovery`). `partitions` and `read-repair` cut
//! instances off: root only.

use super::corpus::human;
use super::measure::job_options;
use super::plot::Chart;
use super::table::{Row, Table, TIMED};
use super::{Ctx, Outcome, Scale};
use crate::local::raft::find_module;
use crate::local::{CrdtSetup, RaftSetup, RedisFaults};
use crate::local::{Partition, SitesTimeline};
use anyhow::{bail, Context, Result};
use std::time::Duration;
use wordcount_count::generate::CorpusSpec;
use wordcount_protocol::Fault;

struct Params {
    /// (files, bytes each) of `crdt-cost`'s inputs.
    inputs: Vec<(usize, u64)>,
    /// Files of 16 KiB in `read-repair`'s jobs.
    missed: Vec<usize>,
    /// `partitions`: files of 16 KiB, and each cut's length and the time
    /// before it.
    cycles: (usize, Duration, Duration),
    /// `checkpoint-recovery`: files of 16 KiB, and the kill intervals.
    kills: (usize, Vec<Duration>),
    /// The slow factor of every worker in `partitions` and
    /// `checkpoint-recovery`, so that a job outlasts its cuts and kills: a
    /// file of 16 KiB takes well under a millisecond to count and commit.
    slow: f64,
}

fn params(scale: Scale) -> Params {
    match scale {
        Scale::Tiny => Params {
            inputs: vec![(30, 16 << 10)],
            missed: vec![30],
            cycles: (150, Duration::from_millis(300), Duration::from_millis(200)),
            kills: (240, vec![Duration::from_millis(400)]),
            slow: 50.0,
        },
        Scale::Small => Params {
            inputs: vec![(300, 16 << 10), (12, 1 << 20)],
            missed: vec![100, 300, 900],
            cycles: (300, Duration::from_secs(1), Duration::from_secs(1)),
            kills: (300, [2000, 1000, 500].map(Duration::from_millis).to_vec()),
            slow: 1000.0,
        },
        Scale::Full => Params {
            inputs: vec![(3000, 16 << 10), (48, 4 << 20)],
            missed: vec![300, 1000, 3000, 10_000],
            cycles: (2000, Duration::from_secs(2), Duration::from_secs(1)),
            kills: (
                2000,
                [4000, 2000, 1000, 500, 250]
                    .map(Duration::from_millis)
                    .to_vec(),
            ),
            slow: 1000.0,
        },
    }
}

pub fn cost(ctx: &Ctx) -> Result<Outcome> {
    let p = params(ctx.scale);
    let workers = ctx.max_workers();
    let columns = [
        &["files", "file_bytes", "mode"][..],
        &TIMED,
        &["vs_one_redis"],
    ]
    .concat();
    let mut table = Table::new(&columns).csv_only(&["min_s", "max_s"]);
    let mut chart = Chart::new(
        format!("{workers} workers in all, no faults"),
        "files",
        "completion time / one Redis",
    );
    let raft = find_module(None).ok();
    for (i, &(files, bytes)) in p.inputs.iter().enumerate() {
        let spec = CorpusSpec {
            files,
            bytes_per_file: bytes,
            ..CorpusSpec::default()
        };
        let dir = ctx.inputs.generate(&format!("crdt-input-{i}"), &spec)?;
        let mut modes = vec![("one Redis", job_options(&dir, workers))];
        let mut sites = job_options(&dir, (workers / 3).max(1));
        sites.crdt = Some(CrdtSetup {
            sites: 3,
            ..CrdtSetup::default()
        });
        modes.push(("CRDT, 3 sites", sites));
        if let Some(module) = &raft {
            let mut o = job_options(&dir, workers);
            o.raft = Some(RaftSetup {
                module: module.clone(),
                replicas: 3,
                fsync: true,
                faults: Vec::new(),
            });
            modes.push(("RedisRaft, 3 replicas", o));
        }
        let mut base = None;
        for (mode, mut opts) in modes {
            opts.verify = true;
            let t = ctx
                .measure
                .job(&format!("{files} files of {}, {mode}", human(bytes)), &opts)?;
            let ratio = t.median / *base.get_or_insert(t.median);
            table.push(
                Row::new()
                    .cell(files)
                    .cell(bytes)
                    .cell(mode)
                    .timed(&t)
                    .num(ratio, 2),
            );
            chart.series(mode).push((files as f64, ratio));
        }
        ctx.inputs.discard(&dir);
    }
    Ok(Outcome {
        title: "CRDT mode: completion time against one Redis".into(),
        table,
        charts: vec![chart],
        notes: vec![format!(
            "the CRDT mode runs 3 sites of {} workers each ({} in all, at least one a \
             site), each applying every file to all three instances; RedisRaft is \
             measured when its module is here{}; every job's counts were checked against a \
             serial count (the CRDT's on all three instances)",
            (workers / 3).max(1),
            3 * (workers / 3).max(1),
            if raft.is_some() { "" } else { " (it is not)" }
        )],
    })
}

/// Cuts need network namespaces and iptables.
fn need_root(experiment: &str) -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!(
            "{experiment} cuts instances off with network namespaces and iptables: run it as root"
        );
    }
    Ok(())
}

pub fn read_repair(ctx: &Ctx) -> Result<Outcome> {
    need_root("read-repair")?;
    let p = params(ctx.scale);
    let columns = [
        "files",
        "files_repaired",
        "mib_repaired",
        "converged_ms",
        "mib_per_s",
    ];
    let mut table = Table::new(&columns);
    let mut chart = Chart::new(
        "instance 2 cut from sites 0 and 1 for the whole job".to_string(),
        "files it missed",
        "convergence after the heal (ms)",
    );
    for &files in &p.missed {
        let spec = CorpusSpec {
            files,
            bytes_per_file: 16 << 10,
            ..CorpusSpec::default()
        };
        let dir = ctx
            .inputs
            .generate(&format!("read-repair-{files}"), &spec)?;
        let mut opts = job_options(&dir, 1);
        opts.verify = true;
        opts.crdt = Some(CrdtSetup {
            sites: 3,
            // Longer than any job here: it heals when the sites are done.
            // Not site 2: its queue is on instance 2.
            partitions: vec![Partition {
                sites: vec![0, 1],
                redis: vec![2],
                at: Duration::ZERO,
                lasts: Duration::from_secs(3600),
            }],
            partition_every: None,
        });
        let outcome = ctx.measure.run(&opts)?;
        if let Some(diff) = outcome.mismatch {
            bail!("the instances' counts differ: {diff}");
        }
        let inst = outcome.report.instances.context("no instances reported")?;
        let cut = &inst[2];
        let bytes = (outcome.report.job.as_ref()).map_or(0, |j| j.bytes);
        let mib = bytes as f64 / f64::from(1 << 20) * cut.files_repaired as f64 / files as f64;
        let secs = (cut.converged_ms as f64 / 1e3).max(1e-3);
        table.push(
            Row::new()
                .cell(files)
                .cell(cut.files_repaired)
                .num(mib, 2)
                .cell(cut.converged_ms)
                .num(mib / secs, 1),
        );
        chart
            .series("instance 2")
            .push((cut.files_repaired as f64, cut.converged_ms as f64));
        ctx.inputs.discard(&dir);
    }
    Ok(Outcome {
        title: "Read repair: convergence time against the files an instance missed".into(),
        table,
        charts: vec![chart],
        notes: vec![
            "each job: 3 sites of one worker, instance 2 cut from sites 0 and 1 from the \
             start until the sites are done (site 2 keeps its own queue there); it then \
             learns their files by read repair (per-site digests, the ids it lacks, their \
             packed counts applied in batches); \
             mib_repaired counts the input's bytes of those files; the counts of all three \
             instances were checked against each other and a serial count"
                .into(),
        ],
    })
}

/// Snapshots of `checkpoint-recovery`'s instances.
const SNAPSHOT_EVERY: Duration = Duration::from_millis(500);

/// The CRDT's instances killed in turn and restarted from old snapshots:
/// what each restart lost comes back from the peers (read repair) or is
/// counted again by the workers (the site's queue rolled back).
pub fn checkpoint_recovery(ctx: &Ctx) -> Result<Outcome> {
    let Params {
        kills: (files, kills),
        slow,
        ..
    } = params(ctx.scale);
    let spec = CorpusSpec {
        files,
        bytes_per_file: 16 << 10,
        ..CorpusSpec::default()
    };
    let dir = ctx.inputs.generate("checkpoint-recovery", &spec)?;
    let columns = [
        "kill_every_ms",
        "restarts",
        "files_recomputed",
        "files_repaired",
        "job_s",
    ];
    let mut table = Table::new(&columns);
    let mut chart = Chart::new(
        format!("{files} files of 16 KiB, 3 sites, snapshots every {SNAPSHOT_EVERY:?}"),
        "instance restarts",
        "files",
    );
    for every in kills {
        let mut opts = job_options(&dir, 1);
        opts.verify = true;
        opts.faults = slowed(slow);
        opts.crdt = Some(CrdtSetup {
            sites: 3,
            ..CrdtSetup::default()
        });
        opts.redis_faults = RedisFaults {
            snapshot_interval: Some(SNAPSHOT_EVERY),
            kill_every: Some(every),
            ..RedisFaults::default()
        };
        let outcome = ctx.measure.run(&opts)?;
        if let Some(diff) = outcome.mismatch {
            bail!("a kill every {every:?}: {diff}");
        }
        let job = outcome.report.job.context("no job facts")?;
        let repaired: u64 = (outcome.report.instances.iter().flatten())
            .map(|i| i.files_repaired)
            .sum();
        table.push(
            Row::new()
                .cell(every.as_millis())
                .cell(job.redis_restarts)
                .cell(job.files_redone)
                .cell(repaired)
                .num(outcome.report.seconds, 2),
        );
        let x = job.redis_restarts as f64;
        chart
            .series("recomputed by workers")
            .push((x, job.files_redone as f64));
        chart
            .series("repaired from peers")
            .push((x, repaired as f64));
    }
    ctx.inputs.discard(&dir);
    Ok(Outcome {
        title: "Checkpoint recovery: what a restart lost, repaired or recomputed".into(),
        table,
        charts: vec![chart],
        notes: vec![format!(
            "3 sites of one worker, slowed {slow}× (a straggler fault) so that the job \
             outlasts the kills; the instances killed in turn, one every \
             kill_every_ms, each restarted at once from its last snapshot (taken every \
             {SNAPSHOT_EVERY:?}); files_repaired: files the instances learnt from each \
             other by read repair (what a restart's snapshot lacked, and what was \
             written elsewhere while an instance was down); files_recomputed: commits of a \
             site's own queue that a restart rolled back, counted again by a worker (with \
             one Redis every lost commit is recomputed: experiment redis-kill); every job's \
             counts were checked on all three instances against a serial count"
        )],
    })
}

/// Every site's worker 0 (its only one here) slowed by `factor`.
fn slowed(factor: f64) -> Vec<Fault> {
    vec![Fault::Slow { worker: 0, factor }]
}

/// Cut-and-heal cycles planned for a `partitions` job.
const MAX_CYCLES: usize = 30;

pub fn partitions(ctx: &Ctx) -> Result<Outcome> {
    need_root("partitions")?;
    let Params {
        cycles: (files, cut, gap),
        slow,
        ..
    } = params(ctx.scale);
    let spec = CorpusSpec {
        files,
        bytes_per_file: 16 << 10,
        ..CorpusSpec::default()
    };
    let dir = ctx.inputs.generate("partitions", &spec)?;
    let mut opts = job_options(&dir, 1);
    opts.verify = true;
    opts.faults = slowed(slow);
    // Cycle i isolates instance i mod 3 from the other sites' workers (its
    // own site still reaches it, and it reaches no other instance). More
    // cycles than a job lasts: those that began are reported.
    let planned: Vec<Partition> = (0..MAX_CYCLES)
        .map(|i| Partition {
            sites: (0..3).filter(|&s| s != i % 3).collect(),
            redis: vec![i % 3],
            at: gap + (cut + gap) * i as u32,
            lasts: cut,
        })
        .collect();
    opts.crdt = Some(CrdtSetup {
        sites: 3,
        partitions: planned.clone(),
        partition_every: None,
    });
    let outcome = ctx.measure.run(&opts)?;
    if let Some(diff) = outcome.mismatch {
        bail!("the instances' counts differ: {diff}");
    }
    let seen = outcome.sites.context("no timeline of the instances")?;
    ctx.inputs.discard(&dir);

    let columns = [
        "cycle",
        "instance",
        "cut_s",
        "healed_s",
        "most_behind",
        "most_behind_at_s",
        "even_at_s",
    ];
    let mut table = Table::new(&columns);
    let spans: Vec<(u64, u64)> = (planned.iter().enumerate())
        .map_while(|(i, p)| cut_of(&seen, p.redis[0]).nth(i / 3))
        .collect();
    if spans.is_empty() {
        bail!("the job ended before the first cut, {gap:?} after its start");
    }
    let mut chart = Chart::new(
        format!(
            "{} cycles: one instance cut from the other sites for {cut:?}",
            spans.len()
        ),
        "time (s)",
        "files known",
    );
    for (t, known) in &seen.samples {
        for (k, n) in known.iter().enumerate() {
            chart
                .series(&format!("instance {k}"))
                .push((*t as f64 / 1e3, *n as f64));
        }
    }
    let end = seen.samples.last().map_or(0, |(t, _)| *t + 1);
    for (i, &(from, to)) in spans.iter().enumerate() {
        let k = planned[i].redis[0];
        chart.shade(
            from as f64 / 1e3,
            to as f64 / 1e3,
            format!("instance {k} cut"),
        );
        let until = spans.get(i + 1).map_or(end, |next| next.0);
        // One worker a site.
        let (most, at, even) = lag(&seen, k, (from, until), 3);
        let secs = |ms: u64| format!("{:.2}", ms as f64 / 1e3);
        table.push(
            Row::new()
                .cell(i)
                .cell(k)
                .cell(secs(from))
                .cell(secs(to))
                .cell(most)
                .cell(secs(at))
                .cell(even.map_or("never".to_string(), secs)),
        );
    }
    let total = seen.samples.last().map_or(0, |(_, k)| k[0]);
    Ok(Outcome {
        title: "Partitions: files known per instance through cut-and-heal cycles".into(),
        table,
        charts: vec![chart],
        notes: vec![format!(
            "3 sites of one worker, slowed {slow}× (a straggler fault) so that the job lasts \
             several cycles, {files} files of 16 KiB; in each cycle one instance is cut \
             from the other two sites' workers (its own site still writes to it, and no read \
             repair reaches it) and then healed; most_behind is the most files it lacked \
             against the best other instance from its cut to the next cycle's, and even_at_s \
             when it lacked no more than the 3 files in flight again (read repair at each \
             heal, then every second; files known sampled every 100 ms); at the end every \
             instance knew {total} files and all three held the same counts as a serial count"
        )],
    })
}

/// The cuts of instance `k`, one per cycle: the sites' spans that began
/// together, as (from, to) in ms.
fn cut_of(seen: &SitesTimeline, k: usize) -> impl Iterator<Item = (u64, u64)> + '_ {
    let mut spans: Vec<(u64, u64)> = (seen.cuts.iter())
        .filter(|c| c.instance == k)
        .map(|c| (c.from_ms, c.to_ms))
        .collect();
    spans.sort_unstable();
    spans.dedup_by(|b, a| {
        b.0 <= a.1 && {
            a.1 = a.1.max(b.1);
            true
        }
    });
    spans.into_iter()
}

/// The most files instance `k` lacked against the best other instance
/// between `from` and `until` (ms), when, and when it was even again after
/// that: lacking no more than `in_flight` files (each worker's file goes to
/// the instances one after the other).
fn lag(
    seen: &SitesTimeline,
    k: usize,
    (from, until): (u64, u64),
    in_flight: u64,
) -> (u64, u64, Option<u64>) {
    let behind = |known: &[u64]| {
        let others = (known.iter().enumerate())
            .filter(|&(i, _)| i != k)
            .map(|(_, n)| *n)
            .max()
            .unwrap_or(0);
        others.saturating_sub(known[k])
    };
    let window = (seen.samples.iter()).filter(|(t, _)| (from..until).contains(t));
    let (most, at) = window.fold((0, from), |(most, at), (t, known)| {
        let b = behind(known);
        if b > most {
            (b, *t)
        } else {
            (most, at)
        }
    });
    let even = (seen.samples.iter())
        .find(|(t, known)| *t >= at && behind(known) <= in_flight)
        .map(|(t, _)| *t);
    (most, at, even)
}
