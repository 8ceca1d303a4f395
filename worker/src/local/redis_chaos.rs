//! What `wordcount run` does to its Redis: checkpoints on a schedule
//! (`BGSAVE`), and kills (SIGKILL) on a schedule or at one of the two hard
//! moments of a job, each followed by a restart from the last checkpoint.
//! It counts the commits each restart rolled back: files the job redoes.

use super::RedisServer;
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use wordcount_protocol::keys::{meta, stats};
use wordcount_protocol::Keys;

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
    keys: Keys,
    conn: Option<redis::Connection>,
    next_snapshot: Option<Instant>,
    next_kill: Option<Instant>,
    /// Down since a kill, until then; with the files done before it.
    down: Option<(Instant, u64)>,
    moment_done: bool,
    pub restarts: u64,
    pub snapshots: u64,
    pub files_redone: u64,
}

impl RedisChaos {
    pub fn new(faults: RedisFaults) -> Self {
        let now = Instant::now();
        RedisChaos {
            next_snapshot: faults.snapshot_interval.map(|d| now + d),
            next_kill: faults.kill_every.map(|d| now + d),
            faults,
            keys: Keys::default(),
            conn: None,
            down: None,
            moment_done: false,
            restarts: 0,
            snapshots: 0,
            files_redone: 0,
        }
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
                let after = self.files_done(server)?;
                self.files_redone += before.saturating_sub(after);
                tracing::info!(
                    "Redis restarted: {} commits rolled back",
                    before - after.min(before)
                );
            }
            return Ok(());
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
        let j = self.state(server)?;
        let now = match moment {
            RedisMoment::Enqueue => j.files > 0 && !j.enqueue_done,
            RedisMoment::AfterLastCommit => j.enqueue_done && j.done >= j.files && !j.finished,
        };
        self.moment_done |= now;
        Ok(now)
    }

    /// Kills Redis: writes paused first, so that the commits counted
    /// before the kill are all the commits there were.
    fn kill(&mut self, server: &mut RedisServer) -> Result<()> {
        let conn = self.conn(server)?;
        redis::cmd("CLIENT")
            .arg("PAUSE")
            .arg(60_000)
            .arg("WRITE")
            .exec(conn)?;
        if self.state(server)?.finished {
            // The job is over (its summary written): nothing left to hurt.
            redis::cmd("CLIENT")
                .arg("UNPAUSE")
                .exec(self.conn(server)?)?;
            return Ok(());
        }
        let before = self.files_done(server)?;
        server.kill();
        self.conn = None;
        self.down = Some((Instant::now() + self.faults.down, before));
        tracing::info!("Redis killed with {before} files committed");
        Ok(())
    }

    fn snapshot(&mut self, server: &RedisServer) -> Result<()> {
        let conn = self.conn(server)?;
        match redis::cmd("BGSAVE").exec(conn) {
            Ok(()) => self.snapshots += 1,
            // One at a time: this checkpoint is taken by the one running.
            Err(e) if e.to_string().contains("in progress") => {}
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    fn files_done(&mut self, server: &RedisServer) -> Result<u64> {
        let key = self.keys.stats.clone();
        let n: Option<u64> = redis::cmd("HGET")
            .arg(key)
            .arg(stats::FILES_DONE)
            .query(self.conn(server)?)?;
        Ok(n.unwrap_or(0))
    }

    fn state(&mut self, server: &RedisServer) -> Result<JobState> {
        let k = self.keys.clone();
        let (m, st, finished): (HashMap<String, String>, HashMap<String, u64>, bool) =
            redis::pipe()
                .cmd("HGETALL")
                .arg(&k.meta)
                .cmd("HGETALL")
                .arg(&k.stats)
                .cmd("EXISTS")
                .arg(&k.summary)
                .query(self.conn(server)?)?;
        let num = |k: &str| m.get(k).and_then(|v| v.parse().ok()).unwrap_or(0u64);
        let stat = |k: &str| st.get(k).copied().unwrap_or(0);
        Ok(JobState {
            files: num(meta::FILES),
            enqueue_done: num(meta::ENQUEUE_DONE) == 1,
            done: stat(stats::FILES_DONE) + stat(stats::FILES_FAILED),
            finished,
        })
    }

    fn conn(&mut self, server: &RedisServer) -> Result<&mut redis::Connection> {
        if self.conn.is_none() {
            let client = redis::Client::open(server.url_with_password())?;
            self.conn = Some(client.get_connection_with_timeout(Duration::from_secs(5))?);
        }
        Ok(self.conn.as_mut().expect("just connected"))
    }
}

/// Where the job stands, as the faults' moments need it.
struct JobState {
    files: u64,
    enqueue_done: bool,
    /// Files committed or failed.
    done: u64,
    /// The summary is written.
    finished: bool,
}
