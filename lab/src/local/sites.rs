//! `wordcount run --redis crdt --sites N`: N sites, each with its own
//! Redis, driver (a thread) and worker processes, and its share of the
//! input. Workers apply every file to every instance they reach (the CRDT
//! of `wordcount_job::crdt`); when the sites are done, read repair makes the
//! instances converge, and the job's result is what they all hold.

use super::netns::Network;
use super::options::{
    CrdtSetup, CutSpan, Partition, RunOptions, RunOutcome, Samples, SitesTimeline,
};
use super::pool::Pool;
use super::redis_chaos::RedisChaos;
use super::redis_server::random_password;
use super::RedisServer;
use crate::timeline::EventLog;
use anyhow::{bail, Context, Result};
use rand::RngExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use wordcount_count::counts::Counts;
use wordcount_count::input;
use wordcount_job::connection::Redis;
use wordcount_job::crdt::repair;
use wordcount_job::driver::{self, DriverOptions};
use wordcount_job::report::{JobFacts, Report};
use wordcount_protocol::{keys, Commit, RedisMode, DEFAULT_PREFIX};
use wordcount_store::Location;

/// How often the runner reads each instance's files known.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// `--partition-every DUR,for=DUR`, DUR at least 100ms: a cut runs
/// `iptables` in the site's namespace and ends connections, and the runner
/// samples the instances every [`SAMPLE_EVERY`]; cuts more often would not
/// show.
pub fn parse_every(s: &str) -> Result<(Duration, Duration), String> {
    const MIN_EVERY: Duration = Duration::from_millis(100);
    let bad = || format!("{s:?} is not DUR,for=DUR (e.g. 3s,for=1s)");
    let (every, lasts) = s.split_once(",for=").ok_or_else(bad)?;
    let d = |v: &str| humantime::parse_duration(v).map_err(|e| format!("{s:?}: {e}"));
    let every = d(every)?;
    if every < MIN_EVERY {
        return Err(format!(
            "the interval is at least {}: each cut runs iptables and ends connections \
             (0 would cut without a pause)",
            humantime::format_duration(MIN_EVERY)
        ));
    }
    Ok((every, d(lasts)?))
}

/// The cuts in place and to come, and read repair between the instances
/// that can reach each other.
struct Cuts {
    net: Option<Network>,
    started: Instant,
    /// (site, instance) -> when the cut ends.
    active: Vec<((usize, usize), Instant)>,
    planned: Vec<Partition>,
    every: Option<(Duration, Duration)>,
    next_random: Option<Instant>,
    /// Which cut `--partition-every` makes.
    rng: rand::rngs::StdRng,
    last_heal: Option<Instant>,
    next_repair: Instant,
    events: EventLog,
    /// Every cut so far; one not healed yet ends at `u64::MAX`.
    spans: Vec<CutSpan>,
}

impl Cuts {
    fn step(&mut self, sites: &[Site], instances: &mut [Redis]) -> Result<()> {
        let now = Instant::now();
        let ended: Vec<(usize, usize)> = (self.active.iter())
            .filter(|(_, until)| now >= *until)
            .map(|(pair, _)| *pair)
            .collect();
        for pair in ended {
            self.set(sites, pair, false)?;
        }
        let elapsed = now - self.started;
        let due: Vec<Partition> = (self.planned.iter())
            .filter(|p| elapsed >= p.at)
            .cloned()
            .collect();
        self.planned.retain(|p| elapsed < p.at);
        for p in due {
            for &s in &p.sites {
                for &k in &p.redis {
                    self.set(sites, (s, k), true)?;
                    self.active.retain(|(pair, _)| *pair != (s, k));
                    self.active.push(((s, k), now + p.lasts));
                }
            }
        }
        if let (Some(at), Some((every, lasts))) = (self.next_random, self.every) {
            if now >= at {
                self.next_random = Some(now + every);
                let pair = (
                    self.rng.random_range(0..sites.len()),
                    self.rng.random_range(0..sites.len()),
                );
                if !self.active.iter().any(|(p, _)| *p == pair) {
                    self.set(sites, pair, true)?;
                    self.active.push((pair, now + lasts));
                }
            }
        }
        if now >= self.next_repair {
            self.next_repair = now + ANTI_ENTROPY;
            let up: Vec<bool> = sites.iter().map(|s| !s.chaos.is_down()).collect();
            self.repair(instances, &up).context("read repair")?;
        }
        Ok(())
    }

