//! The labs of `wordcount report`: what each lab asks, which experiments
//! measure it, and how each answer is computed from the rows just measured.

use crate::experiments::corpus::human;
use crate::experiments::table::Record;
use crate::experiments::{Experiment, Outcome};
use anyhow::{Context, Result};
use std::collections::BTreeMap;

/// What the experiments of a report measured, by experiment.
pub type Outcomes = BTreeMap<&'static str, Outcome>;

pub struct Lab {
    pub number: u8,
    pub title: &'static str,
    /// What the lab is about, for its section's first paragraph.
    pub about: &'static str,
    pub experiments: &'static [Experiment],
    pub questions: &'static [Question],
}

pub struct Question {
    pub ask: &'static str,
    /// A sentence with the figures, from the outcomes of the lab's experiments.
    pub answer: fn(&Outcomes) -> Result<String>,
    pub needs: Needs,
}

/// What a question needs besides redis-server and this program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Needs {
    Nothing,
    /// The RedisRaft coordination mode.
    RedisRaft,
    /// Partitions of the CRDT mode: root (network namespaces, iptables).
    Root,
}

impl Needs {
    /// Why a question cannot be answered here, if it cannot.
    pub fn missing(self) -> Option<&'static str> {
        match self {
            Needs::Nothing => None,
            Needs::RedisRaft => crate::local::raft::find_module(None).is_err().then_some(
                "the RedisRaft module is not on this machine (no package carries it: build \
                 redisraft.so and give its path in WORDCOUNT_REDISRAFT, see docs/src/modes/redisraft.md)",
            ),
            // SAFETY: geteuid has no preconditions.
            Needs::Root => (unsafe { libc::geteuid() } != 0).then_some(
                "partitions cut sites off with network namespaces and iptables, which \
                 needs root",
            ),
        }
    }
}

/// A question of the labs, measured by their experiments.
const fn measured(ask: &'static str, answer: fn(&Outcomes) -> Result<String>) -> Question {
    Question {
        ask,
        answer,
        needs: Needs::Nothing,
    }
}

