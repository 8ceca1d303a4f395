//! `wordcount`: count words fast, or through Redis with crashing and slow
//! workers. See `wordcount --help`. The flags are in [`args`], the work of
//! each subcommand in [`commands`]; the library crates do the rest.

mod args;
mod commands;

use anyhow::Result;
use args::{Cli, Cmd};
use clap::Parser;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use wordcount_count::generate::{CorpusSpec, TweetSpec};
use wordcount_job::driver::{OutputFailed, Unreadable};
use wordcount_protocol::exit;

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
            } else if e.is::<OutputFailed>() {
                exit::OUTPUT
            } else {
                exit::ERROR
            };
            std::process::exit(code);
        }
    }
}

/// Hands each subcommand to its function.
fn execute(cmd: Cmd, stop: Arc<AtomicBool>) -> Result<()> {
    match cmd {
        Cmd::Count {
            paths,
            out,
            threads,
            processes,
        } => commands::count(&paths, &out, threads, processes),
        #[cfg(feature = "lab")]
        Cmd::Run(a) => commands::run(*a, stop),
        Cmd::Driver {
            conn,
            data,
            job,
            out,
            unreadable,
            stream,
        } => commands::driver(conn, data, &job, &out, &unreadable, &stream, &stop),
        Cmd::Worker {
            conn,
            input,
            index,
            name,
            faults,
        } => commands::worker(&conn, input, index, name, faults, &stop),
        Cmd::Generate {
            out,
            files,
            tweets: true,
            tweets_per_file,
            vocabulary,
            zipf,
            seed,
            ..
        } => commands::tweets(
            &out,
            &TweetSpec {
                files,
                tweets_per_file,
                vocabulary,
                zipf,
                seed,
            },
        ),
        Cmd::Generate {
            out,
            files,
            bytes,
            vocabulary,
            zipf,
            skew,
            seed,
            ..
        } => commands::corpus(
            &out,
            &CorpusSpec {
                files,
                bytes_per_file: bytes,
                vocabulary,
                zipf,
                skew,
                seed,
            },
        ),
        #[cfg(feature = "lab")]
        Cmd::Experiment(args) => wordcount_lab::experiments::run_with_stop(args, stop),
        #[cfg(feature = "lab")]
        Cmd::Report(args) => wordcount_lab::labs::report(args, stop),
        Cmd::Shard { tokenizer } => wordcount_count::engine::shard_main(tokenizer),
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
}
