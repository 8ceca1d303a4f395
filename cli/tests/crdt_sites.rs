#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
//! The CRDT mode as the operator runs it, with no runner: three
//! redis-servers and, per site, `wordcount driver --site I` and workers
//! `--site I`, all given the same list of instances. Each driver enqueues
//! its share, converges its own instance by pulling from the others, and
//! writes the whole job's counts there.

mod common;

use common::*;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use wordcount_count::counts::Counts;
use wordcount_count::engine::{count_files, Parallelism};
use wordcount_count::input;
use wordcount_job::backend;
use wordcount_job::report::Report;
use wordcount_job::state::Progress;
use wordcount_lab::local::RedisServer;
use wordcount_protocol::{RedisMode, Tokenizer, DEFAULT_PREFIX};

/// Three instances with one password, and what their processes write.
struct Sites {
    servers: Vec<RedisServer>,
    /// Every instance's URL, in the job's order, without the password.
    list: String,
    password: String,
    logs: tempfile::TempDir,
    /// Killed when the test ends, whatever happened.
    children: Vec<Child>,
}

impl Sites {
    fn start(n: usize) -> Sites {
        need_redis();
        let first = RedisServer::start(None).unwrap();
        let password = first.password.clone();
        let mut servers = vec![first];
        for _ in 1..n {
            servers.push(RedisServer::start_with_password(None, &password).unwrap());
        }
        let list = (servers.iter().map(RedisServer::url))
            .collect::<Vec<_>>()
            .join(",");
        Sites {
            servers,
            list,
            password,
            logs: tempfile::tempdir().unwrap(),
            children: Vec::new(),
        }
    }

    /// `wordcount SUB` (driver or worker) of site `site`, its stderr
    /// to `NAME.log`.
    fn command(&self, sub: &str, site: usize, input: &Path, name: &str) -> Command {
        let mut cmd = Command::new(bin());
        cmd.args([sub, "--redis", &self.list, "--redis-mode", "crdt"])
            .args(["--site", &site.to_string()])
            .args(["--input", input.to_str().unwrap(), "--patience", "30s"])
            .env("REDIS_PASSWORD", &self.password)
            .stdout(Stdio::null())
            .stderr(File::create(self.log(name)).unwrap());
        cmd
    }

    fn log(&self, name: &str) -> PathBuf {
        self.logs.path().join(format!("{name}.log"))
    }

    /// Site `site`'s driver, printing its report as JSON into `driver-I.json`.
    fn driver(&mut self, site: usize, input: &Path) -> usize {
        let name = format!("driver-{site}");
        let mut cmd = self.command("driver", site, input, &name);
        cmd.args(["--json", "--top", "50", "--claim-timeout", "1000"])
            .stdout(File::create(self.log(&format!("{name}.json"))).unwrap());
        self.children.push(cmd.spawn().unwrap());
        self.children.len() - 1
    }

    /// `n` workers of site `site`.
    fn workers(&mut self, site: usize, input: &Path, n: usize) -> Vec<usize> {
        (0..n)
            .map(|i| {
                let name = format!("worker-{site}-{i}");
                let mut cmd = self.command("worker", site, input, &name);
                cmd.args(["--index", &i.to_string()])
                    .env("WORDCOUNT_LOG", "warn");
                self.children.push(cmd.spawn().unwrap());
                self.children.len() - 1
            })
            .collect()
    }

