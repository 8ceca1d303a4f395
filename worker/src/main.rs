//! `wordcount`: count words fast, or through Redis with crashing and slow
//! workers. See `wordcount --help`.

use anyhow::{bail, Result};
use clap::{Args, Parser, Subcommand};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wordcount::backend::JobSettings;
use wordcount::count::{count_files, shard_main, Parallelism};
use wordcount::driver::{self, judge_unreadable, DriverOptions, Unreadable};
use wordcount::generate::{generate, parse_size, CorpusSpec};
use wordcount::input;
use wordcount::local::raft::{self, ReplicaFault};
use wordcount::local::sites::{self, Partition};
use wordcount::local::{self, CrdtSetup, RaftSetup, RedisFaults, RedisMoment, RunOptions};
use wordcount::report::Report;
use wordcount::source::StreamPlan;
use wordcount::worker::{self, WorkerOptions};
use wordcount_protocol::{
    exit, Autoscale, Backpressure, Commit, Fault, OnUnreadable, RedisMode, Tokenizer,
    DEFAULT_PREFIX,
};

#[derive(Parser)]
#[command(
    name = "wordcount",
    version,
    about = "Distributed word count through Redis, with faults to study"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Count the words of files on this machine, serially or in parallel.
    Count {
        /// Files or directories (walked recursively, in sorted order).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        out: Output,
        /// Count on N threads.
        #[arg(long, value_name = "N", conflicts_with = "processes")]
        threads: Option<usize>,
        /// Count in N child processes.
        #[arg(long, value_name = "N")]
        processes: Option<usize>,
    },
    /// Run a whole distributed job here: redis-server, a driver, N workers.
    Run(Box<RunArgs>),
    /// Enqueue the input files and wait for the workers (what the driver pod runs).
    Driver {
        #[command(flatten)]
        conn: Conn,
        /// The input directory (file paths are enqueued relative to it).
        #[arg(long)]
        input: PathBuf,
        #[command(flatten)]
        job: Job,
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        unreadable: Unreadables,
        #[command(flatten)]
        stream: StreamArgs,
    },
    /// Take files from the queue and count them (what a worker pod runs).
    Worker {
        #[command(flatten)]
        conn: Conn,
        /// The input directory the driver enqueued from, as this worker sees it.
        #[arg(long)]
        input: PathBuf,
        /// This worker's index, which faults name.
        #[arg(long, env = "JOB_COMPLETION_INDEX", default_value_t = 0)]
        index: u32,
        /// Consumer name in Redis [default: worker-INDEX-PID].
        #[arg(long)]
        name: Option<String>,
        /// A fault: worker=I,crash=POINT[,file=N] or worker=I,slow=F.
        #[arg(long = "fault", value_name = "SPEC")]
        faults: Vec<Fault>,
    },
    /// Write a synthetic corpus (Zipf-distributed words), or tweets.
    Generate {
        /// Directory to write into.
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 10)]
        files: usize,
        /// Write tweets instead: a line each, up to 280 characters, the
        /// words with hashtags, mentions, links and emoji.
        #[arg(long, conflicts_with_all = ["bytes", "skew"])]
        tweets: bool,
        /// Tweets per file (with --tweets).
        #[arg(long, value_name = "T", default_value_t = 100, requires = "tweets")]
        tweets_per_file: usize,
        /// Bytes per file, e.g. 4MB or 1GiB.
        #[arg(long, default_value = "1MiB", value_parser = parse_size)]
        bytes: u64,
        /// Distinct words to draw from.
        #[arg(long, default_value_t = 50_000)]
        vocabulary: u64,
        /// Zipf exponent (1 is like natural text, 0 uniform).
        #[arg(long, default_value_t = 1.0)]
        zipf: f64,
        /// Make the last file this many times larger.
        #[arg(long, default_value_t = 1.0)]
        skew: f64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Run an experiment: write CSV and a PNG plot, print a table.
    #[cfg(feature = "experiments")]
    Experiment(wordcount::experiments::ExperimentArgs),
    /// Run the experiments of the labs and write a report that answers
    /// each lab's questions: OUT/report.md and OUT/report.html.
    #[cfg(feature = "experiments")]
    Report(wordcount::experiments::ReportArgs),
    /// Count the files listed on stdin and write packed counts (used by --processes).
    #[command(hide = true)]
    Shard {
        #[arg(long, default_value = "alnum")]
        tokenizer: Tokenizer,
    },
}

