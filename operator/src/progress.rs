//! What Redis says about a job (docs/protocol.md: `P:meta`, `P:stats`,
//! `P:faults`, `P:failed`, `P:summary`), read behind a small trait so that
//! tests can feed the status logic without a Redis. Reading only: the one
//! thing the operator does to a job's Redis (a partition ending connections)
//! is the partition's own, in `chaos::partition`.

use crate::crd::WordCount;
use futures::future::BoxFuture;
use redis::{
    aio::MultiplexedConnection, AsyncConnectionConfig, ConnectionAddr, IntoConnectionInfo,
    RedisConnectionInfo,
};
use serde::Deserialize;
use std::{collections::BTreeMap, time::Duration};
use wordcount_protocol::keys::{meta, stats, Keys};

/// Where a job's Redis is and how to log in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub password: String,
    pub prefix: String,
}

/// A snapshot of the job's keys.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Progress {
    /// Absent until the driver starts.
    pub meta: Option<Meta>,
    pub files_done: i64,
    /// Files that could not be counted (`files_failed` in `P:stats`), and
    /// why (`P:failed`: path -> error).
    pub files_failed: i64,
    pub failed: BTreeMap<String, String>,
    /// Crash fault spec -> the time (ms since the epoch) it fired.
    pub faults: BTreeMap<String, i64>,
    /// Present once the driver has finished.
    pub summary: Option<Summary>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    pub files: Option<i64>,
    pub enqueue_done: bool,
    pub started_ms: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct Summary {
    pub words: i64,
    pub distinct: i64,
    #[serde(default)]
    pub top: Vec<WordCount>,
    #[serde(default)]
    pub seconds: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot reach Redis at {addr}: {reason}")]
    Unreachable { addr: String, reason: String },
    #[error("unexpected data in Redis: {0}")]
    Malformed(String),
}

/// Reads a job's progress from its Redis.
pub trait ProgressReader: Send + Sync {
    fn read<'a>(&'a self, endpoint: &'a Endpoint) -> BoxFuture<'a, Result<Progress, ReadError>>;
}

/// Builds `Progress` from the raw hashes and the summary string.
pub fn parse(
    meta_hash: &BTreeMap<String, String>,
    stats_hash: &BTreeMap<String, String>,
    faults: &BTreeMap<String, String>,
    failed: BTreeMap<String, String>,
    summary: Option<&str>,
) -> Result<Progress, ReadError> {
    fn int(map: &BTreeMap<String, String>, key: &str) -> Result<Option<i64>, ReadError> {
        map.get(key)
            .map(|v| {
                v.trim()
                    .parse::<i64>()
                    .map_err(|_| ReadError::Malformed(format!("{key}={v:?} is not an integer")))
            })
            .transpose()
    }
    let meta = if meta_hash.is_empty() {
        None
    } else {
        Some(Meta {
            files: int(meta_hash, meta::FILES)?,
            enqueue_done: int(meta_hash, meta::ENQUEUE_DONE)? == Some(1),
            started_ms: int(meta_hash, meta::STARTED_MS)?,
        })
    };
    let faults = faults
        .iter()
        .map(|(spec, ms)| {
            let ms = ms
                .trim()
                .parse()
                .map_err(|_| ReadError::Malformed(format!("fault {spec:?} has time {ms:?}")))?;
            Ok((spec.clone(), ms))
        })
        .collect::<Result<_, ReadError>>()?;
    let summary = summary
        .map(|s| {
            serde_json::from_str::<Summary>(s)
                .map_err(|e| ReadError::Malformed(format!("summary: {e}")))
        })
        .transpose()?;
    Ok(Progress {
        meta,
        files_done: int(stats_hash, stats::FILES_DONE)?.unwrap_or(0),
        files_failed: int(stats_hash, stats::FILES_FAILED)?.unwrap_or(0),
        failed,
        faults,
        summary,
    })
}

/// The real reader: one short-lived connection per read, with tight
/// timeouts so that an unreachable Redis slows a reconcile by seconds at most.
#[derive(Clone, Debug)]
pub struct RedisReader {
    pub timeout: Duration,
}

impl Default for RedisReader {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(2),
        }
    }
}

pub fn unreachable(ep: &Endpoint) -> impl Fn(redis::RedisError) -> ReadError + '_ {
    move |e| ReadError::Unreachable {
        addr: format!("{}:{}", ep.host, ep.port),
        reason: e.to_string(),
    }
}

