#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench: a panic is the report
//! Read repair between two local redis-servers: the target is at
//! least 50 MB/s of packed counts. `from` holds every file of a Zipf
//! corpus (50,000 words); each iteration empties `to` (untimed) and
//! repairs it from `from`. Then three more repairs print the CPU time each
//! process spent, since a shared machine's wall clock says little.
//!
//! `cargo bench -p wordcount-lab --bench crdt_repair`; `CRDT_BENCH_FILES` and
//! `CRDT_BENCH_BYTES` (per file) change the corpus (defaults 300, 1MB:
//! about 78 MB of packed counts, three batches).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::time::Duration;
use wordcount_count::counts::Counts;
use wordcount_count::generate::{generate, parse_size, CorpusSpec};
use wordcount_job::connection::Redis;
use wordcount_job::crdt::{global_id, repair};
use wordcount_lab::local::RedisServer;

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

/// The corpus's files as (global id, packed counts), spread over three sites.
fn packed_corpus() -> Vec<(String, Vec<u8>)> {
    let dir = tempfile::tempdir().unwrap();
    let spec = CorpusSpec {
        files: env("CRDT_BENCH_FILES", "300").parse().unwrap(),
        bytes_per_file: parse_size(&env("CRDT_BENCH_BYTES", "1MB")).unwrap(),
        ..Default::default()
    };
    let paths = generate(dir.path(), &spec).unwrap();
    (paths.iter().enumerate())
        .map(|(i, path)| {
            let mut c = Counts::new();
            wordcount_count::engine::count_file(
                path,
                wordcount_count::tokenize::Tokenizer::Alnum,
                &mut c,
            )
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

    // The machine may be shared: what each side spent in CPU time, which
    // bounds the throughput of an otherwise idle machine.
    let (mut wall, mut cpu_to, mut cpu_from, mut cpu_client) = (0.0, 0.0, 0.0, 0.0);
    for _ in 0..3 {
        to.run(|c, _| redis::cmd("FLUSHALL").exec(c)).unwrap();
        let before = (redis_cpu(&mut to), redis_cpu(&mut from), client_cpu());
        let stats = repair::repair(&mut from, &mut to).unwrap();
        wall += stats.elapsed.as_secs_f64();
        cpu_to += redis_cpu(&mut to) - before.0;
        cpu_from += redis_cpu(&mut from) - before.1;
        cpu_client += client_cpu() - before.2;
    }
    let mb = 3.0 * bytes as f64 / 1e6;
    eprintln!(
        "3 repairs of {:.1} MB: {:.0} MB/s; CPU seconds: to's Redis {cpu_to:.2} ({:.0} MB/s), \
         from's Redis {cpu_from:.2}, this process {cpu_client:.2}; load average {}",
        mb / 3.0,
        mb / wall,
        mb / cpu_to,
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
}

/// CPU seconds Redis's main thread has used.
fn redis_cpu(r: &mut Redis) -> f64 {
    let info: String = r
        .run(|c, _| redis::cmd("INFO").arg("cpu").query(c))
        .unwrap();
    (info.lines())
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| *k == "used_cpu_user_main_thread" || *k == "used_cpu_sys_main_thread")
        .map(|(_, v)| v.trim().parse::<f64>().unwrap())
        .sum()
}

/// CPU seconds this process has used (every thread).
fn client_cpu() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

criterion_group! {
    name = benches;
    // No plots: they need a system font, and the figure is the throughput.
    config = Criterion::default().without_plots();
    targets = bench
}
criterion_main!(benches);
