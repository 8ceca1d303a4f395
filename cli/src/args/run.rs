//! The flags of `wordcount run`: the local job, its faults and the way
//! Redis is run (one server, RedisRaft's replicas or CRDT sites).

use super::{whole, Data, Job, Output, StreamArgs, Unreadables};
use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;
use wordcount_lab::local::raft::{self, ReplicaFault};
use wordcount_lab::local::sites;
use wordcount_lab::local::{CrdtSetup, Partition, RaftSetup, RedisFaults, RedisMoment};
use wordcount_protocol::{Fault, RedisMode};

/// The most worker processes a job may have: the bound of the
/// WordCountJob CRD (`workers`, `autoscale.maxWorkers`).
pub const MAX_WORKERS: i128 = 1000;

pub fn workers(s: &str) -> Result<usize, String> {
    match whole(s)? {
        n if n < 1 => Err("a job needs at least 1 worker process".into()),
        n if n > MAX_WORKERS => Err(format!(
            "at most {MAX_WORKERS} worker processes (the bound of the WordCountJob CRD)"
        )),
        n => Ok(n as usize),
    }
}

pub fn target_lag(s: &str) -> Result<u64, String> {
    match whole(s)? {
        n if n < 0 => Err("0 files or more".into()),
        n => u64::try_from(n).map_err(|_| format!("{n} is too large")),
    }
}

pub fn sites(s: &str) -> Result<usize, String> {
    match whole(s)? {
        n if n < 2 => Err("the CRDT mode needs 2 sites or more".into()),
        n => usize::try_from(n).map_err(|_| format!("{n} is too large")),
    }
}

/// RedisRaft's replicas: the check `wordcount run --redis raft` makes
/// again when it starts them, here so that a bad count is a usage error.
pub fn replicas(s: &str) -> Result<usize, String> {
    match whole(s)? {
        n if n < 3 || n % 2 == 0 => Err(
            "RedisRaft needs an odd number of replicas, 3 or more (2f+1 survive f failures)".into(),
        ),
        n => usize::try_from(n).map_err(|_| format!("{n} is too large")),
    }
}

/// A duration of at least `min`; `why` says why not less.
pub fn at_least(s: &str, min: Duration, why: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if d < min {
        return Err(format!(
            "at least {}: {why}",
            humantime::format_duration(min)
        ));
    }
    Ok(d)
}

pub fn kill_every(s: &str) -> Result<Duration, String> {
    at_least(
        s,
        Duration::from_millis(10),
        "a worker process needs about that long to start (0 would kill without a pause)",
    )
}

pub fn redis_kill_every(s: &str) -> Result<Duration, String> {
    at_least(
        s,
        Duration::from_millis(100),
        "a Redis needs about that long to start again (0 would kill without a pause)",
    )
}

pub fn snapshot_interval(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s).map_err(|e| e.to_string())? {
        d if d.is_zero() || d >= Duration::from_millis(10) => Ok(d),
        _ => Err("0 (no snapshots) or at least 10ms: each snapshot forks Redis".into()),
    }
}

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub data: Data,
    /// Worker processes, 1 to 1000 (the WordCountJob CRD's bound)
    /// [default: the number of cores].
    #[arg(long, value_name = "N", conflicts_with = "autoscale", allow_negative_numbers = true, value_parser = workers)]
    pub workers: Option<usize>,
    #[command(flatten)]
    pub out: Output,
    #[command(flatten)]
    pub job: Job,
    /// A fault: worker=I,crash=POINT[,file=N] or worker=I,slow=F.
    #[arg(long = "fault", value_name = "SPEC")]
    pub faults: Vec<Fault>,
    /// SIGKILL a random worker this often (e.g. 500ms); it is replaced.
    /// At least 10ms: a worker process needs about that long to start.
    #[arg(long, value_name = "DURATION", value_parser = kill_every)]
    pub kill_every: Option<Duration>,
    /// Also count serially and fail on any difference.
    #[arg(long)]
    pub verify: bool,
    #[command(flatten)]
    pub unreadable: Unreadables,
    #[command(flatten)]
    pub stream: StreamArgs,
    /// Write a stream's timeline here (CSV: a row per file, per sample of
    /// the queue and per event).
    #[arg(long, value_name = "FILE.csv", requires = "stream")]
    pub timeline: Option<PathBuf>,
    /// Scale the worker processes on lag between MIN and MAX (1 <= MIN <=
    /// MAX <= 1000), one at a time: up while more than --target-lag files
    /// wait, down once none has waited for a --cooldown.
    #[arg(long, value_name = "MIN..MAX", requires = "stream", value_parser = parse_range)]
    pub autoscale: Option<(u32, u32)>,
    /// Files waiting for a worker above which --autoscale adds one (0 or more).
    #[arg(long, value_name = "N", requires = "autoscale", default_value_t = 10, allow_negative_numbers = true, value_parser = target_lag)]
    pub target_lag: u64,
    #[arg(long, value_name = "D", requires = "autoscale", default_value = "5s", value_parser = humantime::parse_duration)]
    pub cooldown: Duration,
    #[command(flatten)]
    pub redis: RedisFaultArgs,
    #[command(flatten)]
    pub mode: ModeArgs,
    /// Serve a live view of the job in a browser, at ADDR (default: a free
    /// port on 127.0.0.1); its address is printed when the run starts.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:0")]
    pub ui: Option<std::net::SocketAddr>,
    /// Where every random choice of the run comes from (which worker
    /// --kill-every kills, which replica or site is cut): a failing run is
    /// replayed by passing its seed again [default: random, printed in the
    /// summary].
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
    /// Keep the live view up this long after the job (Ctrl-C ends it sooner).
    #[arg(long, value_name = "DURATION", requires = "ui", default_value = "0s", value_parser = humantime::parse_duration)]
    pub ui_linger: Duration,
}