    /// Cuts or heals site `s` from instance `k`; a cut also ends the
    /// connections already open, so that it takes effect at once.
    fn set(&mut self, sites: &[Site], (s, k): (usize, usize), cut: bool) -> Result<()> {
        let net = self.net.as_ref().expect("cuts need the network");
        net.cut(s, k, sites[k].server.port, cut)?;
        let what = if cut { "partition" } else { "heal" };
        self.events.note(what, format!("site {s} and instance {k}"));
        tracing::info!("{what}: site {s} and instance {k}");
        let ms = self.started.elapsed().as_millis() as u64;
        if cut {
            if !sites[k].chaos.is_down() {
                end_connections(&sites[k].server, net.addr(s))
                    .with_context(|| format!("ending site {s}'s connections to instance {k}"))?;
            }
            self.spans.push(CutSpan {
                site: s,
                instance: k,
                from_ms: ms,
                to_ms: u64::MAX,
            });
        } else {
            for span in (self.spans.iter_mut()).filter(|c| (c.site, c.instance) == (s, k)) {
                span.to_ms = span.to_ms.min(ms);
            }
            self.active.retain(|(pair, _)| *pair != (s, k));
            self.last_heal = Some(Instant::now());
            // A heal: repair now, not at the next tick.
            self.next_repair = Instant::now();
        }
        Ok(())
    }

    /// Whether instances `i` and `k` reach each other: neither site cut
    /// from the other's instance.
    fn linked(&self, i: usize, k: usize) -> bool {
        !self
            .active
            .iter()
            .any(|((s, x), _)| (*s, *x) == (i, k) || (*s, *x) == (k, i))
    }

    /// Anti-entropy: each instance up learns what a linked one up has.
    fn repair(&mut self, instances: &mut [Redis], up: &[bool]) -> Result<()> {
        let n = instances.len();
        for i in (0..n).filter(|&i| up[i]) {
            for k in (0..n).filter(|&k| k != i && up[k] && self.linked(i, k)) {
                let [from, to] = instances
                    .get_disjoint_mut([k, i])
                    .expect("two distinct instances");
                repair::repair(from, to)?;
            }
        }
        Ok(())
    }

    /// Lifts every cut left: the job is over.
    fn heal_all(&mut self, sites: &[Site]) -> Result<()> {
        let left: Vec<(usize, usize)> = self.active.iter().map(|(p, _)| *p).collect();
        for pair in left {
            self.set(sites, pair, false)?;
        }
        Ok(())
    }
}

/// Read repair between linked instances at least this often.
const ANTI_ENTROPY: Duration = Duration::from_secs(1);

/// Ends the clients of `server` that come from `addr` (`CLIENT KILL`).
fn end_connections(server: &RedisServer, addr: std::net::Ipv4Addr) -> Result<()> {
    let mut con = redis::Client::open(server.url_with_password())?
        .get_connection_with_timeout(Duration::from_secs(2))?;
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut con)?;
    // The peer's field, `addr=`, not the server's own `laddr=`.
    let from = format!("{addr}:");
    let peer = |l: &&str| {
        l.split(' ').any(|f| {
            f.strip_prefix("addr=")
                .is_some_and(|a| a.starts_with(&from))
        })
    };
    for line in list.lines().filter(peer) {
        if let Some(id) = line.split(' ').find_map(|f| f.strip_prefix("id=")) {
            redis::cmd("CLIENT")
                .arg("KILL")
                .arg("ID")
                .arg(id)
                .exec(&mut con)?;
        }
    }
    Ok(())
}

