#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

//! The store against a real S3 server: versitygw (`store/versitygw.sh`),
//! started per test by `LocalS3` on its own port and directory. Each test
//! skips, with one line on stderr, when the binary is not built.

use std::io::Read;
use std::time::Duration;
use wordcount_store::server::{LocalS3, SECRET_KEY};
use wordcount_store::{write_atomically_with_env, Location, Store};

/// A started server, or None (and a line saying why the test skips).
fn server(test: &str) -> Option<LocalS3> {
    if LocalS3::binary().is_none() {
        eprintln!(
            "skipping {test}: no versitygw (run store/versitygw.sh or set WORDCOUNT_VERSITYGW)"
        );
        return None;
    }
    Some(LocalS3::start().expect("versitygw starts"))
}

fn s3(bucket: &str, prefix: &str) -> Location {
    format!("s3://{bucket}/{prefix}").parse().unwrap()
}

fn read_all(store: &Store, key: &str, offset: u64, version: Option<&str>) -> Vec<u8> {
    let mut bytes = Vec::new();
    store
        .open_read(key, offset, version)
        .unwrap()
        .read_to_end(&mut bytes)
        .unwrap();
    bytes
}

/// `len` bytes that differ from position to position (and by `seed`).
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 13) as u8)
        .collect()
}

#[test]
fn lists_past_one_page_sorted_and_only_under_the_prefix() {
    let Some(s3s) = server("lists_past_one_page_sorted_and_only_under_the_prefix") else {
        return;
    };
    s3s.create_bucket("corpus").unwrap();
    // 1,050 keys: more than a page (S3 and versitygw give 1,000 keys a
    // page). Numbered without padding, so that key order is not insertion
    // order.
    for i in 0..1050 {
        s3s.put(
            "corpus",
            &format!("in/f{i}"),
            format!("word{i} ").as_bytes(),
        )
        .unwrap();
    }
    s3s.put("corpus", "in/sub/deep", b"deep").unwrap();
    s3s.put("corpus", "in/a dir/naïve #1.txt", b"odd name")
        .unwrap();
    s3s.put("corpus", "inside", b"not under in/").unwrap();
    s3s.put("corpus", "other/x", b"not under in/").unwrap();

    let store = Store::open_with_env(&s3("corpus", "in"), &s3s.env()).unwrap();
    let objects = store.list().unwrap();
    let mut expected: Vec<String> = (0..1050).map(|i| format!("f{i}")).collect();
    expected.push("sub/deep".into());
    expected.push("a dir/naïve #1.txt".into());
    expected.sort();
    let keys: Vec<&str> = objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, expected);
    let f7 = objects.iter().find(|o| o.key == "f7").unwrap();
    assert_eq!(f7.size, "word7 ".len() as u64);
    assert!(
        objects.iter().all(|o| o.version.is_some()),
        "every object has its ETag"
    );

    // The whole bucket, and the same prefix written with a trailing slash.
    let all = Store::open_with_env(&s3("corpus", ""), &s3s.env()).unwrap();
    assert_eq!(all.list().unwrap().len(), 1054);
    let slash = Store::open_with_env(&"s3://corpus/in/".parse().unwrap(), &s3s.env()).unwrap();
    assert_eq!(slash.list().unwrap(), objects);
    assert_eq!(store.retries(), 0);
}

