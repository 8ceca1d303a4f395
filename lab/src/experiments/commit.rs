//! Per-file against per-word commits: one atomic function call per file
//! (the file's counts in one go) against one ZINCRBY per word occurrence,
//! pipelined, on growing inputs.

use super::corpus::{human, total_bytes};
use super::measure::{job_options, mib, JobSample, Timed};
use super::plot::Chart;
use super::table::{Row, Table, TIMED};
use super::{Ctx, Outcome, Scale};
use anyhow::Result;
use wordcount_count::generate::CorpusSpec;
use wordcount_protocol::Commit;

struct Params {
    files: Vec<usize>,
    file_bytes: u64,
}

fn params(scale: Scale) -> Params {
    match scale {
        Scale::Tiny => Params {
            files: vec![1, 2],
            file_bytes: 64 << 10,
        },
        Scale::Small => Params {
            files: vec![1, 2, 4, 8],
            file_bytes: 1 << 20,
        },
        // Up to the benchmark, 10 files of about 4 MB; per-word
        // commits take minutes beyond that.
        Scale::Full => Params {
            files: vec![1, 2, 5, 10],
            file_bytes: 4 << 20,
        },
    }
}

const MODES: [Commit; 2] = [Commit::PerFile, Commit::PerWord];

pub fn run(ctx: &Ctx) -> Result<Outcome> {
    let p = params(ctx.scale);
    let most = *p.files.iter().max().expect("file counts");
    let spec = CorpusSpec {
        files: most,
        bytes_per_file: p.file_bytes,
        ..CorpusSpec::default()
    };
    let all = ctx.inputs.generate("all", &spec)?;
    let workers = ctx.max_workers();
    let columns = [
        &["commit", "files", "mib", "words"][..],
        &TIMED,
        &["mwords_per_s", "slowdown"],
    ]
    .concat();
    let mut table = Table::new(&columns).csv_only(&["min_s", "max_s"]);
    let mut chart = Chart::new(
        format!("{workers} workers, files of {}", human(p.file_bytes)),
        "input (MiB)",
        "completion time (s)",
    );
    for &n in &p.files {
        let dir = ctx.inputs.subset(&all, n, &format!("files-{n}"))?;
        let size = mib(total_bytes(&dir)?);
        let timed = MODES
            .iter()
            .map(|&mode| time_mode(ctx, &dir, workers, mode, n))
            .collect::<Result<Vec<_>>>()?;
        let per_file = timed[0].median;
        for (mode, t) in MODES.iter().zip(&timed) {
            table.push(
                Row::new()
                    .cell(mode.as_str())
                    .cell(n)
                    .num(size, 1)
                    .cell(t.detail.words)
                    .timed(t)
                    .num(t.detail.words as f64 / t.median / 1e6, 3)
                    .num(t.median / per_file, 2),
            );
            chart.series(mode.as_str()).push((size, t.median));
        }
        ctx.inputs.discard(&dir);
    }
    ctx.inputs.discard(&all);
    Ok(Outcome {
        title: "Commits: one call per file against one ZINCRBY per word".into(),
        table,
        charts: vec![chart],
        notes: Vec::new(),
    })
}

fn time_mode(
    ctx: &Ctx,
    dir: &std::path::Path,
    workers: usize,
    mode: Commit,
    n: usize,
) -> Result<Timed<JobSample>> {
    let mut opts = job_options(dir, workers);
    opts.settings.commit = mode;
    ctx.measure
        .job(&format!("{} {n} files", mode.as_str()), &opts)
}