#[derive(Args)]
struct Output {
    /// How many of the most frequent words to print (0 or more).
    #[arg(long, value_name = "K", default_value_t = 10, allow_negative_numbers = true, value_parser = top)]
    top: usize,
    #[arg(long, value_enum, default_value_t)]
    tokenizer: Tokenizer,
    /// Print one JSON object instead of `count word` lines.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct Conn {
    /// Redis URL, redis://host:port; the password comes from REDIS_PASSWORD.
    #[arg(long, env = "REDIS_URL")]
    redis: String,
    /// How Redis is run (the coordination backend).
    #[arg(long, value_enum, default_value_t)]
    redis_mode: RedisMode,
    /// Prefix of the job's keys in Redis.
    #[arg(long, default_value = DEFAULT_PREFIX)]
    prefix: String,
    /// Give up after Redis has been unreachable this long (with --site:
    /// also after another site's instance showed no change this long).
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    patience: Duration,
    /// Run site I of a CRDT job (--redis-mode crdt) with no runner: --redis
    /// lists every site's instance, in the same order for all sites, and
    /// the I-th is this site's own. The driver enqueues its share of the
    /// input, the files at positions congruent to I modulo the number of
    /// instances in its sorted listing; once they are committed it pulls
    /// from the other instances until every site is done and all hold the
    /// same files, then writes the whole job's counts on its own instance.
    #[arg(long, value_name = "I")]
    site: Option<usize>,
}

impl Conn {
    /// The instances as the backend takes them: with --site, the site's
    /// own first.
    fn own_first(&self) -> Result<String> {
        Ok(
            match wordcount::crdt::site::Site::parse(self.redis_mode, &self.redis, self.site)? {
                Some(site) => site.own_first(),
                None => self.redis.clone(),
            },
        )
    }
}

#[derive(Args)]
struct Job {
    /// Steal a file from a worker that has held it this long (milliseconds,
    /// at least 10: a claim timeout of 0 would steal every file at once,
    /// and one of a few ms steals files from the workers still counting them).
    #[arg(long, value_name = "MS", default_value_t = 5000, allow_negative_numbers = true, value_parser = claim_timeout)]
    claim_timeout: u64,
    #[arg(long, value_enum, default_value_t)]
    commit: Commit,
}

#[derive(Args)]
struct Unreadables {
    /// What a file that cannot be read does: fail the job (after counting
    /// every other file, exit code 3) or only warn.
    #[arg(long, value_enum, default_value_t)]
    on_unreadable: OnUnreadable,
}

#[derive(Args)]
struct StreamArgs {
    /// Make the job a stream: inject --rate files a second as micro-batches,
    /// cycling over the input, and measure each file's latency.
    #[arg(long)]
    stream: bool,
    /// Files injected per second (above 0).
    #[arg(long, value_name = "R", requires = "stream", default_value_t = 10.0, allow_negative_numbers = true, value_parser = positive_rate)]
    rate: f64,
    /// How long files fall due (e.g. 30s) [default: every input file once].
    #[arg(long, value_name = "D", requires = "stream", value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// One micro-batch per tick.
    #[arg(long, value_name = "T", requires = "stream", default_value = "1s", value_parser = positive_duration)]
    tick: Duration,
    /// What the source does when the workers fall behind.
    #[arg(long, value_enum, requires = "stream", default_value_t)]
    backpressure: Backpressure,
    /// Lag + pending above which pause and adaptive hold back (at least 1).
    #[arg(long, value_name = "N", requires = "stream", default_value_t = 100, allow_negative_numbers = true, value_parser = max_lag)]
    max_lag: u64,
}