/// One short-lived, authenticated connection to a job's Redis, with
/// `timeout` to connect and for each reply.
pub async fn connect(ep: &Endpoint, timeout: Duration) -> Result<MultiplexedConnection, ReadError> {
    let info = ConnectionAddr::Tcp(ep.host.clone(), ep.port)
        .into_connection_info()
        .map_err(unreachable(ep))?
        .set_redis_settings(RedisConnectionInfo::default().set_password(&ep.password));
    let client = redis::Client::open(info).map_err(unreachable(ep))?;
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(unreachable(ep))
}

impl ProgressReader for RedisReader {
    fn read<'a>(&'a self, ep: &'a Endpoint) -> BoxFuture<'a, Result<Progress, ReadError>> {
        Box::pin(async move {
            let unreachable = unreachable(ep);
            let mut con = connect(ep, self.timeout).await?;
            let keys = Keys::new(&ep.prefix);
            type Hash = BTreeMap<String, String>;
            let (meta, stats, faults, failed, summary): (Hash, Hash, Hash, Hash, Option<String>) =
                redis::pipe()
                    .hgetall(&keys.meta)
                    .hgetall(&keys.stats)
                    .hgetall(&keys.faults)
                    .hgetall(&keys.failed)
                    .get(&keys.summary)
                    .query_async(&mut con)
                    .await
                    .map_err(unreachable)?;
            parse(&meta, &stats, &faults, failed, summary.as_deref())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn empty_redis_means_not_started() {
        let p = parse(&map(&[]), &map(&[]), &map(&[]), map(&[]), None).unwrap();
        assert_eq!(p, Progress::default());
    }

    #[test]
    fn parses_protocol_keys() {
        let p = parse(
            &map(&[
                (meta::FILES, "10"),
                (meta::BYTES, "4096"),
                (meta::ENQUEUE_DONE, "1"),
                (meta::TOKENIZER, "alnum"),
                (meta::STARTED_MS, "1700000000000"),
            ]),
            &map(&[
                (stats::FILES_DONE, "7"),
                (stats::FILES_FAILED, "1"),
                (stats::WORDS, "1234"),
                (stats::COMMITS_IGNORED, "1"),
            ]),
            &map(&[("worker=1,crash=after-read", "1700000001000")]),
            map(&[("b/x.bin", "permission denied")]),
            Some(r#"{"words":1234,"distinct":3,"top":[{"word":"the","count":600}],"seconds":2.5}"#),
        )
        .unwrap();
        assert_eq!(
            p.meta,
            Some(Meta {
                files: Some(10),
                enqueue_done: true,
                started_ms: Some(1_700_000_000_000)
            })
        );
        assert_eq!((p.files_done, p.files_failed), (7, 1));
        assert_eq!(p.failed["b/x.bin"], "permission denied");
        assert_eq!(p.faults["worker=1,crash=after-read"], 1_700_000_001_000);
        let s = p.summary.unwrap();
        assert_eq!((s.words, s.distinct, s.seconds), (1234, 3, 2.5));
        assert_eq!(s.top[0].word, "the");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(matches!(
            parse(
                &map(&[(meta::FILES, "ten")]),
                &map(&[]),
                &map(&[]),
                map(&[]),
                None
            ),
            Err(ReadError::Malformed(_))
        ));
        assert!(parse(&map(&[]), &map(&[]), &map(&[]), map(&[]), Some("{not json")).is_err());
        assert!(parse(&map(&[]), &map(&[]), &map(&[("x", "soon")]), map(&[]), None).is_err());
    }

    #[tokio::test]
    async fn unreachable_redis_is_reported_quickly() {
        // Nothing listens on port 1 of loopback: the connection is refused.
        let reader = RedisReader {
            timeout: Duration::from_millis(500),
        };
        let ep = Endpoint {
            host: "127.0.0.1".into(),
            port: 1,
            password: "x".into(),
            prefix: wordcount_protocol::DEFAULT_PREFIX.into(),
        };
        let started = std::time::Instant::now();
        let err = reader.read(&ep).await.unwrap_err();
        assert!(matches!(err, ReadError::Unreachable { .. }), "{err}");
        assert!(err.to_string().contains("127.0.0.1:1"));
        assert!(started.elapsed() < Duration::from_secs(3));
    }
}
