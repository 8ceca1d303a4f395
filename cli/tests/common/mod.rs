#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report
//! Helpers for the tests that run the real `wordcount` binary and a real
//! `redis-server`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;
use wordcount_count::generate::{generate, CorpusSpec};
use wordcount_job::report::Report;

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_wordcount"))
}

/// Fails with a clear message when the machine lacks redis-server.
pub fn need_redis() {
    assert!(
        which::which("redis-server").is_ok(),
        "these tests need redis-server on PATH (apt-get install redis-server)"
    );
}

/// A corpus of `files` Zipf files plus a few hand-made ones (Unicode,
/// invalid UTF-8, an empty file, a nested directory).
pub fn corpus(files: usize, bytes: u64) -> tempfile::TempDir {
    corpus_of(CorpusSpec {
        files,
        bytes_per_file: bytes,
        vocabulary: 20_000,
        ..Default::default()
    })
}

/// The synthetic files of `spec` under `zipf/`, and the odd ones of [`corpus`].
pub fn corpus_of(spec: CorpusSpec) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    generate(&dir.path().join("zipf"), &spec).unwrap();
    std::fs::create_dir_all(dir.path().join("misc/deeper")).unwrap();
    std::fs::write(
        dir.path().join("misc/unicode.txt"),
        "Ärger über ÉCOLE, naïve café — Straße STRASSE ٣٤\n".repeat(50),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("misc/deeper/binary.bin"),
        b"ab\xff\xfecd\x00ef GH\xc3\n".repeat(40),
    )
    .unwrap();
    std::fs::write(dir.path().join("misc/empty.txt"), b"").unwrap();
    dir
}

/// `wordcount worker INDEX` against `server`, reading `input`: the command,
/// ready for more flags.
pub fn worker_command(
    server: &wordcount_lab::local::RedisServer,
    input: &Path,
    index: usize,
) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args([
        "worker",
        "--redis",
        &server.url(),
        "--input",
        input.to_str().unwrap(),
    ])
    .args(["--index", &index.to_string()])
    .env("REDIS_PASSWORD", &server.password)
    .env("WORDCOUNT_LOG", "warn");
    cmd
}

pub fn wordcount(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .output()
        .expect("cannot run wordcount")
}

pub fn ok(out: &Output) -> &Output {
    assert!(
        out.status.success(),
        "wordcount failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs wordcount with `args`, which it must refuse (exit code 1), and
/// returns what it said.
pub fn refused(args: &[&str]) -> String {
    let out = wordcount(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    err
}

/// `wordcount run --json --verify` with `extra` flags: the report, after
/// checking that it succeeded and verified.
pub fn run_verified(input: &Path, extra: &[&str]) -> Report {
    let mut args = vec![
        "run",
        "--input",
        input.to_str().unwrap(),
        "--json",
        "--verify",
        "--top",
        "50",
    ];
    args.extend_from_slice(extra);
    let out = wordcount(&args);
    ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("verified"), "no verification in:\n{stderr}");
    serde_json::from_slice(&out.stdout).expect("run --json prints one JSON object")
}

/// The serial count's report of `input`.
pub fn serial(input: &Path, tokenizer: &str) -> Report {
    let out = wordcount(&[
        "count",
        input.to_str().unwrap(),
        "--json",
        "--top",
        "50",
        "--tokenizer",
        tokenizer,
    ]);
    serde_json::from_slice(&ok(&out).stdout).unwrap()
}

/// A driver of the job on `server` over `input`, in a thread of the test,
/// as `wordcount driver` would run: per-file commits, the top `top` words.
pub fn spawn_driver(
    server: &wordcount_lab::local::RedisServer,
    input: &Path,
    claim_timeout: Duration,
    top: usize,
) -> std::thread::JoinHandle<anyhow::Result<wordcount_job::driver::DriverOutcome>> {
    spawn_driver_with(driver_options(server, input, claim_timeout, top))
}

/// What [`spawn_driver`] runs, to change before [`spawn_driver_with`].
pub fn driver_options(
    server: &wordcount_lab::local::RedisServer,
    input: &Path,
    claim_timeout: Duration,
    top: usize,
) -> wordcount_job::driver::DriverOptions {
    wordcount_job::driver::DriverOptions {
        redis: server.url_with_password(),
        mode: wordcount_protocol::RedisMode::Snapshot,
        site: None,
        prefix: wordcount_protocol::DEFAULT_PREFIX.into(),
        input: wordcount_store::Location::Dir(input.to_path_buf()),
        split: 0,
        output: None,
        settings: wordcount_job::state::JobSettings {
            tokenizer: wordcount_protocol::Tokenizer::Alnum,
            commit: wordcount_protocol::Commit::PerFile,
            claim_timeout,
        },
        top,
        patience: Duration::from_secs(60),
        stream: None,
        mid_enqueue: None,
    }
}

pub fn spawn_driver_with(
    opts: wordcount_job::driver::DriverOptions,
) -> std::thread::JoinHandle<anyhow::Result<wordcount_job::driver::DriverOutcome>> {
    std::thread::spawn(move || {
        wordcount_job::driver::run(opts, &std::sync::atomic::AtomicBool::new(false))
    })
}

/// `n` worker processes, each `factor` times slower than it could be, so
/// that a test has time to act while they work.
pub fn spawn_slow_workers(
    server: &wordcount_lab::local::RedisServer,
    input: &Path,
    n: usize,
    factor: u32,
) -> Vec<std::process::Child> {
    (0..n)
        .map(|i| {
            worker_command(server, input, i)
                .args(["--fault", &format!("worker={i},slow={factor}")])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect()
}

/// The RedisRaft module, or `None` after saying in one line why the test
/// is skipped (no package carries RedisRaft; see docs/src/modes/redisraft.md).
pub fn redisraft() -> Option<PathBuf> {
    match wordcount_lab::local::raft::find_module(None) {
        Ok(path) => Some(path),
        Err(_) => {
            eprintln!(
                "skipped: no RedisRaft module at ${} or {}",
                wordcount_lab::local::raft::MODULE_ENV,
                wordcount_lab::local::raft::default_module().display()
            );
            None
        }
    }
}

/// Processes that carry `marker` in their environment, or whose working
/// directory is under `tmp` (redis-server rewrites its environment when it
/// sets its process title, but it works in its data directory).
pub fn marked_processes(marker: &str, tmp: &std::path::Path) -> Vec<String> {
    let needle = format!("WORDCOUNT_TEST_MARKER={marker}");
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| {
            let env = std::fs::read(e.path().join("environ")).unwrap_or_default();
            let in_env = env.split(|&b| b == 0).any(|kv| kv == needle.as_bytes());
            let in_tmp =
                std::fs::read_link(e.path().join("cwd")).is_ok_and(|cwd| cwd.starts_with(tmp));
            (in_env || in_tmp)
                .then(|| std::fs::read_to_string(e.path().join("cmdline")).unwrap_or_default())
        })
        .collect()
}

/// Waits (5 s at most: children die with their parent, which takes the
/// kernel a moment) until no process carries `marker` (see
/// [`marked_processes`]), and fails naming those left.
pub fn assert_none_left(marker: &str, tmp: &Path) {
    let started = std::time::Instant::now();
    while !marked_processes(marker, tmp).is_empty() && started.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        marked_processes(marker, tmp),
        Vec::<String>::new(),
        "processes left behind"
    );
}
