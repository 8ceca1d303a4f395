//! RedisRaft replicas as the operator's StatefulSet runs them (its
//! container's command and environment, `src/resources/redis_raft.sh`), as
//! local processes on 127.0.0.1, .2 and .3 (one port, as in the cluster),
//! read by the operator's Redis reader: the cluster forms (pod 0
//! initialises, the others join), the reader finds the leader and the term,
//! a killed leader is replaced by an election, a replica restarted with its
//! log rejoins as itself, and one that lost its log is removed and joins
//! again under a new id.
//!
//! Needs `redis-server` and the RedisRaft module (`WORDCOUNT_REDISRAFT`,
//! else ~/.cache/wordcount/redisraft.so); skipped, saying so, without it.

// A test crate: its helpers fail by panicking, as its tests do.
#![allow(clippy::unwrap_used)]

use k8s_openapi::api::core::v1::Container;
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};
use wordcount_operator::{
    crd::WordCountJob,
    redis::{
        progress::{Progress, ProgressReader, RedisReader},
        Endpoint,
    },
    resources::{redis_raft, REDIS_PORT},
};
use wordcount_protocol::raft::RaftInfo;
use wordcount_protocol::{keys::meta, Keys};

fn module() -> Option<PathBuf> {
    let path = std::env::var_os("WORDCOUNT_REDISRAFT")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/wordcount/redisraft.so"))
        })?;
    path.exists().then_some(path)
}

