#![allow(clippy::unwrap_used)]
//! The CRDT against real redis-servers: `wc_crdt_apply` behaves like the
//! model, and read repair makes three instances converge on the serial sum.

mod common;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::collections::BTreeMap;
use std::time::Duration;
use wordcount_count::counts::Counts;
use wordcount_job::connection::Redis;
use wordcount_job::crdt::repair::{self, apply, converge, counts, digests};
use wordcount_job::crdt::{global_id, Replica};
use wordcount_lab::local::RedisServer;

fn open(server: &RedisServer) -> Redis {
    Redis::open(
        &server.url_with_password(),
        wordcount_protocol::DEFAULT_PREFIX,
        Duration::from_secs(20),
    )
    .unwrap()
}

fn servers(n: usize) -> (Vec<RedisServer>, Vec<Redis>) {
    common::need_redis();
    let servers: Vec<RedisServer> = (0..n).map(|_| RedisServer::start(None).unwrap()).collect();
    let conns = servers.iter().map(open).collect();
    (servers, conns)
}

/// `n` files of three sites, their words drawn from a skewed vocabulary
/// so that files share words, as real ones do.
fn files(rng: &mut StdRng, n: usize) -> Vec<(String, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let mut c = Counts::new();
            for _ in 0..rng.random_range(0..300) {
                let rank = rng.random_range(1..40u32).pow(2);
                c.add(format!("w{rank}").as_bytes(), 1);
            }
            let site = format!("s{}", rng.random_range(0..3));
            (
                global_id(&site, &format!("in/f{i}.txt"), i as u64),
                c.pack(),
            )
        })
        .collect()
}

/// Everything `wc_crdt_apply` keeps on one instance.
fn state(r: &mut Redis) -> Vec<BTreeMap<Vec<u8>, Vec<u8>>> {
    r.run(|c, k| {
        let mut pipe = redis::pipe();
        for key in [&k.crdt_files, &k.crdt_digest, &k.crdt_stats] {
            pipe.cmd("HGETALL").arg(key);
        }
        pipe.query(c)
    })
    .unwrap()
}

fn stat(r: &mut Redis, field: &str) -> u64 {
    r.run(|c, k| {
        redis::cmd("HGET")
            .arg(&k.crdt_stats)
            .arg(field)
            .query::<Option<u64>>(c)
    })
    .unwrap()
    .unwrap_or(0)
}

/// The instance holds exactly the model's state.
fn assert_like(r: &mut Redis, model: &Replica) {
    assert_eq!(&counts(r).unwrap(), model.counts());
    let files: BTreeMap<String, Vec<u8>> = r
        .run(|c, k| redis::cmd("HGETALL").arg(&k.crdt_files).query(c))
        .unwrap();
    assert_eq!(&files, model.files());
    let digests: BTreeMap<String, String> = (model.digests().iter())
        .map(|(site, d)| (site.clone(), d.to_string()))
        .collect();
    assert_eq!(repair::digests(r).unwrap(), digests);
    use wordcount_protocol::keys::crdt_stats::*;
    assert_eq!(stat(r, FILES_KNOWN), model.files().len() as u64);
    let bytes: usize = model.files().values().map(Vec::len).sum();
    assert_eq!(stat(r, BYTES_KNOWN), bytes as u64);
}

#[test]
fn a_file_applied_twice_changes_nothing() {
    let (_servers, mut r) = servers(1);
    let r = &mut r[0];
    let packed = b"the\t3\nword\t1\nextraordinarily\t2\n";
    let file = [("s0/a.txt#1", &packed[..])];
    assert_eq!(apply(r, &file, false).unwrap(), (1, packed.len() as u64));
    let before = state(r);
    assert_eq!(apply(r, &file, false).unwrap(), (0, 0));
    assert_eq!(apply(r, &file, true).unwrap(), (0, 0));
    assert_eq!(state(r), before);

    // Twice in one call, with a new one: each counted once.
    let other = b"the\t1\n";
    let both = [
        file[0],
        ("s1/b.txt#1", &other[..]),
        ("s1/b.txt#1", &other[..]),
    ];
    assert_eq!(apply(r, &both, false).unwrap(), (1, other.len() as u64));
    let mut model = Replica::new();
    for (id, p) in both {
        model.apply(id, p).unwrap();
    }
    assert_like(r, &model);
}

#[test]
fn a_bad_id_fails_before_any_write() {
    let (_servers, mut r) = servers(1);
    let r = &mut r[0];
    let before = state(r);
    let err = apply(r, &[("s0/a#1", b"a\t1\n"), ("nosite", b"b\t1\n")], false).unwrap_err();
    let code = wordcount_protocol::library::error::BAD_ID;
    assert!(format!("{err:#}").contains(code), "{err:#}");
    assert_eq!(state(r), before);
}

