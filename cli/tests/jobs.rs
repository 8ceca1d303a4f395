#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report
//! `wordcount run` with a real redis-server and real worker processes: the
//! counts equal the serial count under every fault.

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use wordcount_job::backend::Backend;

fn same_result(report: &wordcount_job::report::Report, serial: &wordcount_job::report::Report) {
    assert_eq!(report.words, serial.words);
    assert_eq!(report.distinct, serial.distinct);
    assert_eq!(report.top, serial.top);
}

#[test]
fn plain_job_equals_the_serial_count() {
    need_redis();
    let dir = corpus(8, 100_000);
    for tok in ["alnum", "whitespace"] {
        let r = run_verified(dir.path(), &["--workers", "3", "--tokenizer", tok]);
        same_result(&r, &serial(dir.path(), tok));
        let job = r.job.unwrap();
        assert_eq!(job.files, 11);
        assert_eq!(job.worker_restarts, 0);
        assert!(r.phases.is_some());
    }
}

#[test]
fn every_crash_point_leaves_exact_counts() {
    need_redis();
    let dir = corpus(6, 100_000);
    let want = serial(dir.path(), "alnum");
    for point in ["after-read", "after-count", "mid-stage", "after-commit"] {
        let fault = format!("worker=0,crash={point},file=2");
        // One worker, so that it surely reaches its second file; its
        // replacement must steal the file the crash left pending.
        let r = run_verified(
            dir.path(),
            &[
                "--workers",
                "1",
                "--claim-timeout",
                "200",
                "--fault",
                &fault,
            ],
        );
        same_result(&r, &want);
        let job = r.job.unwrap();
        assert_eq!(
            job.worker_restarts, 1,
            "{point}: the crashed worker is replaced once"
        );
        assert_eq!(job.faults_fired, 1, "{point}: the fault fires once per job");
    }
}

#[test]
fn a_straggler_is_stolen_from_and_its_late_commit_changes_nothing() {
    need_redis();
    let dir = corpus(4, 2_000_000);
    let r = run_verified(
        dir.path(),
        &[
            "--workers",
            "2",
            "--claim-timeout",
            "100",
            "--fault",
            "worker=0,slow=40",
        ],
    );
    same_result(&r, &serial(dir.path(), "alnum"));
    assert!(
        r.job.unwrap().commits_ignored >= 1,
        "the straggler's commit should have been ignored"
    );
}

#[test]
fn kill_every_and_all_faults_together_leave_exact_counts() {
    need_redis();
    let dir = corpus(40, 200_000);
    let r = run_verified(
        dir.path(),
        &[
            "--workers",
            "3",
            "--claim-timeout",
            "150",
            "--kill-every",
            "150ms",
            "--fault",
            "worker=0,crash=after-count,file=1",
            "--fault",
            "worker=1,crash=mid-stage,file=2",
            "--fault",
            "worker=2,slow=3",
        ],
    );
    same_result(&r, &serial(dir.path(), "alnum"));
    let job = r.job.unwrap();
    assert!(job.workers_killed >= 1, "kill-every killed nobody: {job:?}");
    assert!(job.faults_fired >= 1, "no crash fault fired: {job:?}");
    assert!(job.worker_restarts >= job.faults_fired, "{job:?}");
}

#[test]
fn per_word_commits_count_right_without_faults() {
    need_redis();
    let dir = corpus(3, 50_000);
    let r = run_verified(dir.path(), &["--workers", "2", "--commit", "per-word"]);
    same_result(&r, &serial(dir.path(), "alnum"));
}

