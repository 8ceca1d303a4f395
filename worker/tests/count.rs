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
