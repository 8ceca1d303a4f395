#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report
//! `wordcount count`: serial, threads and processes print the same bytes.

mod common;
use common::*;

#[test]
fn serial_threads_and_processes_print_identical_output() {
    let dir = corpus(12, 200_000);
    let path = dir.path().to_str().unwrap();
    for tok in ["alnum", "whitespace"] {
        let base = ["count", path, "--top", "500", "--tokenizer", tok];
        let serial = ok(&wordcount(&base)).stdout.clone();
        assert!(serial.len() > 1000, "too little output");
        for extra in [
            ["--threads", "1"],
            ["--threads", "3"],
            ["--processes", "2"],
            ["--processes", "5"],
        ] {
            let args: Vec<&str> = base.iter().copied().chain(extra).collect();
            let out = ok(&wordcount(&args)).stdout.clone();
            assert!(out == serial, "{tok} {extra:?} differs from serial");
        }
    }
}

#[test]
fn json_has_totals_and_the_top_list() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "b a\nA b c B").unwrap();
    let out = ok(&wordcount(&[
        "count",
        dir.path().to_str().unwrap(),
        "--json",
        "--top",
        "2",
    ]))
    .stdout
    .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["words"], 6);
    assert_eq!(v["distinct"], 3);
    assert_eq!(
        v["top"],
        serde_json::json!([{"word": "b", "count": 3}, {"word": "a", "count": 2}])
    );
    assert!(v["seconds"].as_f64().unwrap() >= 0.0);
}

#[test]
fn a_missing_path_is_an_error_that_names_it() {
    let out = wordcount(&["count", "/no/such/dir"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/no/such/dir"), "{err}");
}

/// `generate --tweets` writes what `count` reads, says so, and refuses
/// flags of the other corpus and empty corpora with clear errors.
#[test]
fn generate_tweets_then_count() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tweets");
    let out = out.to_str().unwrap();
    let made = ok(&wordcount(&[
        "generate",
        "--tweets",
        "--files",
        "3",
        "--tweets-per-file",
        "20",
        "--out",
        out,
    ]))
    .stderr
    .clone();
    assert_eq!(
        String::from_utf8_lossy(&made).trim(),
        format!("wrote 3 files of tweets into {out}")
    );
    let names: Vec<String> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 3);
    let text = std::fs::read_to_string(format!("{out}/tweets-00001.txt")).unwrap();
    assert_eq!(text.lines().count(), 20);
    let counted = ok(&wordcount(&["count", out, "--json"])).stdout.clone();
    let v: serde_json::Value = serde_json::from_slice(&counted).unwrap();
    assert!(v["words"].as_u64().unwrap() > 3 * 20 * 3, "{v}");

    for (flag, value) in [("--bytes", "1MB"), ("--skew", "2")] {
        let res = wordcount(&["generate", "--tweets", flag, value, "--out", out]);
        assert_eq!(res.status.code(), Some(2), "{flag}");
        let err = String::from_utf8_lossy(&res.stderr);
        assert!(
            err.contains("cannot be used with") && err.contains(flag),
            "{err}"
        );
    }
    for (flag, says) in [
        ("--files", "at least one file"),
        ("--tweets-per-file", "at least one tweet"),
    ] {
        let empty = dir.path().join("empty");
        let res = wordcount(
            &["generate", "--tweets", flag, "0", "--out"]
                .into_iter()
                .chain([empty.to_str().unwrap()])
                .collect::<Vec<_>>(),
        );
        assert_eq!(res.status.code(), Some(1), "{flag} 0");
        let err = String::from_utf8_lossy(&res.stderr);
        assert!(err.contains(says), "{err}");
    }
}