impl StreamArgs {
    fn plan(&self) -> Option<StreamPlan> {
        self.stream.then_some(StreamPlan {
            rate: self.rate,
            duration: self.duration,
            tick: self.tick,
            backpressure: self.backpressure,
            max_lag: self.max_lag,
        })
    }
}

fn positive_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r > 0.0 && r.is_finite() => Ok(r),
        _ => Err(format!("{s} is not a rate above 0 (files per second)")),
    }
}

/// The most worker processes a job may have: the bound of the
/// WordCountJob CRD (`workers`, `autoscale.maxWorkers`).
const MAX_WORKERS: i128 = 1000;

/// `s` as a whole number, negative ones included: the numeric flags allow
/// negative numbers, so that `-1` is refused for its value here rather than
/// taken by clap for a flag it does not know.
fn whole(s: &str) -> Result<i128, String> {
    s.parse().map_err(|_| "not a whole number".into())
}

fn workers(s: &str) -> Result<usize, String> {
    match whole(s)? {
        n if n < 1 => Err("a job needs at least 1 worker process".into()),
        n if n > MAX_WORKERS => Err(format!(
            "at most {MAX_WORKERS} worker processes (the bound of the WordCountJob CRD)"
        )),
        n => Ok(n as usize),
    }
}

fn top(s: &str) -> Result<usize, String> {
    match whole(s)? {
        n if n < 0 => Err("the number of words to print is 0 or more".into()),
        n => usize::try_from(n).map_err(|_| format!("{n} is too large")),
    }
}

/// The least `--claim-timeout`, in milliseconds.
const MIN_CLAIM_TIMEOUT_MS: i128 = 10;

fn claim_timeout(s: &str) -> Result<u64, String> {
    match whole(s)? {
        n if n < MIN_CLAIM_TIMEOUT_MS => Err(format!(
            "at least {MIN_CLAIM_TIMEOUT_MS} ms: a claim timeout of 0 steals every file at \
             once, and one of a few ms steals files from the workers still counting them"
        )),
        n => u64::try_from(n).map_err(|_| format!("{n} is too large")),
    }
}

fn max_lag(s: &str) -> Result<u64, String> {
    match whole(s)? {
        n if n < 1 => Err("at least 1 file".into()),
        n => u64::try_from(n).map_err(|_| format!("{n} is too large")),
    }
}

fn target_lag(s: &str) -> Result<u64, String> {
    match whole(s)? {
        n if n < 0 => Err("0 files or more".into()),
        n => u64::try_from(n).map_err(|_| format!("{n} is too large")),
    }
}

fn sites(s: &str) -> Result<usize, String> {
    match whole(s)? {
        n if n < 2 => Err("the CRDT mode needs 2 sites or more".into()),
        n => usize::try_from(n).map_err(|_| format!("{n} is too large")),
    }
}

/// RedisRaft's replicas: the check `wordcount run --redis raft` makes
/// again when it starts them, here so that a bad count is a usage error.
fn replicas(s: &str) -> Result<usize, String> {
    match whole(s)? {
        n if n < 3 || n % 2 == 0 => Err(
            "RedisRaft needs an odd number of replicas, 3 or more (2f+1 survive f failures)".into(),
        ),
        n => usize::try_from(n).map_err(|_| format!("{n} is too large")),
    }
}

/// A duration of at least `min`; `why` says why not less.
fn at_least(s: &str, min: Duration, why: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if d < min {
        return Err(format!(
            "at least {}: {why}",
            humantime::format_duration(min)
        ));
    }
    Ok(d)
}

fn kill_every(s: &str) -> Result<Duration, String> {
    at_least(
        s,
        Duration::from_millis(10),
        "a worker process needs about that long to start (0 would kill without a pause)",
    )
}

fn redis_kill_every(s: &str) -> Result<Duration, String> {
    at_least(
        s,
        Duration::from_millis(100),
        "a Redis needs about that long to start again (0 would kill without a pause)",
    )
}