/// What happens to Redis during `run`.
#[derive(Args)]
pub struct RedisFaultArgs {
    /// Checkpoint Redis (BGSAVE) this often while anything changed, e.g.
    /// 1s or 100ms; 0 for none (the default), else at least 10ms.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = snapshot_interval)]
    pub snapshot_interval: Duration,
    /// SIGKILL redis-server once each incarnation has served this long,
    /// counted from when it answers again (its snapshot loaded); it starts
    /// again from its last snapshot (without snapshots: empty) and the job
    /// redoes what it lost. With --redis raft: a random replica, once the
    /// cluster has been whole this long (at most one down or catching up).
    /// At least 100ms: a Redis needs about that long to start. A schedule
    /// under which the job cannot progress (10 restarts in a row with no
    /// more files) stops the run with a verdict.
    #[arg(long, value_name = "DURATION", value_parser = redis_kill_every)]
    pub redis_kill_every: Option<Duration>,
    /// How long a killed Redis stays down.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = humantime::parse_duration)]
    pub redis_down: Duration,
    /// Kill Redis once at a hard moment: at=enqueue (while the driver
    /// enqueues) or at=after-last-commit (every file committed, the result
    /// not written yet).
    #[arg(long, value_name = "at=MOMENT", value_parser = parse_moment)]
    pub redis_fault: Option<RedisMoment>,
}

/// How Redis is run: one, RedisRaft's replicas, or sites with a CRDT.
#[derive(Args)]
pub struct ModeArgs {
    /// How Redis is run: snapshot (one redis-server), raft (RedisRaft's
    /// replicas, with the module) or crdt (a Redis per site, the counts a
    /// CRDT).
    #[arg(long = "redis", value_enum, default_value_t)]
    pub mode: RedisMode,
    /// Sites of the CRDT mode (2 or more), each with its own Redis, driver
    /// and --workers workers, and its share of the input.
    #[arg(long, value_name = "N", default_value_t = 3, allow_negative_numbers = true, value_parser = sites)]
    pub sites: usize,
    /// Cut sites' workers from instances: sites=I[,J],redis=K[,L],at=DUR,for=DUR
    /// (--redis crdt; needs root, ip and iptables: each site runs in a
    /// network namespace).
    #[arg(long = "partition", value_name = "SPEC")]
    pub partitions: Vec<Partition>,
    /// Cut a random site from a random instance this often (at least
    /// 100ms), so long: DUR,for=DUR (needs root, ip and iptables).
    #[arg(long, value_name = "DUR,for=DUR", value_parser = sites::parse_every)]
    pub partition_every: Option<(Duration, Duration)>,
    /// RedisRaft replicas: 2f+1, odd, from 3.
    #[arg(long, value_name = "N", default_value_t = 3, allow_negative_numbers = true, value_parser = replicas)]
    pub replicas: usize,
    /// Whether each replica fsyncs its Raft log after every entry (no: a
    /// killed process loses nothing, a crashed machine may).
    #[arg(long, value_name = "yes|no", default_value = "yes", action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub raft_fsync: bool,
    /// The RedisRaft module (redisraft.so) [default: $WORDCOUNT_REDISRAFT,
    /// else ~/.cache/wordcount/redisraft.so].
    #[arg(long, value_name = "PATH")]
    pub redisraft_module: Option<PathBuf>,
    /// Kill a replica once: replica=I|leader,kill-at=DUR[,down=DUR]
    /// (without down it stays down until the job ends).
    #[arg(long = "replica-fault", value_name = "SPEC")]
    pub replica_faults: Vec<ReplicaFault>,
}

