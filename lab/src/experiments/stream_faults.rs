//! A stream at half its capacity through faults: a worker crash, a
//! straggler, and workers killed now and then. Each file's latency at its
//! injection time, p50 and p99 per second, and how long the sliding p99
//! takes to come back after each fault.
//!
//! The fault grammar has no time-bounded straggler and `kill_every` runs
//! from a job's start, so the faults come in three phases, each its own
//! stream of the same rate and workers, drawn one after the other on one
//! time axis: (1) worker 0 crashes after counting its Nth file, N chosen to
//! land near `crash_at`; (2) worker 1 is a straggler the whole phase; (3) a
//! random worker is killed every `kill_every`.

use super::measure::Measure;
use super::plot::{self, Chart};
use super::stream::{
    capacity, events, file_latencies, p99_between, per_bucket, quantile, recovery, stream_options,
    tweet_input, FileLatency, STEP_S, WINDOW_S,
};
use super::table::{Row, Table};
use super::{Ctx, Outcome, Scale};
use anyhow::Result;
use std::path::Path;
use std::time::Duration;
use wordcount_job::fault::{CrashPoint, Fault};
use wordcount_protocol::Backpressure;

struct Params {
    files: usize,
    /// Each phase's stream.
    duration: Duration,
    /// When the crash should land, in the first phase.
    crash_at: Duration,
    /// How many times slower the straggler of the second phase is.
    slow: f64,
    kill_every: Duration,
    claim_timeout: Duration,
}

/// The share of the batch throughput the stream injects.
const LOAD: f64 = 0.5;
/// Recovered: the sliding p99 back within this many times its value before.
pub const FACTOR: f64 = 1.5;
/// The target: recovered within the claim timeout plus this.
const TARGET_SLACK: Duration = Duration::from_secs(2);
/// Between phases on the time axis.
const GAP_S: f64 = 0.5;

fn params(scale: Scale) -> Params {
    match scale {
        Scale::Tiny => Params {
            files: 200,
            duration: Duration::from_secs(2),
            crash_at: Duration::from_millis(800),
            slow: 50.0,
            kill_every: Duration::from_millis(800),
            claim_timeout: Duration::from_millis(300),
        },
        Scale::Small => Params {
            files: 2000,
            duration: Duration::from_secs(8),
            crash_at: Duration::from_secs(3),
            slow: 100.0,
            kill_every: Duration::from_millis(2500),
            claim_timeout: Duration::from_secs(1),
        },
        Scale::Full => Params {
            files: 20_000,
            duration: Duration::from_secs(30),
            crash_at: Duration::from_secs(10),
            slow: 100.0,
            kill_every: Duration::from_secs(8),
            claim_timeout: Duration::from_secs(1),
        },
    }
}

/// One phase: its stream's files and events, placed at `offset` seconds.
struct Phase {
    name: &'static str,
    offset: f64,
    /// Seconds files fell due.
    span: f64,
    files: Vec<FileLatency>,
    /// Faults (since the phase's start): when, and what to call it.
    faults: Vec<(f64, String)>,
}

