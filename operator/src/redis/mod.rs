//! Reaching a job's Redis: where it is (`Endpoint`), an authenticated
//! connection to it (`connect`), and for RedisRaft the leader, found by
//! asking the replicas (`connect_leader`). What is read there is
//! `progress`'s; the connections a partition ends are `clients`'.

pub mod clients;
pub mod progress;

use redis::{
    aio::MultiplexedConnection, AsyncConnectionConfig, ConnectionAddr, IntoConnectionInfo,
    RedisConnectionInfo,
};
use std::time::Duration;
use wordcount_protocol::raft::RaftInfo;

/// Where a job's Redis is and how to log in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Endpoint {
    /// One Redis: its Service.
    pub host: String,
    pub port: u16,
    /// Empty for none (RedisRaft).
    pub password: String,
    pub prefix: String,
    /// RedisRaft: every replica's stable name; reads go to the leader,
    /// found through whichever replica answers. Empty for one Redis.
    pub replicas: Vec<String>,
    /// Crdt: every instance's Service, in site order (`host` is the
    /// first); each is read. Empty for the other modes.
    pub instances: Vec<String>,
}

impl Endpoint {
    /// The endpoint of one Crdt instance, as if it were the one Redis.
    pub fn instance(&self, i: usize) -> Option<Endpoint> {
        Some(Endpoint {
            host: self.instances.get(i)?.clone(),
            instances: Vec::new(),
            ..self.clone()
        })
    }
}

/// What a RedisRaft cluster says about itself (`INFO raft`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RaftFigures {
    /// The leader's host (a replica's stable name).
    pub leader: String,
    pub term: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot reach Redis at {addr}: {reason}")]
    Unreachable { addr: String, reason: String },
    #[error("unexpected data in Redis: {0}")]
    Malformed(String),
}

pub fn unreachable(ep: &Endpoint) -> impl Fn(redis::RedisError) -> ReadError + '_ {
    move |e| ReadError::Unreachable {
        addr: if ep.replicas.is_empty() {
            format!("{}:{}", ep.host, ep.port)
        } else {
            "the RedisRaft leader".into()
        },
        reason: e.to_string(),
    }
}

/// One short-lived, authenticated connection to a job's Redis, with
/// `timeout` to connect and for each reply: to its one Redis, or to the
/// RedisRaft leader (which alone answers for the keys).
pub async fn connect(ep: &Endpoint, timeout: Duration) -> Result<MultiplexedConnection, ReadError> {
    if ep.replicas.is_empty() {
        connect_to(ep, &ep.host, ep.port, timeout).await
    } else {
        Ok(connect_leader(ep, timeout).await?.0)
    }
}

async fn connect_to(
    ep: &Endpoint,
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<MultiplexedConnection, ReadError> {
    let failed = |e: redis::RedisError| ReadError::Unreachable {
        addr: format!("{host}:{port}"),
        reason: e.to_string(),
    };
    let mut settings = RedisConnectionInfo::default();
    if !ep.password.is_empty() {
        settings = settings.set_password(&ep.password);
    }
    let info = ConnectionAddr::Tcp(host.to_string(), port)
        .into_connection_info()
        .map_err(failed)?
        .set_redis_settings(settings);
    let client = redis::Client::open(info).map_err(failed)?;
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(failed)
}

/// `INFO raft`, or why not.
async fn raft_info(con: &mut MultiplexedConnection) -> Result<RaftInfo, String> {
    let info: String =
        (redis::cmd("INFO").arg("raft").query_async(con).await).map_err(|e| e.to_string())?;
    RaftInfo::parse(&info).map_err(|e| format!("INFO raft: {e}"))
}

/// A connection to the RedisRaft leader, found by asking the replicas in
/// turn, and the cluster's figures; an error saying what each replica
/// answered when none knows a leader.
pub async fn connect_leader(
    ep: &Endpoint,
    timeout: Duration,
) -> Result<(MultiplexedConnection, RaftFigures), ReadError> {
    let mut why = Vec::new();
    for host in &ep.replicas {
        let asked = async {
            let said = |reason: String| ReadError::Unreachable {
                addr: format!("{host}:{}", ep.port),
                reason,
            };
            let mut con = connect_to(ep, host, ep.port, timeout).await?;
            let info = raft_info(&mut con).await.map_err(said)?;
            let (mut con, leader) = match info.leader().map_err(said)? {
                None => (con, host.clone()),
                Some(node) => (
                    connect_to(ep, &node.addr, node.port, timeout).await?,
                    node.addr.clone(),
                ),
            };
            // The leader as it says itself, with the latest term.
            let info = (raft_info(&mut con).await).map_err(|reason| ReadError::Unreachable {
                addr: leader.clone(),
                reason,
            })?;
            if info.role != "leader" {
                return Err(ReadError::Unreachable {
                    addr: leader,
                    reason: format!("not the leader any more ({})", info.role),
                });
            }
            Ok((
                con,
                RaftFigures {
                    leader,
                    term: info.term as i64,
                },
            ))
        };
        match asked.await {
            Ok(found) => return Ok(found),
            Err(e) => why.push(e.to_string()),
        }
    }
    Err(ReadError::Unreachable {
        addr: format!("the RedisRaft replicas ({})", ep.replicas.join(", ")),
        reason: format!("no leader found: {}", why.join("; ")),
    })
}
