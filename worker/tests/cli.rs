#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report
//! The command line of the real `wordcount` binary: bad values refused
//! before anything starts (exit 2, the flag and the problem named).

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use wordcount_protocol::exit;

/// The small corpus of the repository.
const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/corpus");

/// Runs `wordcount run --input CORPUS` with `args`, which it must refuse
/// within a second (so it started nothing: no Redis, no worker), and
/// returns its exit code and stderr. A run that does start is killed (its
/// children die with it) and fails the test.
fn run_refused(args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(bin())
        .args(["run", "--input", CORPUS])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(1) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("wordcount run {args:?} was not refused within a second");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn each_bound_is_a_usage_error_that_names_the_flag_and_the_problem() {
    let cases: &[(&[&str], &str, &str)] = &[
        (
            &["--workers", "100000"],
            "--workers",
            "at most 1000 worker processes",
        ),
        (&["--workers", "1001"], "--workers", "at most 1000"),
        (&["--workers", "0"], "--workers", "at least 1 worker"),
        (&["--workers", "-1"], "--workers", "at least 1 worker"),
        (&["--kill-every", "0s"], "--kill-every", "at least 10ms"),
        (&["--kill-every", "9ms"], "--kill-every", "at least 10ms"),
        (
            &["--redis-kill-every", "0s"],
            "--redis-kill-every",
            "at least 100ms",
        ),
        (
            &["--redis-kill-every", "99ms"],
            "--redis-kill-every",
            "at least 100ms",
        ),
        (
            &["--claim-timeout", "0"],
            "--claim-timeout",
            "at least 10 ms",
        ),
        (
            &["--claim-timeout", "9"],
            "--claim-timeout",
            "at least 10 ms",
        ),
        (
            &["--claim-timeout", "-1"],
            "--claim-timeout",
            "at least 10 ms",
        ),
        (
            &["--snapshot-interval", "5ms"],
            "--snapshot-interval",
            "at least 10ms",
        ),
        (
            &["--stream", "--rate", "-1"],
            "--rate",
            "-1 is not a rate above 0",
        ),
        (&["--stream", "--max-lag", "-1"], "--max-lag", "at least 1"),
        (
            &["--stream", "--autoscale", "1..2", "--target-lag", "-1"],
            "--target-lag",
            "0 files or more",
        ),
        (
            &["--stream", "--autoscale", "1..1001"],
            "--autoscale",
            "at most 1000 worker processes",
        ),
        (&["--top", "-1"], "--top", "0 or more"),
        (
            &["--redis", "crdt", "--partition-every", "0s,for=1s"],
            "--partition-every",
            "at least 100ms",
        ),
        (
            &["--redis", "crdt", "--partition-every", "99ms,for=1s"],
            "--partition-every",
            "at least 100ms",
        ),
        (
            &["--redis", "crdt", "--sites", "0"],
            "--sites",
            "2 sites or more",
        ),
        (&["--redis", "raft", "--replicas", "4"], "--replicas", "odd"),
        (
            &["--redis", "raft", "--replicas", "-3"],
            "--replicas",
            "odd",
        ),
    ];
    for (args, flag, problem) in cases {
        let (code, err) = run_refused(args);
        assert_eq!(code, Some(exit::USAGE), "{args:?}: {err}");
        assert!(
            err.contains(flag) && err.contains(problem),
            "{args:?}: no {flag:?} and {problem:?} in: {err}"
        );
        assert!(!err.contains("unexpected argument"), "{args:?}: {err}");
    }
}

#[test]
fn the_least_values_allowed_are_accepted() {
    // Each flag at its bound gets past clap: the run then stops at the
    // input, which is not a directory (exit 1), before anything starts.
    for args in [
        &["--workers", "1000"][..],
        &["--kill-every", "10ms"],
        &["--redis-kill-every", "100ms"],
        &["--claim-timeout", "10"],
        &["--snapshot-interval", "0s"],
        &["--snapshot-interval", "10ms"],
        &["--top", "0"],
    ] {
        let out = Command::new(bin())
            .args(["run", "--input", "/no/such/input"])
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(exit::ERROR), "{args:?}: {err}");
        assert!(err.contains("/no/such/input"), "{args:?}: {err}");
    }
}

#[test]
fn help_states_each_bound() {
    let out = ok(&wordcount(&["run", "--help"])).stdout.clone();
    let help = String::from_utf8(out).unwrap();
    for bound in [
        "1 to 1000",
        "at least 10: a claim timeout of 0",
        "At least 10ms",
        "At least 100ms",
        "else at least 10ms",
        "(at least 100ms)",
        "(2 or more)",
        "odd, from 3",
        "(above 0)",
        "MAX <= 1000",
    ] {
        assert!(help.contains(bound), "no {bound:?} in wordcount run --help");
    }
}
