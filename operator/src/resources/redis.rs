//! Redis: a password Secret, a data volume, a one-replica Deployment and a
//! Service. RDB snapshots go to the volume, so a restarted Redis pod comes
//! back from its last checkpoint; the driver re-enqueues what it lacks. A
//! Crdt job has one of each (but the Secret) per site.

use super::{
    container_security, meta, pod_security, resources_or, site_labels, site_meta, site_selector,
    Component, Names, Site, PASSWORD_KEY, REDIS_PORT,
};
use crate::crd::WordCountJob;
use k8s_openapi::{
    api::{
        apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy},
        core::v1::{
            Container, ContainerPort, PersistentVolumeClaim, PersistentVolumeClaimSpec,
            PersistentVolumeClaimVolumeSource, PodSpec, PodTemplateSpec, Probe, Secret,
            SecretVolumeSource, Service, ServicePort, ServiceSpec, TCPSocketAction, Volume,
            VolumeMount, VolumeResourceRequirements,
        },
    },
    apimachinery::pkg::{apis::meta::v1::LabelSelector, util::intstr::IntOrString},
    ByteString,
};
use std::collections::BTreeMap;

const DATA_DIR: &str = "/data";
/// Key of the Secret holding Redis' own configuration: its password, as a
/// `requirepass` line, so that it never appears on a command line.
pub const CONFIG_KEY: &str = "redis.conf";
/// Where that key is mounted; `redis-server` takes it as its config file.
const CONFIG_DIR: &str = "/etc/wordcount-redis";

/// The Secret holding the Redis password, for the clients (`password`) and
/// for Redis (`redis.conf`). The password is chosen once by the controller
/// (see `new_password`) and re-applied unchanged afterwards.
pub fn secret(job: &WordCountJob, password: &str) -> Secret {
    let bytes = |s: String| ByteString(s.into_bytes());
    Secret {
        metadata: meta(job, &Names::of(job).secret, Component::Redis),
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([
            (PASSWORD_KEY.to_string(), bytes(password.to_string())),
            (
                CONFIG_KEY.to_string(),
                bytes(format!("requirepass {password}\n")),
            ),
        ])),
        ..Secret::default()
    }
}

/// A fresh random password: 32 alphanumerics from the OS-seeded thread RNG.
pub fn new_password() -> String {
    use rand::{distr::Alphanumeric, RngExt};
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

/// The volume Redis writes its RDB snapshots to.
pub fn data_claim(job: &WordCountJob, site: Site) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: site_meta(
            job,
            &Names::of_site(job, site).redis_data,
            Component::Redis,
            site,
        ),
        spec: Some(data_claim_spec(job)),
        ..PersistentVolumeClaim::default()
    }
}

/// What a volume of Redis's data asks for (RDB snapshots, or RedisRaft's
/// log, one a replica): `storage.redisSize` of `storage.className`.
pub fn data_claim_spec(job: &WordCountJob) -> PersistentVolumeClaimSpec {
    let storage = &job.spec.storage;
    PersistentVolumeClaimSpec {
        access_modes: Some(vec!["ReadWriteOnce".into()]),
        storage_class_name: storage.class_name.clone(),
        resources: Some(VolumeResourceRequirements {
            requests: Some(BTreeMap::from([(
                "storage".into(),
                storage.redis_size.clone(),
            )])),
            ..VolumeResourceRequirements::default()
        }),
        ..PersistentVolumeClaimSpec::default()
    }
}

