//! Redis in RedisRaft mode (`spec.redis.mode: RedisRaft`): 2f+1 replicas of
//! `redis-server` with the RedisRaft module, as a StatefulSet behind a
//! headless Service, so that each replica has a stable name
//! (`<job>-redis-<i>.<job>-redis.<namespace>.svc`) and a volume of its own
//! for its Raft log.
//!
//! Each replica's container runs `redis_raft.sh`: it starts redis-server
//! with the module and brings the replica into the cluster, idempotently
//! across restarts (pod 0 initialises a new cluster, the others join it; a
//! replica restarted with its log rejoins on its own; one that lost its log
//! is removed and joins again under a new id). The driver and the workers
//! get every replica's URL and follow `-MOVED` to the leader. RedisRaft has
//! no password: the job's NetworkPolicy admits to the replicas only the
//! job's own pods (the replicas themselves included) and the operator.

use super::{container_security, meta, pod_security, resources_or, selector, Component, Names};
use super::{labels, REDIS_PORT};
use crate::crd::WordCountJob;
use k8s_openapi::{
    api::{
        apps::v1::{StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec},
        core::v1::{
            Container, ContainerPort, EnvVar, EnvVarSource, ExecAction, ObjectFieldSelector,
            PersistentVolumeClaim, PodSpec, PodTemplateSpec, Probe, Service, ServiceSpec,
            VolumeMount,
        },
    },
    apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta},
};
use kube::ResourceExt;

/// Where an image for RedisRaft has the module (`spec.redis.image`, the
/// operator's `--redisraft-image`). The one place this path is spelled;
/// docs/src/kubernetes.md says how to build such an image.
pub const REDISRAFT_MODULE: &str = "/usr/lib/redis/modules/redisraft.so";
/// What a replica's container runs (`sh -c`): see its header.
pub const SCRIPT: &str = include_str!("redis_raft.sh");
/// The replica's volume, holding its Raft log (`raftlog.db`) and snapshots.
const DATA_DIR: &str = "/data";
/// The volume claim template's name: the claims are `data-<job>-redis-<i>`.
pub const VOLUME: &str = "data";

/// Replica `i`'s pod: `<job>-redis-<i>`.
pub fn replica_pod(job: &WordCountJob, i: i32) -> String {
    format!("{}-{i}", Names::of(job).redis)
}

/// Every replica's stable name in the cluster DNS, pod 0 first.
pub fn replica_hosts(job: &WordCountJob) -> Vec<String> {
    let service = Names::of(job).redis;
    let ns = job.namespace().unwrap_or_default();
    (0..job.spec.raft_replicas().unwrap_or(0))
        .map(|i| format!("{}.{service}.{ns}.svc", replica_pod(job, i)))
        .collect()
}

/// The pod a replica's stable name belongs to.
pub fn pod_of(host: &str) -> &str {
    host.split('.').next().unwrap_or(host)
}

/// The headless Service that gives each replica its stable name, published
/// before the replica is ready: a replica must be found to join the cluster
/// that makes it ready.
pub fn service(job: &WordCountJob) -> Service {
    let mut service = super::redis::service(job, None);
    let spec = service.spec.get_or_insert_with(ServiceSpec::default);
    spec.cluster_ip = Some("None".into());
    spec.publish_not_ready_addresses = Some(true);
    service
}

fn env(name: &str, value: String) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value),
        ..EnvVar::default()
    }
}

/// What the script needs to know: its own stable name (from its pod's name,
/// expanded by Kubernetes), every replica's, the module and the volume.
fn script_env(job: &WordCountJob) -> Vec<EnvVar> {
    let names = Names::of(job);
    let ns = job.namespace().unwrap_or_default();
    let peers: Vec<String> = replica_hosts(job)
        .iter()
        .map(|h| format!("{h}:{REDIS_PORT}"))
        .collect();
    vec![
        EnvVar {
            name: "POD_NAME".into(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: "metadata.name".into(),
                    ..ObjectFieldSelector::default()
                }),
                ..EnvVarSource::default()
            }),
            ..EnvVar::default()
        },
        env(
            "RAFT_SELF",
            format!("$(POD_NAME).{}.{ns}.svc:{REDIS_PORT}", names.redis),
        ),
        env("RAFT_PEERS", peers.join(" ")),
        env("RAFT_MODULE", REDISRAFT_MODULE.into()),
        env("RAFT_DIR", DATA_DIR.into()),
    ]
}

/// A command as Kubernetes must be given it to run it as written: it
/// expands `$(VAR)` in a container's command and turns `$$` into `$`, so
/// every `$` is doubled (the script's `$(...)` and `$$` are the shell's).
fn escape_dollars(s: &str) -> String {
    s.replace('$', "$$")
}

