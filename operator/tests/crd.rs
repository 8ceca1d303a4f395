//! The CRD: the checked-in copies match `crdgen`, and its schema refuses bad
//! specs. CEL rules are evaluated here client-side (kube's CEL validator);
//! `tests/apiserver.rs` checks the same against a real API server.

// A test crate: its helpers fail by panicking, as its tests do.
#![allow(clippy::unwrap_used)]

use kube::core::cel::{compile_schema, Validator};
use serde::Deserialize;
use serde_json::{json, Value};
use std::path::PathBuf;
use wordcount_operator::crd;

fn repo_file(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

#[test]
fn checked_in_crd_matches_crdgen() {
    let generated = crd::crd_yaml();
    for path in [
        "crds/wordcountjob.yaml",
        "charts/wordcount-operator/crds/wordcountjob.yaml",
    ] {
        let on_disk = std::fs::read_to_string(repo_file(path)).unwrap_or_default();
        assert!(
            on_disk == generated,
            "{path} is not what crdgen prints; regenerate it:\n  \
             cargo run -p wordcount-operator --bin crdgen > crds/wordcountjob.yaml\n  \
             cp crds/wordcountjob.yaml charts/wordcount-operator/crds/wordcountjob.yaml"
        );
    }
}

fn schema() -> Value {
    let crd = crd::crd();
    let version = &crd.spec.versions[0];
    serde_json::to_value(
        version
            .schema
            .as_ref()
            .unwrap()
            .open_api_v3_schema
            .as_ref()
            .unwrap(),
    )
    .unwrap()
}

#[test]
fn names_scope_and_columns() {
    let crd = crd::crd();
    assert_eq!(
        crd.metadata.name.as_deref(),
        Some("wordcountjobs.wordcount.dev")
    );
    assert_eq!(crd.spec.scope, "Namespaced");
    assert_eq!(
        crd.spec.names.short_names.as_deref(),
        Some(&["wcj".to_string()][..])
    );
    let v = &crd.spec.versions[0];
    assert_eq!(v.name, "v1alpha1");
    assert!(v.subresources.as_ref().unwrap().status.is_some());
    let columns: Vec<_> = v
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|c| (c.name.as_str(), c.priority.unwrap_or(0)))
        .collect();
    // Where the output went, with `-o wide` only.
    assert_eq!(
        columns,
        [
            ("Phase", 0),
            ("Progress", 0),
            ("Workers", 0),
            ("Mode", 0),
            ("Duration", 0),
            ("Output", 1),
            ("Age", 0)
        ]
    );
}

#[test]
fn schema_bounds_enums_and_patterns() {
    let s = schema();
    let spec = &s["properties"]["spec"]["properties"];
    assert_eq!(spec["workers"]["minimum"], 1.0);
    assert_eq!(spec["tokenizer"]["enum"], json!(["alnum", "whitespace"]));
    assert_eq!(spec["commit"]["enum"], json!(["per-file", "per-word"]));
    assert_eq!(
        spec["redis"]["properties"]["mode"]["enum"],
        json!(["Snapshot", "RedisRaft", "Crdt"])
    );
    let replicas = &spec["redis"]["properties"]["replicas"];
    assert_eq!(
        (&replicas["minimum"], &replicas["maximum"]),
        (&json!(3.0), &json!(7.0))
    );
    let target = &spec["faults"]["properties"]["podKills"]["properties"]["target"];
    assert_eq!(target["enum"], json!(["worker", "redis", "redis-leader"]));
    for duration in [
        &spec["claimTimeout"],
        &spec["redis"]["properties"]["snapshotInterval"],
        &spec["faults"]["properties"]["podKills"]["properties"]["every"],
    ] {
        assert_eq!(duration["pattern"], wordcount_operator::duration::PATTERN);
    }
    // The API server applies these defaults, so stored objects are complete.
    assert_eq!(spec["redis"]["default"]["mode"], "Snapshot");
    assert_eq!(spec["workers"]["default"], 3);
}