pub const LABS: [Lab; 6] = [
    Lab {
        number: 0,
        title: "Parallel efficiency",
        about: "The same words counted serially, on threads, in processes and by a job \
                through Redis. Efficiency is T_serial / (p · T_p): 1 is perfect, \
                1/p is no gain at all.",
        experiments: &[Experiment::Efficiency],
        questions: &[
            measured(
                "Does adding workers pay on a fixed input?",
                efficiency_fixed,
            ),
            measured(
                "What does each way of counting cost when there is nothing to count?",
                efficiency_fixed_cost,
            ),
            measured(
                "How many files does a job through Redis need before it pays?",
                efficiency_growing,
            ),
        ],
    },
    Lab {
        number: 1,
        title: "What coordination costs: commits, file sizes and skew",
        about: "Every file is one queue entry and one atomic commit. How the cost of \
                coordinating compares with the cost of counting decides whether the \
                job scales.",
        experiments: &[Experiment::Commit, Experiment::Filesize, Experiment::Skew],
        questions: &[
            measured(
                "What do per-word commits cost against one atomic commit per file?",
                commit_slowdown,
            ),
            measured(
                "How does the file size change the throughput, at equal total bytes?",
                filesize_throughput,
            ),
            measured(
                "What does one file much larger than the others do to the job?",
                skew_effect,
            ),
        ],
    },
    Lab {
        number: 2,
        title: "Stragglers and crashed workers",
        about: "A worker that crashes or slows down holds its file until the claim \
                timeout lets another worker steal it; stealing early counts files \
                twice (the second commit changes nothing).",
        experiments: &[Experiment::Straggler, Experiment::ClaimTimeout],
        questions: &[
            measured(
                "Which claim timeout finishes first with a straggler, and at what price?",
                straggler_best,
            ),
            measured(
                "What does a crashed worker cost, against the claim timeout?",
                crash_cost,
            ),
        ],
    },
    Lab {
        number: 3,
        title: "Streams: latency, faults and backpressure",
        about: "Files injected at a rate; each file's latency measured inside Redis \
                from the time it fell due to its commit.",
        experiments: &[
            Experiment::StreamRate,
            Experiment::StreamFaults,
            Experiment::Backpressure,
        ],
        questions: &[
            measured(
                "What rate can the workers sustain, against their batch throughput?",
                stream_sustainable,
            ),
            measured("How does the latency grow with the load?", stream_latency),
            measured(
                "How long does a stream take to recover from each fault?",
                stream_recovery,
            ),
            measured(
                "What does backpressure do when files come faster than the workers count?",
                backpressure_effect,
            ),
        ],
    },
    Lab {
        number: 4,
        title: "Redis that fails: checkpoints and RedisRaft",
        about: "Redis holds the queue and the counts. Periodic snapshots bound what a \
                crash loses, and the commits made since the last one are redone; \
                RedisRaft replicates every write to a majority of 2f+1 replicas so \
                that nothing is lost, at the price of a round trip per write.",
        experiments: &[
            Experiment::CheckpointCost,
            Experiment::RedisKill,
            Experiment::RaftCost,
            Experiment::RaftKill,
        ],
        questions: &[
            measured(
                "What do periodic snapshots cost when nothing fails?",
                checkpoint_cost,
            ),
            measured(
                "What does a Redis crash cost when Redis comes back from its last snapshot?",
                redis_kill_cost,
            ),
            Question {
                ask: "What does RedisRaft with 3 replicas cost against a single Redis?",
                answer: raft_cost,
                needs: Needs::RedisRaft,
            },
            Question {
                ask: "What do replica and leader kills cost, and is anything redone?",
                answer: raft_kill_cost,
                needs: Needs::RedisRaft,
            },
        ],
    },
    Lab {
        number: 5,
        title: "Partitions and CRDT merge",
        about: "Three sites, three Redis, and counts kept as a CRDT that merges after \
                a partition heals.",
        experiments: &[
            Experiment::CrdtCost,
            Experiment::Partitions,
            Experiment::ReadRepair,
            Experiment::CheckpointRecovery,
        ],
        questions: &[
            measured(
                "What do three sites with a CRDT cost against one Redis?",
                crdt_cost,
            ),
            Question {
                ask: "How do the sites' counts diverge during a partition and converge after it?",
                answer: partitions_answer,
                needs: Needs::Root,
            },
            Question {
                ask: "What does read repair cost while a site is cut off?",
                answer: read_repair_cost,
                needs: Needs::Root,
            },
            measured(
                "Can the rollback of a restart from a snapshot now be avoided?",
                checkpoint_recovery,
            ),
        ],
    },
];

// ---- reading an outcome ------------------------------------------------------

fn outcome(all: &Outcomes, exp: Experiment) -> Result<&Outcome> {
    all.get(exp.name())
        .with_context(|| format!("{} was not measured", exp.name()))
}

/// The rows whose cells read as given, e.g. `[("method", "redis")]`.
fn rows<'a>(o: &'a Outcome, matching: &[(&str, &str)]) -> Result<Vec<Record<'a>>> {
    let mut out = Vec::new();
    for r in o.table.records() {
        let mut all = true;
        for (column, value) in matching {
            all &= r.text(column)? == *value;
        }
        if all {
            out.push(r);
        }
    }
    Ok(out)
}

/// The one row that matches.
fn row<'a>(o: &'a Outcome, matching: &[(&str, &str)]) -> Result<Record<'a>> {
    rows(o, matching)?
        .into_iter()
        .next()
        .with_context(|| format!("no row with {matching:?}"))
}

