#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
//! RedisRaft mode: the lease queue on a plain redis-server (always), and
//! whole jobs on 2f+1 RedisRaft replicas with replicas killed (skipped
//! with a message when the module is absent).

mod common;

use common::*;
use std::time::{Duration, Instant};
use wordcount_protocol::{library, Keys};

fn fcall(c: &mut redis::Connection, f: &str, keys: &[&str], args: &[String]) -> redis::Value {
    redis::cmd("FCALL")
        .arg(f)
        .arg(keys.len())
        .arg(keys)
        .arg(args)
        .query(c)
        .unwrap()
}

/// The lease functions keep the queue's promises on their own: enqueue and
/// commit once, a retried take returns what the first took, an expired
/// lease is stolen, a second commit changes nothing.
#[test]
fn lease_functions_are_idempotent_and_steal_expired_leases() {
    need_redis();
    let server = wordcount_lab::local::RedisServer::start(None).unwrap();
    let mut c = redis::Client::open(server.url_with_password())
        .unwrap()
        .get_connection()
        .unwrap();
    redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg(library::SOURCE)
        .exec(&mut c)
        .unwrap();
    let k = Keys::default();
    let s = |v: &str| v.to_string();
    let enqueue = |c: &mut redis::Connection, seqs: &[&str]| {
        let mut args = vec![s("1000")];
        for seq in seqs {
            // seq, path, size, late_ms, range and version (none).
            args.extend([s(seq), format!("f{seq}.txt"), s("10"), s("0"), s(""), s("")]);
        }
        let v = fcall(
            c,
            library::lease::ENQUEUE,
            &[&k.ready, &k.entries, &k.enqueued, &k.meta],
            &args,
        );
        redis::from_redis_value::<u64>(v).unwrap()
    };
    assert_eq!(enqueue(&mut c, &["1"]), 1);
    assert_eq!(enqueue(&mut c, &["1", "2", "2"]), 1, "each enqueued once");
    let take = |c: &mut redis::Connection, who: &str, ticket: &str, now: u64| {
        let v = fcall(
            c,
            library::lease::TAKE,
            &[&k.ready, &k.leases, &k.holders, &k.tickets, &k.entries],
            &[s(who), s(ticket), now.to_string(), s("500")],
        );
        redis::from_redis_value::<Option<(String, String, i64)>>(v).unwrap()
    };
    let (id, entry, stolen) = take(&mut c, "a", "t1", 2000).unwrap();
    assert_eq!((id.as_str(), stolen), ("1", 0));
    assert!(entry.contains("f1.txt"), "{entry}");
    // The reply was lost: the retry gets the same file, not the next.
    assert_eq!(take(&mut c, "a", "t1", 2001).unwrap().0, "1");
    assert_eq!(take(&mut c, "b", "t1", 2002).unwrap().0, "2");
    // Nothing new, and no lease is older than 500 ms yet.
    assert_eq!(take(&mut c, "c", "t1", 2400), None);
    // a's lease on 1 expired: c steals it.
    let (id, _, stolen) = take(&mut c, "c", "t2", 2600).unwrap();
    assert_eq!((id.as_str(), stolen), ("1", 1));
    // A commit takes the worker's next file in the same call.
    let commit = |c: &mut redis::Connection, who: &str, ticket: &str| {
        let v = fcall(
            c,
            library::lease::COMMIT,
            &[
                &k.done,
                &k.leases,
                &k.holders,
                &k.entries,
                &k.result("1"),
                &k.stats,
                &k.log,
                &k.stage("1", who),
                &k.failed,
                &k.ready,
                &k.tickets,
            ],
            &[
                s("1"),
                s(who),
                s("f1.txt"),
                s("10"),
                s("2"),
                s("inline"),
                s("1"),
                s("2700"),
                s(ticket),
                s("500"),
                s("a\t2\n"),
            ],
        );
        redis::from_redis_value::<(i64, Option<(String, String, i64)>)>(v).unwrap()
    };
    // c commits 1, and steals 2, whose lease (b's, at 2002) has expired.
    let (n, next) = commit(&mut c, "c", "t3");
    assert_eq!(n, 1);
    let (id, _, stolen) = next.expect("the commit took the next file");
    assert_eq!((id.as_str(), stolen), ("2", 1));
    // a's late commit of 1 changes nothing, and there is nothing left.
    assert_eq!(
        commit(&mut c, "a", "t4"),
        (0, None),
        "the straggler's commit changes nothing"
    );
    let log: Vec<String> = redis::cmd("LRANGE")
        .arg(&k.log)
        .arg(0)
        .arg(-1)
        .query(&mut c)
        .unwrap();
    assert_eq!(log.len(), 1);
    let record: serde_json::Value = serde_json::from_str(&log[0]).unwrap();
    // Due at 1000, taken (stolen) at 2600, committed at 2700.
    assert_eq!(record["latency_ms"], 1700);
    assert_eq!(record["taken_ms"], 2600);
    let stats: std::collections::HashMap<String, u64> =
        redis::cmd("HGETALL").arg(&k.stats).query(&mut c).unwrap();
    assert_eq!(stats["files_done"], 1);
    assert_eq!(stats["commits_ignored"], 1);
}

