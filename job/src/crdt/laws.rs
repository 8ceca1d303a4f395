//! The CRDT's laws, as property tests of the model [`Replica`].

use super::*;
use proptest::prelude::*;

/// A few files from three sites, each its global id and packed counts
/// (short and long words, and the odd empty file).
fn files() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    let words = proptest::collection::vec("[a-c]{1,3}|[a-b]{9,10}", 0..30);
    proptest::collection::vec((0..3usize, words), 1..12).prop_map(|files| {
        files
            .into_iter()
            .enumerate()
            .map(|(i, (site, words))| {
                let mut c = Counts::new();
                for w in &words {
                    c.add(w.as_bytes(), 1);
                }
                (
                    global_id(&format!("s{site}"), &format!("dir/f{i}.txt"), i as u64),
                    c.pack(),
                )
            })
            .collect()
    })
}

/// A replica that took the files picked, in that order, some twice.
fn replica(files: &[(String, Vec<u8>)], picks: &[usize]) -> Replica {
    let mut r = Replica::new();
    for &i in picks {
        let (id, packed) = &files[i % files.len()];
        r.apply(id, packed).unwrap();
    }
    r
}

fn picks() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(0..100usize, 0..20)
}

fn union(a: &Replica, b: &Replica) -> Replica {
    let mut u = a.clone();
    u.merge(b).unwrap();
    u
}

#[derive(Clone, Debug)]
enum Op {
    /// A worker applies a file to one instance.
    Deliver { file: usize, to: usize },
    /// Read repair, cut short after `limit` files.
    Repair {
        from: usize,
        to: usize,
        limit: usize,
    },
}

fn op(files: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..files, 0..3usize).prop_map(|(file, to)| Op::Deliver { file, to }),
        (0..3usize, 0..3usize, 0..12usize).prop_map(|(from, to, limit)| Op::Repair {
            from,
            to,
            limit
        }),
    ]
}

/// Files, and a shuffled schedule that delivers each at least once,
/// with duplicate deliveries and repairs (whole or cut short) between.
fn schedule() -> impl Strategy<Value = (Vec<(String, Vec<u8>)>, Vec<Op>)> {
    files().prop_flat_map(|files| {
        let n = files.len();
        let first = proptest::collection::vec(0..3usize, n);
        let extra = proptest::collection::vec(op(n), 0..40);
        (Just(files), first, extra).prop_flat_map(|(files, first, extra)| {
            let mut ops: Vec<Op> = (first.into_iter().enumerate())
                .map(|(file, to)| Op::Deliver { file, to })
                .collect();
            ops.extend(extra);
            (Just(files), Just(ops).prop_shuffle())
        })
    })
}

proptest! {
    #[test]
    fn merge_is_commutative(f in files(), a in picks(), b in picks()) {
        let (a, b) = (replica(&f, &a), replica(&f, &b));
        prop_assert_eq!(union(&a, &b), union(&b, &a));
    }

    #[test]
    fn merge_is_associative(f in files(), a in picks(), b in picks(), c in picks()) {
        let (a, b, c) = (replica(&f, &a), replica(&f, &b), replica(&f, &c));
        prop_assert_eq!(union(&union(&a, &b), &c), union(&a, &union(&b, &c)));
    }

    #[test]
    fn merge_and_apply_are_idempotent(f in files(), a in picks()) {
        let a = replica(&f, &a);
        let mut again = union(&a, &a);
        prop_assert_eq!(&again, &a);
        for (id, packed) in a.files() {
            prop_assert!(!again.apply(id, packed).unwrap());
        }
        prop_assert_eq!(again, a);
    }

    #[test]
    fn any_schedule_converges_to_the_sum((files, ops) in schedule()) {
        let mut sites = vec![Replica::new(); 3];
        for op in &ops {
            match *op {
                Op::Deliver { file, to } => {
                    let (id, packed) = &files[file];
                    sites[to].apply(id, packed).unwrap();
                }
                Op::Repair { from, to, limit } => {
                    let source = sites[from].clone();
                    let missing: Vec<_> = (source.files().iter())
                        .filter(|(id, _)| !sites[to].files().contains_key(*id))
                        .take(limit)
                        .collect();
                    for (id, packed) in missing {
                        prop_assert!(sites[to].apply(id, packed).unwrap());
                    }
                }
            }
        }
        // Anti-entropy: every ordered pair, until nothing moves.
        while (0..3).flat_map(|i| (0..3).map(move |j| (i, j))).any(|(i, j)| {
            let from = sites[i].clone();
            sites[j].merge(&from).unwrap() > 0
        }) {}
        let mut sum = Counts::new();
        let mut digests = BTreeMap::<String, Digest>::new();
        for (id, packed) in &files {
            sum.add_packed(packed).unwrap();
            digests.entry(site_of(id).unwrap().to_string()).or_default().add(id);
        }
        for s in &sites {
            prop_assert_eq!(s, &sites[0]);
            prop_assert_eq!(s.files().len(), files.len());
            prop_assert_eq!(s.counts(), &sum);
            prop_assert_eq!(s.digests(), &digests);
        }
    }
}

#[test]
fn global_ids_name_their_site() {
    let id = global_id("east", "a/b#c.txt", 7);
    assert_eq!(id, "east/a/b#c.txt#7");
    assert_eq!(site_of(&id), Some("east"));
    assert_eq!(site_of("nosite"), None);
    assert_eq!(site_of("/x#1"), None);
    assert!(Replica::new().apply("nosite", b"a\t1\n").is_err());
}

#[test]
fn digests_print_as_redis_stores_them() {
    // `echo -n 'a/x#1' | sha1sum` begins 8c92a434c7e1cf36.
    let mut d = Digest::default();
    d.add("a/x#1");
    assert_eq!(d.to_string(), "1:8c92a434c7e1cf36");
    assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
    d.add("a/x#1");
    assert_eq!(d, "2:0000000000000000".parse().unwrap());
    assert!("1:abc".parse::<Digest>().is_err());
}

#[test]
fn a_malformed_element_changes_nothing() {
    let mut r = Replica::new();
    assert!(r.apply("s/f#1", b"word without a count\n").is_err());
    assert_eq!(r, Replica::new());
}