impl ModeArgs {
    pub fn crdt(&self) -> Result<Option<CrdtSetup>> {
        if self.mode != RedisMode::Crdt {
            if !self.partitions.is_empty() || self.partition_every.is_some() {
                bail!("--partition and --partition-every need --redis crdt");
            }
            return Ok(None);
        }
        if !self.partitions.is_empty() || self.partition_every.is_some() {
            need_partition_tools()?;
        }
        Ok(Some(CrdtSetup {
            sites: self.sites,
            partitions: self.partitions.clone(),
            partition_every: self.partition_every,
        }))
    }

    pub fn raft(&self) -> Result<Option<RaftSetup>> {
        if self.mode != RedisMode::RedisRaft {
            if !self.replica_faults.is_empty() {
                bail!("--replica-fault needs --redis raft");
            }
            return Ok(None);
        }
        Ok(Some(RaftSetup {
            module: raft::find_module(self.redisraft_module.as_deref())?,
            replicas: self.replicas,
            fsync: self.raft_fsync,
            faults: self.replica_faults.clone(),
        }))
    }
}

/// What partitions need, checked before anything starts: root, and the
/// commands `ip` (iproute2) and `iptables` on PATH; the error names what
/// is missing.
pub fn need_partition_tools() -> Result<()> {
    let mut missing = Vec::new();
    let mut packages = Vec::new();
    for (command, package) in [("ip", "iproute2"), ("iptables", "iptables")] {
        if which::which(command).is_ok() {
            continue;
        }
        // Installed but not on PATH: a user's PATH often lacks the sbins.
        match which::which_in(command, Some("/usr/sbin:/sbin"), "/") {
            Ok(path) => missing.push(format!("{command} on PATH (it is {})", path.display())),
            Err(_) => {
                missing.push(format!("the command {command}"));
                packages.push(package);
            }
        }
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        missing.push("root".into());
    }
    if missing.is_empty() {
        return Ok(());
    }
    let install = if packages.is_empty() {
        String::new()
    } else {
        format!(" (apt-get install {})", packages.join(" "))
    };
    bail!(
        "--partition and --partition-every need root and the commands ip and iptables \
         (Debian: apt-get install iproute2 iptables), as each site runs in a network \
         namespace of its own, cut with iptables; missing: {}{install}",
        missing.join(", ")
    );
}

impl RedisFaultArgs {
    pub fn faults(&self) -> RedisFaults {
        RedisFaults {
            snapshot_interval: (!self.snapshot_interval.is_zero())
                .then_some(self.snapshot_interval),
            kill_every: self.redis_kill_every,
            down: self.redis_down,
            at: self.redis_fault,
        }
    }
}

pub fn parse_moment(s: &str) -> Result<RedisMoment, String> {
    use clap::ValueEnum;
    let moment = s
        .strip_prefix("at=")
        .ok_or_else(|| format!("{s:?} is not at=enqueue or at=after-last-commit"))?;
    RedisMoment::from_str(moment, true)
        .map_err(|_| format!("unknown moment {moment:?} (expected enqueue or after-last-commit)"))
}

pub fn parse_range(s: &str) -> Result<(u32, u32), String> {
    let bad = || {
        format!(
            "{s:?} is not MIN..MAX with 1 <= MIN <= MAX <= {MAX_WORKERS} \
             (at most {MAX_WORKERS} worker processes; e.g. 1..4)"
        )
    };
    let (min, max) = s.split_once("..").ok_or_else(bad)?;
    match (min.parse(), max.parse()) {
        (Ok(min), Ok(max)) if 1 <= min && min <= max && i128::from(max) <= MAX_WORKERS => {
            Ok((min, max))
        }
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_name_the_problem() {
        assert!(workers("1000").is_ok());
        assert!(workers("1001")
            .unwrap_err()
            .contains("at most 1000 worker processes"));
        assert!(workers("0").unwrap_err().contains("at least 1"));
        assert!(workers("-1").unwrap_err().contains("at least 1"));
        assert!(kill_every("9ms").is_err());
        assert_eq!(kill_every("10ms"), Ok(Duration::from_millis(10)));
        assert!(redis_kill_every("99ms").is_err());
        assert_eq!(snapshot_interval("0s"), Ok(Duration::ZERO));
        assert!(snapshot_interval("5ms").is_err());
        assert!(replicas("4").is_err() && replicas("1").is_err());
        assert_eq!(replicas("5"), Ok(5));
        assert_eq!(parse_range("1..1000"), Ok((1, 1000)));
        assert!(parse_range("1..1001").is_err());
    }
}