/// The row with the least (`most` false) or greatest value of `column`.
fn extreme<'a>(rows: Vec<Record<'a>>, column: &str, most: bool) -> Result<Record<'a>> {
    let mut keyed = Vec::with_capacity(rows.len());
    for r in rows {
        keyed.push((r.num(column)?, r));
    }
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
    let pick = if most {
        keyed.pop()
    } else {
        keyed.into_iter().next()
    };
    pick.map(|(_, r)| r)
        .with_context(|| format!("no rows to take the extreme {column} of"))
}

fn most<'a>(rows: Vec<Record<'a>>, column: &str) -> Result<Record<'a>> {
    extreme(rows, column, true)
}

fn least<'a>(rows: Vec<Record<'a>>, column: &str) -> Result<Record<'a>> {
    extreme(rows, column, false)
}

/// "1 file", "2 files": `n` read from a cell.
fn count_of(n: &str, what: &str) -> String {
    match n {
        "1" => format!("1 {what}"),
        n => format!("{n} {what}s"),
    }
}

/// A time in seconds, to the precision a reader wants.
fn secs(s: f64) -> String {
    if s < 0.1 {
        format!("{:.0} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

// ---- lab 0 -------------------------------------------------------------------

fn efficiency_fixed(all: &Outcomes) -> Result<String> {
    let o = outcome(all, Experiment::Efficiency)?;
    let sweep = rows(o, &[("sweep", "workers")])?;
    let p = most(sweep, "workers")?.text("workers")?.to_string();
    let serial = row(o, &[("sweep", "workers"), ("method", "serial")])?;
    let at = |method| {
        row(
            o,
            &[("sweep", "workers"), ("method", method), ("workers", &p)],
        )
    };
    let (t, pr, r) = (at("threads")?, at("processes")?, at("redis")?);
    let speedup =
        |rec: &Record| -> Result<f64> { Ok(serial.num("median_s")? / rec.num("median_s")?) };
    Ok(format!(
        "On {} files ({} MiB), the serial count takes {}; with {p} workers the efficiency is \
         {:.2} on threads, {:.2} in processes and {:.2} through Redis (speed-ups of {:.1}×, \
         {:.1}× and {:.1}×).",
        serial.text("files")?,
        serial.text("mib")?,
        secs(serial.num("median_s")?),
        t.num("efficiency")?,
        pr.num("efficiency")?,
        r.num("efficiency")?,
        speedup(&t)?,
        speedup(&pr)?,
        speedup(&r)?,
    ))
}

fn efficiency_fixed_cost(all: &Outcomes) -> Result<String> {
    let o = outcome(all, Experiment::Efficiency)?;
    let p = most(rows(o, &[("sweep", "fixed-cost")])?, "workers")?
        .text("workers")?
        .to_string();
    let at = |method| {
        row(
            o,
            &[("sweep", "fixed-cost"), ("method", method), ("workers", &p)],
        )
    };
    let (t, pr, r) = (
        at("threads")?.num("median_s")?,
        at("processes")?.num("median_s")?,
        at("redis")?.num("median_s")?,
    );
    Ok(format!(
        "With {p} files of a few words on {p} workers, threads take {:.1} ms, processes \
         {:.1} ms and a job through Redis {:.0} ms (starting redis-server and the workers, \
         enqueueing, committing, writing the result): {:.0}× the cost of processes.",
        t * 1e3,
        pr * 1e3,
        r * 1e3,
        r / pr
    ))
}

fn efficiency_growing(all: &Outcomes) -> Result<String> {
    let o = outcome(all, Experiment::Efficiency)?;
    let redis = rows(o, &[("sweep", "files"), ("method", "redis")])?;
    let (few, many) = (
        least(redis, "files")?,
        most(
            rows(o, &[("sweep", "files"), ("method", "redis")])?,
            "files",
        )?,
    );
    let threads = |n: &str| {
        row(
            o,
            &[("sweep", "files"), ("method", "threads"), ("files", n)],
        )
    };
    let mut half = None;
    for r in rows(o, &[("sweep", "files"), ("method", "redis")])? {
        if r.num("efficiency")? >= 0.5 {
            half = Some(r.text("files")?.to_string());
            break;
        }
    }
    let half = match half {
        Some(n) => format!("it first reaches 0.5 at {n} files"),
        None => "it never reaches 0.5 in this sweep".into(),
    };
    Ok(format!(
        "Through Redis on {} workers, the efficiency goes from {:.2} on {} to {:.2} \
         on {} files of {:.1} MiB each; {half} (threads: {:.2} and {:.2}).",
        few.text("workers")?,
        few.num("efficiency")?,
        count_of(few.text("files")?, "file"),
        many.num("efficiency")?,
        many.text("files")?,
        many.num("mib")? / many.num("files")?,
        threads(few.text("files")?)?.num("efficiency")?,
        threads(many.text("files")?)?.num("efficiency")?,
    ))
}

// ---- lab 1 -------------------------------------------------------------------

fn commit_slowdown(all: &Outcomes) -> Result<String> {
    let o = outcome(all, Experiment::Commit)?;
    let word = most(rows(o, &[("commit", "per-word")])?, "files")?;
    let files = word.text("files")?;
    let file = row(o, &[("commit", "per-file"), ("files", files)])?;
    Ok(format!(
        "On {files} files ({} MiB, {} words), per-word commits take {:.1}× as long as \
         per-file commits: {} against {}, {:.2} against {:.2} million words a second.",
        word.text("mib")?,
        word.text("words")?,
        word.num("slowdown")?,
        secs(word.num("median_s")?),
        secs(file.num("median_s")?),
        word.num("mwords_per_s")?,
        file.num("mwords_per_s")?,
    ))
}

fn filesize_throughput(all: &Outcomes) -> Result<String> {
    let o = outcome(all, Experiment::Filesize)?;
    let redis = || rows(o, &[("method", "redis")]);
    let small = least(redis()?, "file_bytes")?;
    let best = most(redis()?, "mib_per_s")?;
    let serial = |size: &str| row(o, &[("method", "serial"), ("file_bytes", size)]);
    let size = |r: &Record| -> Result<String> { Ok(human(r.num("file_bytes")? as u64)) };
    Ok(format!(
        "Through Redis, {} of {} go at {:.2} MiB/s, and {} of {} (the best size) at {:.2} \
         MiB/s, {:.0}× faster; a serial count of the same files goes at {:.1} and {:.1} \
         MiB/s.",
        count_of(small.text("files")?, "file"),
        size(&small)?,
        small.num("mib_per_s")?,
        count_of(best.text("files")?, "file"),
        size(&best)?,
        best.num("mib_per_s")?,
        best.num("mib_per_s")? / small.num("mib_per_s")?.max(1e-9),
        serial(small.text("file_bytes")?)?.num("mib_per_s")?,
        serial(best.text("file_bytes")?)?.num("mib_per_s")?,
    ))
}

fn skew_effect(all: &Outcomes) -> Result<String> {
    let o = outcome(all, Experiment::Skew)?;
    let redis = || rows(o, &[("method", "redis")]);
    let (even, skewed) = (least(redis()?, "skew")?, most(redis()?, "skew")?);
    let (e0, e1) = (even.num("efficiency")?, skewed.num("efficiency")?);
    let why = match e1 < e0 {
        true => "it falls because at the end one worker counts the large file alone",
        false => "it does not fall: the extra bytes of the large file pay for the fixed costs",
    };
    let mut answer = format!(
        "Through Redis on {} workers, one file {}× larger than the {} others makes the job \
         take {} instead of {} with equal files, and its efficiency goes from {e0:.2} to \
         {e1:.2}: {why}.",
        skewed.text("workers")?,
        skewed.text("skew")?,
        skewed.num("files")? - 1.0,
        secs(skewed.num("median_s")?),
        secs(even.num("median_s")?),
    );
    // Older results have no split line.
    let split = rows(o, &[("method", "redis-split")]).ok();
    if let Some(split) = split.and_then(|r| most(r, "skew").ok()) {
        answer.push_str(&format!(
            " Split into byte ranges of the others' size (`--split`), so that any worker \
             takes a part of the large file, the same job takes {} (efficiency {:.2}).",
            secs(split.num("median_s")?),
            split.num("efficiency")?,
        ));
    }
    Ok(answer)
}

// ---- lab 2 -------------------------------------------------------------------

/// The rows of the variant with a fault, and those of the one without.
fn with_and_without<'a>(o: &'a Outcome) -> Result<(Vec<Record<'a>>, Vec<Record<'a>>)> {
    let mut with = Vec::new();
    let mut without = Vec::new();
    for r in o.table.records() {
        match r.text("fault")? {
            "none" => without.push(r),
            _ => with.push(r),
        }
    }
    Ok((with, without))
}

fn straggler_best(all: &Outcomes) -> Result<String> {
    let o = outcome(all, Experiment::Straggler)?;
    let (with, without) = with_and_without(o)?;
    let fault = with.first().context("no straggler rows")?.text("fault")?;
    let longest = most(with.clone(), "claim_timeout_ms")?;
    let best = least(with, "median_s")?;
    Ok(format!(
        "With a straggler ({fault}), the job finishes first at a claim timeout of {} ms, in \
         {} with {} ignored (files counted twice); at {} ms it takes {}. Without the \
         straggler it takes {}.",
        best.text("claim_timeout_ms")?,
        secs(best.num("median_s")?),
        count_of(best.text("commits_ignored")?, "commit"),
        longest.text("claim_timeout_ms")?,
        secs(longest.num("median_s")?),
        secs(least(without, "median_s")?.num("median_s")?),
    ))
}

fn crash_cost(all: &Outcomes) -> Result<String> {
    let o = outcome(all, Experiment::ClaimTimeout)?;
    let (with, _) = with_and_without(o)?;
    let fault = with.first().context("no crash rows")?.text("fault")?;
    let short = least(with.clone(), "claim_timeout_ms")?;
    let long = most(with, "claim_timeout_ms")?;
    let clean = |r: &Record| -> Result<f64> {
        row(
            o,
            &[
                ("fault", "none"),
                ("claim_timeout_ms", r.text("claim_timeout_ms")?),
            ],
        )?
        .num("median_s")
    };
    Ok(format!(
        "After a crash ({fault}), the job takes {} at a claim timeout of {} ms and {} at {} \
         ms, against {} and {} without a crash: the crashed worker's file waits for the \
         timeout before another worker steals it.",
        secs(short.num("median_s")?),
        short.text("claim_timeout_ms")?,
        secs(long.num("median_s")?),
        long.text("claim_timeout_ms")?,
        secs(clean(&short)?),
        secs(clean(&long)?),
    ))
}

// ---- lab 3 -------------------------------------------------------------------

fn stream_sustainable(all: &Outcomes) -> Result<String> {
    let o = outcome(all, Experiment::StreamRate)?;
    let mut parts = Vec::new();
    let mut workers: Vec<String> = Vec::new();
    for r in o.table.records() {
        let w = r.text("workers")?.to_string();
        if !workers.contains(&w) {
            workers.push(w);
        }
    }
    for w in &workers {
        let ok = rows(o, &[("workers", w), ("sustainable", "1")])?;
        let label = match w.as_str() {
            "1" => "1 worker sustains".to_string(),
            w => format!("{w} workers sustain"),
        };
        parts.push(match ok.is_empty() {
            true => format!("{label} none of the rates measured"),
            false => {
                let best = most(ok, "rate")?;
                format!(
                    "{label} {:.0} files/s, {:.0} % of the batch throughput measured \
                     beside it ({:.0} files/s)",
                    best.num("rate")?,
                    100.0 * best.num("load")?,
                    best.num("batch_throughput")?
                )
            }
        });
    }
    Ok(format!(
        "{} (sustainable: p99 under 1 s while the throughput keeps up with the rate).",
        parts.join("; ")
    ))
}

fn stream_latency(all: &Outcomes) -> Result<String> {
    let o = outcome(all, Experiment::StreamRate)?;
    let w = most(o.table.records().collect(), "workers")?
        .text("workers")?
        .to_string();
    let at = rows(o, &[("workers", &w)])?;
    let low = least(rows(o, &[("workers", &w)])?, "load")?;
    let high = most(rows(o, &[("workers", &w)])?, "load")?;
    // The point nearest half load.
    let mut half = None::<(f64, Record)>;
    for r in at {
        let d = (r.num("load")? - 0.5).abs();
        if half.as_ref().is_none_or(|(best, _)| d < *best) {
            half = Some((d, r));
        }
    }
    let (_, half) = half.context("no stream points")?;
    let point = |r: &Record| -> Result<String> {
        Ok(format!(
            "{} ms at {:.0} % load",
            r.text("p99_ms")?,
            100.0 * r.num("load")?
        ))
    };
    Ok(format!(
        "On {}, the p99 latency is {}, {} and {} (p50: {}, {} and {} ms); at half \
         load the p99 is {:.0}× the mean service time of {} ms.",
        count_of(&w, "worker"),
        point(&low)?,
        point(&half)?,
        point(&high)?,
        low.text("p50_ms")?,
        half.text("p50_ms")?,
        high.text("p50_ms")?,
        half.num("p99_per_service")?,
        half.text("service_ms")?,
    ))
}

fn stream_recovery(all: &Outcomes) -> Result<String> {
    let o = outcome(all, Experiment::StreamFaults)?;
    let mut parts = Vec::new();
    for r in o.table.records() {
        let recovery = match r.text("recovery_s")? {
            "never" => "did not recover within its phase".to_string(),
            s => format!("recovered in {s} s"),
        };
        parts.push(format!(
            "after the {}, the p99 peaked at {} ms and {recovery}",
            r.text("event")?,
            r.text("peak_p99_ms")?,
        ));
    }
    let first = o.table.records().next().context("no fault fired")?;
    Ok(format!(
        "Against a p99 of {} ms before the faults: {}.",
        first.text("baseline_p99_ms")?,
        parts.join("; ")
    ))
}

fn backpressure_effect(all: &Outcomes) -> Result<String> {
    let o = outcome(all, Experiment::Backpressure)?;
    let mode = |m| row(o, &[("backpressure", m)]);
    let (none, pause, adaptive) = (mode("none")?, mode("pause")?, mode("adaptive")?);
    let line = |r: &Record| -> Result<String> {
        Ok(format!(
            "p99 {} ms, at most {} files queued, {:.0} files/s injected",
            r.text("p99_ms")?,
            r.text("max_lag")?,
            r.num("effective_rate")?
        ))
    };
    Ok(format!(
        "Asked for {:.0} files/s, without backpressure: {}; pausing: {}, throttled {:.1} s; \
         adaptive: {}, throttled {:.1} s.",
        none.num("rate")?,
        line(&none)?,
        line(&pause)?,
        pause.num("throttled_ms")? / 1e3,
        line(&adaptive)?,
        adaptive.num("throttled_ms")? / 1e3,
    ))
}

// ---- lab 5 -------------------------------------------------------------------

fn crdt_cost(all: &Outcomes) -> Result<String> {
    let o = outcome(all, Experiment::CrdtCost)?;
    let mut parts = Vec::new();
    for input in inputs_of(o)? {
        let mut each = Vec::new();
        for r in rows(o, &[("files", &input.0), ("file_bytes", &input.1)])? {
            if r.text("mode")? != "one Redis" {
                each.push(format!(
                    "{} {:.2}×",
                    r.text("mode")?,
                    r.num("vs_one_redis")?
                ));
            }
        }
        parts.push(format!("on {}: {}", input_name(&input)?, each.join(", ")));
    }
    Ok(format!(
        "Against one Redis, the completion time is {}. Each file is stored on all three \
         instances (one function call each, no per-word work in Redis); the counts are \
         folded from the stored files once the instances have converged.",
        parts.join("; ")
    ))
}

fn partitions_answer(all: &Outcomes) -> Result<String> {
    let o = outcome(all, Experiment::Partitions)?;
    let mut each = Vec::new();
    for r in o.table.records() {
        each.push(format!(
            "instance {} (cut {}–{} s) fell {} files behind at {} s and was even again at {} s",
            r.text("instance")?,
            r.text("cut_s")?,
            r.text("healed_s")?,
            r.text("most_behind")?,
            r.text("most_behind_at_s")?,
            r.text("even_at_s")?
        ));
    }
    Ok(format!(
        "In {} cut-and-heal cycles: {}. A cut instance falls behind only once the other \
         sites' workers give up on it (a reply not back within their timeout), and it \
         catches up by read repair at the heal and at the next anti-entropy tick; at the \
         end all three instances held the same, exact counts.",
        each.len(),
        each.join("; ")
    ))
}

fn checkpoint_recovery(all: &Outcomes) -> Result<String> {
    let o = outcome(all, Experiment::CheckpointRecovery)?;
    let mut each = Vec::new();
    for r in o.table.records() {
        each.push(format!(
            "with a kill every {} ms ({} restarts), {} files came back from the peers and {} \
             were counted again",
            r.text("kill_every_ms")?,
            r.text("restarts")?,
            r.text("files_repaired")?,
            r.text("files_recomputed")?
        ));
    }
    Ok(format!(
        "Mostly: {}. What a restarted instance lost of the CRDT comes back by read repair; \
         what it lost of its own site's queue (commits rolled back) is still counted again, \
         as with one Redis.",
        each.join("; ")
    ))
}

fn read_repair_cost(all: &Outcomes) -> Result<String> {
    let o = outcome(all, Experiment::ReadRepair)?;
    let mut each = Vec::new();
    for r in o.table.records() {
        each.push(format!(
            "{} files in {} ms ({} MiB/s)",
            r.text("files_repaired")?,
            r.text("converged_ms")?,
            r.text("mib_per_s")?
        ));
    }
    Ok(format!(
        "An instance cut off from two of three sites for the whole job learnt, after the \
         heal, {}.",
        each.join("; ")
    ))
}

// ---- lab 4 -------------------------------------------------------------------

fn raft_cost(all: &Outcomes) -> Result<String> {
    let o = outcome(all, Experiment::RaftCost)?;
    let mut parts = Vec::new();
    for input in inputs_of(o)? {
        let mut each = Vec::new();
        let mut one = None;
        for r in rows(o, &[("files", &input.0), ("file_bytes", &input.1)])? {
            match r.text("replicas")? {
                "1" => one = Some(r.text("job_s")?.to_string()),
                n => each.push(format!(
                    "{:.2}× with {n} replicas ({} s, and {} s to form the cluster)",
                    r.num("vs_one_redis")?,
                    r.text("job_s")?,
                    r.text("redis_start_s")?
                )),
            }
        }
        parts.push(format!(
            "on {} (one Redis: {} s): {}",
            input_name(&input)?,
            one.context("no row for one Redis")?,
            each.join(", ")
        ));
    }
    Ok(format!(
        "Against one Redis, the job's time is {}. Every take and commit waits for a \
         majority to write it to its log (with fsync): many small files pay that round \
         trip per file, a few large ones hide it behind counting.",
        parts.join("; ")
    ))
}

fn raft_kill_cost(all: &Outcomes) -> Result<String> {
    let o = outcome(all, Experiment::RaftKill)?;
    let mut base = None;
    let mut each = Vec::new();
    let mut redone = 0.0;
    for r in o.table.records() {
        redone += r.num("files_redone")?;
        let what = match (r.text("scenario")?, r.text("kill_every_ms")?) {
            ("none", _) => {
                base = Some(r.text("median_s")?.to_string());
                continue;
            }
            (s, "0") => format!("killing {s}"),
            (s, ms) => format!("killing {s} every {ms} ms"),
        };
        each.push(format!(
            "{what}: {:.2}× ({})",
            r.num("slowdown")?,
            count_of(r.text("leader_elections")?, "leader election")
        ));
    }
    Ok(format!(
        "Against {} s without kills: {}. Files redone over all of them: {redone:.0}; \
         every count stays exact.",
        base.context("no row without kills")?,
        each.join("; ")
    ))
}

/// The inputs of an experiment, as (files, file_bytes) cells, in row order.
fn inputs_of(o: &Outcome) -> Result<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::new();
    for r in o.table.records() {
        let key = (
            r.text("files")?.to_string(),
            r.text("file_bytes")?.to_string(),
        );
        if !out.contains(&key) {
            out.push(key);
        }
    }
    Ok(out)
}

fn input_name((files, bytes): &(String, String)) -> Result<String> {
    Ok(format!("{files} files of {}", human(bytes.parse()?)))
}

fn checkpoint_cost(all: &Outcomes) -> Result<String> {
    let o = outcome(all, Experiment::CheckpointCost)?;
    let mut parts = Vec::new();
    for input in inputs_of(o)? {
        let of = |r: &Record| -> Result<bool> {
            Ok(r.text("files")? == input.0 && r.text("file_bytes")? == input.1)
        };
        let mut snapshotted = Vec::new();
        for r in o.table.records() {
            if of(&r)? && r.num("snapshot_interval_ms")? > 0.0 {
                snapshotted.push(r);
            }
        }
        let mut each = Vec::new();
        for r in snapshotted {
            each.push(format!(
                "{:.2}× every {} ms ({}, {} ms of fork)",
                r.num("slowdown")?,
                r.text("snapshot_interval_ms")?,
                count_of(r.text("snapshots")?, "snapshot"),
                r.text("fork_ms")?,
            ));
        }
        parts.push(format!("on {}: {}", input_name(&input)?, each.join(", ")));
    }
    Ok(format!(
        "Against the same job without snapshots, the completion time is {}.",
        parts.join("; ")
    ))
}

fn redis_kill_cost(all: &Outcomes) -> Result<String> {
    let o = outcome(all, Experiment::RedisKill)?;
    let mut parts = Vec::new();
    for input in inputs_of(o)? {
        let mut each = Vec::new();
        for r in rows(o, &[("files", &input.0), ("file_bytes", &input.1)])? {
            if r.num("kill_every_ms")? == 0.0 {
                continue;
            }
            if r.text("outcome")? == "verdict" {
                each.push(format!(
                    "no end when killed every {} ms (the run stopped with a verdict: no progress)",
                    r.text("kill_every_ms")?
                ));
                continue;
            }
            each.push(format!(
                "{:.2}× when killed every {} ms ({}, {} redone)",
                r.num("slowdown")?,
                r.text("kill_every_ms")?,
                count_of(r.text("redis_restarts")?, "restart"),
                count_of(r.text("files_redone")?, "file"),
            ));
        }
        parts.push(format!("on {}: {}", input_name(&input)?, each.join(", ")));
    }
    let snap = o
        .table
        .records()
        .next()
        .context("no rows")?
        .text("snapshot_interval_ms")?
        .to_string();
    Ok(format!(
        "With snapshots every {snap} ms, against the same job without kills, the \
         completion time is {}; every job that ends has exact counts.",
        parts.join("; ")
    ))
}
