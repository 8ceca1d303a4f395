//! What the stream experiments share: tweet files (streaming input), the
//! batch capacity a stream is measured against, a stream's options, and
//! reading a stream's timeline (per-file latencies, queue samples, events).

use super::corpus::files;
use super::measure::job_options;
use super::Ctx;
use crate::local::RunOptions;
use crate::timeline::Row;
use anyhow::Result;
use std::path::{Path, PathBuf};
use std::time::Duration;
use wordcount_count::generate::TweetSpec;
use wordcount_job::latency::percentile;
use wordcount_job::source::StreamPlan;
use wordcount_protocol::Backpressure;

/// One micro-batch every millisecond. Files of a tick fall due at once and
/// queue behind each other: with 10 ms ticks that was most of a file's
/// latency at moderate load (p50 8 ms against 1 ms now, on 2 workers at
/// half their capacity, service ~0.6 ms a file).
pub const TICK: Duration = Duration::from_millis(1);

/// `files` files of ~100 synthetic tweets each, under the input's `tweets`.
pub fn tweet_input(ctx: &Ctx, files: usize) -> Result<PathBuf> {
    let spec = TweetSpec {
        files,
        ..TweetSpec::default()
    };
    ctx.inputs.tweets("tweets", &spec)
}

/// The batch throughput of `workers` workers on the files under `dir`, in
/// files a second: the files over the count-and-commit phase of a plain
/// job (no stream), median of `--repeat` jobs. What a stream of the same
/// files on the same workers could at best sustain.
pub fn capacity(ctx: &Ctx, dir: &Path, workers: usize) -> Result<f64> {
    let n = files(dir)?.len() as f64;
    let t = ctx.measure.repeat(
        &format!("batch of {n} files, {workers} workers (count+commit)"),
        || Ok((n / batch_once(ctx, dir, workers)?, ())),
    )?;
    let c = n / t.median;
    ctx.measure.say(format_args!(
        "batch throughput, {workers} workers: {c:.0} files/s"
    ));
    Ok(c)
}

/// One plain job on the files under `dir`: files a second over its
/// count-and-commit phase.
pub fn batch_once(ctx: &Ctx, dir: &Path, workers: usize) -> Result<f64> {
    let n = files(dir)?.len() as f64;
    let report = ctx.measure.run(&job_options(dir, workers))?.report;
    let seconds = report
        .phases
        .as_ref()
        .map_or(report.seconds, |p| p.count_and_commit);
    Ok(n / seconds)
}

/// A stream of `rate` files a second for `duration` over the files under `dir`.
pub fn stream_options(
    dir: &Path,
    workers: usize,
    rate: f64,
    duration: Duration,
    backpressure: Backpressure,
    max_lag: u64,
) -> RunOptions {
    let mut opts = job_options(dir, workers);
    opts.stream = Some(StreamPlan {
        rate,
        duration: Some(duration),
        tick: TICK,
        backpressure,
        max_lag,
    });
    opts
}

/// Files in one tick at `rate`: the "batch" of the pause's bound.
pub fn per_tick(rate: f64) -> u64 {
    (rate * TICK.as_secs_f64()).ceil() as u64
}

/// One file of a stream, from its timeline: seconds since the stream started.
#[derive(Clone, Copy, Debug)]
pub struct FileLatency {
    pub due_s: f64,
    pub injected_s: f64,
    pub latency_ms: u64,
}

impl FileLatency {
    /// How late the source injected it (ms): the driver's share of the latency.
    pub fn inject_delay_ms(&self) -> u64 {
        ((self.injected_s - self.due_s) * 1000.0).round().max(0.0) as u64
    }
}

/// The files of a timeline, in due order.
pub fn file_latencies(rows: &[Row]) -> Vec<FileLatency> {
    let mut v: Vec<FileLatency> = rows
        .iter()
        .filter(|r| r.kind == "file")
        .filter_map(|r| {
            Some(FileLatency {
                due_s: r.due_ms? as f64 / 1000.0,
                injected_s: r.injected_ms? as f64 / 1000.0,
                latency_ms: r.latency_ms?,
            })
        })
        .collect();
    v.sort_by(|a, b| a.due_s.total_cmp(&b.due_s));
    v
}

/// One sample of the queue: seconds since the start, lag + pending,
/// injections so far.
#[derive(Clone, Copy, Debug)]
pub struct QueueSample {
    pub at_s: f64,
    pub depth: u64,
    pub injected: u64,
}

pub fn queue_samples(rows: &[Row]) -> Vec<QueueSample> {
    rows.iter()
        .filter(|r| r.kind == "sample")
        .map(|r| QueueSample {
            at_s: r.t_ms as f64 / 1000.0,
            depth: r.lag.unwrap_or(0) + r.pending.unwrap_or(0),
            injected: r.injected.unwrap_or(0),
        })
        .collect()
}

