#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
//! Large files split into byte ranges (`--split`) and the whole result
//! written out (`--output`), through a real `wordcount run`: a real
//! redis-server and worker processes.

mod common;

use common::*;
use std::io::Write;

/// Every word of the input, as `wordcount count` prints them all.
fn all_lines(input: &std::path::Path, tokenizer: &str) -> String {
    let out = ok(&wordcount(&[
        "count",
        input.to_str().unwrap(),
        "--top",
        "100000000",
        "--tokenizer",
        tokenizer,
    ]))
    .stdout
    .clone();
    String::from_utf8(out).unwrap()
}

#[test]
fn split_files_count_like_a_serial_count_with_every_tokenizer() {
    need_redis();
    let dir = corpus(3, 64 << 10);
    for tokenizer in ["alnum", "whitespace"] {
        for split in ["1000", "4097"] {
            let args = ["--split", split, "--tokenizer", tokenizer, "--workers", "2"];
            let report = run_verified(dir.path(), &args);
            let job = report.job.unwrap();
            // 3 × 64 KiB in ranges of about 1 or 4 KiB, and the small files.
            assert!(
                job.files > 3 * (64 << 10) / 4097,
                "{tokenizer} {split}: {job:?}"
            );
            assert_eq!(report.top, serial(dir.path(), tokenizer).top);
        }
    }
}

#[test]
fn a_cut_at_every_byte_counts_each_word_once() {
    need_redis();
    let dir = tempfile::tempdir().unwrap();
    let mut text = "Ärger über ÉCOLE, naïve café — Straße ٣٤ don't\n".repeat(4);
    text.push_str(&"x".repeat(300));
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(b" ab\xff\xfecd\x00ef GH\xc3\n end");
    std::fs::write(dir.path().join("small.txt"), &bytes).unwrap();
    for commit in ["per-file", "per-word"] {
        let report = run_verified(
            dir.path(),
            &["--split", "1", "--commit", commit, "--workers", "2"],
        );
        assert_eq!(report.job.unwrap().files, bytes.len() as u64, "{commit}");
        assert_eq!(report.top, serial(dir.path(), "alnum").top);
    }
}

#[test]
fn a_gzip_file_is_counted_whole_and_decompressed() {
    need_redis();
    let dir = tempfile::tempdir().unwrap();
    let text = "the quick brown fox jumps over the lazy dog\n".repeat(5000);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(text.as_bytes()).unwrap();
    std::fs::write(dir.path().join("fox.txt.gz"), gz.finish().unwrap()).unwrap();
    let report = run_verified(dir.path(), &["--split", "100"]);
    assert_eq!(report.job.unwrap().files, 1, "never split");
    assert_eq!(report.words, 9 * 5000);
    assert_eq!(report.top[0].count, 10_000, "the");
}

#[test]
fn output_writes_every_word_as_count_prints_it() {
    need_redis();
    let dir = corpus(4, 32 << 10);
    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("result/words.txt");
    let report = run_verified(
        dir.path(),
        &["--split", "5000", "--output", target.to_str().unwrap()],
    );
    let written = std::fs::read_to_string(&target).unwrap();
    assert_eq!(written, all_lines(dir.path(), "alnum"));
    let output = report.output.unwrap();
    assert_eq!(output.words, written.lines().count() as u64);
    assert_eq!(output.location, target.to_str().unwrap());
    // Nothing but the file: the temporary one was renamed.
    let names: Vec<_> = std::fs::read_dir(target.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["words.txt"]);
}

#[test]
fn an_output_that_cannot_be_written_fails_naming_it() {
    need_redis();
    let dir = corpus(1, 4 << 10);
    let out = tempfile::tempdir().unwrap();
    // A file where a folder should be.
    std::fs::write(out.path().join("blocker"), b"").unwrap();
    let target = out.path().join("blocker/words.txt");
    let run = wordcount(&[
        "run",
        "--input",
        dir.path().to_str().unwrap(),
        "--output",
        target.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(
        run.status.code(),
        Some(wordcount_protocol::exit::OUTPUT),
        "{err}"
    );
    assert!(
        err.contains(&format!("cannot write the output to {}", target.display())),
        "{err}"
    );
}
