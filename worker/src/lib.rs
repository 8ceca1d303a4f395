//! The wordcount engine: tokenizers and counting, the Redis protocol, the
//! driver and worker loops, fault injection, the local runner and the
//! experiments.

pub mod backend;
pub mod count;
pub mod counts;
pub mod crdt;
pub mod driver;
#[cfg(feature = "experiments")]
pub mod experiments;
pub mod fault;
pub mod generate;
pub mod input;
pub mod latency;
pub mod local;
pub mod merge;
pub mod report;
pub mod scan;
pub mod source;
pub mod timeline;
pub mod tokenize;
pub mod view;
pub mod worker;