#[test]
fn every_cel_rule_compiles() {
    let compiled = compile_schema(&schema());
    let errors: Vec<String> = compiled
        .compilation_errors()
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
}

fn job(spec: Value) -> Value {
    json!({
        "apiVersion": "wordcount.dev/v1alpha1",
        "kind": "WordCountJob",
        "metadata": {"name": "demo", "namespace": "default"},
        "spec": spec,
    })
}

fn synthetic() -> Value {
    json!({"synthetic": {"files": 4, "bytesPerFile": 1024}})
}

/// The messages of the CEL rules the object breaks (none when valid).
fn cel_errors(object: &Value, old: Option<&Value>) -> Vec<String> {
    match Validator::new().validate(&schema(), object, old) {
        Ok(()) => vec![],
        Err(errors) => errors.iter().map(|e| e.to_string()).collect(),
    }
}

#[test]
fn a_plain_job_passes() {
    let ok = job(json!({"input": synthetic(), "workers": 4}));
    assert_eq!(cel_errors(&ok, None), Vec::<String>::new());
    // And deserializes into the typed spec, defaults included.
    let typed: crd::WordCountJob = serde_json::from_value(ok).unwrap();
    assert_eq!(
        typed.spec.redis.mode,
        wordcount_protocol::RedisMode::Snapshot
    );
    assert_eq!(typed.spec.claim_timeout.to_string(), "30s");
}

#[test]
fn input_must_name_exactly_one_source() {
    let two = job(json!({"input": {"hostPath": {"path": "/data"}, "pvc": {"claimName": "x"}}}));
    let errors = cel_errors(&two, None);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("input must set exactly one of hostPath, pvc, synthetic, s3")),
        "{errors:?}"
    );
    let none = job(json!({"input": {}}));
    assert!(!cel_errors(&none, None).is_empty());
    let s3_and_pvc = job(json!({"input": {"pvc": {"claimName": "x"}, "s3": s3("corpus")}}));
    assert!(!cel_errors(&s3_and_pvc, None).is_empty());
}

/// An S3 location as examples/s3-job.yaml has it, in `bucket`.
fn s3(bucket: &str) -> Value {
    json!({"endpoint": "http://s3.default.svc:7070", "bucket": bucket,
           "credentialsSecret": "s3-credentials"})
}

#[test]
fn s3_fields_have_the_patterns_of_what_they_name() {
    let s = schema();
    let spec = &s["properties"]["spec"]["properties"];
    let input = &spec["input"]["properties"]["s3"];
    let output = &spec["output"]["properties"]["s3"];
    assert_eq!(input["required"], json!(["bucket", "credentialsSecret"]));
    assert_eq!(
        output["required"],
        json!(["bucket", "credentialsSecret", "key"])
    );
    for s3 in [input, output] {
        let p = &s3["properties"];
        assert_eq!(p["bucket"]["pattern"], crd::BUCKET_PATTERN);
        assert_eq!(p["endpoint"]["pattern"], crd::ENDPOINT_PATTERN);
        assert_eq!(p["credentialsSecret"]["pattern"], crd::SECRET_NAME_PATTERN);
        // The API server fills the region in, so input and output compare.
        assert_eq!(p["region"]["default"], crd::DEFAULT_REGION);
    }
    assert_eq!(output["properties"]["key"]["pattern"], crd::KEY_PATTERN);

    // What the patterns admit (the API server enforces them; the level-3
    // test checks that it does).
    let matches = |pattern: &str, text: &str| regex::Regex::new(pattern).unwrap().is_match(text);
    for good in ["abc", "corpus", "my.bucket-2", &"a".repeat(63)] {
        assert!(matches(crd::BUCKET_PATTERN, good), "{good}");
    }
    for bad in [
        "ab",
        "My-Bucket",
        "under_score",
        "-lead",
        "trail.",
        &"a".repeat(64),
        "a b",
    ] {
        assert!(!matches(crd::BUCKET_PATTERN, bad), "{bad}");
    }
    for good in [
        "http://s3.default.svc:7070",
        "https://s3.eu-west-3.amazonaws.com",
        "http://10.0.0.5:9000/",
        "https://minio.example.org/s3",
    ] {
        assert!(matches(crd::ENDPOINT_PATTERN, good), "{good}");
    }
    // Not http(s), or with a user and password in it (keys come from the
    // Secret alone).
    for bad in [
        "s3.default.svc:7070",
        "ftp://s3.example.org",
        "http://",
        "http://key:secret@s3.example.org",
        "http://s3 .example.org",
    ] {
        assert!(!matches(crd::ENDPOINT_PATTERN, bad), "{bad}");
    }
    for good in ["a", "result.txt", "runs/2025/books.txt"] {
        assert!(matches(crd::KEY_PATTERN, good), "{good}");
    }
    for bad in ["", "/result.txt", "runs/", "/"] {
        assert!(!matches(crd::KEY_PATTERN, bad), "{bad}");
    }
}

