#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report
//! Every fault schedule ends exact or with a verdict, at a real corpus's
//! size (hundreds of thousands of distinct words, files of megabytes), and
//! every fault asked for fires or is named. The soak at the end runs every
//! Redis mode under combined faults with fixed seeds; `bench/soak.sh`
//! runs a longer one.

mod common;
use common::*;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use wordcount_count::generate::CorpusSpec;
use wordcount_job::report::Report;

/// Files of 4 MB drawn from a vocabulary of a million words: over 500,000
/// distinct words in all, and a result that takes Redis tenths of a
/// second to write and to load.
fn large_vocabulary() -> tempfile::TempDir {
    corpus_of(CorpusSpec {
        files: 8,
        bytes_per_file: 4_000_000,
        vocabulary: 1_000_000,
        zipf: 0.8,
        seed: 7,
        ..Default::default()
    })
}

/// `wordcount run` with `args`: its exit code, stdout and stderr, and how
/// long it took.
/// Afterwards, none of its processes (workers, redis-server) is left.
fn run(input: &Path, args: &[&str]) -> (Option<i32>, String, String, Duration) {
    let started = Instant::now();
    let marker = format!("{}-{:?}", std::process::id(), std::thread::current().id());
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(bin())
        .arg("run")
        .arg("--input")
        .arg(input)
        .args(args)
        .env("WORDCOUNT_TEST_MARKER", &marker)
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    assert_none_left(&marker, tmp.path());
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        started.elapsed(),
    )
}

/// Runs a job that must end exact; returns its report and stderr.
fn exact(input: &Path, args: &[&str]) -> (Report, String) {
    let mut all = vec!["--json", "--verify"];
    all.extend_from_slice(args);
    let (code, out, err, took) = run(input, &all);
    assert_eq!(code, Some(0), "{args:?} failed after {took:?}:\n{err}");
    assert!(err.contains("verified"), "{err}");
    (serde_json::from_str(&out).unwrap(), err)
}

#[test]
fn at_enqueue_fires_on_a_job_of_ten_files() {
    need_redis();
    let dir = corpus(10, 20_000);
    let (report, err) = exact(dir.path(), &["--redis-fault", "at=enqueue"]);
    let job = report.job.unwrap();
    assert_eq!(job.redis_restarts, 1, "{err}");
    assert_eq!(job.faults_fired_specs, ["at=enqueue"], "{err}");
    assert!(job.faults_unfired.is_empty());
}

