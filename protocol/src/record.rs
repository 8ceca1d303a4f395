//! A `P:latency` entry read back: one committed file. The driver merges
//! from it and both live views draw from it, so it is parsed here once.

use crate::keys::latency;

/// A committed file; times are milliseconds since the epoch by Redis's
/// clock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitRecord {
    /// The file's queue entry id.
    pub id: String,
    pub path: String,
    /// The consumer that committed it.
    pub worker: String,
    pub stolen: bool,
    pub due_ms: u64,
    /// When it was enqueued: its queue entry id's time.
    pub injected_ms: u64,
    /// The `P:latency` entry's own id's time.
    pub committed_ms: u64,
    /// When the committing worker took it.
    pub taken_ms: u64,
    /// Committed minus due, computed by Redis.
    pub latency_ms: u64,
}

impl CommitRecord {
    /// The entry `entry_id` with its fields (`field(name)`); `None` without
    /// the queue entry id. Fields of older records that are missing take
    /// the values they stood for then.
    pub fn parse(entry_id: &str, field: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let num = |name: &str| field(name).and_then(|v| v.parse::<u64>().ok());
        let id = field(latency::ID)?;
        let committed_ms = id_ms(entry_id);
        Some(CommitRecord {
            injected_ms: id_ms(&id),
            committed_ms,
            taken_ms: num(latency::TAKEN_MS).unwrap_or(committed_ms),
            path: field(latency::PATH).unwrap_or_default(),
            worker: field(latency::WORKER).unwrap_or_default(),
            stolen: field(latency::STOLEN).as_deref() == Some("1"),
            latency_ms: num(latency::LATENCY_MS).unwrap_or(0),
            due_ms: num(latency::DUE_MS).unwrap_or_else(|| id_ms(&id)),
            id,
        })
    }
}

/// The milliseconds of a stream entry id (`ms-seq`).
pub fn id_ms(id: &str) -> u64 {
    id.split('-')
        .next()
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_and_an_old_one_without_taken_and_due_times() {
        let fields = |pairs: &'static [(&str, &str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let r = CommitRecord::parse(
            "1700000002000-0",
            fields(&[
                (latency::ID, "1700000000000-3"),
                (latency::PATH, "a.txt"),
                (latency::WORKER, "w1"),
                (latency::STOLEN, "1"),
                (latency::LATENCY_MS, "1500"),
                (latency::DUE_MS, "1700000000500"),
                (latency::TAKEN_MS, "1700000001000"),
            ]),
        )
        .unwrap();
        assert_eq!(
            r,
            CommitRecord {
                id: "1700000000000-3".into(),
                path: "a.txt".into(),
                worker: "w1".into(),
                stolen: true,
                due_ms: 1_700_000_000_500,
                injected_ms: 1_700_000_000_000,
                committed_ms: 1_700_000_002_000,
                taken_ms: 1_700_000_001_000,
                latency_ms: 1500,
            }
        );
        let old = CommitRecord::parse("9-0", fields(&[(latency::ID, "7-1")])).unwrap();
        assert_eq!((old.taken_ms, old.due_ms, old.stolen), (9, 7, false));
        assert_eq!(CommitRecord::parse("9-0", fields(&[])), None);
    }
}
