#![cfg(feature = "lab")]
#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report
//! `wordcount experiment` end to end, at the hidden tiny scale: real counts,
//! real jobs through a real `redis-server`, a CSV and a PNG.

mod common;

use std::path::Path;

/// Runs `wordcount experiment NAME --scale tiny --repeat 1` into `out`.
fn experiment(name: &str, out: &Path) -> String {
    let out = common::wordcount(&[
        "experiment",
        name,
        "--scale",
        "tiny",
        "--repeat",
        "1",
        "--workers",
        "1",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    String::from_utf8(common::ok(&out).stdout.clone()).unwrap()
}

/// The CSV's header and rows.
fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header = r.headers().unwrap().iter().map(String::from).collect();
    let rows = r
        .records()
        .map(|rec| rec.unwrap().iter().map(String::from).collect())
        .collect();
    (header, rows)
}

fn assert_png(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        path.display()
    );
    assert!(
        bytes.len() > 10_000,
        "{} is suspiciously small",
        path.display()
    );
}

fn column(header: &[String], name: &str) -> usize {
    header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name}"))
}

#[test]
fn efficiency_writes_csv_png_and_a_table() {
    common::need_redis();
    let out = tempfile::tempdir().unwrap();
    let stdout = experiment("efficiency", out.path());
    let (header, rows) = read_csv(&out.path().join("efficiency.csv"));
    assert_eq!(
        header.join(","),
        "sweep,files,mib,method,workers,median_s,min_s,max_s,mib_per_s,efficiency"
    );
    // Fixed input: serial, then 3 methods on 1 and 2 workers; growing
    // input (1 and 4 files): serial and 3 methods on 2 workers each; fixed
    // cost (p tiny files on p = 1 and 2 workers): serial and 3 methods each.
    assert_eq!(rows.len(), 1 + 3 * 2 + 2 * 4 + 2 * 4, "{rows:?}");
    let fixed: Vec<&Vec<String>> = rows.iter().filter(|r| r[0] == "fixed-cost").collect();
    assert_eq!(fixed.len(), 8, "{rows:?}");
    let methods: Vec<&str> = rows.iter().map(|r| r[3].as_str()).collect();
    for m in ["serial", "threads", "processes", "redis"] {
        assert!(methods.contains(&m), "no {m} row");
    }
    let median = column(&header, "median_s");
    for row in &rows {
        let s: f64 = row[median].parse().unwrap();
        assert!(s > 0.0, "a measured time must be positive: {row:?}");
    }
    assert_png(&out.path().join("efficiency.png"));
    assert!(
        stdout.contains("efficiency") && stdout.contains("redis"),
        "table:\n{stdout}"
    );
}

#[test]
fn claim_timeout_runs_real_crashes() {
    common::need_redis();
    let out = tempfile::tempdir().unwrap();
    experiment("claim-timeout", out.path());
    let (header, rows) = read_csv(&out.path().join("claim-timeout.csv"));
    assert_eq!(
        header.join(","),
        "fault,claim_timeout_ms,median_s,min_s,max_s,worker_restarts,commits_ignored"
    );
    assert_eq!(rows.len(), 4, "{rows:?}");
    let restarts = column(&header, "worker_restarts");
    for row in &rows {
        let want = if row[0] == "none" { "0" } else { "1" };
        assert_eq!(
            row[restarts], want,
            "the crashed worker is replaced once: {row:?}"
        );
    }
    assert_png(&out.path().join("claim-timeout.png"));
}

