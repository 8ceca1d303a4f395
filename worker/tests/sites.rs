#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
//! The CRDT mode end to end: `wordcount run --redis crdt` with three sites,
//! each with its own redis-server and worker processes; with partitions
//! (as root), each site in a network namespace of its own, cut with
//! iptables.

mod common;

use common::*;

fn instances(r: &wordcount::report::Report) -> &[wordcount::report::InstanceReport] {
    r.instances
        .as_deref()
        .expect("--redis crdt reports its instances")
}

#[test]
fn three_sites_count_exactly_and_their_instances_agree() {
    need_redis();
    let dir = corpus(30, 5_000);
    let want = serial(dir.path(), "alnum");
    let r = run_verified(
        dir.path(),
        &["--redis", "crdt", "--sites", "3", "--workers", "1"],
    );
    assert_eq!((r.words, &r.top), (want.words, &want.top));
    let files = r.job.as_ref().unwrap().files;
    // Each instance holds every file: written there by a worker, or
    // learnt by read repair.
    for i in instances(&r) {
        assert_eq!(i.files_known, files, "{i:?}");
    }
}

/// Two cuts that heal, one of them isolating instance 2 from every site:
/// what it missed comes by read repair, and all three end identical and
/// exact (`--verify` compares them with each other and a serial count).
#[test]
fn partitions_heal_by_read_repair_into_identical_exact_counts() {
    need_redis();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: partitions need root (network namespaces and iptables)");
        return;
    }
    let dir = corpus(60, 5_000);
    let r = run_verified(
        dir.path(),
        &[
            "--redis",
            "crdt",
            "--sites",
            "3",
            "--workers",
            "1",
            "--partition",
            "sites=0,1,2,redis=2,at=0s,for=1500ms",
            "--partition",
            "sites=1,redis=0,at=500ms,for=1s",
        ],
    );
    let files = r.job.as_ref().unwrap().files;
    let instances = instances(&r);
    for i in instances {
        assert_eq!(i.files_known, files, "{i:?}");
    }
    assert!(
        instances[2].files_repaired > 0,
        "the isolated instance learnt nothing by read repair: {instances:?}"
    );
}

#[test]
fn a_partition_without_crdt_mode_is_refused() {
    let out = wordcount(&[
        "run",
        "--input",
        "examples/corpus",
        "--partition",
        "sites=0,redis=1,at=1s,for=1s",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--partition"), "{err}");
}