fn snapshot_interval(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s).map_err(|e| e.to_string())? {
        d if d.is_zero() || d >= Duration::from_millis(10) => Ok(d),
        _ => Err("0 (no snapshots) or at least 10ms: each snapshot forks Redis".into()),
    }
}

fn positive_duration(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err("must be longer than 0".into()),
        Err(e) => Err(e.to_string()),
    }
}

#[derive(Args)]
struct RunArgs {
    #[arg(long)]
    input: PathBuf,
    /// Worker processes, 1 to 1000 (the WordCountJob CRD's bound)
    /// [default: the number of cores].
    #[arg(long, value_name = "N", conflicts_with = "autoscale", allow_negative_numbers = true, value_parser = workers)]
    workers: Option<usize>,
    #[command(flatten)]
    out: Output,
    #[command(flatten)]
    job: Job,
    /// A fault: worker=I,crash=POINT[,file=N] or worker=I,slow=F.
    #[arg(long = "fault", value_name = "SPEC")]
    faults: Vec<Fault>,
    /// SIGKILL a random worker this often (e.g. 500ms); it is replaced.
    /// At least 10ms: a worker process needs about that long to start.
    #[arg(long, value_name = "DURATION", value_parser = kill_every)]
    kill_every: Option<Duration>,
    /// Also count serially and fail on any difference.
    #[arg(long)]
    verify: bool,
    #[command(flatten)]
    unreadable: Unreadables,
    #[command(flatten)]
    stream: StreamArgs,
    /// Write a stream's timeline here (CSV: a row per file, per sample of
    /// the queue and per event).
    #[arg(long, value_name = "FILE.csv", requires = "stream")]
    timeline: Option<PathBuf>,
    /// Scale the worker processes on lag between MIN and MAX (1 <= MIN <=
    /// MAX <= 1000), one at a time: up while more than --target-lag files
    /// wait, down once none has waited for a --cooldown.
    #[arg(long, value_name = "MIN..MAX", requires = "stream", value_parser = parse_range)]
    autoscale: Option<(u32, u32)>,
    /// Files waiting for a worker above which --autoscale adds one (0 or more).
    #[arg(long, value_name = "N", requires = "autoscale", default_value_t = 10, allow_negative_numbers = true, value_parser = target_lag)]
    target_lag: u64,
    #[arg(long, value_name = "D", requires = "autoscale", default_value = "5s", value_parser = humantime::parse_duration)]
    cooldown: Duration,
    #[command(flatten)]
    redis: RedisFaultArgs,
    #[command(flatten)]
    mode: ModeArgs,
    /// Serve a live view of the job in a browser, at ADDR (default: a free
    /// port on 127.0.0.1); its address is printed when the run starts.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:0")]
    ui: Option<std::net::SocketAddr>,
    /// Where every random choice of the run comes from (which worker
    /// --kill-every kills, which replica or site is cut): a failing run is
    /// replayed by passing its seed again [default: random, printed in the
    /// summary].
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
    /// Keep the live view up this long after the job (Ctrl-C ends it sooner).
    #[arg(long, value_name = "DURATION", requires = "ui", default_value = "0s", value_parser = humantime::parse_duration)]
    ui_linger: Duration,
}

/// What happens to Redis during `run`.
#[derive(Args)]
struct RedisFaultArgs {
    /// Checkpoint Redis (BGSAVE) this often while anything changed, e.g.
    /// 1s or 100ms; 0 for none (the default), else at least 10ms.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = snapshot_interval)]
    snapshot_interval: Duration,
    /// SIGKILL redis-server once each incarnation has served this long,
    /// counted from when it answers again (its snapshot loaded); it starts
    /// again from its last snapshot (without snapshots: empty) and the job
    /// redoes what it lost. With --redis raft: a random replica, once the
    /// cluster has been whole this long (at most one down or catching up).
    /// At least 100ms: a Redis needs about that long to start. A schedule
    /// under which the job cannot progress (10 restarts in a row with no
    /// more files) stops the run with a verdict.
    #[arg(long, value_name = "DURATION", value_parser = redis_kill_every)]
    redis_kill_every: Option<Duration>,
    /// How long a killed Redis stays down.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = humantime::parse_duration)]
    redis_down: Duration,
    /// Kill Redis once at a hard moment: at=enqueue (while the driver
    /// enqueues) or at=after-last-commit (every file committed, the result
    /// not written yet).
    #[arg(long, value_name = "at=MOMENT", value_parser = parse_moment)]
    redis_fault: Option<RedisMoment>,
}

