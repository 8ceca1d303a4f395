#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench: a panic is the report
//! Read repair between two local redis-servers: the target is at
//! least 50 MB/s of packed counts. `from` holds every file of a Zipf
//! corpus; each iteration empties `to` (untimed) and repairs it from `from`.
//!
//! `cargo bench -p wordcount --bench crdt_repair`; `CRDT_BENCH_FILES` and
//! `CRDT_BENCH_BYTES` (per file) change the corpus (defaults 100, 1MB).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::time::Duration;
use wordcount::backend::Redis;
use wordcount::counts::Counts;
use wordcount::crdt::{global_id, repair};
use wordcount::generate::{generate, parse_size, CorpusSpec};
use wordcount::local::RedisServer;

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

/// The corpus's files as (global id, packed counts), spread over three sites.
fn packed_corpus() -> Vec<(String, Vec<u8>)> {
    let dir = tempfile::tempdir().unwrap();
    let spec = CorpusSpec {
        files: env("CRDT_BENCH_FILES", "100").parse().unwrap(),
        bytes_per_file: parse_size(&env("CRDT_BENCH_BYTES", "1MB")).unwrap(),
        ..Default::default()
    };
    let paths = generate(dir.path(), &spec).unwrap();
    (paths.iter().enumerate())
        .map(|(i, path)| {
            let mut c = Counts::new();
            wordcount::count::count_file(path, wordcount::tokenize::Tokenizer::Alnum, &mut c)
                .unwrap();
            let name = path.file_name().unwrap().to_str().unwrap();
            (global_id(&format!("s{}", i % 3), name, i as u64), c.pack())
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let servers = [
        RedisServer::start(None).unwrap(),
        RedisServer::start(None).unwrap(),
    ];
    let open = |s: &RedisServer| {
        Redis::open(&s.url_with_password(), "wc", Duration::from_secs(30)).unwrap()
    };
    let (mut from, mut to) = (open(&servers[0]), open(&servers[1]));
    let files = packed_corpus();
    let bytes: usize = files.iter().map(|(_, p)| p.len()).sum();
    for chunk in files.chunks(8) {
        let chunk: Vec<(&str, &[u8])> = chunk.iter().map(|(i, p)| (i.as_str(), &p[..])).collect();
        repair::apply(&mut from, &chunk, false).unwrap();
    }
    let words: usize = files
        .iter()
        .map(|(_, p)| p.iter().filter(|&&b| b == b'\n').count())
        .sum();
    eprintln!(
        "{} files, {:.1} MB of packed counts ({} lines, {} distinct words)",
        files.len(),
        bytes as f64 / 1e6,
        words,
        repair::counts(&mut from).unwrap().distinct()
    );

    let mut group = c.benchmark_group("crdt");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.sample_size(10);
    group.bench_function("read_repair", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                to.run(|c, _| redis::cmd("FLUSHALL").exec(c)).unwrap();
                let stats = repair::repair(&mut from, &mut to).unwrap();
                assert_eq!(stats.bytes, bytes as u64);
                timed += stats.elapsed;
            }
            timed
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    // No plots: they need a system font, and the figure is the throughput.
    config = Criterion::default().without_plots();
    targets = bench
}
criterion_main!(benches);
