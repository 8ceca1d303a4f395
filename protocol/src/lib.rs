//! The contract between the `wordcount-operator` and the pods it runs (the
//! `wordcount` driver and workers): every name both sides use, written once.
//!
//! - [`keys`]: the job's Redis keys, their prefix and their fields;
//! - [`record`]: a `P:latency` entry (a committed file) read back;
//! - [`library`]: the Redis Function library, its function names and error codes;
//! - [`fault`]: the fault grammar (`worker=I,crash=POINT[,file=N]`, `worker=I,slow=F`);
//! - [`settings`]: the job settings and their wire names;
//! - [`exit`]: the exit codes of the driver and the workers;
//! - [`autoscale`]: how a stream's workers scale on lag.
//!
//! See `docs/src/protocol.md`.

pub mod autoscale;
pub mod exit;
pub mod fault;
pub mod keys;
pub mod library;
pub mod raft;
pub mod record;
pub mod settings;
pub mod state;
pub mod summary;
pub mod time;

pub use autoscale::{Autoscale, Scaling};
pub use fault::{CrashPoint, Fault, FaultError};
pub use keys::{Keys, DEFAULT_PREFIX};
pub use record::CommitRecord;
pub use settings::{Backpressure, Commit, OnUnreadable, RedisMode, Tokenizer};
pub use time::epoch_ms;
