//! The live view of a job, shared by `wordcount run --ui` and the
//! operator: one page, one model, one stream of updates.
//!
//! - [`model`]: what the page shows, only ever appended to, and what a
//!   reader has seen already (each reader reads Redis its own way: the
//!   worker through its backend, the operator with async Redis);
//! - [`http`]: the page, its assets (ECharts vendored: it works offline)
//!   and `updates`, server-sent events with what is new. Every URL the page
//!   uses is relative, so it works wherever it is mounted: at `/` locally,
//!   at `/ns/NAMESPACE/NAME/` in the operator.

pub mod http;
pub mod model;

pub use http::{file, router};
pub use model::{phase, Event, FileBar, Job, Look, Model, Sample, Seen};

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// How often a job is read, and its pages updated.
pub const TICK: Duration = Duration::from_millis(250);

/// Top words shown.
pub const TOP: usize = 15;

/// A job's model, shared by its reader and the pages that watch it.
pub type Shared = Arc<Mutex<Model>>;

/// The model, even if a reader panicked holding it: still worth showing.
pub fn lock(m: &Mutex<Model>) -> MutexGuard<'_, Model> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The contract's clock, which the model's times are in.
pub use wordcount_protocol::epoch_ms;
