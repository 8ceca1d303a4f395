//! Backpressure at 150 % of capacity: a source that injects on schedule
//! whatever happens (none), one that stops above max-lag (pause), and one
//! that steers its rate (adaptive, AIMD). Latency, the queue's depth and
//! the rate actually injected, over time.

use super::plot::Chart;
use super::stream::{
    capacity, file_latencies, per_bucket, per_tick, queue_samples, stream_options, tweet_input,
    QueueSample, TICK,
};
use super::table::{Row, Table};
use super::{Ctx, Outcome, Scale};
use anyhow::{Context, Result};
use std::time::Duration;
use wordcount_protocol::Backpressure;

struct Params {
    files: usize,
    duration: Duration,
    /// The rate asked, as a share of the batch throughput.
    load: f64,
}
/// max-lag: what the workers drain in this long at batch throughput.
const MAX_LAG_S: f64 = 0.1;
/// The window of the rate plotted over time.
const RATE_WINDOW_S: f64 = 1.0;

fn params(scale: Scale) -> Params {
    match scale {
        // A batch of 200 files is too short to measure the capacity well
        // (the workers warm up, other tests share the cores): twice the
        // usual overload makes sure the workers fall behind.
        Scale::Tiny => Params {
            files: 200,
            duration: Duration::from_millis(1500),
            load: 3.0,
        },
        Scale::Small => Params {
            files: 2000,
            duration: Duration::from_secs(6),
            load: 1.5,
        },
        Scale::Full => Params {
            files: 20_000,
            duration: Duration::from_secs(30),
            load: 1.5,
        },
    }
}

pub fn run(ctx: &Ctx) -> Result<Outcome> {
    let p = params(ctx.scale);
    let workers = ctx.max_workers();
    let dir = tweet_input(ctx, p.files)?;
    let batch = capacity(ctx, &dir, workers)?;
    let rate = (p.load * batch).round().max(1.0);
    let max_lag = ((MAX_LAG_S * batch).round() as u64).max(10);
    let columns = [
        "backpressure",
        "rate",
        "max_lag_limit",
        "batch",
        "p50_ms",
        "p99_ms",
        "max_lag",
        "throttled_ms",
        "effective_rate",
        "throughput",
    ];
    let mut table = Table::new(&columns);
    let mut latency = Chart::new(
        "p99 latency per 0.5 s (log scale)",
        "due time (s)",
        "p99 latency (ms)",
    );
    latency.y_log = true;
    let mut depth = Chart::new("Queue depth", "time (s)", "lag + pending (files)");
    let mut injected = Chart::new(
        format!("Injected, over {RATE_WINDOW_S} s"),
        "time (s)",
        "files/s",
    );
    for bp in [
        Backpressure::None,
        Backpressure::Pause,
        Backpressure::Adaptive,
    ] {
        let name = bp.to_string();
        let opts = stream_options(&dir, workers, rate, p.duration, bp, max_lag);
        let outcome = ctx.measure.run(&opts)?;
        let s = outcome
            .report
            .stream
            .context("a stream without its report")?;
        ctx.measure.say(format_args!("{name}: {}", s.line()));
        table.push(
            Row::new()
                .cell(&name)
                .num(rate, 0)
                .cell(max_lag)
                .cell(per_tick(rate))
                .cell(s.latency_ms.p50)
                .cell(s.latency_ms.p99)
                .cell(s.max_lag)
                .cell(s.throttled_ms)
                .num(s.effective_rate, 1)
                .num(s.throughput_files_per_s, 1),
        );
        let files = file_latencies(&outcome.timeline);
        for (at, _, p99) in per_bucket(&files, 0.5) {
            latency.series(&name).push((at, (p99 as f64).max(0.5)));
        }
        let samples = queue_samples(&outcome.timeline);
        depth
            .series(&name)
            .extend(samples.iter().map(|q| (q.at_s, q.depth as f64)));
        injected.series(&name).extend(injection_rate(&samples));
    }
    let end = p.duration.as_secs_f64();
    depth
        .series("max-lag")
        .extend([(0.0, max_lag as f64), (end, max_lag as f64)]);
    injected
        .series("rate asked")
        .extend([(0.0, rate), (end, rate)]);
    let notes = vec![format!(
        "{workers} workers asked {rate:.0} files/s = {:.0} % of the batch throughput \
         {batch:.0} files/s, for {} s in ticks of {} ms; max-lag {max_lag} (what the \
         workers drain in {} ms); one stream per mode",
        p.load * 100.0,
        p.duration.as_secs_f64(),
        TICK.as_millis(),
        MAX_LAG_S * 1000.0
    )];
    ctx.inputs.discard(&dir);
    Ok(Outcome {
        title: format!(
            "Backpressure at {:.0} % of capacity: none, pause, adaptive",
            p.load * 100.0
        ),
        table,
        charts: vec![latency, depth, injected],
        notes,
    })
}

/// Files injected a second over the last [`RATE_WINDOW_S`], at each sample
/// from the first full window on.
fn injection_rate(samples: &[QueueSample]) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    let mut j = 0;
    for q in samples {
        while j + 1 < samples.len() && samples[j + 1].at_s <= q.at_s - RATE_WINDOW_S {
            j += 1;
        }
        let from = &samples[j];
        if q.at_s - from.at_s >= RATE_WINDOW_S * 0.9 {
            let n = q.injected.saturating_sub(from.injected) as f64;
            out.push((q.at_s, n / (q.at_s - from.at_s)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn injection_rate_over_a_trailing_window() {
        // 10 files every 100 ms: 100 files a second.
        let samples: Vec<QueueSample> = (0..30)
            .map(|i| QueueSample {
                at_s: i as f64 * 0.1,
                depth: 0,
                injected: i * 10,
            })
            .collect();
        let r = injection_rate(&samples);
        assert!(!r.is_empty());
        // The first window nearly full: 0.9 s.
        assert!((r[0].0 - 0.9).abs() < 1e-9, "{r:?}");
        for (_, v) in r {
            assert!((v - 100.0).abs() < 1e-6);
        }
    }
}
