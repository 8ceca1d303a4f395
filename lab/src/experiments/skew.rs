//! Skew: many equal files and one that is k times larger. Threads and
//! processes take the largest file first; the Redis queue hands files out
//! in name order, so the large one (named last) starts last. A second
//! Redis line splits files larger than the others into byte ranges of
//! their size (`--split`): the large file is then k ranges any worker takes.

use super::corpus::{human, total_bytes};
use super::measure::{mib, plot_points, write_points, Method, POINT_COLUMNS};
use super::plot::Chart;
use super::table::{Row, Table};
use super::{Ctx, Outcome, Scale};
use anyhow::Result;
use wordcount_count::generate::CorpusSpec;

struct Params {
    files: usize,
    file_bytes: u64,
    /// How many times larger the last file is.
    skews: Vec<f64>,
}

fn params(scale: Scale) -> Params {
    match scale {
        Scale::Tiny => Params {
            files: 4,
            file_bytes: 64 << 10,
            skews: vec![1.0, 10.0],
        },
        Scale::Small => Params {
            files: 16,
            file_bytes: 2 << 20,
            skews: vec![1.0, 2.0, 5.0, 10.0, 20.0],
        },
        Scale::Full => Params {
            files: 16,
            file_bytes: 64 << 20,
            skews: vec![1.0, 2.0, 5.0, 10.0, 16.0],
        },
    }
}

pub fn run(ctx: &Ctx) -> Result<Outcome> {
    let p = params(ctx.scale);
    let workers = ctx.max_workers();
    let columns = [&["skew", "files", "mib"][..], &POINT_COLUMNS].concat();
    let mut table = Table::new(&columns).csv_only(&["min_s", "max_s"]);
    let what = format!(
        "{workers} workers, {} files of {} + one k times larger",
        p.files - 1,
        human(p.file_bytes)
    );
    let mut efficiency = Chart::new(
        what.clone(),
        "k: the last file is k times larger",
        "parallel efficiency",
    );
    efficiency.y_at_least = 1.1;
    let mut seconds = Chart::new(what, "k: the last file is k times larger", "time (s)");
    for &skew in &p.skews {
        let spec = CorpusSpec {
            files: p.files,
            bytes_per_file: p.file_bytes,
            skew,
            ..CorpusSpec::default()
        };
        let dir = ctx.inputs.generate(&format!("skew-{skew}"), &spec)?;
        let total = total_bytes(&dir)?;
        let methods = [&Method::PARALLEL[..], &[Method::RedisSplit(p.file_bytes)]].concat();
        let points =
            (ctx.measure).points_of(&methods, &dir, &[workers], &format!("skew {skew}"))?;
        write_points(&mut table, &points, total, || {
            Row::new().cell(skew).cell(p.files).num(mib(total), 1)
        });
        plot_points(&mut efficiency, &points, |_| skew, |pt| pt.efficiency);
        plot_points(&mut seconds, &points, |_| skew, |pt| pt.timed.median);
        ctx.inputs.discard(&dir);
    }
    Ok(Outcome {
        title: "Skew: many equal files and one k times larger".into(),
        table,
        charts: vec![efficiency, seconds],
        notes: Vec::new(),
    })
}
