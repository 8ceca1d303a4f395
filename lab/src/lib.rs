//! wordcount on one machine: the local runner (worker processes,
//! `redis-server`, RedisRaft replicas, CRDT sites in network namespaces),
//! the experiments and their plots, the labs and their report, the timeline and the
//! local live view.

pub mod experiments;
pub mod labs;
pub mod live;
pub mod local;
pub mod timeline;
