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

/// A node of a RedisRaft cluster as `INFO raft` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaftNode {
    pub id: String,
    pub addr: String,
    pub port: u16,
}

/// `INFO raft`'s fields the operator uses. `nodes` are the others: a node
/// does not list itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RaftInfo {
    /// `uninitialized`, `loading`, `up`, ...
    pub state: String,
    /// `leader`, `follower`, `candidate`, ...
    pub role: String,
    pub leader_id: String,
    pub term: i64,
    /// A node that joined votes once it has caught up with the log.
    pub voting: bool,
    pub nodes: Vec<RaftNode>,
}

impl RaftInfo {
    pub fn parse(info: &str) -> RaftInfo {
        let mut out = RaftInfo::default();
        for line in info.lines().map(str::trim) {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            match key {
                "raft_state" => out.state = value.into(),
                "raft_role" => out.role = value.into(),
                "raft_leader_id" => out.leader_id = value.into(),
                "raft_current_term" => out.term = value.parse().unwrap_or(0),
                "raft_is_voting" => out.voting = value == "yes",
                k if k.starts_with("raft_node")
                    && k["raft_node".len()..].chars().all(|c| c.is_ascii_digit())
                    && !k["raft_node".len()..].is_empty() =>
                {
                    let field = |name: &str| {
                        value
                            .split(',')
                            .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
                    };
                    if let (Some(id), Some(addr), Some(port)) =
                        (field("id"), field("addr"), field("port"))
                    {
                        out.nodes.push(RaftNode {
                            id: id.into(),
                            addr: addr.into(),
                            port: port.parse().unwrap_or(0),
                        });
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// Where the leader is, as this node knows it: itself (`None`), or
    /// another node; `Err` when it knows no leader.
    pub fn leader(&self) -> Result<Option<&RaftNode>, String> {
        if self.state != "up" {
            return Err(format!("raft_state {}", self.state));
        }
        if self.role == "leader" {
            return Ok(None);
        }
        self.nodes
            .iter()
            .find(|n| n.id == self.leader_id)
            .map(Some)
            .ok_or_else(|| format!("no leader (raft_leader_id {})", self.leader_id))
    }
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

async fn raft_info(con: &mut MultiplexedConnection) -> Result<RaftInfo, redis::RedisError> {
    let info: String = redis::cmd("INFO").arg("raft").query_async(con).await?;
    Ok(RaftInfo::parse(&info))
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
            let info = raft_info(&mut con).await.map_err(|e| said(e.to_string()))?;
            let (mut con, leader) = match info.leader().map_err(said)? {
                None => (con, host.clone()),
                Some(node) => (
                    connect_to(ep, &node.addr, node.port, timeout).await?,
                    node.addr.clone(),
                ),
            };
            // The leader as it says itself, with the latest term.
            let info = raft_info(&mut con).await.map_err(unreachable(ep))?;
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
                    term: info.term,
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

#[cfg(test)]
mod tests {
    use super::*;

    const FOLLOWER: &str = "# raft_general\r\nraft_dbid:20a1\r\nraft_node_id:456604371\r\n\
        raft_state:up\r\nraft_role:follower\r\nraft_is_voting:yes\r\n\
        raft_leader_id:1255810920\r\nraft_current_term:7\r\nraft_num_nodes:3\r\n\
        raft_node1:id=1255810920,state=connected,voting=yes,addr=demo-redis-0.demo-redis.ns1.svc,port=6379,last_conn_secs=3,conn_errors=0,conn_oks=1\r\n\
        raft_node2:id=1848915501,state=connected,voting=yes,addr=demo-redis-2.demo-redis.ns1.svc,port=6379,last_conn_secs=2,conn_errors=0,conn_oks=1\r\n\
        \r\n# raft_log\r\nraft_log_entries:8\r\n";

    #[test]
    fn raft_info_names_the_leader() {
        let info = RaftInfo::parse(FOLLOWER);
        assert_eq!(
            (info.state.as_str(), info.role.as_str()),
            ("up", "follower")
        );
        assert_eq!(info.term, 7);
        assert!(info.voting);
        assert_eq!(info.nodes.len(), 2);
        let leader = info.leader().unwrap().unwrap();
        assert_eq!(
            (leader.addr.as_str(), leader.port),
            ("demo-redis-0.demo-redis.ns1.svc", 6379)
        );
        // The leader itself.
        let own = RaftInfo::parse(
            &FOLLOWER
                .replace("raft_role:follower", "raft_role:leader")
                .replace("raft_leader_id:1255810920", "raft_leader_id:456604371"),
        );
        assert_eq!(own.leader(), Ok(None));
        // No leader known (an election), or not in a cluster.
        let electing =
            RaftInfo::parse(&FOLLOWER.replace("raft_leader_id:1255810920", "raft_leader_id:-1"));
        assert!(electing.leader().unwrap_err().contains("no leader"));
        let alone = RaftInfo::parse("raft_state:uninitialized\r\nraft_role:(none)\r\n");
        assert!(alone.leader().unwrap_err().contains("uninitialized"));
    }
}
