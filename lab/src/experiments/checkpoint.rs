//! Redis checkpoints: what periodic snapshots cost when nothing fails
//! (`checkpoint-cost`), and what a killed Redis costs when it comes back
//! from its last snapshot (`redis-kill`): the commits made since are lost
//! and redone. Each on many small files (commit-bound) and on a few large
//! ones (count-bound). `redis-kill` also gives each restart's recovery:
//! Redis loading its snapshot, the driver taking back what it rolled back,
//! the files redone; and where the kills leave the job no room, the
//! verdict it stopped with instead of a time.

use super::corpus::human;
use super::measure::{job_options, JobSample, Timed};
use super::plot::Chart;
use super::table::{Row, Table, TIMED};
use super::{Ctx, Outcome, Scale};
use crate::local::RedisFaults;
use anyhow::Result;
use std::path::PathBuf;
use std::time::Duration;
use wordcount_count::generate::CorpusSpec;

struct Params {
    /// (files, bytes each) of the commit-bound and the count-bound input.
    inputs: [(usize, u64); 2],
    /// Snapshot intervals of `checkpoint-cost` (after none).
    intervals_ms: Vec<u64>,
    /// Kill intervals of `redis-kill` (after none), and its snapshots.
    kills_ms: Vec<u64>,
    kill_snapshot_ms: u64,
}

fn params(scale: Scale) -> Params {
    match scale {
        Scale::Tiny => Params {
            inputs: [(300, 2 << 10), (4, 512 << 10)],
            intervals_ms: vec![20],
            kills_ms: vec![300],
            kill_snapshot_ms: 20,
        },
        // Jobs of a few seconds, so that snapshots every second fire.
        Scale::Small => Params {
            inputs: [(4000, 2 << 10), (16, 16 << 20)],
            intervals_ms: vec![1000, 500, 100],
            kills_ms: vec![1000, 500, 200],
            kill_snapshot_ms: 100,
        },
        Scale::Full => Params {
            inputs: [(50_000, 2 << 10), (32, 32 << 20)],
            intervals_ms: vec![10_000, 5000, 1000, 100],
            kills_ms: vec![10_000, 5000, 2000, 1000, 500, 200],
            kill_snapshot_ms: 500,
        },
    }
}

/// Generates both inputs: (a name for the legend, its files, its directory).
fn inputs(ctx: &Ctx, p: &Params) -> Result<Vec<(String, usize, u64, PathBuf)>> {
    let mut out = Vec::new();
    for (i, &(files, bytes)) in p.inputs.iter().enumerate() {
        let spec = CorpusSpec {
            files,
            bytes_per_file: bytes,
            ..CorpusSpec::default()
        };
        let dir = ctx.inputs.generate(&format!("input-{i}"), &spec)?;
        out.push((
            format!("{files} files of {}", human(bytes)),
            files,
            bytes,
            dir,
        ));
    }
    Ok(out)
}

fn interval(ms: u64) -> Option<Duration> {
    (ms > 0).then(|| Duration::from_millis(ms))
}

/// Per second, of an interval in ms (none: 0).
fn per_second(ms: u64) -> f64 {
    if ms == 0 {
        0.0
    } else {
        1000.0 / ms as f64
    }
}

/// One job timed on one input with one interval.
struct Point {
    legend: String,
    files: usize,
    bytes: u64,
    /// The interval swept, in ms; 0 for none.
    ms: u64,
    /// The job's times; or, where the schedule left it no room, the
    /// verdict it stopped with.
    t: Result<Timed<JobSample>, String>,
    /// Its time against the same input's without the fault swept.
    slowdown: f64,
}

impl Point {
    /// A row's first cells: the input and the interval.
    fn row(&self) -> Row {
        Row::new().cell(self.files).cell(self.bytes).cell(self.ms)
    }
}

/// Times jobs on both inputs with `faults(ms)`, for none (0) and each of
/// `intervals`, their counts checked against a serial count (outside their
/// time): a restart must lose nothing.
fn sweep(
    ctx: &Ctx,
    p: &Params,
    intervals: &[u64],
    what: &str,
    faults: impl Fn(u64) -> RedisFaults,
) -> Result<Vec<Point>> {
    let mut points = Vec::new();
    for (legend, files, bytes, dir) in inputs(ctx, p)? {
        let mut base = None;
        for ms in [0].into_iter().chain(intervals.iter().copied()) {
            let mut opts = job_options(&dir, ctx.max_workers());
            opts.redis_faults = faults(ms);
            opts.verify = true;
            let t = match ctx
                .measure
                .job(&format!("{legend}, {what} every {ms} ms"), &opts)
            {
                Ok(t) => Ok(t),
                Err(e) if e.to_string().starts_with("no progress:") => Err(e.to_string()),
                Err(e) => return Err(e),
            };
            let slowdown = match &t {
                Ok(t) => t.median / *base.get_or_insert(t.median),
                Err(_) => f64::NAN,
            };
            points.push(Point {
                legend: legend.clone(),
                files,
                bytes,
                ms,
                slowdown,
                t,
            });
        }
        ctx.inputs.discard(&dir);
    }
    Ok(points)
}

