//! The CRDT mode: what three sites cost against one Redis (`crdt-cost`),
//! and how long read repair takes to bring back an instance that missed
//! files (`read-repair`, which cuts one off: root only).

use super::corpus::human;
use super::measure::job_options;
use super::plot::Chart;
use super::table::{Row, Table, TIMED};
use super::{Ctx, Outcome, Scale};
use crate::generate::CorpusSpec;
use crate::local::raft::find_module;
use crate::local::sites::Partition;
use crate::local::{CrdtSetup, RaftSetup};
use anyhow::{bail, Context, Result};
use std::time::Duration;

struct Params {
    /// (files, bytes each) of `crdt-cost`'s inputs.
    inputs: Vec<(usize, u64)>,
    /// Files of 16 KiB in `read-repair`'s jobs.
    missed: Vec<usize>,
}

fn params(scale: Scale) -> Params {
    match scale {
        Scale::Tiny => Params {
            inputs: vec![(30, 16 << 10)],
            missed: vec![30],
        },
        Scale::Small => Params {
            inputs: vec![(300, 16 << 10), (12, 1 << 20)],
            missed: vec![100, 300, 900],
        },
        Scale::Full => Params {
            inputs: vec![(3000, 16 << 10), (48, 4 << 20)],
            missed: vec![300, 1000, 3000, 10_000],
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

pub fn read_repair(ctx: &Ctx) -> Result<Outcome> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!(
            "read-repair cuts an instance off with network namespaces and iptables: run it as root"
        );
    }
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
