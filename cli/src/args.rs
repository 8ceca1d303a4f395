//! The `wordcount` command line: its subcommands, their flags and the
//! checks on each flag's value (a bad value is a usage error, exit 2, with
//! a message that names the problem). The local runner's flags (`run`) are
//! in [`run`], built with the `lab` feature.

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;
use wordcount_count::generate::parse_size;
use wordcount_job::source::StreamPlan;
use wordcount_job::state::JobSettings;
use wordcount_protocol::{
    Backpressure, Commit, Fault, OnUnreadable, RedisMode, Tokenizer, DEFAULT_PREFIX,
};
use wordcount_store::Location;

#[cfg(feature = "lab")]
pub mod run;

#[derive(Parser)]
#[command(
    name = "wordcount",
    version,
    about = "Distributed word count through Redis, with faults to study"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
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
    #[cfg(feature = "lab")]
    Run(Box<run::RunArgs>),
    /// Enqueue the input files and wait for the workers (what the driver pod runs).
    Driver {
        #[command(flatten)]
        conn: Conn,
        #[command(flatten)]
        data: Data,
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
        /// The input the driver enqueued from, as this worker sees it: a
        /// directory, or s3://BUCKET/PREFIX.
        #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX")]
        input: Location,
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
    #[cfg(feature = "lab")]
    Experiment(wordcount_lab::experiments::ExperimentArgs),
    /// Run the experiments of the labs and write a report that answers
    /// each lab's questions: OUT/report.md and OUT/report.html.
    #[cfg(feature = "lab")]
    Report(wordcount_lab::labs::ReportArgs),
    /// Count the files listed on stdin and write packed counts (used by --processes).
    #[command(hide = true)]
    Shard {
        #[arg(long, default_value = "alnum")]
        tokenizer: Tokenizer,
    },
}

#[derive(Args)]
pub struct Output {
    /// How many of the most frequent words to print (0 or more).
    #[arg(long, value_name = "K", default_value_t = 10, allow_negative_numbers = true, value_parser = top)]
    pub top: usize,
    #[arg(long, value_enum, default_value_t)]
    pub tokenizer: Tokenizer,
    /// Print one JSON object instead of `count word` lines.
    #[arg(long)]
    pub json: bool,
}

/// Where the job reads and writes.
#[derive(Args)]
pub struct Data {
    /// The input: a directory (its files, recursively, in sorted order) or
    /// s3://BUCKET/PREFIX (the objects under the prefix; the endpoint,
    /// region and credentials come from the AWS_* environment variables).
    #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX")]
    pub input: Location,
    /// Count a file (or object) larger than SIZE as byte ranges of at most
    /// SIZE, each taken by any worker; 0 never splits. A word that crosses
    /// a boundary is counted once; gzip files are never split.
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = parse_size)]
    pub split: u64,
    /// Once the job is done, write every word's count here, as `count word`
    /// lines (count descending, then word): a file, or s3://BUCKET/KEY.
    /// Written whole or not at all.
    #[arg(long, value_name = "PATH|s3://BUCKET/KEY")]
    pub output: Option<String>,
}

#[derive(Args)]
pub struct Conn {
    /// Redis URL, redis://host:port; the password comes from REDIS_PASSWORD.
    #[arg(long, env = "REDIS_URL")]
    pub redis: String,
    /// How Redis is run (the coordination backend).
    #[arg(long, value_enum, default_value_t)]
    pub redis_mode: RedisMode,
    /// Prefix of the job's keys in Redis.
    #[arg(long, default_value = DEFAULT_PREFIX)]
    pub prefix: String,
    /// Give up after Redis has been unreachable this long (with --site:
    /// also after another site's instance showed no change this long).
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub patience: Duration,
    /// Run site I of a CRDT job (--redis-mode crdt) with no runner: --redis
    /// lists every site's instance, in the same order for all sites, and
    /// the I-th is this site's own. The driver enqueues its share of the
    /// input, the files at positions congruent to I modulo the number of
    /// instances in its sorted listing; once they are committed it pulls
    /// from the other instances until every site is done and all hold the
    /// same files, then writes the whole job's counts on its own instance.
    #[arg(long, value_name = "I")]
    pub site: Option<usize>,
}

impl Conn {
    /// The instances as the backend takes them: with --site, the site's
    /// own first.
    pub fn own_first(&self) -> Result<String> {
        Ok(
            match wordcount_job::crdt::site::Site::parse(self.redis_mode, &self.redis, self.site)? {
                Some(site) => site.own_first(),
                None => self.redis.clone(),
            },
        )
    }
}

