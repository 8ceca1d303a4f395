//! `wordcount run`: Redis, the driver (a thread of this process) and N
//! worker processes, supervised like a cluster would: a worker that dies
//! is replaced, and `--kill-every` kills one now and then.

use super::job_redis::JobRedis;
use super::options::{RunOptions, RunOutcome};
use super::pool::Pool;
use super::RedisMoment;
use crate::live::View;
use crate::timeline::{self, Event, EventLog};
use anyhow::{bail, Context, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wordcount_count::counts::Counts;
use wordcount_job::backend;
use wordcount_job::driver::{self, DriverOptions, DriverOutcome};
use wordcount_job::report::Phases;
use wordcount_protocol::{Autoscale, DEFAULT_PREFIX};

/// How long the job waits for its workers to connect before it starts.
const WORKERS_CONNECT: Duration = Duration::from_secs(5);

/// Waits until `n` workers are connected to Redis (`before` clients were
/// connected without them), at most `WORKERS_CONNECT`, then the job starts
/// either way. A job started before its workers can take a file times
/// their start-up, and a fault of a worker that is still starting may
/// never fire: the others take every file first.
fn wait_for_workers(redis: &JobRedis, pool: &mut Pool, n: usize, before: usize) -> Result<()> {
    let deadline = Instant::now() + WORKERS_CONNECT;
    while Instant::now() < deadline {
        let now = redis
            .clients()
            .context("cannot connect to the Redis this run started")?;
        if now >= before + n {
            return Ok(());
        }
        pool.supervise()?;
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

/// A job with one Redis or RedisRaft's replicas (the CRDT mode's sites
/// are `super::sites`).
/// What the run cannot do, refused before anything starts.
fn check(opts: &RunOptions) -> Result<()> {
    if let wordcount_store::Location::Dir(dir) = &opts.input {
        if !dir.is_dir() {
            bail!("input {} is not a directory", dir.display());
        }
    }
    if opts.workers == 0 {
        bail!("--workers must be at least 1");
    }
    let most = opts
        .autoscale
        .map_or(opts.workers, |a| a.max_workers as usize);
    if let Some(f) = opts.faults.iter().find(|f| f.worker() as usize >= most) {
        let flag = match opts.autoscale {
            Some(a) => format!("--autoscale allows at most {}", a.max_workers),
            None => format!("--workers {}", opts.workers),
        };
        bail!(
            "--fault {f}: there is no worker {} ({flag}, numbered 0 to {})",
            f.worker(),
            most - 1
        );
    }
    Ok(())
}

/// `--redis-fault at=enqueue`: the driver stops between the two halves
/// of its first enqueueing until Redis is killed. The hook for the driver,
/// and where the runner hears that the driver waits (with what to answer
/// once Redis is killed).
fn mid_enqueue_hook(
    opts: &RunOptions,
) -> (
    Option<driver::MidEnqueue>,
    Option<std::sync::mpsc::Receiver<std::sync::mpsc::Sender<()>>>,
) {
    match opts.redis_faults.at {
        Some(RedisMoment::Enqueue) => {
            let (asked, asks) = std::sync::mpsc::channel::<std::sync::mpsc::Sender<()>>();
            let hook: driver::MidEnqueue = Box::new(move || {
                let (done, wait) = std::sync::mpsc::channel();
                if asked.send(done).is_ok() {
                    let _ = wait.recv();
                }
            });
            (Some(hook), Some(asks))
        }
        _ => (None, None),
    }
}

/// `--verify`: the first difference between the job's counts and a
/// serial count of what the job could read, each file as many times as it
/// was injected.
fn against_serial(
    opts: &RunOptions,
    outcome: &DriverOutcome,
    got: &Counts,
) -> Result<Option<String>> {
    let want = super::verify::serial(
        &opts.input,
        opts.settings.tokenizer,
        &outcome.failures,
        outcome.stream.as_ref().map(|s| &s.injected[..]),
    )?;
    Ok(got.first_difference(&want))
}

pub fn run(opts: &RunOptions, stop: Arc<AtomicBool>) -> Result<RunOutcome> {
    let started = Instant::now();
    check(opts)?;
    let mut phase = Instant::now();
    let mut lap = || {
        let d = phase.elapsed().as_secs_f64();
        phase = Instant::now();
        d
    };
    let events = EventLog::default();
    let mut redis = JobRedis::start(opts.raft.as_ref(), &opts.redis_faults, &events, opts.seed)?;
    let redis_start = lap();
    let before = redis.clients()?;
    let mut pool = Pool::new(opts, &redis, events)?;
    let mut view = opts
        .ui
        .map(|addr| {
            View::start(
                addr,
                redis.mode(),
                &redis.url(),
                DEFAULT_PREFIX,
                pool.events.clone(),
            )
        })
        .transpose()?;
    if let Some(v) = &view {
        eprintln!("live view: {}", v.url());
    }
    wait_for_workers(&redis, &mut pool, opts.workers, before)?;
    let workers_start = lap();

    let dopts = DriverOptions {
        redis: redis.url(),
        mode: redis.mode(),
        site: None,
        prefix: DEFAULT_PREFIX.into(),
        input: opts.input.clone(),
        split: opts.split,
        output: opts.output.clone(),
        settings: opts.settings.clone(),
        top: opts.top,
        patience: Duration::from_secs(30),
        stream: opts.stream.clone(),
        mid_enqueue: None,
    };
    let (mid_enqueue, enqueueing) = mid_enqueue_hook(opts);
    let dopts = DriverOptions {
        mid_enqueue,
        ..dopts
    };
    let driver_stop = stop.clone();
    let driver = std::thread::spawn(move || driver::run(dopts, &driver_stop));
    let mut next_kill = opts.kill_every.map(|d| Instant::now() + d);
    let mut scaler = opts
        .autoscale
        .map(|rule| Scaler::new(rule, &redis))
        .transpose()?;
    while !driver.is_finished() {
        if stop.load(Ordering::Relaxed) {
            pool.kill_all();
            bail!("interrupted");
        }
        pool.supervise()?;
        if let (Some(at), Some(every)) = (next_kill, opts.kill_every) {
            if Instant::now() >= at {
                pool.kill_one();
                next_kill = Some(at + every);
            }
        }
        if let Some(s) = scaler.as_mut() {
            s.watch(&mut pool)?;
        }
        if let Some(done) = enqueueing.as_ref().and_then(|a| a.try_recv().ok()) {
            redis.kill_now()?;
            let _ = done.send(());
        }
        if opts.redis_faults.any() || opts.raft.is_some() {
            redis.step()?;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let outcome = driver.join().expect("driver thread panicked")?;
    redis.finish()?;
    lap();
    pool.wait_all(Duration::from_secs(10));
    let workers_exit = lap();

    // Read the stats again once the workers are gone: a straggler's late,
    // ignored commit shows only now.
    let mut backend = backend::open(
        redis.mode(),
        &redis.url(),
        DEFAULT_PREFIX,
        Duration::from_secs(5),
    )?;
    let last = backend.state().progress()?;
    let fired = backend.state().faults_fired()?;
    let got = opts.verify.then(|| backend.state().counts()).transpose()?;
    if let Some(v) = view.as_mut() {
        v.stop_reading();
    }
    let mut facts = wordcount_job::report::JobFacts::default();
    redis.record(&mut facts);
    drop(redis);
    let redis_stop = lap();

    let mismatch = got
        .map(|got| against_serial(opts, &outcome, &got))
        .transpose()?
        .flatten();
    let verify = lap();
    if let Some(v) = view.as_mut() {
        v.finish(
            &outcome.report.top,
            opts.verify.then_some(mismatch.is_none()),
        );
    }

    let mut rows = Vec::new();
    if let Some(record) = &outcome.stream {
        let mut events = pool.events.since(0);
        events.extend(
            fired
                .iter()
                .map(|(spec, at_ms)| Event::fault_fired(spec.clone(), *at_ms)),
        );
        rows = timeline::rows(record, &events);
        if let Some(path) = &opts.timeline {
            timeline::write(path, &rows)?;
        }
    }

    let mut report = outcome.report;
    report.seconds = started.elapsed().as_secs_f64();
    report.phases = Some(Phases {
        redis_start,
        workers_start,
        enqueue: outcome.enqueue.as_secs_f64(),
        count_and_commit: outcome.count_and_commit.as_secs_f64(),
        write_result: outcome.write_result.as_secs_f64(),
        workers_exit,
        redis_stop,
        verify,
    });
    if let Some(job) = report.job.as_mut() {
        job.worker_restarts = pool.restarts;
        job.workers_killed = pool.kills;
        job.peak_workers = pool.peak as u64;
        job.redis_restarts = facts.redis_restarts;
        job.files_redone = facts.files_redone;
        job.snapshots = facts.snapshots;
        job.snapshot_fork_us = facts.snapshot_fork_us;
        job.snapshot_cow_bytes = facts.snapshot_cow_bytes;
        job.replicas = facts.replicas;
        job.replica_kills = facts.replica_kills;
        job.leader_elections = facts.leader_elections;
        job.scalings = pool.scalings;
        job.commits_ignored = last.commits_ignored;
        job.faults_fired = fired.len() as u64;
        job.seed = Some(opts.seed);
        job.rollback_ms = outcome
            .rollbacks
            .iter()
            .map(|r| r.took.as_secs_f64() * 1e3)
            .collect();
        let fired_specs: Vec<&str> = fired.iter().map(|(spec, _)| spec.as_str()).collect();
        for f in &opts.faults {
            let spec = f.to_string();
            if fired_specs.contains(&spec.as_str()) {
                job.faults_fired_specs.push(spec);
            } else {
                job.faults_unfired.push(spec);
            }
        }
        job.faults_fired_specs.extend(facts.faults_fired_specs);
        job.faults_unfired.extend(facts.faults_unfired);
        job.redis_load_ms = facts.redis_load_ms;
    }
    Ok(RunOutcome {
        report,
        mismatch,
        failures: outcome.failures,
        timeline: rows,
        sites: None,
        view,
    })
}

/// `--autoscale`: reads the queue's lag twice a second and scales the
/// pool by the rule of [`Autoscale`].
struct Scaler {
    rule: Autoscale,
    redis: Box<dyn backend::Backend + Send>,
    next_look: Instant,
    last_change: Instant,
    idle_since: Option<Instant>,
}

impl Scaler {
    fn new(rule: Autoscale, redis: &JobRedis) -> Result<Self> {
        Ok(Scaler {
            rule,
            redis: backend::open_quiet(
                redis.mode(),
                &redis.url(),
                DEFAULT_PREFIX,
                Duration::from_secs(30),
            )?,
            next_look: Instant::now(),
            last_change: Instant::now(),
            idle_since: None,
        })
    }

    fn watch(&mut self, pool: &mut Pool) -> Result<()> {
        let now = Instant::now();
        if now < self.next_look {
            return Ok(());
        }
        self.next_look = now + Duration::from_millis(500);
        let lag = self.redis.depth()?.lag;
        let idle_since = *self.idle_since.get_or_insert(now);
        if lag > 0 {
            self.idle_since = None;
        }
        let idle_for = if lag == 0 {
            now - idle_since
        } else {
            Duration::ZERO
        };
        let Some(change) =
            self.rule
                .decide(pool.active as u32, lag, now - self.last_change, idle_for)
        else {
            return Ok(());
        };
        tracing::info!(
            "workers {} -> {}: {}",
            change.from,
            change.to,
            change.reason
        );
        while (pool.active as u32) < change.to {
            pool.grow()?;
        }
        while (pool.active as u32) > change.to {
            pool.shrink();
        }
        pool.scalings += 1;
        pool.events.note(
            if change.to > change.from {
                "scaled-up"
            } else {
                "scaled-down"
            },
            format!(
                "{} -> {} workers: {}",
                change.from, change.to, change.reason
            ),
        );
        self.last_change = now;
        Ok(())
    }
}
