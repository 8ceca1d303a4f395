//! The supervised worker processes of a local run: a worker that dies is
//! replaced, `--kill-every` kills one now and then, and `--autoscale`
//! changes how many there are.

use super::die_with_parent;
use super::job_redis::JobRedis;
use super::options::RunOptions;
use crate::timeline::EventLog;
use anyhow::{bail, Context, Result};
use rand::RngExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use wordcount_protocol::{exit, RedisMode};
use wordcount_store::Location;

/// Worker processes that fail with an error (not a kill) before the job
/// gives up: an error that repeats is no fault we injected.
const MAX_WORKER_ERRORS: u64 = 3;
/// The worker processes, one slot per index.
pub(super) struct Pool {
    pub(super) exe: PathBuf,
    /// The network namespace the workers run in (a CRDT site's), if any.
    pub(super) netns: Option<String>,
    pub(super) url: String,
    pub(super) mode: RedisMode,
    pub(super) password: String,
    pub(super) input: Location,
    pub(super) faults: Vec<String>,
    pub(super) slots: Vec<Option<Child>>,
    /// Which worker `--kill-every` kills.
    pub(super) rng: rand::rngs::StdRng,
    pub(super) restarts: u64,
    pub(super) kills: u64,
    pub(super) errors: u64,
    /// Kills, replacements and scalings (and Redis's faults), for a
    /// stream's timeline and the live view.
    pub(super) events: EventLog,
    /// Worker indexes in use: `0..active`; a slot above is stopping.
    pub(super) active: usize,
    pub(super) peak: usize,
    pub(super) scalings: u64,
}

impl Pool {
    pub(super) fn new(opts: &RunOptions, redis: &JobRedis, events: EventLog) -> Result<Self> {
        Pool::start(
            opts,
            (redis.public_url(), redis.mode(), redis.password()),
            &opts.input,
            None,
            events,
        )
    }

    /// `opts.workers` workers of the job at (URL, mode, password) reading
    /// `input`.
    pub(super) fn start(
        opts: &RunOptions,
        (url, mode, password): (String, RedisMode, &str),
        input: &Location,
        netns: Option<String>,
        events: EventLog,
    ) -> Result<Self> {
        let mut pool = Pool {
            exe: std::env::current_exe().context("cannot find the wordcount executable")?,
            netns,
            url,
            mode,
            password: password.to_string(),
            input: input.clone(),
            faults: opts.faults.iter().map(|f| f.to_string()).collect(),
            slots: Vec::new(),
            rng: super::seeded(opts.seed, &format!("kill-every {:?}", input.to_string())),
            restarts: 0,
            kills: 0,
            errors: 0,
            events,
            active: 0,
            peak: 0,
            scalings: 0,
        };
        for _ in 0..opts.workers {
            pool.grow()?;
        }
        Ok(pool)
    }

    pub(super) fn spawn(&self, index: usize) -> Result<Child> {
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&self.exe);
                c
            }
            None => Command::new(&self.exe),
        };
        cmd.arg("worker")
            .arg("--redis")
            .arg(&self.url)
            .arg("--redis-mode")
            .arg(self.mode.as_str())
            .arg("--input")
            .arg(self.input.to_string())
            .arg("--index")
            .arg(index.to_string())
            .env("REDIS_PASSWORD", &self.password)
            // Worker chatter would drown the result; WORDCOUNT_LOG overrides.
            // Nor their outages: the driver reports each once.
            .env(
                "WORDCOUNT_LOG",
                std::env::var("WORDCOUNT_LOG")
                    .unwrap_or("warn,wordcount_job::connection=error".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        for f in &self.faults {
            cmd.arg("--fault").arg(f);
        }
        die_with_parent(&mut cmd);
        cmd.spawn().context("cannot start a worker process")
    }

    /// Replaces workers that died; forgets those that finished.
    pub(super) fn supervise(&mut self) -> Result<()> {
        for i in 0..self.slots.len() {
            let Some(child) = self.slots[i].as_mut() else {
                continue;
            };
            let Some(status) = child.try_wait()? else {
                continue;
            };
            if status.success() || i >= self.active {
                // Done, or gone with a scale-down.
                self.slots[i] = None;
                continue;
            }
            if status.code().is_some() && status.code() != Some(exit::INTERRUPTED) {
                self.errors += 1;
                if self.errors >= MAX_WORKER_ERRORS {
                    self.kill_all();
                    bail!("worker {i} failed ({status}); see its error above");
                }
            }
            tracing::info!("worker {i} died ({status}); starting a replacement");
            self.restarts += 1;
            self.note("worker-replaced", i);
            self.slots[i] = Some(self.spawn(i)?);
        }
        Ok(())
    }

    /// One more worker, with the next index.
    pub(super) fn grow(&mut self) -> Result<()> {
        let i = self.active;
        self.active += 1;
        self.peak = self.peak.max(self.active);
        if self.slots.len() < self.active {
            self.slots.push(None);
        }
        // A worker still stopping in that slot is replaced when it exits.
        if self.slots[i].is_none() {
            self.slots[i] = Some(self.spawn(i)?);
        }
        Ok(())
    }

    /// One worker fewer: the last asks its process to stop (SIGTERM), and
    /// it does once it has committed the files it holds.
    pub(super) fn shrink(&mut self) {
        self.active -= 1;
        if let Some(child) = &self.slots[self.active] {
            // SAFETY: kill(2) on a child's pid; at worst it has exited.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        }
    }

    /// SIGKILLs a random live worker (`--kill-every`).
    pub(super) fn kill_one(&mut self) {
        let live: Vec<usize> = (0..self.slots.len())
            .filter(|&i| self.slots[i].is_some())
            .collect();
        if live.is_empty() {
            return;
        }
        let i = live[self.rng.random_range(0..live.len())];
        if let Some(child) = self.slots[i].as_mut() {
            let _ = child.kill();
            self.kills += 1;
            self.note("worker-killed", i);
            tracing::info!("killed worker {i}");
        }
    }

    pub(super) fn note(&mut self, what: &str, worker: usize) {
        self.events.note(what, format!("worker {worker}"));
    }

    /// Waits for the workers to see that the job is done, then kills any left.
    pub(super) fn wait_all(&mut self, patience: Duration) {
        let deadline = Instant::now() + patience;
        for slot in &mut self.slots {
            let Some(child) = slot.as_mut() else { continue };
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        self.kill_all();
    }

    pub(super) fn kill_all(&mut self) {
        for mut child in self.slots.iter_mut().filter_map(Option::take) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.kill_all();
    }
}
