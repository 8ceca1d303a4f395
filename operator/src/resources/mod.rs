//! Builders of the children of a `WordCountJob`: pure functions from the
//! job to the desired object, applied with server-side apply by the
//! controller. Every child is owned by the job, so deleting the job deletes
//! them all (garbage collection), and carries labels that select it.

pub mod driver;
pub mod input;
pub mod network_policy;
pub mod pod;
pub mod redis;
pub mod redis_raft;
pub mod s3;
pub mod workers;

use crate::crd::WordCountJob;
use k8s_openapi::{
    api::core::v1::{
        Capabilities, PodSecurityContext, ResourceRequirements, SeccompProfile, SecurityContext,
    },
    apimachinery::pkg::{api::resource::Quantity, apis::meta::v1::ObjectMeta},
};
use kube::{Resource, ResourceExt};
use std::collections::BTreeMap;

/// Field manager of every server-side apply the operator makes.
pub const MANAGER: &str = "wordcount-operator";
pub const REDIS_PORT: i32 = 6379;
/// The user and group every pod of a job runs as: not root, and the same
/// for all, so Redis' data and a generated corpus belong to whoever reads
/// them (the files of kind/Dockerfile's images are world-readable).
pub const JOB_UID: i64 = 65532;
/// Key of the password in the job's Secret.
pub const PASSWORD_KEY: &str = "password";

pub const LABEL_JOB: &str = "wordcount.dev/job";
pub const LABEL_COMPONENT: &str = "app.kubernetes.io/component";
/// A Crdt job's site (0 to 2) of a Redis instance, a driver or a worker.
pub const LABEL_SITE: &str = "wordcount.dev/site";

/// Which site a child belongs to: `None` for the one site of a Snapshot or
/// RedisRaft job, `Some(i)` for site i of a Crdt job.
pub type Site = Option<usize>;

/// A job's sites: one, or a Crdt job's three.
pub fn sites(job: &WordCountJob) -> Vec<Site> {
    match job.spec.crdt_sites() {
        None => vec![None],
        Some(n) => (0..n).map(Some).collect(),
    }
}

/// Which part of the job a child belongs to (the component label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Component {
    Redis,
    Input,
    Driver,
    Worker,
}

impl Component {
    pub fn as_str(self) -> &'static str {
        match self {
            Component::Redis => "redis",
            Component::Input => "input",
            Component::Driver => "driver",
            Component::Worker => "worker",
        }
    }
}

/// The names of a job's children, all derived from the job's name; those
/// of a Crdt site end in its index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    pub secret: String,
    pub redis: String,
    pub redis_data: String,
    pub input: String,
    pub driver: String,
    pub workers: String,
    /// The standing NetworkPolicy in front of Redis.
    pub redis_ingress: String,
}

impl Names {
    /// The names of a job with one site.
    pub fn of(job: &WordCountJob) -> Self {
        Self::of_site(job, None)
    }

    pub fn of_site(job: &WordCountJob, site: Site) -> Self {
        let name = job.name_any();
        let suffix = site.map_or(String::new(), |i| format!("-{i}"));
        Self {
            secret: format!("{name}-redis-auth"),
            redis: format!("{name}-redis{suffix}"),
            redis_data: format!("{name}-redis-data{suffix}"),
            input: format!("{name}-input"),
            driver: format!("{name}-driver{suffix}"),
            workers: format!("{name}-workers{suffix}"),
            redis_ingress: format!("{name}-redis-ingress{suffix}"),
        }
    }
}

/// Labels shared by every child of the job and its pods.
pub fn labels(job: &WordCountJob, component: Component) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".into(), "wordcount".into()),
        ("app.kubernetes.io/instance".into(), job.name_any()),
        ("app.kubernetes.io/managed-by".into(), MANAGER.into()),
        (LABEL_COMPONENT.into(), component.as_str().into()),
        (LABEL_JOB.into(), job.name_any()),
    ])
}