/// `redis-server` arguments: the config file from the Secret (the password
/// only: on the command line any process on the node could read it), then
/// snapshot every `snapshotInterval` if anything changed, no AOF and no save
/// on SIGTERM (the experiment is about recovering from a checkpoint: a
/// deleted pod is a crash, and what was committed after the last snapshot
/// is lost and redone).
pub fn server_args(job: &WordCountJob) -> Vec<String> {
    // `save` counts whole seconds; a sub-second interval means every second.
    let secs = job.spec.redis.snapshot_interval.as_std().as_secs().max(1);
    [
        &format!("{CONFIG_DIR}/{CONFIG_KEY}"),
        "--port",
        &REDIS_PORT.to_string(),
        "--bind",
        "0.0.0.0",
        "--dir",
        DATA_DIR,
        "--dbfilename",
        "dump.rdb",
        "--save",
        &format!("{secs} 1"),
        "--appendonly",
        "no",
        "--shutdown-on-sigterm",
        "nosave",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Redis runs while the job does; `finished` scales it to zero, keeping its
/// data volume (and so the counts) until the job is deleted.
pub fn deployment(job: &WordCountJob, site: Site, finished: bool) -> Deployment {
    let names = Names::of_site(job, site);
    let labels = site_labels(job, Component::Redis, site);
    let container = Container {
        name: "redis".into(),
        image: Some(job.spec.redis_image().to_string()),
        image_pull_policy: Some(job.spec.image_pull_policy.as_str().into()),
        command: Some(vec!["redis-server".into()]),
        args: Some(server_args(job)),
        ports: Some(vec![ContainerPort {
            name: Some("redis".into()),
            container_port: REDIS_PORT,
            ..ContainerPort::default()
        }]),
        readiness_probe: Some(Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::Int(REDIS_PORT),
                ..TCPSocketAction::default()
            }),
            period_seconds: Some(2),
            ..Probe::default()
        }),
        volume_mounts: Some(vec![
            VolumeMount {
                name: "data".into(),
                mount_path: DATA_DIR.into(),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: "config".into(),
                mount_path: CONFIG_DIR.into(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
        ]),
        resources: Some(resources_or(
            job.spec.resources.as_ref().and_then(|r| r.redis.as_ref()),
            "50m",
            "64Mi",
        )),
        security_context: Some(container_security()),
        ..Container::default()
    };
    Deployment {
        metadata: site_meta(job, &names.redis, Component::Redis, site),
        spec: Some(DeploymentSpec {
            replicas: Some(if finished { 0 } else { 1 }),
            selector: LabelSelector {
                match_labels: Some(site_selector(job, Component::Redis, site)),
                ..LabelSelector::default()
            },
            // One writer of the RDB file at a time: the old pod is gone
            // before the new one mounts the volume.
            strategy: Some(DeploymentStrategy {
                type_: Some("Recreate".into()),
                ..DeploymentStrategy::default()
            }),
            template: PodTemplateSpec {
                metadata: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                    labels: Some(labels),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    volumes: Some(vec![
                        Volume {
                            name: "data".into(),
                            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                                claim_name: names.redis_data,
                                ..PersistentVolumeClaimVolumeSource::default()
                            }),
                            ..Volume::default()
                        },
                        Volume {
                            name: "config".into(),
                            secret: Some(SecretVolumeSource {
                                secret_name: Some(names.secret),
                                items: Some(vec![k8s_openapi::api::core::v1::KeyToPath {
                                    key: CONFIG_KEY.into(),
                                    path: CONFIG_KEY.into(),
                                    ..Default::default()
                                }]),
                                // Readable by the pod's group (fsGroup) only.
                                default_mode: Some(0o440),
                                ..SecretVolumeSource::default()
                            }),
                            ..Volume::default()
                        },
                    ]),
                    security_context: Some(pod_security()),
                    // Killing Redis is an experiment; no need to wait 30 s.
                    termination_grace_period_seconds: Some(5),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

pub fn service(job: &WordCountJob, site: Site) -> Service {
    Service {
        metadata: site_meta(
            job,
            &Names::of_site(job, site).redis,
            Component::Redis,
            site,
        ),
        spec: Some(ServiceSpec {
            selector: Some(site_selector(job, Component::Redis, site)),
            ports: Some(vec![ServicePort {
                name: Some("redis".into()),
                port: REDIS_PORT,
                target_port: Some(IntOrString::String("redis".into())),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{duration::Duration, resources::fixtures};

    #[test]
    fn snapshot_interval_becomes_save_seconds() {
        let mut job = fixtures::synthetic("demo");
        job.spec.redis.snapshot_interval = Duration::from_secs(120);
        let args = server_args(&job);
        let save = args.iter().position(|a| a == "--save").unwrap();
        assert_eq!(args[save + 1], "120 1");
        let aof = args.iter().position(|a| a == "--appendonly").unwrap();
        assert_eq!(args[aof + 1], "no");
        assert!(args
            .windows(2)
            .any(|w| w == ["--shutdown-on-sigterm", "nosave"]));

        job.spec.redis.snapshot_interval = Duration::from_millis(500);
        let args = server_args(&job);
        assert!(args.windows(2).any(|w| w == ["--save", "1 1"]));
    }

    #[test]
    fn password_reaches_redis_through_a_config_file_not_its_command_line() {
        let job = fixtures::synthetic("demo");
        let d = deployment(&job, None, false);
        let pod = d.spec.unwrap().template.spec.unwrap();
        let c = &pod.containers[0];
        let args = c.args.clone().unwrap();
        assert_eq!(args[0], "/etc/wordcount-redis/redis.conf");
        assert!(!args
            .iter()
            .any(|a| a.contains("requirepass") || a.contains("PASSWORD")));
        assert!(c.env.is_none(), "no password in the environment either");
        let config = pod
            .volumes
            .unwrap()
            .into_iter()
            .find(|v| v.name == "config")
            .unwrap()
            .secret
            .unwrap();
        assert_eq!(config.secret_name.as_deref(), Some("demo-redis-auth"));
        assert_eq!(config.items.unwrap()[0].key, CONFIG_KEY);
        let s = secret(&job, "pw123");
        assert_eq!(s.data.unwrap()[CONFIG_KEY].0, b"requirepass pw123\n");
    }

    #[test]
    fn a_finished_job_scales_redis_to_zero() {
        let job = fixtures::synthetic("demo");
        assert_eq!(deployment(&job, None, true).spec.unwrap().replicas, Some(0));
    }

    #[test]
    fn deployment_mounts_the_data_claim_and_recreates() {
        let job = fixtures::synthetic("demo");
        let d = deployment(&job, None, false);
        let spec = d.spec.unwrap();
        assert_eq!(spec.replicas, Some(1));
        assert_eq!(spec.strategy.unwrap().type_.as_deref(), Some("Recreate"));
        let pod = spec.template.spec.unwrap();
        let claim = pod.volumes.unwrap()[0]
            .persistent_volume_claim
            .clone()
            .unwrap();
        assert_eq!(claim.claim_name, "demo-redis-data");
        // The pod template carries the selector's labels.
        let tl = spec.template.metadata.unwrap().labels.unwrap();
        for (k, v) in spec.selector.match_labels.unwrap() {
            assert_eq!(tl[&k], v);
        }
        // The same image as the job unless the spec names another.
        assert_eq!(pod.containers[0].image.as_deref(), Some("wordcount:dev"));
    }

    #[test]
    fn service_targets_the_redis_pods() {
        let job = fixtures::synthetic("demo");
        let s = service(&job, None);
        assert_eq!(s.metadata.name.as_deref(), Some("demo-redis"));
        let spec = s.spec.unwrap();
        assert_eq!(
            spec.selector.unwrap(),
            super::super::selector(&job, Component::Redis)
        );
        assert_eq!(spec.ports.unwrap()[0].port, 6379);
    }

    #[test]
    fn passwords_are_random_alphanumerics() {
        let (a, b) = (new_password(), new_password());
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
        let s = secret(&fixtures::synthetic("demo"), &a);
        assert_eq!(s.data.unwrap()[PASSWORD_KEY].0, a.as_bytes());
    }
}