/// How Redis is run: one, RedisRaft's replicas, or sites with a CRDT.
#[derive(Args)]
struct ModeArgs {
    /// How Redis is run: snapshot (one redis-server), raft (RedisRaft's
    /// replicas, with the module) or crdt (a Redis per site, the counts a
    /// CRDT).
    #[arg(long = "redis", value_enum, default_value_t)]
    mode: RedisMode,
    /// Sites of the CRDT mode (2 or more), each with its own Redis, driver
    /// and --workers workers, and its share of the input.
    #[arg(long, value_name = "N", default_value_t = 3, allow_negative_numbers = true, value_parser = sites)]
    sites: usize,
    /// Cut sites' workers from instances: sites=I[,J],redis=K[,L],at=DUR,for=DUR
    /// (--redis crdt; needs root, ip and iptables: each site runs in a
    /// network namespace).
    #[arg(long = "partition", value_name = "SPEC")]
    partitions: Vec<Partition>,
    /// Cut a random site from a random instance this often (at least
    /// 100ms), so long: DUR,for=DUR (needs root, ip and iptables).
    #[arg(long, value_name = "DUR,for=DUR", value_parser = sites::parse_every)]
    partition_every: Option<(Duration, Duration)>,
    /// RedisRaft replicas: 2f+1, odd, from 3.
    #[arg(long, value_name = "N", default_value_t = 3, allow_negative_numbers = true, value_parser = replicas)]
    replicas: usize,
    /// Whether each replica fsyncs its Raft log after every entry (no: a
    /// killed process loses nothing, a crashed machine may).
    #[arg(long, value_name = "yes|no", default_value = "yes", action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    raft_fsync: bool,
    /// The RedisRaft module (redisraft.so) [default: $WORDCOUNT_REDISRAFT,
    /// else ~/.cache/wordcount/redisraft.so].
    #[arg(long, value_name = "PATH")]
    redisraft_module: Option<PathBuf>,
    /// Kill a replica once: replica=I|leader,kill-at=DUR[,down=DUR]
    /// (without down it stays down until the job ends).
    #[arg(long = "replica-fault", value_name = "SPEC")]
    replica_faults: Vec<ReplicaFault>,
}

