//! What `wordcount run` does to its Redis: checkpoints on a schedule
//! (`BGSAVE`), and kills (SIGKILL) on a schedule or at one of the two hard
//! moments of a job, each followed by a restart from the last checkpoint.
//! It counts the commits each restart rolled back: files the job redoes.
//!
//! `--redis-kill-every N` gives each incarnation of Redis N of service: the
//! next kill is N after the restarted Redis answers (its snapshot loaded),
//! not N after the last kill, so that a large snapshot's loading never
//! eats the time the job has to work. A schedule under which the job
//! cannot move (no snapshot completes within an incarnation, or a commit,
//! or writing the result, takes longer than one) is seen: after
//! [`STUCK_RESTARTS`] restarts in a row that came back with no more files
//! than before, the run stops with a verdict naming the measured figures.

use super::RedisServer;
use crate::timeline::EventLog;
use anyhow::{bail, Context, Result};
use std::time::{Duration, Instant, SystemTime};
use wordcount_job::backend::{self, Backend};
use wordcount_job::state::Progress;
use wordcount_protocol::{RedisMode, DEFAULT_PREFIX};

/// A moment of the job at which to kill Redis once (`--redis-fault at=…`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RedisMoment {
    /// While the driver enqueues: some files are in the queue, not all.
    Enqueue,
    /// Every file committed, the result not yet written.
    AfterLastCommit,
}

