//! The operator's Redis reader against a real `redis-server` on loopback,
//! with a password as in the cluster.

// A test crate: its helpers fail by panicking, as its tests do.
#![allow(clippy::unwrap_used)]

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};
use wordcount_operator::redis::{
    progress::{ProgressReader, RedisReader},
    Endpoint, ReadError,
};
use wordcount_protocol::keys::{meta, stats, stream, Keys};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(password: &str) -> Option<(Server, u16)> {
    let port = free_port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args(["--requirepass", password])
        .stdout(Stdio::null())
        .spawn()
        .ok()?;
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Some((server, port))
}

#[tokio::test]
async fn reads_protocol_keys_from_a_real_redis() {
    let (_server, port) = start("s3cret")
        .expect("this test needs redis-server on PATH (apt-get install redis-server)");
    let client = redis::Client::open(format!("redis://:s3cret@127.0.0.1:{port}")).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let reader = RedisReader::default();
    let endpoint = Endpoint {
        host: "127.0.0.1".into(),
        port,
        password: "s3cret".into(),
        prefix: "job7".into(),
        ..Endpoint::default()
    };

    // Nothing written yet: the driver has not started.
    let p = reader.read(&endpoint).await.unwrap();
    assert!(p.meta.is_none() && p.summary.is_none());

    // What the driver and the workers write (docs/src/protocol.md).
    let keys = Keys::new("job7");
    let _: () = redis::pipe()
        .hset_multiple(
            &keys.meta,
            &[
                (meta::FILES, "5"),
                (meta::BYTES, "500"),
                (meta::ENQUEUE_DONE, "1"),
                (meta::STARTED_MS, "1700000000000"),
            ],
        )
        .hset_multiple(
            &keys.stats,
            &[(stats::FILES_DONE, "3"), (stats::WORDS, "42")],
        )
        .hset(&keys.faults, "worker=0,crash=after-read", "1700000000500")
        .hset(&keys.failed, "b.bin", "Permission denied")
        .query_async(&mut con)
        .await
        .unwrap();
    let p = reader.read(&endpoint).await.unwrap();
    let meta = p.meta.unwrap();
    assert_eq!(
        (meta.files, meta.enqueue_done, meta.started_ms),
        (Some(5), true, Some(1_700_000_000_000))
    );
    assert_eq!(p.files_done, 3);
    assert_eq!(p.failed["b.bin"], "Permission denied");
    assert_eq!(p.faults["worker=0,crash=after-read"], 1_700_000_000_500);
    assert!(p.summary.is_none());
    assert!(p.stream.is_none(), "a batch has no P:stream");

    // A stream's driver rewrites P:stream about once a second.
    let _: () = redis::pipe()
        .hset_multiple(
            &keys.stream,
            &[
                (stream::INJECTED, "40"),
                (stream::COMMITTED, "38"),
                (stream::P50_MS, "12"),
                (stream::P99_MS, "250"),
                (stream::THROUGHPUT, "19.5"),
                (stream::LAG, "2"),
                (stream::THROTTLED, "1"),
            ],
        )
        .query_async(&mut con)
        .await
        .unwrap();
    let s = reader.read(&endpoint).await.unwrap().stream.unwrap();
    assert_eq!(
        (
            s.injected,
            s.committed,
            s.p50_ms,
            s.p99_ms,
            s.lag,
            s.throttled
        ),
        (40, 38, 12, 250, 2, true)
    );
    assert_eq!(s.throughput, 19.5);

    let _: () = redis::cmd("SET")
        .arg(&keys.summary)
        .arg(r#"{"words":42,"distinct":2,"top":[{"word":"a","count":40},{"word":"b","count":2}],"seconds":1.25}"#)
        .query_async(&mut con)
        .await
        .unwrap();
    let s = reader.read(&endpoint).await.unwrap().summary.unwrap();
    assert_eq!(
        (s.words, s.distinct, s.top.len(), s.seconds),
        (42, 2, 2, 1.25)
    );

    // A wrong password is reported, not a panic or a hang.
    let wrong = Endpoint {
        password: "nope".into(),
        ..endpoint
    };
    let err = reader.read(&wrong).await.unwrap_err();
    assert!(matches!(err, ReadError::Unreachable { .. }), "{err}");
}
