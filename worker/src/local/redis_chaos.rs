//! What `wordcount run` does to its Redis: checkpoints on a schedule
//! (`BGSAVE`), and kills (SIGKILL) on a schedule or at one of the two hard
//! moments of a job, each followed by a restart from the last checkpoint.
//! It counts the commits each restart rolled back: files the job redoes.

use super::RedisServer;
use crate::backend::{self, Backend, Progress};
use crate::timeline::EventLog;
use anyhow::{Context, Result};
use std::time::{Duration, Instant};
use wordcount_protocol::{RedisMode, DEFAULT_PREFIX};

/// A moment of the job at which to kill Redis once (`--redis-fault at=…`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RedisMoment {
    /// While the driver enqueues: some files are in the queue, not all.
    Enqueue,
    /// Every file committed, the result not yet written.
    AfterLastCommit,
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
    saving: Option<u64>,
    saved: u64,
    moment_done: bool,
    events: EventLog,
    pub restarts: u64,
    pub snapshots: u64,
    pub files_redone: u64,
    /// Time in `fork()` over all snapshots, and the largest copy on write.
    pub fork_us: u64,
    pub cow_bytes: u64,
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
            saved: 0,
            moment_done: false,
            events,
            restarts: 0,
            snapshots: 0,
            files_redone: 0,
            fork_us: 0,
            cow_bytes: 0,
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

    /// Down since a kill.
    pub fn is_down(&self) -> bool {
        self.down.is_some()
    }

    /// Does what is due now.
    pub fn step(&mut self, server: &mut RedisServer) -> Result<()> {
        let now = Instant::now();
        if let Some((until, before)) = self.down {
            if now >= until {
                server.restart().context("cannot restart redis-server")?;
                self.down = None;
                self.conn = None;
                self.restarts += 1;
                let lost = before.saturating_sub(self.saved);
                self.files_redone += lost;
                tracing::info!("Redis restarted: {lost} commits rolled back");
                self.events
                    .note("redis-restarted", format!("{lost} commits rolled back"));
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
        let kill_now = match (self.next_kill, self.faults.kill_every) {
            (Some(at), Some(every)) if now >= at => {
                self.next_kill = Some(now + self.faults.down + every);
                true
            }
            _ => false,
        };
        if kill_now || self.at_the_moment(server)? {
            self.kill(server)?;
        }
        Ok(())
    }

    /// Brings Redis back if it is down: the job is over, and its last
    /// figures are read from it.
    pub fn finish(&mut self, server: &mut RedisServer) -> Result<()> {
        if let Some((_, before)) = self.down {
            self.down = Some((Instant::now(), before));
            self.step(server)?;
        }
        Ok(())
    }

    /// True, once, when the job is at `--redis-fault`'s moment.
    fn at_the_moment(&mut self, server: &RedisServer) -> Result<bool> {
        let Some(moment) = self.faults.at.filter(|_| !self.moment_done) else {
            return Ok(false);
        };
        let p = self.progress(server)?;
        let now = match moment {
            RedisMoment::Enqueue => p.files > 0 && !p.enqueue_done,
            RedisMoment::AfterLastCommit => p.is_done() && !p.finished,
        };
        self.moment_done |= now;
        Ok(now)
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
        server.kill();
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
                self.saving = Some(done);
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
                self.saved = self.saving.unwrap_or(self.saved);
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
            self.backend = Some(backend::open(
                RedisMode::Snapshot,
                &server.url_with_password(),
                DEFAULT_PREFIX,
                Duration::from_secs(30),
            )?);
        }
        self.backend.as_mut().expect("just opened").progress()
    }

    fn conn(&mut self, server: &RedisServer) -> Result<&mut redis::Connection> {
        if self.conn.is_none() {
            let client = redis::Client::open(server.url_with_password())?;
            self.conn = Some(client.get_connection_with_timeout(Duration::from_secs(5))?);
        }
        Ok(self.conn.as_mut().expect("just connected"))
    }
}
