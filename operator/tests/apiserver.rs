//! Against a real API server (etcd, kube-apiserver, kube-controller-manager;
//! no kubelet, so pods are created but never run). Ignored by a plain
//! `cargo test`; `operator/tests/controlplane.sh` starts a control plane and
//! runs them with WORDCOUNT_KUBECONFIG pointing at it:
//!
//!   WORDCOUNT_KUBECONFIG=... cargo test -p wordcount-operator --test apiserver -- --ignored
//!
//! `helm` and `kubectl` are taken from PATH.

// A test crate: its helpers fail by panicking, as its tests do.
#![allow(clippy::unwrap_used)]

use k8s_openapi::{
    api::{
        apps::v1::{Deployment, StatefulSet},
        batch::v1::Job,
        core::v1::{Event, Namespace, PersistentVolumeClaim, Secret, Service, ServiceAccount},
        rbac::v1::{ClusterRole, ClusterRoleBinding},
    },
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    api::{ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
    runtime::wait::{await_condition, conditions},
    Api, Client, Config, Resource, ResourceExt,
};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::{
    future::Future,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};
use wordcount_operator::crd::{self, Phase, WordCountJob};

const IGNORE: &str = "needs a real API server: run operator/tests/controlplane.sh";
const MANAGER: &str = "wordcount-tests";
/// The operator's `--redisraft-image` here (no pod runs: never pulled).
const RAFT_IMAGE: &str = "wordcount-redisraft:test";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The test cluster's kubeconfig. Only WORDCOUNT_KUBECONFIG is honoured, never
/// KUBECONFIG, so these tests cannot touch a cluster of yours by accident.
fn kubeconfig() -> PathBuf {
    match std::env::var_os("WORDCOUNT_KUBECONFIG") {
        Some(p) => PathBuf::from(p),
        None => panic!("WORDCOUNT_KUBECONFIG is not set: {IGNORE}"),
    }
}

async fn client_for(path: &Path) -> Client {
    let kc = Kubeconfig::read_from(path).expect("readable kubeconfig");
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("usable kubeconfig");
    Client::try_from(config).expect("client")
}

async fn admin() -> Client {
    client_for(&kubeconfig()).await
}

/// Polls `check` until it returns Some, or fails after `secs`.
async fn eventually<T, F, Fut>(what: &str, secs: u64, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn ensure_crd(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = crd::crd();
    let name = crd.name_any();
    crds.patch(
        &name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&crd),
    )
    .await
    .expect("the CRD installs");
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(crds, &name, conditions::is_crd_established()),
    )
    .await
    .expect("the CRD is established in time")
    .unwrap();
}

async fn fresh_namespace(client: &Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    delete_namespace(client, name).await;
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    api.create(&PostParams::default(), &ns)
        .await
        .expect("namespace created");
}

/// Deletes a namespace and waits until it is gone (the namespace controller
/// empties it first).
async fn delete_namespace(client: &Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let _ = api.delete(name, &DeleteParams::default()).await;
    eventually(&format!("namespace {name} to go"), 120, || {
        let api = api.clone();
        async move { api.get_opt(name).await.unwrap().is_none().then_some(()) }
    })
    .await;
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (is it on PATH?)"));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn helm(args: &[&str]) -> Command {
    let mut c = Command::new("helm");
    c.args(args).arg("--kubeconfig").arg(kubeconfig());
    c
}

fn kubectl(args: &[&str]) -> Command {
    let mut c = Command::new("kubectl");
    c.arg("--kubeconfig").arg(kubeconfig()).args(args);
    c
}

fn chart() -> String {
    repo()
        .join("charts/wordcount-operator")
        .display()
        .to_string()
}

fn api_of(client: &Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), ns, &ApiResource::erase::<WordCountJob>(&()))
}

fn job_json(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "wordcount.dev/v1alpha1", "kind": "WordCountJob",
           "metadata": {"name": name}, "spec": spec})
}

/// An S3 location in the cluster's test store, in `bucket`.
fn s3_at(bucket: &str) -> Value {
    json!({"endpoint": "http://s3.default.svc:7070", "bucket": bucket,
           "credentialsSecret": "s3-credentials"})
}

/// `object` with `field` set to `value`.
fn with(mut object: Value, field: &str, value: &str) -> Value {
    object[field] = json!(value);
    object
}

/// Creates the object; returns the API server's refusal message, or None.
async fn refusal(api: &Api<DynamicObject>, object: Value) -> Option<String> {
    let obj: DynamicObject = serde_json::from_value(object).unwrap();
    match api.create(&PostParams::default(), &obj).await {
        Ok(_) => None,
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 422, "refused as invalid: {s:?}");
            Some(s.message)
        }
        Err(e) => panic!("unexpected error: {e}"),
    }
}

