//! The Redis a run starts, with the faults that hit it: one
//! `redis-server` (Snapshot mode) or RedisRaft's replicas.

use super::raft::{RaftChaos, RaftCluster, ReplicaFault};
use super::redis_chaos::RedisChaos;
use super::{RedisFaults, RedisServer};
use crate::timeline::EventLog;
use anyhow::{bail, Result};
use std::path::PathBuf;
use wordcount_job::report::JobFacts;
use wordcount_protocol::RedisMode;

/// RedisRaft instead of one Redis (`--redis raft`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaftSetup {
    /// The module to load (see `raft::find_module`).
    pub module: PathBuf,
    /// 2f+1: odd, from 3.
    pub replicas: usize,
    /// Each replica fsyncs its Raft log after every entry: what survives a
    /// machine's crash, not only a process's.
    pub fsync: bool,
    pub faults: Vec<ReplicaFault>,
}

pub enum JobRedis {
    One {
        server: RedisServer,
        chaos: Box<RedisChaos>,
    },
    Raft {
        cluster: RaftCluster,
        chaos: Box<RaftChaos>,
    },
}

impl JobRedis {
    pub fn start(
        raft: Option<&RaftSetup>,
        faults: &RedisFaults,
        events: &EventLog,
        seed: u64,
    ) -> Result<Self> {
        let Some(raft) = raft else {
            return Ok(JobRedis::One {
                server: RedisServer::start(None)?,
                chaos: Box::new(RedisChaos::new(faults.clone(), events.clone())),
            });
        };
        if raft.replicas < 3 || raft.replicas % 2 == 0 {
            bail!(
                "--replicas {}: RedisRaft needs an odd number of replicas, 3 or more (2f+1 survive f failures)",
                raft.replicas
            );
        }
        if faults.snapshot_interval.is_some() || faults.at.is_some() {
            bail!("--snapshot-interval and --redis-fault are for one Redis; RedisRaft keeps a log of its own (kill replicas with --replica-fault or --redis-kill-every)");
        }
        if let Some(f) = raft
            .faults
            .iter()
            .find(|f| matches!(f.target, super::raft::Target::Replica(i) if i >= raft.replicas))
        {
            bail!(
                "--replica-fault: there is no replica {:?} (--replicas {}, numbered 0 to {})",
                f.target,
                raft.replicas,
                raft.replicas - 1
            );
        }
        let cluster = RaftCluster::start(&raft.module, raft.replicas, raft.fsync)?;
        let chaos = RaftChaos::new(
            seed,
            raft.faults.clone(),
            faults.kill_every,
            faults.down,
            &cluster,
            events.clone(),
        )?;
        Ok(JobRedis::Raft {
            cluster,
            chaos: Box::new(chaos),
        })
    }

    pub fn mode(&self) -> RedisMode {
        match self {
            JobRedis::One { .. } => RedisMode::Snapshot,
            JobRedis::Raft { .. } => RedisMode::RedisRaft,
        }
    }

    /// For clients in this process: with the password, if any.
    pub fn url(&self) -> String {
        match self {
            JobRedis::One { server, .. } => server.url_with_password(),
            JobRedis::Raft { cluster, .. } => cluster.url(),
        }
    }

    /// For worker processes: without the password, which goes in
    /// `REDIS_PASSWORD` (none for RedisRaft).
    pub fn public_url(&self) -> String {
        match self {
            JobRedis::One { server, .. } => server.url(),
            JobRedis::Raft { cluster, .. } => cluster.url(),
        }
    }

    pub fn password(&self) -> &str {
        match self {
            JobRedis::One { server, .. } => &server.password,
            JobRedis::Raft { .. } => "",
        }
    }

    /// Clients connected, over every live replica (with RedisRaft's own
    /// connections between replicas).
    pub fn clients(&self) -> Result<usize> {
        let servers = match self {
            JobRedis::One { server, .. } => std::slice::from_ref(server),
            JobRedis::Raft { cluster, .. } => &cluster.replicas[..],
        };
        let mut n = 0;
        for s in servers.iter().filter(|s| s.is_running()) {
            let mut con = redis::Client::open(s.url_with_password())?.get_connection()?;
            let info: redis::InfoDict = redis::cmd("INFO").arg("clients").query(&mut con)?;
            // Not this connection.
            n += info.get::<usize>("connected_clients").unwrap_or(1) - 1;
        }
        Ok(n)
    }

    /// Does what the faults ask for now.
    pub fn step(&mut self) -> Result<()> {
        match self {
            JobRedis::One { server, chaos } => chaos.step(server),
            JobRedis::Raft { cluster, chaos } => chaos.step(cluster),
        }
    }

    /// Kills Redis now (`--redis-fault at=enqueue`, called by the driver
    /// mid-enqueue).
    pub fn kill_now(&mut self) -> Result<()> {
        match self {
            JobRedis::One { server, chaos } => chaos.kill_at_the_moment(server),
            JobRedis::Raft { .. } => Ok(()),
        }
    }

    /// Brings back whatever is down: the job is over.
    pub fn finish(&mut self) -> Result<()> {
        match self {
            JobRedis::One { server, chaos } => chaos.finish(server),
            JobRedis::Raft { cluster, chaos } => chaos.finish(cluster),
        }
    }

    /// What the faults did, once finished.
    pub fn record(&self, job: &mut JobFacts) {
        match self {
            JobRedis::One { chaos, .. } => {
                job.redis_restarts = chaos.restarts;
                job.files_redone = chaos.files_redone;
                job.snapshots = chaos.snapshots;
                job.snapshot_fork_us = chaos.fork_us;
                job.snapshot_cow_bytes = chaos.cow_bytes;
                job.redis_load_ms = chaos.loads.iter().map(|d| d.as_secs_f64() * 1e3).collect();
                if let Some(at) = chaos.moment() {
                    let spec = format!("at={}", at.name());
                    if chaos.moment_fired() {
                        job.faults_fired_specs.push(spec);
                    } else {
                        job.faults_unfired.push(spec);
                    }
                }
            }
            JobRedis::Raft { cluster, chaos } => {
                job.replicas = cluster.replicas.len() as u64;
                job.replica_kills = chaos.kills;
                job.redis_restarts = chaos.restarts;
                job.files_redone = chaos.lost;
                job.leader_elections = chaos.elections;
                let (fired, unfired) = chaos.fault_specs();
                job.faults_fired_specs = fired;
                job.faults_unfired = unfired;
            }
        }
    }
}
