//! `INFO raft` read back: what a RedisRaft node says of itself and of the
//! cluster, for the local runner and the operator alike. A field that is
//! there but malformed is a typed error ([`BadField`]); a field that is not
//! there (a node not in a cluster yet) is absent or 0.

use crate::state::BadField;

/// A node of a RedisRaft cluster as `INFO raft` lists it (the others: a
/// node does not list itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaftNode {
    pub id: u64,
    pub addr: String,
    pub port: u16,
}

/// `INFO raft`'s fields that wordcount reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RaftInfo {
    pub node_id: Option<u64>,
    /// `uninitialized`, `loading`, `up`, ...
    pub state: String,
    /// `leader`, `follower`, `candidate`, ...
    pub role: String,
    /// None while there is none (`-1`).
    pub leader_id: Option<u64>,
    pub term: u64,
    /// A node that joined votes once it has caught up with the log.
    pub voting: bool,
    /// Nodes in the cluster, this one included.
    pub num_nodes: usize,
    /// The other nodes.
    pub nodes: Vec<RaftNode>,
    /// The last entry known committed, and the last applied here.
    pub commit_index: u64,
    pub applied_index: u64,
}

impl RaftInfo {
    pub fn parse(info: &str) -> Result<RaftInfo, BadField> {
        let mut out = RaftInfo::default();
        for line in info.lines().map(str::trim) {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let int = || -> Result<i64, BadField> {
                value.parse().map_err(|_| BadField {
                    key: key.into(),
                    value: value.into(),
                    what: "an integer",
                })
            };
            let count = || int().map(|n| n.max(0) as u64);
            match key {
                "raft_node_id" => out.node_id = Some(count()?),
                "raft_state" => out.state = value.into(),
                "raft_role" => out.role = value.into(),
                // -1 while there is none.
                "raft_leader_id" => {
                    out.leader_id = Some(int()?).filter(|&id| id > 0).map(|id| id as u64)
                }
                "raft_current_term" => out.term = count()?,
                "raft_is_voting" => out.voting = value == "yes",
                "raft_num_nodes" => out.num_nodes = count()? as usize,
                "raft_commit_index" => out.commit_index = count()?,
                "raft_last_applied_index" => out.applied_index = count()?,
                k if k
                    .strip_prefix("raft_node")
                    .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit())) =>
                {
                    out.nodes.push(node(key, value)?);
                }
                _ => {}
            }
        }
        Ok(out)
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
        let Some(id) = self.leader_id else {
            return Err("no leader (raft_leader_id -1)".into());
        };
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .map(Some)
            .ok_or_else(|| format!("no leader (raft_leader_id {id})"))
    }
}

/// `raft_nodeN:id=...,addr=...,port=...,...`.
fn node(key: &str, value: &str) -> Result<RaftNode, BadField> {
    let field = |name: &str| {
        value
            .split(',')
            .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
    };
    let bad = |what| BadField {
        key: key.into(),
        value: value.into(),
        what,
    };
    Ok(RaftNode {
        id: field("id")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| bad("a node with a numeric id"))?,
        addr: field("addr")
            .ok_or_else(|| bad("a node with an addr"))?
            .into(),
        port: field("port")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| bad("a node with a port"))?,
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

    fn parse(text: &str) -> RaftInfo {
        RaftInfo::parse(text).unwrap()
    }

    #[test]
    fn raft_info_names_the_leader() {
        let info = parse(FOLLOWER);
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
        let own = parse(
            &FOLLOWER
                .replace("raft_role:follower", "raft_role:leader")
                .replace("raft_leader_id:1255810920", "raft_leader_id:456604371"),
        );
        assert_eq!(own.leader(), Ok(None));
        // No leader known (an election), or not in a cluster.
        let electing = parse(&FOLLOWER.replace("raft_leader_id:1255810920", "raft_leader_id:-1"));
        assert!(electing.leader().unwrap_err().contains("no leader"));
        let alone = parse("raft_state:uninitialized\r\nraft_role:(none)\r\n");
        assert!(alone.leader().unwrap_err().contains("uninitialized"));
    }

    #[test]
    fn raft_info_parses() {
        let text = "# raft_general\r\nraft_node_id:42\r\nraft_leader_id:-1\r\n\
                    raft_current_term:3\r\nraft_num_nodes:3\r\n\
                    raft_commit_index:17\r\nraft_last_applied_index:15\r\n";
        assert_eq!(
            parse(text),
            RaftInfo {
                node_id: Some(42),
                leader_id: None,
                term: 3,
                num_nodes: 3,
                commit_index: 17,
                applied_index: 15,
                ..RaftInfo::default()
            }
        );
    }

    #[test]
    fn malformed_info_is_an_error() {
        let e = RaftInfo::parse("raft_current_term:seven\r\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "raft_current_term=\"seven\" is not an integer"
        );
        assert!(RaftInfo::parse("raft_node1:id=x,addr=a,port=1\r\n").is_err());
    }
}
