//! What the driver's and the workers' pods share: the `wordcount`
//! container with the Redis password (and for S3 the store's variables),
//! the job's Redis URL (one Redis, RedisRaft's replicas or the CRDT's
//! instances), and the batch pod template with the input volume.

use super::{
    container_security, input, pod_security, redis_raft, s3, site_labels, sites, Component, Names,
    Site, PASSWORD_KEY, REDIS_PORT,
};
use crate::crd::{S3Connection, WordCountJob};
use k8s_openapi::api::core::v1::{
    Container, EnvVar, EnvVarSource, PodSpec, PodTemplateSpec, ResourceRequirements,
    SecretKeySelector,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// `redis://host:port` for pods in the job's namespace. The password is not
/// in the URL: `wordcount` reads it from `REDIS_PASSWORD`. For RedisRaft,
/// every replica's URL by its stable name, comma-separated: a client
/// connects to any and follows `-MOVED` to the leader. For Crdt, every
/// instance's, in site order (`--site` says which is a pod's own).
pub fn redis_url(job: &WordCountJob) -> String {
    redis_hosts(job)
        .iter()
        .map(|h| format!("redis://{h}:{REDIS_PORT}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The hosts of `redis_url`: RedisRaft's replicas, Crdt's instances (their
/// Services), or the one Redis' Service.
pub fn redis_hosts(job: &WordCountJob) -> Vec<String> {
    if job.spec.raft_replicas().is_some() {
        return redis_raft::replica_hosts(job);
    }
    sites(job)
        .into_iter()
        .map(|site| Names::of_site(job, site).redis)
        .collect()
}

/// `REDIS_PASSWORD` from the job's Secret.
pub fn password_env(job: &WordCountJob) -> EnvVar {
    EnvVar {
        name: "REDIS_PASSWORD".into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: Names::of(job).secret,
                key: PASSWORD_KEY.into(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// The pod template of the driver's and the workers' batch Jobs: the
/// component's and site's labels, the input volume (none for S3), and
/// never a restart in place (the Job makes a new pod). `spec` holds the rest.
pub fn batch_pod(
    job: &WordCountJob,
    component: Component,
    site: Site,
    spec: PodSpec,
) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(site_labels(job, component, site)),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            restart_policy: Some("Never".into()),
            volumes: input::volume(job).map(|v| vec![v]),
            security_context: Some(pod_security()),
            ..spec
        }),
    }
}

/// A container that runs `wordcount ARGS` on the input volume with the Redis
/// password, and the variables of the S3 store it reaches, if any: the
/// driver and the workers. The last lines of a failed container's log
/// become its termination message, which the status shows.
pub fn wordcount_container(
    wcj: &WordCountJob,
    name: &str,
    args: Vec<String>,
    resources: ResourceRequirements,
    store: Option<S3Connection<'_>>,
) -> Container {
    // RedisRaft has no password (its replicas could not log in to each
    // other); its NetworkPolicy is what keeps others out.
    let password = wcj
        .spec
        .raft_replicas()
        .is_none()
        .then(|| password_env(wcj));
    let env: Vec<EnvVar> = password
        .into_iter()
        .chain(store.map(s3::env).into_iter().flatten())
        .collect();
    Container {
        name: name.into(),
        image: Some(wcj.spec.image().to_string()),
        image_pull_policy: Some(wcj.spec.image_pull_policy.as_str().into()),
        command: Some(vec!["wordcount".into()]),
        args: Some(args),
        env: (!env.is_empty()).then_some(env),
        volume_mounts: input::mount(wcj).map(|m| vec![m]),
        resources: Some(resources),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        security_context: Some(container_security()),
        ..Container::default()
    }
}