/// The events of a timeline: seconds since the start, what, detail.
pub fn events(rows: &[Row]) -> Vec<(f64, String, String)> {
    rows.iter()
        .filter(|r| r.kind == "event")
        .map(|r| {
            (
                r.t_ms as f64 / 1000.0,
                r.event.clone().unwrap_or_default(),
                r.detail.clone().unwrap_or_default(),
            )
        })
        .collect()
}

/// The `q` quantile (nearest rank) of the latencies of `files`; `None` for none.
pub fn quantile<'a>(files: impl Iterator<Item = &'a FileLatency>, q: f64) -> Option<u64> {
    let mut v: Vec<u64> = files.map(|f| f.latency_ms).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    Some(percentile(&v, q))
}

/// The p99 of the files due in `[from, to)`.
pub fn p99_between(files: &[FileLatency], from: f64, to: f64) -> Option<u64> {
    quantile(
        files.iter().filter(|f| f.due_s >= from && f.due_s < to),
        0.99,
    )
}

/// p50 and p99 of the files due in each `bucket` seconds: (the bucket's
/// middle, p50, p99), buckets without files left out.
pub fn per_bucket(files: &[FileLatency], bucket: f64) -> Vec<(f64, u64, u64)> {
    let Some(last) = files.iter().map(|f| f.due_s).reduce(f64::max) else {
        return Vec::new();
    };
    let n = (last / bucket).floor() as usize + 1;
    (0..n)
        .filter_map(|k| {
            let (from, to) = (k as f64 * bucket, (k + 1) as f64 * bucket);
            let inside = || files.iter().filter(|f| f.due_s >= from && f.due_s < to);
            Some((
                from + bucket / 2.0,
                quantile(inside(), 0.5)?,
                quantile(inside(), 0.99)?,
            ))
        })
        .collect()
}

/// How a stream got over a fault.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Recovery {
    /// The highest sliding p99 after the fault (ms).
    pub peak_p99_ms: u64,
    /// Seconds from the fault until the sliding p99 is back within
    /// `factor` times the baseline and stays there (until `horizon`);
    /// `None` if it is still above at the horizon.
    pub seconds: Option<f64>,
}

/// The sliding window of the recovery: p99 over 1 s of due time, moved by 100 ms.
pub const WINDOW_S: f64 = 1.0;
pub const STEP_S: f64 = 0.1;

/// The recovery after a fault at `at`: windows of [`WINDOW_S`] starting at
/// `at`, `at + STEP_S`, ... while they end by `horizon` (at least one);
/// the time until the first window from which on every window's p99 is
/// within `factor * baseline_ms`.
pub fn recovery(
    files: &[FileLatency],
    at: f64,
    horizon: f64,
    baseline_ms: u64,
    factor: f64,
) -> Recovery {
    let limit = factor * baseline_ms as f64;
    let mut peak = 0;
    let mut first_good_after_bad = Some(0.0);
    let mut k = 0;
    loop {
        let from = at + k as f64 * STEP_S;
        let to = (from + WINDOW_S).min(horizon.max(at + STEP_S));
        if k > 0 && from + WINDOW_S > horizon {
            break;
        }
        if let Some(p) = p99_between(files, from, to) {
            peak = peak.max(p);
            if p as f64 > limit {
                first_good_after_bad = None;
            } else if first_good_after_bad.is_none() {
                first_good_after_bad = Some(from - at);
            }
        }
        k += 1;
    }
    Recovery {
        peak_p99_ms: peak,
        seconds: first_good_after_bad,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(due_s: f64, latency_ms: u64) -> FileLatency {
        FileLatency {
            due_s,
            injected_s: due_s,
            latency_ms,
        }
    }

    /// 100 files a second for 10 s, 10 ms each, but 500 ms for those due
    /// in [3, 4.5).
    fn stream() -> Vec<FileLatency> {
        (0..1000)
            .map(|i| {
                let t = i as f64 / 100.0;
                file(t, if (3.0..4.5).contains(&t) { 500 } else { 10 })
            })
            .collect()
    }

    #[test]
    fn recovery_is_the_time_until_the_sliding_p99_stays_back() {
        let files = stream();
        let r = recovery(&files, 3.0, 10.0, 10, 1.5);
        assert_eq!(r.peak_p99_ms, 500);
        // The first window clear of the slow files starts at 4.5 s.
        let s = r.seconds.unwrap();
        assert!((s - 1.5).abs() < 1e-6, "{s}");
        // Undisturbed: no time at all.
        assert_eq!(recovery(&files, 6.0, 10.0, 10, 1.5).seconds, Some(0.0));
        // Still above at the horizon: not recovered.
        assert_eq!(recovery(&files, 3.0, 4.2, 10, 1.5).seconds, None);
    }

    #[test]
    fn buckets_give_p50_and_p99() {
        let b = per_bucket(&stream(), 1.0);
        assert_eq!(b.len(), 10);
        assert_eq!(b[0], (0.5, 10, 10));
        assert_eq!(b[3].2, 500);
        assert_eq!(b[4], (4.5, 10, 500));
        assert_eq!(p99_between(&stream(), 20.0, 21.0), None);
    }
}
