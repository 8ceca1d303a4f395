//! RedisRaft on this machine: 2f+1 `redis-server` replicas with the module
//! loaded, formed into one cluster (init on the first, join on the
//! others), and the faults `wordcount run` does to them: replicas killed
//! at a moment or on a schedule, each restarted from its own Raft log.

use super::RedisServer;
use crate::timeline::EventLog;
use anyhow::{bail, Context, Result};
use rand::RngExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wordcount_job::backend;
use wordcount_protocol::raft::RaftInfo;
use wordcount_protocol::{RedisMode, DEFAULT_PREFIX};

/// The environment variable naming the module when `--redisraft-module`
/// does not.
pub const MODULE_ENV: &str = "WORDCOUNT_REDISRAFT";

/// Where the module is looked for last: `~/.cache/wordcount/redisraft.so`.
pub fn default_module() -> PathBuf {
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    Path::new(&home).join(".cache/wordcount/redisraft.so")
}

/// The module to load: `flag`, else `$WORDCOUNT_REDISRAFT`, else the
/// default path; an error that says how to provide it when it is missing.
pub fn find_module(flag: Option<&Path>) -> Result<PathBuf> {
    let (path, from) = match (flag, std::env::var_os(MODULE_ENV)) {
        (Some(p), _) => (p.to_path_buf(), "--redisraft-module"),
        (None, Some(p)) if !p.is_empty() => (PathBuf::from(p), MODULE_ENV),
        _ => (default_module(), "the default path"),
    };
    if !path.is_file() {
        bail!(
            "the RedisRaft module {} ({from}) does not exist. No package carries RedisRaft: \
             build redisraft.so from github.com/RedisLabs/redisraft (commit 5945c02 loads on \
             Redis 7.0; later ones need Redis 7.2) and pass --redisraft-module PATH, set \
             {MODULE_ENV}, or put it at {}",
            path.display(),
            default_module().display()
        );
    }
    Ok(path)
}

/// RedisRaft's replicas, in their own temporary directories.
pub struct RaftCluster {
    pub replicas: Vec<RedisServer>,
    _dir: tempfile::TempDir,
}

