#![cfg(feature = "experiments")]
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