/// One site: its Redis and what is done to it, its share of the input,
/// its workers.
struct Site {
    server: RedisServer,
    chaos: RedisChaos,
    input: PathBuf,
    pool: Option<Pool>,
}

/// What the CRDT mode cannot do, refused before anything starts.
fn check(opts: &RunOptions, setup: &CrdtSetup) -> Result<()> {
    if setup.sites < 2 {
        bail!(
            "--sites {}: the CRDT mode needs 2 sites or more",
            setup.sites
        );
    }
    if opts.stream.is_some() || opts.autoscale.is_some() || opts.ui.is_some() {
        bail!("--redis crdt runs a batch so far (no --stream, --autoscale or --ui)");
    }
    if opts.redis_faults.at.is_some() {
        bail!("--redis-fault names a moment of one Redis's job; with --redis crdt, kill instances with --redis-kill-every");
    }
    if opts.settings.commit == Commit::PerWord {
        bail!("--commit per-word is not a CRDT (a word added twice counts twice); use per-file");
    }
    let n = setup.sites;
    if let Some(p) =
        (setup.partitions.iter()).find(|p| p.sites.iter().chain(&p.redis).any(|&i| i >= n))
    {
        bail!(
            "--partition {p:?}: sites and instances are numbered 0 to {}",
            n - 1
        );
    }
    Ok(())
}

