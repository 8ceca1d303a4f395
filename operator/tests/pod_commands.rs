//! The pods' commands, as the operator builds them, run as local processes:
//! the generator init container, Redis, the driver and an Indexed Job's
//! workers (restarted on failure, like the Job controller does), with the
//! volumes mapped to temporary folders and the Service to loopback. This
//! checks the contract between the operator's pod specs and the `wordcount`
//! binary where no kubelet runs. Needs `redis-server` and the `wordcount`
//! binary (WORDCOUNT_BIN, or built into the same target dir):
//!
//!   cargo build -p wordcount
//!   cargo test -p wordcount-operator --test pod_commands -- --ignored

// A test crate: its helpers fail by panicking, as its tests do.
#![allow(clippy::unwrap_used)]

use k8s_openapi::api::{batch::v1::Job, core::v1::Container};
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};
use wordcount_operator::{
    crd::{Phase, WordCountJob, WordCountJobStatus},
    redis::{
        progress::{Progress, ProgressReader, RedisReader},
        Endpoint,
    },
    resources,
    status::{self, Observed},
};

fn wordcount_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("WORDCOUNT_BIN") {
        return PathBuf::from(p);
    }
    let sibling = Path::new(env!("CARGO_BIN_EXE_wordcount-operator")).with_file_name("wordcount");
    assert!(
        sibling.exists(),
        "no wordcount binary at {}: run `cargo build -p wordcount` or set WORDCOUNT_BIN",
        sibling.display()
    );
    sibling
}

/// How a pod's view of the world maps onto this machine.
struct Local {
    input: PathBuf,
    data: PathBuf,
    /// Where Redis listens: loopback, or for a Crdt site its own loopback
    /// address (127.0.0.I+1), all on the same port as in the cluster.
    bind: String,
    port: u16,
    password: String,
    bin_dir: PathBuf,
    /// What a `secretKeyRef` of a container's environment resolves to:
    /// `(secret, key)` -> value, as the kubelet reads the Secret.
    secrets: Vec<((String, String), String)>,
}

impl Local {
    /// Empty folders under `tmp` for the volumes, and a free port.
    fn new(tmp: &Path, bin: &Path) -> Self {
        let _ = std::fs::remove_dir_all(tmp);
        let local = Local {
            input: tmp.join("input"),
            data: tmp.join("data"),
            bind: "127.0.0.1".into(),
            port: std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port(),
            password: resources::redis::new_password(),
            bin_dir: bin.parent().unwrap().to_path_buf(),
            secrets: Vec::new(),
        };
        std::fs::create_dir_all(&local.input).unwrap();
        std::fs::create_dir_all(&local.data).unwrap();
        local
    }

    /// Site `site` of a Crdt job: its own loopback address and folders.
    fn site(&self, site: usize) -> Local {
        let tmp = self.data.with_file_name(format!("site-{site}"));
        let local = Local {
            input: tmp.join("input"),
            data: tmp.join("data"),
            bind: format!("127.0.0.{}", site + 1),
            password: self.password.clone(),
            bin_dir: self.bin_dir.clone(),
            secrets: self.secrets.clone(),
            ..*self
        };
        std::fs::create_dir_all(&local.input).unwrap();
        std::fs::create_dir_all(&local.data).unwrap();
        local
    }

    /// Redis as its Deployment runs it, with the job's config file.
    fn start_redis(&self, job: &WordCountJob, site: resources::Site, procs: &mut Killed) {
        let secret = resources::redis::secret(job, &self.password);
        std::fs::write(
            self.data.join(resources::redis::CONFIG_KEY),
            &secret.data.unwrap()[resources::redis::CONFIG_KEY].0,
        )
        .unwrap();
        let redis = resources::redis::deployment(job, site, false)
            .spec
            .unwrap()
            .template
            .spec
            .unwrap()
            .containers[0]
            .clone();
        let server = self.command(&redis, &[]).stdout(Stdio::null()).spawn();
        procs
            .0
            .push(server.expect("redis-server (apt-get install redis-server)"));
        wait_for_port(&self.bind, self.port);
    }

