//! A connection to one Redis that rides out restarts: it reconnects,
//! reloads the function library and retries with back-off, and gives up
//! after its patience naming the cause.

use anyhow::{bail, Context, Result};
use redis::{Connection, ConnectionInfo, IntoConnectionInfo, RedisError, RedisResult};
use std::time::{Duration, Instant};
use wordcount_protocol::{library, Keys};

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
    /// Connections made so far: a new one may be to a Redis that restarted.
    connects: u64,
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
            connects: 0,
        })
    }

    /// How many connections this client has made. When it changes, Redis
    /// may have restarted and lost what it had since its last snapshot.
    pub fn connects(&self) -> u64 {
        self.connects
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
            let err = match connect(&self.client, &mut self.conn, &mut self.connects) {
                Ok(conn) => match f(conn, &self.keys) {
                    Ok(v) => return Ok(v),
                    // Redis restarted without our library (an empty or
                    // older dataset): reconnecting loads it again.
                    Err(e) if is_not_loaded(&e) => Failure::NotLoaded(e),
                    Err(e) if is_transient(&e) => Failure::Unreachable(e),
                    Err(e) => return Err(e.into()),
                },
                Err(Failure::Unreachable(e)) if !is_transient(&e) => return Err(e.into()),
                Err(Failure::LoadRefused(e)) => bail!(
                    "Redis refused to load the function library {:?} (it needs Redis 7 or later, and the FUNCTION command): {e}",
                    library::NAME
                ),
                Err(failure) => failure,
            };
            self.conn = None;
            if started.elapsed() > self.patience {
                match err {
                    Failure::Unreachable(e) => bail!("Redis unreachable for {:?}: {e}", self.patience),
                    Failure::NotLoaded(e) => bail!(
                        "the function library {:?} is missing from Redis and did not stay loaded for {:?}: {e}",
                        library::NAME,
                        self.patience
                    ),
                    Failure::LoadRefused(_) => unreachable!("returned at once"),
                }
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

/// Why a step did not go through this time.
enum Failure {
    Unreachable(RedisError),
    NotLoaded(RedisError),
    LoadRefused(RedisError),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Unreachable(e) => write!(f, "{e}"),
            Failure::NotLoaded(e) => write!(f, "function library not loaded: {e}"),
            Failure::LoadRefused(e) => write!(f, "loading the function library failed: {e}"),
        }
    }
}

/// The open connection, or a new one with the function library loaded.
fn connect<'a>(
    client: &redis::Client,
    conn: &'a mut Option<Connection>,
    connects: &mut u64,
) -> Result<&'a mut Connection, Failure> {
    if conn.is_none() {
        let mut c = client
            .get_connection_with_timeout(Duration::from_secs(5))
            .map_err(Failure::Unreachable)?;
        redis::cmd("FUNCTION")
            .arg("LOAD")
            .arg("REPLACE")
            .arg(library::SOURCE)
            .exec(&mut c)
            .map_err(|e| {
                if is_transient(&e) {
                    Failure::Unreachable(e)
                } else {
                    Failure::LoadRefused(e)
                }
            })?;
        *conn = Some(c);
        *connects += 1;
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

/// Redis has no code of its own for a missing function, only `ERR` and
/// its message.
fn is_not_loaded(e: &RedisError) -> bool {
    e.code() == Some("ERR") && e.to_string().contains(library::NOT_LOADED)
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