#[test]
fn s3_input_and_output_share_one_connection() {
    let with = |input: Value, output: Value| {
        job(json!({"input": {"s3": input}, "output": {"s3": output}}))
    };
    let key = |mut v: Value| {
        v["key"] = json!("demo.txt");
        v
    };
    // The same store and keys; the region left out on one side is the
    // default the other names.
    let mut regioned = key(s3("results"));
    regioned["region"] = json!(crd::DEFAULT_REGION);
    for output in [key(s3("results")), regioned] {
        let ok = with(s3("corpus"), output);
        assert_eq!(cel_errors(&ok, None), Vec::<String>::new());
    }
    let typed: crd::WordCountJob =
        serde_json::from_value(with(s3("corpus"), key(s3("results")))).unwrap();
    assert_eq!(typed.spec.s3_input().unwrap().region, crd::DEFAULT_REGION);
    assert_eq!(
        typed.spec.s3_output().unwrap().url(),
        "s3://results/demo.txt"
    );

    let message = "output.s3 must have the same endpoint, region and credentialsSecret as input.s3";
    for (field, value) in [
        ("credentialsSecret", json!("other-credentials")),
        ("endpoint", json!("http://elsewhere.default.svc:7070")),
        ("region", json!("eu-west-3")),
    ] {
        let mut output = key(s3("results"));
        output[field] = value;
        let errors = cel_errors(&with(s3("corpus"), output), None);
        assert!(
            errors.iter().any(|e| e.contains(message)),
            "{field}: {errors:?}"
        );
    }
    let mut no_endpoint = key(s3("results"));
    no_endpoint.as_object_mut().unwrap().remove("endpoint");
    let errors = cel_errors(&with(s3("corpus"), no_endpoint), None);
    assert!(errors.iter().any(|e| e.contains(message)), "{errors:?}");

    // An output with a volume input: nothing to agree with.
    let mut other = key(s3("results"));
    other["credentialsSecret"] = json!("other-credentials");
    let ok = job(json!({"input": synthetic(), "output": {"s3": other}}));
    assert_eq!(cel_errors(&ok, None), Vec::<String>::new());
    // An output names its kind.
    let errors = cel_errors(&job(json!({"input": synthetic(), "output": {}})), None);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("output must set exactly one of s3")),
        "{errors:?}"
    );
}

#[test]
fn faults_must_target_existing_workers() {
    let bad = job(json!({
        "input": synthetic(), "workers": 2,
        "faults": {"crashes": [{"worker": 2, "point": "after-read"}],
                   "stragglers": [{"worker": 5, "slowFactor": 2.0}]}
    }));
    let errors = cel_errors(&bad, None);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("faults.crashes[].worker must be less than workers")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("faults.stragglers[].worker must be less than workers")),
        "{errors:?}"
    );

    let good = job(json!({
        "input": synthetic(), "workers": 3,
        "faults": {"crashes": [{"worker": 2, "point": "after-read"}]}
    }));
    assert_eq!(cel_errors(&good, None), Vec::<String>::new());
}

