//! Reconcile decisions against the in-memory API server and a fake Redis.

use super::*;
use crate::{
    crd::{HostPathInput, Input, PodKillTarget, PodKills},
    fake_apiserver::{FakeApiServer, Recorded},
    finish::POLL_FINISHED,
    metrics::Metrics,
    redis::ReadError as EndError,
    redis::{
        clients::EndConnections,
        progress::{Meta, Progress, ProgressReader, Summary},
        ReadError,
    },
    resources::fixtures,
};
use futures::future::BoxFuture;
use http::Method;
use serde_json::{json, Value};
use std::sync::Mutex;

const JOBS: &str = "/apis/wordcount.dev/v1alpha1/namespaces/ns1/wordcountjobs";
const PODS: &str = "/api/v1/namespaces/ns1/pods";
const CORE_EVENTS: &str = "/api/v1/namespaces/ns1/events";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/ns1/events";

/// Redis as the tests want it: absent (unreachable) or holding `Progress`.
#[derive(Default)]
struct FakeRedis {
    progress: Mutex<Option<Progress>>,
    endpoints: Mutex<Vec<Endpoint>>,
    /// The addresses of each `EndConnections::end` call.
    ended: Mutex<Vec<Vec<String>>>,
}

impl ProgressReader for FakeRedis {
    fn read<'a>(&'a self, ep: &'a Endpoint) -> BoxFuture<'a, Result<Progress, ReadError>> {
        self.endpoints.lock().unwrap().push(ep.clone());
        let p = self.progress.lock().unwrap().clone();
        Box::pin(async move {
            p.ok_or_else(|| ReadError::Unreachable {
                addr: format!("{}:{}", ep.host, ep.port),
                reason: "connection refused".into(),
            })
        })
    }
}

impl EndConnections for FakeRedis {
    fn end<'a>(
        &'a self,
        _ep: &'a Endpoint,
        ips: &'a [String],
    ) -> BoxFuture<'a, Result<usize, EndError>> {
        self.ended.lock().unwrap().push(ips.to_vec());
        Box::pin(async move { Ok(ips.len()) })
    }
}

struct Harness {
    api: FakeApiServer,
    redis: Arc<FakeRedis>,
    ctx: Arc<Context>,
}

impl Harness {
    fn new(job: &WordCountJob) -> Self {
        Self::with_redisraft_image(job, None)
    }

    /// With the operator's `--redisraft-image`.
    fn with_redisraft_image(job: &WordCountJob, image: Option<&str>) -> Self {
        let (api, client) = FakeApiServer::start();
        let redis = Arc::new(FakeRedis::default());
        let ctx = Arc::new(
            Context::new(client, redis.clone(), Arc::new(Metrics::default()))
                .with_connections(redis.clone())
                .with_redisraft_image(image.map(str::to_string)),
        );
        api.put(
            &format!("{JOBS}/{}", job.name_any()),
            serde_json::to_value(job).unwrap(),
        );
        api.set_list(PODS, vec![]);
        api.set_list(CORE_EVENTS, vec![]);
        Self { api, redis, ctx }
    }

    async fn reconcile(&self, job: &WordCountJob) -> Action {
        reconcile(Arc::new(job.clone()), self.ctx.clone())
            .await
            .expect("reconcile")
    }

    fn stored_job(&self, name: &str) -> WordCountJob {
        serde_json::from_value(self.api.get(&format!("{JOBS}/{name}")).unwrap()).unwrap()
    }

    fn applies(&self) -> Vec<Recorded> {
        self.api
            .requests()
            .into_iter()
            .filter(|r| r.method == Method::PATCH && !r.path.ends_with("/status"))
            .collect()
    }

    fn events(&self) -> Vec<Value> {
        self.api
            .requests()
            .into_iter()
            .filter(|r| r.method == Method::POST && r.path == EVENTS)
            .map(|r| r.body)
            .collect()
    }

    fn deletes(&self) -> Vec<String> {
        self.api
            .requests()
            .into_iter()
            .filter(|r| r.method == Method::DELETE)
            .map(|r| r.path)
            .collect()
    }
}

fn condition<'a>(status: &'a WordCountJobStatus, type_: &str) -> (&'a str, &'a str) {
    let c = status::find(status, type_).unwrap();
    (c.status.as_str(), c.reason.as_str())
}

