#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report
//! `wordcount run --stream` with a real redis-server and real workers:
//! files injected at a rate, counted exactly under faults, latency measured
//! in Redis, and a source that holds back when the workers fall behind.

mod common;
use common::*;
use wordcount_count::generate::{generate, CorpusSpec};
use wordcount_job::report::Report;

/// `run --stream --json --verify --timeline` over `input` with `extra`
/// flags: the report and the timeline's rows (as `kind`, then columns).
fn stream(input: &std::path::Path, extra: &[&str]) -> (Report, Vec<csv::StringRecord>) {
    let timeline = tempfile::NamedTempFile::new().unwrap();
    let mut args = vec!["--stream", "--timeline", timeline.path().to_str().unwrap()];
    args.extend_from_slice(extra);
    let report = run_verified(input, &args);
    let rows = csv::Reader::from_path(timeline.path())
        .unwrap()
        .records()
        .map(Result::unwrap)
        .collect();
    (report, rows)
}

fn events(rows: &[csv::StringRecord]) -> Vec<String> {
    rows.iter()
        .filter(|r| &r[0] == "event")
        .map(|r| r[14].to_string())
        .collect()
}

#[test]
fn a_stream_with_a_crash_and_a_straggler_counts_each_injection_exactly() {
    need_redis();
    let dir = tempfile::tempdir().unwrap();
    let out = wordcount(&[
        "generate",
        "--tweets",
        "--files",
        "15",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    ok(&out);
    // 20 files a second for 2 s: 40 injections, each file about 3 times.
    let (r, rows) = stream(
        dir.path(),
        &[
            "--rate",
            "20",
            "--duration",
            "2s",
            "--tick",
            "250ms",
            "--workers",
            "2",
            "--claim-timeout",
            "200",
            "--fault",
            "worker=0,crash=after-count,file=3",
            "--fault",
            "worker=1,slow=1000",
        ],
    );
    let s = r.stream.expect("a stream reports its figures");
    assert_eq!((s.injected, s.committed), (40, 40));
    assert_eq!(r.job.as_ref().unwrap().files, 40);
    // The crash, and the straggler at its first file.
    assert_eq!(r.job.as_ref().unwrap().faults_fired, 2);
    let l = s.latency_ms;
    assert!(l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.max, "{l:?}");
    assert!(l.max > 0, "latency measured: {l:?}");
    assert!(s.throughput_files_per_s > 0.0);
    let files: Vec<_> = rows.iter().filter(|r| &r[0] == "file").collect();
    assert_eq!(files.len(), 40, "a row per injected file");
    for f in &files {
        let due: i64 = f[3].parse().unwrap();
        let injected: i64 = f[4].parse().unwrap();
        let committed: i64 = f[5].parse().unwrap();
        let latency: i64 = f[6].parse().unwrap();
        assert!(due <= injected && injected <= committed, "{f:?}");
        // Redis's clock, read twice in one call: the same millisecond or the next.
        assert!((committed - due - latency).abs() <= 1, "{f:?}");
    }
    let ev = events(&rows);
    assert!(ev.iter().any(|e| e == "fault-fired"), "{ev:?}");
    assert!(ev.iter().any(|e| e == "worker-replaced"), "{ev:?}");
    assert!(
        rows.iter().any(|r| &r[0] == "sample"),
        "the queue is sampled"
    );
}

/// Runs a stream far above what one slow worker manages, with `--max-lag
/// 6` and batches of 25: the deepest the queue got.
fn overloaded(input: &std::path::Path, backpressure: &str) -> (Report, u64) {
    let (r, rows) = stream(
        input,
        &[
            "--rate",
            "100",
            "--tick",
            "250ms",
            "--duration",
            "2s",
            "--backpressure",
            backpressure,
            "--max-lag",
            "6",
            "--workers",
            "1",
            "--fault",
            "worker=0,slow=1000",
        ],
    );
    let deepest = rows
        .iter()
        .filter(|r| &r[0] == "sample")
        .map(|r| r[9].parse::<u64>().unwrap() + r[10].parse::<u64>().unwrap())
        .max()
        .unwrap();
    assert_eq!(deepest, r.stream.as_ref().unwrap().max_lag);
    (r, deepest)
}

#[test]
fn pause_keeps_the_queue_under_max_lag_plus_a_batch_and_none_does_not() {
    need_redis();
    let dir = tempfile::tempdir().unwrap();
    generate(
        dir.path(),
        &CorpusSpec {
            // Tiny: a file costs its syscalls, times 1000 (the slowest
            // straggler), about as much in a debug build as in release.
            files: 4,
            bytes_per_file: 200,
            ..Default::default()
        },
    )
    .unwrap();
    let bound = 6 + 25;
    let (paused, deepest) = overloaded(dir.path(), "pause");
    let s = paused.stream.unwrap();
    assert!(deepest <= bound, "pause let the queue reach {deepest}");
    assert!(s.throttled_ms > 0, "{s:?}");
    assert_eq!((s.injected, s.committed), (200, 200), "late, never dropped");
    let (none, deepest) = overloaded(dir.path(), "none");
    assert!(
        deepest > bound,
        "none kept the queue at {deepest}: not overloaded?"
    );
    assert_eq!(none.stream.unwrap().throttled_ms, 0);
}

#[test]
fn stream_flags_need_stream_and_a_positive_rate() {
    let out = wordcount(&["run", "--input", ".", "--rate", "5"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--stream"));
    let out = wordcount(&["run", "--input", ".", "--stream", "--rate", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a rate above 0"));
}

#[test]
fn autoscale_adds_workers_under_load_and_removes_them_after() {
    need_redis();
    let dir = tempfile::tempdir().unwrap();
    // Heavy files first, then light ones: the load rises, then falls. A
    // heavy file is tiny but every worker is the slowest straggler (its
    // syscalls times 1000: about 0.1 s, in a debug build as in release, so
    // one worker takes 10 a second); a light one is a dangling link, which
    // fails at once.
    generate(
        &dir.path().join("a-heavy"),
        &CorpusSpec {
            files: 40,
            bytes_per_file: 200,
            ..Default::default()
        },
    )
    .unwrap();
    let light = dir.path().join("b-light");
    std::fs::create_dir(&light).unwrap();
    for i in 0..400 {
        std::os::unix::fs::symlink("/nonexistent", light.join(format!("gone-{i:03}"))).unwrap();
    }
    let (r, rows) = stream(
        dir.path(),
        &[
            "--rate",
            "40",
            // A file or two a tick: no burst leaves lag for the scaler to
            // see once the workers keep up.
            "--tick",
            "25ms",
            "--autoscale",
            "1..3",
            "--target-lag",
            "2",
            "--cooldown",
            "1s",
            "--on-unreadable",
            "skip",
            "--fault",
            "worker=0,slow=1000",
            "--fault",
            "worker=1,slow=1000",
            "--fault",
            "worker=2,slow=1000",
        ],
    );
    let job = r.job.unwrap();
    assert!(job.peak_workers >= 2, "{job:?}");
    let ev = events(&rows);
    let up = ev.iter().position(|e| e == "scaled-up");
    let down = ev.iter().rposition(|e| e == "scaled-down");
    assert!(
        matches!((up, down), (Some(u), Some(d)) if u < d),
        "up, then down: {ev:?}"
    );
    assert_eq!(
        job.scalings as usize,
        ev.iter().filter(|e| e.starts_with("scaled-")).count()
    );
    let bad = wordcount(&["run", "--input", ".", "--stream", "--autoscale", "3..1"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("MIN..MAX"));
}