#[test]
fn spec_is_immutable() {
    let old = job(json!({"input": synthetic(), "workers": 2}));
    let new = job(json!({"input": synthetic(), "workers": 3}));
    let errors = cel_errors(&new, Some(&old));
    assert!(
        errors.iter().any(|e| e.contains("spec is immutable")),
        "{errors:?}"
    );
    assert_eq!(cel_errors(&old, Some(&old)), Vec::<String>::new());
}

#[test]
fn names_must_make_valid_child_names() {
    for (name, ok) in [
        ("demo", true),
        ("a-b-9", true),
        ("9lives", false),
        ("has.dot", false),
        ("a-very-long-name-that-makes-child-names-too-long", false),
    ] {
        let mut j = job(json!({"input": synthetic()}));
        j["metadata"]["name"] = json!(name);
        let errors = cel_errors(&j, None);
        assert_eq!(errors.is_empty(), ok, "{name}: {errors:?}");
    }
}

/// A WordCountJob of examples/: it reads as the typed spec, named, and
/// passes every CEL rule.
fn check_example_job(path: &std::path::Path, value: Value) {
    let job: crd::WordCountJob =
        serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(job.metadata.name.is_some(), "{}", path.display());
    assert_eq!(
        cel_errors(&value, None),
        Vec::<String>::new(),
        "{}",
        path.display()
    );
}

#[test]
fn examples_are_valid_jobs() {
    let dir = repo_file("examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for document in serde_yaml::Deserializer::from_str(&text) {
            let value =
                Value::deserialize(document).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            // What a job needs beside it (an S3 server, its keys' Secret).
            if value["kind"] == "WordCountJob" {
                check_example_job(&path, value);
                seen += 1;
            }
        }
    }
    assert!(
        seen >= 4,
        "examples/ holds the plain, crash, straggler and pod-kill jobs"
    );
}

/// The S3 example's Secret has the two keys its job's pods get.
#[test]
fn the_s3_example_names_a_secret_with_both_keys() {
    let read = |name: &str| -> Value {
        serde_yaml::from_str(&std::fs::read_to_string(repo_file(name)).unwrap()).unwrap()
    };
    let job: crd::WordCountJob = serde_json::from_value(read("examples/s3-job.yaml")).unwrap();
    let secret = read("examples/s3-credentials.yaml");
    let input = job.spec.s3_input().unwrap();
    assert_eq!(
        secret["metadata"]["name"],
        input.credentials_secret.as_str()
    );
    for key in [
        wordcount_operator::resources::s3::ACCESS_KEY_ID,
        wordcount_operator::resources::s3::SECRET_ACCESS_KEY,
    ] {
        assert!(secret["stringData"][key].is_string(), "{key}");
    }
    assert_eq!(
        (input.url(), job.spec.s3_output().unwrap().url()),
        (
            "s3://corpus/books/".to_string(),
            format!("s3://results/{}.txt", job.metadata.name.unwrap())
        )
    );
}

#[test]
fn stream_schema_bounds_and_defaults() {
    let s = schema();
    let stream = &s["properties"]["spec"]["properties"]["stream"];
    assert_eq!(stream["required"], json!(["rate"]));
    let props = &stream["properties"];
    assert_eq!(props["rate"]["minimum"], 0.0);
    assert_eq!(props["rate"]["maximum"], crd::MAX_RATE);
    assert_eq!(props["maxLag"]["minimum"], 1.0);
    assert_eq!(props["maxLag"]["default"], 100);
    assert_eq!(props["tick"]["default"], "1s");
    // Kubernetes' spelling, like onUnreadable's; the driver gets the wire name.
    assert_eq!(
        props["backpressure"]["enum"],
        json!(["None", "Pause", "Adaptive"])
    );
    assert_eq!(props["backpressure"]["default"], "None");
    for d in ["duration", "tick"] {
        assert_eq!(
            props[d]["pattern"],
            wordcount_operator::duration::PATTERN,
            "{d}"
        );
    }
}

