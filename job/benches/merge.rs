#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench: a panic is the report
//! The driver's merge: adding committed files' packed counts into one
//! table, as `wordcount run` does for every file. The corpus is what
//! `bench/vocabulary.sh` calls gen64: 64 files of 1 MiB from `generate`
//! (a 50,000-word Zipf vocabulary, about 31,000 distinct words a file).
//!
//! `cargo bench -p wordcount-job --bench merge`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use wordcount_count::counts::Counts;
use wordcount_count::generate::{generate, CorpusSpec};
use wordcount_count::tokenize::Tokenizer;

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let spec = CorpusSpec {
        files: 64,
        bytes_per_file: 1 << 20,
        ..Default::default()
    };
    let packed: Vec<Vec<u8>> = generate(dir.path(), &spec)
        .unwrap()
        .iter()
        .map(|path| {
            let mut counts = Counts::new();
            wordcount_count::engine::count_file(path, Tokenizer::Alnum, &mut counts).unwrap();
            counts.pack()
        })
        .collect();
    let lines: usize = packed
        .iter()
        .map(|p| p.iter().filter(|&&b| b == b'\n').count())
        .sum();
    let mut group = c.benchmark_group("merge");
    group.throughput(Throughput::Elements(lines as u64));
    group.bench_function("add_packed, 64 files", |b| {
        b.iter(|| {
            let mut counts = Counts::new();
            for p in &packed {
                counts.add_packed(p).unwrap();
            }
            counts.distinct()
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