pub fn run(ctx: &Ctx) -> Result<Outcome> {
    let p = params(ctx.scale);
    let workers = ctx.max_workers().max(2);
    let dir = tweet_input(ctx, p.files)?;
    let batch = capacity(ctx, &dir, workers)?;
    let rate = (LOAD * batch).round().max(1.0);
    let crash_file = ((rate * p.crash_at.as_secs_f64() / workers as f64).round() as u32).max(1);
    let crash = Fault::Crash {
        worker: 0,
        point: CrashPoint::AfterCount,
        file: crash_file,
    };
    let slow = Fault::Slow {
        worker: 1,
        factor: p.slow,
    };
    let run = |name, faults: Vec<Fault>, kill_every, offset| {
        phase(
            ctx,
            &dir,
            (workers, rate),
            &p,
            (name, faults, kill_every),
            offset,
        )
    };
    let first = run("crash", vec![crash], None, 0.0)?;
    let second = run("straggler", vec![slow], None, next(&first))?;
    let third = run("kill-every", Vec::new(), Some(p.kill_every), next(&second))?;
    let phases = [first, second, third];

    // Undisturbed: the files due in the 2 s before the crash (or the
    // whole first phase if it did not fire).
    let base = &phases[0];
    let crash_t = base.faults.first().map_or(base.span, |f| f.0);
    let baseline = p99_between(&base.files, (crash_t - 2.0).max(0.0), crash_t)
        .or_else(|| quantile(base.files.iter(), 0.99))
        .unwrap_or(0);
    let target = (p.claim_timeout + TARGET_SLACK).as_secs_f64();
    let columns = [
        "phase",
        "event",
        "at_s",
        "baseline_p99_ms",
        "peak_p99_ms",
        "recovery_s",
        "target_s",
        "met",
    ];
    let mut table = Table::new(&columns);
    let mut chart = Chart::new(
        format!(
            "{workers} workers, {rate:.0} files/s ({:.0} % of the batch throughput {batch:.0} files/s)",
            LOAD * 100.0
        ),
        "injection time (s)",
        "latency (ms)",
    );
    let mut notes = Vec::new();
    for ph in &phases {
        for &f in &ph.files {
            chart
                .dots("file")
                .push((ph.offset + f.injected_s, f.latency_ms as f64));
        }
        for (at, p50, p99) in per_bucket(&ph.files, 1.0) {
            chart
                .series("p50 per second")
                .push((ph.offset + at, p50 as f64));
            chart
                .series("p99 per second")
                .push((ph.offset + at, p99 as f64));
        }
        if ph.faults.is_empty() {
            notes.push(format!("{}: no fault fired", ph.name));
        }
        for (i, (at, what)) in ph.faults.iter().enumerate() {
            let horizon = ph.faults.get(i + 1).map_or(ph.span, |f| f.0);
            let r = recovery(&ph.files, *at, horizon, baseline, FACTOR);
            chart.mark(ph.offset + at, what);
            let met = r.seconds.is_some_and(|s| s <= target);
            table.push(
                Row::new()
                    .cell(ph.name)
                    .cell(what)
                    .num(ph.offset + at, 2)
                    .cell(baseline)
                    .cell(r.peak_p99_ms)
                    .cell(r.seconds.map_or("never".to_string(), |s| format!("{s:.1}")))
                    .num(target, 1)
                    .cell(if met { "yes" } else { "no" }),
            );
        }
        let all = quantile(ph.files.iter(), 0.99).unwrap_or(0);
        let p50 = quantile(ph.files.iter(), 0.5).unwrap_or(0);
        notes.push(format!(
            "{} phase (from {:.1} s): {} files, p50 {p50} ms, p99 {all} ms",
            ph.name,
            ph.offset,
            ph.files.len()
        ));
    }
    notes.push(format!(
        "phases are separate streams drawn one after the other (the fault grammar has no \
         time-bounded straggler; kill-every runs from a job's start): crash = {crash}, \
         straggler = {slow} for its whole phase, a random worker SIGKILLed every {} ms; \
         claim timeout {} ms",
        p.kill_every.as_millis(),
        p.claim_timeout.as_millis()
    ));
    notes.push(format!(
        "recovery: time from the fault until the p99 of the files due in a {} window \
         (moved by {} ms) is back within {FACTOR}x the p99 of the 2 s before the crash \
         and stays so until the next fault or the phase's end; target: claim timeout + {} s",
        plot::number(WINDOW_S) + " s",
        (STEP_S * 1000.0).round(),
        TARGET_SLACK.as_secs()
    ));
    ctx.inputs.discard(&dir);
    Ok(Outcome {
        title: "A stream through a crash, a straggler and repeated kills".into(),
        table,
        charts: vec![chart],
        notes,
    })
}

/// Where the phase after `ph` starts on the time axis.
fn next(ph: &Phase) -> f64 {
    ph.offset + ph.span + GAP_S
}

/// Runs one phase's stream and reads its timeline.
fn phase(
    ctx: &Ctx,
    dir: &Path,
    (workers, rate): (usize, f64),
    p: &Params,
    (name, faults, kill_every): (&'static str, Vec<Fault>, Option<Duration>),
    offset: f64,
) -> Result<Phase> {
    let mut opts = stream_options(dir, workers, rate, p.duration, Backpressure::None, 0);
    opts.settings.claim_timeout = p.claim_timeout;
    opts.faults = faults.clone();
    opts.kill_every = kill_every;
    let measure: &Measure = &ctx.measure;
    let outcome = measure.run(&opts)?;
    let s = outcome.report.stream.clone().unwrap_or_default();
    measure.say(format_args!(
        "{name} phase: {} files, p50 {} ms, p99 {} ms, max {} ms",
        s.committed, s.latency_ms.p50, s.latency_ms.p99, s.latency_ms.max
    ));
    let files = file_latencies(&outcome.timeline);
    let span = files
        .iter()
        .map(|f| f.due_s)
        .fold(p.duration.as_secs_f64(), f64::max);
    let mut marks: Vec<(f64, String)> = events(&outcome.timeline)
        .into_iter()
        .filter_map(|(at, what, detail)| match what.as_str() {
            // A straggler's fault fires at its first file: marked below.
            "fault-fired" if !detail.contains(",slow=") => Some((at, format!("crash ({detail})"))),
            "worker-killed" => Some((at, format!("kill ({detail})"))),
            _ => None,
        })
        .collect();
    if faults.iter().any(|f| matches!(f, Fault::Slow { .. })) {
        marks.insert(0, (0.0, format!("straggler {}", faults_label(&faults))));
    }
    Ok(Phase {
        name,
        offset,
        span,
        files,
        faults: marks,
    })
}

fn faults_label(faults: &[Fault]) -> String {
    faults
        .iter()
        .map(Fault::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}
