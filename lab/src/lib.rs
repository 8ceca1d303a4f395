//! wordcount on one machine: the local runner (worker processes,
//! `redis-server`, RedisRaft replicas, CRDT sites in network namespaces),
//! the experiments and their plots, the lab report, the timeline and the
//! local live view.

pub mod experiments;
pub mod live;
pub mod local;
pub mod timeline;
