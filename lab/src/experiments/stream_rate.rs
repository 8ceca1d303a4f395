//! Streams against their injection rate: the batch throughput of the same
//! tweet files on the same workers is the capacity; streams at 10 % to
//! 150 % of it give latency (p50, p99) and throughput against the rate.
//! The sustainable throughput is the highest rate whose p99 stays under a
//! bound (1 s) while the workers keep up with it.

use super::machine;
use super::plot::{self, Chart};
use super::stream::{batch_once, capacity, file_latencies, stream_options, tweet_input, TICK};
use super::table::{Row, Table};
use super::{Ctx, Outcome, Scale};
use anyhow::{Context, Result};
use std::time::Duration;
use wordcount_protocol::Backpressure;

struct Params {
    files: usize,
    /// Rates as fractions of the batch throughput.
    loads: Vec<f64>,
    duration: Duration,
}

/// The p99 latency a sustainable rate stays under.
pub const BOUND_MS: u64 = 1000;
/// A rate is kept up with when the throughput reaches this share of it.
const KEEP_UP: f64 = 0.95;

fn params(scale: Scale) -> Params {
    match scale {
        // A batch of 200 files is too short to measure the capacity well
        // (the workers warm up, other tests share the cores): the high
        // point asks twice the usual overload, so that it is one.
        Scale::Tiny => Params {
            files: 200,
            loads: vec![0.25, 3.0],
            duration: Duration::from_secs(1),
        },
        Scale::Small => Params {
            files: 2000,
            loads: vec![0.1, 0.5, 0.9, 1.0, 1.1, 1.5],
            duration: Duration::from_secs(4),
        },
        Scale::Full => Params {
            files: 20_000,
            loads: (1..=15).map(|i| i as f64 / 10.0).collect(),
            duration: Duration::from_secs(30),
        },
    }
}

/// One stream measured: the run of median p99 among `--repeat`.
struct Point {
    workers: usize,
    rate: f64,
    /// The batch throughput measured just before this stream: the
    /// machine's speed drifts when other work shares it.
    batch: f64,
    p50: u64,
    p99: u64,
    throughput: f64,
    inject_p99: u64,
}

impl Point {
    fn sustainable(&self) -> bool {
        self.p99 < BOUND_MS && self.throughput >= KEEP_UP * self.rate
    }

    fn load(&self) -> f64 {
        self.rate / self.batch
    }

    /// The mean time a worker spends on a file, from the batch beside it:
    /// each of `workers` workers serves `batch / workers` files a second.
    fn service_ms(&self) -> f64 {
        1000.0 * self.workers as f64 / self.batch
    }
}