/// The RedisRaft backend's whole job on one plain redis-server: a worker
/// that crashes after counting and a straggler, both stolen from; the
/// counts exact.
#[test]
fn the_lease_queue_counts_exactly_with_a_crash_and_a_straggler() {
    need_redis();
    let dir = corpus(12, 20_000);
    let server = wordcount_lab::local::RedisServer::start(None).unwrap();
    let mut opts = driver_options(&server, dir.path(), Duration::from_millis(300), 20);
    opts.mode = wordcount_protocol::RedisMode::RedisRaft;
    let driver = spawn_driver_with(opts);
    let faults = ["worker=0,crash=after-count,file=2", "worker=1,slow=40"];
    let mut workers: Vec<_> = (0..3)
        .map(|i| {
            worker_command(&server, dir.path(), i)
                .args(["--redis-mode", "raft"])
                .args(faults.iter().flat_map(|f| ["--fault", f]))
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let outcome = driver.join().unwrap().unwrap();
    for w in &mut workers {
        let _ = w.kill();
        let _ = w.wait();
    }
    let want = serial(dir.path(), "alnum");
    assert_eq!(outcome.report.words, want.words);
    assert_eq!(outcome.report.top, want.top[..20]);
    // The crash fired (its file then stolen: the job could not end
    // otherwise), and so did the straggler, at its first file.
    let mut c = redis::Client::open(server.url_with_password())
        .unwrap()
        .get_connection()
        .unwrap();
    let fired: u64 = redis::cmd("HLEN")
        .arg(Keys::default().faults)
        .query(&mut c)
        .unwrap();
    assert_eq!(fired, 2);
}

/// A stream of about 3 s on RedisRaft: long enough for every fault to land
/// while files are committed.
fn raft_stream(dir: &std::path::Path, faults: &[&str]) -> (wordcount_job::report::Report, String) {
    let mut args = vec![
        "run",
        "--input",
        dir.to_str().unwrap(),
        "--json",
        "--verify",
        "--top",
        "20",
        "--workers",
        "2",
        "--redis",
        "raft",
        "--stream",
        "--rate",
        "100",
        "--duration",
        "3s",
        "--tick",
        "100ms",
    ];
    args.extend_from_slice(faults);
    let out = wordcount(&args);
    ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(stderr.contains("verified"), "no verification in:\n{stderr}");
    (serde_json::from_slice(&out.stdout).unwrap(), stderr)
}

#[test]
fn redisraft_counts_exactly() {
    let Some(_) = redisraft() else { return };
    let dir = corpus(20, 20_000);
    let want = serial(dir.path(), "alnum");
    let r = run_verified(dir.path(), &["--redis", "raft", "--workers", "2"]);
    assert_eq!((r.words, &r.top[..20]), (want.words, &want.top[..20]));
    let job = r.job.unwrap();
    assert_eq!((job.replicas, job.files_redone), (3, 0), "{job:?}");
}

/// With at most f of 2f+1 replicas down the job goes on and nothing is
/// redone: files_done never goes back (the run watches it every 100 ms).
#[test]
fn redisraft_survives_a_replica_the_leader_and_a_replica_every_second() {
    let Some(_) = redisraft() else { return };
    let dir = corpus(20, 5_000);
    for faults in [
        &["--replica-fault", "replica=1,kill-at=1s"][..],
        &["--replica-fault", "replica=leader,kill-at=1s,down=1s"],
        &["--redis-kill-every", "1s", "--redis-down", "300ms"],
    ] {
        let (r, _) = raft_stream(dir.path(), faults);
        let job = r.job.unwrap();
        assert!(job.replica_kills >= 1, "{faults:?}: {job:?}");
        assert_eq!(job.files_redone, 0, "{faults:?}: commits went missing");
        if faults[1].starts_with("replica=leader") {
            assert!(job.leader_elections >= 1, "{job:?}");
        }
    }
}

/// Two of three down: no majority, no progress, and the log says so; one
/// back, and the job completes with nothing lost.
#[test]
fn redisraft_with_two_of_three_down_waits_for_one_to_return() {
    let Some(_) = redisraft() else { return };
    let dir = corpus(20, 5_000);
    let started = Instant::now();
    let (r, stderr) = raft_stream(
        dir.path(),
        &[
            "--replica-fault",
            "replica=0,kill-at=1s",
            "--replica-fault",
            "replica=1,kill-at=1s,down=2500ms",
        ],
    );
    assert!(
        stderr.contains("Redis unavailable"),
        "nothing said of the lost majority:\n{stderr}"
    );
    let job = r.job.unwrap();
    assert_eq!((job.replica_kills, job.files_redone), (2, 0), "{job:?}");
    // Nothing committed while two were down: the 3 s stream ends late.
    assert!(started.elapsed() > Duration::from_millis(3500));
}