impl ModeArgs {
    fn crdt(&self) -> Result<Option<CrdtSetup>> {
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

    fn raft(&self) -> Result<Option<RaftSetup>> {
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
fn need_partition_tools() -> Result<()> {
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
    fn faults(&self) -> RedisFaults {
        RedisFaults {
            snapshot_interval: (!self.snapshot_interval.is_zero())
                .then_some(self.snapshot_interval),
            kill_every: self.redis_kill_every,
            down: self.redis_down,
            at: self.redis_fault,
        }
    }
}

fn parse_moment(s: &str) -> Result<RedisMoment, String> {
    use clap::ValueEnum;
    let moment = s
        .strip_prefix("at=")
        .ok_or_else(|| format!("{s:?} is not at=enqueue or at=after-last-commit"))?;
    RedisMoment::from_str(moment, true)
        .map_err(|_| format!("unknown moment {moment:?} (expected enqueue or after-last-commit)"))
}

fn parse_range(s: &str) -> Result<(u32, u32), String> {
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

/// The error and its causes, each once: a cause whose text is already in
/// what is printed so far is left out (a Redis error repeats its source, so
/// `{e:#}` printed `unexpected end of file: unexpected end of file`).
fn describe(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let cause = cause.to_string();
        if cause.is_empty() || text.contains(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}

fn main() {
    let cli = Cli::parse();
    let default_log = match cli.command {
        Cmd::Driver { .. } | Cmd::Worker { .. } => "info",
        _ => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("WORDCOUNT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_log));
    let stop = Arc::new(AtomicBool::new(false));
    // Once interrupted, a command that runs its own Redis (run, experiment,
    // report) ends it while its driver thread may still be winding down;
    // that thread's "Redis unavailable, retrying" is no news, so the log
    // ends there (`wordcount: interrupted` follows). A driver's or a
    // worker's log (a pod's) goes on to the end.
    let quiet_once_stopped = !matches!(cli.command, Cmd::Driver { .. } | Cmd::Worker { .. });
    let stopped = stop.clone();
    let writer = move || -> Box<dyn std::io::Write> {
        if quiet_once_stopped && stopped.load(Ordering::Relaxed) {
            Box::new(std::io::sink())
        } else {
            Box::new(std::io::stderr())
        }
    };
    // Colours for a person at a terminal; a pipe or a file (a pod's log, a
    // test) gets plain text.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let flag = stop.clone();
    // Ctrl-C (SIGINT), and SIGTERM too (ctrlc's `termination` feature):
    // both stop the job the same way, and exit 130.
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed));
    match execute(cli.command, stop.clone()) {
        Ok(()) => {}
        Err(e) if stop.load(Ordering::Relaxed) => {
            eprintln!("wordcount: {}", describe(&e));
            std::process::exit(exit::INTERRUPTED);
        }
        Err(e) => {
            eprintln!("wordcount: error: {}", describe(&e));
            let code = if e.is::<Unreadable>() {
                exit::UNREADABLE
            } else {
                exit::ERROR
            };
            std::process::exit(code);
        }
    }
}

fn execute(cmd: Cmd, stop: Arc<AtomicBool>) -> Result<()> {
    match cmd {
        Cmd::Count {
            paths,
            out,
            threads,
            processes,
        } => {
            let started = Instant::now();
            let files = input::list(&paths)?;
            let par = match (threads, processes) {
                (Some(n), _) => Parallelism::Threads(n),
                (_, Some(n)) => Parallelism::Processes(n),
                _ => Parallelism::Serial,
            };
            if matches!(par, Parallelism::Threads(0) | Parallelism::Processes(0)) {
                bail!("--threads and --processes take at least 1");
            }
            let counts = count_files(&files, out.tokenizer, par)?;
            Report::from_counts(&counts, out.top, started.elapsed().as_secs_f64())
                .print(out.json)?;
        }
        Cmd::Run(a) => {
            let autoscale = a.autoscale.map(|(min, max)| Autoscale {
                min_workers: min,
                max_workers: max,
                target_lag: a.target_lag,
                cooldown: a.cooldown,
            });
            let opts = RunOptions {
                input: a.input,
                workers: match autoscale {
                    Some(rule) => rule.min_workers as usize,
                    None => a.workers.unwrap_or_else(|| {
                        std::thread::available_parallelism().map_or(2, |n| n.get())
                    }),
                },
                top: a.out.top,
                settings: settings(&a.out, &a.job),
                faults: a.faults,
                kill_every: a.kill_every,
                verify: a.verify,
                stream: a.stream.plan(),
                timeline: a.timeline,
                autoscale,
                redis_faults: a.redis.faults(),
                raft: a.mode.raft()?,
                crdt: a.mode.crdt()?,
                ui: a.ui,
                seed: a.seed.unwrap_or_else(rand::random),
            };
            let outcome = local::run(&opts, stop.clone())?;
            outcome.report.print(a.out.json)?;
            if let Some(job) = &outcome.report.job {
                if !a.out.json {
                    let phases = outcome.report.phases.as_ref().map_or(String::new(), |p| {
                        let named: Vec<String> = p
                            .named()
                            .iter()
                            .map(|(name, s)| format!("{name} {s:.3}"))
                            .collect();
                        format!(" ({})", named.join(", "))
                    });
                    eprintln!(
                        "{} files, {} words in {:.3} s{}; \
                         {} workers killed, {} restarted, {} duplicate commits ignored",
                        job.files,
                        outcome.report.words,
                        outcome.report.seconds,
                        phases,
                        job.workers_killed,
                        job.worker_restarts,
                        job.commits_ignored
                    );
                    if !job.faults_fired_specs.is_empty() {
                        eprintln!("faults fired: {}", job.faults_fired_specs.join("; "));
                    }
                    for f in &job.faults_unfired {
                        eprintln!(
                            "fault {f} never fired: the job ended at {:.2} s",
                            outcome.report.seconds
                        );
                    }
                    if let Some(s) = &outcome.report.stream {
                        eprintln!("{}", s.line());
                    }
                    if let Some(instances) = &outcome.report.instances {
                        let each = |f: fn(&wordcount::report::InstanceReport) -> u64| {
                            let v: Vec<String> =
                                instances.iter().map(|i| f(i).to_string()).collect();
                            v.join(" / ")
                        };
                        eprintln!(
                            "crdt: {} instances, files known {}, repaired {}, converged {} ms after the sites were done",
                            instances.len(),
                            each(|i| i.files_known),
                            each(|i| i.files_repaired),
                            instances.first().map_or(0, |i| i.converged_ms)
                        );
                    }
                    if job.replicas > 0 {
                        eprintln!(
                            "redisraft: {} replicas, {} killed, {} restarted, {} leader elections, {} commits lost",
                            job.replicas,
                            job.replica_kills,
                            job.redis_restarts,
                            job.leader_elections,
                            job.files_redone
                        );
                    } else if job.redis_restarts > 0 || job.snapshots > 0 {
                        eprintln!(
                            "redis: {} snapshots (fork {:.1} ms in all, at most {:.1} MiB \
                             copied on write), {} restarts, {} files redone",
                            job.snapshots,
                            job.snapshot_fork_us as f64 / 1e3,
                            job.snapshot_cow_bytes as f64 / (1u64 << 20) as f64,
                            job.redis_restarts,
                            job.files_redone
                        );
                        if !job.redis_load_ms.is_empty() {
                            let most = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
                            eprintln!(
                                "recovery: Redis answered again {:.0} ms after a restart at most \
                                 (loading its snapshot); the driver took back {} rollbacks in \
                                 {:.1} ms at most",
                                most(&job.redis_load_ms),
                                job.rollback_ms.len(),
                                most(&job.rollback_ms)
                            );
                        }
                    }
                    if job.scalings > 0 {
                        eprintln!(
                            "autoscale: {} changes, at most {} workers",
                            job.scalings, job.peak_workers
                        );
                    }
                }
            }
            if let Some(seed) = outcome.report.job.as_ref().and_then(|j| j.seed) {
                if !a.out.json {
                    eprintln!("seed {seed} (--seed {seed} replays the run's random choices)");
                }
            }
            if let Some(view) = &outcome.view {
                linger(view, a.ui_linger, &stop);
            }
            if let Some(diff) = outcome.mismatch {
                bail!("verification failed: {diff}");
            }
            if opts.verify {
                eprintln!("verified: the counts equal a serial count");
            }
            judge_unreadable(&outcome.failures, a.unreadable.on_unreadable)?;
        }
        Cmd::Driver {
            conn,
            input,
            job,
            out,
            unreadable,
            stream,
        } => {
            let opts = DriverOptions {
                redis: conn.redis,
                mode: conn.redis_mode,
                site: conn.site,
                prefix: conn.prefix,
                input,
                settings: settings(&out, &job),
                top: out.top,
                patience: conn.patience,
                stream: stream.plan(),
                mid_enqueue: None,
            };
            let outcome = driver::run(opts, &stop)?;
            if let Some(s) = &outcome.report.stream {
                tracing::info!("{}", s.line());
            }
            outcome.report.print(out.json)?;
            judge_unreadable(&outcome.failures, unreadable.on_unreadable)?;
        }
        Cmd::Worker {
            conn,
            input,
            index,
            name,
            faults,
        } => {
            let name = name.unwrap_or_else(|| format!("worker-{index}-{}", std::process::id()));
            let stats = worker::run(
                WorkerOptions {
                    redis: conn.own_first()?,
                    mode: conn.redis_mode,
                    prefix: conn.prefix,
                    input,
                    index,
                    name,
                    faults,
                    patience: conn.patience,
                },
                &stop,
            )?;
            tracing::info!(
                files = stats.files,
                stolen = stats.stolen,
                ignored = stats.ignored,
                "job done"
            );
        }
        Cmd::Generate {
            out,
            files,
            tweets: true,
            tweets_per_file,
            vocabulary,
            zipf,
            seed,
            ..
        } => {
            let spec = wordcount::generate::TweetSpec {
                files,
                tweets_per_file,
                vocabulary,
                zipf,
                seed,
            };
            let written = wordcount::generate::generate_tweets(&out, &spec)?;
            eprintln!(
                "wrote {} files of tweets into {}",
                written.len(),
                out.display()
            );
        }
        Cmd::Generate {
            out,
            files,
            bytes,
            vocabulary,
            zipf,
            skew,
            seed,
            ..
        } => {
            let spec = CorpusSpec {
                files,
                bytes_per_file: bytes,
                vocabulary,
                zipf,
                skew,
                seed,
            };
            let written = generate(&out, &spec)?;
            eprintln!("wrote {} files into {}", written.len(), out.display());
        }
        #[cfg(feature = "experiments")]
        Cmd::Experiment(args) => wordcount::experiments::run_with_stop(args, stop.clone())?,
        #[cfg(feature = "experiments")]
        Cmd::Report(args) => wordcount::experiments::report(args, stop.clone())?,
        Cmd::Shard { tokenizer } => shard_main(tokenizer)?,
    }
    Ok(())
}

fn settings(out: &Output, job: &Job) -> JobSettings {
    JobSettings {
        tokenizer: out.tokenizer,
        commit: job.commit,
        claim_timeout: Duration::from_millis(job.claim_timeout),
    }
}

/// Keeps the live view up after the run for `linger`, or until Ctrl-C.
fn linger(view: &wordcount::view::View, linger: Duration, stop: &AtomicBool) {
    if linger.is_zero() {
        return;
    }
    eprintln!(
        "live view: {} stays up for {} (Ctrl-C to end)",
        view.url(),
        humantime::format_duration(linger)
    );
    let until = std::time::Instant::now() + linger;
    while std::time::Instant::now() < until && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_prints_each_cause_once() {
        // A Redis error whose text repeats its source's.
        let io = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "unexpected end of file");
        let e = anyhow::Error::new(redis::RedisError::from(io));
        assert_eq!(
            format!("{e:#}"),
            "unexpected end of file: unexpected end of file"
        );
        assert_eq!(describe(&e), "unexpected end of file");
        // Context that adds something keeps it; the repeated cause goes.
        let e = e.context("reading the queue");
        assert_eq!(describe(&e), "reading the queue: unexpected end of file");
        // Causes that differ are all printed, in order.
        let e = anyhow::anyhow!("connection refused")
            .context("cannot reach redis://127.0.0.1:6379")
            .context("driver");
        assert_eq!(
            describe(&e),
            "driver: cannot reach redis://127.0.0.1:6379: connection refused"
        );
    }

    #[test]
    fn bounds_name_the_problem() {
        assert!(workers("1000").is_ok());
        assert!(workers("1001")
            .unwrap_err()
            .contains("at most 1000 worker processes"));
        assert!(workers("0").unwrap_err().contains("at least 1"));
        assert!(workers("-1").unwrap_err().contains("at least 1"));
        assert!(claim_timeout("9").unwrap_err().contains("at least 10 ms"));
        assert_eq!(claim_timeout("10"), Ok(10));
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
