//! What a wordcount pod runs: the Redis connection that rides out restarts,
//! the coordination backends behind one seam (stream, lease, CRDT site), the
//! driver and worker loops, the merge of results, fault injection, the
//! CRDT's repair and anti-entropy, and the job's report.

pub mod backend;
pub mod connection;
pub mod crdt;
pub mod driver;
mod dump;
pub mod fault;
pub mod input;
pub mod latency;
pub mod merge;
pub mod queue;
pub mod report;
pub mod source;
pub mod state;
pub mod worker;
