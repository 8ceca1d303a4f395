//! What Redis says about a job (docs/src/protocol.md: `P:meta`, `P:stats`,
//! `P:faults`, `P:failed`, `P:summary`, and a stream's `P:stream`), read behind a small trait so that
//! tests can feed the status logic without a Redis. Reading only: the one
//! thing the operator does to a job's Redis (a partition ending connections)
//! is in `redis::clients`.

use super::{connect, connect_leader, unreachable, Endpoint, RaftFigures, ReadError};
use crate::crd::{OutputStatus, WordCount};
use futures::future::BoxFuture;
use std::{collections::BTreeMap, time::Duration};
use wordcount_protocol::keys::Keys;
pub use wordcount_protocol::state::StreamFigures;
use wordcount_protocol::state::{BadField, CrdtStats, Meta as ProtocolMeta, Stats};

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
    /// RedisRaft: the leader the keys were read from, and the term.
    pub raft: Option<RaftFigures>,
    /// Crdt: each instance's CRDT, in site order; the figures above are
    /// the sites' summed.
    pub instances: Vec<InstanceFigures>,
}

/// What one Crdt instance's CRDT holds (`P:crdt:stats`, `P:crdt:digest`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InstanceFigures {
    pub files_known: i64,
    pub files_repaired: i64,
    /// Origin site -> digest of its files held here: equal maps, equal sets.
    pub digests: BTreeMap<String, String>,
    /// Whether its own site is done: enqueued, and every file committed
    /// (from its site's keys, by `Progress::of_sites`).
    pub site_done: bool,
}

impl Progress {
    /// A Crdt job's progress: its sites' summed, each instance's CRDT kept.
    /// Totals are known once every site's driver has said its own; the
    /// result once every driver has written it (they write the same).
    pub fn of_sites(sites: Vec<(Progress, InstanceFigures)>) -> Progress {
        let mut out = Progress::default();
        let every_meta = sites.iter().all(|(p, _)| p.meta.is_some());
        // Converged instances hold the same counts, so their drivers wrote
        // the same result (each its own time); one that differs is no result.
        let result = |p: &Progress| {
            p.summary
                .as_ref()
                .map(|s| (s.words, s.distinct, s.top.clone()))
        };
        let first = sites.first().and_then(|(p, _)| result(p));
        let every_summary = first.is_some() && sites.iter().all(|(p, _)| result(p) == first);
        for (p, mut instance) in sites {
            instance.site_done = p.meta.as_ref().is_some_and(|m| {
                m.enqueue_done && m.files.is_some_and(|f| p.files_done + p.files_failed >= f)
            });
            if every_meta {
                let m = p.meta.unwrap_or_default();
                let total = out.meta.get_or_insert(Meta {
                    files: Some(0),
                    enqueue_done: true,
                    started_ms: m.started_ms,
                });
                total.files = total.files.zip(m.files).map(|(a, b)| a + b);
                total.enqueue_done &= m.enqueue_done;
                total.started_ms = total.started_ms.min(m.started_ms).or(m.started_ms);
            }
            out.files_done += p.files_done;
            out.files_failed += p.files_failed;
            out.failed.extend(p.failed);
            out.faults.extend(p.faults);
            if every_summary && out.summary.is_none() {
                out.summary = p.summary;
            }
            out.instances.push(instance);
        }
        out
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    pub files: Option<i64>,
    pub enqueue_done: bool,
    pub started_ms: Option<i64>,
}

/// The contract's part of `P:summary` (`wordcount_protocol::summary`), in
/// the status's terms.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    pub words: i64,
    pub distinct: i64,
    pub top: Vec<WordCount>,
    pub seconds: f64,
    /// Where every word's count was written, when the job was asked to.
    pub output: Option<OutputStatus>,
}