#[tokio::test]
#[ignore = "needs a real API server: run operator/tests/controlplane.sh"]
async fn crd_installs_and_refuses_bad_specs() {
    let client = admin().await;
    ensure_crd(&client).await;
    let ns = "wc-test-crd";
    fresh_namespace(&client, ns).await;
    let api = api_of(&client, ns);
    let input = json!({"synthetic": {"files": 2, "bytesPerFile": 100}});

    let msg = refusal(
        &api,
        job_json("zero", json!({"input": input, "workers": 0})),
    )
    .await;
    let msg = msg.expect("workers: 0 is refused");
    assert!(
        msg.contains("spec.workers") && msg.contains("greater than or equal to 1"),
        "{msg}"
    );

    for (field, spec) in [
        (
            "spec.tokenizer",
            json!({"input": input, "tokenizer": "bogus"}),
        ),
        (
            "spec.commit",
            json!({"input": input, "commit": "sometimes"}),
        ),
        (
            "spec.redis.mode",
            json!({"input": input, "redis": {"mode": "Raft"}}),
        ),
        (
            "spec.claimTimeout",
            json!({"input": input, "claimTimeout": "5 minutes"}),
        ),
        // A claim timeout of 0 would steal every file at once: the
        // driver's --claim-timeout refuses it too.
        (
            "spec.claimTimeout",
            json!({"input": input, "claimTimeout": "0s"}),
        ),
        (
            "spec.faults.podKills.every",
            json!({"input": input, "faults": {"podKills": {"target": "worker", "every": "-1s"}}}),
        ),
        (
            "spec.faults.podKills.target",
            json!({"input": input, "faults": {"podKills": {"target": "driver", "every": "1s"}}}),
        ),
        // Files count from 1, as the workers have it (the contract crate).
        (
            "spec.faults.crashes[0].file",
            json!({"input": input, "faults": {"crashes": [{"worker": 0, "point": "after-read", "file": 0}]}}),
        ),
        (
            "spec.faults.stragglers[0].slowFactor",
            json!({"input": input, "faults": {"stragglers": [{"worker": 0, "slowFactor": 1000.5}]}}),
        ),
        (
            "spec.onUnreadable",
            json!({"input": input, "onUnreadable": "Sometimes"}),
        ),
        (
            "spec.ttlSecondsAfterFinished",
            json!({"input": input, "ttlSecondsAfterFinished": -1}),
        ),
        (
            "spec.stream.backpressure",
            json!({"input": input, "stream": {"rate": 1, "backpressure": "pause"}}),
        ),
        (
            "spec.stream.maxLag",
            json!({"input": input, "stream": {"rate": 1, "maxLag": 0}}),
        ),
        (
            "spec.stream.rate",
            json!({"input": input, "stream": {"rate": -1}}),
        ),
        (
            "spec.stream.duration",
            json!({"input": input, "stream": {"rate": 1, "duration": "1.5s"}}),
        ),
        (
            "spec.redis.replicas",
            json!({"input": input, "redis": {"mode": "RedisRaft", "replicas": 9}}),
        ),
        (
            "spec.redis.replicas",
            json!({"input": input, "redis": {"mode": "RedisRaft", "replicas": 1}}),
        ),
        // S3: a bucket name S3 would refuse, an endpoint that is no http(s)
        // URL or carries a password, a key with a slash at an end, a
        // Secret name that is none.
        (
            "spec.input.s3.bucket",
            json!({"input": {"s3": s3_at("My_Bucket")}}),
        ),
        (
            "spec.input.s3.bucket",
            json!({"input": {"s3": s3_at("ab")}}),
        ),
        (
            "spec.input.s3.endpoint",
            json!({"input": {"s3": with(s3_at("corpus"), "endpoint", "ftp://s3.default.svc")}}),
        ),
        (
            "spec.input.s3.endpoint",
            json!({"input": {"s3": with(s3_at("corpus"), "endpoint", "http://key:secret@s3.default.svc")}}),
        ),
        (
            "spec.input.s3.credentialsSecret",
            json!({"input": {"s3": with(s3_at("corpus"), "credentialsSecret", "S3_Keys")}}),
        ),
        (
            "spec.output.s3.key",
            json!({"input": input, "output": {"s3": with(s3_at("results"), "key", "/demo.txt")}}),
        ),
        (
            "spec.output.s3.key",
            json!({"input": input, "output": {"s3": s3_at("results")}}),
        ),
    ] {
        let msg = refusal(&api, job_json("bad", spec)).await;
        let msg = msg.unwrap_or_else(|| panic!("a bad {field} is refused"));
        assert!(msg.contains(field), "{field}: {msg}");
    }

    // Rules spanning fields (CEL), with their messages.
    let msg = refusal(
        &api,
        job_json(
            "crash",
            json!({"input": input, "workers": 2,
                   "faults": {"crashes": [{"worker": 2, "point": "after-read"}]}}),
        ),
    )
    .await
    .expect("a crash of a worker that does not exist is refused");
    assert!(
        msg.contains("spec.faults.crashes") && msg.contains("must be less than workers"),
        "{msg}"
    );
    let msg = refusal(
        &api,
        job_json(
            "two",
            json!({"input": {"hostPath": {"path": "/d"}, "pvc": {"claimName": "c"}}}),
        ),
    )
    .await
    .expect("two inputs are refused");
    assert!(msg.contains("spec.input"), "{msg}");
    for (stream, message) in [
        (json!({"rate": 0}), "stream.rate must be greater than 0"),
        (
            json!({"rate": 1, "duration": "0s"}),
            "stream.duration must be greater than 0",
        ),
        (
            json!({"rate": 1, "tick": "2m"}),
            "stream.tick must be from 10ms to 1m",
        ),
        (
            json!({"rate": 1, "duration": "1s", "tick": "2s"}),
            "stream.tick must not be longer than stream.duration",
        ),
        (
            json!({"rate": 1, "autoscale": {"minWorkers": 3, "maxWorkers": 2}}),
            "stream.autoscale.minWorkers must not be more than maxWorkers",
        ),
        (
            json!({"rate": 1, "autoscale": {"minWorkers": 4, "maxWorkers": 6}}),
            "workers must be from stream.autoscale.minWorkers to maxWorkers",
        ),
    ] {
        let msg = refusal(
            &api,
            job_json("stream", json!({"input": input, "stream": stream})),
        )
        .await
        .unwrap_or_else(|| panic!("{stream} is refused"));
        // Named at the field the rule points to: the stream's, or
        // spec.workers for the workers outside the autoscaler's bounds.
        let field = if message.starts_with("workers") {
            "spec.workers"
        } else {
            "spec.stream"
        };
        assert!(
            msg.contains(field) && msg.contains(message),
            "{stream}: {msg}"
        );
    }
    // RedisRaft's replicas: odd, for RedisRaft only; its leader, likewise.
    for (spec, message) in [
        (
            json!({"input": input, "redis": {"mode": "RedisRaft", "replicas": 4}}),
            "redis.replicas must be odd",
        ),
        (
            json!({"input": input, "redis": {"replicas": 3}}),
            "redis.replicas is for mode RedisRaft",
        ),
        (
            json!({"input": input, "faults": {"podKills": {"target": "redis-leader", "every": "5s"}}}),
            "redis-leader needs redis.mode RedisRaft",
        ),
        (
            json!({"input": input, "redis": {"mode": "Crdt"}, "stream": {"rate": 5}}),
            "stream is not supported with redis.mode Crdt",
        ),
        (
            json!({"input": input, "faults": {"partitions": [{"after": "1s", "duration": "1s", "sites": [0]}]}}),
            "sites and redis are for redis.mode Crdt",
        ),
    ] {
        let msg = refusal(&api, job_json("raft", spec.clone()))
            .await
            .unwrap_or_else(|| panic!("{spec} is refused"));
        assert!(
            msg.contains("spec.") && msg.contains(message),
            "{spec}: {msg}"
        );
    }
    // S3 input and output with two sets of keys: a pod has one.
    let msg = refusal(
        &api,
        job_json(
            "s3-two",
            json!({"input": {"s3": s3_at("corpus")},
                   "output": {"s3": with(with(s3_at("results"), "key", "demo.txt"),
                                         "credentialsSecret", "other-credentials")}}),
        ),
    )
    .await
    .expect("two credentials Secrets are refused");
    assert!(
        msg.contains("spec.output.s3")
            && msg.contains("the same endpoint, region and credentialsSecret as input.s3"),
        "{msg}"
    );
    let msg = refusal(
        &api,
        job_json(
            "s3-four",
            json!({"input": {"s3": s3_at("corpus"), "pvc": {"claimName": "c"}}}),
        ),
    )
    .await
    .expect("s3 and a pvc are refused");
    assert!(msg.contains("spec.input"), "{msg}");
    // The same keys, one region named and one left out: the API server's
    // default makes them equal.
    let s3_job = json!({"input": {"s3": with(s3_at("corpus"), "region", "us-east-1")},
                        "output": {"s3": with(s3_at("results"), "key", "demo.txt")}});
    assert_eq!(refusal(&api, job_json("s3-ok", s3_job)).await, None);
    let stored = Api::<WordCountJob>::namespaced(client.clone(), ns)
        .get("s3-ok")
        .await
        .unwrap();
    assert_eq!(stored.spec.s3_output().unwrap().region, "us-east-1");
    assert_eq!(stored.spec.s3_input().unwrap().url(), "s3://corpus");

    let raft = json!({"input": input, "redis": {"mode": "RedisRaft", "replicas": 5},
                      "faults": {"podKills": {"target": "redis-leader", "every": "5s"}}});
    assert_eq!(refusal(&api, job_json("raft5", raft)).await, None);
    let crdt = json!({"input": input, "redis": {"mode": "Crdt"}, "faults": {"partitions": [
        {"after": "1s", "duration": "2s", "sites": [0, 1], "redis": [2]}]}});
    assert_eq!(refusal(&api, job_json("crdt", crdt)).await, None);
    let stored = Api::<WordCountJob>::namespaced(client.clone(), ns)
        .get("raft5")
        .await
        .unwrap();
    assert_eq!(stored.spec.raft_replicas(), Some(5));

    let msg = refusal(&api, job_json("9lives", json!({"input": input})))
        .await
        .expect("a name that makes bad child names is refused");
    assert!(
        msg.contains("metadata.name must be a lowercase DNS label"),
        "{msg}"
    );

    // A good job is accepted, with defaults filled in, and its spec is frozen.
    let good = refusal(&api, job_json("good", json!({"input": input}))).await;
    assert_eq!(good, None);
    let jobs: Api<WordCountJob> = Api::namespaced(client.clone(), ns);
    let stored = jobs.get("good").await.unwrap();
    assert_eq!(stored.spec.workers, 3);
    assert_eq!(
        stored.spec.redis.mode,
        wordcount_protocol::RedisMode::Snapshot
    );
    assert_eq!(
        stored.spec.on_unreadable,
        wordcount_protocol::OnUnreadable::Fail
    );
    // A stream's defaults, applied by the API server.
    let stream = json!({"input": input, "stream": {"rate": 2.5}});
    assert_eq!(refusal(&api, job_json("rate-only", stream)).await, None);
    let s = jobs.get("rate-only").await.unwrap().spec.stream.unwrap();
    assert_eq!(
        (
            s.rate,
            s.tick.to_string(),
            s.backpressure,
            s.max_lag,
            s.duration
        ),
        (
            2.5,
            "1s".into(),
            wordcount_protocol::Backpressure::None,
            100,
            None
        )
    );
    let change = Patch::Merge(json!({"spec": {"workers": 5}}));
    match jobs.patch("good", &PatchParams::default(), &change).await {
        Err(kube::Error::Api(s)) => {
            assert!(s.message.contains("spec is immutable"), "{}", s.message)
        }
        other => panic!("changing the spec must be refused, got {other:?}"),
    }

    // Every example is a valid job (server-side dry run).
    for entry in std::fs::read_dir(repo().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for document in serde_yaml::Deserializer::from_str(&text) {
            use serde::Deserialize;
            let obj = DynamicObject::deserialize(document).unwrap();
            // What a job needs beside it (an S3 server, its keys' Secret).
            if obj.types.as_ref().is_some_and(|t| t.kind != "WordCountJob") {
                continue;
            }
            api.create(
                &PostParams {
                    dry_run: true,
                    ..Default::default()
                },
                &obj,
            )
            .await
            .unwrap_or_else(|e| panic!("{} is refused: {e}", path.display()));
        }
    }
    delete_namespace(&client, ns).await;
}