#[test]
fn stream_rules_refuse_what_the_driver_could_not_run() {
    let with = |stream: Value| job(json!({"input": synthetic(), "stream": stream}));
    for ok in [
        json!({"rate": 20}),
        json!({"rate": 0.5, "duration": "1m", "tick": "500ms", "backpressure": "Pause", "maxLag": 1}),
        json!({"rate": 1, "duration": "1s", "tick": "1s"}),
        json!({"rate": 1, "tick": "10ms"}),
        json!({"rate": 1, "tick": "1m"}),
    ] {
        assert_eq!(
            cel_errors(&with(ok.clone()), None),
            Vec::<String>::new(),
            "{ok}"
        );
    }
    for (bad, message) in [
        (json!({"rate": 0}), "stream.rate must be greater than 0"),
        (json!({"rate": 0.0}), "stream.rate must be greater than 0"),
        (
            json!({"rate": 1, "duration": "0s"}),
            "stream.duration must be greater than 0",
        ),
        (
            json!({"rate": 1, "tick": "5ms"}),
            "stream.tick must be from 10ms to 1m",
        ),
        (
            json!({"rate": 1, "tick": "1m1s"}),
            "stream.tick must be from 10ms to 1m",
        ),
        (
            json!({"rate": 1, "duration": "2s", "tick": "3s"}),
            "stream.tick must not be longer than stream.duration",
        ),
    ] {
        let errors = cel_errors(&with(bad.clone()), None);
        assert!(
            errors.iter().any(|e| e.contains(message)),
            "{bad}: {errors:?}"
        );
    }
}

#[test]
fn autoscale_bounds_agree_with_each_other_and_the_workers() {
    let with = |workers: i64, autoscale: Value| {
        job(json!({"input": synthetic(), "workers": workers,
                   "stream": {"rate": 5, "autoscale": autoscale}}))
    };
    let ok = with(2, json!({"minWorkers": 1, "maxWorkers": 4}));
    assert_eq!(cel_errors(&ok, None), Vec::<String>::new());
    let typed: crd::WordCountJob = serde_json::from_value(ok).unwrap();
    let autoscale = typed.spec.autoscale().unwrap();
    assert_eq!(
        (autoscale.target_lag, autoscale.cooldown.to_string()),
        (10, "15s".to_string())
    );
    for (workers, autoscale, message) in [
        (
            2,
            json!({"minWorkers": 4, "maxWorkers": 3}),
            "stream.autoscale.minWorkers must not be more than maxWorkers",
        ),
        (
            5,
            json!({"minWorkers": 1, "maxWorkers": 4}),
            "workers must be from stream.autoscale.minWorkers to maxWorkers",
        ),
        (
            1,
            json!({"minWorkers": 2, "maxWorkers": 4}),
            "workers must be from stream.autoscale.minWorkers to maxWorkers",
        ),
    ] {
        let errors = cel_errors(&with(workers, autoscale.clone()), None);
        assert!(
            errors.iter().any(|e| e.contains(message)),
            "{workers} {autoscale}: {errors:?}"
        );
    }
    let s = schema();
    let props =
        &s["properties"]["spec"]["properties"]["stream"]["properties"]["autoscale"]["properties"];
    assert_eq!(props["targetLag"]["minimum"], 1.0);
    assert_eq!(props["maxWorkers"]["maximum"], 1000.0);
}