#[derive(Args)]
pub struct Job {
    /// Steal a file from a worker that has held it this long (milliseconds,
    /// at least 10: a claim timeout of 0 would steal every file at once,
    /// and one of a few ms steals files from the workers still counting them).
    #[arg(long, value_name = "MS", default_value_t = 5000, allow_negative_numbers = true, value_parser = claim_timeout)]
    pub claim_timeout: u64,
    #[arg(long, value_enum, default_value_t)]
    pub commit: Commit,
}

impl Job {
    /// The settings every process of the job shares.
    pub fn settings(&self, out: &Output) -> JobSettings {
        JobSettings {
            tokenizer: out.tokenizer,
            commit: self.commit,
            claim_timeout: Duration::from_millis(self.claim_timeout),
        }
    }
}

#[derive(Args)]
pub struct Unreadables {
    /// What a file that cannot be read does: fail the job (after counting
    /// every other file, exit code 3) or only warn.
    #[arg(long, value_enum, default_value_t)]
    pub on_unreadable: OnUnreadable,
}

#[derive(Args)]
pub struct StreamArgs {
    /// Make the job a stream: inject --rate files a second as micro-batches,
    /// cycling over the input, and measure each file's latency.
    #[arg(long)]
    pub stream: bool,
    /// Files injected per second (above 0).
    #[arg(long, value_name = "R", requires = "stream", default_value_t = 10.0, allow_negative_numbers = true, value_parser = positive_rate)]
    pub rate: f64,
    /// How long files fall due (e.g. 30s) [default: every input file once].
    #[arg(long, value_name = "D", requires = "stream", value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// One micro-batch per tick.
    #[arg(long, value_name = "T", requires = "stream", default_value = "1s", value_parser = positive_duration)]
    pub tick: Duration,
    /// What the source does when the workers fall behind.
    #[arg(long, value_enum, requires = "stream", default_value_t)]
    pub backpressure: Backpressure,
    /// Lag + pending above which pause and adaptive hold back (at least 1).
    #[arg(long, value_name = "N", requires = "stream", default_value_t = 100, allow_negative_numbers = true, value_parser = max_lag)]
    pub max_lag: u64,
}

impl StreamArgs {
    pub fn plan(&self) -> Option<StreamPlan> {
        self.stream.then_some(StreamPlan {
            rate: self.rate,
            duration: self.duration,
            tick: self.tick,
            backpressure: self.backpressure,
            max_lag: self.max_lag,
        })
    }
}

pub fn positive_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r > 0.0 && r.is_finite() => Ok(r),
        _ => Err(format!("{s} is not a rate above 0 (files per second)")),
    }
}

/// `s` as a whole number, negative ones included: the numeric flags allow
/// negative numbers, so that `-1` is refused for its value here rather than
/// taken by clap for a flag it does not know.
pub fn whole(s: &str) -> Result<i128, String> {
    s.parse().map_err(|_| "not a whole number".into())
}

pub fn top(s: &str) -> Result<usize, String> {
    match whole(s)? {
        n if n < 0 => Err("the number of words to print is 0 or more".into()),
        n => usize::try_from(n).map_err(|_| format!("{n} is too large")),
    }
}

/// The least `--claim-timeout`, in milliseconds.
pub const MIN_CLAIM_TIMEOUT_MS: i128 = 10;

pub fn claim_timeout(s: &str) -> Result<u64, String> {
    match whole(s)? {
        n if n < MIN_CLAIM_TIMEOUT_MS => Err(format!(
            "at least {MIN_CLAIM_TIMEOUT_MS} ms: a claim timeout of 0 steals every file at \
             once, and one of a few ms steals files from the workers still counting them"
        )),
        n => u64::try_from(n).map_err(|_| format!("{n} is too large")),
    }
}

pub fn max_lag(s: &str) -> Result<u64, String> {
    match whole(s)? {
        n if n < 1 => Err("at least 1 file".into()),
        n => u64::try_from(n).map_err(|_| format!("{n} is too large")),
    }
}

pub fn positive_duration(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err("must be longer than 0".into()),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_name_the_problem() {
        assert!(claim_timeout("9").unwrap_err().contains("at least 10 ms"));
        assert_eq!(claim_timeout("10"), Ok(10));
        assert!(top("-1").unwrap_err().contains("0 or more"));
        assert!(max_lag("0").is_err());
        assert!(positive_rate("0").is_err());
    }
}