#[tokio::test]
#[ignore = "needs a real API server: run operator/tests/controlplane.sh"]
async fn chart_lints_renders_valid_objects_and_installs() {
    let client = admin().await;
    ensure_crd(&client).await;
    run(Command::new("helm").args(["lint", "--strict", &chart()]));

    // Every rendered object, in both RBAC layouts, passes the API server's
    // strict validation (unknown or mistyped fields are errors). No
    // --kube-version: our helm is stamped with the Kubernetes it is built on,
    // as upstream's, and the chart's kubeVersion constraint must accept it.
    fresh_namespace(&client, "wc-test-watched").await;
    let chart = chart();
    for extra in [
        vec![],
        vec!["--set", "watchNamespaces={wc-test-watched}"],
        vec!["--set", "view.enabled=false"],
    ] {
        let mut args = vec!["template", "wcchart", &chart, "--namespace", "default"];
        args.extend(extra.iter().copied());
        let rendered = run(Command::new("helm").args(&args));
        // The live view: served on the Service's port `view`, unless off.
        let view = !extra.contains(&"view.enabled=false");
        for part in [
            "--view-listen=0.0.0.0:8081",
            "- name: view",
            "targetPort: view",
        ] {
            assert_eq!(rendered.contains(part), view, "{part:?} with {extra:?}");
        }
        let mut apply = kubectl(&["apply", "--dry-run=server", "--validate=strict", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        apply
            .stdin
            .take()
            .unwrap()
            .write_all(rendered.as_bytes())
            .unwrap();
        let out = apply.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "rendered chart ({extra:?}) is invalid:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // A real install, all namespaces (ClusterRole). Cluster-scoped leftovers
    // of an earlier failed run would make it refuse to install.
    let ns = "wc-test-chart";
    let full = "wcchart-wordcount-operator";
    delete_namespace(&client, ns).await;
    let _ = Api::<ClusterRole>::all(client.clone())
        .delete(full, &DeleteParams::default())
        .await;
    let _ = Api::<ClusterRoleBinding>::all(client.clone())
        .delete(full, &DeleteParams::default())
        .await;
    run(&mut helm(&[
        "install",
        "wcchart",
        &chart,
        "--namespace",
        ns,
        "--create-namespace",
    ]));
    let deploy: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let d = deploy
        .get(full)
        .await
        .expect("the operator Deployment exists");
    let pod = d.spec.unwrap().template.spec.unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some(full));
    assert_eq!(
        pod.containers[0].image.as_deref(),
        Some("wordcount-operator:dev")
    );
    Api::<ServiceAccount>::namespaced(client.clone(), ns)
        .get(full)
        .await
        .unwrap();
    Api::<Service>::namespaced(client.clone(), ns)
        .get(&format!("{full}-metrics"))
        .await
        .unwrap();
    let role = Api::<ClusterRole>::all(client.clone())
        .get(full)
        .await
        .unwrap();
    assert!(role.rules.unwrap().iter().any(|r| r
        .resources
        .iter()
        .flatten()
        .any(|x| x == "wordcountjobs")));
    Api::<ClusterRoleBinding>::all(client.clone())
        .get(full)
        .await
        .unwrap();
    run(&mut helm(&[
        "uninstall",
        "wcchart",
        "--namespace",
        ns,
        "--wait",
    ]));
    assert!(Api::<ClusterRole>::all(client.clone())
        .get_opt(full)
        .await
        .unwrap()
        .is_none());
    delete_namespace(&client, ns).await;
    delete_namespace(&client, "wc-test-watched").await;
}

/// The operator binary, stopped when dropped.
struct Operator {
    child: Child,
    log: PathBuf,
    port: u16,
    /// The live view's.
    view_port: u16,
}

impl Operator {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- operator log ---\n{}", self.log());
        }
    }
}