    fn endpoint(&self) -> Endpoint {
        Endpoint {
            host: "127.0.0.1".into(),
            port: self.port,
            password: self.password.clone(),
            prefix: wordcount_protocol::DEFAULT_PREFIX.into(),
            ..Endpoint::default()
        }
    }

    /// An argument as the process here must see it: volumes and the Redis
    /// Service replaced, `$(REDIS_PASSWORD)` expanded as Kubernetes does.
    fn arg(&self, a: &str) -> String {
        if a == "/data" {
            return self.data.display().to_string();
        }
        // Redis' config file, as the Secret's volume holds it.
        if a.ends_with(resources::redis::CONFIG_KEY) {
            return self
                .data
                .join(resources::redis::CONFIG_KEY)
                .display()
                .to_string();
        }
        let mut a = a
            .replace("/input", &self.input.display().to_string())
            .replace(
                &format!("redis://demo-redis:{}", resources::REDIS_PORT),
                &format!("redis://127.0.0.1:{}", self.port),
            )
            .replace("$(REDIS_PASSWORD)", &self.password);
        // A Crdt job's instances: each site's own loopback address.
        for i in 0..3 {
            a = a.replace(
                &format!("redis://demo-redis-{i}:{}", resources::REDIS_PORT),
                &format!("redis://127.0.0.{}:{}", i + 1, self.port),
            );
        }
        a
    }

    fn command(&self, c: &Container, extra_env: &[(&str, String)]) -> Command {
        let cmd = c.command.as_ref().unwrap();
        let mut args: Vec<String> = cmd[1..]
            .iter()
            .chain(c.args.iter().flatten())
            .map(|a| self.arg(a))
            .collect();
        if cmd[0] == "redis-server" {
            // Loopback only, on a free port.
            for (flag, value) in [
                ("--port", self.port.to_string()),
                ("--bind", self.bind.clone()),
            ] {
                let i = args.iter().position(|a| a == flag).unwrap();
                args[i + 1] = value;
            }
        }
        let mut command = Command::new(&cmd[0]);
        command.args(args);
        // `wordcount` as the images have it: on PATH.
        let path = std::env::var("PATH").unwrap_or_default();
        command.env("PATH", format!("{}:{path}", self.bin_dir.display()));
        // The container's environment as the kubelet makes it: values as
        // they are, references looked up (the Redis password is the job's).
        for env in c.env.iter().flatten() {
            let secret = (env.value_from.as_ref()).and_then(|v| v.secret_key_ref.as_ref());
            if env.name == "REDIS_PASSWORD" {
                command.env("REDIS_PASSWORD", &self.password);
            } else if let Some(value) = &env.value {
                command.env(&env.name, value);
            } else if let Some(r) = secret {
                let value = (self.secrets.iter())
                    .find(|((name, key), _)| *name == r.name && *key == r.key)
                    .map(|(_, v)| v)
                    .unwrap_or_else(|| panic!("no Secret {} with key {}", r.name, r.key));
                command.env(&env.name, value);
            }
        }
        for (k, v) in extra_env {
            command.env(k, v);
        }
        command.stdin(Stdio::null());
        command
    }
}

struct Killed(Vec<Child>);