impl RaftCluster {
    /// Starts `n` replicas and forms the cluster; returns once it has a
    /// leader and every replica has joined.
    pub fn start(module: &Path, n: usize, fsync: bool) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("wordcount-raft-")
            .tempdir()?;
        let replicas = (0..n)
            .map(|i| {
                let d = dir.path().join(format!("replica-{i}"));
                std::fs::create_dir(&d)?;
                RedisServer::start_replica(module, &d, fsync)
            })
            .collect::<Result<Vec<_>>>()?;
        let cluster = RaftCluster {
            replicas,
            _dir: dir,
        };
        let first = cluster.replicas[0].port;
        cluster.command(0, &["RAFT.CLUSTER", "INIT"])?;
        // A node that joins hears from the leader only once the leader's
        // request timeout (200 ms) has passed, when its first message went
        // before the connection was up: 10 ms while the cluster forms.
        let (_, timeout): (String, String) =
            cluster.query(0, &["CONFIG", "GET", "raft.request-timeout"])?;
        cluster.command(0, &["CONFIG", "SET", "raft.request-timeout", "10"])?;
        for i in 1..n {
            let leader = format!("127.0.0.1:{first}");
            cluster.command(i, &["RAFT.CLUSTER", "JOIN", &leader])?;
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let up = (0..n)
                .filter_map(|i| cluster.info(i).ok())
                .filter(|r| r.leader_id.is_some() && r.num_nodes == n)
                .count();
            if up == n {
                cluster.command(0, &["CONFIG", "SET", "raft.request-timeout", &timeout])?;
                return Ok(cluster);
            }
            if Instant::now() > deadline {
                bail!("the RedisRaft cluster of {n} replicas did not form within 20 s");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Every replica's URL, separated by commas: what clients are given.
    pub fn url(&self) -> String {
        let urls: Vec<String> = self.replicas.iter().map(|r| r.url()).collect();
        urls.join(",")
    }

    /// The replica that leads now, if a live one knows.
    pub fn leader(&self) -> Option<usize> {
        let infos: Vec<(usize, RaftInfo)> = (0..self.replicas.len())
            .filter_map(|i| Some((i, self.info(i).ok()?)))
            .collect();
        let leader_id = infos.iter().find_map(|(_, r)| r.leader_id)?;
        infos
            .iter()
            .find(|(_, r)| r.node_id == Some(leader_id))
            .map(|(i, _)| *i)
    }

    /// The highest Raft term a live replica knows.
    pub fn term(&self) -> u64 {
        (0..self.replicas.len())
            .filter_map(|i| self.info(i).ok())
            .map(|r| r.term)
            .max()
            .unwrap_or(0)
    }

    /// `INFO raft` of replica `i`.
    pub fn info(&self, i: usize) -> Result<RaftInfo> {
        let text: String = self.query(i, &["INFO", "raft"])?;
        RaftInfo::parse(&text).with_context(|| format!("INFO raft of replica {i}"))
    }

    fn command(&self, i: usize, args: &[&str]) -> Result<()> {
        let reply: String = self.query(i, args)?;
        tracing::debug!("replica {i}: {args:?}: {reply}");
        Ok(())
    }

    fn query<T: redis::FromRedisValue>(&self, i: usize, args: &[&str]) -> Result<T> {
        let r = &self.replicas[i];
        let mut con = redis::Client::open(r.url())?
            .get_connection_with_timeout(Duration::from_secs(1))
            .with_context(|| format!("replica {i} (port {})", r.port))?;
        con.set_read_timeout(Some(Duration::from_secs(2)))?;
        let mut cmd = redis::cmd(args[0]);
        cmd.arg(&args[1..]);
        Ok(cmd.query(&mut con)?)
    }
}

/// Which replica a fault kills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Replica(usize),
    /// Whichever leads at that moment.
    Leader,
}

/// `--replica-fault replica=I|leader,kill-at=DUR[,down=DUR]`: kill one
/// replica once, `kill_at` after the job starts, and restart it `down`
/// later (never, without).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplicaFault {
    pub target: Target,
    pub kill_at: Duration,
    pub down: Option<Duration>,
}

impl FromStr for ReplicaFault {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = |why: String| {
            format!("{s:?}: {why} (expected replica=I|leader,kill-at=DUR[,down=DUR])")
        };
        let (mut target, mut kill_at, mut down) = (None, None, None);
        for part in s.split(',') {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| bad(format!("{part:?} is not key=value")))?;
            let duration =
                || humantime::parse_duration(value).map_err(|e| bad(format!("{key}: {e}")));
            match key {
                "replica" if value == "leader" => target = Some(Target::Leader),
                "replica" => {
                    let i = value
                        .parse()
                        .map_err(|_| bad(format!("replica {value:?} is not a number")))?;
                    target = Some(Target::Replica(i));
                }
                "kill-at" => kill_at = Some(duration()?),
                "down" => down = Some(duration()?),
                _ => return Err(bad(format!("unknown key {key:?}"))),
            }
        }
        Ok(ReplicaFault {
            target: target.ok_or_else(|| bad("no replica=".into()))?,
            kill_at: kill_at.ok_or_else(|| bad("no kill-at=".into()))?,
            down,
        })
    }
}

impl std::fmt::Display for ReplicaFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.target {
            Target::Replica(i) => write!(f, "replica={i}")?,
            Target::Leader => write!(f, "replica=leader")?,
        }
        write!(f, ",kill-at={}", humantime::format_duration(self.kill_at))?;
        if let Some(d) = self.down {
            write!(f, ",down={}", humantime::format_duration(d))?;
        }
        Ok(())
    }
}