pub fn cost(ctx: &Ctx) -> Result<Outcome> {
    let p = params(ctx.scale);
    let columns = [
        &["files", "file_bytes", "snapshot_interval_ms"][..],
        &TIMED,
        &["snapshots", "fork_ms", "cow_mib", "slowdown"],
    ]
    .concat();
    let mut table = Table::new(&columns).csv_only(&["min_s", "max_s"]);
    let mut chart = Chart::new(
        format!("{} workers, no failures", ctx.max_workers()),
        "snapshots asked per second",
        "completion time / without snapshots",
    );
    let points = sweep(ctx, &p, &p.intervals_ms, "snapshots", |ms| RedisFaults {
        snapshot_interval: interval(ms),
        ..RedisFaults::default()
    })?;
    for pt in points {
        let t = pt.t.as_ref().map_err(|v| anyhow::anyhow!("{v}"))?;
        let job = &t.detail.job;
        table.push(
            pt.row()
                .timed(t)
                .cell(job.snapshots)
                .num(job.snapshot_fork_us as f64 / 1e3, 2)
                .num(job.snapshot_cow_bytes as f64 / (1u64 << 20) as f64, 1)
                .num(pt.slowdown, 3),
        );
        chart
            .series(&pt.legend)
            .push((per_second(pt.ms), pt.slowdown));
    }
    Ok(Outcome {
        title: "Checkpoints: completion time against the snapshot interval (0 = none)".into(),
        table,
        charts: vec![chart],
        notes: vec![
            "fork_ms: Redis's time in fork() over all snapshots (latest_fork_usec), when it \
             serves no one; cow_mib: the most memory one snapshot copied on write \
             (rdb_last_cow_size); slowdown: against the same input without snapshots"
                .into(),
        ],
    })
}

pub fn kill(ctx: &Ctx) -> Result<Outcome> {
    let p = params(ctx.scale);
    let columns = [
        &[
            "files",
            "file_bytes",
            "kill_every_ms",
            "snapshot_interval_ms",
        ][..],
        &TIMED,
        &[
            "redis_restarts",
            "files_redone",
            "slowdown",
            "load_ms_max",
            "catch_up_ms_max",
            "redone_per_restart",
            "outcome",
        ],
    ]
    .concat();
    let mut table = Table::new(&columns).csv_only(&["min_s", "max_s"]);
    let what = format!(
        "{} workers, snapshots every {} ms",
        ctx.max_workers(),
        p.kill_snapshot_ms
    );
    let mut time = Chart::new(
        what.clone(),
        "Redis kills asked per second",
        "completion time / without kills",
    );
    let mut redone = Chart::new(what.clone(), "Redis kills asked per second", "files redone");
    let mut recovery = Chart::new(what, "input (MB)", "one restart's recovery, longest (ms)");
    let points = sweep(ctx, &p, &p.kills_ms, "Redis killed", |ms| RedisFaults {
        snapshot_interval: interval(p.kill_snapshot_ms),
        kill_every: interval(ms),
        ..RedisFaults::default()
    })?;
    let mut verdicts = Vec::new();
    for pt in points {
        let x = per_second(pt.ms);
        let t = match &pt.t {
            Ok(t) => t,
            Err(verdict) => {
                let mut row = pt.row().cell(p.kill_snapshot_ms);
                for _ in 0..TIMED.len() + 6 {
                    row = row.cell("");
                }
                table.push(row.cell("verdict"));
                // The region where the job cannot end: marked at 0.
                time.series("no progress (verdict)").push((x, 0.0));
                verdicts.push(format!(
                    "{}, killed every {} ms: {verdict}",
                    pt.legend, pt.ms
                ));
                continue;
            }
        };
        let job = &t.detail.job;
        let most = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
        let per_restart = job.files_redone as f64 / job.redis_restarts.max(1) as f64;
        table.push(
            pt.row()
                .cell(p.kill_snapshot_ms)
                .timed(t)
                .cell(job.redis_restarts)
                .cell(job.files_redone)
                .num(pt.slowdown, 3)
                .num(most(&job.redis_load_ms), 1)
                .num(most(&job.rollback_ms), 1)
                .num(per_restart, 2)
                .cell("exact"),
        );
        time.series(&pt.legend).push((x, pt.slowdown));
        redone.series(&pt.legend).push((x, job.files_redone as f64));
        if job.redis_restarts > 0 {
            let mb = (pt.files as u64 * pt.bytes) as f64 / 1e6;
            recovery
                .series("Redis loading its snapshot")
                .push((mb, most(&job.redis_load_ms)));
            recovery
                .series("driver taking back what was rolled back")
                .push((mb, most(&job.rollback_ms)));
        }
    }
    Ok(Outcome {
        title: "Redis killed: completion time and files redone against the kill interval \
                (0 = no kills)"
            .into(),
        table,
        charts: vec![time, redone, recovery],
        notes: vec![
            "each kill is a SIGKILL of redis-server, restarted at once from its last \
             snapshot; files_redone: commits the restart rolled back, made again by the \
             job; slowdown: against the same input with snapshots and no kills; every \
             job's counts were checked against a serial count"
                .into(),
            "each incarnation of Redis serves the kill interval from when it answers \
             again (its snapshot loaded); load_ms_max: the longest a restart took to \
             answer; catch_up_ms_max: the longest the driver took to take the rolled-back \
             results out of its merge (it keeps the counts merged since the last snapshot, \
             so this grows with what a restart lost, not with the job)"
                .into(),
            "where the kills leave the job no room (10 restarts in a row that bring back no \
             more files: no snapshot completes within an incarnation, or a commit or the \
             result's write takes longer than one), the run stops with a verdict instead \
             of a time: outcome verdict, marked at 0 on the time chart"
                .into(),
        ]
        .into_iter()
        .chain(verdicts)
        .collect(),
    })
}
