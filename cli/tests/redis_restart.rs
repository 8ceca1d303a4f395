#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report
//! Redis killed with SIGKILL mid-job and restarted from its last RDB
//! snapshot: what was committed after the snapshot is redone, and the
//! counts still equal the serial count.

mod common;
use common::*;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use wordcount_count::engine::{count_files, Parallelism};
use wordcount_job::backend::{Backend, Stream};
use wordcount_lab::local::RedisServer;
use wordcount_protocol::{Tokenizer, DEFAULT_PREFIX};

fn connect(url: &str) -> redis::Connection {
    redis::Client::open(url).unwrap().get_connection().unwrap()
}

fn persistence(url: &str) -> HashMap<String, String> {
    let mut c = connect(url);
    let info: String = redis::cmd("INFO").arg("persistence").query(&mut c).unwrap();
    info.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ok() {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_redis_restarted_from_its_snapshot_loses_nothing() {
    need_redis();
    let dir = corpus(40, 300_000);
    // No snapshot but the test's own: what the restart loses is certain.
    let mut server = RedisServer::start(None).unwrap();
    let url = server.url_with_password();
    let driver = spawn_driver(&server, dir.path(), Duration::from_millis(300), 20);
    let mut workers = spawn_slow_workers(&server, dir.path(), 2, 150);
    let mut c = connect(&url);
    let mut probe = Stream::open(&url, DEFAULT_PREFIX, Duration::from_secs(5)).unwrap();

    // A snapshot with commits in it, taken while writes are paused: it
    // holds exactly the files done then.
    wait_for("commits", Duration::from_secs(30), || {
        probe.state().progress().unwrap().files_done >= 2
    });
    pause_writes(&mut c);
    let in_snapshot = probe.state().progress().unwrap().files_done;
    redis::cmd("SAVE").exec(&mut c).unwrap();
    redis::cmd("CLIENT").arg("UNPAUSE").exec(&mut c).unwrap();

    // Commits after it, then the kill, with writes paused so that `before`
    // is every commit there was. A worker that finished a file while Redis
    // was down commits it on the restarted Redis at once, maybe before we
    // look: one file each at most (the next takes it 150 times a count), so
    // three commits after the snapshot make the rollback certain to show.
    wait_for(
        "commits after the snapshot",
        Duration::from_secs(30),
        || probe.state().progress().unwrap().files_done >= in_snapshot + 3,
    );
    pause_writes(&mut c);
    let before = probe.state().progress().unwrap();
    assert!(
        !before.is_done(),
        "the job ended before the kill; make it longer"
    );
    server.kill();
    std::thread::sleep(Duration::from_millis(300));
    server.restart().unwrap();
    let after = probe.state().progress().unwrap();
    assert!(
        after.files_done >= in_snapshot && after.files_done < before.files_done,
        "the restart should come back with the snapshot's {in_snapshot} files done \
         (and at most a commit a worker), not {} of {} before",
        after.files_done,
        before.files_done
    );

    let outcome = driver
        .join()
        .unwrap()
        .expect("the driver rides out the restart");
    for w in &mut workers {
        let started = Instant::now();
        while w.try_wait().unwrap().is_none() && started.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(20));
        }
        if w.try_wait().unwrap().is_none() {
            w.kill().unwrap();
            panic!("a worker was still running 20 s after the job");
        }
        assert!(w.wait().unwrap().success(), "a worker failed");
    }
    let got = probe.state().counts().unwrap();
    let files = wordcount_count::input::list(&[dir.path().to_path_buf()]).unwrap();
    let want = count_files(&files, Tokenizer::Alnum, Parallelism::Serial).unwrap();
    assert_eq!(got.first_difference(&want), None);
    assert_eq!(outcome.report.words, want.total());
}

/// Holds every client's writes (until `CLIENT UNPAUSE` or a kill).
fn pause_writes(c: &mut redis::Connection) {
    redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(60_000)
        .arg("WRITE")
        .exec(c)
        .unwrap();
}