/// Kills replicas (`--replica-fault`, and a random live one every
/// `--redis-kill-every`, down for `--redis-down`), and watches the job's
/// progress meanwhile: RedisRaft must never lose a commit it acknowledged.
pub struct RaftChaos {
    faults: Vec<ReplicaFault>,
    kill_every: Option<Duration>,
    down_for: Duration,
    started: Instant,
    fired: Vec<bool>,
    next_kill: Option<Instant>,
    /// Replica -> when it starts again.
    down: Vec<(usize, Option<Instant>)>,
    /// Replicas restarted, and the leader's commit index when they came
    /// back: caught up once they have applied it.
    catching_up: Vec<(usize, Option<u64>)>,
    /// Which replica `--redis-kill-every` kills.
    rng: rand::rngs::StdRng,
    events: EventLog,
    first_term: u64,
    watcher: Option<Watcher>,
    pub kills: u64,
    pub restarts: u64,
    /// Leader elections (Raft terms begun) during the job, and commits
    /// that went missing (never, if RedisRaft keeps its word); known once
    /// finished.
    pub elections: u64,
    pub lost: u64,
}

impl RaftChaos {
    pub fn new(
        seed: u64,
        faults: Vec<ReplicaFault>,
        kill_every: Option<Duration>,
        down_for: Duration,
        cluster: &RaftCluster,
        events: EventLog,
    ) -> Result<Self> {
        let watcher = Watcher::start(&cluster.url())?;
        Ok(RaftChaos {
            fired: vec![false; faults.len()],
            next_kill: kill_every.map(|d| Instant::now() + d),
            catching_up: Vec::new(),
            rng: super::seeded(seed, "replica kill-every"),
            faults,
            kill_every,
            down_for,
            started: Instant::now(),
            down: Vec::new(),
            events,
            first_term: cluster.term(),
            watcher: Some(watcher),
            kills: 0,
            restarts: 0,
            elections: 0,
            lost: 0,
        })
    }

    /// Does what is due now.
    pub fn step(&mut self, cluster: &mut RaftCluster) -> Result<()> {
        let now = Instant::now();
        let due: Vec<usize> = self
            .down
            .iter()
            .filter(|(_, at)| at.is_some_and(|at| now >= at))
            .map(|(i, _)| *i)
            .collect();
        for i in due {
            self.restart(cluster, i)?;
        }
        let elapsed = now - self.started;
        for k in 0..self.faults.len() {
            let f = self.faults[k];
            if self.fired[k] || elapsed < f.kill_at {
                continue;
            }
            let target = match f.target {
                Target::Replica(i) => Some(i),
                Target::Leader => cluster.leader(),
            };
            // No leader known right now (an election): try again shortly.
            if let Some(i) = target {
                self.fired[k] = true;
                self.kill(cluster, i, f.down.map(|d| now + d));
            }
        }
        let Some(every) = self.kill_every else {
            return Ok(());
        };
        // At most one replica down or catching up at a time, whatever f:
        // the next kill is `every` after the cluster is whole again.
        if self.next_kill.is_none() && self.down.is_empty() && self.caught_up(cluster) {
            self.next_kill = Some(now + every);
        }
        if self.next_kill.is_some_and(|at| now >= at) {
            self.next_kill = None;
            let live: Vec<usize> = (0..cluster.replicas.len())
                .filter(|&i| cluster.replicas[i].is_running())
                .collect();
            if !live.is_empty() {
                let i = live[self.rng.random_range(0..live.len())];
                self.kill(cluster, i, Some(now + self.down_for));
            }
        }
        Ok(())
    }

    /// Whether every replica restarted has applied what the cluster had
    /// committed when it came back (and knows the leader).
    fn caught_up(&mut self, cluster: &RaftCluster) -> bool {
        if self.catching_up.is_empty() {
            return true;
        }
        let Some(leader) = cluster.leader() else {
            return false;
        };
        let Ok(lead) = cluster.info(leader) else {
            return false;
        };
        self.catching_up.retain_mut(|(i, target)| {
            let target = *target.get_or_insert(lead.commit_index);
            !cluster
                .info(*i)
                .is_ok_and(|r| r.leader_id.is_some() && r.applied_index >= target)
        });
        self.catching_up.is_empty()
    }