#[test]
fn bad_input_fails_with_a_message_that_names_it() {
    need_redis();
    let out = wordcount(&["run", "--input", "/no/such/input"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/input"));

    let out = wordcount(&[
        "run",
        "--input",
        "/tmp",
        "--fault",
        "worker=0,crash=sideways",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown crash point"));
}

#[test]
fn a_fault_for_a_worker_that_does_not_exist_is_refused() {
    let dir = corpus(1, 1000);
    let input = dir.path().to_str().unwrap();
    let out = wordcount(&[
        "run",
        "--input",
        input,
        "--workers",
        "2",
        "--fault",
        "worker=5,crash=after-read",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--fault worker=5,crash=after-read,file=1: there is no worker 5 (--workers 2, numbered 0 to 1)"),
        "{err}"
    );
    let out = wordcount(&[
        "run",
        "--input",
        input,
        "--fault",
        "worker=0,crash=after-read,file=0",
    ]);
    assert_eq!(out.status.code(), Some(2), "a bad flag is a usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("file counts from 1"));
}

/// A job whose input holds a file that cannot be read (a dangling link):
/// every other file is counted and reported, and the policy decides.
#[test]
fn an_unreadable_file_fails_the_job_after_counting_the_rest() {
    need_redis();
    let dir = corpus(4, 20_000);
    std::os::unix::fs::symlink("/no/such/target", dir.path().join("broken.txt")).unwrap();
    let input = dir.path().to_str().unwrap();

    let out = wordcount(&[
        "run",
        "--input",
        input,
        "--workers",
        "2",
        "--verify",
        "--json",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(wordcount_protocol::exit::UNREADABLE),
        "{err}"
    );
    assert!(
        err.contains("1 file(s) could not be read: broken.txt ("),
        "{err}"
    );
    assert!(
        err.contains("verified"),
        "the readable files are counted exactly: {err}"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["words"].as_u64().unwrap() > 0, "totals are reported");

    let out = wordcount(&["run", "--input", input, "--on-unreadable", "skip"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("warning: 1 file(s) could not be read: broken.txt"),
        "{err}"
    );
}

#[test]
fn an_empty_input_completes_with_no_words() {
    need_redis();
    let dir = tempfile::tempdir().unwrap();
    let r = run_verified(dir.path(), &["--workers", "1"]);
    assert_eq!((r.words, r.distinct, r.top.len()), (0, 0, 0));
}

#[test]
fn a_file_that_vanishes_after_enqueueing_is_named_as_unreadable() {
    need_redis();
    let dir = corpus(3, 10_000);
    let server = wordcount_lab::local::RedisServer::start(None).unwrap();
    let driver = spawn_driver(&server, dir.path(), Duration::from_secs(5), 5);
    // Enqueued (no worker yet), then the file goes away.
    let mut probe = wordcount_job::backend::Stream::open(
        &server.url_with_password(),
        wordcount_protocol::DEFAULT_PREFIX,
        Duration::from_secs(5),
    )
    .unwrap();
    let started = Instant::now();
    while !probe.state().progress().unwrap().enqueue_done {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "nothing enqueued"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    std::fs::remove_file(dir.path().join("zipf/file-00001.txt")).unwrap();
    let status = worker_command(&server, dir.path(), 0).status().unwrap();
    assert!(
        status.success(),
        "the worker records the failure and finishes"
    );
    let outcome = driver.join().unwrap().unwrap();
    assert_eq!(outcome.progress.files_failed, 1);
    assert_eq!(outcome.failures.len(), 1);
    let (path, error) = &outcome.failures[0];
    assert_eq!(path, "zipf/file-00001.txt");
    assert!(error.contains("cannot open"), "{error}");
}

#[test]
fn missing_redis_server_names_the_package() {
    let dir = corpus(1, 1000);
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(bin())
        .args(["run", "--input", dir.path().to_str().unwrap()])
        .env("PATH", empty.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("redis-server") && err.contains("apt-get install redis-server"),
        "{err}"
    );
}

#[test]
fn nothing_is_left_behind_after_a_run_or_a_ctrl_c() {
    need_redis();
    let dir = corpus(30, 300_000);
    for interrupt in [false, true] {
        let marker = format!("{}-{interrupt}", std::process::id());
        let tmp = tempfile::tempdir().unwrap();
        let child = Command::new(bin())
            .args([
                "run",
                "--input",
                dir.path().to_str().unwrap(),
                "--workers",
                "2",
            ])
            .args(["--fault", "worker=0,slow=1000"])
            .env("WORDCOUNT_TEST_MARKER", &marker)
            .env("TMPDIR", tmp.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if interrupt {
            // Wait until the workers run, then Ctrl-C (SIGINT to the runner).
            let started = Instant::now();
            while marked_processes(&marker, tmp.path()).len() < 4
                && started.elapsed() < Duration::from_secs(10)
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        }
        let out = child.wait_with_output().unwrap();
        if interrupt {
            assert_eq!(
                out.status.code(),
                Some(130),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        } else {
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert_none_left(&marker, tmp.path());
        let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
        assert!(left.is_empty(), "temporary files left behind: {left:?}");
    }
}

/// A command on `server`, as a test sees it.
fn redis_cmd(
    server: &wordcount_lab::local::RedisServer,
    args: &[&str],
) -> redis::RedisResult<redis::Value> {
    let mut c = redis::Client::open(server.url_with_password())?.get_connection()?;
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(&mut c)
}

/// Redis losing the function library mid-job (as after a restart from an
/// empty dataset): every client loads it again and the counts stay exact.
#[test]
fn a_function_library_deleted_mid_job_is_loaded_again() {
    need_redis();
    let dir = corpus(12, 300_000);
    let server = wordcount_lab::local::RedisServer::start(None).unwrap();
    // Files that take tens of ms each, and a claim timeout that makes a
    // worker commit each one alone (see `worker::MAX_BATCH_AGE`): commits
    // all through the job, each finding the library deleted again.
    let driver = spawn_driver(&server, dir.path(), Duration::from_millis(200), 5);
    let mut workers = spawn_slow_workers(&server, dir.path(), 2, 100);
    let mut deleted = 0;
    while !driver.is_finished() {
        if redis_cmd(
            &server,
            &["FUNCTION", "DELETE", wordcount_protocol::library::NAME],
        )
        .is_ok()
        {
            deleted += 1;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        deleted >= 3,
        "the library was deleted only {deleted} time(s)"
    );
    let outcome = driver
        .join()
        .unwrap()
        .expect("the driver loads the library again");
    for w in &mut workers {
        assert!(w.wait().unwrap().success(), "a worker did not finish");
    }
    let want = serial(dir.path(), "alnum");
    assert_eq!(
        (outcome.report.words, outcome.report.distinct),
        (want.words, want.distinct)
    );
    assert_eq!(outcome.report.top, want.top[..5]);
}

/// A Redis that will not load the library (no FUNCTION for this user) is
/// named as the cause at once, not retried until the patience runs out.
#[test]
fn a_redis_that_refuses_the_function_library_is_named() {
    need_redis();
    let dir = corpus(1, 1000);
    let server = wordcount_lab::local::RedisServer::start(None).unwrap();
    redis_cmd(&server, &["ACL", "SETUSER", "default", "-function"]).unwrap();
    let started = Instant::now();
    let out = worker_command(&server, dir.path(), 0).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Redis refused to load the function library \"wordcount\""),
        "{err}"
    );
    assert!(err.contains("no permissions"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10), "not retried");
}