#[test]
fn a_fault_that_cannot_fire_is_named() {
    need_redis();
    let dir = corpus(6, 20_000);
    let (report, err) = exact(
        dir.path(),
        &[
            "--workers",
            "2",
            "--fault",
            "worker=1,crash=after-commit,file=500",
            "--fault",
            "worker=0,slow=2",
        ],
    );
    let job = report.job.unwrap();
    assert_eq!(
        job.faults_unfired,
        ["worker=1,crash=after-commit,file=500"],
        "{err}"
    );
    assert_eq!(job.faults_fired_specs, ["worker=0,slow=2"]);
    // The summary says it too.
    let (code, _, err, _) = run(
        dir.path(),
        &[
            "--workers",
            "2",
            "--fault",
            "worker=1,crash=after-read,file=500",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("fault worker=1,crash=after-read,file=500 never fired: the job ended at"),
        "{err}"
    );
}

#[test]
fn the_seed_is_printed_and_taken() {
    need_redis();
    let dir = corpus(6, 20_000);
    let (report, err) = exact(
        dir.path(),
        &["--workers", "2", "--kill-every", "50ms", "--seed", "42"],
    );
    assert_eq!(report.job.unwrap().seed, Some(42));
    assert!(
        !err.contains("seed 42 ("),
        "--json prints it in the JSON only"
    );
    let (code, _, err, _) = run(dir.path(), &["--workers", "2", "--seed", "42"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("seed 42 (--seed 42 replays"), "{err}");
}

/// Redis killed every 300 ms with no snapshot, so each restart comes back
/// empty, under a job that needs seconds: the job cannot move, and says
/// so with the figures, within a minute. (Snapshots every second and kills
/// every 300 ms are not such a schedule: a snapshot lands now and then
/// between kills, and the job crawls to its end.)
#[test]
fn a_schedule_that_leaves_no_room_stops_with_a_verdict() {
    need_redis();
    let dir = large_vocabulary();
    let (code, _, err, took) = run(
        dir.path(),
        &[
            "--workers",
            "2",
            "--fault",
            "worker=0,slow=5",
            "--fault",
            "worker=1,slow=5",
            "--redis-kill-every",
            "300ms",
            "--seed",
            "1",
        ],
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("no progress: 10 restarts in a row came back from no snapshot (empty)"),
        "{err}"
    );
    assert!(err.contains("each incarnation served"), "{err}");
    assert!(
        err.contains("no snapshot completed within an incarnation"),
        "{err}"
    );
    assert!(took < Duration::from_secs(60), "the verdict took {took:?}");
}

/// The schedule at the seed's scale: Redis snapshotted every 200
/// ms and killed 700 ms into each incarnation, workers crashing at every
/// point, a straggler and a worker killed every 300 ms. Exact, and each
/// restart costs what it rolled back: the merge never starts over.
#[test]
fn redis_killed_every_700ms_at_scale_ends_exact() {
    need_redis();
    let dir = large_vocabulary();
    let (report, err) = exact(
        dir.path(),
        &[
            "--workers",
            "3",
            "--claim-timeout",
            "300",
            "--fault",
            "worker=0,crash=mid-stage",
            "--fault",
            "worker=1,crash=after-commit",
            "--fault",
            "worker=2,crash=after-read,file=2",
            "--fault",
            "worker=2,slow=30",
            "--fault",
            "worker=0,slow=10",
            "--fault",
            "worker=1,slow=10",
            "--kill-every",
            "300ms",
            "--snapshot-interval",
            "200ms",
            "--redis-kill-every",
            "700ms",
            "--redis-down",
            "200ms",
            "--seed",
            "3",
        ],
    );
    let job = report.job.unwrap();
    assert!(report.distinct >= 500_000, "{} distinct", report.distinct);
    assert!(job.redis_restarts >= 2, "{err}");
    assert!(
        !err.contains("merging all its results again"),
        "a restart made the merge start over:\n{err}"
    );
    // One warning when an outage starts and one when it ends, from the
    // driver alone.
    let warnings = err.matches("Redis unavailable").count() as u64;
    assert!(
        warnings <= job.redis_restarts + 1,
        "{warnings} outage warnings for {} restarts:\n{err}",
        job.redis_restarts
    );
}

/// RedisRaft under a replica killed every second (down 300 ms), at scale:
/// the schedule keeps at most one replica down or catching up, so the
/// cluster always has a leader and nothing is redone.
#[test]
fn raft_replicas_killed_every_second_at_scale_end_exact() {
    need_redis();
    let Some(module) = redisraft() else { return };
    let dir = large_vocabulary();
    for seed in ["1", "2"] {
        let (report, err) = exact(
            dir.path(),
            &[
                "--redis",
                "raft",
                "--redisraft-module",
                module.to_str().unwrap(),
                "--replicas",
                "3",
                "--workers",
                "2",
                "--fault",
                "worker=0,slow=5",
                "--redis-kill-every",
                "1s",
                "--redis-down",
                "300ms",
                "--seed",
                seed,
            ],
        );
        let job = report.job.unwrap();
        assert_eq!(job.files_redone, 0, "seed {seed}: {err}");
    }
}

/// Three CRDT sites on the large vocabulary, each instance snapshotted and
/// killed, workers crashing, a straggler, and (as root) a random site cut
/// from a random instance every second: exact, and every instance ends
/// knowing every file.
#[test]
fn crdt_sites_under_kills_and_cuts_at_scale_end_exact() {
    need_redis();
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let dir = large_vocabulary();
    let mut args = vec![
        "--redis",
        "crdt",
        "--sites",
        "3",
        "--workers",
        "1",
        "--fault",
        "worker=0,crash=after-count",
        "--fault",
        "worker=0,slow=10",
        "--snapshot-interval",
        "200ms",
        "--redis-kill-every",
        "1s",
        "--seed",
        "4",
    ];
    if root {
        args.extend(["--partition-every", "1s,for=500ms"]);
    } else {
        eprintln!("partitions skipped: they need root (network namespaces and iptables)");
    }
    let (report, err) = exact(dir.path(), &args);
    let job = report.job.as_ref().unwrap();
    for i in report.instances.as_deref().unwrap_or_default() {
        assert_eq!(i.files_known, job.files, "{i:?}\n{err}");
    }
}