#[tokio::test]
async fn fresh_job_gets_owned_children_and_a_pending_status() {
    let job = fixtures::synthetic("demo");
    let h = Harness::new(&job);
    let action = h.reconcile(&job).await;

    let applied: Vec<(String, String)> = h
        .applies()
        .iter()
        .map(|r| {
            (
                r.body["kind"].as_str().unwrap().to_string(),
                r.body["metadata"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected = [
        ("Secret", "demo-redis-auth"),
        ("PersistentVolumeClaim", "demo-redis-data"),
        ("Deployment", "demo-redis"),
        ("Service", "demo-redis"),
        ("PersistentVolumeClaim", "demo-input"),
        ("Job", "demo-driver"),
        ("Job", "demo-workers"),
        ("NetworkPolicy", "demo-redis-ingress"),
    ];
    assert_eq!(
        applied,
        expected.map(|(k, n)| (k.to_string(), n.to_string())),
        "children in dependency order"
    );
    for r in h.applies() {
        assert!(
            r.query.contains("fieldManager=wordcount-operator") && r.query.contains("force=true"),
            "{}",
            r.query
        );
        let owner = &r.body["metadata"]["ownerReferences"][0];
        assert_eq!(owner["uid"], "uid-demo", "{} owned by the job", r.path);
        assert_eq!(owner["controller"], true);
    }

    // Redis was looked for at its Service, with the Secret's password.
    let secret = &h.applies()[0].body;
    let endpoint = h.redis.endpoints.lock().unwrap()[0].clone();
    assert_eq!(endpoint.host, "demo-redis.ns1.svc");
    let stored: k8s_openapi::ByteString =
        serde_json::from_value(secret["data"]["password"].clone()).unwrap();
    assert_eq!(stored.0, endpoint.password.as_bytes());

    let status = h.stored_job("demo").status.unwrap();
    assert_eq!(status.phase, Some(Phase::Pending));
    assert_eq!(
        condition(&status, status::READY),
        ("False", "RedisUnreachable")
    );
    assert_eq!(status.observed_generation, Some(1));
    assert_eq!(h.events().len(), 1);
    assert_eq!(h.events()[0]["reason"], "Pending");
    assert_eq!(action, Action::requeue(POLL_REDIS_DOWN));
}

#[tokio::test]
async fn the_password_is_chosen_once() {
    let job = fixtures::synthetic("demo");
    let h = Harness::new(&job);
    h.reconcile(&job).await;
    let first = h.applies()[0].body["data"]["password"].clone();
    h.api.clear_requests();
    h.reconcile(&job).await;
    let second = h.applies()[0].body["data"]["password"].clone();
    assert_eq!(first, second);
    // No second Pending event: the phase did not change.
    assert!(h.events().is_empty());
}

#[tokio::test]
async fn host_path_input_needs_no_claim() {
    let job = fixtures::job(
        "books",
        Input::HostPath(HostPathInput {
            path: "/data/books".into(),
        }),
    );
    let h = Harness::new(&job);
    h.reconcile(&job).await;
    let claims: Vec<_> = h
        .applies()
        .into_iter()
        .filter(|r| r.body["kind"] == "PersistentVolumeClaim")
        .map(|r| r.body["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(claims, ["books-redis-data"]);
}

#[tokio::test]
async fn operator_images_fill_in_what_the_spec_leaves_out() {
    let job = fixtures::synthetic("demo");
    let (api, client) = FakeApiServer::start();
    api.put(&format!("{JOBS}/demo"), serde_json::to_value(&job).unwrap());
    api.set_list(PODS, vec![]);
    let ctx = Context::new(
        client,
        Arc::new(FakeRedis::default()),
        Arc::new(Metrics::default()),
    )
    .with_images("registry.example/wordcount:1.2".into(), None);
    reconcile(Arc::new(job), Arc::new(ctx)).await.unwrap();
    let images: Vec<String> = api
        .requests()
        .iter()
        .filter(|r| r.method == Method::PATCH)
        .flat_map(|r| {
            let pod = r.body["spec"]["template"]["spec"].clone();
            let mut all = vec![];
            for list in ["initContainers", "containers"] {
                for c in pod[list].as_array().cloned().unwrap_or_default() {
                    all.push(c["image"].as_str().unwrap().to_string());
                }
            }
            all
        })
        .collect();
    // Redis, the generator, the driver and the workers.
    assert_eq!(images.len(), 4);
    assert!(
        images.iter().all(|i| i == "registry.example/wordcount:1.2"),
        "{images:?}"
    );
}

#[tokio::test]
async fn deleted_job_is_left_alone() {
    let job = fixtures::synthetic("gone");
    let h = Harness::new(&job);
    let other = fixtures::synthetic("other");
    // Reconcile a job the API server no longer has.
    let action = h.reconcile(&other).await;
    assert_eq!(action, Action::await_change());
    assert!(h.applies().is_empty());
}

fn started(ms_ago: i64, files_done: i64) -> Progress {
    Progress {
        meta: Some(Meta {
            files: Some(8),
            enqueue_done: true,
            started_ms: Some(Timestamp::now().as_millisecond() - ms_ago),
        }),
        files_done,
        ..Progress::default()
    }
}

fn pod(name: &str, component: &str, phase: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "ns1", "labels": {
            "wordcount.dev/job": "demo", "app.kubernetes.io/component": component}},
        "spec": {"containers": [{"name": "c"}]},
        "status": {"phase": phase}
    })
}

#[tokio::test]
async fn pod_kills_follow_the_schedule_and_stop_at_max() {
    let mut job = fixtures::synthetic("demo");
    job.spec.faults = Some(crate::crd::Faults {
        pod_kills: Some(PodKills {
            target: PodKillTarget::Worker,
            every: "10s".parse().unwrap(),
            after: "0s".parse().unwrap(),
            max_kills: 2,
        }),
        ..Default::default()
    });
    let h = Harness::new(&job);
    *h.redis.progress.lock().unwrap() = Some(started(60_000, 2));
    h.api.set_list(
        PODS,
        vec![
            pod("demo-workers-0-aaaaa", "worker", "Running"),
            pod("demo-workers-1-bbbbb", "worker", "Pending"),
            pod("demo-redis-xyz", "redis", "Running"),
            pod("demo-driver-ccccc", "driver", "Running"),
        ],
    );

    // Started a minute ago: the first kill is overdue. The only running
    // worker is the victim; Redis and the driver are not targets.
    h.reconcile(&job).await;
    assert_eq!(h.deletes(), [format!("{PODS}/demo-workers-0-aaaaa")]);
    let status = h.stored_job("demo").status.unwrap();
    assert_eq!(status.phase, Some(Phase::Running));
    assert_eq!(status.faults_injected, 1);
    assert_eq!(status.faults[0].kind, FaultKind::PodKill);
    assert_eq!(status.faults[0].target, "demo-workers-0-aaaaa");
    assert!(h.events().iter().any(|e| e["reason"] == "PodKilled"));

    // The next kill is due too (start + 10 s), but there is no running
    // worker: nothing is deleted and nothing is counted.
    h.api.clear_requests();
    h.reconcile(&job).await;
    assert!(h.deletes().is_empty());
    assert_eq!(h.stored_job("demo").status.unwrap().faults_injected, 1);

    // A replacement runs: the second kill happens, then no more (max 2).
    h.api
        .set_list(PODS, vec![pod("demo-workers-0-ddddd", "worker", "Running")]);
    h.reconcile(&job).await;
    assert_eq!(h.deletes(), [format!("{PODS}/demo-workers-0-ddddd")]);
    h.api
        .set_list(PODS, vec![pod("demo-workers-0-eeeee", "worker", "Running")]);
    h.api.clear_requests();
    h.reconcile(&job).await;
    assert!(h.deletes().is_empty());
    let status = h.stored_job("demo").status.unwrap();
    assert_eq!(status.faults_injected, 2);
    let killed: Vec<_> = status.faults.iter().map(|f| f.target.as_str()).collect();
    assert_eq!(killed, ["demo-workers-0-aaaaa", "demo-workers-0-ddddd"]);
}

#[tokio::test]
async fn no_kills_before_the_job_runs() {
    let mut job = fixtures::synthetic("demo");
    job.spec.faults = Some(crate::crd::Faults {
        pod_kills: Some(PodKills {
            target: PodKillTarget::Redis,
            every: "1s".parse().unwrap(),
            after: "0s".parse().unwrap(),
            max_kills: 5,
        }),
        ..Default::default()
    });
    let h = Harness::new(&job);
    h.api
        .set_list(PODS, vec![pod("demo-redis-xyz", "redis", "Running")]);
    // Redis up but the driver has not started: Pending, no kill.
    *h.redis.progress.lock().unwrap() = Some(Progress::default());
    h.reconcile(&job).await;
    assert!(h.deletes().is_empty());
    assert_eq!(
        h.stored_job("demo").status.unwrap().phase,
        Some(Phase::Pending)
    );
}

#[tokio::test]
async fn finished_driver_and_summary_make_the_job_succeed() {
    let job = fixtures::synthetic("demo");
    let h = Harness::new(&job);
    let mut p = started(30_000, 8);
    p.summary = Some(Summary {
        words: 32768,
        distinct: 100,
        top: vec![crate::crd::WordCount {
            word: "w1".into(),
            count: 4000,
        }],
        seconds: 29.5,
        output: None,
    });
    p.faults.insert(
        "worker=1,crash=after-read".into(),
        Timestamp::now().as_millisecond() - 20_000,
    );
    *h.redis.progress.lock().unwrap() = Some(p);
    h.api.set_status(
        "/apis/batch/v1/namespaces/ns1/jobs/demo-driver",
        json!({"conditions": [{"type": "Complete", "status": "True"}],
               "completionTime": "2025-01-01T00:00:30Z", "succeeded": 1}),
    );
    let action = h.reconcile(&job).await;
    let status = h.stored_job("demo").status.unwrap();
    assert_eq!(status.phase, Some(Phase::Succeeded));
    assert_eq!(condition(&status, status::COMPLETE), ("True", "Succeeded"));
    assert_eq!(condition(&status, status::READY), ("True", "RedisReady"));
    assert_eq!(status.top_words[0].word, "w1");
    assert_eq!(status.progress.as_deref(), Some("8/8"));
    let reasons: Vec<_> = h
        .events()
        .iter()
        .map(|e| e["reason"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(reasons, ["Succeeded", "FaultInjected"]);
    assert_eq!(action, Action::requeue(POLL_FINISHED));
    // It lets go at once: Redis scaled to zero, the workers' Job (not
    // finished by itself) suspended, the driver's (complete) left alone.
    assert_eq!(h.api.get(DEPLOYMENT).unwrap()["spec"]["replicas"], 0);
    assert_eq!(h.api.get(WORKERS).unwrap()["spec"]["suspend"], true);
    assert_eq!(h.api.get(DRIVER).unwrap()["spec"]["suspend"], Value::Null);
    // The Redis data volume stays.
    assert!(!h
        .deletes()
        .iter()
        .any(|d| d.contains("persistentvolumeclaims")));

    // Later reconciles leave the final status as it is, whatever Redis says.
    *h.redis.progress.lock().unwrap() = None;
    h.api.clear_requests();
    h.reconcile(&job).await;
    assert_eq!(h.stored_job("demo").status.unwrap(), status);
    assert!(h.events().is_empty());
}

const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/ns1/deployments/demo-redis";
const DRIVER: &str = "/apis/batch/v1/namespaces/ns1/jobs/demo-driver";
const WORKERS: &str = "/apis/batch/v1/namespaces/ns1/jobs/demo-workers";

/// A driver pod that exited OUTPUT, its message the driver's last words.
fn output_failed_pod(name: &str, created: &str) -> Value {
    let mut p = pod(name, "driver", "Failed");
    p["metadata"]["creationTimestamp"] = json!(created);
    p["status"]["containerStatuses"] = json!([{"name": "driver", "image": "wordcount:dev",
        "imageID": "", "ready": false, "restartCount": 0, "state": {"terminated": {
        "exitCode": wordcount_protocol::exit::OUTPUT,
        "message": "cannot write the output to s3://results/demo.txt: access denied\n"}}}]);
    p
}

/// The output's retry, as the operator carries it out: while the output is
/// unwritten Redis stays up and the driver's Job is not suspended; once
/// its Job has given up, deleting it makes the operator create it again;
/// the output written, the job succeeds and lets go.
#[tokio::test]
async fn an_unwritten_output_keeps_redis_and_a_deleted_driver_job_comes_back() {
    let job = fixtures::s3("demo");
    let h = Harness::new(&job);
    *h.redis.progress.lock().unwrap() = Some(started(30_000, 8));
    h.api.set_list(
        PODS,
        vec![output_failed_pod("demo-driver-a", "2025-01-01T00:00:10Z")],
    );
    h.api.set_status(
        DRIVER,
        json!({"conditions": [{"type": "Failed", "status": "True",
               "reason": "BackoffLimitExceeded"}], "failed": 4}),
    );
    let action = h.reconcile(&job).await;
    let status = h.stored_job("demo").status.unwrap();
    assert_eq!(status.phase, Some(Phase::Running));
    assert_eq!(
        condition(&status, status::PROGRESSING),
        ("False", status::OUTPUT_FAILED)
    );
    let message = status.message.clone().unwrap();
    assert!(
        message.contains("s3://results/demo.txt: access denied")
            && message.contains("kubectl delete job -n ns1 demo-driver"),
        "{message}"
    );
    // One warning says it; Redis is up, nothing is suspended.
    let events: Vec<_> = h
        .events()
        .iter()
        .map(|e| (e["reason"].clone(), e["type"].clone()))
        .collect();
    assert!(
        events.contains(&(json!("OutputFailed"), json!("Warning"))),
        "{events:?}"
    );
    assert_eq!(h.api.get(DEPLOYMENT).unwrap()["spec"]["replicas"], 1);
    assert_eq!(h.api.get(DRIVER).unwrap()["spec"]["suspend"], Value::Null);
    assert_eq!(h.api.get(WORKERS).unwrap()["spec"]["suspend"], Value::Null);
    assert!(action != Action::requeue(POLL_FINISHED), "{action:?}");
    // The same again: no second Event.
    h.api.clear_requests();
    h.reconcile(&job).await;
    assert!(h.events().is_empty(), "{:?}", h.events());

    // `kubectl delete job demo-driver`: the next reconcile makes it again.
    h.api.remove(DRIVER);
    h.api.set_status(DRIVER, json!({"active": 1}));
    h.api.clear_requests();
    h.reconcile(&job).await;
    assert!(
        h.applies().iter().any(|r| r.path == DRIVER),
        "the driver's Job is created again"
    );
    let status = h.stored_job("demo").status.unwrap();
    assert_eq!(
        condition(&status, status::PROGRESSING),
        ("True", status::OUTPUT_RETRYING)
    );
    assert_eq!(h.events()[0]["reason"], "OutputRetrying");

    // Its driver writes the output from the counts Redis kept.
    let mut p = started(30_000, 8);
    p.summary = Some(Summary {
        words: 100,
        distinct: 7,
        output: Some(crate::crd::OutputStatus {
            location: "s3://results/demo.txt".into(),
            words: 7,
        }),
        ..Summary::default()
    });
    *h.redis.progress.lock().unwrap() = Some(p);
    h.api.set_status(
        DRIVER,
        json!({"conditions": [{"type": "Complete", "status": "True"}], "succeeded": 1}),
    );
    h.reconcile(&job).await;
    let status = h.stored_job("demo").status.unwrap();
    assert_eq!(status.phase, Some(Phase::Succeeded));
    assert_eq!(status.output.unwrap().location, "s3://results/demo.txt");
    assert_eq!(h.api.get(DEPLOYMENT).unwrap()["spec"]["replicas"], 0);
}

fn unreadable(n: usize) -> Progress {
    let mut p = started(30_000, 8 - n as i64);
    p.files_failed = n as i64;
    for i in 0..n {
        p.failed
            .insert(format!("f{i}.bin"), "Permission denied".into());
    }
    p.summary = Some(Summary {
        words: 100,
        distinct: 10,
        ..Summary::default()
    });
    p
}

#[tokio::test]
async fn unreadable_files_fail_the_job_once_with_one_event() {
    let job = fixtures::synthetic("demo");
    let h = Harness::new(&job);
    // The summary (with failures) is seen before the driver's Job fails.
    *h.redis.progress.lock().unwrap() = Some(unreadable(2));
    h.reconcile(&job).await;
    let status = h.stored_job("demo").status.unwrap();
    assert_eq!(status.phase, Some(Phase::Failed));
    assert_eq!(
        condition(&status, status::FAILED),
        ("True", "UnreadableFiles")
    );
    assert!(status
        .message
        .as_ref()
        .unwrap()
        .contains("f0.bin: Permission denied"));
    assert_eq!(status.words, Some(100));

    // Then the driver Job fails by its pod failure policy: nothing changes.
    h.api.set_status(
        DRIVER,
        json!({"conditions": [{"type": "Failed", "status": "True", "reason": "PodFailurePolicy"}]}),
    );
    h.api.clear_requests();
    h.reconcile(&job).await;
    assert_eq!(
        h.stored_job("demo").status.unwrap().phase,
        Some(Phase::Failed)
    );
    let reasons: Vec<_> = h.events().iter().map(|e| e["reason"].clone()).collect();
    assert!(reasons.is_empty(), "{reasons:?}");
}

#[tokio::test]
async fn skipped_unreadable_files_succeed_with_a_warning() {
    let mut job = fixtures::synthetic("demo");
    job.spec.on_unreadable = wordcount_protocol::OnUnreadable::Skip;
    let h = Harness::new(&job);
    *h.redis.progress.lock().unwrap() = Some(unreadable(1));
    h.reconcile(&job).await;
    assert_eq!(
        h.stored_job("demo").status.unwrap().phase,
        Some(Phase::Succeeded)
    );
    let event = &h.events()[0];
    assert_eq!(
        (event["reason"].as_str(), event["type"].as_str()),
        (Some("Succeeded"), Some("Warning"))
    );
    assert!(event["note"].as_str().unwrap().contains("f0.bin"));
}

#[tokio::test]
async fn a_finished_job_is_deleted_after_its_ttl() {
    let mut job = fixtures::synthetic("demo");
    job.spec.ttl_seconds_after_finished = Some(60);
    let h = Harness::new(&job);
    *h.redis.progress.lock().unwrap() = Some(unreadable(0));
    // Just finished: kept, and looked at again when the TTL is up.
    let action = h.reconcile(&job).await;
    assert_eq!(
        h.stored_job("demo").status.unwrap().phase,
        Some(Phase::Succeeded)
    );
    assert!(action != Action::requeue(POLL_FINISHED), "{action:?}");
    assert!(h.deletes().is_empty());

    // Finished long ago: the whole job goes (its children by garbage collection).
    let mut old = h.stored_job("demo");
    let status = old.status.as_mut().unwrap();
    status.completion_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        "2025-01-01T00:00:00Z".parse().unwrap(),
    ));
    h.api
        .put(&format!("{JOBS}/demo"), serde_json::to_value(&old).unwrap());
    let action = h.reconcile(&old).await;
    assert_eq!(action, Action::await_change());
    assert_eq!(h.deletes(), [format!("{JOBS}/demo")]);
}

#[tokio::test]
async fn a_missing_host_path_fails_the_job_with_the_kubelets_words() {
    let job = fixtures::job(
        "demo",
        Input::HostPath(HostPathInput {
            path: "/data/nope".into(),
        }),
    );
    let h = Harness::new(&job);
    let mut driver = pod("demo-driver-aaaaa", "driver", "Pending");
    driver["status"]["conditions"] = json!([{"type": "PodScheduled", "status": "True"}]);
    driver["status"]["containerStatuses"] = json!([{"name": "driver", "image": "wordcount:dev", "imageID": "",
        "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}]);
    h.api.set_list(PODS, vec![driver]);
    h.api.set_list(
        CORE_EVENTS,
        vec![json!({"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "e1", "namespace": "ns1"},
            "involvedObject": {"kind": "Pod", "name": "demo-driver-aaaaa"},
            "reason": "FailedMount",
            "message": "MountVolume.SetUp failed for volume \"input\" : hostPath type check failed: /data/nope is not a directory"})],
    );
    h.reconcile(&job).await;
    let status = h.stored_job("demo").status.unwrap();
    assert_eq!(status.phase, Some(Phase::Failed));
    assert_eq!(
        condition(&status, status::FAILED),
        ("True", "InputUnavailable")
    );
    assert!(status
        .message
        .unwrap()
        .contains("/data/nope is not a directory"));
    let events = h.events();
    assert_eq!(
        (events[0]["reason"].as_str(), events[0]["type"].as_str()),
        (Some("Failed"), Some("Warning"))
    );
    // No pod is left waiting for a mount that never comes: both batch Jobs
    // are suspended, Redis scaled to zero.
    assert_eq!(h.api.get(DRIVER).unwrap()["spec"]["suspend"], true);
    assert_eq!(h.api.get(WORKERS).unwrap()["spec"]["suspend"], true);
    assert_eq!(h.api.get(DEPLOYMENT).unwrap()["spec"]["replicas"], 0);
    // The events were looked up for that pod only.
    let lookup = h
        .api
        .requests()
        .into_iter()
        .find(|r| r.path == CORE_EVENTS)
        .unwrap();
    assert!(
        lookup
            .query
            .contains("involvedObject.name%3Ddemo-driver-aaaaa"),
        "{}",
        lookup.query
    );
}

#[tokio::test]
async fn api_errors_surface_and_are_counted() {
    let job = fixtures::synthetic("demo");
    let (_api, client) = FakeApiServer::start();
    let ctx = Arc::new(Context::new(
        client,
        Arc::new(FakeRedis::default()),
        Arc::new(Metrics::default()),
    ));
    // Nothing stored: the job lookup says 404 and the reconcile waits, but a
    // job without a namespace is an error the policy counts.
    let mut no_ns = job.clone();
    no_ns.metadata.namespace = None;
    let err = reconcile(Arc::new(no_ns.clone()), ctx.clone())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoNamespace));
    let action = error_policy(Arc::new(no_ns), &err, ctx.clone());
    assert_eq!(action, Action::requeue(Duration::from_secs(10)));
    assert!(ctx
        .metrics
        .encode()
        .contains("wordcount_operator_reconcile_errors_total{error=\"no_namespace\"} 1"));
}

const POLICY: &str = "/apis/networking.k8s.io/v1/namespaces/ns1/networkpolicies/demo-redis-ingress";

fn with_ip(mut pod: Value, ip: &str) -> Value {
    pod["status"]["podIP"] = json!(ip);
    pod
}

fn partitioned(after: &str, duration: &str) -> WordCountJob {
    let mut job = fixtures::synthetic("demo");
    job.spec.faults = Some(crate::crd::Faults {
        partitions: vec![crate::crd::Partition {
            after: after.parse().unwrap(),
            duration: duration.parse().unwrap(),
            ..Default::default()
        }],
        ..Default::default()
    });
    job
}

#[tokio::test]
async fn a_partition_applies_its_policy_ends_worker_connections_then_lifts() {
    // Started a minute ago, cut from 0 s for an hour: in force now.
    let job = partitioned("0s", "1h");
    let h = Harness::new(&job);
    *h.redis.progress.lock().unwrap() = Some(started(60_000, 2));
    h.api.set_list(
        PODS,
        vec![
            with_ip(
                pod("demo-workers-0-aaaaa", "worker", "Running"),
                "10.244.0.5",
            ),
            with_ip(
                pod("demo-workers-1-bbbbb", "worker", "Running"),
                "10.244.0.6",
            ),
            with_ip(pod("demo-driver-ccccc", "driver", "Running"), "10.244.0.7"),
        ],
    );
    h.reconcile(&job).await;
    let policy = h.api.get(POLICY).expect("the standing NetworkPolicy");
    assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress"]));
    // Narrowed: the job's pods but its workers.
    let own = &policy["spec"]["ingress"][0]["from"][0]["podSelector"];
    assert_eq!(own["matchExpressions"][0]["operator"], "NotIn");
    assert_eq!(
        policy["metadata"]["annotations"]["wordcount.dev/partition"],
        "0"
    );
    // Only the workers' connections are ended, not the driver's.
    let ended = h.redis.ended.lock().unwrap().clone();
    assert_eq!(ended, [vec!["10.244.0.5".to_string(), "10.244.0.6".into()]]);
    let status = h.stored_job("demo").status.unwrap();
    assert_eq!(status.faults_injected, 1);
    assert_eq!(status.faults[0].kind, FaultKind::Partition);
    assert!(h.events().iter().any(|e| e["reason"] == "Partitioned"));

    // Still in force: connections that got through are ended again, but it
    // is the same partition, not a second fault.
    h.reconcile(&job).await;
    assert_eq!(h.redis.ended.lock().unwrap().len(), 2);
    assert_eq!(h.stored_job("demo").status.unwrap().faults_injected, 1);

    // The same job with a 10 s cut that is over: the policy admits the
    // workers again (the same policy; nothing is deleted).
    let mut over = partitioned("0s", "10s");
    over.status = h.stored_job("demo").status;
    h.api.put(
        &format!("{JOBS}/demo"),
        serde_json::to_value(&over).unwrap(),
    );
    h.api.clear_requests();
    h.reconcile(&over).await;
    assert!(h.deletes().is_empty());
    let policy = h.api.get(POLICY).unwrap();
    assert_eq!(
        policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchExpressions"],
        Value::Null
    );
    assert_eq!(policy["metadata"]["annotations"], Value::Null);
    assert!(h.events().iter().any(|e| e["reason"] == "PartitionLifted"));
}

fn streaming(throttled: bool, committed: i64) -> Progress {
    let mut p = started(10_000, committed);
    p.stream = Some(crate::redis::progress::StreamFigures {
        injected: 60,
        committed,
        p50_ms: 20,
        p99_ms: 900,
        throughput: 18.0,
        effective_rate: 20.0,
        lag: if throttled { 120 } else { 4 },
        pending: 3,
        throttled,
        throttled_ms: if throttled { 0 } else { 3000 },
    });
    p
}

#[tokio::test]
async fn a_stream_reports_its_latency_and_announces_throttling_once_each_way() {
    let mut job = fixtures::synthetic("demo");
    job.spec.stream = Some(
        serde_json::from_value(json!({"rate": 20, "backpressure": "Pause", "maxLag": 100}))
            .unwrap(),
    );
    let h = Harness::new(&job);
    let reasons = |h: &Harness| -> Vec<String> {
        h.events()
            .iter()
            .map(|e| e["reason"].as_str().unwrap().to_string())
            .filter(|r| r.starts_with("Throttle"))
            .collect()
    };

    *h.redis.progress.lock().unwrap() = Some(streaming(false, 40));
    let action = h.reconcile(&job).await;
    assert_eq!(action, Action::requeue(POLL_STREAM));
    // The driver's pod runs the stream's source.
    let driver = h.api.get(DRIVER).unwrap();
    let args = driver["spec"]["template"]["spec"]["containers"][0]["args"].clone();
    let args: Vec<String> = serde_json::from_value(args).unwrap();
    assert!(args.windows(2).any(|w| w == ["--rate", "20"]), "{args:?}");
    let status = h.stored_job("demo").status.unwrap();
    assert_eq!(
        status.latency,
        Some(crate::crd::Latency { p50: 20, p99: 900 })
    );
    assert_eq!(status.throughput, Some(18.0));
    assert!(reasons(&h).is_empty());

    // Throttled on two reconciles in a row: one ThrottleStarted.
    *h.redis.progress.lock().unwrap() = Some(streaming(true, 45));
    h.api.clear_requests();
    h.reconcile(&job).await;
    h.reconcile(&job).await;
    assert_eq!(reasons(&h), ["ThrottleStarted"]);
    let started = h
        .events()
        .into_iter()
        .find(|e| e["reason"] == "ThrottleStarted")
        .unwrap();
    assert_eq!(started["type"], "Warning");
    assert!(started["note"].as_str().unwrap().contains("120 waiting"));
    assert!(
        h.stored_job("demo")
            .status
            .unwrap()
            .stream
            .unwrap()
            .throttled
    );

    // Redis unreachable for a reconcile: the figures stay, no event.
    *h.redis.progress.lock().unwrap() = None;
    h.api.clear_requests();
    h.reconcile(&job).await;
    assert!(reasons(&h).is_empty());

    // Back below: one ThrottleStopped.
    *h.redis.progress.lock().unwrap() = Some(streaming(false, 55));
    h.api.clear_requests();
    h.reconcile(&job).await;
    h.reconcile(&job).await;
    assert_eq!(reasons(&h), ["ThrottleStopped"]);
}

#[tokio::test]
async fn an_autoscaled_stream_scales_its_workers_job_with_the_lag() {
    let mut job = fixtures::synthetic("demo");
    job.spec.workers = 2;
    job.spec.stream = Some(
        serde_json::from_value(json!({"rate": 50,
            "autoscale": {"minWorkers": 1, "maxWorkers": 6, "targetLag": 10}}))
        .unwrap(),
    );
    let h = Harness::new(&job);
    let scaling = |h: &Harness| -> Vec<(String, String)> {
        h.events()
            .iter()
            .filter(|e| e["action"] == "Autoscale")
            .map(|e| {
                (
                    e["reason"].as_str().unwrap().to_string(),
                    e["note"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let lag = |n: i64| {
        let mut p = streaming(false, 10);
        p.stream.as_mut().unwrap().lag = n;
        p
    };
    let workers_job = |h: &Harness| {
        let spec = h.api.get(WORKERS).unwrap()["spec"].clone();
        (spec["parallelism"].clone(), spec["completions"].clone())
    };

    // Lag 30, above the target: one more worker, the Job scaled.
    *h.redis.progress.lock().unwrap() = Some(lag(30));
    h.reconcile(&job).await;
    assert_eq!(workers_job(&h), (json!(3), json!(3)));
    assert_eq!(
        scaling(&h),
        [(
            "ScaledUp".to_string(),
            "lag 30 above the target 10: 2 -> 3 workers".to_string()
        )]
    );
    let stored = h.stored_job("demo");
    let status = stored.status.clone().unwrap();
    assert_eq!(status.autoscale.as_ref().unwrap().workers, 3);
    assert!(status.autoscale.unwrap().last_scale_time.is_some());

    // The next reconcile applies the Job as decided, not as spec.workers.
    h.api.clear_requests();
    *h.redis.progress.lock().unwrap() = Some(lag(0));
    h.reconcile(&stored).await;
    assert_eq!(workers_job(&h), (json!(3), json!(3)));
    // Lag 0, but within the cool-down and the idle spell: nothing.
    assert!(scaling(&h).is_empty());
    let status = h.stored_job("demo").status.unwrap();
    assert!(status.autoscale.unwrap().no_lag_since.is_some());
}

const STATEFUL_SET: &str = "/apis/apps/v1/namespaces/ns1/statefulsets/demo-redis";

fn raft_job(replicas: i32, kills: Option<PodKills>) -> WordCountJob {
    let mut job = fixtures::synthetic("demo");
    job.spec.redis.mode = wordcount_protocol::RedisMode::RedisRaft;
    job.spec.redis.replicas = Some(replicas);
    job.spec.faults = kills.map(|k| crate::crd::Faults {
        pod_kills: Some(k),
        ..Default::default()
    });
    job
}

fn kinds_and_names(h: &Harness) -> Vec<(String, String)> {
    h.applies()
        .iter()
        .map(|r| {
            (
                r.body["kind"].as_str().unwrap().to_string(),
                r.body["metadata"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_redisraft_job_gets_a_stateful_set_behind_a_headless_service_and_no_password() {
    let job = raft_job(5, None);
    let h = Harness::with_redisraft_image(&job, Some("reg/redisraft:1"));
    h.api
        .set_status(STATEFUL_SET, json!({"replicas": 5, "readyReplicas": 2}));
    h.reconcile(&job).await;

    let expected = [
        ("Service", "demo-redis"),
        ("StatefulSet", "demo-redis"),
        ("PersistentVolumeClaim", "demo-input"),
        ("Job", "demo-driver"),
        ("Job", "demo-workers"),
        ("NetworkPolicy", "demo-redis-ingress"),
    ];
    assert_eq!(
        kinds_and_names(&h),
        expected.map(|(k, n)| (k.to_string(), n.to_string())),
        "no Secret, no Deployment, no single data claim"
    );
    let set = h.api.get(STATEFUL_SET).unwrap();
    assert_eq!(set["spec"]["replicas"], 5);
    assert_eq!(set["spec"]["serviceName"], "demo-redis");
    assert_eq!(
        set["spec"]["volumeClaimTemplates"][0]["metadata"]["name"],
        "data"
    );
    assert_eq!(
        set["spec"]["template"]["spec"]["containers"][0]["image"], "reg/redisraft:1",
        "the operator's --redisraft-image"
    );
    assert_eq!(set["metadata"]["ownerReferences"][0]["uid"], "uid-demo");
    let service = h
        .applies()
        .into_iter()
        .find(|r| r.body["kind"] == "Service")
        .unwrap()
        .body;
    assert_eq!(service["spec"]["clusterIP"], "None");
    assert_eq!(service["spec"]["publishNotReadyAddresses"], true);

    // The driver and the workers: every replica, mode raft, no password.
    for path in [DRIVER, WORKERS] {
        let c = h.api.get(path).unwrap()["spec"]["template"]["spec"]["containers"][0].clone();
        let args: Vec<String> = serde_json::from_value(c["args"].clone()).unwrap();
        let urls = &args[args.iter().position(|a| a == "--redis").unwrap() + 1];
        assert_eq!(urls.split(',').count(), 5, "{urls}");
        assert!(
            urls.starts_with("redis://demo-redis-0.demo-redis.ns1.svc:6379,"),
            "{urls}"
        );
        assert!(
            args.windows(2).any(|w| w == ["--redis-mode", "raft"]),
            "{args:?}"
        );
        assert_eq!(c["env"], Value::Null, "no REDIS_PASSWORD");
    }

    // The operator looked for the leader among the replicas, with no password.
    let ep = h.redis.endpoints.lock().unwrap()[0].clone();
    assert_eq!(ep.replicas.len(), 5);
    assert_eq!(ep.replicas[4], "demo-redis-4.demo-redis.ns1.svc");
    assert_eq!(ep.password, "");

    // Two of five ready: no majority yet, and the status says so.
    let status = h.stored_job("demo").status.unwrap();
    let redis = status.redis.clone().unwrap();
    assert_eq!((redis.replicas, redis.ready_replicas), (5, 2));
    assert_eq!((redis.leader, redis.term), (None, None));
    assert_eq!(status.phase, Some(Phase::Pending));
    assert!(
        status
            .message
            .unwrap()
            .contains("a majority of the RedisRaft replicas"),
        "waiting for a quorum"
    );
}

#[tokio::test]
async fn a_redisraft_job_shows_its_leader_and_term_and_kills_the_leader() {
    let job = raft_job(
        3,
        Some(PodKills {
            target: PodKillTarget::RedisLeader,
            every: "5s".parse().unwrap(),
            after: "0s".parse().unwrap(),
            max_kills: 1,
        }),
    );
    let h = Harness::with_redisraft_image(&job, Some("reg/redisraft:1"));
    h.api
        .set_status(STATEFUL_SET, json!({"replicas": 3, "readyReplicas": 3}));
    let mut p = started(60_000, 2);
    p.raft = Some(crate::redis::RaftFigures {
        leader: "demo-redis-1.demo-redis.ns1.svc".into(),
        term: 4,
    });
    *h.redis.progress.lock().unwrap() = Some(p);
    h.api.set_list(
        PODS,
        vec![
            pod("demo-redis-0", "redis", "Running"),
            pod("demo-redis-1", "redis", "Running"),
            pod("demo-redis-2", "redis", "Running"),
            pod("demo-workers-0-aaaaa", "worker", "Running"),
        ],
    );
    h.reconcile(&job).await;
    // The leader's pod, and no other, is deleted.
    assert_eq!(h.deletes(), [format!("{PODS}/demo-redis-1")]);
    let status = h.stored_job("demo").status.unwrap();
    assert_eq!(status.phase, Some(Phase::Running));
    let redis = status.redis.unwrap();
    assert_eq!(
        (
            redis.replicas,
            redis.ready_replicas,
            redis.leader.as_deref(),
            redis.term
        ),
        (3, 3, Some("demo-redis-1"), Some(4))
    );
    assert_eq!(status.faults[0].target, "demo-redis-1");

    // Redis unread for a while: the last leader and term stay (Ready=False
    // says they are old), and no leader is guessed for a kill.
    *h.redis.progress.lock().unwrap() = None;
    h.reconcile(&job).await;
    let status = h.stored_job("demo").status.unwrap();
    assert_eq!(condition(&status, status::READY).0, "False");
    assert_eq!(status.redis.unwrap().term, Some(4));
}

#[tokio::test]
async fn a_redisraft_job_without_an_image_with_the_module_fails_at_once() {
    let job = raft_job(3, None);
    let h = Harness::new(&job);
    h.reconcile(&job).await;
    // Nothing is made that could only crash.
    assert!(
        !kinds_and_names(&h)
            .iter()
            .any(|(k, _)| k == "StatefulSet" || k == "Job" || k == "Service"),
        "{:?}",
        kinds_and_names(&h)
    );
    assert!(
        h.redis.endpoints.lock().unwrap().is_empty(),
        "no Redis read"
    );
    let status = h.stored_job("demo").status.unwrap();
    assert_eq!(status.phase, Some(Phase::Failed));
    assert_eq!(
        condition(&status, status::FAILED),
        ("True", "RedisRaftImageMissing")
    );
    assert!(status.message.unwrap().contains("--redisraft-image"));
}

#[tokio::test]
async fn a_finished_redisraft_job_scales_its_replicas_to_zero_and_keeps_their_volumes() {
    let job = raft_job(3, None);
    let h = Harness::with_redisraft_image(&job, Some("reg/redisraft:1"));
    let mut p = started(30_000, 8);
    p.summary = Some(Summary {
        words: 10,
        distinct: 2,
        top: vec![],
        seconds: 3.0,
        output: None,
    });
    *h.redis.progress.lock().unwrap() = Some(p);
    h.api.set_status(
        DRIVER,
        json!({"conditions": [{"type": "Complete", "status": "True"}], "succeeded": 1}),
    );
    h.reconcile(&job).await;
    assert_eq!(
        h.stored_job("demo").status.unwrap().phase,
        Some(Phase::Succeeded)
    );
    assert_eq!(h.api.get(STATEFUL_SET).unwrap()["spec"]["replicas"], 0);
    assert!(
        h.api.get(DEPLOYMENT).is_none(),
        "no Deployment in RedisRaft mode"
    );
    assert!(h.deletes().is_empty());
}

/// A site's pod of a Crdt job, at an address.
fn site_pod(name: &str, component: &str, site: usize, ip: &str) -> Value {
    let mut p = with_ip(pod(name, component, "Running"), ip);
    p["metadata"]["labels"]["wordcount.dev/site"] = json!(site.to_string());
    p
}

#[tokio::test]
async fn a_crdt_job_gets_three_sites_and_a_partition_cuts_sites_from_an_instance() {
    let mut job = fixtures::synthetic("demo");
    job.spec.redis.mode = wordcount_protocol::RedisMode::Crdt;
    job.spec.faults = Some(crate::crd::Faults {
        partitions: vec![crate::crd::Partition {
            after: "0s".parse().unwrap(),
            duration: "1h".parse().unwrap(),
            sites: vec![0, 1],
            redis: vec![2],
        }],
        ..Default::default()
    });
    let h = Harness::new(&job);
    *h.redis.progress.lock().unwrap() = Some(started(60_000, 2));
    h.api.set_list(
        PODS,
        vec![
            site_pod("demo-workers-0-a", "worker", 0, "10.244.0.5"),
            site_pod("demo-driver-1-b", "driver", 1, "10.244.0.6"),
            site_pod("demo-workers-2-c", "worker", 2, "10.244.0.7"),
        ],
    );
    h.reconcile(&job).await;

    // Three sites, each with its Redis, volume, Service, driver, workers
    // and policy; one Secret.
    let made = kinds_and_names(&h);
    let made: Vec<_> = made
        .into_iter()
        .filter(|(_, n)| n != "demo-input")
        .collect();
    for (kind, n) in [
        ("Deployment", 3),
        ("Service", 3),
        ("PersistentVolumeClaim", 3),
        ("NetworkPolicy", 3),
        ("Job", 6),
    ] {
        let made_of_kind = made.iter().filter(|(k, _)| k == kind).count();
        assert_eq!(made_of_kind, n, "{kind}: {made:?}");
    }
    assert_eq!(made.iter().filter(|(k, _)| k == "Secret").count(), 1);
    for name in [
        "demo-driver-2",
        "demo-workers-2",
        "demo-redis-2",
        "demo-redis-ingress-2",
    ] {
        assert!(made.iter().any(|(_, n)| n == name), "{name}: {made:?}");
    }
    // The reader is given the three instances.
    let ep = h.redis.endpoints.lock().unwrap()[0].clone();
    assert_eq!(
        ep.instances,
        [
            "demo-redis-0.ns1.svc",
            "demo-redis-1.ns1.svc",
            "demo-redis-2.ns1.svc"
        ]
    );

    // Redis 2's policy leaves out sites 0 and 1; the others admit all.
    let policy = |i: usize| {
        let path = format!(
            "/apis/networking.k8s.io/v1/namespaces/ns1/networkpolicies/demo-redis-ingress-{i}"
        );
        h.api.get(&path).unwrap()["spec"]["ingress"][0]["from"][0]["podSelector"].clone()
    };
    assert_eq!(
        policy(2)["matchExpressions"],
        json!([{"key": "wordcount.dev/site", "operator": "NotIn", "values": ["0", "1"]}])
    );
    assert_eq!(policy(0)["matchExpressions"], Value::Null);
    // The open connections of sites 0 and 1 (the driver's too) to Redis 2
    // are ended; site 2's are not.
    let ended = h.redis.ended.lock().unwrap().clone();
    assert_eq!(ended, [vec!["10.244.0.5".to_string(), "10.244.0.6".into()]]);
    let status = h.stored_job("demo").status.unwrap();
    assert_eq!(status.faults[0].kind, FaultKind::Partition);
    assert!(h.events().iter().any(|e| e["note"]
        .as_str()
        .is_some_and(|n| n.contains("sites 0, 1 off from Redis instances 2"))));
}