    /// Waits for child `i` (at most `limit`), which must succeed; returns
    /// what it wrote on stderr.
    fn succeeds(&mut self, i: usize, name: &str, limit: Duration) -> String {
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.children[i].try_wait().unwrap() {
                break status;
            }
            assert!(
                started.elapsed() < limit,
                "{name} still runs after {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let log = std::fs::read_to_string(self.log(name)).unwrap();
        assert!(status.success(), "{name} failed ({status}):\n{log}");
        log
    }

    /// Instance `i` answers no one for `how_long` (`CLIENT PAUSE ... ALL`).
    fn pause(&self, i: usize, how_long: Duration) {
        let mut c = redis::Client::open(self.servers[i].url_with_password())
            .unwrap()
            .get_connection()
            .unwrap();
        redis::cmd("CLIENT")
            .arg("PAUSE")
            .arg(how_long.as_millis() as u64)
            .arg("ALL")
            .exec(&mut c)
            .unwrap();
    }

    fn report(&self, site: usize) -> Report {
        let json = std::fs::read(self.log(&format!("driver-{site}.json"))).unwrap();
        serde_json::from_slice(&json).expect("the driver prints one JSON object")
    }

    fn backend(&self, i: usize) -> Box<dyn backend::Backend + Send> {
        let url = self.servers[i].url_with_password();
        backend::open(
            RedisMode::Snapshot,
            &url,
            DEFAULT_PREFIX,
            Duration::from_secs(10),
        )
        .unwrap()
    }

    /// Every driver exits 0, then every worker.
    fn all_succeed(&mut self, drivers: &[usize], workers: &[usize]) -> Vec<String> {
        let logs = (drivers.iter().enumerate())
            .map(|(site, &d)| self.succeeds(d, &format!("driver-{site}"), Duration::from_secs(60)))
            .collect();
        for (k, &w) in workers.iter().enumerate() {
            let name = self.worker_name(k);
            self.succeeds(w, &name, Duration::from_secs(20));
        }
        logs
    }

    fn worker_name(&self, k: usize) -> String {
        format!("worker-{}-{}", k / WORKERS, k % WORKERS)
    }

    /// Each instance's `P:counts` is the serial count of the whole input,
    /// its `P:summary` the same totals, and its `P:meta` its site's share.
    fn check_result(&self, input: &Path) {
        let files = input::list(&[input.to_path_buf()]).unwrap();
        let want = count_files(&files, Tokenizer::Alnum, Parallelism::Serial).unwrap();
        let mut enqueued = 0;
        for i in 0..self.servers.len() {
            let mut b = self.backend(i);
            let counts: Counts = b.state().counts().unwrap();
            assert_eq!(counts.first_difference(&want), None, "instance {i}");
            let p: Progress = b.state().progress().unwrap();
            assert!(p.finished && p.is_done(), "instance {i}: {p:?}");
            enqueued += p.files;
            let r = self.report(i);
            assert_eq!(
                (r.words, r.distinct),
                (want.total(), want.distinct() as u64)
            );
            assert_eq!(r.top, want.top(50), "site {i}'s top words");
            let known = r.instances.as_ref().unwrap()[0].files_known;
            assert_eq!(known, files.len() as u64, "site {i}'s instance");
        }
        assert_eq!(enqueued, files.len() as u64, "the sites' shares");
    }
}

impl Drop for Sites {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Workers per site.
const WORKERS: usize = 2;

#[test]
fn three_sites_without_a_runner_converge_on_the_serial_count() {
    let mut sites = Sites::start(3);
    let dir = corpus(30, 5_000);
    let mut drivers = Vec::new();
    let mut workers = Vec::new();
    for site in 0..3 {
        drivers.push(sites.driver(site, dir.path()));
        workers.extend(sites.workers(site, dir.path(), WORKERS));
    }
    let logs = sites.all_succeed(&drivers, &workers);
    sites.check_result(dir.path());
    for (site, log) in logs.iter().enumerate() {
        assert!(
            log.contains(&format!("site {site}: converged in")),
            "driver {site} said nothing of converging:\n{log}"
        );
    }
}

/// Instance 2 does not answer (`CLIENT PAUSE`: connections and replies
/// hang, as when a network policy drops the packets) while sites 0 and 1
/// count, so it misses their files, and again once they are done; site
/// 2's driver starts only after. The others say instance 2 is unreachable,
/// wait for its site, and all three converge; instance 2 gets what it
/// missed by read repair.
#[test]
fn sites_wait_for_a_late_site_and_an_instance_that_does_not_answer() {
    let mut sites = Sites::start(3);
    let dir = corpus(30, 5_000);
    let pause = Duration::from_secs(3);
    sites.pause(2, pause);
    let mut drivers = Vec::new();
    let mut workers = Vec::new();
    for site in 0..2 {
        drivers.push(sites.driver(site, dir.path()));
        workers.extend(sites.workers(site, dir.path(), WORKERS));
    }
    let started = Instant::now();
    while !(0..2).all(|i| sites.backend(i).state().progress().unwrap().is_done()) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "sites 0 and 1 never finished"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Their drivers converge now: instance 2 does not answer them either.
    sites.pause(2, pause);
    let paused = Instant::now();
    let said = |sites: &Sites, site: usize| {
        let log = std::fs::read_to_string(sites.log(&format!("driver-{site}"))).unwrap();
        // The warning, then a line on its state once it answers again.
        let warned = log
            .find("instance 2 (")
            .filter(|_| log.contains("unreachable, trying"));
        warned.is_some_and(|at| log[at..].contains("instance 2 has no job yet"))
    };
    while !(0..2).all(|site| said(&sites, site)) {
        assert!(
            paused.elapsed() < pause + Duration::from_secs(10),
            "the drivers did not say instance 2 was unreachable, then back without a job"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        paused.elapsed() >= pause,
        "instance 2 answered while paused"
    );
    for &d in &drivers {
        assert!(
            sites.children[d].try_wait().unwrap().is_none(),
            "a driver ended before site 2 began"
        );
    }
    drivers.push(sites.driver(2, dir.path()));
    workers.extend(sites.workers(2, dir.path(), WORKERS));
    sites.all_succeed(&drivers, &workers);
    sites.check_result(dir.path());
    let late = sites.report(2).instances.unwrap()[0].clone();
    assert!(
        late.files_repaired > 0,
        "instance 2 missed no file of the others: {late:?}"
    );
}

#[test]
fn a_site_outside_the_list_or_the_crdt_mode_is_refused() {
    let list = "redis://127.0.0.1:1,redis://127.0.0.1:2,redis://127.0.0.1:3";
    let common = ["--redis", list, "--input", "examples/corpus"];
    for sub in ["driver", "worker"] {
        let mut args = vec![sub];
        args.extend(common);
        args.extend(["--redis-mode", "crdt", "--site", "3"]);
        let err = refused(&args);
        assert!(err.contains("numbered from 0 to 2"), "{sub}: {err}");
        let mut args = vec![sub];
        args.extend(common);
        args.extend(["--site", "1"]);
        let err = refused(&args);
        assert!(err.contains("needs --redis-mode crdt"), "{sub}: {err}");
    }
}
