//! The driver: a batch Job of one pod that (after generating a synthetic
//! corpus) enqueues the files, folds the results, writes the output
//! (`spec.output`) and the summary; for a stream (`spec.stream`), injects
//! them at a rate first.

use super::{
    input,
    pod::{batch_pod, redis_url, wordcount_container},
    resources_or, s3, site_args, site_meta, Component, Names, Site,
};
use crate::crd::{StreamSpec, WordCountJob};
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

pub fn args(job: &WordCountJob, site: Site) -> Vec<String> {
    let spec = &job.spec;
    let mut args: Vec<String> = [
        "driver",
        "--redis",
        &redis_url(job),
        "--input",
        &input::location(job, site),
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
    .collect();
    if let Some(output) = &spec.output {
        args.extend(["--output".into(), output.url()]);
    }
    args.extend(site_args(site));
    if let Some(stream) = &spec.stream {
        args.extend(stream_args(stream));
    }
    args
}

/// The flags that make the driver a stream's source. Durations in the
/// spec's own syntax ("1m30s", "500ms"), which the driver's parser
/// (humantime) reads too; without `duration` it injects every file once.
pub fn stream_args(stream: &StreamSpec) -> Vec<String> {
    let mut args = vec![
        "--stream".to_string(),
        "--rate".into(),
        stream.rate.to_string(),
    ];
    if let Some(d) = stream.duration {
        args.extend(["--duration".into(), d.to_string()]);
    }
    args.extend([
        "--tick".into(),
        stream.tick.to_string(),
        "--backpressure".into(),
        stream.backpressure.as_str().into(),
        "--max-lag".into(),
        stream.max_lag.to_string(),
    ]);
    args
}

/// A driver that exits `UNREADABLE` has counted everything it could and
/// reported it; running it again would read the same files. So that exit
/// fails the Job at once, without retries.
///
/// One that exits `OUTPUT` has the counts whole in Redis but could not
/// write the output (the store down, a bucket missing, credentials
/// refused): a new pod writes it from Redis, if the cause has passed. So
/// that exit counts towards `backoffLimit` like any failure (said here,
/// not left to the default, because it is a decision). Once the Job gives
/// up, the WordCountJob waits with its Redis kept until the driver's Job
/// is deleted; the operator then makes it again (`status::phase`).
fn pod_failure_policy() -> PodFailurePolicy {
    let on = |action: &str, code: i32| PodFailurePolicyRule {
        action: action.into(),
        on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
            container_name: Some(CONTAINER.into()),
            operator: "In".into(),
            values: vec![code],
        }),
        ..PodFailurePolicyRule::default()
    };
    PodFailurePolicy {
        rules: vec![on("FailJob", exit::UNREADABLE), on("Count", exit::OUTPUT)],
    }
}