#[test]
fn redis_raft_takes_an_odd_number_of_replicas_and_alone_has_a_leader_to_kill() {
    let with = |redis: Value, faults: Value| {
        job(json!({"input": synthetic(), "redis": redis, "faults": faults}))
    };
    for (redis, faults) in [
        (json!({"mode": "RedisRaft"}), json!({})),
        (json!({"mode": "RedisRaft", "replicas": 3}), json!({})),
        (json!({"mode": "RedisRaft", "replicas": 7}), json!({})),
        (
            json!({"mode": "RedisRaft", "replicas": 5}),
            json!({"podKills": {"target": "redis-leader", "every": "5s"}}),
        ),
        (
            json!({"mode": "RedisRaft"}),
            json!({"podKills": {"target": "redis", "every": "5s", "maxKills": 4}}),
        ),
    ] {
        let ok = with(redis.clone(), faults.clone());
        assert_eq!(
            cel_errors(&ok, None),
            Vec::<String>::new(),
            "{redis} {faults}"
        );
        let typed: crd::WordCountJob = serde_json::from_value(ok).unwrap();
        assert!(typed.spec.raft_replicas().is_some_and(|r| r % 2 == 1));
    }
    for (redis, faults, message) in [
        (
            json!({"mode": "RedisRaft", "replicas": 4}),
            json!({}),
            "redis.replicas must be odd",
        ),
        (
            json!({"mode": "Snapshot", "replicas": 3}),
            json!({}),
            "redis.replicas is for mode RedisRaft",
        ),
        (
            json!({"replicas": 3}),
            json!({}),
            "redis.replicas is for mode RedisRaft",
        ),
        (
            json!({"mode": "Snapshot"}),
            json!({"podKills": {"target": "redis-leader", "every": "5s"}}),
            "redis-leader needs redis.mode RedisRaft",
        ),
    ] {
        let errors = cel_errors(&with(redis.clone(), faults.clone()), None);
        assert!(
            errors.iter().any(|e| e.contains(message)),
            "{redis} {faults}: {errors:?}"
        );
    }
}

#[test]
fn crdt_mode_takes_partitions_of_sites_and_instances_and_refuses_what_it_cannot_do() {
    let cut =
        json!({"partitions": [{"after": "2s", "duration": "5s", "sites": [0, 1], "redis": [2]}]});
    let ok = job(json!({"input": synthetic(), "redis": {"mode": "Crdt"}, "faults": cut}));
    assert_eq!(cel_errors(&ok, None), Vec::<String>::new());
    let typed: crd::WordCountJob = serde_json::from_value(ok).unwrap();
    assert_eq!(typed.spec.crdt_sites(), Some(3));
    let p = &typed.spec.partitions()[0];
    assert!(p.cuts(1, 2) && !p.cuts(2, 2) && !p.cuts(0, 1));
    for (spec, message) in [
        (
            json!({"input": synthetic(), "faults": cut}),
            "sites and redis are for redis.mode Crdt",
        ),
        (
            json!({"input": synthetic(), "redis": {"mode": "Crdt"}, "commit": "per-word"}),
            "commit per-word cannot be used with redis.mode Crdt",
        ),
        (
            json!({"input": synthetic(), "redis": {"mode": "Crdt"}, "stream": {"rate": 5}}),
            "stream is not supported with redis.mode Crdt",
        ),
        (
            json!({"input": synthetic(), "redis": {"mode": "Crdt", "replicas": 3}}),
            "redis.replicas is for mode RedisRaft",
        ),
        (
            json!({"input": synthetic(), "redis": {"mode": "Crdt"},
                   "faults": {"podKills": {"target": "redis", "every": "5s"}}}),
            "podKills.target redis cannot be used with redis.mode Crdt",
        ),
    ] {
        let errors = cel_errors(&job(spec.clone()), None);
        assert!(
            errors.iter().any(|e| e.contains(message)),
            "{spec}: {errors:?}"
        );
    }
    // Sites and instances are 0 to 2: the schema's bounds.
    let s = schema();
    let sites = &s["properties"]["spec"]["properties"]["faults"]["properties"]["partitions"]
        ["items"]["properties"]["sites"];
    assert_eq!(
        (
            sites["items"]["minimum"].as_f64(),
            sites["items"]["maximum"].as_f64()
        ),
        (Some(0.0), Some(2.0))
    );
}

#[test]
fn the_crd_tells_where_a_redisraft_image_has_the_module() {
    let s = schema();
    let image = &s["properties"]["spec"]["properties"]["redis"]["properties"]["image"];
    let text = image["description"].as_str().unwrap();
    let module = wordcount_operator::resources::redis_raft::REDISRAFT_MODULE;
    assert!(text.contains(module), "{text}");
    // And so do the docs and the chart, where users read it.
    for doc in ["README.md", "charts/wordcount-operator/values.yaml"] {
        let text = std::fs::read_to_string(repo_file(doc)).unwrap();
        assert!(text.contains(module), "{doc} names {module}");
    }
}