/// A kubeconfig that acts as the chart's ServiceAccount, so the operator
/// runs with exactly the RBAC the chart grants.
fn impersonating_kubeconfig(sa_namespace: &str, sa: &str) -> PathBuf {
    let mut kc: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(kubeconfig()).unwrap()).unwrap();
    for user in kc["users"].as_sequence_mut().unwrap() {
        let u = &mut user["user"];
        u["as"] = format!("system:serviceaccount:{sa_namespace}:{sa}").into();
        u["as-groups"] = serde_yaml::to_value([
            "system:serviceaccounts",
            &format!("system:serviceaccounts:{sa_namespace}"),
            "system:authenticated",
        ])
        .unwrap();
    }
    let path = std::env::temp_dir().join(format!(
        "wordcount-operator-test-{}.kubeconfig",
        std::process::id()
    ));
    std::fs::write(&path, serde_yaml::to_string(&kc).unwrap()).unwrap();
    path
}

fn start_operator(kubeconfig: &Path, watch: &str) -> Operator {
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (port, view_port) = (free(), free());
    let log = std::env::temp_dir().join(format!(
        "wordcount-operator-test-{}.log",
        std::process::id()
    ));
    let file = std::fs::File::create(&log).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_wordcount-operator"))
        .args([
            "--namespace",
            watch,
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--view-listen",
            &format!("127.0.0.1:{view_port}"),
            "--redisraft-image",
            RAFT_IMAGE,
        ])
        .env("KUBECONFIG", kubeconfig)
        .env("RUST_LOG", "info,kube=warn")
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();
    Operator {
        child,
        log,
        port,
        view_port,
    }
}

