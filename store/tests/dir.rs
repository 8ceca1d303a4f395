//! The store over a local directory, and `write_atomically` to a file read
//! back through it. No server needed.

use std::io::Read;
use std::path::Path;
use wordcount_store::{write_atomically, Location, Object, Store};

#[test]
fn a_store_is_send_and_sync() {
    fn shared<T: Send + Sync>() {}
    shared::<Store>();
}

#[test]
fn lists_a_directory_sorted_by_relative_key_and_reads_from_an_offset() {
    let dir = tempfile::tempdir().unwrap();
    let write = |rel: &str, text: &str| {
        let target = dir.path().join(rel);
        write_atomically(target.to_str().unwrap(), text.as_bytes()).unwrap();
    };
    write("b.txt", "bravo");
    write("a/x.txt", "alpha x");
    write("a.txt", "alpha");
    let location = Location::Dir(dir.path().to_path_buf());
    let store = Store::open(&location).unwrap();
    assert_eq!(store.location(), &location);
    let object = |key: &str, size: u64| Object {
        key: key.into(),
        size,
        version: None,
    };
    // Sorted as strings ("a.txt" < "a/x.txt"), not in walk order.
    assert_eq!(
        store.list().unwrap(),
        [object("a.txt", 5), object("a/x.txt", 7), object("b.txt", 5)]
    );

    let mut text = String::new();
    store
        .open_read("a/x.txt", 6, None)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text, "x");
    let mut rest = Vec::new();
    store
        .open_read("b.txt", 99, None)
        .unwrap()
        .read_to_end(&mut rest)
        .unwrap();
    assert!(rest.is_empty(), "past the end reads nothing");
    assert_eq!(store.retries(), 0);
}

#[test]
fn errors_name_the_missing_file_or_directory() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&Location::Dir(dir.path().to_path_buf())).unwrap();
    let err = store.open_read("nope.txt", 0, None).err().unwrap();
    assert!(format!("{err}").contains("nope.txt"), "{err}");

    let missing = dir.path().join("missing");
    let err = Store::open(&Location::Dir(missing.clone()))
        .unwrap()
        .list()
        .unwrap_err();
    assert!(
        format!("{err}").contains(&*missing.to_string_lossy()),
        "{err}"
    );
    assert!(!Path::new(&missing).exists());
}
