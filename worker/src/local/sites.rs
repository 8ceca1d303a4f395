//! `wordcount run --redis crdt --sites N`: N sites, each with its own
//! Redis, driver (a thread) and worker processes, and its share of the
//! input. Workers apply every file to every instance they reach (the CRDT
//! of `crate::crdt`); when the sites are done, read repair makes the
//! instances converge, and the job's result is what they all hold.

use super::redis_server::random_password;
use super::runner::{Pool, RunOptions, RunOutcome};
use super::RedisServer;
use crate::backend::Redis;
use crate::count::{count_files, Parallelism};
use crate::crdt::repair;
use crate::driver::{self, DriverOptions};
use crate::input;
use crate::report::{InstanceReport, JobFacts, Report};
use crate::timeline::EventLog;
use anyhow::{bail, Context, Result};
use rand::RngExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wordcount_protocol::{keys, Commit, RedisMode, DEFAULT_PREFIX};

/// Sites of the CRDT mode (`--redis crdt`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrdtSetup {
    pub sites: usize,
}

/// One site: its Redis, its share of the input, its workers.
struct Site {
    server: RedisServer,
    input: PathBuf,
    pool: Option<Pool>,
}

pub fn run(opts: &RunOptions, setup: &CrdtSetup, stop: Arc<AtomicBool>) -> Result<RunOutcome> {
    let started = Instant::now();
    if setup.sites < 2 {
        bail!("--sites {}: the CRDT mode needs 2 sites or more", setup.sites);
    }
    if opts.stream.is_some() || opts.autoscale.is_some() || opts.redis_faults.any() {
        bail!("--redis crdt runs a batch without Redis faults so far (no --stream, --autoscale, --snapshot-interval or --redis-kill-every)");
    }
    if opts.settings.commit == Commit::PerWord {
        bail!("--commit per-word is not a CRDT (a word added twice counts twice); use per-file");
    }
    let tmp = tempfile::Builder::new()
        .prefix("wordcount-sites-")
        .tempdir()?;
    let password = random_password();
    let shares = divide(&opts.input, setup.sites, tmp.path())?;
    let mut sites = shares
        .into_iter()
        .map(|input| {
            Ok(Site {
                server: RedisServer::start_with_password(None, &password)?,
                input,
                pool: None,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    // Each site lists the instances its own first.
    let urls = |i: usize, with_password: bool| -> String {
        let n = sites.len();
        let url = |s: &Site| {
            if with_password {
                s.server.url_with_password()
            } else {
                s.server.url()
            }
        };
        (0..n)
            .map(|k| url(&sites[(i + k) % n]))
            .collect::<Vec<_>>()
            .join(",")
    };
    let events = EventLog::default();
    let plans: Vec<(String, String)> = (0..sites.len())
        .map(|i| (urls(i, false), urls(i, true)))
        .collect();
    for (site, (url, _)) in sites.iter_mut().zip(&plans) {
        site.pool = Some(Pool::start(
            opts,
            (url.clone(), RedisMode::Crdt, &password),
            &site.input,
            events.clone(),
        )?);
    }
    let drivers: Vec<_> = sites
        .iter()
        .zip(&plans)
        .map(|(site, (_, url))| {
            let dopts = DriverOptions {
                redis: url.clone(),
                mode: RedisMode::Crdt,
                prefix: DEFAULT_PREFIX.into(),
                input: site.input.clone(),
                settings: opts.settings.clone(),
                top: opts.top,
                patience: Duration::from_secs(30),
                stream: None,
            };
            let stop = stop.clone();
            std::thread::spawn(move || driver::run(&dopts, &stop))
        })
        .collect();
    let mut next_kill = opts.kill_every.map(|d| Instant::now() + d);
    while drivers.iter().any(|d| !d.is_finished()) {
        if stop.load(Ordering::Relaxed) {
            sites.iter_mut().flat_map(|s| &mut s.pool).for_each(Pool::kill_all);
            bail!("interrupted");
        }
        for pool in sites.iter_mut().flat_map(|s| &mut s.pool) {
            pool.supervise()?;
        }
        if let (Some(at), Some(every)) = (next_kill, opts.kill_every) {
            if Instant::now() >= at {
                let i = rand::rng().random_range(0..sites.len());
                if let Some(pool) = sites[i].pool.as_mut() {
                    pool.kill_one();
                }
                next_kill = Some(at + every);
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut outcomes = Vec::new();
    for d in drivers {
        outcomes.push(d.join().expect("driver thread panicked")?);
    }
    for pool in sites.iter_mut().flat_map(|s| &mut s.pool) {
        pool.wait_all(Duration::from_secs(10));
    }

    // Every file is on one instance at least: read repair does the rest.
    let mut instances = sites
        .iter()
        .map(|s| Redis::open(&s.server.url_with_password(), DEFAULT_PREFIX, Duration::from_secs(10)))
        .collect::<Result<Vec<_>>>()?;
    let heal = Instant::now();
    repair::converge(&mut instances).context("read repair")?;
    let converged_ms = heal.elapsed().as_millis() as u64;
    let mut reports = Vec::new();
    let mut all_counts = Vec::new();
    for r in &mut instances {
        let stats: std::collections::HashMap<String, u64> =
            r.run(|c, k| redis::cmd("HGETALL").arg(&k.crdt_stats).query(c))?;
        let stat = |name: &str| stats.get(name).copied().unwrap_or(0);
        reports.push(InstanceReport {
            files_known: stat(keys::crdt_stats::FILES_KNOWN),
            files_repaired: stat(keys::crdt_stats::FILES_REPAIRED),
            converged_ms,
        });
        all_counts.push(repair::counts(r)?);
    }

    let mut mismatch = None;
    for (i, c) in all_counts.iter().enumerate().skip(1) {
        if let Some(d) = c.first_difference(&all_counts[0]) {
            mismatch.get_or_insert(format!("instance {i} differs from instance 0: {d}"));
        }
    }
    let failures: Vec<(String, String)> = outcomes
        .iter()
        .flat_map(|o| o.failures.iter().cloned())
        .collect();
    if opts.verify && mismatch.is_none() {
        let readable = |f: &input::InputFile| {
            let rel = f.path.strip_prefix(&opts.input).unwrap_or(&f.path);
            !failures.iter().any(|(p, _)| Path::new(p) == rel)
        };
        let files: Vec<_> = input::list(std::slice::from_ref(&opts.input))?
            .into_iter()
            .filter(readable)
            .collect();
        let want = count_files(&files, opts.settings.tokenizer, Parallelism::Serial)?;
        mismatch = all_counts[0]
            .first_difference(&want)
            .map(|d| format!("against a serial count: {d}"));
    }

    let counts = &all_counts[0];
    let mut report = Report::from_counts(counts, opts.top, started.elapsed().as_secs_f64());
    let mut job = JobFacts::default();
    for o in &outcomes {
        if let Some(j) = &o.report.job {
            job.files += j.files;
            job.bytes += j.bytes;
            job.commits_ignored += j.commits_ignored;
            job.files_failed += j.files_failed;
        }
    }
    for pool in sites.iter().flat_map(|s| &s.pool) {
        job.worker_restarts += pool.restarts;
        job.workers_killed += pool.kills;
    }
    report.job = Some(job);
    report.instances = Some(reports);
    Ok(RunOutcome {
        report,
        mismatch,
        failures,
        timeline: Vec::new(),
        view: None,
    })
}

/// Divides the files under `input` among `n` sites, round robin in path
/// order: a directory per site under `into`, of links to the files at
/// their paths relative to `input`.
fn divide(input: &Path, n: usize, into: &Path) -> Result<Vec<PathBuf>> {
    if !input.is_dir() {
        bail!("input {} is not a directory", input.display());
    }
    let files = input::list(&[input.to_path_buf()])?;
    let dirs: Vec<PathBuf> = (0..n).map(|i| into.join(format!("site-{i}"))).collect();
    for d in &dirs {
        std::fs::create_dir_all(d)?;
    }
    for (k, f) in files.iter().enumerate() {
        let rel = f.path.strip_prefix(input).unwrap_or(&f.path);
        let link = dirs[k % n].join(rel);
        if let Some(parent) = link.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let target = std::fs::canonicalize(&f.path).unwrap_or_else(|_| f.path.clone());
        std::os::unix::fs::symlink(&target, &link)
            .with_context(|| format!("cannot link {}", link.display()))?;
    }
    Ok(dirs)
}