impl RedisMoment {
    /// As `--redis-fault at=` spells it (clap's own name for it).
    pub fn name(self) -> String {
        use clap::ValueEnum;
        self.to_possible_value()
            .map_or_else(String::new, |v| v.get_name().to_string())
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RedisFaults {
    /// `BGSAVE` this often (when anything changed); none without.
    pub snapshot_interval: Option<Duration>,
    pub kill_every: Option<Duration>,
    /// How long a killed Redis stays down.
    pub down: Duration,
    pub at: Option<RedisMoment>,
}

impl RedisFaults {
    pub fn any(&self) -> bool {
        self.snapshot_interval.is_some() || self.kill_every.is_some() || self.at.is_some()
    }
}

/// Restarts in a row that bring back no more committed files than before,
/// after which the run stops: the schedule leaves the job no room.
pub const STUCK_RESTARTS: u32 = 10;

pub struct RedisChaos {
    faults: RedisFaults,
    conn: Option<redis::Connection>,
    backend: Option<Box<dyn Backend + Send>>,
    next_snapshot: Option<Instant>,
    next_kill: Option<Instant>,
    /// Down since a kill, until then; with the files done before it.
    down: Option<(Instant, u64)>,
    /// Files done in the snapshot being written, and in the last one
    /// written: what a restart comes back with. Counted when the snapshot
    /// is taken, since the restarted Redis is written to again at once.
    saving: Option<(u64, SystemTime)>,
    saved: (u64, Option<SystemTime>),
    moment_done: bool,
    /// Since when the current Redis answers, and the snapshots written since.
    serving_since: Instant,
    saves_this_incarnation: u64,
    /// The most files a restart came back with, and the restarts in a row
    /// since that brought no more; their incarnations' lengths and
    /// snapshots.
    best: u64,
    stuck: Vec<Incarnation>,
    /// The incarnation the last kill ended, and the job's files then.
    ended: Option<Incarnation>,
    files: u64,
    /// Whether it stops the run when the job makes no progress.
    judge: bool,
    events: EventLog,
    pub restarts: u64,
    pub snapshots: u64,
    pub files_redone: u64,
    /// Time in `fork()` over all snapshots, and the largest copy on write.
    pub fork_us: u64,
    pub cow_bytes: u64,
    /// How long each restart took to answer again (loading its snapshot).
    pub loads: Vec<Duration>,
}

/// One life of Redis, from when it answered to its kill.
struct Incarnation {
    served: Duration,
    snapshots: u64,
}

impl RedisChaos {
    pub fn new(faults: RedisFaults, events: EventLog) -> Self {
        let now = Instant::now();
        RedisChaos {
            next_snapshot: faults.snapshot_interval.map(|d| now + d),
            next_kill: faults.kill_every.map(|d| now + d),
            faults,
            conn: None,
            backend: None,
            down: None,
            saving: None,
            saved: (0, None),
            moment_done: false,
            serving_since: now,
            saves_this_incarnation: 0,
            best: 0,
            stuck: Vec::new(),
            ended: None,
            files: 0,
            judge: true,
            events,
            restarts: 0,
            snapshots: 0,
            files_redone: 0,
            fork_us: 0,
            cow_bytes: 0,
            loads: Vec::new(),
        }
    }

    /// The first kill `after` from now, not `kill_every`: instances that
    /// take turns.
    pub fn first_kill_after(mut self, after: Duration) -> Self {
        if self.next_kill.is_some() {
            self.next_kill = Some(Instant::now() + after);
        }
        self
    }

    /// No verdict on the schedule: a CRDT site's instance goes on being
    /// killed after its own files are done, while the sites converge, and
    /// a restart then brings back no more files by design.
    pub fn without_verdict(mut self) -> Self {
        self.judge = false;
        self
    }

    /// Down since a kill.
    pub fn is_down(&self) -> bool {
        self.down.is_some()
    }

    /// Does what is due now; fails with a verdict when the schedule leaves
    /// the job no room to move.
    pub fn step(&mut self, server: &mut RedisServer) -> Result<()> {
        let now = Instant::now();
        if let Some((until, before)) = self.down {
            if now >= until {
                self.restart(server, before)?;
            }
            return Ok(());
        }
        if self.saving.is_some() {
            self.note_saved(server)?;
        }
        if let (Some(at), Some(every)) = (self.next_snapshot, self.faults.snapshot_interval) {
            if now >= at {
                self.snapshot(server)?;
                self.next_snapshot = Some(at.max(now - every) + every);
            }
        }
        let kill_now = self.next_kill.is_some_and(|at| now >= at);
        if kill_now || self.at_the_moment(server)? {
            self.kill(server)?;
        }
        Ok(())
    }

    /// Starts Redis again from its last snapshot; the next kill is due
    /// `--redis-kill-every` after it answers.
    fn restart(&mut self, server: &mut RedisServer, before: u64) -> Result<()> {
        let started = Instant::now();
        server.restart().context("cannot restart redis-server")?;
        let load = started.elapsed();
        self.loads.push(load);
        self.down = None;
        self.conn = None;
        self.restarts += 1;
        let (saved, saved_at) = self.saved;
        let lost = before.saturating_sub(saved);
        self.files_redone += lost;
        tracing::info!(
            "Redis restarted: {lost} commits rolled back, answering after {:.0} ms",
            load.as_secs_f64() * 1e3
        );
        self.events
            .note("redis-restarted", format!("{lost} commits rolled back"));
        self.serving_since = Instant::now();
        self.saves_this_incarnation = 0;
        self.next_kill = self.faults.kill_every.map(|every| Instant::now() + every);
        let ended = self.ended.take();
        if saved > self.best {
            self.best = saved;
            self.stuck.clear();
            return Ok(());
        }
        self.stuck.extend(ended);
        if self.judge && self.stuck.len() as u32 >= STUCK_RESTARTS {
            bail!("{}", self.verdict(saved_at));
        }
        Ok(())
    }

    /// Why the job cannot move, from what the last restarts measured.
    fn verdict(&self, saved_at: Option<SystemTime>) -> String {
        let n = self.stuck.len();
        let served = self.stuck.iter().map(|i| i.served).sum::<Duration>() / n.max(1) as u32;
        let snapshots: u64 = self.stuck.iter().map(|i| i.snapshots).sum();
        let back_from = match saved_at {
            Some(t) => format!(
                "the snapshot of {} with {}/{} files committed",
                humantime::format_rfc3339_seconds(t),
                self.saved.0,
                self.files
            ),
            None => "no snapshot (empty)".to_string(),
        };
        let interval = self
            .faults
            .snapshot_interval
            .map_or("no --snapshot-interval".to_string(), |d| {
                format!("snapshots every {}", humantime::format_duration(d))
            });
        let loads = &self.loads[self.loads.len().saturating_sub(n)..];
        let load = loads.iter().sum::<Duration>() / loads.len().max(1) as u32;
        let why = if snapshots == 0 {
            "no snapshot completed within an incarnation".to_string()
        } else if self.files > 0 && self.saved.0 >= self.files {
            format!(
                "every file is committed, and writing the result takes longer than an \
                 incarnation ({snapshots} snapshots completed in them)"
            )
        } else {
            format!(
                "{snapshots} snapshots completed in them, none with a file more: \
                 committing a file (or writing the result) takes longer than an incarnation"
            )
        };
        format!(
            "no progress: {n} restarts in a row came back from {back_from}; \
             each incarnation served {:.2} s (--redis-kill-every), after loading for {:.2} s; \
             {why} ({interval}). Kill less often, snapshot more often, or give the job smaller files",
            served.as_secs_f64(),
            load.as_secs_f64()
        )
    }
    /// Brings Redis back if it is down: the job is over, and its last
    /// figures are read from it.
    pub fn finish(&mut self, server: &mut RedisServer) -> Result<()> {
        // The job is over: no verdict on the schedule.
        self.stuck.clear();
        if let Some((_, before)) = self.down {
            self.down = Some((Instant::now(), before));
            self.step(server)?;
        }
        Ok(())
    }

    /// True, once, when the job is at `--redis-fault`'s moment (the
    /// driver itself says when it enqueues: [`RedisChaos::kill_at_the_moment`]).
    fn at_the_moment(&mut self, server: &RedisServer) -> Result<bool> {
        let Some(RedisMoment::AfterLastCommit) = self.faults.at.filter(|_| !self.moment_done)
        else {
            return Ok(false);
        };
        let p = self.progress(server)?;
        let now = p.is_done() && !p.finished;
        self.moment_done |= now;
        Ok(now)
    }

    /// Kills Redis now, the moment of `--redis-fault` (the driver is
    /// between two halves of its enqueueing).
    pub fn kill_at_the_moment(&mut self, server: &mut RedisServer) -> Result<()> {
        if self.moment_done || self.down.is_some() {
            return Ok(());
        }
        self.moment_done = true;
        self.kill(server)
    }

    /// The moment `--redis-fault` names, if any.
    pub fn moment(&self) -> Option<RedisMoment> {
        self.faults.at
    }

    /// Whether Redis was killed at that moment.
    pub fn moment_fired(&self) -> bool {
        self.moment_done
    }

    /// Kills Redis: writes paused first, so that the commits counted
    /// before the kill are all the commits there were.
    fn kill(&mut self, server: &mut RedisServer) -> Result<()> {
        let p = self.pause_writes(server)?;
        // A snapshot being written still lands: wait for it (writes are
        // paused, so it is short) to know what the restart comes back with.
        while self.saving.is_some() {
            self.note_saved(server)?;
            std::thread::sleep(Duration::from_millis(1));
        }
        if p.finished {
            // The job is over (its summary written): nothing left to hurt.
            redis::cmd("CLIENT")
                .arg("UNPAUSE")
                .exec(self.conn(server)?)?;
            return Ok(());
        }
        let before = p.files_done;
        self.files = p.files;
        server.kill();
        self.next_kill = None;
        self.ended = Some(Incarnation {
            served: self.serving_since.elapsed(),
            snapshots: self.saves_this_incarnation,
        });
        self.conn = None;
        self.down = Some((Instant::now() + self.faults.down, before));
        tracing::info!("Redis killed with {before} files committed");
        self.events
            .note("redis-killed", format!("{before} files committed"));
        Ok(())
    }

    /// BGSAVE with writes paused: the fork holds exactly the files done
    /// then.
    fn snapshot(&mut self, server: &RedisServer) -> Result<()> {
        if self.saving.is_some() {
            // One at a time: this checkpoint is taken by the one running.
            return Ok(());
        }
        let done = self.pause_writes(server)?.files_done;
        let conn = self.conn(server)?;
        let saved = redis::cmd("BGSAVE").exec(conn);
        redis::cmd("CLIENT").arg("UNPAUSE").exec(conn)?;
        match saved {
            Ok(()) => {
                // BGSAVE forks before it answers: the fork's time is known.
                let info: redis::InfoDict = redis::cmd("INFO").arg("stats").query(conn)?;
                self.fork_us += info.get::<u64>("latest_fork_usec").unwrap_or(0);
                self.snapshots += 1;
                self.events
                    .note("snapshot", format!("{done} files committed"));
                self.saving = Some((done, SystemTime::now()));
            }
            Err(e) if e.to_string().contains("in progress") => {}
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    /// Pauses every client's writes (until `CLIENT UNPAUSE` or a kill) and
    /// returns where the job stands, which holds still until then.
    fn pause_writes(&mut self, server: &RedisServer) -> Result<Progress> {
        // Connected (and its library loaded, a write) before writes pause.
        self.progress(server)?;
        redis::cmd("CLIENT")
            .arg("PAUSE")
            .arg(60_000)
            .arg("WRITE")
            .exec(self.conn(server)?)?;
        self.progress(server)
    }

    /// Once the snapshot being written is done, what it holds is what a
    /// restart comes back with (a failed one changes nothing).
    fn note_saved(&mut self, server: &RedisServer) -> Result<()> {
        let info: redis::InfoDict = redis::cmd("INFO")
            .arg("persistence")
            .query(self.conn(server)?)?;
        if info.get::<u8>("rdb_bgsave_in_progress") == Some(0) {
            if info.get::<String>("rdb_last_bgsave_status").as_deref() == Some("ok") {
                if let Some((done, at)) = self.saving {
                    self.saved = (done, Some(at));
                    self.saves_this_incarnation += 1;
                }
                let cow = info.get::<u64>("rdb_last_cow_size").unwrap_or(0);
                self.cow_bytes = self.cow_bytes.max(cow);
            }
            self.saving = None;
        }
        Ok(())
    }

    /// Where the job stands, through the backend (it reconnects after a
    /// restart on its own).
    fn progress(&mut self, server: &RedisServer) -> Result<Progress> {
        if self.backend.is_none() {
            self.backend = Some(backend::open_quiet(
                RedisMode::Snapshot,
                &server.url_with_password(),
                DEFAULT_PREFIX,
                Duration::from_secs(30),
            )?);
        }
        self.backend
            .as_mut()
            .expect("just opened")
            .state()
            .progress()
    }

    fn conn(&mut self, server: &RedisServer) -> Result<&mut redis::Connection> {
        if self.conn.is_none() {
            let client = redis::Client::open(server.url_with_password())?;
            self.conn = Some(client.get_connection_with_timeout(Duration::from_secs(5))?);
        }
        Ok(self.conn.as_mut().expect("just connected"))
    }
}
