#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
//! Jobs that read their input from a real S3 server (versitygw, built by
//! `store/versitygw.sh`) and write their result there, through a real
//! `wordcount run`: a real redis-server and worker processes. Each test
//! skips, with one line, when the server's binary is not built.

mod common;

use common::*;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use wordcount_store::server::LocalS3;
use wordcount_store::{Location, Store};

fn server(test: &str) -> Option<LocalS3> {
    need_redis();
    if LocalS3::binary().is_none() {
        eprintln!(
            "skipping {test}: no versitygw (run store/versitygw.sh or set WORDCOUNT_VERSITYGW)"
        );
        return None;
    }
    Some(LocalS3::start().unwrap())
}

/// Puts every file under `dir` at `bucket/prefix` + its relative path.
fn upload(s3: &LocalS3, dir: &Path, bucket: &str, prefix: &str) -> usize {
    let files = wordcount_count::input::list_relative(dir).unwrap();
    for f in &files {
        let key = format!("{prefix}{}", f.path.display());
        s3.put(bucket, &key, &std::fs::read(dir.join(&f.path)).unwrap())
            .unwrap();
    }
    files.len()
}

fn run_against(s3: &LocalS3, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.arg("run").args(args).envs(s3.env());
    cmd
}

fn read_object(s3: &LocalS3, bucket: &str, key: &str) -> String {
    let location: Location = format!("s3://{bucket}/").parse().unwrap();
    let store = Store::open_with_env(&location, &s3.env()).unwrap();
    let mut text = String::new();
    (store.open_read(key, 0, None).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    text
}

fn report(out: &Output) -> wordcount_job::report::Report {
    ok(out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("verified"), "no verification in:\n{stderr}");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_job_over_objects_counts_like_count_over_the_files_and_writes_its_result() {
    let Some(s3) = server("a_job_over_objects") else {
        return;
    };
    let dir = corpus(3, 256 << 10);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, "packed words words\n".repeat(100).as_bytes()).unwrap();
    std::fs::write(dir.path().join("misc/packed.txt.gz"), gz.finish().unwrap()).unwrap();
    s3.create_bucket("corpus").unwrap();
    s3.create_bucket("results").unwrap();
    let n = upload(&s3, dir.path(), "corpus", "books/");
    // Another prefix of the bucket is not the input.
    s3.put("corpus", "other/noise.txt", b"noise noise").unwrap();

    let out = run_against(&s3, &["--input", "s3://corpus/books/", "--split", "100KiB"])
        .args(["--workers", "2", "--verify", "--json", "--top", "50"])
        .args(["--output", "s3://results/words.txt"])
        .output()
        .unwrap();
    let report = report(&out);
    assert_eq!(report.top, serial(dir.path(), "alnum").top);
    let job = report.job.unwrap();
    // The three 256 KiB files in three ranges each, the others whole.
    assert_eq!(job.files, n as u64 + 3 * 2, "{job:?}");
    let written = read_object(&s3, "results", "words.txt");
    let all = ok(&wordcount(&[
        "count",
        dir.path().to_str().unwrap(),
        "--top",
        "100000000",
    ]))
    .stdout
    .clone();
    assert_eq!(written.as_bytes(), all);
    assert_eq!(report.output.unwrap().location, "s3://results/words.txt");
    // No credential on the command line of any process, nor in what was said.
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!said.contains(wordcount_store::server::SECRET_KEY));
}

#[test]
fn the_server_down_at_the_start_and_mid_job_is_retried_and_the_job_ends_exact() {
    let Some(mut s3) = server("the_server_down") else {
        return;
    };
    let dir = corpus(12, 2 << 20);
    s3.create_bucket("corpus").unwrap();
    upload(&s3, dir.path(), "corpus", "");
    // Down as the job starts: the driver's listing is retried until it
    // is back (which makes a retry certain, whatever the machine's speed).
    s3.stop();
    let job = run_against(&s3, &["--input", "s3://corpus", "--split", "1MiB"])
        .args(["--workers", "2", "--verify", "--json", "--top", "50"])
        // Both workers slowed (each range takes 10× its time): the job
        // reads for a while, and the server goes down again in it.
        .args(["--fault", "worker=0,slow=10", "--fault", "worker=1,slow=10"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    s3.start_again().unwrap();
    std::thread::sleep(Duration::from_millis(700));
    s3.stop();
    std::thread::sleep(Duration::from_millis(1000));
    s3.start_again().unwrap();
    let out = job.wait_with_output().unwrap();
    let report = report(&out);
    assert_eq!(report.top, serial(dir.path(), "alnum").top);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let job = report.job.unwrap();
    assert!(job.store_retries > 0, "no retry counted: {job:?}\n{stderr}");
}

#[test]
fn a_missing_bucket_or_wrong_credentials_fail_naming_the_bucket() {
    let Some(s3) = server("a_missing_bucket") else {
        return;
    };
    let out = run_against(&s3, &["--input", "s3://nosuchbucket/books/"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("s3://nosuchbucket/books"), "{err}");

    s3.create_bucket("corpus").unwrap();
    let out = run_against(&s3, &["--input", "s3://corpus/"])
        .env("AWS_SECRET_ACCESS_KEY", "not-the-secret")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("s3://corpus"), "{err}");
    assert!(!err.contains("not-the-secret"), "{err}");
}

#[test]
fn an_object_rewritten_or_gone_mid_job_fails_clearly() {
    let Some(s3) = server("an_object_rewritten") else {
        return;
    };
    s3.create_bucket("corpus").unwrap();
    let text = "alpha beta gamma\n".repeat(600_000);
    s3.put("corpus", "big.txt", text.as_bytes()).unwrap();
    s3.put("corpus", "gone.txt", b"here for the listing only")
        .unwrap();
    // One slow worker: the files are still being read when they change.
    let job = run_against(&s3, &["--input", "s3://corpus/", "--split", "64KiB"])
        .args(["--workers", "1", "--fault", "worker=0,slow=200"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    s3.put("corpus", "big.txt", text.to_uppercase().as_bytes())
        .unwrap();
    std::fs::remove_file(s3.root().join("corpus/gone.txt")).unwrap();
    let out = job.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(wordcount_protocol::exit::UNREADABLE),
        "{err}"
    );
    assert!(err.contains("changed since it was listed"), "{err}");
    assert!(err.contains("big.txt ["), "names the range: {err}");
    assert!(err.contains("gone.txt"), "{err}");
}