#[test]
fn checkpoint_cost_counts_snapshots_and_what_their_fork_cost() {
    common::need_redis();
    let out = tempfile::tempdir().unwrap();
    experiment("checkpoint-cost", out.path());
    let (header, rows) = read_csv(&out.path().join("checkpoint-cost.csv"));
    assert_eq!(
        header.join(","),
        "files,file_bytes,snapshot_interval_ms,median_s,min_s,max_s,snapshots,fork_ms,cow_mib,slowdown"
    );
    // Two inputs, each without snapshots and with one interval.
    assert_eq!(rows.len(), 4, "{rows:?}");
    for row in &rows {
        let (every, snapshots) = (
            num(row, &header, "snapshot_interval_ms"),
            num(row, &header, "snapshots"),
        );
        match every {
            0.0 => assert_eq!(snapshots, 0.0, "{row:?}"),
            _ => {
                assert!(snapshots >= 1.0, "no snapshot taken: {row:?}");
                assert!(num(row, &header, "fork_ms") > 0.0, "no fork: {row:?}");
            }
        }
    }
    assert_png(&out.path().join("checkpoint-cost.png"));
}

/// RedisRaft's experiments at tiny scale (skipped without the module):
/// one Redis against 3 replicas, and every kill scenario with nothing
/// lost.
#[test]
fn raft_experiments_compare_with_one_redis_and_lose_nothing_to_kills() {
    let Some(_) = common::redisraft() else { return };
    let out = tempfile::tempdir().unwrap();
    experiment("raft-cost", out.path());
    let (header, rows) = read_csv(&out.path().join("raft-cost.csv"));
    // Two inputs, each on one Redis and on 3 replicas with and without
    // fsync.
    let configs: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            let cell = |name| r[column(&header, name)].clone();
            (cell("replicas"), cell("fsync"))
        })
        .collect();
    let one_input = [("1", "-"), ("3", "yes"), ("3", "no")].map(|(n, f)| (n.into(), f.into()));
    assert_eq!(configs, [one_input.clone(), one_input].concat());
    for row in &rows {
        let ratio = num(row, &header, "vs_one_redis");
        match num(row, &header, "replicas") {
            1.0 => assert_eq!(ratio, 1.0, "{row:?}"),
            _ => assert!(ratio > 0.0, "{row:?}"),
        }
    }
    assert_png(&out.path().join("raft-cost.png"));

    experiment("raft-kill", out.path());
    let (header, rows) = read_csv(&out.path().join("raft-kill.csv"));
    let scenarios: Vec<&str> = rows
        .iter()
        .map(|r| r[column(&header, "scenario")].as_str())
        .collect();
    assert_eq!(
        scenarios,
        [
            "none",
            "one replica",
            "the leader",
            "two of three, one back",
            "a random replica"
        ]
    );
    for row in &rows {
        assert_eq!(num(row, &header, "files_redone"), 0.0, "{row:?}");
        let kills = num(row, &header, "replica_kills");
        assert!(
            (row[0] == "none") == (kills == 0.0),
            "kills don't match the scenario: {row:?}"
        );
    }
    assert_png(&out.path().join("raft-kill.png"));
}

/// A CSV cell as a number.
fn num(row: &[String], header: &[String], name: &str) -> f64 {
    let cell = &row[column(header, name)];
    cell.parse()
        .unwrap_or_else(|_| panic!("{name} is not a number: {cell:?} in {row:?}"))
}