impl Drop for Killed {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn pod_containers(job: &Job) -> (Vec<Container>, Container) {
    let pod = job.spec.clone().unwrap().template.spec.unwrap();
    (
        pod.init_containers.unwrap_or_default(),
        pod.containers[0].clone(),
    )
}

/// The status the operator derives from `progress` once the driver's Job
/// is complete.
fn status_once_complete(job: &WordCountJob, progress: Progress) -> WordCountJobStatus {
    let complete: Job = serde_json::from_value(serde_json::json!({
        "status": {"conditions": [{"type": "Complete", "status": "True"}], "succeeded": 1}
    }))
    .unwrap();
    status::derive(
        job,
        &Observed {
            drivers: vec![complete],
            progress: Some(Ok(progress)),
            ..Observed::default()
        },
        k8s_openapi::jiff::Timestamp::now(),
    )
}

fn wait_for_port(host: &str, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect((host, port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not listen");
        thread::sleep(Duration::from_millis(50));
    }
}

/// Words, distinct words and the top 5 of a serial count of `dir`.
fn serial_count(bin: &Path, dir: &Path) -> (i64, i64, Vec<(String, i64)>) {
    let out = Command::new(bin)
        .args(["count", "--json", "--top", "5"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "wordcount count {}", dir.display());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let top = (v["top"].as_array().unwrap().iter())
        .map(|w| {
            (
                w["word"].as_str().unwrap().to_string(),
                w["count"].as_i64().unwrap(),
            )
        })
        .collect();
    (
        v["words"].as_i64().unwrap(),
        v["distinct"].as_i64().unwrap(),
        top,
    )
}

/// The words, distinct words and top words the status shows.
fn counted(
    summary: &wordcount_operator::redis::progress::Summary,
    status: &WordCountJobStatus,
) -> (i64, i64, Vec<(String, i64)>) {
    let top = (status.top_words.iter())
        .map(|w| (w.word.clone(), w.count))
        .collect();
    (summary.words, summary.distinct, top)
}

#[tokio::test]
#[ignore = "needs redis-server and the wordcount binary: cargo build -p wordcount, then --ignored"]
async fn pods_run_the_job_to_exact_counts() {
    let bin = wordcount_bin();
    let tmp = std::env::temp_dir().join(format!("wordcount-pods-{}", std::process::id()));
    let local = Local::new(&tmp, &bin);

    let mut job: WordCountJob = serde_json::from_value(serde_json::json!({
        "apiVersion": "wordcount.dev/v1alpha1", "kind": "WordCountJob",
        "metadata": {"name": "demo", "namespace": "ns1", "uid": "u1"},
        "spec": {
            "input": {"synthetic": {"files": 6, "bytesPerFile": 400000, "vocabulary": 300, "seed": 3}},
            "workers": 2, "topN": 5, "claimTimeout": "1s",
            // The straggler holds each file for a good fraction of a second,
            // so worker 1 surely gets a file to crash on, however late it starts.
            "faults": {"crashes": [{"worker": 1, "point": "after-count"}],
                       "stragglers": [{"worker": 0, "slowFactor": 500}]}
        }
    }))
    .unwrap();
    job.metadata.generation = Some(1);
    let driver_job = resources::driver::job(&job, None, false);
    let workers_job = resources::workers::job(&job, None, false);
    let (init, driver) = pod_containers(&driver_job);
    let (_, worker) = pod_containers(&workers_job);
    let mut procs = Killed(vec![]);

    // The driver pod's init container writes the corpus, once: a rerun (a
    // retried driver pod) must leave it alone.
    let generate = &init[0];
    assert!(
        local.command(generate, &[]).status().unwrap().success(),
        "generate"
    );
    let corpus = local.input.join("corpus");
    let files: Vec<_> = std::fs::read_dir(&corpus).unwrap().collect();
    assert_eq!(files.len(), 6);
    let first = std::fs::metadata(local.input.join(".generated"))
        .unwrap()
        .modified()
        .unwrap();
    let rerun = local.command(generate, &[]).output().unwrap();
    assert!(rerun.status.success());
    assert!(String::from_utf8_lossy(&rerun.stdout).contains("already generated"));
    assert_eq!(
        std::fs::metadata(local.input.join(".generated"))
            .unwrap()
            .modified()
            .unwrap(),
        first
    );

    // Redis as its Deployment runs it, then the driver and the workers.
    local.start_redis(&job, None, &mut procs);
    let mut driver_proc = local
        .command(&driver, &[])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();

    let limit = workers_job
        .spec
        .as_ref()
        .unwrap()
        .backoff_limit_per_index
        .unwrap();
    let supervisors: Vec<_> = (0..job.spec.workers)
        .map(|index| {
            let mut cmd = local.command(&worker, &[("JOB_COMPLETION_INDEX", index.to_string())]);
            thread::spawn(move || {
                // What the Indexed Job does: replace a failed pod of an index.
                let mut failures = 0;
                loop {
                    let status = cmd.status().unwrap();
                    if status.success() {
                        return failures;
                    }
                    failures += 1;
                    assert!(failures <= limit, "worker {index} failed {failures} times");
                }
            })
        })
        .collect();

    let deadline = Instant::now() + Duration::from_secs(120);
    let driver_status = loop {
        if let Some(s) = driver_proc.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the driver did not finish");
        thread::sleep(Duration::from_millis(100));
    };
    assert!(driver_status.success(), "driver: {driver_status}");
    let restarts: Vec<i32> = supervisors.into_iter().map(|s| s.join().unwrap()).collect();
    assert_eq!(restarts, [0, 1], "worker 1 crashed once and was replaced");

    // What the operator reads from Redis, and the status it derives.
    let progress = RedisReader::default()
        .read(&local.endpoint())
        .await
        .expect("Redis answers");
    assert_eq!(progress.meta.as_ref().unwrap().files, Some(6));
    assert_eq!(progress.files_done, 6);
    // The workers record the faults in their canonical form (file=1
    // spelled out): the crash, and the straggler at its first file.
    let fired: Vec<&String> = progress.faults.keys().collect();
    assert_eq!(fired.len(), 2, "{fired:?}");
    assert!(
        fired
            .iter()
            .any(|f| f.starts_with("worker=1,crash=after-count")),
        "{fired:?}"
    );
    assert!(fired.iter().any(|f| *f == "worker=0,slow=500"), "{fired:?}");
    let summary = progress.summary.clone().expect("a summary");

    let status = status_once_complete(&job, progress);
    assert_eq!(status.phase, Some(Phase::Succeeded));
    assert_eq!(status.progress.as_deref(), Some("6/6"));
    assert_eq!(status.faults_injected, 1);

    // The same counts as a serial count of the same files.
    assert_eq!(counted(&summary, &status), serial_count(&bin, &corpus));

    drop(procs);
    let _ = std::fs::remove_dir_all(&tmp);
}

/// A stream job's pods: the driver with the stream flags the operator
/// renders (the real `wordcount` parses them), injecting each file once at
/// the rate, with backpressure; the counts are a serial count's, and the
/// status carries the stream's latency and throughput from `P:stream`.
#[tokio::test]
#[ignore = "needs redis-server and the wordcount binary: cargo build -p wordcount, then --ignored"]
async fn a_stream_job_runs_to_exact_counts() {
    let bin = wordcount_bin();
    let tmp = std::env::temp_dir().join(format!("wordcount-stream-pods-{}", std::process::id()));
    let local = Local::new(&tmp, &bin);
    let mut job: WordCountJob = serde_json::from_value(serde_json::json!({
        "apiVersion": "wordcount.dev/v1alpha1", "kind": "WordCountJob",
        "metadata": {"name": "demo", "namespace": "ns1", "uid": "u1"},
        "spec": {
            "input": {"synthetic": {"files": 12, "bytesPerFile": 20000, "vocabulary": 200, "seed": 4}},
            "workers": 2, "topN": 5, "claimTimeout": "1s",
            // No duration: every file once, 10 a second, so about 1.2 s.
            "stream": {"rate": 10, "tick": "200ms", "backpressure": "Pause", "maxLag": 4}
        }
    }))
    .unwrap();
    job.metadata.generation = Some(1);
    let (init, driver) = pod_containers(&resources::driver::job(&job, None, false));
    let (_, worker) = pod_containers(&resources::workers::job(&job, None, false));
    assert!(driver.args.as_ref().unwrap().contains(&"--stream".into()));
    let mut procs = Killed(vec![]);
    assert!(local.command(&init[0], &[]).status().unwrap().success());
    local.start_redis(&job, None, &mut procs);

    let started = Instant::now();
    let mut driver_proc = local
        .command(&driver, &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for index in 0..job.spec.workers {
        let child = local
            .command(&worker, &[("JOB_COMPLETION_INDEX", index.to_string())])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        procs.0.push(child);
    }
    let deadline = started + Duration::from_secs(60);
    while driver_proc.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the stream's driver did not finish"
        );
        thread::sleep(Duration::from_millis(100));
    }
    let elapsed = started.elapsed();
    let out = driver_proc.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "driver: {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // 12 files at 10 a second cannot all be injected in under a second.
    assert!(elapsed >= Duration::from_millis(1000), "{elapsed:?}");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(summary.get("stream").is_some(), "{summary}");

    let progress = RedisReader::default()
        .read(&local.endpoint())
        .await
        .expect("Redis answers");
    let figures = progress.stream.clone().expect("P:stream written");
    assert_eq!((figures.injected, figures.committed), (12, 12));
    let summary = progress.summary.clone().expect("a summary");
    let status = status_once_complete(&job, progress);
    assert_eq!(status.phase, Some(Phase::Succeeded));
    let latency = status.latency.expect("a latency");
    assert!(latency.p50 <= latency.p99, "{latency:?}");
    assert!(status.throughput.is_some());
    assert_eq!(status.stream.map(|s| s.committed), Some(12));

    let (words, distinct, _) = serial_count(&bin, &local.input.join("corpus"));
    assert_eq!((summary.words, summary.distinct), (words, distinct));

    drop(procs);
    let _ = std::fs::remove_dir_all(&tmp);
}

/// A Crdt job's pods: three sites, each with its Redis (on its own
/// loopback address), its generator, its driver (`--site I`) and two
/// workers. The drivers converge the instances by themselves; the operator
/// reads all three, and the status is Succeeded with every instance
/// holding every file and a serial count's counts.
#[tokio::test]
#[ignore = "needs redis-server and the wordcount binary: cargo build -p wordcount, then --ignored"]
async fn a_crdt_jobs_three_sites_run_to_one_exact_result() {
    let bin = wordcount_bin();
    let tmp = std::env::temp_dir().join(format!("wordcount-crdt-pods-{}", std::process::id()));
    let base = Local::new(&tmp, &bin);
    let mut job: WordCountJob = serde_json::from_value(serde_json::json!({
        "apiVersion": "wordcount.dev/v1alpha1", "kind": "WordCountJob",
        "metadata": {"name": "demo", "namespace": "ns1", "uid": "u1"},
        "spec": {
            "input": {"synthetic": {"files": 10, "bytesPerFile": 30000, "vocabulary": 300, "seed": 5}},
            "workers": 2, "topN": 5, "claimTimeout": "1s",
            "redis": {"mode": "Crdt", "snapshotInterval": "1s"}
        }
    }))
    .unwrap();
    job.metadata.generation = Some(1);
    let mut procs = Killed(vec![]);
    let mut drivers = Vec::new();
    for site in resources::sites(&job) {
        let local = base.site(site.unwrap());
        let (init, driver) = pod_containers(&resources::driver::job(&job, site, false));
        let (_, worker) = pod_containers(&resources::workers::job(&job, site, false));
        assert!(local.command(&init[0], &[]).status().unwrap().success());
        local.start_redis(&job, site, &mut procs);
        drivers.push(
            local
                .command(&driver, &[])
                .stdout(Stdio::null())
                .spawn()
                .unwrap(),
        );
        for index in 0..job.spec.workers {
            let env = [("JOB_COMPLETION_INDEX", index.to_string())];
            let child = local
                .command(&worker, &env)
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            procs.0.push(child);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    for (site, driver) in drivers.iter_mut().enumerate() {
        let status = loop {
            if let Some(s) = driver.try_wait().unwrap() {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "site {site}'s driver did not finish"
            );
            thread::sleep(Duration::from_millis(100));
        };
        assert!(status.success(), "site {site}'s driver: {status}");
    }

    let endpoint = Endpoint {
        instances: (1..=3).map(|i| format!("127.0.0.{i}")).collect(),
        ..base.endpoint()
    };
    let progress = RedisReader::default()
        .read(&endpoint)
        .await
        .expect("the instances answer");
    assert_eq!(
        progress.meta.as_ref().unwrap().files,
        Some(10),
        "the sites' shares add up"
    );
    assert_eq!(progress.files_done, 10);
    let known: Vec<i64> = progress.instances.iter().map(|i| i.files_known).collect();
    assert_eq!(known, [10, 10, 10]);
    let summary = progress
        .summary
        .clone()
        .expect("every driver wrote the same result");
    let complete: Job = serde_json::from_value(serde_json::json!({
        "status": {"conditions": [{"type": "Complete", "status": "True"}], "succeeded": 1}
    }))
    .unwrap();
    let status = status::derive(
        &job,
        &Observed {
            drivers: vec![complete; 3],
            progress: Some(Ok(progress)),
            ..Observed::default()
        },
        k8s_openapi::jiff::Timestamp::now(),
    );
    assert_eq!(status.phase, Some(Phase::Succeeded));
    assert!(
        status.instances.iter().all(|i| i.converged),
        "{:?}",
        status.instances
    );

    let corpus = base.site(0).input.join("corpus-0");
    assert_eq!(counted(&summary, &status), serial_count(&bin, &corpus));

    drop(procs);
    let _ = std::fs::remove_dir_all(&tmp);
}

/// versitygw, the S3 server the store crate's tests run (built by
/// `store/versitygw.sh`): `$WORDCOUNT_VERSITYGW`, else the one cached under
/// `~/.cache/wordcount/versitygw/VERSION/`.
fn versitygw() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("WORDCOUNT_VERSITYGW").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let cache = PathBuf::from(std::env::var_os("HOME")?).join(".cache/wordcount/versitygw");
    (std::fs::read_dir(cache).ok()?.flatten())
        .map(|version| version.path().join("versitygw"))
        .find(|p| p.is_file())
}

/// An S3 job's pods against a real S3 server (versitygw serving a folder:
/// each subfolder a bucket, each file below it an object), with the
/// environment the operator renders (its keys resolved from a Secret as
/// the kubelet would): the driver and the workers read the bucket; the
/// output's bucket is missing, so the driver exits OUTPUT and the status
/// says so, Running; once the bucket is there a driver run again (the
/// Job's next pod, or the one the operator makes after the driver's Job
/// is deleted) writes the output from Redis, with a serial count's counts,
/// and the job succeeds with `status.output`.
#[tokio::test]
#[ignore = "needs redis-server, the wordcount binary and versitygw (store/versitygw.sh), then --ignored"]
async fn an_s3_jobs_pods_read_the_bucket_and_write_the_output_once_it_can() {
    let Some(server) = versitygw() else {
        eprintln!("skipped: no versitygw (store/versitygw.sh builds it)");
        return;
    };
    let bin = wordcount_bin();
    let tmp = std::env::temp_dir().join(format!("wordcount-s3-pods-{}", std::process::id()));
    let mut local = Local::new(&tmp, &bin);
    let (access, secret) = (
        "wordcount-pods",
        format!("pods-secret-{}", std::process::id()),
    );
    local.secrets = vec![
        (
            ("s3-credentials".into(), "AWS_ACCESS_KEY_ID".into()),
            access.into(),
        ),
        (
            ("s3-credentials".into(), "AWS_SECRET_ACCESS_KEY".into()),
            secret.clone(),
        ),
    ];

    // The store: the sample books as objects under corpus/books/.
    let root = tmp.join("s3");
    let books = root.join("corpus/books");
    std::fs::create_dir_all(&books).unwrap();
    let samples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/corpus");
    let mut names: Vec<_> = (std::fs::read_dir(&samples).unwrap().flatten())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    names.sort();
    for book in names.iter().take(4) {
        std::fs::copy(book, books.join(book.file_name().unwrap())).unwrap();
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut procs = Killed(vec![]);
    let log = std::fs::File::create(tmp.join("versitygw.log")).unwrap();
    procs.0.push(
        Command::new(&server)
            .args(["--port", &format!("127.0.0.1:{port}"), "--access", access])
            .args(["--secret", &secret, "--quiet", "posix"])
            .arg(&root)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    wait_for_port("127.0.0.1", port);

    let endpoint = format!("http://127.0.0.1:{port}");
    let mut job: WordCountJob = serde_json::from_value(serde_json::json!({
        "apiVersion": "wordcount.dev/v1alpha1", "kind": "WordCountJob",
        "metadata": {"name": "demo", "namespace": "ns1", "uid": "u1"},
        "spec": {
            "input": {"s3": {"endpoint": endpoint, "bucket": "corpus", "prefix": "books/",
                             "credentialsSecret": "s3-credentials"}},
            "output": {"s3": {"endpoint": endpoint, "bucket": "results", "key": "runs/demo.txt",
                              "credentialsSecret": "s3-credentials"}},
            "workers": 2, "topN": 5, "claimTimeout": "1s"
        }
    }))
    .unwrap();
    job.metadata.generation = Some(1);
    let (init, driver) = pod_containers(&resources::driver::job(&job, None, false));
    let (_, worker) = pod_containers(&resources::workers::job(&job, None, false));
    assert!(init.is_empty(), "nothing to generate");
    local.start_redis(&job, None, &mut procs);
    for index in 0..job.spec.workers {
        let env = [("JOB_COMPLETION_INDEX", index.to_string())];
        let child = local
            .command(&worker, &env)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        procs.0.push(child);
    }

    // A driver pod, its log in a file (its termination message is the
    // log's tail); it returns the exit code and the log.
    let run_driver = |attempt: usize| {
        let log_path = tmp.join(format!("driver-{attempt}.log"));
        let mut child = local
            .command(&driver, &[])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        let code = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s.code();
            }
            assert!(Instant::now() < deadline, "the driver did not finish");
            thread::sleep(Duration::from_millis(100));
        };
        (code, std::fs::read_to_string(&log_path).unwrap())
    };

    // No bucket `results`: every file is counted, the output not written.
    let (code, said) = run_driver(1);
    assert_eq!(code, Some(wordcount_protocol::exit::OUTPUT), "{said}");
    assert!(said.contains("s3://results/runs/demo.txt"), "{said}");
    assert!(
        !said.contains(&secret),
        "the secret key is in the driver's log"
    );
    let progress = RedisReader::default()
        .read(&local.endpoint())
        .await
        .expect("Redis answers");
    assert_eq!(progress.files_done, 4);
    assert_eq!(progress.summary, None);
    let last_words = said.lines().rev().take(5).collect::<Vec<_>>().join("\n");
    let failed: Job = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "demo-driver"},
        "status": {"conditions": [{"type": "Failed", "status": "True",
                                   "reason": "BackoffLimitExceeded"}], "failed": 4}
    }))
    .unwrap();
    let waiting = status::derive(
        &job,
        &Observed {
            drivers: vec![failed],
            progress: Some(Ok(progress)),
            driver_exit_code: code,
            driver_error: Some(format!("driver: {last_words}")),
            ..Observed::default()
        },
        k8s_openapi::jiff::Timestamp::now(),
    );
    assert_eq!(waiting.phase, Some(Phase::Running));
    let progressing = status::find(&waiting, status::PROGRESSING).unwrap();
    assert_eq!(
        (progressing.status.as_str(), progressing.reason.as_str()),
        ("False", status::OUTPUT_FAILED)
    );
    let message = waiting.message.unwrap();
    assert!(message.contains("s3://results/runs/demo.txt"), "{message}");

    // The bucket made, the driver again: it writes the output from Redis.
    std::fs::create_dir_all(root.join("results")).unwrap();
    let (code, said) = run_driver(2);
    assert_eq!(code, Some(0), "{said}");
    let progress = RedisReader::default()
        .read(&local.endpoint())
        .await
        .expect("Redis answers");
    let summary = progress.summary.clone().expect("a summary");
    let status = status_once_complete(&job, progress);
    assert_eq!(status.phase, Some(Phase::Succeeded));
    let output = status.output.clone().expect("status.output");
    assert_eq!(output.location, "s3://results/runs/demo.txt");

    // The object: `count word` lines, a serial count's counts.
    let written = std::fs::read_to_string(root.join("results/runs/demo.txt")).unwrap();
    let lines: Vec<(i64, &str)> = (written.lines())
        .map(|l| {
            let (count, word) = l.split_once(' ').unwrap();
            (count.parse().unwrap(), word)
        })
        .collect();
    let (words, distinct, top) = serial_count(&bin, &books);
    assert_eq!(output.words, distinct);
    assert_eq!(lines.len() as i64, distinct);
    assert_eq!(lines.iter().map(|(c, _)| c).sum::<i64>(), words);
    let first: Vec<(String, i64)> = (lines.iter().take(5))
        .map(|(c, w)| (w.to_string(), *c))
        .collect();
    assert_eq!(first, top);
    assert_eq!(counted(&summary, &status), (words, distinct, top));

    drop(procs);
    let _ = std::fs::remove_dir_all(&tmp);
}