/// The selector of one component's pods (a subset of `labels`, stable forever).
pub fn selector(job: &WordCountJob, component: Component) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_JOB.into(), job.name_any()),
        (LABEL_COMPONENT.into(), component.as_str().into()),
    ])
}

/// `labels`, and the site's for a Crdt site's children and pods.
pub fn site_labels(
    job: &WordCountJob,
    component: Component,
    site: Site,
) -> BTreeMap<String, String> {
    with_site(labels(job, component), site)
}

/// `selector`, narrowed to one Crdt site.
pub fn site_selector(
    job: &WordCountJob,
    component: Component,
    site: Site,
) -> BTreeMap<String, String> {
    with_site(selector(job, component), site)
}

fn with_site(mut labels: BTreeMap<String, String>, site: Site) -> BTreeMap<String, String> {
    if let Some(i) = site {
        labels.insert(LABEL_SITE.into(), i.to_string());
    }
    labels
}

/// Metadata of a child: name, namespace, labels, and the job as controller owner.
pub fn meta(job: &WordCountJob, name: &str, component: Component) -> ObjectMeta {
    site_meta(job, name, component, None)
}

/// `meta` of a site's child.
pub fn site_meta(job: &WordCountJob, name: &str, component: Component, site: Site) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: job.namespace(),
        labels: Some(site_labels(job, component, site)),
        owner_references: job.controller_owner_ref(&()).map(|o| vec![o]),
        ..ObjectMeta::default()
    }
}

/// `--site I`: which of `redis_url`'s instances is a Crdt site's own.
pub fn site_args(site: Site) -> Vec<String> {
    site.map_or(Vec::new(), |i| vec!["--site".into(), i.to_string()])
}

/// No privilege escalation and no capabilities: nothing in the job needs
/// them (with `pod_security`, the `restricted` Pod Security Standard).
pub fn container_security() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            ..Capabilities::default()
        }),
        ..SecurityContext::default()
    }
}

/// Every pod of a job runs as `JOB_UID`, never root, under the runtime's
/// default seccomp profile. `fsGroup` makes the volumes that support it
/// (Secrets, most claims) writable by that group.
pub fn pod_security() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(JOB_UID),
        run_as_group: Some(JOB_UID),
        fs_group: Some(JOB_UID),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..SeccompProfile::default()
        }),
        ..PodSecurityContext::default()
    }
}

/// The spec's resources for a component, or modest requests (no limits, so a
/// large vocabulary is not OOM-killed by a guess).
pub fn resources_or(
    given: Option<&ResourceRequirements>,
    cpu: &str,
    memory: &str,
) -> ResourceRequirements {
    given.cloned().unwrap_or_else(|| ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".into(), Quantity(cpu.into())),
            ("memory".into(), Quantity(memory.into())),
        ])),
        ..ResourceRequirements::default()
    })
}

#[cfg(test)]
pub(crate) mod fixtures {
    use crate::crd::{Input, SyntheticInput, WordCountJob, WordCountJobSpec};
    use kube::ResourceExt;

    /// A job as the API server would hand it over: defaults applied, uid set.
    pub fn job(name: &str, input: Input) -> WordCountJob {
        let spec: WordCountJobSpec = serde_json::from_value(serde_json::json!({
            "input": serde_json::to_value(input).unwrap(),
        }))
        .unwrap();
        let mut job = WordCountJob::new(name, spec);
        job.metadata.namespace = Some("ns1".into());
        job.metadata.uid = Some(format!("uid-{}", job.name_any()));
        job.metadata.generation = Some(1);
        job
    }

