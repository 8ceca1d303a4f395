//! The Redis side of a job: key names, the function library, and a
//! connection that rides out Redis restarts. See `docs/protocol.md`.

pub mod job;
pub mod queue;

pub use job::{Commit, JobSettings, Progress};
pub use queue::Entry;

use anyhow::{bail, Context, Result};
use redis::{Connection, ConnectionInfo, IntoConnectionInfo, RedisError, RedisResult};
use std::time::{Duration, Instant};

/// The function library, loaded on every (re)connect.
pub const LIBRARY: &str = wordcount_protocol::library::SOURCE;

/// Names of a job's keys, all under one prefix.
#[derive(Clone, Debug)]
pub struct Keys {
    pub prefix: String,
    pub queue: String,
    pub enqueued: String,
    pub meta: String,
    pub results: String,
    pub failed: String,
    pub counts: String,
    pub stats: String,
    pub latency: String,
    pub faults: String,
    pub summary: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        let k = |s: &str| format!("{prefix}:{s}");
        Keys {
            prefix: prefix.to_string(),
            queue: k("queue"),
            enqueued: k("enqueued"),
            meta: k("meta"),
            results: k("results"),
            failed: k("failed"),
            counts: k("counts"),
            stats: k("stats"),
            latency: k("latency"),
            faults: k("faults"),
            summary: k("summary"),
        }
    }

    /// The consumer group of the queue.
    pub fn group(&self) -> &str {
        &self.prefix
    }

    pub fn stage(&self, id: &str, consumer: &str) -> String {
        format!("{}:stage:{id}:{consumer}", self.prefix)
    }

    pub fn fold_stage(&self) -> String {
        format!("{}:foldstage", self.prefix)
    }
}

/// The connection settings of `url`; the password comes from the URL or,
/// when it has none, from `REDIS_PASSWORD`, so it never needs to be on a
/// command line.
pub fn connection_info(url: &str) -> Result<ConnectionInfo> {
    let info = url
        .into_connection_info()
        .with_context(|| format!("bad Redis URL {:?}", redact(url)))?;
    match std::env::var("REDIS_PASSWORD") {
        Ok(pw) if info.redis_settings().password().is_none() && !pw.is_empty() => {
            let settings = info.redis_settings().clone().set_password(pw);
            Ok(info.set_redis_settings(settings))
        }
        _ => Ok(info),
    }
}

/// `url` with any password replaced, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_string(),
    }
}

/// A Redis connection for one job that reconnects, reloads the function
/// library and retries while Redis is down, restarting or loading its
/// snapshot; it gives up after `patience` without an answer.
pub struct Redis {
    client: redis::Client,
    conn: Option<Connection>,
    pub keys: Keys,
    patience: Duration,
}

impl Redis {
    pub fn open(url: &str, prefix: &str, patience: Duration) -> Result<Self> {
        let client = redis::Client::open(connection_info(url)?)
            .with_context(|| format!("bad Redis URL {:?}", redact(url)))?;
        Ok(Redis {
            client,
            conn: None,
            keys: Keys::new(prefix),
            patience,
        })
    }

    /// Runs `f` until it succeeds or fails for a reason other than Redis
    /// being unreachable. `f` must be safe to repeat: every step of the
    /// protocol is idempotent.
    pub fn run<T>(
        &mut self,
        mut f: impl FnMut(&mut Connection, &Keys) -> RedisResult<T>,
    ) -> Result<T> {
        let started = Instant::now();
        let mut backoff = Duration::from_millis(20);
        let mut last_warning = None::<Instant>;
        loop {
            let err = match connect(&self.client, &mut self.conn) {
                Ok(conn) => match f(conn, &self.keys) {
                    Ok(v) => return Ok(v),
                    Err(e) if is_missing_function(&e) => {
                        self.conn = None;
                        continue;
                    }
                    Err(e) if is_transient(&e) => e,
                    Err(e) => return Err(e.into()),
                },
                Err(e) if is_transient(&e) => e,
                Err(e) => return Err(e.into()),
            };
            self.conn = None;
            if started.elapsed() > self.patience {
                bail!("Redis unreachable for {:?}: {err}", self.patience);
            }
            if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(5)) {
                tracing::warn!("Redis unavailable, retrying: {err}");
                last_warning = Some(Instant::now());
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_millis(500));
        }
    }
}

/// The open connection, or a new one with the function library loaded.
fn connect<'a>(
    client: &redis::Client,
    conn: &'a mut Option<Connection>,
) -> RedisResult<&'a mut Connection> {
    if conn.is_none() {
        let mut c = client.get_connection_with_timeout(Duration::from_secs(5))?;
        redis::cmd("FUNCTION")
            .arg("LOAD")
            .arg("REPLACE")
            .arg(LIBRARY)
            .exec(&mut c)?;
        *conn = Some(c);
    }
    Ok(conn.as_mut().expect("just connected"))
}

/// Errors that pass when Redis comes back.
fn is_transient(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || matches!(
            e.code(),
            Some("LOADING" | "TRYAGAIN" | "CLUSTERDOWN" | "MASTERDOWN")
        )
}

fn is_missing_function(e: &RedisError) -> bool {
    e.to_string().contains("Function not found")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_the_password() {
        assert_eq!(redact("redis://:s3cret@h:1/0"), "redis://***@h:1/0");
        assert_eq!(redact("redis://h:1"), "redis://h:1");
    }
}