impl From<wordcount_protocol::summary::Summary> for Summary {
    fn from(s: wordcount_protocol::summary::Summary) -> Self {
        Summary {
            words: s.words as i64,
            distinct: s.distinct as i64,
            top: (s.top.into_iter())
                .map(|w| WordCount {
                    word: w.word,
                    count: w.count as i64,
                })
                .collect(),
            seconds: s.seconds,
            output: s.output.map(|o| OutputStatus {
                location: o.location,
                words: o.words as i64,
            }),
        }
    }
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
    let bad = |what: &'static str| move |e: BadField| ReadError::Malformed(format!("{what}: {e}"));
    let meta = ProtocolMeta::parse(meta_hash)
        .map_err(bad("P:meta"))?
        .map(|m| Meta {
            files: m.files,
            enqueue_done: m.enqueue_done,
            started_ms: m.started_ms,
        });
    let stats = Stats::parse(stats_hash).map_err(bad("P:stats"))?;
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
            (wordcount_protocol::summary::Summary::parse(s))
                .map(Summary::from)
                .map_err(|e| ReadError::Malformed(e.to_string()))
        })
        .transpose()?;
    Ok(Progress {
        meta,
        files_done: stats.files_done as i64,
        files_failed: stats.files_failed as i64,
        failed,
        faults,
        summary,
        stream: StreamFigures::parse(stream_hash).map_err(bad("P:stream"))?,
        raft: None,
        instances: Vec::new(),
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

impl ProgressReader for RedisReader {
    fn read<'a>(&'a self, ep: &'a Endpoint) -> BoxFuture<'a, Result<Progress, ReadError>> {
        Box::pin(async move {
            if ep.instances.is_empty() {
                return self.read_one(ep).await;
            }
            // A Crdt job: each instance as if it were the one Redis (its
            // own site's keys), and its CRDT.
            let mut sites = Vec::new();
            for i in 0..ep.instances.len() {
                let one = ep.instance(i).expect("an instance in range");
                sites.push((self.read_one(&one).await?, self.read_crdt(&one).await?));
            }
            Ok(Progress::of_sites(sites))
        })
    }
}

impl RedisReader {
    async fn read_one(&self, ep: &Endpoint) -> Result<Progress, ReadError> {
        let unreachable = unreachable(ep);
        let (mut con, raft) = if ep.replicas.is_empty() {
            (connect(ep, self.timeout).await?, None)
        } else {
            let (con, figures) = connect_leader(ep, self.timeout).await?;
            (con, Some(figures))
        };
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
        let mut progress = parse(&meta, &stats, &faults, failed, summary.as_deref(), &stream)?;
        progress.raft = raft;
        Ok(progress)
    }

    async fn read_crdt(&self, ep: &Endpoint) -> Result<InstanceFigures, ReadError> {
        let mut con = connect(ep, self.timeout).await?;
        let keys = Keys::new(&ep.prefix);
        type Hash = BTreeMap<String, String>;
        let (stats, digests): (Hash, Hash) = redis::pipe()
            .hgetall(&keys.crdt_stats)
            .hgetall(&keys.crdt_digest)
            .query_async(&mut con)
            .await
            .map_err(unreachable(ep))?;
        let stats = CrdtStats::parse(&stats)
            .map_err(|e| ReadError::Malformed(format!("P:crdt:stats: {e}")))?;
        Ok(InstanceFigures {
            files_known: stats.files_known as i64,
            files_repaired: stats.files_repaired as i64,
            digests,
            site_done: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wordcount_protocol::keys::{meta, stats, stream};

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
        assert_eq!(s.output, None);
    }

    #[test]
    fn the_summary_says_where_the_output_went() {
        let none = map(&[]);
        let summary = r#"{"words":9,"distinct":2,"seconds":1,"output":{"location":"s3://results/demo.txt","words":2}}"#;
        let p = parse(&none, &none, &none, map(&[]), Some(summary), &none).unwrap();
        assert_eq!(
            p.summary.unwrap().output,
            Some(OutputStatus {
                location: "s3://results/demo.txt".into(),
                words: 2
            })
        );
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
    async fn no_replica_answering_says_so_for_each() {
        let reader = RedisReader {
            timeout: Duration::from_millis(500),
        };
        let ep = Endpoint {
            port: 1,
            prefix: wordcount_protocol::DEFAULT_PREFIX.into(),
            replicas: vec!["127.0.0.1".into(), "127.0.0.2".into()],
            ..Endpoint::default()
        };
        let err = reader.read(&ep).await.unwrap_err().to_string();
        assert!(
            err.contains("no leader found")
                && err.contains("127.0.0.1:1")
                && err.contains("127.0.0.2:1"),
            "{err}"
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
            ..Endpoint::default()
        };
        let started = std::time::Instant::now();
        let err = reader.read(&ep).await.unwrap_err();
        assert!(matches!(err, ReadError::Unreachable { .. }), "{err}");
        assert!(err.to_string().contains("127.0.0.1:1"));
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    /// A Crdt site as its own instance says it: `files` of its own, `done`
    /// committed, and a summary once its driver has converged.
    fn site(
        files: i64,
        done: i64,
        summary: Option<i64>,
        digest: &str,
    ) -> (Progress, InstanceFigures) {
        let progress = Progress {
            meta: Some(Meta {
                files: Some(files),
                enqueue_done: true,
                started_ms: Some(1000 + files),
            }),
            files_done: done,
            summary: summary.map(|words| Summary {
                words,
                distinct: 2,
                top: Vec::new(),
                seconds: files as f64,
                output: None,
            }),
            ..Progress::default()
        };
        let crdt = InstanceFigures {
            files_known: done,
            digests: map(&[("site", digest)]),
            ..InstanceFigures::default()
        };
        (progress, crdt)
    }

    #[test]
    fn a_crdt_jobs_sites_are_summed_and_its_result_is_the_one_they_agree_on() {
        let p = Progress::of_sites(vec![
            site(3, 3, Some(40), "a"),
            site(4, 2, None, "b"),
            site(3, 3, Some(40), "a"),
        ]);
        let meta = p.meta.clone().unwrap();
        assert_eq!((meta.files, p.files_done), (Some(10), 8));
        assert_eq!(meta.started_ms, Some(1003), "the first site to start");
        let done: Vec<bool> = p.instances.iter().map(|i| i.site_done).collect();
        assert_eq!(done, [true, false, true]);
        assert_eq!(p.summary, None, "a driver has not written its result yet");

        // Each driver's own time, the same counts: the result.
        let p = Progress::of_sites(vec![site(3, 3, Some(40), "a"), site(4, 4, Some(40), "a")]);
        assert_eq!(p.summary.map(|s| s.words), Some(40));
        // Counts that differ are no result.
        let p = Progress::of_sites(vec![site(3, 3, Some(40), "a"), site(4, 4, Some(41), "a")]);
        assert_eq!(p.summary, None);
        // A site whose driver has not started: no total yet.
        let (mut late, crdt) = site(0, 0, None, "");
        late.meta = None;
        let p = Progress::of_sites(vec![site(3, 3, None, "a"), (late, crdt)]);
        assert_eq!(p.meta, None);
    }
}