#[test]
fn stream_rate_measures_latency_and_throughput_against_the_rate() {
    common::need_redis();
    let out = tempfile::tempdir().unwrap();
    let stdout = experiment("stream-rate", out.path());
    let (header, rows) = read_csv(&out.path().join("stream-rate.csv"));
    assert_eq!(
        header.join(","),
        "workers,rate,load,p50_ms,p99_ms,throughput,batch_throughput,inject_p99_ms,\
         service_ms,p99_per_service,sustainable"
    );
    // Tiny: 25 % and 300 % of capacity, on 1 and 2 workers.
    assert_eq!(rows.len(), 2 * 2, "{rows:?}");
    for row in &rows {
        let n = |c| num(row, &header, c);
        let (rate, batch) = (n("rate"), n("batch_throughput"));
        assert!(batch > 0.0 && rate > 0.0, "{row:?}");
        assert!(
            (n("load") - rate / batch).abs() < 0.011,
            "load is rate/batch: {row:?}"
        );
        assert!(n("p99_ms") >= n("p50_ms"), "{row:?}");
        assert!(n("throughput") > 0.0, "{row:?}");
        let service = n("service_ms");
        assert!(
            (service - 1000.0 * n("workers") / batch).abs() < 0.001 + 0.01 * service,
            "service time is workers/batch: {row:?}"
        );
        // Both columns are rounded: service_ms to 0.0005 of at least 0.1.
        let ratio = n("p99_ms") / service;
        assert!(
            (n("p99_per_service") - ratio).abs() <= 0.051 + 0.01 * ratio,
            "{row:?}"
        );
        let sustainable = n("p99_ms") < 1000.0 && n("throughput") >= 0.95 * rate;
        assert_eq!(n("sustainable") == 1.0, sustainable, "{row:?}");
    }
    for w in ["1", "2"] {
        let of: Vec<&Vec<String>> = rows.iter().filter(|r| r[0] == w).collect();
        assert_eq!(of.len(), 2, "{rows:?}");
        let (low, high) = (of[0], of[1]);
        assert!(num(low, &header, "load") < num(high, &header, "load"));
        // A quarter of capacity is kept up with; three times as much as
        // the workers manage builds a backlog that shows in the p99.
        assert!(
            num(low, &header, "throughput") >= 0.5 * num(low, &header, "rate"),
            "{low:?}"
        );
        assert!(
            num(high, &header, "p99_ms") > num(low, &header, "p99_ms"),
            "{rows:?}"
        );
    }
    assert_png(&out.path().join("stream-rate.png"));
    assert!(stdout.contains("sustainable"), "table:\n{stdout}");
    // The floor under every latency: the machine's wake-up delay and steal.
    assert!(stdout.contains("µs at p99"), "table:\n{stdout}");
    assert!(stdout.contains("% of the CPU time"), "table:\n{stdout}");
}

#[test]
fn stream_faults_crashes_straggles_kills_and_measures_recovery() {
    common::need_redis();
    let out = tempfile::tempdir().unwrap();
    let stdout = experiment("stream-faults", out.path());
    let (header, rows) = read_csv(&out.path().join("stream-faults.csv"));
    assert_eq!(
        header.join(","),
        "phase,event,at_s,baseline_p99_ms,peak_p99_ms,recovery_s,target_s,met"
    );
    let phase =
        |name: &str| -> Vec<&Vec<String>> { rows.iter().filter(|r| r[0] == name).collect() };
    let crash = phase("crash");
    assert_eq!(crash.len(), 1, "the crash fires once per job: {rows:?}");
    assert!(
        crash[0][1].starts_with("crash (worker=0,crash=after-count,file="),
        "{rows:?}"
    );
    assert_eq!(phase("straggler").len(), 1, "{rows:?}");
    let kills = phase("kill-every");
    assert!(!kills.is_empty(), "kill-every killed no worker: {rows:?}");
    assert!(
        kills.iter().all(|r| r[1].starts_with("kill (worker ")),
        "{rows:?}"
    );
    let mut last = -1.0;
    for row in &rows {
        let at = num(row, &header, "at_s");
        assert!(at > last, "faults in time order on one axis: {rows:?}");
        last = at;
        assert!(num(row, &header, "baseline_p99_ms") > 0.0, "{row:?}");
        let recovery = &row[column(&header, "recovery_s")];
        let met = &row[column(&header, "met")];
        match recovery.parse::<f64>() {
            Ok(s) => {
                assert!(s >= 0.0, "{row:?}");
                let within = s <= num(row, &header, "target_s");
                assert_eq!(met == "yes", within, "{row:?}");
            }
            Err(_) => assert_eq!((recovery.as_str(), met.as_str()), ("never", "no")),
        }
    }
    assert_png(&out.path().join("stream-faults.png"));
    assert!(stdout.contains("recovery"), "table:\n{stdout}");
}