/// Ready once the replica is a member of the cluster, up, and voting (a
/// node that joins votes only once it has caught up with the log).
fn readiness() -> Probe {
    Probe {
        exec: Some(ExecAction {
            command: Some(vec![
                "sh".into(),
                "-c".into(),
                format!(
                    "i=$(redis-cli -p {REDIS_PORT} INFO raft) && \
                     echo \"$i\" | grep -q '^raft_state:up' && \
                     echo \"$i\" | grep -q '^raft_is_voting:yes'"
                ),
            ]),
        }),
        period_seconds: Some(2),
        timeout_seconds: Some(2),
        ..Probe::default()
    }
}

/// The replicas run while the job does; `finished` scales them to zero,
/// keeping their volumes (and so the counts) until the job is deleted.
pub fn stateful_set(job: &WordCountJob, finished: bool) -> StatefulSet {
    let names = Names::of(job);
    let replicas = job.spec.raft_replicas().unwrap_or(0);
    let container = Container {
        name: "redis".into(),
        image: Some(job.spec.redis_image().to_string()),
        image_pull_policy: Some(job.spec.image_pull_policy.as_str().into()),
        command: Some(vec![
            "sh".into(),
            "-c".into(),
            escape_dollars(SCRIPT),
            "redis-raft".into(),
        ]),
        env: Some(script_env(job)),
        ports: Some(vec![ContainerPort {
            name: Some("redis".into()),
            container_port: REDIS_PORT,
            ..ContainerPort::default()
        }]),
        readiness_probe: Some(readiness()),
        volume_mounts: Some(vec![VolumeMount {
            name: VOLUME.into(),
            mount_path: DATA_DIR.into(),
            ..VolumeMount::default()
        }]),
        resources: Some(resources_or(
            job.spec.resources.as_ref().and_then(|r| r.redis.as_ref()),
            "50m",
            "64Mi",
        )),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        security_context: Some(container_security()),
        ..Container::default()
    };
    let claim = PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(VOLUME.into()),
            labels: Some(labels(job, Component::Redis)),
            ..ObjectMeta::default()
        },
        spec: Some(super::redis::data_claim_spec(job)),
        ..PersistentVolumeClaim::default()
    };
    StatefulSet {
        metadata: meta(job, &names.redis, Component::Redis),
        spec: Some(StatefulSetSpec {
            replicas: Some(if finished { 0 } else { replicas }),
            service_name: Some(names.redis.clone()),
            // All at once: the script forms the cluster, whatever the order.
            pod_management_policy: Some("Parallel".into()),
            selector: LabelSelector {
                match_labels: Some(selector(job, Component::Redis)),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(job, Component::Redis)),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    security_context: Some(pod_security()),
                    // Killing a replica is an experiment; no need to wait 30 s.
                    termination_grace_period_seconds: Some(5),
                    ..PodSpec::default()
                }),
            },
            volume_claim_templates: Some(vec![claim]),
            // The logs go with the job (the StatefulSet owns its claims),
            // and stay while a finished job keeps it at zero replicas.
            persistent_volume_claim_retention_policy: Some(
                StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_deleted: Some("Delete".into()),
                    when_scaled: Some("Retain".into()),
                },
            ),
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::fixtures;
    use crate::resources::pod::{redis_url, wordcount_container};
    use std::collections::BTreeMap;
    use wordcount_protocol::RedisMode;

    fn raft(replicas: Option<i32>) -> WordCountJob {
        let mut job = fixtures::synthetic("demo");
        job.spec.redis.mode = RedisMode::RedisRaft;
        job.spec.redis.replicas = replicas;
        job.spec.redis.image = Some("reg/redisraft:1".into());
        job
    }

    #[test]
    fn replicas_have_stable_names_pod_0_first() {
        let job = raft(Some(5));
        let hosts = replica_hosts(&job);
        assert_eq!(hosts.len(), 5);
        assert_eq!(hosts[0], "demo-redis-0.demo-redis.ns1.svc");
        assert_eq!(hosts[4], "demo-redis-4.demo-redis.ns1.svc");
        assert_eq!(pod_of(&hosts[4]), "demo-redis-4");
        // Three when left out; none for one Redis.
        assert_eq!(replica_hosts(&raft(None)).len(), 3);
        assert!(replica_hosts(&fixtures::synthetic("demo")).is_empty());
    }

    #[test]
    fn the_service_is_headless_and_publishes_replicas_before_they_are_ready() {
        let job = raft(None);
        let spec = service(&job).spec.unwrap();
        assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
        assert_eq!(spec.publish_not_ready_addresses, Some(true));
        assert_eq!(spec.selector.unwrap(), selector(&job, Component::Redis));
        assert_eq!(spec.ports.unwrap()[0].port, REDIS_PORT);
    }

    #[test]
    fn the_stateful_set_has_a_volume_per_replica_and_runs_the_formation_script() {
        let job = raft(Some(3));
        let set = stateful_set(&job, false);
        assert_eq!(set.metadata.name.as_deref(), Some("demo-redis"));
        let spec = set.spec.unwrap();
        assert_eq!(spec.replicas, Some(3));
        assert_eq!(spec.service_name.as_deref(), Some("demo-redis"));
        assert_eq!(spec.pod_management_policy.as_deref(), Some("Parallel"));
        let claims = spec.volume_claim_templates.unwrap();
        assert_eq!(claims.len(), 1);
        assert_eq!(claims[0].metadata.name.as_deref(), Some(VOLUME));
        let retention = spec.persistent_volume_claim_retention_policy.unwrap();
        assert_eq!(
            (
                retention.when_deleted.as_deref(),
                retention.when_scaled.as_deref()
            ),
            (Some("Delete"), Some("Retain"))
        );
        // The pod template carries the selector's labels.
        let tl = spec.template.metadata.unwrap().labels.unwrap();
        for (k, v) in spec.selector.match_labels.unwrap() {
            assert_eq!(tl[&k], v);
        }
        let pod = spec.template.spec.unwrap();
        let c = &pod.containers[0];
        assert_eq!(c.image.as_deref(), Some("reg/redisraft:1"));
        assert_eq!(c.command.as_ref().unwrap()[..2], ["sh", "-c"]);
        // The script as written once Kubernetes has expanded the command.
        assert_eq!(c.command.as_ref().unwrap()[2].replace("$$", "$"), SCRIPT);
        assert!(!c.command.as_ref().unwrap()[2].contains("$(POD_NAME)"));
        assert_eq!(c.volume_mounts.as_ref().unwrap()[0].name, VOLUME);
        assert_eq!(c.volume_mounts.as_ref().unwrap()[0].mount_path, DATA_DIR);
        let env: BTreeMap<String, String> = c
            .env
            .clone()
            .unwrap()
            .into_iter()
            .filter_map(|e| Some((e.name, e.value?)))
            .collect();
        assert_eq!(env["RAFT_SELF"], "$(POD_NAME).demo-redis.ns1.svc:6379");
        assert_eq!(
            env["RAFT_PEERS"],
            "demo-redis-0.demo-redis.ns1.svc:6379 demo-redis-1.demo-redis.ns1.svc:6379 \
             demo-redis-2.demo-redis.ns1.svc:6379"
        );
        assert_eq!(env["RAFT_MODULE"], REDISRAFT_MODULE);
        // POD_NAME comes first: Kubernetes expands $(VAR) from earlier ones only.
        assert_eq!(c.env.as_ref().unwrap()[0].name, "POD_NAME");
        // Nothing about a password: RedisRaft has none.
        assert!(!SCRIPT.contains("requirepass"));
        assert!(c.readiness_probe.as_ref().unwrap().exec.is_some());
        // A finished job keeps the set (and its volumes) at zero replicas.
        assert_eq!(stateful_set(&job, true).spec.unwrap().replicas, Some(0));
    }

    #[test]
    fn the_script_gives_redis_the_settings_redisraft_requires() {
        for setting in [
            "--save \"\"",
            "--appendonly no",
            "--databases 1",
            "--loadmodule \"$RAFT_MODULE\"",
            "--raft.addr \"$self\"",
            "--raft.log-fsync yes",
            "RAFT.CLUSTER INIT",
            "RAFT.CLUSTER JOIN",
            "RAFT.NODE REMOVE",
        ] {
            assert!(SCRIPT.contains(setting), "{setting}");
        }
    }

    #[test]
    fn pods_get_every_replica_and_no_password() {
        let job = raft(Some(3));
        assert_eq!(
            redis_url(&job),
            "redis://demo-redis-0.demo-redis.ns1.svc:6379,\
             redis://demo-redis-1.demo-redis.ns1.svc:6379,\
             redis://demo-redis-2.demo-redis.ns1.svc:6379"
        );
        let c = wordcount_container(&job, "worker", vec![], Default::default(), None);
        assert!(c.env.is_none(), "no REDIS_PASSWORD: {:?}", c.env);
        // One Redis keeps its Service and its password.
        let one = fixtures::synthetic("demo");
        assert_eq!(redis_url(&one), "redis://demo-redis:6379");
        let c = wordcount_container(&one, "worker", vec![], Default::default(), None);
        assert_eq!(c.env.unwrap()[0].name, "REDIS_PASSWORD");
    }
}