/// Over 200,000 distinct words across many files, and Redis killed twice:
/// once mid-job, once while the driver writes the result. Each time it
/// comes back from its last snapshot, and the counts stay exact.
#[test]
fn a_large_vocabulary_survives_restarts_mid_job_and_while_the_result_is_written() {
    need_redis();
    let dir = corpus_of(wordcount_count::generate::CorpusSpec {
        files: 48,
        bytes_per_file: 200_000,
        vocabulary: 400_000,
        zipf: 0.3,
        ..Default::default()
    });
    let files = wordcount_count::input::list(&[dir.path().to_path_buf()]).unwrap();
    let want = count_files(&files, Tokenizer::Alnum, Parallelism::Serial).unwrap();
    assert!(
        want.distinct() >= 200_000,
        "only {} distinct words",
        want.distinct()
    );

    let mut server = RedisServer::start(Some(Duration::from_secs(1))).unwrap();
    let url = server.url_with_password();
    let driver = spawn_driver(&server, dir.path(), Duration::from_millis(300), 20);
    let mut workers = spawn_slow_workers(&server, dir.path(), 2, 200);

    // Mid-job: after a snapshot with commits in it, and more since.
    let mut probe = Stream::open(&url, DEFAULT_PREFIX, Duration::from_secs(5)).unwrap();
    let first = persistence(&url)["rdb_last_save_time"].clone();
    wait_for("commits in a snapshot", Duration::from_secs(30), || {
        let p = persistence(&url);
        p["rdb_last_save_time"] != first
            && p["rdb_bgsave_in_progress"] == "0"
            && probe.state().progress().unwrap().files_done > 4
    });
    std::thread::sleep(Duration::from_millis(300));
    let p = probe.state().progress().unwrap();
    assert!(
        !p.is_done(),
        "the job ended too soon; make it longer: {p:?}"
    );
    server.kill();
    server.restart().unwrap();

    // While the result is written: the counts are there, the summary not yet.
    let mut c = connect(&url);
    let keys = wordcount_protocol::Keys::default();
    let mut caught = false;
    let started = Instant::now();
    while !driver.is_finished() && started.elapsed() < Duration::from_secs(60) {
        let (counts, summary): (u64, bool) = redis::pipe()
            .cmd("ZCARD")
            .arg(&keys.counts)
            .cmd("EXISTS")
            .arg(&keys.summary)
            .query(&mut c)
            .unwrap_or((0, false));
        if counts > 0 && !summary {
            server.kill();
            server.restart().unwrap();
            caught = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(caught, "never saw the result being written");

    let outcome = driver
        .join()
        .unwrap()
        .expect("the driver rides out both restarts");
    for w in &mut workers {
        assert!(w.wait().unwrap().success(), "a worker failed");
    }
    assert_eq!(outcome.report.words, want.total());
    assert_eq!(outcome.report.distinct, want.distinct() as u64);
    assert_eq!(outcome.report.top, want.top(20));
    let mut probe = Stream::open(&url, DEFAULT_PREFIX, Duration::from_secs(5)).unwrap();
    assert_eq!(
        probe.state().counts().unwrap().first_difference(&want),
        None
    );
}

#[test]
fn a_stream_rides_out_a_redis_restart_and_counts_each_injection_once() {
    need_redis();
    let dir = tempfile::tempdir().unwrap();
    wordcount_count::generate::generate_tweets(
        dir.path(),
        &wordcount_count::generate::TweetSpec {
            files: 12,
            ..Default::default()
        },
    )
    .unwrap();
    let mut server = RedisServer::start(Some(Duration::from_secs(1))).unwrap();
    let url = server.url_with_password();
    let mut opts = driver_options(&server, dir.path(), Duration::from_millis(300), 20);
    opts.stream = Some(wordcount_job::source::StreamPlan {
        rate: 10.0,
        duration: Some(Duration::from_secs(4)),
        tick: Duration::from_millis(200),
        backpressure: wordcount_protocol::Backpressure::None,
        max_lag: 100,
    });
    let driver = spawn_driver_with(opts);
    let mut workers = spawn_slow_workers(&server, dir.path(), 2, 1);

    // Mid-stream, a snapshot with commits in it, and injections since: the
    // restart loses injections and commits, which must be made again. The
    // test takes the snapshot itself (SAVE, and none of Redis's own), so
    // that what it lacks is certain.
    let mut probe = Stream::open(&url, DEFAULT_PREFIX, Duration::from_secs(5)).unwrap();
    let mut c = connect(&url);
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("save")
        .arg("")
        .exec(&mut c)
        .unwrap();
    wait_for("commits", Duration::from_secs(20), || {
        probe.state().progress().unwrap().files_done > 2
    });
    redis::cmd("SAVE").exec(&mut c).unwrap();
    let saved = probe.state().progress().unwrap().files;
    wait_for(
        "injections after the snapshot",
        Duration::from_secs(20),
        || probe.state().progress().unwrap().files > saved,
    );
    assert!(
        !probe.state().progress().unwrap().enqueue_done,
        "the stream ended before the kill"
    );
    server.kill();
    server.restart().unwrap();

    let outcome = driver
        .join()
        .unwrap()
        .expect("the driver rides out the restart");
    for w in &mut workers {
        assert!(w.wait().unwrap().success(), "a worker failed");
    }
    let record = outcome.stream.expect("a stream's record");
    assert_eq!(record.injected.len(), 40);
    let s = outcome.report.stream.unwrap();
    assert_eq!((s.injected, s.committed), (40, 40));
    let files: Vec<_> = record
        .injected
        .iter()
        .map(|i| wordcount_count::input::InputFile {
            path: dir.path().join(&i.unit.path),
            size: i.unit.size,
        })
        .collect();
    let want = count_files(&files, Tokenizer::Alnum, Parallelism::Serial).unwrap();
    assert_eq!(
        probe.state().counts().unwrap().first_difference(&want),
        None
    );
    assert_eq!(outcome.report.words, want.total());
}

/// `wordcount run` kills Redis once at a hard moment; with no snapshot it
/// comes back empty, and the job redoes everything it had.
#[test]
fn redis_killed_while_enqueueing_or_after_the_last_commit_still_counts_exactly() {
    need_redis();
    // Many small files: enqueueing takes several round trips.
    let dir = corpus_of(wordcount_count::generate::CorpusSpec {
        files: 3000,
        bytes_per_file: 200,
        ..Default::default()
    });
    let want = serial(dir.path(), "alnum");
    let r = run_verified(
        dir.path(),
        &["--workers", "2", "--redis-fault", "at=enqueue"],
    );
    assert_eq!((r.words, &r.top), (want.words, &want.top));
    assert_eq!(r.job.unwrap().redis_restarts, 1);

    let r = run_verified(
        dir.path(),
        &["--workers", "2", "--redis-fault", "at=after-last-commit"],
    );
    assert_eq!((r.words, &r.top), (want.words, &want.top));
    let job = r.job.unwrap();
    assert_eq!(job.redis_restarts, 1);
    assert_eq!(
        job.files_redone, job.files,
        "no snapshot: every commit redone"
    );
}

#[test]
fn redis_killed_every_700ms_with_checkpoints_counts_exactly() {
    need_redis();
    let dir = corpus(10, 50_000);
    // A stream of 3 s: kills land whatever the build's speed, and each
    // rolls back less than a second of work.
    let r = run_verified(
        dir.path(),
        &[
            "--workers",
            "2",
            "--stream",
            "--rate",
            "20",
            "--duration",
            "3s",
            "--tick",
            "100ms",
            "--snapshot-interval",
            "100ms",
            "--redis-kill-every",
            "700ms",
            "--redis-down",
            "50ms",
        ],
    );
    let job = r.job.unwrap();
    assert!(job.redis_restarts >= 1, "{job:?}");
    assert!(job.snapshots >= 1, "{job:?}");
}

#[test]
fn a_file_whose_commit_a_restart_lost_is_taken_again_at_once() {
    need_redis();
    let dir = corpus(300, 2_000);
    // Kills often enough that some land after a commit and before the next
    // snapshot, leaving that file pending on its worker in the Redis that
    // comes back. With a claim timeout of a minute, only its own worker
    // taking it again at once lets the job end in seconds.
    let started = Instant::now();
    let r = run_verified(
        dir.path(),
        &[
            "--workers",
            "2",
            "--claim-timeout",
            "60000",
            "--snapshot-interval",
            "20ms",
            "--redis-kill-every",
            "100ms",
        ],
    );
    let took = started.elapsed();
    let job = r.job.unwrap();
    assert!(took < Duration::from_secs(40), "took {took:?}: {job:?}");
    assert_eq!(job.files, 303, "{job:?}");
}

/// The result goes in as a listpack, which Redis keeps as one (the limit
/// raised for that one `RESTORE` only), reads exactly, turns into a
/// skiplist when a word is added, and loads from a snapshot as a skiplist.
#[test]
fn the_result_is_restored_as_a_listpack_and_reads_exactly() {
    need_redis();
    let mut want = wordcount_count::counts::Counts::new();
    for i in 0..70_000u64 {
        // Words Redis stores as integers, and others.
        want.add(i.to_string().as_bytes(), i % 97 + 1);
        want.add(format!("w{i}").as_bytes(), i % 13 + 1);
    }
    for (i, w) in ["the", "of", "and"].iter().enumerate() {
        want.add(w.as_bytes(), 1_000_000 - i as u64);
    }
    let mut server = RedisServer::start(None).unwrap();
    let url = server.url_with_password();
    let mut c = connect(&url);
    let mut probe = Stream::open(&url, DEFAULT_PREFIX, Duration::from_secs(5)).unwrap();
    let key = wordcount_protocol::Keys::default().counts;
    let encoding = |c: &mut redis::Connection| -> String {
        redis::cmd("OBJECT")
            .arg("ENCODING")
            .arg(&key)
            .query(c)
            .unwrap()
    };
    let limit = |c: &mut redis::Connection| -> (String, String) {
        redis::cmd("CONFIG")
            .arg("GET")
            .arg("zset-max-listpack-entries")
            .query(c)
            .unwrap()
    };
    let default = limit(&mut c);

    probe.replace_counts(&want).unwrap();
    assert_eq!(encoding(&mut c), "listpack");
    assert_eq!(limit(&mut c), default, "the limit is set back");
    assert_eq!(
        probe.state().counts().unwrap().first_difference(&want),
        None
    );
    let card: u64 = redis::cmd("ZCARD").arg(&key).query(&mut c).unwrap();
    assert_eq!(card, want.distinct() as u64);
    let score: u64 = redis::cmd("ZSCORE")
        .arg(&key)
        .arg("1234")
        .query(&mut c)
        .unwrap();
    assert_eq!(score, want.get(b"1234"));
    let top: Vec<(String, u64)> = redis::cmd("ZRANGE")
        .arg(&key)
        .arg(0)
        .arg(2)
        .arg("REV")
        .arg("WITHSCORES")
        .query(&mut c)
        .unwrap();
    let want_top: Vec<(String, u64)> = want
        .top(3)
        .into_iter()
        .map(|w| (String::from_utf8(w.word).unwrap(), w.count))
        .collect();
    assert_eq!(top, want_top);

    redis::cmd("SAVE").exec(&mut c).unwrap();
    let _: f64 = redis::cmd("ZINCRBY")
        .arg(&key)
        .arg(1)
        .arg("new")
        .query(&mut c)
        .unwrap();
    assert_eq!(encoding(&mut c), "skiplist");
    let mut written = want.clone();
    written.add(b"new", 1);
    assert_eq!(
        probe.state().counts().unwrap().first_difference(&written),
        None
    );

    server.kill();
    server.restart().unwrap();
    let mut c = connect(&url);
    assert_eq!(encoding(&mut c), "skiplist");
    let mut probe = Stream::open(&url, DEFAULT_PREFIX, Duration::from_secs(5)).unwrap();
    assert_eq!(
        probe.state().counts().unwrap().first_difference(&want),
        None
    );
}
