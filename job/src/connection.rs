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
/// snapshot; it gives up after `patience` without an answer. Given several
/// replicas (RedisRaft), it follows `-MOVED` to the leader and, when the
/// one it talks to is gone, tries the next.
pub struct Redis {
    /// The replicas known: those given, then any a `-MOVED` named.
    clients: Vec<redis::Client>,
    /// The one connected to, or to connect to next.
    current: usize,
    conn: Option<Connection>,
    pub keys: Keys,
    patience: Duration,
    /// Replies slower than this count as lost (RedisRaft: a write with no
    /// majority hangs); none for one Redis, where a large write is slow.
    timeout: Option<Duration>,
    /// How long a connection (with its handshake) may take.
    connect_timeout: Duration,
    /// Whether a failed try is logged: not for a CRDT peer, whose caller
    /// says once what an instance it cannot reach means.
    warn: bool,
    /// Connections made so far: a new one may be to a Redis that restarted.
    connects: u64,
    /// Since when no call went through: an outage is logged once when it
    /// starts and once when it ends, not at every retry.
    down_since: Option<Instant>,
}

impl Redis {
    /// `url` names one Redis, or RedisRaft's replicas separated by commas.
    pub fn open(url: &str, prefix: &str, patience: Duration) -> Result<Self> {
        let clients = url
            .split(',')
            .map(|u| {
                redis::Client::open(connection_info(u.trim())?)
                    .with_context(|| format!("bad Redis URL {:?}", redact(u)))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Redis {
            clients,
            current: 0,
            conn: None,
            keys: Keys::new(prefix),
            patience,
            timeout: None,
            connect_timeout: Duration::from_secs(5),
            warn: true,
            connects: 0,
            down_since: None,
        })
    }

    /// A connection to another site's CRDT instance, which may be cut off
    /// (a network policy drops its packets: nothing ever answers). Each
    /// connection and each reply waits at most [`PEER_TIMEOUT`], and a call
    /// gives up after [`PEER_PATIENCE`] of retries: an unreachable peer
    /// costs a few seconds, and is tried again later by the caller, who
    /// also says what it means (nothing is logged here).
    pub fn open_peer(url: &str, prefix: &str) -> Result<Self> {
        let mut redis = Self::open(url, prefix, PEER_PATIENCE)?;
        redis.timeout = Some(PEER_TIMEOUT);
        redis.connect_timeout = PEER_TIMEOUT;
        redis.warn = false;
        Ok(redis)
    }

    /// Counts a reply slower than RedisRaft's election time as lost, and
    /// tries again (elsewhere).
    pub fn with_reply_timeout(mut self) -> Self {
        self.timeout = Some(REPLICA_TIMEOUT);
        self
    }

    /// Logs nothing of outages: for a client beside another that does
    /// (the runner's own look at the job, beside its driver).
    pub fn quiet(&mut self) {
        self.warn = false;
    }

    /// How many connections this client has made. When it changes, Redis
    /// may have restarted and lost what it had since its last snapshot.
    pub fn connects(&self) -> u64 {
        self.connects
    }

    /// Runs `f` until it succeeds or fails for a reason other than Redis
    /// being unreachable. `f` must be safe to repeat: every step of the
    /// protocol is idempotent (and a reply that timed out may have been
    /// applied).
    pub fn run<T>(
        &mut self,
        mut f: impl FnMut(&mut Connection, &Keys) -> RedisResult<T>,
    ) -> Result<T> {
        // Patience runs while nothing answers: a Redis loading its
        // snapshot answers (`LOADING`), and is waited for however long.
        let mut started = Instant::now();
        let mut backoff = Duration::from_millis(20);
        let mut last_warning = None::<Instant>;
        loop {
            let client = &self.clients[self.current];
            let timeouts = (self.connect_timeout, self.timeout);
            let err = match connect(client, &mut self.conn, &mut self.connects, timeouts) {
                Ok(conn) => match f(conn, &self.keys) {
                    Ok(v) => {
                        if let Some(since) = self.down_since.take() {
                            if self.warn {
                                tracing::warn!(
                                    "Redis back after {:.2} s",
                                    since.elapsed().as_secs_f64()
                                );
                            }
                        }
                        return Ok(v);
                    }
                    Err(e) if e.redirect_node().is_some() => Failure::Moved(e),
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
            if let Failure::Moved(e) = &err {
                if let Some(i) = self.follow(e) {
                    // Straight to the leader, unless it was named before:
                    // followers name a dead leader until they elect another.
                    if i != self.current {
                        self.current = i;
                        continue;
                    }
                }
            } else if matches!(err, Failure::Unreachable(_)) {
                self.current = (self.current + 1) % self.clients.len();
            }
            if matches!(&err, Failure::Unreachable(e) if error_code(e).as_deref() == Some("LOADING"))
            {
                started = Instant::now();
            }
            if started.elapsed() > self.patience {
                match err {
                    Failure::Unreachable(e) | Failure::Moved(e) => {
                        bail!("Redis unreachable for {:?}: {e}", self.patience)
                    }
                    Failure::NotLoaded(e) => bail!(
                        "the function library {:?} is missing from Redis and did not stay loaded for {:?}: {e}",
                        library::NAME,
                        self.patience
                    ),
                    Failure::LoadRefused(_) => unreachable!("returned at once"),
                }
            }
            let since = *self.down_since.get_or_insert_with(Instant::now);
            if self.warn && last_warning.is_none_or(|t| t.elapsed() > OUTAGE_REMINDER) {
                if last_warning.is_none() && since.elapsed() < OUTAGE_REMINDER {
                    tracing::warn!("Redis unavailable ({err}); retrying");
                } else {
                    tracing::warn!(
                        "Redis still unavailable after {:.0} s ({err}); retrying",
                        since.elapsed().as_secs_f64()
                    );
                }
                last_warning = Some(Instant::now());
            }
            std::thread::sleep(backoff);
            // At most a tenth of a second: a Redis restarted from a snapshot
            // may serve only a few tenths before the next kill.
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// The index of the replica a `-MOVED` names, added if new.
    fn follow(&mut self, e: &RedisError) -> Option<usize> {
        // `-MOVED SLOT HOST:PORT` (RedisRaft's slot is always 0).
        let (addr, _slot) = e.redirect_node()?;
        let (host, port) = addr.rsplit_once(':')?;
        let port: u16 = port.parse().ok()?;
        let same = |c: &redis::Client| {
            matches!(c.get_connection_info().addr(),
                redis::ConnectionAddr::Tcp(h, p) if h == host && *p == port)
        };
        if let Some(i) = self.clients.iter().position(same) {
            return Some(i);
        }
        let info = self.clients[0]
            .get_connection_info()
            .clone()
            .set_addr(redis::ConnectionAddr::Tcp(host.to_string(), port));
        self.clients.push(redis::Client::open(info).ok()?);
        Some(self.clients.len() - 1)
    }
}

/// The longest wait between two tries.
const MAX_BACKOFF: Duration = Duration::from_millis(100);

/// How often an outage that goes on is logged again.
const OUTAGE_REMINDER: Duration = Duration::from_secs(10);

/// How long a client waits for a RedisRaft replica's reply: writes with
/// no majority hang (over a minute, measured), and an election takes
/// about 1.5 s.
const REPLICA_TIMEOUT: Duration = Duration::from_secs(3);

/// How long a CRDT peer may take to connect or to answer: a large reply
/// streams well within it (the timeout is per read), a peer whose packets
/// are dropped never answers.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a call to a peer retries (a refused connection, a restarting
/// Redis) before it fails; one try that timed out already exceeds it.
const PEER_PATIENCE: Duration = Duration::from_secs(1);

/// Why a step did not go through this time.
enum Failure {
    Unreachable(RedisError),
    /// A RedisRaft follower: `-MOVED` to the leader.
    Moved(RedisError),
    NotLoaded(RedisError),
    LoadRefused(RedisError),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Unreachable(e) | Failure::Moved(e) => write!(f, "{e}"),
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
    (connect_timeout, timeout): (Duration, Option<Duration>),
) -> Result<&'a mut Connection, Failure> {
    if conn.is_none() {
        let mut c = client
            .get_connection_with_timeout(connect_timeout)
            .map_err(Failure::Unreachable)?;
        c.set_read_timeout(timeout).map_err(Failure::Unreachable)?;
        c.set_write_timeout(timeout).map_err(Failure::Unreachable)?;
        redis::cmd("FUNCTION")
            .arg("LOAD")
            .arg("REPLACE")
            .arg(library::SOURCE)
            .exec(&mut c)
            .map_err(|e| {
                if e.redirect_node().is_some() {
                    Failure::Moved(e)
                } else if is_transient(&e) {
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

/// A server error's code (`NOGROUP`, `LOADING`, our `WCSTAGEGONE`),
/// also when it failed a pipeline: there `RedisError::code` knows only the
/// codes redis-rs has a kind for.
pub fn error_code(e: &RedisError) -> Option<String> {
    if let Some(code) = e.code() {
        return Some(code.to_string());
    }
    let errors = e.clone().into_server_errors()?;
    errors.first().map(|(_, s)| s.code().to_string())
}

/// Errors that pass when Redis comes back.
fn is_transient(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        // NOCLUSTER: a RedisRaft replica not in its cluster yet, or again
        // (joining, or up from its log before it rejoins): another replica,
        // or this one a moment later, answers. NOGROUP: Redis came back
        // from a snapshot without the job's queue, which the driver
        // restores.
        || matches!(
            error_code(e).as_deref(),
            Some("LOADING" | "TRYAGAIN" | "CLUSTERDOWN" | "MASTERDOWN" | "NOCLUSTER" | "NOGROUP")
        )
}

/// Redis has no code of its own for a missing function, only `ERR` and
/// its message.
fn is_not_loaded(e: &RedisError) -> bool {
    error_code(e).as_deref() == Some("ERR") && e.to_string().contains(library::NOT_LOADED)
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