/// The backpressure experiment's rows, by mode.
fn backpressure_rows(out: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    experiment("backpressure", out);
    let (header, rows) = read_csv(&out.join("backpressure.csv"));
    assert_eq!(
        header.join(","),
        "backpressure,rate,max_lag_limit,batch,p50_ms,p99_ms,max_lag,throttled_ms,effective_rate,throughput"
    );
    let modes: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(modes, ["none", "pause", "adaptive"]);
    (header, rows)
}

#[test]
fn backpressure_none_pause_adaptive_over_capacity() {
    common::need_redis();
    let out = tempfile::tempdir().unwrap();
    let (header, rows) = backpressure_rows(out.path());
    for row in &rows {
        let n = |c| num(row, &header, c);
        assert!(n("p99_ms") >= n("p50_ms"), "{row:?}");
        assert!(n("throughput") > 0.0, "{row:?}");
        assert!(n("max_lag_limit") >= 10.0 && n("batch") >= 1.0, "{row:?}");
        // Files held back are injected late, never more than asked.
        assert!(n("effective_rate") <= n("rate") * 1.01, "{row:?}");
        let throttled = n("throttled_ms");
        match row[0].as_str() {
            "none" => assert_eq!(throttled, 0.0, "none never holds back: {row:?}"),
            _ => assert!(throttled > 0.0, "over capacity it must hold back: {row:?}"),
        }
    }
    assert_png(&out.path().join("backpressure.png"));
}

/// The pause source promises a queue under max-lag plus one batch (it
/// reads the depth at every tick).
#[test]
fn backpressure_pause_keeps_the_queue_under_max_lag_plus_a_batch() {
    common::need_redis();
    let out = tempfile::tempdir().unwrap();
    let (header, rows) = backpressure_rows(out.path());
    let pause = &rows[1];
    let n = |c| num(pause, &header, c);
    assert!(n("max_lag") <= n("max_lag_limit") + n("batch"), "{pause:?}");
}

#[test]
fn an_unwritable_out_fails_at_once_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    let out = common::wordcount(&[
        "experiment",
        "skew",
        "--out",
        file.join("sub").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot create the output directory"),
        "{stderr}"
    );
}

#[test]
fn partitions_shows_a_cut_instance_fall_behind_and_catch_up() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: partitions cuts instances off with iptables, which needs root");
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let stdout = experiment("partitions", out.path());
    let (header, rows) = read_csv(&out.path().join("partitions.csv"));
    assert!(!rows.is_empty(), "no cycle began: {stdout}");
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(num(row, &header, "cycle"), i as f64, "{row:?}");
        // Cycle i isolates instance i mod 3.
        assert_eq!(num(row, &header, "instance"), (i % 3) as f64, "{row:?}");
        let (cut, healed) = (num(row, &header, "cut_s"), num(row, &header, "healed_s"));
        assert!(healed > cut, "{row:?}");
        // The job's last sample has every instance even.
        assert!(
            num(row, &header, "even_at_s") >= num(row, &header, "most_behind_at_s"),
            "{row:?}"
        );
    }
    assert!(
        stdout.contains("all three held the same counts as a serial count"),
        "{stdout}"
    );
    assert_png(&out.path().join("partitions.png"));
}

#[test]
fn checkpoint_recovery_restarts_instances_and_stays_exact() {
    let out = tempfile::tempdir().unwrap();
    let stdout = experiment("checkpoint-recovery", out.path());
    let (header, rows) = read_csv(&out.path().join("checkpoint-recovery.csv"));
    assert!(!rows.is_empty(), "{stdout}");
    assert!(
        rows.iter().any(|r| num(r, &header, "restarts") > 0.0),
        "no instance was restarted: {rows:?}"
    );
    // Every job was checked against a serial count, or the experiment
    // failed.
    assert!(stdout.contains("against a serial count"), "{stdout}");
    assert_png(&out.path().join("checkpoint-recovery.png"));
}
