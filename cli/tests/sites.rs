#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
//! The CRDT mode end to end: `wordcount run --redis crdt` with three sites,
//! each with its own redis-server and worker processes; with partitions
//! (as root), each site in a network namespace of its own, cut with
//! iptables.

mod common;

use common::*;

fn instances(r: &wordcount_job::report::Report) -> &[wordcount_job::report::InstanceReport] {
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

/// Instances killed in turn and restarted from their last snapshot: what
/// the snapshot lacked comes back by read repair from the others (and the
/// site's queue redoes its own rolled-back commits); with cuts too, as root.
#[test]
fn instances_restarted_from_old_snapshots_catch_up_identical_and_exact() {
    need_redis();
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    // Enough files that the job outlasts several kills (a file takes a few ms).
    let dir = corpus(1000, 5_000);
    let mut args = vec![
        "--redis",
        "crdt",
        "--sites",
        "3",
        "--workers",
        "1",
        "--snapshot-interval",
        "300ms",
        "--redis-kill-every",
        "400ms",
    ];
    if root {
        args.extend(["--partition-every", "700ms,for=400ms"]);
    }
    let r = run_verified(dir.path(), &args);
    let job = r.job.as_ref().unwrap();
    assert!(job.redis_restarts > 0, "no instance was killed: {job:?}");
    let instances = instances(&r);
    for i in instances {
        assert_eq!(i.files_known, job.files, "{i:?}");
    }
    assert!(
        instances.iter().any(|i| i.files_repaired > 0),
        "nothing came back by read repair: {instances:?}"
    );
}

#[test]
fn a_redis_moment_fault_is_refused_in_crdt_mode() {
    let err = refused(&[
        "run",
        "--input",
        "examples/corpus",
        "--redis",
        "crdt",
        "--sites",
        "3",
        "--redis-fault",
        "at=enqueue",
    ]);
    assert!(err.contains("--redis-kill-every"), "{err}");
}

#[test]
fn a_partition_without_crdt_mode_is_refused() {
    let err = refused(&[
        "run",
        "--input",
        "examples/corpus",
        "--partition",
        "sites=0,redis=1,at=1s,for=1s",
    ]);
    assert!(err.contains("--partition"), "{err}");
}
