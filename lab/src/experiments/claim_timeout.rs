//! Completion time against the claim timeout, with and without a worker
//! that crashes holding a file: the timeout is how long the job waits
//! before another worker steals that file, and how often idle workers poll.

use super::corpus::human;
use super::measure::job_options;
use super::plot::Chart;
use super::table::{Row, Table, TIMED};
use super::{Ctx, Outcome, Scale};
use anyhow::Result;
use std::path::Path;
use std::time::Duration;
use wordcount_count::generate::CorpusSpec;
use wordcount_job::fault::{CrashPoint, Fault};

struct Params {
    files: usize,
    file_bytes: u64,
    timeouts_ms: Vec<u64>,
}

fn params(scale: Scale) -> Params {
    match scale {
        Scale::Tiny => Params {
            files: 4,
            file_bytes: 64 << 10,
            timeouts_ms: vec![100, 400],
        },
        Scale::Small => Params {
            files: 16,
            file_bytes: 1 << 20,
            timeouts_ms: vec![50, 100, 200, 500, 1000, 2000, 5000],
        },
        Scale::Full => Params {
            files: 100,
            file_bytes: 4 << 20,
            timeouts_ms: vec![100, 300, 1000, 3000, 10_000, 30_000],
        },
    }
}

pub fn run(ctx: &Ctx) -> Result<Outcome> {
    let p = params(ctx.scale);
    let crash = Fault::Crash {
        worker: 0,
        point: CrashPoint::AfterCount,
        file: 1,
    };
    let variants = vec![
        Variant {
            legend: "no crash".into(),
            fault: None,
        },
        Variant {
            legend: "worker 0 crashes after counting its 1st file".into(),
            fault: Some(crash),
        },
    ];
    timeout_experiment(
        ctx,
        "Claim timeout: completion time with and without a crash",
        (p.files, p.file_bytes),
        &p.timeouts_ms,
        &variants,
    )
}

/// Generates `files` files of `file_bytes`, sweeps the claim timeout for
/// every variant, and charts completion time against the timeout.
pub fn timeout_experiment(
    ctx: &Ctx,
    title: &str,
    (files, file_bytes): (usize, u64),
    timeouts_ms: &[u64],
    variants: &[Variant],
) -> Result<Outcome> {
    let spec = CorpusSpec {
        files,
        bytes_per_file: file_bytes,
        ..CorpusSpec::default()
    };
    let dir = ctx.inputs.generate("input", &spec)?;
    let workers = ctx.max_workers();
    let mut chart = Chart::new(
        format!("{workers} workers, {files} files of {}", human(file_bytes)),
        "claim timeout (ms, log scale)",
        "completion time (s)",
    );
    let table = sweep(ctx, &dir, variants, timeouts_ms, &mut chart)?;
    ctx.inputs.discard(&dir);
    Ok(Outcome {
        title: title.into(),
        table,
        charts: vec![chart],
        notes: Vec::new(),
    })
}

/// A job variant: at most one fault, and its name in the legend.
pub struct Variant {
    pub legend: String,
    pub fault: Option<Fault>,
}

/// Times a job through Redis for every variant and claim timeout: one row
/// each, and one line per variant of completion time against the timeout.
pub fn sweep(
    ctx: &Ctx,
    dir: &Path,
    variants: &[Variant],
    timeouts_ms: &[u64],
    chart: &mut Chart,
) -> Result<Table> {
    let columns = [
        "fault",
        "claim_timeout_ms",
        TIMED[0],
        TIMED[1],
        TIMED[2],
        "worker_restarts",
        "commits_ignored",
    ];
    let mut table = Table::new(&columns).csv_only(&["min_s", "max_s"]);
    chart.x_log = true;
    for v in variants {
        let spec = v
            .fault
            .as_ref()
            .map_or("none".to_string(), Fault::to_string);
        for &ms in timeouts_ms {
            let mut opts = job_options(dir, ctx.max_workers());
            opts.settings.claim_timeout = Duration::from_millis(ms);
            opts.faults = v.fault.iter().cloned().collect();
            let t = ctx
                .measure
                .job(&format!("{spec}, claim timeout {ms} ms"), &opts)?;
            table.push(
                Row::new()
                    .cell(&spec)
                    .cell(ms)
                    .timed(&t)
                    .cell(t.detail.job.worker_restarts)
                    .cell(t.detail.job.commits_ignored),
            );
            chart.series(&v.legend).push((ms as f64, t.median));
        }
    }
    Ok(table)
}
