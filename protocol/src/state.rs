//! `P:meta`, `P:stats`, `P:crdt:stats` and `P:stream` read back: the one reader of the
//! job's hashes, for the pods (driver, workers, the local runner) and the
//! operator alike. A field that is there but not a number is a typed error
//! ([`BadField`]); each caller decides what to do with it, none reads it
//! as 0. A field that is not there yet is absent (an `Option`) or 0 for a
//! counter (a counter starts at 0).

use crate::keys::{crdt_stats, meta, stats, stream};
use std::collections::{BTreeMap, HashMap};

/// A field of a job's hash that holds no number.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{key}={value:?} is not {what}")]
pub struct BadField {
    pub key: String,
    pub value: String,
    pub what: &'static str,
}

/// A Redis hash as read with `HGETALL`.
pub trait Fields {
    fn field(&self, key: &str) -> Option<&str>;
    fn is_empty(&self) -> bool;

    /// An integer field, if there.
    fn int(&self, key: &str) -> Result<Option<i64>, BadField> {
        self.field(key)
            .map(|v| {
                v.trim().parse::<i64>().map_err(|_| BadField {
                    key: key.into(),
                    value: v.into(),
                    what: "an integer",
                })
            })
            .transpose()
    }

    /// A count: a field that is a whole number of 0 or more, 0 if not there.
    fn count(&self, key: &str) -> Result<u64, BadField> {
        match self.int(key)? {
            None => Ok(0),
            Some(n) => u64::try_from(n).map_err(|_| BadField {
                key: key.into(),
                value: n.to_string(),
                what: "a count (0 or more)",
            }),
        }
    }

    /// A finite number, written as an integer or not.
    fn number(&self, key: &str) -> Result<Option<f64>, BadField> {
        self.field(key)
            .map(|v| {
                v.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| BadField {
                        key: key.into(),
                        value: v.into(),
                        what: "a number",
                    })
            })
            .transpose()
    }
}

impl Fields for HashMap<String, String> {
    fn field(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
    fn is_empty(&self) -> bool {
        HashMap::is_empty(self)
    }
}

impl Fields for BTreeMap<String, String> {
    fn field(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
    fn is_empty(&self) -> bool {
        BTreeMap::is_empty(self)
    }
}

/// `P:meta`: what the driver said of the job.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// The settings are written (the driver has created the job).
    pub created: bool,
    /// Files and bytes to count, once enqueueing has begun.
    pub files: Option<i64>,
    pub bytes: Option<i64>,
    /// Every file is enqueued.
    pub enqueue_done: bool,
    /// When the driver first created the job (ms since the epoch).
    pub started_ms: Option<i64>,
}

impl Meta {
    /// `None` while the hash is empty (no driver has started).
    pub fn parse(hash: &impl Fields) -> Result<Option<Meta>, BadField> {
        if hash.is_empty() {
            return Ok(None);
        }
        Ok(Some(Meta {
            created: hash.field(meta::TOKENIZER).is_some(),
            files: hash.int(meta::FILES)?,
            bytes: hash.int(meta::BYTES)?,
            enqueue_done: hash.int(meta::ENQUEUE_DONE)? == Some(1),
            started_ms: hash.int(meta::STARTED_MS)?,
        }))
    }
}

/// `P:stats`: what the commits counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub files_done: u64,
    pub files_failed: u64,
    pub words: u64,
    pub bytes_done: u64,
    /// Second commits of a file, ignored.
    pub commits_ignored: u64,
    pub store_retries: u64,
}

impl Stats {
    pub fn parse(hash: &impl Fields) -> Result<Stats, BadField> {
        Ok(Stats {
            files_done: hash.count(stats::FILES_DONE)?,
            files_failed: hash.count(stats::FILES_FAILED)?,
            words: hash.count(stats::WORDS)?,
            bytes_done: hash.count(stats::BYTES_DONE)?,
            commits_ignored: hash.count(stats::COMMITS_IGNORED)?,
            store_retries: hash.count(stats::STORE_RETRIES)?,
        })
    }
}

/// `P:crdt:stats`: what one instance's CRDT holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CrdtStats {
    pub files_known: u64,
    /// Of those, what read repair brought.
    pub files_repaired: u64,
}

impl CrdtStats {
    pub fn parse(hash: &impl Fields) -> Result<CrdtStats, BadField> {
        Ok(CrdtStats {
            files_known: hash.count(crdt_stats::FILES_KNOWN)?,
            files_repaired: hash.count(crdt_stats::FILES_REPAIRED)?,
        })
    }
}

/// `P:stream`, as the driver of a stream rewrites it about once a second;
/// the fields it has not written are 0.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StreamFigures {
    pub injected: i64,
    pub committed: i64,
    /// Latency percentiles, in whole milliseconds.
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

impl StreamFigures {
    /// `None` when the hash is empty (a batch, or a stream whose driver has
    /// not written it yet).
    pub fn parse(hash: &impl Fields) -> Result<Option<StreamFigures>, BadField> {
        if hash.is_empty() {
            return Ok(None);
        }
        // Latencies may be written with a fraction; whole ms are kept.
        let ms = |key| Ok::<_, BadField>(hash.number(key)?.map_or(0, |x| x.round() as i64));
        Ok(Some(StreamFigures {
            injected: hash.int(stream::INJECTED)?.unwrap_or(0),
            committed: hash.int(stream::COMMITTED)?.unwrap_or(0),
            p50_ms: ms(stream::P50_MS)?,
            p99_ms: ms(stream::P99_MS)?,
            throughput: hash.number(stream::THROUGHPUT)?.unwrap_or(0.0),
            effective_rate: hash.number(stream::EFFECTIVE_RATE)?.unwrap_or(0.0),
            lag: hash.int(stream::LAG)?.unwrap_or(0),
            pending: hash.int(stream::PENDING)?.unwrap_or(0),
            throttled: hash.int(stream::THROTTLED)? == Some(1),
            throttled_ms: ms(stream::THROTTLED_MS)?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(fields: &[(&str, &str)]) -> HashMap<String, String> {
        (fields.iter())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn meta_and_stats_read_back() {
        assert_eq!(Meta::parse(&hash(&[])), Ok(None));
        let m = Meta::parse(&hash(&[
            (meta::FILES, "3"),
            (meta::ENQUEUE_DONE, "1"),
            (meta::TOKENIZER, "alnum"),
        ]))
        .unwrap()
        .unwrap();
        assert!(m.created && m.enqueue_done);
        assert_eq!((m.files, m.bytes), (Some(3), None));
        let s = Stats::parse(&hash(&[(stats::FILES_DONE, "2"), (stats::WORDS, "10")])).unwrap();
        assert_eq!((s.files_done, s.words, s.files_failed), (2, 10, 0));
    }

    #[test]
    fn bad_data_is_an_error_not_a_zero() {
        let e = Meta::parse(&hash(&[(meta::FILES, "three")])).unwrap_err();
        assert_eq!(e.to_string(), "files=\"three\" is not an integer");
        assert!(Stats::parse(&hash(&[(stats::WORDS, "-1")])).is_err());
        assert!(StreamFigures::parse(&hash(&[(stream::THROUGHPUT, "inf")])).is_err());
    }
}