/// `finished` suspends the Job: its pods that still run or wait are
/// stopped (the finished ones, and their logs, stay).
pub fn job(wcj: &WordCountJob, site: Site, finished: bool) -> Job {
    let names = Names::of_site(wcj, site);
    let container = wordcount_container(
        wcj,
        CONTAINER,
        args(wcj, site),
        resources_or(
            wcj.spec.resources.as_ref().and_then(|r| r.driver.as_ref()),
            "50m",
            "64Mi",
        ),
        s3::driver_connection(wcj),
    );
    Job {
        metadata: site_meta(wcj, &names.driver, Component::Driver, site),
        spec: Some(JobSpec {
            suspend: finished.then_some(true),
            backoff_limit: Some(BACKOFF_LIMIT),
            pod_failure_policy: Some(pod_failure_policy()),
            template: batch_pod(
                wcj,
                Component::Driver,
                site,
                PodSpec {
                    init_containers: input::generator(wcj, site).map(|g| vec![g]),
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
            args(&wcj, None),
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
        let default = args(&fixtures::synthetic("demo"), None);
        assert!(default.windows(2).any(|w| w == ["--on-unreadable", "fail"]));
    }

    #[test]
    fn a_stream_driver_gets_the_stream_flags_after_the_batch_ones() {
        let mut wcj = fixtures::synthetic("demo");
        let batch = args(&wcj, None);
        assert!(!batch.iter().any(|a| a == "--stream"));
        wcj.spec.stream = Some(
            serde_json::from_value(serde_json::json!({
                "rate": 2.5, "duration": "1m30s", "tick": "500ms",
                "backpressure": "Adaptive", "maxLag": 40
            }))
            .unwrap(),
        );
        let stream = args(&wcj, None);
        assert_eq!(&stream[..batch.len()], &batch[..]);
        assert_eq!(
            &stream[batch.len()..],
            [
                "--stream",
                "--rate",
                "2.5",
                "--duration",
                "1m30s",
                "--tick",
                "500ms",
                "--backpressure",
                "adaptive",
                "--max-lag",
                "40"
            ]
        );
        // Defaults: no duration (every file once), 1 s ticks, no backpressure.
        wcj.spec.stream = Some(serde_json::from_value(serde_json::json!({"rate": 20})).unwrap());
        assert_eq!(
            &args(&wcj, None)[batch.len()..],
            [
                "--stream",
                "--rate",
                "20",
                "--tick",
                "1s",
                "--backpressure",
                "none",
                "--max-lag",
                "100"
            ]
        );
    }

    /// The driver reads durations with humantime and the rate as an f64:
    /// what the operator renders must read back as the spec's value.
    #[test]
    fn stream_flags_read_back_as_the_driver_parses_them() {
        for (rate, duration, tick) in [
            (0.1, "1h2m3s4ms", "10ms"),
            (20.0, "30s", "1s"),
            (1e-3, "2m", "1m"),
            (99999.9, "1s", "250ms"),
        ] {
            let spec: StreamSpec = serde_json::from_value(
                serde_json::json!({"rate": rate, "duration": duration, "tick": tick}),
            )
            .unwrap();
            let a = stream_args(&spec);
            let value = |flag: &str| {
                let i = a.iter().position(|x| x == flag).unwrap();
                a[i + 1].clone()
            };
            assert_eq!(value("--rate").parse::<f64>().unwrap(), rate);
            for (flag, text) in [("--duration", duration), ("--tick", tick)] {
                let parsed = humantime::parse_duration(&value(flag)).unwrap();
                let meant: crate::duration::Duration = text.parse().unwrap();
                assert_eq!(parsed, meant.as_std(), "{flag} {text}");
            }
        }
    }

    #[test]
    fn unreadable_files_fail_the_driver_job_without_retries() {
        let spec = job(&fixtures::synthetic("demo"), None, false).spec.unwrap();
        let rule = &spec.pod_failure_policy.clone().unwrap().rules[0];
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

    /// The output's retry, step one: a pod that could not write it counts
    /// towards the backoff limit, so the Job controller runs a new one
    /// (which writes it from Redis) a few times before it gives up.
    #[test]
    fn an_unwritten_output_is_retried_by_the_job_up_to_its_backoff_limit() {
        let spec = job(&fixtures::s3("demo"), None, false).spec.unwrap();
        assert_eq!(spec.backoff_limit, Some(BACKOFF_LIMIT));
        let rules = spec.pod_failure_policy.unwrap().rules;
        let rule = rules
            .iter()
            .find(|r| {
                r.on_exit_codes
                    .as_ref()
                    .is_some_and(|c| c.values.contains(&exit::OUTPUT))
            })
            .unwrap();
        assert_eq!(rule.action, "Count");
        let codes = rule.on_exit_codes.as_ref().unwrap();
        assert_eq!(
            (codes.container_name.as_deref(), codes.operator.as_str()),
            (Some(CONTAINER), "In")
        );
        // And never fails the Job at once, as unreadable files do.
        assert!(!rules.iter().any(|r| r.action == "FailJob"
            && r.on_exit_codes
                .as_ref()
                .unwrap()
                .values
                .contains(&exit::OUTPUT)));
    }

    #[test]
    fn an_s3_driver_reads_and_writes_the_store_with_no_volume() {
        let wcj = fixtures::s3("demo");
        let a = args(&wcj, None);
        assert!(
            a.windows(2).any(|w| w == ["--input", "s3://corpus/books/"]),
            "{a:?}"
        );
        assert!(
            a.windows(2)
                .any(|w| w == ["--output", "s3://results/demo.txt"]),
            "{a:?}"
        );
        // The output comes after the batch flags, before a site's and a stream's.
        assert_eq!(a[a.len() - 2..], ["--output", "s3://results/demo.txt"]);

        let pod = job(&wcj, None, false).spec.unwrap().template.spec.unwrap();
        assert!(pod.volumes.is_none() && pod.init_containers.is_none());
        let c = &pod.containers[0];
        assert!(c.volume_mounts.is_none());
        let env: Vec<&str> = c.env.iter().flatten().map(|e| e.name.as_str()).collect();
        assert_eq!(
            env,
            [
                "REDIS_PASSWORD",
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_REGION",
                "AWS_ENDPOINT_URL",
                "AWS_ALLOW_HTTP"
            ]
        );
        // Every value that is a secret is a reference; no argument names one.
        for e in c.env.iter().flatten() {
            assert_eq!(e.value.is_none(), e.value_from.is_some(), "{}", e.name);
        }
        assert!(!a.iter().any(|x| x.contains("credentials")));
    }

    #[test]
    fn an_output_with_a_volume_input_gives_only_the_driver_the_store() {
        let mut wcj = fixtures::synthetic("demo");
        wcj.spec.output = fixtures::s3("demo").spec.output;
        let a = args(&wcj, None);
        assert!(a.windows(2).any(|w| w == ["--input", "/input/corpus"]));
        assert!(a
            .windows(2)
            .any(|w| w == ["--output", "s3://results/demo.txt"]));
        let pod = job(&wcj, None, false).spec.unwrap().template.spec.unwrap();
        assert!(pod.volumes.is_some());
        let env = pod.containers[0].env.clone().unwrap();
        assert!(env.iter().any(|e| e.name == "AWS_SECRET_ACCESS_KEY"));
        // No output: no --output.
        assert!(!args(&fixtures::synthetic("demo"), None).contains(&"--output".to_string()));
    }

    #[test]
    fn synthetic_driver_generates_first() {
        let j = job(&fixtures::synthetic("demo"), None, false);
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
        let j = job(&wcj, None, false);
        assert_eq!(j.metadata.name.as_deref(), Some("demo-driver"));
        let spec = j.spec.unwrap();
        assert_eq!(spec.backoff_limit, Some(BACKOFF_LIMIT));
        assert!(spec.template.spec.unwrap().init_containers.is_none());
    }
}