async fn http_get(port: u16, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).await.ok()?;
    Some(out)
}

async fn reconciles(port: u16) -> u64 {
    let text = http_get(port, "/metrics").await.unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("wordcount_operator_reconciles_total "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

async fn get<K>(client: &Client, ns: &str, name: &str) -> Option<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    Api::<K>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .unwrap()
}

fn owned_by<K: Resource>(child: &K, owner: &WordCountJob) {
    let refs = child.meta().owner_references.clone().unwrap_or_default();
    let r = refs
        .iter()
        .find(|r| r.kind == "WordCountJob")
        .unwrap_or_else(|| panic!("{:?} has no WordCountJob owner", child.meta().name));
    assert_eq!(r.uid, owner.uid().unwrap());
    assert_eq!(r.controller, Some(true));
}

#[tokio::test]
#[ignore = "needs a real API server: run operator/tests/controlplane.sh"]
async fn operator_turns_a_job_into_owned_children_and_a_status() {
    let client = admin().await;
    ensure_crd(&client).await;
    let (ns, system) = ("wc-test-jobs", "wc-test-operator");
    fresh_namespace(&client, ns).await;
    delete_namespace(&client, system).await;

    // The chart's RBAC for one watched namespace (a Role there), and the
    // operator acting as the chart's ServiceAccount.
    run(&mut helm(&[
        "install",
        "wcop",
        &chart(),
        "--namespace",
        system,
        "--create-namespace",
        "--set",
        &format!("watchNamespaces={{{ns}}}"),
    ]));
    let kc = impersonating_kubeconfig(system, "wcop-wordcount-operator");
    let operator = start_operator(&kc, ns);
    eventually("the operator's /readyz", 60, || async {
        http_get(operator.port, "/readyz")
            .await
            .filter(|r| r.starts_with("HTTP/1.1 200"))
    })
    .await;

    // A synthetic job with faults.
    let jobs: Api<WordCountJob> = Api::namespaced(client.clone(), ns);
    let spec = json!({
        "input": {"synthetic": {"files": 8, "bytesPerFile": 4096, "seed": 1}},
        "workers": 3,
        "faults": {"crashes": [{"worker": 1, "point": "after-count"}],
                   "stragglers": [{"worker": 2, "slowFactor": 3.0}]}
    });
    let job: WordCountJob = serde_json::from_value(job_json("demo", spec)).unwrap();
    let job = jobs.create(&PostParams::default(), &job).await.unwrap();

    // The status: Pending (no pod runs), Redis not ready, said so.
    let status = eventually("a status for generation 1", 60, || async {
        let j = jobs.get("demo").await.unwrap();
        j.status.filter(|s| s.observed_generation == Some(1))
    })
    .await;
    assert_eq!(status.phase, Some(Phase::Pending));
    let cond = |t: &str| {
        status
            .conditions
            .iter()
            .find(|c| c.type_ == t)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        (cond("Ready").status.as_str(), cond("Ready").reason.as_str()),
        ("False", "RedisUnreachable")
    );
    assert_eq!(cond("Progressing").status, "True");
    assert_eq!(cond("Complete").status, "False");
    assert_eq!(cond("Failed").status, "False");
    assert!(status.message.unwrap().contains("Redis"));

    // Every child exists and is owned by the job.
    let secret: Secret = get(&client, ns, "demo-redis-auth").await.expect("secret");
    owned_by(&secret, &job);
    let password = secret.data.clone().unwrap()["password"].clone();
    assert_eq!(password.0.len(), 32);
    for claim in ["demo-redis-data", "demo-input"] {
        owned_by(
            &get::<PersistentVolumeClaim>(&client, ns, claim)
                .await
                .expect(claim),
            &job,
        );
    }
    let redis: Deployment = get(&client, ns, "demo-redis")
        .await
        .expect("redis deployment");
    owned_by(&redis, &job);
    let args = redis.spec.unwrap().template.spec.unwrap().containers[0]
        .args
        .clone()
        .unwrap();
    assert!(args.windows(2).any(|w| w == ["--save", "10 1"]), "{args:?}");
    owned_by(
        &get::<Service>(&client, ns, "demo-redis")
            .await
            .expect("service"),
        &job,
    );
    let driver: Job = get(&client, ns, "demo-driver").await.expect("driver job");
    owned_by(&driver, &job);
    // The API server took its pod failure policy (exit 3 fails it at once).
    let policy = driver
        .spec
        .as_ref()
        .and_then(|s| s.pod_failure_policy.clone());
    assert_eq!(
        policy.expect("a pod failure policy").rules[0].action,
        "FailJob"
    );
    // The standing NetworkPolicy in front of Redis, applied with the chart's RBAC.
    let ingress: k8s_openapi::api::networking::v1::NetworkPolicy =
        get(&client, ns, "demo-redis-ingress")
            .await
            .expect("network policy");
    owned_by(&ingress, &job);
    let driver_pod = driver.spec.unwrap().template.spec.unwrap();
    assert_eq!(driver_pod.init_containers.unwrap()[0].name, "generate");
    let workers: Job = get(&client, ns, "demo-workers").await.expect("workers job");
    owned_by(&workers, &job);
    let wspec = workers.spec.unwrap();
    assert_eq!(wspec.completion_mode.as_deref(), Some("Indexed"));
    assert_eq!((wspec.completions, wspec.parallelism), (Some(3), Some(3)));
    let wargs = wspec.template.spec.unwrap().containers[0]
        .args
        .clone()
        .unwrap();
    assert!(
        wargs
            .windows(2)
            .any(|w| w == ["--fault", "worker=1,crash=after-count,file=1"]),
        "{wargs:?}"
    );
    assert!(
        wargs
            .windows(2)
            .any(|w| w == ["--fault", "worker=2,slow=3"]),
        "{wargs:?}"
    );

    // The Job controller made the worker pods (they stay Pending).
    eventually("3 worker pods", 60, || async {
        let pods = Api::<k8s_openapi::api::core::v1::Pod>::namespaced(client.clone(), ns)
            .list(
                &ListParams::default()
                    .labels("app.kubernetes.io/component=worker,wordcount.dev/job=demo"),
            )
            .await
            .unwrap();
        (pods.items.len() == 3).then_some(())
    })
    .await;

    // An Event says the job is Pending.
    eventually("a Pending event", 30, || async {
        let events = Api::<Event>::namespaced(client.clone(), ns)
            .list(
                &ListParams::default()
                    .fields("involvedObject.kind=WordCountJob,involvedObject.name=demo"),
            )
            .await
            .unwrap();
        events
            .items
            .iter()
            .any(|e| e.reason.as_deref() == Some("Pending"))
            .then_some(())
    })
    .await;

    // More reconciles (a metadata change triggers one) keep the password.
    let before = reconciles(operator.port).await;
    jobs.patch(
        "demo",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"test/poke": "1"}}})),
    )
    .await
    .unwrap();
    eventually("another reconcile", 30, || async {
        (reconciles(operator.port).await > before).then_some(())
    })
    .await;
    let again: Secret = get(&client, ns, "demo-redis-auth").await.unwrap();
    assert_eq!(
        again.data.unwrap()["password"],
        password,
        "the password is never changed"
    );

    // kubectl shows the printer columns.
    let table = run(&mut kubectl(&["get", "wcj", "--namespace", ns]));
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "PHASE", "PROGRESS", "WORKERS", "MODE", "DURATION", "AGE"],
        "{table}"
    );
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(row[..2], ["demo", "Pending"], "{table}");
    assert!(row.contains(&"3") && row.contains(&"Snapshot"), "{table}");

    // A RedisRaft job: a StatefulSet with the operator's RedisRaft image,
    // a headless Service, a volume per replica (made by the StatefulSet
    // controller), no password; the Mode column reads RedisRaft.
    let raft: WordCountJob = serde_json::from_value(job_json(
        "raft",
        json!({"input": {"synthetic": {"files": 4, "bytesPerFile": 1024}},
               "workers": 2, "redis": {"mode": "RedisRaft", "replicas": 3}}),
    ))
    .unwrap();
    let raft = jobs.create(&PostParams::default(), &raft).await.unwrap();
    let set: StatefulSet = eventually("the RedisRaft StatefulSet", 60, || async {
        get::<StatefulSet>(&client, ns, "raft-redis").await
    })
    .await;
    owned_by(&set, &raft);
    let sspec = set.spec.clone().unwrap();
    assert_eq!(sspec.replicas, Some(3));
    assert_eq!(sspec.service_name.as_deref(), Some("raft-redis"));
    let rpod = sspec.template.spec.clone().unwrap();
    assert_eq!(rpod.containers[0].image.as_deref(), Some(RAFT_IMAGE));
    let service: Service = get(&client, ns, "raft-redis")
        .await
        .expect("headless service");
    owned_by(&service, &raft);
    let sv = service.spec.unwrap();
    assert_eq!(sv.cluster_ip.as_deref(), Some("None"));
    assert_eq!(sv.publish_not_ready_addresses, Some(true));
    let claims = eventually("a claim per replica", 60, || async {
        let list = Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns)
            .list(
                &ListParams::default()
                    .labels("app.kubernetes.io/component=redis,wordcount.dev/job=raft"),
            )
            .await
            .unwrap();
        let mut names: Vec<String> = list.items.iter().map(|c| c.name_any()).collect();
        names.sort();
        (names.len() == 3).then_some(names)
    })
    .await;
    assert_eq!(
        claims,
        [
            "data-raft-redis-0",
            "data-raft-redis-1",
            "data-raft-redis-2"
        ]
    );
    eventually("3 replica pods", 60, || async {
        let pods = Api::<k8s_openapi::api::core::v1::Pod>::namespaced(client.clone(), ns)
            .list(
                &ListParams::default()
                    .labels("app.kubernetes.io/component=redis,wordcount.dev/job=raft"),
            )
            .await
            .unwrap();
        (pods.items.len() == 3).then_some(())
    })
    .await;
    assert!(
        get::<Secret>(&client, ns, "raft-redis-auth")
            .await
            .is_none(),
        "RedisRaft has no password"
    );
    let rworkers: Job = get(&client, ns, "raft-workers").await.unwrap();
    let rargs = rworkers.spec.unwrap().template.spec.unwrap().containers[0]
        .args
        .clone()
        .unwrap();
    let urls = &rargs[rargs.iter().position(|a| a == "--redis").unwrap() + 1];
    assert_eq!(
        urls,
        &format!(
            "redis://raft-redis-0.raft-redis.{ns}.svc:6379,\
             redis://raft-redis-1.raft-redis.{ns}.svc:6379,\
             redis://raft-redis-2.raft-redis.{ns}.svc:6379"
        )
    );
    let rstatus = eventually("the RedisRaft job's status", 60, || async {
        jobs.get("raft").await.unwrap().status?.redis
    })
    .await;
    assert_eq!((rstatus.replicas, rstatus.ready_replicas), (3, 0));
    let table = run(&mut kubectl(&["get", "wcj", "raft", "--namespace", ns]));
    assert!(
        table.lines().nth(1).unwrap().contains("RedisRaft"),
        "{table}"
    );

    s3_job_reaches_its_store_with_the_keys_by_reference(&client, ns, &operator).await;

    // Deleting the job garbage-collects everything it made.
    // The live view: the index lists the job with a link to its page,
    // which is served there (with no Redis to read, it only waits).
    eventually("the job in the live view's index", 30, || async {
        let index = http_get(operator.view_port, "/").await?;
        (index.contains("<td>wc-test-jobs</td><td>demo</td><td>Pending</td>")
            && index.contains(r#"href="ns/wc-test-jobs/demo/""#))
        .then_some(())
    })
    .await;
    let page = http_get(operator.view_port, "/ns/wc-test-jobs/demo/")
        .await
        .unwrap();
    assert!(
        page.starts_with("HTTP/1.1 200") && page.contains(r#"src="view.js""#),
        "{page}"
    );
    let bare = http_get(operator.view_port, "/ns/wc-test-jobs/demo")
        .await
        .unwrap();
    assert!(
        bare.starts_with("HTTP/1.1 308") && bare.contains("location: demo/"),
        "{bare}"
    );

    jobs.delete("demo", &DeleteParams::default()).await.unwrap();
    jobs.delete("raft", &DeleteParams::default()).await.unwrap();
    // A deleted job's view goes with it.
    eventually("the deleted job's view to go", 30, || async {
        let page = http_get(operator.view_port, "/ns/wc-test-jobs/demo/").await?;
        page.starts_with("HTTP/1.1 404").then_some(())
    })
    .await;
    eventually("the children to be collected", 90, || async {
        let left = [
            get::<Secret>(&client, ns, "demo-redis-auth")
                .await
                .is_some(),
            get::<PersistentVolumeClaim>(&client, ns, "demo-redis-data")
                .await
                .is_some(),
            get::<PersistentVolumeClaim>(&client, ns, "demo-input")
                .await
                .is_some(),
            get::<Deployment>(&client, ns, "demo-redis").await.is_some(),
            get::<Service>(&client, ns, "demo-redis").await.is_some(),
            get::<Job>(&client, ns, "demo-driver").await.is_some(),
            get::<Job>(&client, ns, "demo-workers").await.is_some(),
            get::<StatefulSet>(&client, ns, "raft-redis")
                .await
                .is_some(),
            get::<Service>(&client, ns, "raft-redis").await.is_some(),
            get::<PersistentVolumeClaim>(&client, ns, "data-raft-redis-0")
                .await
                .is_some(),
        ];
        (!left.contains(&true)).then_some(())
    })
    .await;

    let metrics = http_get(operator.port, "/metrics").await.unwrap();
    assert!(
        metrics.contains("wordcount_operator_redis_unreachable_total"),
        "{metrics}"
    );
    assert!(
        !operator.log().contains("reconcile failed"),
        "{}",
        operator.log()
    );
    drop(operator);
    let _ = std::fs::remove_file(kc);
    run(&mut helm(&[
        "uninstall",
        "wcop",
        "--namespace",
        system,
        "--wait",
    ]));
    delete_namespace(&client, system).await;
    delete_namespace(&client, ns).await;
}

/// examples/s3-job.yaml and a Secret of its name (with values of this
/// run's own): no input volume or claim, the bucket as `--input` and
/// `--output`, and the keys reaching the pods as `secretKeyRef`s only:
/// their values are in nothing the operator or the Job controller makes,
/// nor in the job's status, Events or the operator's log. Then the
/// output's retry: a deleted driver's Job is made again.
async fn s3_job_reaches_its_store_with_the_keys_by_reference(
    client: &Client,
    ns: &str,
    operator: &Operator,
) {
    use wordcount_operator::resources::s3::{ACCESS_KEY_ID, SECRET_ACCESS_KEY};
    let read = |name: &str| std::fs::read_to_string(repo().join(name)).unwrap();
    let mut secret: Secret = serde_yaml::from_str(&read("examples/s3-credentials.yaml")).unwrap();
    let run = std::process::id();
    let keys = [
        format!("AKIDTEST{run}KEYID"),
        format!("never-seen-{run}-secret-access-key"),
    ];
    secret.string_data = Some(
        [ACCESS_KEY_ID, SECRET_ACCESS_KEY]
            .into_iter()
            .map(String::from)
            .zip(keys.iter().cloned())
            .collect(),
    );
    Api::<Secret>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    // Through JSON: serde_yaml wants a YAML tag for an enum (`input`).
    let yaml: Value = serde_yaml::from_str(&read("examples/s3-job.yaml")).unwrap();
    let job: WordCountJob = serde_json::from_value(yaml).unwrap();
    let jobs: Api<WordCountJob> = Api::namespaced(client.clone(), ns);
    let job = jobs.create(&PostParams::default(), &job).await.unwrap();
    let name = job.name_any();
    let (driver_name, workers_name) = (format!("{name}-driver"), format!("{name}-workers"));
    let driver: Job = eventually("the S3 job's driver", 60, || async {
        get::<Job>(client, ns, &driver_name).await
    })
    .await;
    let workers: Job = eventually("the S3 job's workers", 60, || async {
        get::<Job>(client, ns, &workers_name).await
    })
    .await;
    owned_by(&driver, &job);
    let input = ["--input", "s3://corpus/books/"];
    let output = ["--output", "s3://results/s3-books.txt"];
    for (batch, flags, writes) in [
        (&driver, vec![input, output], true),
        (&workers, vec![input], false),
    ] {
        let pod = batch.spec.clone().unwrap().template.spec.unwrap();
        assert!(
            pod.volumes.is_none() && pod.init_containers.is_none(),
            "{pod:?}"
        );
        let c = &pod.containers[0];
        assert!(c.volume_mounts.is_none());
        let args = c.args.clone().unwrap();
        for flag in flags {
            assert!(args.windows(2).any(|w| w == flag), "{args:?}");
        }
        assert_eq!(args.iter().any(|a| a == "--output"), writes, "{args:?}");
        let env = c.env.clone().unwrap();
        for key in [ACCESS_KEY_ID, SECRET_ACCESS_KEY] {
            let e = env.iter().find(|e| e.name == key).unwrap();
            assert_eq!(e.value, None, "{key} is no literal");
            let r = e.value_from.clone().unwrap().secret_key_ref.unwrap();
            assert_eq!((r.name.as_str(), r.key.as_str()), ("s3-credentials", key));
        }
        let literal = |n: &str| {
            env.iter()
                .find(|e| e.name == n)
                .and_then(|e| e.value.clone())
        };
        assert_eq!(
            literal("AWS_ENDPOINT_URL").as_deref(),
            Some("http://s3.default.svc:7070")
        );
        assert_eq!(literal("AWS_REGION").as_deref(), Some("us-east-1"));
        assert_eq!(literal("AWS_ALLOW_HTTP").as_deref(), Some("true"));
    }
    assert!(
        get::<PersistentVolumeClaim>(client, ns, &format!("{name}-input"))
            .await
            .is_none(),
        "no input claim for S3"
    );

    // The pods the Job controller made from them: a driver and 2 workers.
    let pods = eventually("the S3 job's pods", 60, || async {
        let pods = Api::<k8s_openapi::api::core::v1::Pod>::namespaced(client.clone(), ns)
            .list(&ListParams::default().labels(&format!("wordcount.dev/job={name}")))
            .await
            .unwrap();
        (pods.items.len() >= 3).then_some(pods.items)
    })
    .await;
    let status = eventually("the S3 job's status", 60, || async {
        jobs.get(&name).await.unwrap().status
    })
    .await;
    let events = Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default().fields(&format!("involvedObject.name={name}")))
        .await
        .unwrap();
    let seen = format!(
        "{}{}",
        serde_json::to_string(&(&driver, &workers, &pods, &status, &events.items)).unwrap(),
        operator.log()
    );
    for key in &keys {
        assert!(!seen.contains(key.as_str()), "a key's value got out");
    }

    // `kubectl delete job s3-books-driver` (what the docs tell a user to
    // do once the driver's Job has given up on the output): the operator
    // makes it again.
    let first = driver.uid().unwrap();
    Api::<Job>::namespaced(client.clone(), ns)
        .delete(&driver_name, &DeleteParams::background())
        .await
        .unwrap();
    let again = eventually("the driver's Job made again", 90, || async {
        get::<Job>(client, ns, &driver_name)
            .await
            .filter(|j| j.uid().as_deref() != Some(first.as_str()))
    })
    .await;
    owned_by(&again, &job);
    jobs.delete(&name, &DeleteParams::default()).await.unwrap();
}