struct Replica {
    addr: String,
    dir: PathBuf,
    child: Option<Child>,
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Replica {
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The replicas' container, its stable names mapped to loopback addresses.
struct Local {
    container: Container,
    module: PathBuf,
    port: u16,
    hosts: Vec<String>,
    addrs: Vec<String>,
}

impl Local {
    fn env_value(&self, v: &str, pod: &str) -> String {
        let mut v = v.replace("$(POD_NAME)", pod);
        for (host, addr) in self.hosts.iter().zip(&self.addrs) {
            v = v.replace(
                &format!("{host}:{REDIS_PORT}"),
                &format!("{addr}:{}", self.port),
            );
        }
        v
    }

    fn start(&self, i: usize, replica: &mut Replica) {
        let pod = redis_raft::pod_of(&self.hosts[i]).to_string();
        // As the kubelet runs it: `$(VAR)` expanded, `$$` made `$`.
        let cmd: Vec<String> = self
            .container
            .command
            .clone()
            .unwrap()
            .iter()
            .map(|a| kubernetes_expand(a, &[("POD_NAME", &pod)]))
            .collect();
        let mut c = Command::new(&cmd[0]);
        c.args(&cmd[1..]);
        for e in self.container.env.clone().unwrap() {
            let value = match (e.name.as_str(), e.value) {
                ("POD_NAME", _) => pod.clone(),
                ("RAFT_MODULE", _) => self.module.display().to_string(),
                ("RAFT_DIR", _) => replica.dir.display().to_string(),
                (_, Some(v)) => self.env_value(&v, &pod),
                (_, None) => continue,
            };
            c.env(e.name, value);
        }
        std::fs::create_dir_all(&replica.dir).unwrap();
        let log = std::fs::File::create(replica.dir.with_extension("out")).unwrap();
        c.args(["--bind", &self.addrs[i]])
            .args([
                "--logfile",
                &replica.dir.with_extension("log").display().to_string(),
            ])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null());
        replica.child = Some(c.spawn().expect("sh"));
    }
}

/// Kubernetes' expansion of a container's command: `$$` is `$`, `$(VAR)`
/// is VAR's value when VAR is defined, anything else stays as it is.
fn kubernetes_expand(s: &str, env: &[(&str, &str)]) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if let Some(after) = rest.strip_prefix("$$") {
            out.push('$');
            rest = after;
            continue;
        }
        let var = rest
            .strip_prefix("$(")
            .and_then(|r| r.split_once(')'))
            .and_then(|(name, after)| {
                let value = env.iter().find(|(n, _)| *n == name)?.1;
                Some((value, after))
            });
        match var {
            Some((value, after)) => {
                out.push_str(value);
                rest = after;
            }
            None => {
                out.push('$');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn info(addr: &str, port: u16) -> Option<RaftInfo> {
    let out = Command::new("redis-cli")
        .args(["-h", addr, "-p", &port.to_string(), "INFO", "raft"])
        .output()
        .ok()?;
    RaftInfo::parse(&String::from_utf8_lossy(&out.stdout)).ok()
}

/// What the StatefulSet's readiness probe asks: a member, up and voting.
fn ready(addr: &str, port: u16) -> bool {
    info(addr, port).is_some_and(|i| i.state == "up" && i.voting)
}

async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn read(reader: &RedisReader, ep: &Endpoint) -> Option<Progress> {
    reader.read(ep).await.ok()
}

#[tokio::test]
async fn replicas_form_a_cluster_survive_restarts_and_the_reader_follows_the_leader() {
    let Some(module) = module() else {
        eprintln!("skipped: no RedisRaft module (WORDCOUNT_REDISRAFT, or ~/.cache/wordcount/redisraft.so)");
        return;
    };
    let job: WordCountJob = serde_json::from_value(serde_json::json!({
        "apiVersion": "wordcount.dev/v1alpha1", "kind": "WordCountJob",
        "metadata": {"name": "demo", "namespace": "ns1"},
        "spec": {"input": {"hostPath": {"path": "/d"}},
                 "redis": {"mode": "RedisRaft", "replicas": 3, "image": "reg/redisraft:1"}}
    }))
    .unwrap();
    let set = redis_raft::stateful_set(&job, false);
    let container = set.spec.unwrap().template.spec.unwrap().containers[0].clone();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let local = Local {
        container,
        module,
        port,
        hosts: redis_raft::replica_hosts(&job),
        addrs: (1..=3).map(|i| format!("127.0.0.{i}")).collect(),
    };
    let tmp = std::env::temp_dir().join(format!("wordcount-raft-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let mut replicas: Vec<Replica> = local
        .addrs
        .iter()
        .enumerate()
        .map(|(i, addr)| Replica {
            addr: addr.clone(),
            dir: tmp.join(format!("replica-{i}")),
            child: None,
        })
        .collect();
    for (i, r) in replicas.iter_mut().enumerate() {
        local.start(i, r);
    }
    let ep = Endpoint {
        port,
        prefix: "wc".into(),
        replicas: local.addrs.clone(),
        ..Endpoint::default()
    };
    let reader = RedisReader::default();

    // The cluster forms: three members, pod 0 the first leader.
    let first = eventually("a leader", || async {
        let p = read(&reader, &ep).await?;
        let up = replicas.iter().all(|r| ready(&r.addr, port));
        (up).then_some(p.raft?)
    })
    .await;
    assert_eq!(first.leader, "127.0.0.1", "pod 0 initialised the cluster");
    assert!(first.term >= 1);
    assert_eq!(info("127.0.0.2", port).unwrap().nodes.len(), 2);

    // A write through the leader is read back by the reader.
    let keys = Keys::new("wc");
    let out = Command::new("redis-cli")
        .args(["-h", &first.leader, "-p", &port.to_string()])
        .args(["HSET", &keys.meta, meta::FILES, "8"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
    let p = read(&reader, &ep).await.unwrap();
    assert_eq!(p.meta.unwrap().files, Some(8));

    // The leader killed: another is elected, in a later term, and has the write.
    replicas[0].kill();
    let second = eventually("a new leader", || async {
        let p = read(&reader, &ep).await?;
        let raft = p.raft.clone()?;
        (raft.leader != first.leader).then_some((raft, p))
    })
    .await;
    assert!(second.0.term > first.term, "{second:?} after {first:?}");
    assert_eq!(second.1.meta.unwrap().files, Some(8));

    // Restarted with its log: it rejoins as the node it was.
    let ids = |addr: &str| -> Vec<u64> {
        let mut ids: Vec<u64> = info(addr, port)
            .unwrap()
            .nodes
            .into_iter()
            .map(|n| n.id)
            .collect();
        ids.sort();
        ids
    };
    let before = ids(&second.0.leader);
    local.start(0, &mut replicas[0]);
    eventually("pod 0 back with its log", || async {
        info("127.0.0.1", port).filter(|i| i.state == "up" && i.voting && i.nodes.len() == 2)
    })
    .await;
    assert_eq!(ids(&second.0.leader), before, "the same nodes");

    // A follower that lost its log: removed, and joined again under a new id.
    let follower = (0..3).find(|&i| local.addrs[i] != second.0.leader).unwrap();
    replicas[follower].kill();
    std::fs::remove_dir_all(&replicas[follower].dir).unwrap();
    local.start(follower, &mut replicas[follower]);
    let leader = second.0.leader.clone();
    eventually("the wiped follower back under a new id", || async {
        let now = ids(&leader);
        let rejoined = ready(&local.addrs[follower], port);
        (rejoined && now.len() == 2 && now != before).then_some(())
    })
    .await;
    let out = std::fs::read_to_string(replicas[follower].dir.with_extension("out")).unwrap();
    assert!(out.contains("removed node"), "{out}");
    assert!(out.contains("joined the cluster"), "{out}");
    // And the cluster still serves the job's keys.
    let p = read(&reader, &ep).await.unwrap();
    assert_eq!(p.meta.unwrap().files, Some(8));

    drop(replicas);
    let _ = std::fs::remove_dir_all(&tmp);
}
