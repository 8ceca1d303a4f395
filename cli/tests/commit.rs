#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report
//! A worker's batch commit, on a real Redis: all or nothing, and never a
//! file counted twice.

mod common;
use common::*;
use std::time::Duration;
use wordcount_count::counts::Counts;
use wordcount_job::backend::{Backend, Stream};
use wordcount_job::queue::{Carry, Held, Injection, ResultCursor, Results, Taken, Unit};
use wordcount_job::state::JobSettings;
use wordcount_lab::local::RedisServer;
use wordcount_protocol::{Commit, Tokenizer, DEFAULT_PREFIX};

const CLAIM: Duration = Duration::from_secs(60);

fn counts(words: &[(&str, u64)]) -> Counts {
    let mut c = Counts::new();
    for (w, n) in words {
        c.add(w.as_bytes(), *n);
    }
    c
}

fn take(b: &mut Stream, consumer: &str) -> Taken {
    b.take(consumer, Duration::from_millis(100), CLAIM)
        .unwrap()
        .unwrap()
}

fn held(taken: &Taken, words: u64) -> Held {
    Held {
        taken: taken.clone(),
        words,
    }
}

fn merged(b: &mut Stream) -> (Vec<String>, Counts) {
    let Results::More(done) = b
        .results_since(&mut ResultCursor::default(), 100, Duration::ZERO)
        .unwrap()
    else {
        panic!("a result lost without a restart");
    };
    let mut sum = Counts::new();
    for d in &done {
        if let Some(p) = &d.counts {
            sum.add_packed(p).unwrap();
        }
    }
    (done.into_iter().map(|d| d.record.path).collect(), sum)
}

#[test]
fn a_batch_commits_all_its_files_or_none_and_never_one_twice() {
    need_redis();
    let server = RedisServer::start(None).unwrap();
    let url = server.url_with_password();
    let mut b = Stream::open(&url, DEFAULT_PREFIX, Duration::from_secs(5)).unwrap();
    assert!(b.batch_limit() > 1, "a stream's worker commits in batches");
    b.create_job(&JobSettings {
        tokenizer: Tokenizer::Alnum,
        commit: Commit::PerFile,
        claim_timeout: CLAIM,
    })
    .unwrap();
    let files: Vec<Injection> = (0..4)
        .map(|i| Injection {
            seq: i,
            unit: Unit::file(format!("f{i}"), 10),
            late: Duration::ZERO,
        })
        .collect();
    b.enqueue(&files).unwrap();
    let [f0, f1, f2, f3] = [(); 4].map(|_| take(&mut b, "a"));

    // Two files in one commit: one result, each file's own record.
    let ab = counts(&[("the", 2), ("cat", 1), ("dog", 1)]);
    let c = (b.commit(
        &[held(&f0, 3), held(&f1, 1)],
        "a",
        Carry::Inline(&ab.pack()),
    ))
    .unwrap();
    assert!(c.took_effect(), "{c:?}");
    let (paths, sum) = merged(&mut b);
    assert_eq!(paths, ["f0", "f1"]);
    assert_eq!(sum.first_difference(&ab), None);
    let p = b.state().progress().unwrap();
    assert_eq!((p.files_done, p.words, p.bytes_done), (2, 4, 20));

    // Another worker commits f2 first (a thief): a batch that holds it
    // would count it twice, so it is refused whole and names it.
    let c = b
        .commit(
            &[held(&f2, 1)],
            "b",
            Carry::Inline(&counts(&[("owl", 1)]).pack()),
        )
        .unwrap();
    assert!(c.took_effect());
    let late = counts(&[("owl", 1), ("emu", 5)]);
    let c = (b.commit(
        &[held(&f2, 1), held(&f3, 5)],
        "a",
        Carry::Inline(&late.pack()),
    ))
    .unwrap();
    assert_eq!(c.before(), vec![f2.entry.id]);
    let p = b.state().progress().unwrap();
    assert_eq!((p.files_done, p.words, p.commits_ignored), (3, 5, 1));
    assert_eq!(
        merged(&mut b).0,
        ["f0", "f1", "f2"],
        "the refused batch recorded nothing"
    );

    // The rest, committed again without it, takes effect; once.
    let emu = counts(&[("emu", 5)]);
    let again = [held(&f3, 5)];
    assert!(b
        .commit(&again, "a", Carry::Inline(&emu.pack()))
        .unwrap()
        .took_effect());
    let c = b.commit(&again, "a", Carry::Inline(&emu.pack())).unwrap();
    assert_eq!(c.before(), vec![f3.entry.id], "a second commit is ignored");
    let (paths, sum) = merged(&mut b);
    assert_eq!(paths, ["f0", "f1", "f2", "f3"]);
    let mut all = ab.clone();
    all.merge(&counts(&[("owl", 1), ("emu", 5)]));
    assert_eq!(sum.first_difference(&all), None);
    let p = b.state().progress().unwrap();
    assert_eq!((p.files_done, p.words, p.commits_ignored), (4, 10, 2));
    assert!(p.is_done() || !p.enqueue_done);
}

