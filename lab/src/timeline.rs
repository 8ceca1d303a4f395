//! A stream's timeline (`--timeline FILE.csv`): one row per injected file,
//! one per sample of the queue, one per event (a fault fired, a worker
//! killed or replaced, throttling on or off). Times are milliseconds since
//! the stream started; a file's come from Redis's clock.

use anyhow::{Context, Result};
use serde::Serialize;
use std::path::Path;
use std::sync::{Arc, Mutex};
use wordcount_job::driver::StreamRecord;

pub use wordcount_view::{epoch_ms, Event};

/// The runner's events as they happen, shared with whoever watches the
/// job live (`--ui`).
#[derive(Clone, Debug, Default)]
pub struct EventLog(Arc<Mutex<Vec<Event>>>);

impl EventLog {
    /// Records `what` (with `detail`) as happening now.
    pub fn note(&self, what: &str, detail: String) {
        self.lock().push(Event::new(what, detail, epoch_ms()));
    }

    /// The events after the first `n`.
    pub fn since(&self, n: usize) -> Vec<Event> {
        self.lock().get(n..).unwrap_or_default().to_vec()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Event>> {
        // A panic elsewhere leaves the list as it was: still worth showing.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One CSV row; a kind fills the columns it has.
#[derive(Debug, Default, Serialize)]
pub struct Row {
    /// `file`, `sample` or `event`.
    pub kind: &'static str,
    /// When: a file's due time, a sample's or an event's time.
    pub t_ms: i64,
    pub path: Option<String>,
    pub due_ms: Option<i64>,
    pub injected_ms: Option<i64>,
    pub committed_ms: Option<i64>,
    pub latency_ms: Option<u64>,
    pub worker: Option<String>,
    pub stolen: Option<bool>,
    pub lag: Option<u64>,
    pub pending: Option<u64>,
    pub injected: Option<u64>,
    pub committed: Option<u64>,
    /// Files a second the source injected at.
    pub rate: Option<f64>,
    pub event: Option<String>,
    pub detail: Option<String>,
}

/// The rows of a stream's record and of `events`, in time order.
pub fn rows(record: &StreamRecord, events: &[Event]) -> Vec<Row> {
    let rel = |ms: u64| ms as i64 - record.started_ms as i64;
    let mut rows: Vec<Row> = Vec::new();
    for d in record.done.iter().map(|d| &d.record) {
        rows.push(Row {
            kind: "file",
            t_ms: rel(d.due_ms),
            path: Some(d.path.clone()),
            due_ms: Some(rel(d.due_ms)),
            injected_ms: Some(rel(d.injected_ms)),
            committed_ms: Some(rel(d.committed_ms)),
            latency_ms: Some(d.latency_ms),
            worker: Some(d.worker.clone()),
            stolen: Some(d.stolen),
            ..Row::default()
        });
    }
    for s in &record.samples {
        rows.push(Row {
            kind: "sample",
            t_ms: s.at.as_millis() as i64,
            lag: Some(s.depth.lag),
            pending: Some(s.depth.pending),
            injected: Some(s.injected),
            committed: Some(s.committed),
            rate: Some(s.rate_now),
            ..Row::default()
        });
    }
    let source_events = record.events.iter().map(|(at, e)| {
        Event::throttle(
            *e == wordcount_job::source::SourceEvent::ThrottleOn,
            record.started_ms + at.as_millis() as u64,
        )
    });
    for e in source_events.chain(events.iter().cloned()) {
        rows.push(Row {
            kind: "event",
            t_ms: rel(e.at_ms),
            event: Some(e.what),
            detail: (!e.detail.is_empty()).then_some(e.detail),
            ..Row::default()
        });
    }
    rows.sort_by_key(|r| r.t_ms);
    rows
}

pub fn write(path: &Path, rows: &[Row]) -> Result<()> {
    let mut w =
        csv::Writer::from_path(path).with_context(|| format!("cannot write {}", path.display()))?;
    for r in rows {
        w.serialize(r)?;
    }
    w.flush()
        .with_context(|| format!("cannot write {}", path.display()))
}