#[test]
fn reads_whole_and_from_an_offset() {
    let Some(s3s) = server("reads_whole_and_from_an_offset") else {
        return;
    };
    s3s.create_bucket("bucket").unwrap();
    let bytes = pattern(3 << 20, 1); // several chunks
    s3s.put("bucket", "p/big", &bytes).unwrap();
    s3s.put("bucket", "p/empty", b"").unwrap();
    let store = Store::open_with_env(&s3("bucket", "p"), &s3s.env()).unwrap();
    let objects = store.list().unwrap();
    let big = objects.iter().find(|o| o.key == "big").unwrap();
    let version = big.version.as_deref();
    assert_eq!(big.size, bytes.len() as u64);

    assert_eq!(read_all(&store, "big", 0, version), bytes);
    assert_eq!(read_all(&store, "big", 12_345, version), &bytes[12_345..]);
    assert_eq!(read_all(&store, "big", 12_345, None), &bytes[12_345..]);
    // At and past the end, as a file seeked there: nothing.
    assert!(read_all(&store, "big", bytes.len() as u64, version).is_empty());
    assert!(read_all(&store, "big", bytes.len() as u64 + 9, version).is_empty());
    assert!(read_all(&store, "empty", 0, None).is_empty());

    // A reader dropped early leaves the store usable.
    let mut head = [0u8; 100];
    let mut reader = store.open_read("big", 0, version).unwrap();
    reader.read_exact(&mut head).unwrap();
    assert_eq!(head, bytes[..100]);
    drop(reader);
    assert_eq!(read_all(&store, "big", 1, version), &bytes[1..]);
}

#[test]
fn a_read_pinned_to_the_listed_version_fails_once_the_object_is_rewritten() {
    let Some(s3s) =
        server("a_read_pinned_to_the_listed_version_fails_once_the_object_is_rewritten")
    else {
        return;
    };
    s3s.create_bucket("bucket").unwrap();
    s3s.put("bucket", "doc", b"the first text").unwrap();
    let store = Store::open_with_env(&s3("bucket", ""), &s3s.env()).unwrap();
    let listed = store.list().unwrap().remove(0);
    let version = listed.version.as_deref();
    assert_eq!(read_all(&store, "doc", 4, version), b"first text");

    s3s.put("bucket", "doc", b"a second text").unwrap();
    for offset in [0, 4] {
        let err = store.open_read("doc", offset, version).err().unwrap();
        let text = err.to_string();
        assert!(text.contains("changed since it was listed"), "{text}");
        assert!(text.contains("s3://bucket/doc"), "{text}");
    }
    // Unpinned, the new text.
    assert_eq!(read_all(&store, "doc", 0, None), b"a second text");
}

#[test]
fn a_missing_bucket_is_named_and_so_is_what_the_server_said() {
    let Some(s3s) = server("a_missing_bucket_is_named_and_so_is_what_the_server_said") else {
        return;
    };
    let store = Store::open_with_env(&s3("nosuchbucket", "some/prefix"), &s3s.env()).unwrap();
    let err = store.list().unwrap_err();
    let text = err.to_string();
    assert!(text.contains("s3://nosuchbucket/some/prefix"), "{text}");
    assert!(text.contains("NoSuchBucket"), "{text}");
    let all = format!("{err:#} {err:?} {store:?}");
    assert!(!all.contains(SECRET_KEY), "{all}");
    assert_eq!(store.retries(), 0, "a 404 is not retried");
}

#[test]
fn wrong_credentials_are_named_without_the_secret() {
    let Some(s3s) = server("wrong_credentials_are_named_without_the_secret") else {
        return;
    };
    s3s.create_bucket("bucket").unwrap();
    let wrong = "not-the-secret-5e1d";
    let env: Vec<(String, String)> = s3s
        .env()
        .into_iter()
        .map(|(k, v)| match k.as_str() {
            "AWS_SECRET_ACCESS_KEY" => (k, wrong.to_owned()),
            _ => (k, v),
        })
        .collect();
    let store = Store::open_with_env(&s3("bucket", "in"), &env).unwrap();
    let err = store.list().unwrap_err();
    let text = err.to_string();
    assert!(text.contains("s3://bucket/in"), "{text}");
    assert!(text.contains("SignatureDoesNotMatch"), "{text}");
    let all = format!("{err:#} {err:?} {store:?}");
    assert!(!all.contains(wrong) && !all.contains(SECRET_KEY), "{all}");

    let err = write_atomically_with_env("s3://bucket/out", b"x", &env).unwrap_err();
    let all = format!("{err:#} {err:?}");
    assert!(err.to_string().contains("s3://bucket/out"), "{all}");
    assert!(!all.contains(wrong), "{all}");
}

