#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report
//! The command line of the real `wordcount` binary: bad values refused
//! before anything starts (exit 2, the flag and the problem named), logs
//! without terminal escapes when stderr is not a terminal, and SIGTERM
//! ending a run like Ctrl-C.

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

#[test]
fn partitions_name_the_tools_and_the_package_before_anything_starts() {
    // No ip or iptables on PATH (an empty one): refused, naming them and
    // the Debian packages, before any Redis starts.
    let empty = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = Command::new(bin())
        .args(["run", "--input", CORPUS, "--redis", "crdt"])
        .args(["--partition", "sites=0,redis=1,at=0s,for=1s"])
        .env("PATH", empty.path())
        .output()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(exit::ERROR), "{err}");
    assert!(
        err.contains("missing: ")
            && err.contains("ip")
            && err.contains("iptables")
            && err.contains("apt-get install iproute2 iptables"),
        "{err}"
    );
    assert!(!err.contains("redis-server"), "{err}");
}

#[test]
fn stderr_to_a_file_has_no_terminal_escapes() {
    need_redis();
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("stderr.log");
    let status = Command::new(bin())
        .args(["run", "--input", CORPUS, "--workers", "2", "--verify"])
        .args(["--kill-every", "200ms"])
        // Info: the runner's and the workers' log lines, which a terminal
        // would get in colour.
        .env("WORDCOUNT_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .status()
        .unwrap();
    let err = std::fs::read(&log).unwrap();
    let text = String::from_utf8_lossy(&err);
    assert!(status.success(), "{status}: {text}");
    assert!(text.contains("verified"), "{text}");
    assert!(text.contains(" INFO "), "no log line to check in: {text}");
    assert!(
        !err.contains(&0x1b),
        "an escape byte in stderr that is not a terminal: {text:?}"
    );
}

/// SIGTERM to the runner alone (`kill PID`), or to its whole process group
/// (`kill -TERM -PGID`, as a terminal's Ctrl-C sends SIGINT): the run ends
/// as with Ctrl-C, exit 130 and `wordcount: interrupted`, with no process
/// or temporary file left, and no log of the Redis it tore down (the
/// driver thread's "Redis unavailable, retrying" once was).
#[test]
fn sigterm_ends_a_run_like_ctrl_c() {
    need_redis();
    let dir = corpus(20, 300_000);
    for group in [false, true] {
        let marker = format!("cli-{}-{group}", std::process::id());
        let tmp = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(bin());
        cmd.args(["run", "--input", dir.path().to_str().unwrap()])
            .args(["--workers", "2", "--tokenizer", "whitespace"])
            .args([
                "--fault",
                "worker=0,slow=200",
                "--fault",
                "worker=1,slow=200",
            ])
            .env("WORDCOUNT_TEST_MARKER", &marker)
            .env("TMPDIR", tmp.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if group {
            std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        }
        let child = cmd.spawn().unwrap();
        // The runner, redis-server and two workers.
        let started = Instant::now();
        while marked_processes(&marker, tmp.path()).len() < 4
            && started.elapsed() < Duration::from_secs(10)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(300));
        let pid = child.id() as libc::pid_t;
        // SAFETY: kill(2) on our child, or on the group it leads.
        unsafe { libc::kill(if group { -pid } else { pid }, libc::SIGTERM) };
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(exit::INTERRUPTED), "{err}");
        assert!(err.contains("wordcount: interrupted"), "{err}");
        assert!(!err.contains("unavailable"), "group {group}: {err}");
        assert_none_left(&marker, tmp.path());
        let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
        assert!(left.is_empty(), "temporary files left behind: {left:?}");
    }
}