#[test]
fn repair_moves_exactly_what_is_missing() {
    let (_servers, mut r) = servers(2);
    let files = files(&mut StdRng::seed_from_u64(7), 60);
    let all: Vec<(&str, &[u8])> = files.iter().map(|(i, p)| (i.as_str(), &p[..])).collect();
    apply(&mut r[0], &all, false).unwrap();
    apply(&mut r[1], &all[..25], false).unwrap();
    let lacking: u64 = all[25..].iter().map(|(_, p)| p.len() as u64).sum();

    let [a, b] = r.get_disjoint_mut([0, 1]).unwrap();
    let stats = repair::repair(a, b).unwrap();
    assert_eq!((stats.files, stats.bytes), (35, lacking));
    use wordcount_protocol::keys::crdt_stats::*;
    assert_eq!(stat(b, FILES_REPAIRED), 35);
    assert_eq!(stat(b, BYTES_REPAIRED), lacking);
    assert_eq!(digests(a).unwrap(), digests(b).unwrap());

    // Equal sets: nothing moves, either way.
    for (from, to) in [(0, 1), (1, 0)] {
        let [from, to] = r.get_disjoint_mut([from, to]).unwrap();
        let again = repair::repair(from, to).unwrap();
        assert_eq!((again.files, again.bytes), (0, 0));
    }
    let mut model = Replica::new();
    for (id, p) in &all {
        model.apply(id, p).unwrap();
    }
    for conn in r.iter_mut() {
        assert_like(conn, &model);
    }
}

/// Seeded random deliveries (in batches, with duplicates, to random
/// instances) and repairs between random pairs, then anti-entropy: the
/// three instances end identical, like the model, and equal to the sum.
#[test]
fn random_deliveries_and_repairs_converge_to_the_sum() {
    let (_servers, mut r) = servers(3);
    for seed in 0..4 {
        for conn in r.iter_mut() {
            conn.run(|c, _| redis::cmd("FLUSHALL").exec(c)).unwrap();
        }
        let rng = &mut StdRng::seed_from_u64(seed);
        let files = files(rng, 120);
        let mut models = vec![Replica::new(); 3];
        // Each file at least once, a third of them again, in random order.
        let mut deliveries: Vec<usize> = (0..files.len()).collect();
        deliveries.extend((0..files.len() / 3).map(|_| rng.random_range(0..files.len())));
        rand::seq::SliceRandom::shuffle(&mut deliveries[..], rng);
        let mut rest = &deliveries[..];
        while !rest.is_empty() {
            if rng.random_bool(0.1) {
                let (from, to) = (rng.random_range(0..3), rng.random_range(0..3));
                if from != to {
                    let [f, t] = r.get_disjoint_mut([from, to]).unwrap();
                    repair::repair(f, t).unwrap();
                    let source = models[from].clone();
                    models[to].merge(&source).unwrap();
                }
                continue;
            }
            let (batch, tail) = rest.split_at(rng.random_range(1..=4).min(rest.len()));
            rest = tail;
            let to = rng.random_range(0..3);
            let batch: Vec<(&str, &[u8])> = (batch.iter())
                .map(|&i| (files[i].0.as_str(), &files[i].1[..]))
                .collect();
            let (new, _) = apply(&mut r[to], &batch, false).unwrap();
            let mut model_new = 0;
            for (id, p) in &batch {
                model_new += u64::from(models[to].apply(id, p).unwrap());
            }
            assert_eq!(new, model_new, "seed {seed}");
        }
        for (conn, model) in r.iter_mut().zip(&models) {
            assert_like(conn, model);
        }

        let moved = converge(&mut r).unwrap();
        assert!(moved.files > 0, "seed {seed}: nothing to repair");
        assert_eq!(converge(&mut r).unwrap().files, 0);
        let mut all = Replica::new();
        let mut sum = Counts::new();
        for (id, p) in &files {
            all.apply(id, p).unwrap();
            sum.add_packed(p).unwrap();
        }
        assert_eq!(all.counts(), &sum);
        for conn in r.iter_mut() {
            assert_like(conn, &all);
        }
    }
}

/// Writers keep applying to two instances while repair runs between
/// them: nothing is lost or counted twice.
#[test]
fn repair_beside_writers() {
    let (servers, mut r) = servers(2);
    let files = files(&mut StdRng::seed_from_u64(3), 400);
    let writer = {
        let files = files.clone();
        let mut w: Vec<Redis> = servers.iter().map(open).collect();
        std::thread::spawn(move || {
            for (i, (id, p)) in files.iter().enumerate() {
                // Each file to one instance, every fifth to both.
                apply(&mut w[i % 2], &[(id.as_str(), &p[..])], false).unwrap();
                if i % 5 == 0 {
                    apply(&mut w[(i + 1) % 2], &[(id.as_str(), &p[..])], false).unwrap();
                }
            }
        })
    };
    let mut rounds = 0;
    while !writer.is_finished() {
        let (a, b) = r.split_at_mut(1);
        repair::repair(&mut a[0], &mut b[0]).unwrap();
        repair::repair(&mut b[0], &mut a[0]).unwrap();
        rounds += 1;
    }
    writer.join().unwrap();
    converge(&mut r).unwrap();
    let mut all = Replica::new();
    for (id, p) in &files {
        all.apply(id, p).unwrap();
    }
    for conn in r.iter_mut() {
        assert_like(conn, &all);
    }
    eprintln!("{rounds} repair rounds while the writer ran");
}