#[test]
fn a_vanished_object_is_named_by_bucket_and_key() {
    let Some(s3s) = server("a_vanished_object_is_named_by_bucket_and_key") else {
        return;
    };
    s3s.create_bucket("bucket").unwrap();
    s3s.put("bucket", "in/gone.txt", b"here, then not").unwrap();
    let store = Store::open_with_env(&s3("bucket", "in"), &s3s.env()).unwrap();
    let listed = store.list().unwrap().remove(0);
    std::fs::remove_file(s3s.root().join("bucket/in/gone.txt")).unwrap();
    let err = store
        .open_read(&listed.key, 0, listed.version.as_deref())
        .err()
        .unwrap();
    let text = err.to_string();
    assert!(text.contains("s3://bucket/in/gone.txt"), "{text}");
    assert!(text.contains("no such object"), "{text}");
}

#[test]
fn writes_atomically_to_s3_small_and_multipart() {
    let Some(s3s) = server("writes_atomically_to_s3_small_and_multipart") else {
        return;
    };
    s3s.create_bucket("results").unwrap();
    let env = s3s.env();
    let small = b"the 3\nof 2\n".to_vec();
    let large = pattern(23 << 20, 7); // past 10 MiB: a multipart upload
    write_atomically_with_env("s3://results/out/small.txt", &small, &env).unwrap();
    write_atomically_with_env("s3://results/out/large.bin", &large, &env).unwrap();
    let store = Store::open_with_env(&s3("results", "out"), &env).unwrap();
    let objects = store.list().unwrap();
    let keys: Vec<&str> = objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, ["large.bin", "small.txt"]);
    assert_eq!(read_all(&store, "small.txt", 0, None), small);
    assert_eq!(read_all(&store, "large.bin", 0, None), large);

    // Replaced whole.
    write_atomically_with_env("s3://results/out/small.txt", b"new", &env).unwrap();
    assert_eq!(read_all(&store, "small.txt", 0, None), b"new");
}

/// Cuts the server for a while, from another thread, and gives it back.
fn cut_for(mut s3s: LocalS3, pause: Duration) -> std::thread::JoinHandle<LocalS3> {
    s3s.stop();
    std::thread::spawn(move || {
        std::thread::sleep(pause);
        s3s.start_again().expect("versitygw starts again");
        s3s
    })
}

#[test]
fn a_list_rides_out_a_server_restart() {
    let Some(s3s) = server("a_list_rides_out_a_server_restart") else {
        return;
    };
    s3s.create_bucket("bucket").unwrap();
    for i in 0..20 {
        s3s.put("bucket", &format!("k{i:02}"), b"x").unwrap();
    }
    let store = Store::open_with_env(&s3("bucket", ""), &s3s.env()).unwrap();
    let restarted = cut_for(s3s, Duration::from_millis(1200));
    let objects = store.list().unwrap();
    assert_eq!(objects.len(), 20);
    assert!(store.retries() > 0, "the refused connections were retried");
    drop(restarted.join().unwrap());
}

#[test]
fn a_read_cut_mid_stream_resumes_where_it_was() {
    let Some(s3s) = server("a_read_cut_mid_stream_resumes_where_it_was") else {
        return;
    };
    s3s.create_bucket("bucket").unwrap();
    // Far more than the socket buffers hold, so that the kill cuts the body.
    let bytes = pattern(64 << 20, 3);
    s3s.put("bucket", "big", &bytes).unwrap();
    let store = Store::open_with_env(&s3("bucket", ""), &s3s.env()).unwrap();
    let version = store.list().unwrap().remove(0).version;
    let mut reader = store.open_read("big", 10, version.as_deref()).unwrap();
    let mut head = vec![0u8; 1 << 20];
    reader.read_exact(&mut head).unwrap();
    assert_eq!(store.retries(), 0);

    let restarted = cut_for(s3s, Duration::from_millis(800));
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).unwrap();
    head.extend_from_slice(&rest);
    assert!(head == bytes[10..], "the resumed read gives the same bytes");
    assert!(store.retries() > 0, "the cut read was resumed");
    drop(restarted.join().unwrap());
}
