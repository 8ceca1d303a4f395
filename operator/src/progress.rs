//! What Redis says about a job (docs/protocol.md: `P:meta`, `P:stats`,
//! `P:faults`, `P:summary`), read behind a small trait so that tests can feed
//! the status logic without a Redis.

use crate::crd::WordCount;
use futures::future::BoxFuture;
use redis::{
    aio::MultiplexedConnection, AsyncConnectionConfig, ConnectionAddr, IntoConnectionInfo,
    RedisConnectionInfo,
};
use serde::Deserialize;
use std::{collections::BTreeMap, time::Duration};

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

    /// Ends the connections of Redis clients at these IP addresses (a
    /// partition: a NetworkPolicy stops new connections only). Returns how
    /// many it ended.
    fn end_clients<'a>(
        &'a self,
        endpoint: &'a Endpoint,
        ips: &'a [String],
    ) -> BoxFuture<'a, Result<usize, ReadError>>;
}

/// The ids of the clients in a `CLIENT LIST` reply whose address is one of `ips`.
pub fn clients_at(list: &str, ips: &[String]) -> Vec<u64> {
    list.lines()
        .filter_map(|line| {
            let field = |key: &str| {
                line.split(' ')
                    .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
            };
            let ip = field("addr")?.rsplit_once(':')?.0;
            ips.iter()
                .any(|i| i == ip)
                .then(|| field("id")?.parse().ok())?
        })
        .collect()
}

/// Builds `Progress` from the raw hashes and the summary string.
pub fn parse(
    meta: &BTreeMap<String, String>,
    stats: &BTreeMap<String, String>,
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
    let meta = if meta.is_empty() {
        None
    } else {
        Some(Meta {
            files: int(meta, "files")?,
            enqueue_done: int(meta, "enqueue_done")? == Some(1),
            started_ms: int(meta, "started_ms")?,
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
        files_done: int(stats, "files_done")?.unwrap_or(0),
        files_failed: int(stats, "files_failed")?.unwrap_or(0),
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

fn unreachable(ep: &Endpoint) -> impl Fn(redis::RedisError) -> ReadError + '_ {
    move |e| ReadError::Unreachable {
        addr: format!("{}:{}", ep.host, ep.port),
        reason: e.to_string(),
    }
}

impl RedisReader {
    async fn connect(&self, ep: &Endpoint) -> Result<MultiplexedConnection, ReadError> {
        let info = ConnectionAddr::Tcp(ep.host.clone(), ep.port)
            .into_connection_info()
            .map_err(unreachable(ep))?
            .set_redis_settings(RedisConnectionInfo::default().set_password(&ep.password));
        let client = redis::Client::open(info).map_err(unreachable(ep))?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout));
        client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(unreachable(ep))
    }
}

impl ProgressReader for RedisReader {
    fn read<'a>(&'a self, ep: &'a Endpoint) -> BoxFuture<'a, Result<Progress, ReadError>> {
        Box::pin(async move {
            let unreachable = unreachable(ep);
            let mut con = self.connect(ep).await?;
            let p = &ep.prefix;
            type Hash = BTreeMap<String, String>;
            let (meta, stats, faults, failed, summary): (Hash, Hash, Hash, Hash, Option<String>) =
                redis::pipe()
                    .hgetall(format!("{p}:meta"))
                    .hgetall(format!("{p}:stats"))
                    .hgetall(format!("{p}:faults"))
                    .hgetall(format!("{p}:failed"))
                    .get(format!("{p}:summary"))
                    .query_async(&mut con)
                    .await
                    .map_err(unreachable)?;
            parse(&meta, &stats, &faults, failed, summary.as_deref())
        })
    }

    fn end_clients<'a>(
        &'a self,
        ep: &'a Endpoint,
        ips: &'a [String],
    ) -> BoxFuture<'a, Result<usize, ReadError>> {
        Box::pin(async move {
            let mut con = self.connect(ep).await?;
            let list: String = redis::cmd("CLIENT")
                .arg("LIST")
                .query_async(&mut con)
                .await
                .map_err(unreachable(ep))?;
            let mut pipe = redis::pipe();
            for id in clients_at(&list, ips) {
                pipe.cmd("CLIENT").arg("KILL").arg("ID").arg(id);
            }
            let ended: Vec<usize> = pipe.query_async(&mut con).await.map_err(unreachable(ep))?;
            Ok(ended.iter().sum())
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
                ("files", "10"),
                ("bytes", "4096"),
                ("enqueue_done", "1"),
                ("tokenizer", "alnum"),
                ("started_ms", "1700000000000"),
            ]),
            &map(&[
                ("files_done", "7"),
                ("files_failed", "1"),
                ("words", "1234"),
                ("commits_ignored", "1"),
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
    fn clients_are_picked_by_address() {
        let list = "id=3 addr=10.244.0.5:41234 laddr=10.244.0.3:6379 fd=8 name= db=0\n\
                    id=4 addr=10.244.0.15:5000 laddr=10.244.0.3:6379 fd=9 name= db=0\n\
                    id=7 addr=10.244.0.5:41240 laddr=10.244.0.3:6379 fd=10 name= db=0\n";
        assert_eq!(clients_at(list, &["10.244.0.5".into()]), [3, 7]);
        assert_eq!(clients_at(list, &["10.244.0.1".into()]), Vec::<u64>::new());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(matches!(
            parse(
                &map(&[("files", "ten")]),
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
            prefix: "wc".into(),
        };
        let started = std::time::Instant::now();
        let err = reader.read(&ep).await.unwrap_err();
        assert!(matches!(err, ReadError::Unreachable { .. }), "{err}");
        assert!(err.to_string().contains("127.0.0.1:1"));
        assert!(started.elapsed() < Duration::from_secs(3));
    }
}
