//! The workers: an Indexed batch Job, so worker I keeps index I across
//! replacements (faults target an index) and a crashed or deleted worker is
//! replaced by a new pod with the same index.

use super::{
    input,
    pod::{batch_pod, redis_url, wordcount_container},
    resources_or, s3, site_args, site_meta, Component, Names, Site,
};
use crate::crd::{PodKillTarget, WordCountJob};
use k8s_openapi::api::{
    batch::v1::{Job, JobSpec},
    core::v1::PodSpec,
};
use wordcount_protocol::DEFAULT_PREFIX;

/// Failures each index may have before the Job gives it up: room for every
/// injected crash and pod kill, plus slack for real trouble (a per-index limit
/// also makes the Job's re-creation backoff per index, so one worker killed
/// often does not slow the replacement of the others).
pub fn backoff_limit_per_index(wcj: &WordCountJob) -> i32 {
    let faults = wcj.spec.faults.as_ref();
    let crashes = faults.map_or(0, |f| f.crashes.len() as i32);
    let kills = wcj
        .spec
        .pod_kills()
        .filter(|k| k.target == PodKillTarget::Worker)
        .map_or(0, |k| k.max_kills);
    6 + crashes + kills
}

/// The worker's index comes from `JOB_COMPLETION_INDEX`, which Kubernetes
/// sets in every pod of an Indexed Job; every worker gets every fault and
/// applies those with its index.
pub fn args(wcj: &WordCountJob, site: Site) -> Vec<String> {
    let mut args: Vec<String> = [
        "worker",
        "--redis",
        &redis_url(wcj),
        "--input",
        &input::location(wcj, site),
        "--redis-mode",
        wcj.spec.redis.mode.as_str(),
        "--prefix",
        DEFAULT_PREFIX,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(site_args(site));
    for fault in wcj.spec.worker_faults() {
        args.push("--fault".into());
        args.push(fault.to_string());
    }
    args
}

/// `finished` suspends the Job: its pods that still run or wait are
/// stopped (the finished ones, and their logs, stay).
pub fn job(wcj: &WordCountJob, site: Site, finished: bool) -> Job {
    let names = Names::of_site(wcj, site);
    let container = wordcount_container(
        wcj,
        "worker",
        args(wcj, site),
        resources_or(
            wcj.spec.resources.as_ref().and_then(|r| r.worker.as_ref()),
            "100m",
            "128Mi",
        ),
        s3::worker_connection(wcj),
    );
    Job {
        metadata: site_meta(wcj, &names.workers, Component::Worker, site),
        spec: Some(JobSpec {
            suspend: finished.then_some(true),
            completion_mode: Some("Indexed".into()),
            // As many as the autoscaler last decided, else spec.workers.
            completions: Some(wcj.workers_now()),
            parallelism: Some(wcj.workers_now()),
            backoff_limit_per_index: Some(backoff_limit_per_index(wcj)),
            template: batch_pod(
                wcj,
                Component::Worker,
                site,
                PodSpec {
                    containers: vec![container],
                    // Deleted workers are an experiment, not a drain to honour.
                    termination_grace_period_seconds: Some(5),
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
        crd::{Crash, Faults, PodKills, Straggler},
        resources::fixtures,
    };
    use wordcount_protocol::CrashPoint;

    fn with_faults() -> WordCountJob {
        let mut wcj = fixtures::synthetic("demo");
        wcj.spec.workers = 4;
        wcj.spec.faults = Some(Faults {
            crashes: vec![
                Crash {
                    worker: 1,
                    point: CrashPoint::AfterCount,
                    file: Some(2),
                },
                Crash {
                    worker: 0,
                    point: CrashPoint::MidStage,
                    file: None,
                },
            ],
            stragglers: vec![Straggler {
                worker: 3,
                slow_factor: 4.0,
            }],
            pod_kills: Some(PodKills {
                target: PodKillTarget::Worker,
                every: "10s".parse().unwrap(),
                after: "5s".parse().unwrap(),
                max_kills: 3,
            }),
            partitions: vec![],
        });
        wcj
    }

    #[test]
    fn faults_become_fault_args_in_protocol_syntax() {
        let a = args(&with_faults(), None);
        assert_eq!(
            a[9..],
            [
                "--fault",
                "worker=1,crash=after-count,file=2",
                "--fault",
                "worker=0,crash=mid-stage,file=1",
                "--fault",
                "worker=3,slow=4"
            ]
        );
        assert_eq!(a[..3], ["worker", "--redis", "redis://demo-redis:6379"]);
        // The index is left to JOB_COMPLETION_INDEX, set by the Indexed Job.
        assert!(!a.iter().any(|x| x == "--index"));
    }

    #[test]
    fn workers_are_an_indexed_job_of_n_pods() {
        let wcj = with_faults();
        let spec = job(&wcj, None, false).spec.unwrap();
        assert_eq!(spec.completion_mode.as_deref(), Some("Indexed"));
        assert_eq!((spec.completions, spec.parallelism), (Some(4), Some(4)));
        // 6 slack + 2 crashes + 3 worker kills.
        assert_eq!(spec.backoff_limit_per_index, Some(11));
        assert_eq!(
            spec.template.spec.unwrap().restart_policy.as_deref(),
            Some("Never")
        );
    }

    #[test]
    fn s3_workers_read_the_bucket_with_the_keys_by_reference_and_no_volume() {
        let wcj = fixtures::s3("demo");
        let a = args(&wcj, None);
        assert!(
            a.windows(2).any(|w| w == ["--input", "s3://corpus/books/"]),
            "{a:?}"
        );
        assert!(!a.iter().any(|x| x == "--output"), "only the driver writes");
        let pod = job(&wcj, None, false).spec.unwrap().template.spec.unwrap();
        assert!(pod.volumes.is_none());
        let c = &pod.containers[0];
        assert!(c.volume_mounts.is_none());
        let env = c.env.clone().unwrap();
        let secret = env
            .iter()
            .find(|e| e.name == "AWS_SECRET_ACCESS_KEY")
            .unwrap();
        assert_eq!(secret.value, None);
        let r = secret.value_from.clone().unwrap().secret_key_ref.unwrap();
        assert_eq!(
            (r.name.as_str(), r.key.as_str()),
            ("s3-credentials", "AWS_SECRET_ACCESS_KEY")
        );

        // A volume input: no store for the workers, even with an S3 output.
        let mut out_only = fixtures::synthetic("demo");
        out_only.spec.output = wcj.spec.output.clone();
        let pod = job(&out_only, None, false)
            .spec
            .unwrap()
            .template
            .spec
            .unwrap();
        let names: Vec<String> = pod.containers[0]
            .env
            .iter()
            .flatten()
            .map(|e| e.name.clone())
            .collect();
        assert_eq!(names, ["REDIS_PASSWORD"]);
    }

    #[test]
    fn redis_kills_do_not_count_against_workers() {
        let mut wcj = with_faults();
        wcj.spec
            .faults
            .as_mut()
            .unwrap()
            .pod_kills
            .as_mut()
            .unwrap()
            .target = PodKillTarget::Redis;
        assert_eq!(backoff_limit_per_index(&wcj), 8);
    }
}