    /// The replica faults that fired, and those that did not, as
    /// `--replica-fault` spells them.
    pub fn fault_specs(&self) -> (Vec<String>, Vec<String>) {
        let (mut fired, mut unfired) = (Vec::new(), Vec::new());
        for (f, done) in self.faults.iter().zip(&self.fired) {
            if *done { &mut fired } else { &mut unfired }.push(f.to_string());
        }
        (fired, unfired)
    }

    /// Brings every replica back: the job is over, and its last figures
    /// are read from them.
    pub fn finish(&mut self, cluster: &mut RaftCluster) -> Result<()> {
        let down: Vec<usize> = self.down.iter().map(|(i, _)| *i).collect();
        for i in down {
            self.restart(cluster, i)?;
        }
        self.lost = self.watcher.take().map_or(0, Watcher::stop);
        self.elections = cluster.term().saturating_sub(self.first_term);
        Ok(())
    }

    fn kill(&mut self, cluster: &mut RaftCluster, i: usize, until: Option<Instant>) {
        let Some(replica) = cluster.replicas.get_mut(i) else {
            return;
        };
        if !replica.is_running() {
            return;
        }
        replica.kill();
        self.kills += 1;
        self.down.push((i, until));
        tracing::info!("killed RedisRaft replica {i}");
        self.events.note(
            "replica-killed",
            format!("replica {i} (port {})", replica.port),
        );
    }

    fn restart(&mut self, cluster: &mut RaftCluster, i: usize) -> Result<()> {
        self.down.retain(|(j, _)| *j != i);
        cluster.replicas[i]
            .restart()
            .with_context(|| format!("cannot restart RedisRaft replica {i}"))?;
        self.restarts += 1;
        self.catching_up.push((i, None));
        tracing::info!("restarted RedisRaft replica {i}");
        self.events.note(
            "replica-restarted",
            format!("replica {i}, from its Raft log"),
        );
        Ok(())
    }
}

/// Reads the job's progress every 100 ms on a thread of its own (a read
/// waits while the cluster has no majority) and counts commits that went
/// missing: `files_done` below the most seen before.
struct Watcher {
    stop: Arc<AtomicBool>,
    lost: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl Watcher {
    fn start(url: &str) -> Result<Self> {
        let mut backend = backend::open(RedisMode::RedisRaft, url, DEFAULT_PREFIX, Duration::MAX)?;
        let stop = Arc::new(AtomicBool::new(false));
        let lost = Arc::new(AtomicU64::new(0));
        let (s, l) = (stop.clone(), lost.clone());
        let thread = std::thread::spawn(move || {
            let mut most = 0;
            while !s.load(Ordering::Relaxed) {
                if let Ok(p) = backend.state().progress() {
                    let done = p.files_done + p.files_failed;
                    if done < most {
                        tracing::error!("commits went missing: {done} files done, {most} before");
                        l.fetch_add(most - done, Ordering::Relaxed);
                    }
                    most = most.max(done);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Ok(Watcher { stop, lost, thread })
    }

    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        self.lost.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replica_faults_parse() {
        let f: ReplicaFault = "replica=leader,kill-at=2s,down=500ms".parse().unwrap();
        assert_eq!(f.target, Target::Leader);
        assert_eq!(f.kill_at, Duration::from_secs(2));
        assert_eq!(f.down, Some(Duration::from_millis(500)));
        let f: ReplicaFault = "replica=1,kill-at=0s".parse().unwrap();
        assert_eq!((f.target, f.down), (Target::Replica(1), None));
        for bad in [
            "replica=x,kill-at=1s",
            "kill-at=1s",
            "replica=0",
            "replica=0,at=1s",
        ] {
            let e = bad.parse::<ReplicaFault>().unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
    }
}
