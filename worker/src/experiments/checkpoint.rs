//! Redis checkpoints: what periodic snapshots cost when nothing fails
//! (`checkpoint-cost`), and what a killed Redis costs when it comes back
//! from its last snapshot (`redis-kill`): the commits made since are lost
//! and redone. Each on many small files (commit-bound) and on a few large
//! ones (count-bound).

use super::corpus::human;
use super::measure::{job_options, JobSample, Timed};
use super::plot::Chart;
use super::table::{Row, Table, TIMED};
use super::{Ctx, Outcome, Scale};
use crate::generate::CorpusSpec;
use crate::local::RedisFaults;
use anyhow::Result;
use std::path::{Path, PathBuf};
use std::time::Duration;

struct Params {
    /// (files, bytes each) of the commit-bound and the count-bound input.
    inputs: [(usize, u64); 2],
    /// Snapshot intervals of `checkpoint-cost` (after none).
    intervals_ms: Vec<u64>,
    /// Kill intervals of `redis-kill` (after none), and its snapshots. A
    /// kill makes the driver read every result again (it cannot tell what
    /// the snapshot lost), so the intervals stay well above that read.
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
            kills_ms: vec![2000, 1000],
            kill_snapshot_ms: 100,
        },
        Scale::Full => Params {
            inputs: [(50_000, 2 << 10), (32, 32 << 20)],
            intervals_ms: vec![10_000, 5000, 1000, 100],
            kills_ms: vec![10_000, 5000, 2000, 1000],
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

/// Times a job with Redis `faults`, its counts checked against a serial
/// count (outside its time): a restart must lose nothing.
fn time_job(ctx: &Ctx, dir: &Path, faults: RedisFaults, label: &str) -> Result<Timed<JobSample>> {
    let mut opts = job_options(dir, ctx.max_workers());
    opts.redis_faults = faults;
    opts.verify = true;
    ctx.measure.job(label, &opts)
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
    for (legend, files, bytes, dir) in inputs(ctx, &p)? {
        let mut base = None;
        for ms in [0].into_iter().chain(p.intervals_ms.iter().copied()) {
            let faults = RedisFaults {
                snapshot_interval: interval(ms),
                ..RedisFaults::default()
            };
            let t = time_job(
                ctx,
                &dir,
                faults,
                &format!("{legend}, snapshots every {ms} ms"),
            )?;
            let base = *base.get_or_insert(t.median);
            let job = &t.detail.job;
            table.push(
                Row::new()
                    .cell(files)
                    .cell(bytes)
                    .cell(ms)
                    .timed(&t)
                    .cell(job.snapshots)
                    .num(job.snapshot_fork_us as f64 / 1e3, 2)
                    .num(job.snapshot_cow_bytes as f64 / (1u64 << 20) as f64, 1)
                    .num(t.median / base, 3),
            );
            let per_s = if ms == 0 { 0.0 } else { 1000.0 / ms as f64 };
            chart.series(&legend).push((per_s, t.median / base));
        }
        ctx.inputs.discard(&dir);
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
        &["redis_restarts", "files_redone", "slowdown"],
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
    let mut redone = Chart::new(what, "Redis kills asked per second", "files redone");
    for (legend, files, bytes, dir) in inputs(ctx, &p)? {
        let mut base = None;
        for ms in [0].into_iter().chain(p.kills_ms.iter().copied()) {
            let faults = RedisFaults {
                snapshot_interval: interval(p.kill_snapshot_ms),
                kill_every: interval(ms),
                ..RedisFaults::default()
            };
            let t = time_job(
                ctx,
                &dir,
                faults,
                &format!("{legend}, Redis killed every {ms} ms"),
            )?;
            let base = *base.get_or_insert(t.median);
            let job = &t.detail.job;
            table.push(
                Row::new()
                    .cell(files)
                    .cell(bytes)
                    .cell(ms)
                    .cell(p.kill_snapshot_ms)
                    .timed(&t)
                    .cell(job.redis_restarts)
                    .cell(job.files_redone)
                    .num(t.median / base, 3),
            );
            let per_s = if ms == 0 { 0.0 } else { 1000.0 / ms as f64 };
            time.series(&legend).push((per_s, t.median / base));
            redone
                .series(&legend)
                .push((per_s, job.files_redone as f64));
        }
        ctx.inputs.discard(&dir);
    }
    Ok(Outcome {
        title: "Redis killed: completion time and files redone against the kill interval \
                (0 = no kills)"
            .into(),
        table,
        charts: vec![time, redone],
        notes: vec![
            "each kill is a SIGKILL of redis-server, restarted at once from its last \
             snapshot; files_redone: commits the restart rolled back, made again by the \
             job; slowdown: against the same input with snapshots and no kills; every \
             job's counts were checked against a serial count"
                .into(),
            "a kill during the driver's final merge starts the merge again (the result is \
             derived only from a Redis in which every file is committed): Redis killed more \
             often than the merge takes stalls the job, which is why the intervals stay \
             above it"
                .into(),
        ],
    })
}