    /// A job reading `s3://corpus/books/` from an in-cluster store and
    /// writing `s3://results/NAME.txt` there, as `examples/s3-job.yaml`.
    pub fn s3(name: &str) -> WordCountJob {
        let mut job = job(
            name,
            serde_json::from_value(serde_json::json!({"s3": {
                "endpoint": "http://s3.default.svc:7070", "bucket": "corpus",
                "prefix": "books/", "credentialsSecret": "s3-credentials"}}))
            .unwrap(),
        );
        job.spec.output = Some(
            serde_json::from_value(serde_json::json!({"s3": {
                "endpoint": "http://s3.default.svc:7070", "bucket": "results",
                "key": format!("{name}.txt"), "credentialsSecret": "s3-credentials"}}))
            .unwrap(),
        );
        job
    }

    pub fn synthetic(name: &str) -> WordCountJob {
        job(
            name,
            Input::Synthetic(SyntheticInput {
                files: 8,
                bytes_per_file: 4096,
                vocabulary: Some(100),
                zipf: Some(1.1),
                skew_factor: None,
                seed: Some(7),
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::pod::redis_url;
    use super::*;

    #[test]
    fn children_are_owned_by_the_job_as_controller() {
        let job = fixtures::synthetic("demo");
        let m = meta(&job, "demo-redis", Component::Redis);
        let owner = &m.owner_references.unwrap()[0];
        assert_eq!(owner.kind, "WordCountJob");
        assert_eq!(owner.api_version, "wordcount.dev/v1alpha1");
        assert_eq!(owner.name, "demo");
        assert_eq!(owner.uid, "uid-demo");
        assert_eq!(owner.controller, Some(true));
        assert_eq!(m.namespace.as_deref(), Some("ns1"));
        assert_eq!(m.labels.unwrap()[LABEL_COMPONENT], "redis");
    }

    #[test]
    fn selector_is_a_subset_of_the_labels() {
        let job = fixtures::synthetic("demo");
        for c in [
            Component::Redis,
            Component::Driver,
            Component::Worker,
            Component::Input,
        ] {
            let l = labels(&job, c);
            for (k, v) in selector(&job, c) {
                assert_eq!(l.get(&k), Some(&v));
            }
        }
    }

    #[test]
    fn a_crdt_job_has_three_sites_each_with_its_redis_driver_and_workers() {
        let mut job = fixtures::synthetic("demo");
        assert_eq!(sites(&job), [None]);
        job.spec.redis.mode = wordcount_protocol::RedisMode::Crdt;
        assert_eq!(sites(&job), [Some(0), Some(1), Some(2)]);
        assert_eq!(
            redis_url(&job),
            "redis://demo-redis-0:6379,redis://demo-redis-1:6379,redis://demo-redis-2:6379"
        );
        let site = Some(1);
        let driver = driver::job(&job, site, false);
        assert_eq!(driver.metadata.name.as_deref(), Some("demo-driver-1"));
        let args = driver::args(&job, site);
        assert!(args.windows(2).any(|w| w == ["--site", "1"]), "{args:?}");
        assert!(args.windows(2).any(|w| w == ["--input", "/input/corpus-1"]));
        assert!(args.windows(2).any(|w| w == ["--redis-mode", "crdt"]));
        let workers = workers::job(&job, site, false);
        let pod_labels = workers
            .spec
            .unwrap()
            .template
            .metadata
            .unwrap()
            .labels
            .unwrap();
        assert_eq!(pod_labels[LABEL_SITE], "1");
        assert!(workers::args(&job, site)
            .windows(2)
            .any(|w| w == ["--site", "1"]));
        // Each instance's Deployment selects its own pod only.
        let redis = redis::deployment(&job, Some(2), false);
        assert_eq!(redis.metadata.name.as_deref(), Some("demo-redis-2"));
        let selected = redis.spec.unwrap().selector.match_labels.unwrap();
        assert_eq!(selected[LABEL_SITE], "2");
        assert_eq!(
            redis::data_claim(&job, Some(2)).metadata.name.as_deref(),
            Some("demo-redis-data-2")
        );
        // One password for all.
        assert_eq!(Names::of_site(&job, site).secret, Names::of(&job).secret);
    }
}
