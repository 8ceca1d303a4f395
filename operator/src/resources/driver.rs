//! The driver: a batch Job of one pod that (after generating a synthetic
//! corpus) enqueues the files, folds the results and writes the summary.

use super::{
    batch_pod, input, meta, redis_url, resources_or, wordcount_container, Component, Names, PREFIX,
};
use crate::crd::WordCountJob;
use k8s_openapi::api::{
    batch::v1::{Job, JobSpec},
    core::v1::PodSpec,
};

/// Retries of the driver pod. The driver survives Redis restarts by itself,
/// so a failure is usually final (bad input); a few retries cover a node
/// hiccup without making a real error take long to surface.
pub const BACKOFF_LIMIT: i32 = 3;

pub fn args(job: &WordCountJob) -> Vec<String> {
    let spec = &job.spec;
    [
        "driver",
        "--redis",
        &redis_url(job),
        "--input",
        &input::dir(job),
        "--prefix",
        PREFIX,
        "--tokenizer",
        tokenizer(job),
        "--commit",
        commit(job),
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

fn tokenizer(job: &WordCountJob) -> &'static str {
    match job.spec.tokenizer {
        crate::crd::Tokenizer::Alnum => "alnum",
        crate::crd::Tokenizer::Whitespace => "whitespace",
    }
}

fn commit(job: &WordCountJob) -> &'static str {
    match job.spec.commit {
        crate::crd::CommitMode::PerFile => "per-file",
        crate::crd::CommitMode::PerWord => "per-word",
    }
}

pub fn job(wcj: &WordCountJob) -> Job {
    let names = Names::of(wcj);
    let container = wordcount_container(
        wcj,
        "driver",
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
            backoff_limit: Some(BACKOFF_LIMIT),
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
        crd::{CommitMode, HostPathInput, Input, Tokenizer},
        resources::fixtures,
    };

    #[test]
    fn driver_args_follow_the_protocol() {
        let mut wcj = fixtures::synthetic("demo");
        wcj.spec.tokenizer = Tokenizer::Whitespace;
        wcj.spec.commit = CommitMode::PerWord;
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
                "--prefix",
                "wc",
                "--tokenizer",
                "whitespace",
                "--commit",
                "per-word",
                "--claim-timeout",
                "90000",
                "--top",
                "25",
                "--json"
            ]
        );
    }

    #[test]
    fn synthetic_driver_generates_first() {
        let j = job(&fixtures::synthetic("demo"));
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
        let j = job(&wcj);
        assert_eq!(j.metadata.name.as_deref(), Some("demo-driver"));
        let spec = j.spec.unwrap();
        assert_eq!(spec.backoff_limit, Some(BACKOFF_LIMIT));
        assert!(spec.template.spec.unwrap().init_containers.is_none());
    }
}