/// Until every site's driver is done: replaces the workers that die,
/// kills one now and then (`--kill-every`), steps each instance's chaos and
/// the cuts.
fn supervise<T>(
    opts: &RunOptions,
    drivers: &[std::thread::JoinHandle<T>],
    sites: &mut [Site],
    instances: &mut [Redis],
    cuts: &mut Cuts,
    stop: &AtomicBool,
) -> Result<()> {
    let mut next_kill = opts.kill_every.map(|d| Instant::now() + d);
    let mut kill_rng = super::seeded(opts.seed, "site kill-every");
    while drivers.iter().any(|d| !d.is_finished()) {
        if stop.load(Ordering::Relaxed) {
            sites
                .iter_mut()
                .flat_map(|s| &mut s.pool)
                .for_each(Pool::kill_all);
            bail!("interrupted");
        }
        for pool in sites.iter_mut().flat_map(|s| &mut s.pool) {
            pool.supervise()?;
        }
        if let (Some(at), Some(every)) = (next_kill, opts.kill_every) {
            if Instant::now() >= at {
                let i = kill_rng.random_range(0..sites.len());
                if let Some(pool) = sites[i].pool.as_mut() {
                    pool.kill_one();
                }
                next_kill = Some(at + every);
            }
        }
        for (i, site) in sites.iter_mut().enumerate() {
            (site.chaos.step(&mut site.server)).with_context(|| format!("instance {i}"))?;
        }
        cuts.step(sites, instances)?;
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

/// How the instances' counts differ from each other, or (`--verify`)
/// from a serial count of the readable files: the first difference.
fn differences(
    opts: &RunOptions,
    all_counts: &[Counts],
    failures: &[(String, String)],
) -> Result<Option<String>> {
    let mut mismatch = None;
    for (i, c) in all_counts.iter().enumerate().skip(1) {
        if let Some(d) = c.first_difference(&all_counts[0]) {
            mismatch.get_or_insert(format!("instance {i} differs from instance 0: {d}"));
        }
    }
    if opts.verify && mismatch.is_none() {
        let want = super::verify::serial(&opts.input, opts.settings.tokenizer, failures, None)?;
        mismatch = all_counts[0]
            .first_difference(&want)
            .map(|d| format!("against a serial count: {d}"));
    }
    Ok(mismatch)
}

pub fn run(opts: &RunOptions, setup: &CrdtSetup, stop: Arc<AtomicBool>) -> Result<RunOutcome> {
    let started = Instant::now();
    check(opts, setup)?;
    let n = setup.sites;
    let net = (!setup.partitions.is_empty() || setup.partition_every.is_some())
        .then(|| Network::create(n))
        .transpose()?;
    let tmp = tempfile::Builder::new()
        .prefix("wordcount-sites-")
        .tempdir()?;
    let password = random_password();
    let events = EventLog::default();
    let Location::Dir(input) = &opts.input else {
        bail!(
            "--redis crdt divides a local directory among its sites; not {}",
            opts.input
        );
    };
    let shares = divide(input, setup.sites, tmp.path())?;
    let mut sites = shares
        .into_iter()
        .enumerate()
        .map(|(i, input)| {
            let ns = net.as_ref().map(|net| (net.ns(i), net.addr(i)));
            // Each instance snapshots on its own schedule; with kills, they
            // take turns: one every --redis-kill-every.
            let mut faults = opts.redis_faults.clone();
            faults.kill_every = faults.kill_every.map(|every| every * n as u32);
            let first = opts.redis_faults.kill_every.unwrap_or_default() * (i as u32 + 1);
            Ok(Site {
                server: RedisServer::start_in(
                    None,
                    &password,
                    ns.as_ref().map(|(name, a)| (name.as_str(), *a)),
                )?,
                chaos: RedisChaos::new(faults, events.clone())
                    .first_kill_after(first)
                    .without_verdict(),
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
    let plans: Vec<(String, String)> = (0..sites.len())
        .map(|i| (urls(i, false), urls(i, true)))
        .collect();
    for (i, (site, (url, _))) in sites.iter_mut().zip(&plans).enumerate() {
        site.pool = Some(Pool::start(
            opts,
            (url.clone(), RedisMode::Crdt, &password),
            &Location::Dir(site.input.clone()),
            net.as_ref().map(|net| net.ns(i)),
            events.clone(),
        )?);
    }
    let mut instances = sites
        .iter()
        .map(|s| {
            Redis::open(
                &s.server.url_with_password(),
                DEFAULT_PREFIX,
                Duration::from_secs(30),
            )
        })
        .collect::<Result<Vec<_>>>()?;
    let now = Instant::now();
    let mut cuts = Cuts {
        net,
        started: now,
        active: Vec::new(),
        planned: setup.partitions.clone(),
        every: setup.partition_every,
        next_random: setup.partition_every.map(|(every, _)| now + every),
        rng: super::seeded(opts.seed, "partition-every"),
        last_heal: None,
        next_repair: now + ANTI_ENTROPY,
        events: events.clone(),
        spans: Vec::new(),
    };
    let sampler = Sampler::start(
        sites.iter().map(|s| s.server.url_with_password()).collect(),
        now,
    );
    let drivers: Vec<_> = sites
        .iter()
        .zip(&plans)
        .map(|(site, (_, url))| {
            let dopts = DriverOptions {
                redis: url.clone(),
                mode: RedisMode::Crdt,
                // The runner converges the instances itself.
                site: None,
                prefix: DEFAULT_PREFIX.into(),
                input: Location::Dir(site.input.clone()),
                split: opts.split,
                output: None,
                settings: opts.settings.clone(),
                top: opts.top,
                patience: Duration::from_secs(30),
                stream: None,
                mid_enqueue: None,
            };
            let stop = stop.clone();
            std::thread::spawn(move || driver::run(dopts, &stop))
        })
        .collect();
    supervise(opts, &drivers, &mut sites, &mut instances, &mut cuts, &stop)?;
    let mut outcomes = Vec::new();
    for d in drivers {
        outcomes.push(d.join().expect("driver thread panicked")?);
    }
    for pool in sites.iter_mut().flat_map(|s| &mut s.pool) {
        pool.wait_all(Duration::from_secs(10));
    }

    for site in &mut sites {
        site.chaos.finish(&mut site.server)?;
    }
    // Every file is on one instance at least: read repair does the rest.
    cuts.heal_all(&sites)?;
    let heal = cuts.last_heal.unwrap_or_else(Instant::now);
    repair::converge(&mut instances).context("read repair")?;
    let converged_ms = heal.elapsed().as_millis() as u64;
    let samples = sampler.finish()?;
    let mut reports = Vec::new();
    let mut all_counts = Vec::new();
    for r in &mut instances {
        reports.push(repair::instance_report(r, converged_ms)?);
        all_counts.push(repair::counts(r)?);
    }

    let failures: Vec<(String, String)> = outcomes
        .iter()
        .flat_map(|o| o.failures.iter().cloned())
        .collect();
    let mismatch = differences(opts, &all_counts, &failures)?;

    // The job's result, as in every mode: the counts in `P:counts`.
    let counts = &all_counts[0];
    for r in &mut instances {
        wordcount_job::state::replace_counts(r, counts)?;
    }
    let mut report = Report::from_counts(counts, opts.top, started.elapsed().as_secs_f64());
    report.output = (opts.output.as_deref())
        .map(|target| driver::write_output(target, counts))
        .transpose()?;
    let mut job = JobFacts::default();
    for o in &outcomes {
        if let Some(j) = &o.report.job {
            job.files += j.files;
            job.bytes += j.bytes;
            job.commits_ignored += j.commits_ignored;
            job.files_failed += j.files_failed;
        }
    }
    for site in &sites {
        if let Some(pool) = &site.pool {
            job.worker_restarts += pool.restarts;
            job.workers_killed += pool.kills;
        }
        job.redis_restarts += site.chaos.restarts;
        job.files_redone += site.chaos.files_redone;
        job.snapshots += site.chaos.snapshots;
    }
    report.job = Some(job);
    report.instances = Some(reports);
    Ok(RunOutcome {
        report,
        mismatch,
        failures,
        timeline: Vec::new(),
        sites: Some(SitesTimeline {
            samples,
            cuts: cuts.spans,
        }),
        view: None,
    })
}

/// Each instance's files known every [`SAMPLE_EVERY`], on a thread and
/// connections of its own (a cut or a repair that holds up the runner's
/// loop does not hold up the samples), read from the host, which no cut
/// touches. Dropped without `finish` (the run failed), it stops.
struct Sampler {
    /// Dropped to stop the thread, which wakes at once rather than at its
    /// next sample (a short job's whole runtime is a few samples).
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<Samples>>>,
}

impl Sampler {
    fn start(urls: Vec<String>, start: Instant) -> Self {
        let (stop, stopped) = mpsc::channel();
        let thread = std::thread::spawn(move || sample(&urls, start, &stopped));
        Sampler {
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Every sample, the last one taken now.
    fn finish(mut self) -> Result<Samples> {
        drop(self.stop.take());
        let thread = self.thread.take().expect("finished once");
        thread.join().expect("sampler thread panicked")
    }
}

/// Samples from `start` until `stopped` says so (or its sender is gone),
/// and once more at the end.
fn sample(urls: &[String], start: Instant, stopped: &mpsc::Receiver<()>) -> Result<Samples> {
    let mut instances = (urls.iter())
        .map(|u| Redis::open(u, DEFAULT_PREFIX, Duration::from_secs(30)))
        .collect::<Result<Vec<_>>>()?;
    let mut samples = Vec::new();
    let mut last = false;
    loop {
        let known = (instances.iter_mut())
            .map(|r| {
                r.run(|c, k| {
                    redis::cmd("HGET")
                        .arg(&k.crdt_stats)
                        .arg(keys::crdt_stats::FILES_KNOWN)
                        .query::<Option<u64>>(c)
                })
                .map(Option::unwrap_or_default)
            })
            .collect::<Result<Vec<_>>>()?;
        samples.push((start.elapsed().as_millis() as u64, known));
        if last {
            return Ok(samples);
        }
        last = !matches!(
            stopped.recv_timeout(SAMPLE_EVERY),
            Err(mpsc::RecvTimeoutError::Timeout)
        );
    }
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
