//! RedisRaft: what synchronous replication costs when nothing fails
//! (`raft-cost`: one Redis against 3 and 5 replicas, on many small files,
//! commit-bound, and on a few large ones, count-bound), and what killing
//! replicas costs (`raft-kill`: one replica, the leader, two of three, and
//! a random replica every N). Both need the module (`raft::find_module`).

use super::corpus::human;
use super::measure::{job_options, JobSample, Timed};
use super::plot::Chart;
use super::table::{Row, Table, TIMED};
use super::{Ctx, Outcome, Scale};
use crate::local::raft::{find_module, ReplicaFault, Target};
use crate::local::{RaftSetup, RedisFaults, RunOptions};
use anyhow::Result;
use std::path::{Path, PathBuf};
use std::time::Duration;
use wordcount_count::generate::CorpusSpec;

struct Params {
    /// (files, bytes each) of the commit-bound and the count-bound input.
    inputs: [(usize, u64); 2],
    /// Replicas of `raft-cost` (after one plain Redis).
    replicas: Vec<usize>,
    /// `raft-kill`: a random replica every this many ms.
    kills_ms: Vec<u64>,
}

fn params(scale: Scale) -> Params {
    match scale {
        Scale::Tiny => Params {
            inputs: [(1200, 2 << 10), (4, 256 << 10)],
            replicas: vec![3],
            kills_ms: vec![500],
        },
        Scale::Small => Params {
            inputs: [(2000, 2 << 10), (8, 8 << 20)],
            replicas: vec![3, 5],
            kills_ms: vec![2000, 1000],
        },
        Scale::Full => Params {
            inputs: [(20_000, 2 << 10), (32, 32 << 20)],
            replicas: vec![3, 5, 7],
            kills_ms: vec![5000, 2000, 1000, 500],
        },
    }
}

fn input(ctx: &Ctx, i: usize, (files, bytes): (usize, u64)) -> Result<(String, PathBuf)> {
    let spec = CorpusSpec {
        files,
        bytes_per_file: bytes,
        ..CorpusSpec::default()
    };
    let dir = ctx.inputs.generate(&format!("raft-input-{i}"), &spec)?;
    Ok((format!("{files} files of {}", human(bytes)), dir))
}

/// A verified job on `replicas` RedisRaft replicas (none: one Redis).
fn options(
    ctx: &Ctx,
    dir: &Path,
    module: &Path,
    replicas: Option<usize>,
    fsync: bool,
    faults: Vec<ReplicaFault>,
) -> RunOptions {
    let mut opts = job_options(dir, ctx.max_workers());
    opts.verify = true;
    opts.raft = replicas.map(|replicas| RaftSetup {
        module: module.to_path_buf(),
        replicas,
        fsync,
        faults,
    });
    opts
}

pub fn cost(ctx: &Ctx) -> Result<Outcome> {
    let p = params(ctx.scale);
    let module = find_module(None)?;
    let columns = [
        &["files", "file_bytes", "replicas", "fsync"][..],
        &TIMED,
        &["redis_start_s", "job_s", "vs_one_redis"],
    ]
    .concat();
    let mut table = Table::new(&columns).csv_only(&["min_s", "max_s"]);
    let mut chart = Chart::new(
        format!("{} workers, no failures", ctx.max_workers()),
        "replicas (1: one Redis, no RedisRaft)",
        "job time / one Redis's",
    );
    for (i, &shape) in p.inputs.iter().enumerate() {
        let (legend, dir) = input(ctx, i, shape)?;
        let mut base = None;
        // One Redis, then each number of replicas with fsync, then the
        // fewest without: what durability against a machine's crash costs.
        let configs = [(None, false)]
            .into_iter()
            .chain(p.replicas.iter().map(|&n| (Some(n), true)))
            .chain([(Some(p.replicas[0]), false)]);
        for (replicas, fsync) in configs {
            let opts = options(ctx, &dir, &module, replicas, fsync, Vec::new());
            let n = replicas.unwrap_or(1);
            let sync = match (replicas, fsync) {
                (None, _) => "-",
                (_, true) => "yes",
                (_, false) => "no",
            };
            let t = ctx
                .measure
                .job(&format!("{legend}, {n} replicas, fsync {sync}"), &opts)?;
            // Forming the cluster is paid once, not per file: left out.
            let job = t.median - t.detail.redis_start;
            let ratio = job / *base.get_or_insert(job);
            table.push(
                Row::new()
                    .cell(shape.0)
                    .cell(shape.1)
                    .cell(n)
                    .cell(sync)
                    .timed(&t)
                    .num(t.detail.redis_start, 3)
                    .num(job, 3)
                    .num(ratio, 2),
            );
            let series = if fsync || replicas.is_none() {
                legend.clone()
            } else {
                format!("{legend}, no fsync")
            };
            chart.series(&series).push((n as f64, ratio));
            if replicas.is_none() {
                // Both lines start from one Redis.
                chart
                    .series(&format!("{legend}, no fsync"))
                    .push((n as f64, ratio));
            }
        }
        ctx.inputs.discard(&dir);
    }
    Ok(Outcome {
        title: "RedisRaft: completion time against the number of replicas".into(),
        table,
        charts: vec![chart],
        notes: vec![
            "median_s: the whole run; job_s: without starting Redis (RedisRaft: starting \
             the replicas and forming the cluster), what vs_one_redis compares"
                .into(),
            "replicas 1 is one plain Redis (Snapshot mode, no snapshots); fsync yes: each \
             replica fsyncs its Raft log after every entry (raft.log-fsync yes, the \
             default), no: a killed process loses nothing, a crashed machine may; every \
             write (a take, a commit) waits for a majority to have it: many small files \
             pay that round trip per file, a few large ones hide it behind counting"
                .into(),
        ],
    })
}