pub fn run(ctx: &Ctx) -> Result<Outcome> {
    let clock = machine::CpuClock::now()?;
    let p = params(ctx.scale);
    let dir = tweet_input(ctx, p.files)?;
    let columns = [
        "workers",
        "rate",
        "load",
        "p50_ms",
        "p99_ms",
        "throughput",
        "batch_throughput",
        "inject_p99_ms",
        "service_ms",
        "p99_per_service",
        "sustainable",
    ];
    let mut table = Table::new(&columns);
    let mut p99 = Chart::new(
        "p99 latency",
        "injection rate (files/s)",
        "p99 latency (ms, log scale)",
    );
    let mut p50 = Chart::new(
        "p50 latency",
        "injection rate (files/s)",
        "p50 latency (ms, log scale)",
    );
    let mut through = Chart::new("Throughput", "injection rate (files/s)", "files/s");
    p99.y_log = true;
    p50.y_log = true;
    for c in [&mut p99, &mut p50, &mut through] {
        c.x_format = plot::thousands;
    }
    let mut notes = Vec::new();
    let mut top_rate: f64 = 0.0;
    for &w in &ctx.workers {
        let batch = capacity(ctx, &dir, w)?;
        let legend = workers_legend(w);
        let mut best: Option<&Point> = None;
        let mut points = Vec::new();
        for &load in &p.loads {
            let rate = (load * batch).round().max(1.0);
            top_rate = top_rate.max(rate);
            points.push(stream_point(ctx, &dir, w, rate, p.duration)?);
        }
        for pt in &points {
            let rate = pt.rate;
            if pt.sustainable() && best.is_none_or(|b| b.rate < rate) {
                best = Some(pt);
            }
            table.push(
                Row::new()
                    .cell(w)
                    .num(rate, 0)
                    .num(pt.load(), 2)
                    .cell(pt.p50)
                    .cell(pt.p99)
                    .num(pt.throughput, 1)
                    .num(pt.batch, 1)
                    .cell(pt.inject_p99)
                    .num(pt.service_ms(), 3)
                    .num(pt.p99 as f64 / pt.service_ms(), 1)
                    .cell(u8::from(pt.sustainable())),
            );
            // A log axis cannot show 0 ms.
            p99.series(&legend).push((rate, (pt.p99 as f64).max(0.5)));
            p50.series(&legend).push((rate, (pt.p50 as f64).max(0.5)));
            through.series(&legend).push((rate, pt.throughput));
        }
        through.mark(batch, format!("batch, {legend}"));
        let note = match best {
            Some(b) => {
                p99.mark(b.rate, format!("sustainable, {legend}"));
                format!(
                    "{legend}: sustainable {:.0} files/s = {:.0} % of the batch throughput \
                     measured alongside it ({:.0} files/s; {batch:.0} at the start)",
                    b.rate,
                    100.0 * b.load(),
                    b.batch
                )
            }
            None => format!(
                "{legend}: no rate measured is sustainable (batch throughput {batch:.0} files/s)"
            ),
        };
        ctx.measure.say(&note);
        notes.push(note);
    }
    let bound = BOUND_MS as f64;
    p99.series(&format!("p99 bound {} s", plot::number(bound / 1000.0)))
        .extend([(0.0, bound), (top_rate, bound)]);
    through
        .series("throughput = rate")
        .extend([(0.0, 0.0), (top_rate, top_rate)]);
    notes.push(format!(
        "sustainable: p99 < {BOUND_MS} ms and throughput >= {:.0} % of the rate; \
         streams of {} s in ticks of {} ms, each point the run of median p99 of --repeat, \
         each run after a batch job whose throughput is its batch_throughput (and load = \
         rate / batch_throughput); rates are fractions of the batch throughput at the start; \
         inject_p99_ms: how late the driver injected files (part of their latency); \
         service_ms: workers / batch_throughput, the mean time a worker spends on a file",
        KEEP_UP * 100.0,
        p.duration.as_secs_f64(),
        TICK.as_millis()
    ));
    let machine = machine::note(&clock)?;
    ctx.measure.say(&machine);
    notes.push(machine);
    ctx.inputs.discard(&dir);
    Ok(Outcome {
        title: "Streams of tweet files: latency and throughput against the injection rate".into(),
        table,
        charts: vec![p99, p50, through],
        notes,
    })
}

fn workers_legend(w: usize) -> String {
    match w {
        1 => "1 worker".into(),
        n => format!("{n} workers"),
    }
}

/// A stream at `rate` on `workers`, `--repeat` times; the run of median p99.
fn stream_point(
    ctx: &Ctx,
    dir: &std::path::Path,
    workers: usize,
    rate: f64,
    duration: Duration,
) -> Result<Point> {
    let opts = stream_options(dir, workers, rate, duration, Backpressure::None, 0);
    let t = ctx.measure.repeat(
        &format!("stream {rate:.0} files/s, {workers} workers (p99 in s)"),
        || {
            let batch = batch_once(ctx, dir, workers)?;
            let o = ctx.measure.run(&opts)?;
            let s = o.report.stream.context("a stream without its report")?;
            let files = file_latencies(&o.timeline);
            let mut delays: Vec<u64> = files.iter().map(|f| f.inject_delay_ms()).collect();
            delays.sort_unstable();
            let inject_p99 = wordcount_job::latency::percentile(&delays, 0.99);
            let pt = Point {
                workers,
                rate,
                batch,
                p50: s.latency_ms.p50,
                p99: s.latency_ms.p99,
                throughput: s.throughput_files_per_s,
                inject_p99,
            };
            Ok((pt.p99 as f64 / 1000.0, pt))
        },
    )?;
    Ok(t.detail)
}