/// The pending entry `id`'s consumer.
fn holder(url: &str, id: &str) -> Option<String> {
    let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
    let k = wordcount_protocol::keys::Keys::new(DEFAULT_PREFIX);
    let v: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
        .arg(&k.queue)
        .arg(k.group())
        .arg(id)
        .arg(id)
        .arg(1)
        .query(&mut c)
        .unwrap();
    v.into_iter().next().map(|(_, consumer, _, _)| consumer)
}

#[test]
fn a_worker_whose_batch_is_refused_counts_the_rest_again_and_commits_them() {
    need_redis();
    let dir = tempfile::tempdir().unwrap();
    // A file long to count, taken first by a worker that went quiet, and
    // two short ones.
    std::fs::write(
        dir.path().join("big"),
        "alpha beta beta\n".repeat(4_000_000),
    )
    .unwrap();
    std::fs::write(dir.path().join("s1"), "gamma alpha\n").unwrap();
    std::fs::write(dir.path().join("s2"), "delta\n").unwrap();
    let server = RedisServer::start(None).unwrap();
    let url = server.url_with_password();
    let mut b = Stream::open(&url, DEFAULT_PREFIX, Duration::from_secs(5)).unwrap();
    let claim = Duration::from_millis(400);
    b.create_job(&JobSettings {
        tokenizer: Tokenizer::Alnum,
        commit: Commit::PerFile,
        claim_timeout: claim,
    })
    .unwrap();
    let files: Vec<Injection> = ["big", "s1", "s2"]
        .iter()
        .zip(0..)
        .map(|(path, seq)| Injection {
            seq,
            unit: Unit::file(
                *path,
                std::fs::metadata(dir.path().join(path)).unwrap().len(),
            ),
            late: Duration::ZERO,
        })
        .collect();
    b.enqueue(&files).unwrap();
    b.state().end_enqueue().unwrap();
    let big = take(&mut b, "quiet");
    assert_eq!(big.entry.unit.path, "big");
    std::thread::sleep(claim);

    // The worker takes the short files, then steals the big one into the
    // same batch; while it counts it, the quiet worker commits it first.
    let mut worker = worker_command(&server, dir.path(), 0)
        .args(["--name", "batcher"])
        .env("WORDCOUNT_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while holder(&url, &big.entry.id).as_deref() != Some("batcher") {
        assert!(started.elapsed() < Duration::from_secs(20), "never stolen");
        std::thread::sleep(Duration::from_millis(1));
    }
    let whole = counts(&[("alpha", 4_000_000), ("beta", 8_000_000)]);
    let c = b
        .commit(
            &[held(&big, 12_000_000)],
            "quiet",
            Carry::Inline(&whole.pack()),
        )
        .unwrap();
    assert!(c.took_effect(), "the quiet worker's commit came first");

    while b.state().progress().unwrap().files_done < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the rest never committed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    worker.kill().unwrap();
    let log = String::from_utf8_lossy(&worker.wait_with_output().unwrap().stderr).into_owned();
    assert!(log.contains("counting the rest again"), "{log}");
    let (mut paths, sum) = merged(&mut b);
    paths.sort();
    assert_eq!(paths, ["big", "s1", "s2"]);
    let mut all = whole.clone();
    all.merge(&counts(&[("gamma", 1), ("alpha", 1), ("delta", 1)]));
    assert_eq!(sum.first_difference(&all), None, "each file counted once");
    let p = b.state().progress().unwrap();
    assert_eq!((p.files_done, p.commits_ignored), (3, 1));
    assert_eq!(p.words, all.total());
}