/// One `raft-kill` scenario.
struct Scenario {
    name: &'static str,
    kill_every_ms: u64,
    faults: Vec<ReplicaFault>,
}

pub fn kill(ctx: &Ctx) -> Result<Outcome> {
    let p = params(ctx.scale);
    let module = find_module(None)?;
    let (legend, dir) = input(ctx, 0, p.inputs[0])?;
    let columns = [
        &["scenario", "kill_every_ms"][..],
        &TIMED,
        &[
            "replica_kills",
            "leader_elections",
            "files_redone",
            "slowdown",
        ],
    ]
    .concat();
    let mut table = Table::new(&columns).csv_only(&["min_s", "max_s"]);
    let what = format!("{legend}, {} workers, 3 replicas", ctx.max_workers());
    let mut time = Chart::new(
        what.clone(),
        "random replica kills asked per second",
        "completion time / without kills",
    );
    let mut elections = Chart::new(
        what,
        "random replica kills asked per second",
        "leader elections",
    );
    let base = ctx.measure.job(
        "no kills",
        &options(ctx, &dir, &module, Some(3), true, Vec::new()),
    )?;
    // Kills land a fifth into the job (counted once the cluster has
    // formed, as the faults are; a fifth, so that they land even in a run
    // faster than this one); the ones restarted come back after as long.
    let at = Duration::from_secs_f64((base.median - base.detail.redis_start) / 5.0);
    let kill = |target, down| ReplicaFault {
        target,
        kill_at: at,
        down,
    };
    let mut scenarios = vec![
        Scenario {
            name: "one replica",
            kill_every_ms: 0,
            faults: vec![kill(Target::Replica(2), None)],
        },
        Scenario {
            name: "the leader",
            kill_every_ms: 0,
            faults: vec![kill(Target::Leader, None)],
        },
        Scenario {
            name: "two of three, one back",
            kill_every_ms: 0,
            faults: vec![
                kill(Target::Replica(1), None),
                kill(Target::Replica(2), Some(at)),
            ],
        },
    ];
    scenarios.extend(p.kills_ms.iter().map(|&ms| Scenario {
        name: "a random replica",
        kill_every_ms: ms,
        faults: Vec::new(),
    }));
    let mut push = |name: &str, ms: u64, t: &Timed<JobSample>| {
        let job = &t.detail.job;
        let slowdown = t.median / base.median;
        table.push(
            Row::new()
                .cell(name)
                .cell(ms)
                .timed(t)
                .cell(job.replica_kills)
                .cell(job.leader_elections)
                .cell(job.files_redone)
                .num(slowdown, 2),
        );
        if ms > 0 || name == "none" {
            let x = if ms > 0 { 1000.0 / ms as f64 } else { 0.0 };
            time.series("a random replica").push((x, slowdown));
            elections
                .series("a random replica")
                .push((x, job.leader_elections as f64));
        }
    };
    push("none", 0, &base);
    for s in scenarios {
        let mut opts = options(ctx, &dir, &module, Some(3), true, s.faults);
        opts.redis_faults = RedisFaults {
            kill_every: (s.kill_every_ms > 0).then(|| Duration::from_millis(s.kill_every_ms)),
            down: Duration::from_millis(200),
            ..RedisFaults::default()
        };
        let label = format!("{}, every {} ms", s.name, s.kill_every_ms);
        let t = ctx.measure.job(&label, &opts)?;
        push(s.name, s.kill_every_ms, &t);
    }
    ctx.inputs.discard(&dir);
    Ok(Outcome {
        title: "RedisRaft with replicas killed: completion time and leader elections".into(),
        table,
        charts: vec![time, elections],
        notes: vec![
            format!(
                "kills land {:.2} s into the job (a fifth of its time without kills); a \
                 replica restarted comes back from its own Raft log; random kills: a live \
                 replica every kill_every_ms, back after 200 ms",
                at.as_secs_f64()
            ),
            "files_redone counts commits that went missing (files_done going back), which \
             RedisRaft never allows: it must be 0 on every row; every job's counts were \
             checked against a serial count"
                .into(),
        ],
    })
}
