//! What Redis says about a job (docs/protocol.md: `P:meta`, `P:stats`,
//! `P:faults`, `P:failed`, `P:summary`, and a stream's `P:stream`), read behind a small trait so that
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
use wordcount_protocol::keys::{meta, stats, stream, Keys};

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
    /// A stream's figures (`P:stream`), present once its driver has
    /// written them; absent for a batch.
    pub stream: Option<StreamFigures>,
}

/// `P:stream`, as the driver of a stream rewrites it about once a second;
/// the fields it has not written are 0.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StreamFigures {
    pub injected: i64,
    pub committed: i64,
    /// Latency percentiles, in milliseconds.
    pub p50_ms: i64,
    pub p99_ms: i64,
    /// Files committed a second.
    pub throughput: f64,
    /// Files injected a second.
    pub effective_rate: f64,
    pub lag: i64,
    pub pending: i64,
    pub throttled: bool,
    pub throttled_ms: i64,
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
    stream_hash: &BTreeMap<String, String>,
) -> Result<Progress, ReadError> {
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
        stream: parse_stream(stream_hash)?,
    })
}

fn int(map: &BTreeMap<String, String>, key: &str) -> Result<Option<i64>, ReadError> {
    map.get(key)
        .map(|v| {
            v.trim()
                .parse::<i64>()
                .map_err(|_| ReadError::Malformed(format!("{key}={v:?} is not an integer")))
        })
        .transpose()
}

/// A finite number, written as an integer or not.
fn number(map: &BTreeMap<String, String>, key: &str) -> Result<Option<f64>, ReadError> {
    map.get(key)
        .map(|v| {
            v.trim()
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| ReadError::Malformed(format!("{key}={v:?} is not a number")))
        })
        .transpose()
}

/// `P:stream`; `None` when the hash is empty (a batch, or a stream whose
/// driver has not written it yet).
fn parse_stream(hash: &BTreeMap<String, String>) -> Result<Option<StreamFigures>, ReadError> {
    if hash.is_empty() {
        return Ok(None);
    }
    // Latencies may be written with a fraction; the status keeps whole ms.
    let ms = |key| Ok::<_, ReadError>(number(hash, key)?.map_or(0, |x| x.round() as i64));
    Ok(Some(StreamFigures {
        injected: int(hash, stream::INJECTED)?.unwrap_or(0),
        committed: int(hash, stream::COMMITTED)?.unwrap_or(0),
        p50_ms: ms(stream::P50_MS)?,
        p99_ms: ms(stream::P99_MS)?,
        throughput: number(hash, stream::THROUGHPUT)?.unwrap_or(0.0),
        effective_rate: number(hash, stream::EFFECTIVE_RATE)?.unwrap_or(0.0),
        lag: int(hash, stream::LAG)?.unwrap_or(0),
        pending: int(hash, stream::PENDING)?.unwrap_or(0),
        throttled: int(hash, stream::THROTTLED)? == Some(1),
        throttled_ms: ms(stream::THROTTLED_MS)?,
    }))
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
            type Read = (Hash, Hash, Hash, Hash, Option<String>, Hash);
            let (meta, stats, faults, failed, summary, stream): Read = redis::pipe()
                .hgetall(&keys.meta)
                .hgetall(&keys.stats)
                .hgetall(&keys.faults)
                .hgetall(&keys.failed)
                .get(&keys.summary)
                .hgetall(&keys.stream)
                .query_async(&mut con)
                .await
                .map_err(unreachable)?;
            parse(&meta, &stats, &faults, failed, summary.as_deref(), &stream)
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
        let p = parse(&map(&[]), &map(&[]), &map(&[]), map(&[]), None, &map(&[])).unwrap();
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
            &map(&[]),
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
                None,
                &map(&[])
            ),
            Err(ReadError::Malformed(_))
        ));
        let none = map(&[]);
        assert!(parse(&none, &none, &none, map(&[]), Some("{not json"), &none).is_err());
        assert!(parse(&none, &none, &map(&[("x", "soon")]), map(&[]), None, &none).is_err());
        for bad in [
            (stream::LAG, "many"),
            (stream::P50_MS, "NaN"),
            (stream::THROUGHPUT, "inf"),
        ] {
            assert!(
                matches!(
                    parse(&none, &none, &none, map(&[]), None, &map(&[bad])),
                    Err(ReadError::Malformed(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn parses_a_streams_figures() {
        let none = map(&[]);
        let p = parse(
            &none,
            &none,
            &none,
            map(&[]),
            None,
            &map(&[
                (stream::RATE, "20"),
                (stream::INJECTED, "240"),
                (stream::COMMITTED, "231"),
                (stream::P50_MS, "41"),
                (stream::P90_MS, "120"),
                (stream::P99_MS, "310.6"),
                (stream::MAX_MS, "402"),
                (stream::THROUGHPUT, "19.5"),
                (stream::EFFECTIVE_RATE, "20"),
                (stream::LAG, "7"),
                (stream::PENDING, "2"),
                (stream::THROTTLED, "1"),
                (stream::THROTTLED_MS, "1500"),
            ]),
        )
        .unwrap();
        assert_eq!(
            p.stream,
            Some(StreamFigures {
                injected: 240,
                committed: 231,
                p50_ms: 41,
                p99_ms: 311,
                throughput: 19.5,
                effective_rate: 20.0,
                lag: 7,
                pending: 2,
                throttled: true,
                throttled_ms: 1500,
            })
        );
        // Fields not written yet read as 0; "0" is not throttled.
        let early = parse(
            &none,
            &none,
            &none,
            map(&[]),
            None,
            &map(&[(stream::RATE, "20"), (stream::THROTTLED, "0")]),
        )
        .unwrap();
        assert_eq!(early.stream, Some(StreamFigures::default()));
        // A batch has no P:stream.
        assert_eq!(
            parse(&none, &none, &none, map(&[]), None, &none)
                .unwrap()
                .stream,
            None
        );
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
