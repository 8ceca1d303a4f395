//! Parallel efficiency, T_serial / (p * T_p), of threads, processes and
//! Redis: on a fixed input with 1..N workers (does adding workers pay?), and
//! with N workers on a growing number of equal files (fewer files than
//! workers leave workers idle; coordination costs a fixed amount per job).
//! The fixed cost of each mode is measured apart, on p tiny files, so the
//! curves can be read as work plus a known constant.

use super::corpus::{human, total_bytes};
use super::measure::{mib, plot_points, write_points, POINT_COLUMNS};
use super::plot::Chart;
use super::table::{Row, Table};
use super::{Ctx, Outcome, Scale};
use anyhow::Result;
use wordcount_count::generate::CorpusSpec;

struct Params {
    /// The fixed input: this many files of this many bytes.
    fixed: (usize, u64),
    /// File counts of the growing input, and the size of each file.
    files: Vec<usize>,
    file_bytes: u64,
}

fn params(scale: Scale) -> Params {
    const MIB: u64 = 1 << 20;
    match scale {
        Scale::Tiny => Params {
            fixed: (4, 64 << 10),
            files: vec![1, 4],
            file_bytes: 64 << 10,
        },
        Scale::Small => Params {
            fixed: (20, 2 * MIB),
            files: vec![1, 2, 4, 8, 16, 32, 64],
            file_bytes: MIB,
        },
        Scale::Full => Params {
            fixed: (64, 16 * MIB),
            files: vec![1, 2, 4, 8, 16, 32, 64, 128, 256],
            file_bytes: 4 * MIB,
        },
    }
}

pub fn run(ctx: &Ctx) -> Result<Outcome> {
    let p = params(ctx.scale);
    let columns = [&["sweep", "files", "mib"][..], &POINT_COLUMNS].concat();
    let mut table = Table::new(&columns).csv_only(&["min_s", "max_s"]);
    let by_workers = fixed_input(ctx, &p, &mut table)?;
    let by_files = growing_files(ctx, &p, &mut table)?;
    let fixed = fixed_cost(ctx, &mut table)?;
    Ok(Outcome {
        title:
            "Parallel efficiency T_serial / (p · T_p), median of runs; fixed cost on empty files"
                .into(),
        table,
        charts: vec![by_workers, by_files, fixed],
        notes: Vec::new(),
    })
}

/// The same input counted with each worker count.
fn fixed_input(ctx: &Ctx, p: &Params, table: &mut Table) -> Result<Chart> {
    let (files, bytes) = p.fixed;
    let spec = CorpusSpec {
        files,
        bytes_per_file: bytes,
        ..CorpusSpec::default()
    };
    let dir = ctx.inputs.generate("fixed", &spec)?;
    let total = total_bytes(&dir)?;
    let points = ctx
        .measure
        .points(&dir, &ctx.workers, &format!("{files} files"))?;
    let mib = mib(total);
    write_points(table, &points, total, || {
        Row::new().cell("workers").cell(files).num(mib, 1)
    });
    let mut chart = Chart::new(
        format!("Fixed input: {files} files of {}", human(bytes)),
        "workers p",
        "parallel efficiency",
    );
    chart.y_at_least = 1.1;
    plot_points(&mut chart, &points, |p| p.workers as f64, |p| p.efficiency);
    ctx.inputs.discard(&dir);
    Ok(chart)
}

/// A growing number of files, all on the largest worker count.
fn growing_files(ctx: &Ctx, p: &Params, table: &mut Table) -> Result<Chart> {
    let workers = ctx.max_workers();
    let most = *p.files.iter().max().expect("file counts");
    let spec = CorpusSpec {
        files: most,
        bytes_per_file: p.file_bytes,
        ..CorpusSpec::default()
    };
    let all = ctx.inputs.generate("growing", &spec)?;
    let mut chart = Chart::new(
        format!("{workers} workers, files of {}", human(p.file_bytes)),
        "input files (log scale)",
        "parallel efficiency",
    );
    chart.x_log = true;
    chart.y_at_least = 1.1;
    for &n in &p.files {
        let dir = ctx.inputs.subset(&all, n, &format!("growing-{n}"))?;
        let total = total_bytes(&dir)?;
        let points = ctx
            .measure
            .points(&dir, &[workers], &format!("{n} files"))?;
        write_points(table, &points, total, || {
            Row::new().cell("files").cell(n).num(mib(total), 1)
        });
        plot_points(&mut chart, &points, |_| n as f64, |p| p.efficiency);
        ctx.inputs.discard(&dir);
    }
    ctx.inputs.discard(&all);
    Ok(chart)
}

/// What each mode costs with next to nothing to count: p files of a few
/// words on p workers (every worker, thread or process gets one), so the
/// time is all start, coordination and stop.
fn fixed_cost(ctx: &Ctx, table: &mut Table) -> Result<Chart> {
    let mut chart = Chart::new(
        "Fixed cost: p tiny files on p workers".to_string(),
        "workers p",
        "milliseconds",
    );
    for &p in &ctx.workers {
        let spec = CorpusSpec {
            files: p,
            bytes_per_file: 16,
            ..CorpusSpec::default()
        };
        let dir = ctx.inputs.generate(&format!("tiny-{p}"), &spec)?;
        let points = ctx.measure.points(&dir, &[p], &format!("{p} tiny files"))?;
        write_points(table, &points, 0, || {
            Row::new().cell("fixed-cost").cell(p).num(0.0, 1)
        });
        plot_points(
            &mut chart,
            &points,
            |_| p as f64,
            |pt| pt.timed.median * 1e3,
        );
        ctx.inputs.discard(&dir);
    }
    Ok(chart)
}
