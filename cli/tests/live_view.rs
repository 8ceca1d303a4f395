#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report
//! The live view (`wordcount run --ui`) in a real browser: headless
//! Chromium driven by chromedriver (Debian's `chromium` and
//! `chromium-driver`) watches a run with a crash and a straggler. The same
//! page served by the operator is checked the same way by
//! `operator/tests/cluster.sh view` (an ignored test here, which it runs).

mod common;
use common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use wordcount_count::engine::{count_files, Parallelism};
use wordcount_protocol::Tokenizer;

/// Kills the process when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// chromedriver on a free port, and a headless Chromium session through it.
async fn browser() -> Option<(Killed, Client)> {
    let (Ok(driver), Ok(chromium)) = (which::which("chromedriver"), which::which("chromium"))
    else {
        eprintln!("skipped: chromium and chromedriver are not installed (apt install chromium chromium-driver)");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let driver = Killed(
        Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1100"],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let started = Instant::now();
    loop {
        match ClientBuilder::new(connector.clone())
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(client) => return Some((driver, client)),
            Err(e) if started.elapsed() > Duration::from_secs(30) => {
                panic!("chromedriver did not start a session: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// The text of the first element `css` that satisfies `ok`, once one
/// does (several faults fire: a straggler's at its first file, a crash).
async fn wait_for(client: &Client, css: &str, ok: impl Fn(&str) -> bool) -> String {
    let started = Instant::now();
    loop {
        for e in client.find_all(Locator::Css(css)).await.unwrap_or_default() {
            let text = e.text().await.unwrap_or_default();
            if ok(&text) {
                return text;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the page never showed what was expected in {css}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `wordcount run ARGS --ui` on a free port, lingering; and its page.
fn start_run(args: &[&str]) -> (Killed, String) {
    let mut run = Killed(
        Command::new(bin())
            .arg("run")
            .args(args)
            .args(["--ui", "127.0.0.1:0", "--ui-linger", "5m"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // The address comes first; the rest of what the run says is passed on
    // (and read, so that the run never writes into a closed pipe).
    let mut lines = BufReader::new(run.0.stderr.take().unwrap()).lines();
    let url = lines
        .by_ref()
        .map_while(Result::ok)
        .inspect(|l| eprintln!("{l}"))
        .find_map(|l| l.strip_prefix("live view: ").map(str::to_string))
        .expect("run printed no live view address");
    std::thread::spawn(move || lines.map_while(Result::ok).for_each(|l| eprintln!("{l}")));
    (run, url)
}

/// Saves what the page shows now as a test artefact, under target/tmp.
async fn screenshot(client: &Client, name: &str) {
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&shot, client.screenshot().await.unwrap()).unwrap();
    eprintln!("screenshot: {}", shot.display());
}

/// The top words the page shows, as (word, count).
async fn top_words(client: &Client) -> Vec<(String, u64)> {
    let mut shown = Vec::new();
    for row in client
        .find_all(Locator::Css("#top tbody tr"))
        .await
        .unwrap()
    {
        let cells = row.find_all(Locator::Css("td")).await.unwrap();
        let word = cells[0].text().await.unwrap();
        let count: u64 = cells[1]
            .text()
            .await
            .unwrap()
            .replace(',', "")
            .parse()
            .unwrap();
        shown.push((word, count));
    }
    shown
}

fn at_least_one(text: &str) -> bool {
    text.parse::<u64>().is_ok_and(|n| n >= 1)
}

#[tokio::test(flavor = "current_thread")]
async fn the_live_view_shows_a_crash_a_stolen_file_and_the_right_top_words() {
    need_redis();
    let Some((_driver, client)) = browser().await else {
        return;
    };
    let dir = corpus(40, 100_000);
    // Worker 0 crashes after counting its first file; worker 1 is a
    // straggler whose files the others steal after 100 ms.
    let (_run, url) = start_run(&[
        "--input",
        dir.path().to_str().unwrap(),
        "--workers",
        "3",
        "--top",
        "10",
        "--verify",
        "--fault",
        "worker=0,crash=after-count",
        "--fault",
        "worker=1,slow=1000",
        "--claim-timeout",
        "100",
    ]);
    client.goto(&url).await.unwrap();
    wait_for(&client, "#crashes", at_least_one).await;
    wait_for(&client, "#stolen", at_least_one).await;
    wait_for(&client, "#events li[data-what='fault-fired']", |t| {
        t.contains("worker=0,crash=after-count")
    })
    .await;
    wait_for(&client, "#phase", |t| t == "done").await;
    wait_for(&client, "#verified", |t| t.contains("verified")).await;

    let shown = top_words(&client).await;
    let files = wordcount_count::input::list(&[dir.path().to_path_buf()]).unwrap();
    let want: Vec<(String, u64)> = count_files(&files, Tokenizer::Alnum, Parallelism::Serial)
        .unwrap()
        .top(10)
        .into_iter()
        .map(|w| (String::from_utf8(w.word).unwrap(), w.count))
        .collect();
    assert_eq!(shown, want);

    screenshot(&client, "live-view.png").await;
    client.close().await.unwrap();
}

#[test]
fn a_busy_address_for_the_live_view_fails_the_run_with_its_reason() {
    need_redis();
    let dir = corpus(2, 1_000);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = wordcount(&[
        "run",
        "--input",
        dir.path().to_str().unwrap(),
        "--ui",
        &addr,
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("cannot serve the live view on {addr}")) && err.contains("in use"),
        "{err}"
    );
}

/// An overloaded stream with `--backpressure pause`: the page shows the
/// stream's figures, the queue and the source holding files back.
#[tokio::test(flavor = "current_thread")]
async fn the_live_view_of_an_overloaded_stream_shows_its_throttling() {
    need_redis();
    let Some((_driver, client)) = browser().await else {
        return;
    };
    // Tiny files: each costs its syscalls, times 1000 (the slowest
    // straggler), far more than the rate allows.
    let dir = corpus(4, 200);
    let (_run, url) = start_run(&[
        "--input",
        dir.path().to_str().unwrap(),
        "--stream",
        "--rate",
        "40",
        "--tick",
        "250ms",
        "--duration",
        "2s",
        "--backpressure",
        "pause",
        "--max-lag",
        "6",
        "--workers",
        "1",
        "--fault",
        "worker=0,slow=1000",
    ]);
    client.goto(&url).await.unwrap();
    wait_for(&client, "#rate-asked", |t| t == "40 files/s").await;
    wait_for(&client, "#events li[data-what='throttle-on']", |t| {
        t.contains("throttle-on")
    })
    .await;
    wait_for(&client, "#phase", |t| t == "done").await;
    let samples = client
        .execute("return state.samples.length", Vec::new())
        .await
        .unwrap();
    assert!(samples.as_u64().unwrap() >= 4, "{samples} queue samples");
    screenshot(&client, "live-view-stream.png").await;
    client.close().await.unwrap();
}

/// A RedisRaft stream whose leader is killed and comes back: the page
/// shows the kill and the restart on its timeline, and the job verified.
#[tokio::test(flavor = "current_thread")]
async fn the_live_view_of_redisraft_shows_the_leader_killed_and_back() {
    need_redis();
    if redisraft().is_none() {
        return;
    }
    let Some((_driver, client)) = browser().await else {
        return;
    };
    let dir = corpus(20, 5_000);
    let (_run, url) = start_run(&[
        "--input",
        dir.path().to_str().unwrap(),
        "--redis",
        "raft",
        "--stream",
        "--rate",
        "100",
        "--duration",
        "4s",
        "--tick",
        "100ms",
        "--workers",
        "2",
        "--replica-fault",
        "replica=leader,kill-at=1500ms,down=1s",
        "--verify",
    ]);
    client.goto(&url).await.unwrap();
    wait_for(&client, "#events li[data-what='replica-killed']", |t| {
        t.contains("replica")
    })
    .await;
    wait_for(&client, "#events li[data-what='replica-restarted']", |t| {
        t.contains("Raft log")
    })
    .await;
    wait_for(&client, "#phase", |t| t == "done").await;
    wait_for(&client, "#verified", |t| t.contains("verified")).await;
    wait_for(&client, "#redis", |t| t == "0 / 1").await;
    screenshot(&client, "live-view-raft.png").await;
    client.close().await.unwrap();
}

/// The operator's live view of a job with a crash, a straggler and worker
/// pods killed, on a real cluster: `operator/tests/cluster.sh view` runs
/// it with the operator's Service port-forwarded. From the index of jobs
/// to the job's page; the crash, a stolen file and a killed pod on it;
/// then its final top words, which must be the serial count's, and its two
/// pod kills, each once.
///
/// WORDCOUNT_VIEW_URL: the index; WORDCOUNT_VIEW_JOB: NAMESPACE/NAME;
/// WORDCOUNT_VIEW_TOP: the serial count's top words, as
/// `[{"word": .., "count": ..}, ..]`.
#[tokio::test(flavor = "current_thread")]
#[ignore = "needs the operator on a cluster: run operator/tests/cluster.sh view"]
async fn the_operators_live_view_shows_a_crash_a_stolen_file_a_kill_and_the_right_top_words() {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    let (index, job) = (var("WORDCOUNT_VIEW_URL"), var("WORDCOUNT_VIEW_JOB"));
    let top: Vec<serde_json::Value> = serde_json::from_str(&var("WORDCOUNT_VIEW_TOP")).unwrap();
    let want: Vec<(String, u64)> = top
        .iter()
        .map(|w| {
            (
                w["word"].as_str().unwrap().into(),
                w["count"].as_u64().unwrap(),
            )
        })
        .collect();
    let (_driver, client) = browser().await.expect("the browser is needed here");
    client.goto(&index).await.unwrap();
    // The index reloads itself until the job's link is there (a click could
    // meet a reload, so the link's target is opened instead).
    let link = format!("#jobs a[href='ns/{job}/']");
    wait_for(&client, &link, |t| t == "live view").await;
    client.goto(&format!("{index}ns/{job}/")).await.unwrap();
    wait_for(&client, "#crashes", at_least_one).await;
    wait_for(&client, "#stolen", at_least_one).await;
    wait_for(&client, "#events li[data-what='fault-fired']", |t| {
        t.contains("crash=after-count")
    })
    .await;
    wait_for(&client, "#events li[data-what='worker-killed']", |t| {
        t.contains("-workers-")
    })
    .await;
    wait_for(&client, "#phase", |t| t == "done").await;
    // Redis's summary says done first; the job's end (the status's top
    // words) comes with the operator's next reconcile.
    let started = Instant::now();
    while client
        .execute("return state.job.ended", Vec::new())
        .await
        .unwrap()
        != serde_json::Value::Bool(true)
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the view never ended"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(top_words(&client).await, want);
    // Each pod kill once (the job asks for two), however often the
    // operator saw it in the status.
    let kills = client
        .find_all(Locator::Css("#events li[data-what='worker-killed']"))
        .await
        .unwrap();
    assert_eq!(kills.len(), 2);
    screenshot(&client, "operator-view.png").await;
    client.close().await.unwrap();
}
