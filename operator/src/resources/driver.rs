//! The driver: a batch Job of one pod that (after generating a synthetic
//! corpus) enqueues the files, folds the results and writes the summary.

use super::{
    batch_pod, input, meta, redis_url, resources_or, wordcount_container, Component, Names,
};
use crate::crd::WordCountJob;
use k8s_openapi::api::{
    batch::v1::{
        Job, JobSpec, PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement,
        PodFailurePolicyRule,
    },
    core::v1::PodSpec,
};
use wordcount_protocol::{exit, DEFAULT_PREFIX};

/// Retries of the driver pod. The driver survives Redis restarts by itself,
/// so a failure is usually final (bad input); a few retries cover a node
/// hiccup without making a real error take long to surface.
pub const BACKOFF_LIMIT: i32 = 3;
/// The driver's container, named in the pod failure policy.
pub const CONTAINER: &str = "driver";

pub fn args(job: &WordCountJob) -> Vec<String> {
    let spec = &job.spec;
    [
        "driver",
        "--redis",
        &redis_url(job),
        "--input",
        &input::dir(job),
        "--redis-mode",
        spec.redis.mode.as_str(),
        "--prefix",
        DEFAULT_PREFIX,
        "--tokenizer",
        spec.tokenizer.as_str(),
        "--commit",
        spec.commit.as_str(),
        "--on-unreadable",
        spec.on_unreadable.as_str(),
        "--claim-timeout",
        &spec.claim_timeout.as_millis().to_string(),
        "--top",
        &spec.top_n.to_string(),
        "--json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A driver that exits `UNREADABLE` has counted everything it could and
/// reported it; running it again would read the same files. So that exit
/// fails the Job at once, without retries.
fn pod_failure_policy() -> PodFailurePolicy {
    PodFailurePolicy {
        rules: vec![PodFailurePolicyRule {
            action: "FailJob".into(),
            on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                container_name: Some(CONTAINER.into()),
                operator: "In".into(),
                values: vec![exit::UNREADABLE],
            }),
            ..PodFailurePolicyRule::default()
        }],
    }
}

/// `finished` suspends the Job: its pods that still run or wait are
/// stopped (the finished ones, and their logs, stay).
pub fn job(wcj: &WordCountJob, finished: bool) -> Job {
    let names = Names::of(wcj);
    let container = wordcount_container(
        wcj,
        CONTAINER,
        args(wcj),
        resources_or(
            wcj.spec.resources.as_ref().and_then(|r| r.driver.as_ref()),
            "50m",
            "64Mi",
        ),
    );
    Job {
        metadata: meta(wcj, &names.driver, Component::Driver),
        spec: Some(JobSpec {
            suspend: finished.then_some(true),
            backoff_limit: Some(BACKOFF_LIMIT),
            pod_failure_policy: Some(pod_failure_policy()),
            template: batch_pod(
                wcj,
                Component::Driver,
                PodSpec {
                    init_containers: input::generator(wcj).map(|g| vec![g]),
                    containers: vec![container],
                    ..PodSpec::default()
                },
            ),
            ..JobSpec::default()
        }),
        ..Job::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        crd::{HostPathInput, Input},
        resources::fixtures,
    };
    use wordcount_protocol::{Commit, OnUnreadable, Tokenizer};

    #[test]
    fn driver_args_follow_the_protocol() {
        let mut wcj = fixtures::synthetic("demo");
        wcj.spec.tokenizer = Tokenizer::Whitespace;
        wcj.spec.commit = Commit::PerWord;
        wcj.spec.on_unreadable = OnUnreadable::Skip;
        wcj.spec.claim_timeout = "1m30s".parse().unwrap();
        wcj.spec.top_n = 25;
        assert_eq!(
            args(&wcj),
            [
                "driver",
                "--redis",
                "redis://demo-redis:6379",
                "--input",
                "/input/corpus",
                "--redis-mode",
                "snapshot",
                "--prefix",
                DEFAULT_PREFIX,
                "--tokenizer",
                "whitespace",
                "--commit",
                "per-word",
                "--on-unreadable",
                "skip",
                "--claim-timeout",
                "90000",
                "--top",
                "25",
                "--json"
            ]
        );
        let default = args(&fixtures::synthetic("demo"));
        assert!(default.windows(2).any(|w| w == ["--on-unreadable", "fail"]));
    }

    #[test]
    fn unreadable_files_fail_the_driver_job_without_retries() {
        let spec = job(&fixtures::synthetic("demo"), false).spec.unwrap();
        let rule = &spec.pod_failure_policy.unwrap().rules[0];
        assert_eq!(rule.action, "FailJob");
        let codes = rule.on_exit_codes.as_ref().unwrap();
        assert_eq!(codes.container_name.as_deref(), Some(CONTAINER));
        assert_eq!(
            (codes.operator.as_str(), &codes.values[..]),
            ("In", &[3][..])
        );
        // The policy names the container that runs the driver.
        let pod = spec.template.spec.unwrap();
        assert_eq!(pod.containers[0].name, CONTAINER);
    }

    #[test]
    fn synthetic_driver_generates_first() {
        let j = job(&fixtures::synthetic("demo"), false);
        let pod = j.spec.unwrap().template.spec.unwrap();
        assert_eq!(pod.init_containers.unwrap()[0].name, "generate");
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        let env = &pod.containers[0].env.as_ref().unwrap()[0];
        assert_eq!(env.name, "REDIS_PASSWORD");
    }

    #[test]
    fn host_path_driver_has_no_init_container() {
        let wcj = fixtures::job(
            "demo",
            Input::HostPath(HostPathInput {
                path: "/data".into(),
            }),
        );
        let j = job(&wcj, false);
        assert_eq!(j.metadata.name.as_deref(), Some("demo-driver"));
        let spec = j.spec.unwrap();
        assert_eq!(spec.backoff_limit, Some(BACKOFF_LIMIT));
        assert!(spec.template.spec.unwrap().init_containers.is_none());
    }
}
