//! [`LocalS3`]: a real S3 server on this machine, for tests and demos:
//! Versity's gateway `versitygw` (built from source by
//! `store/versitygw.sh`) serving a temp dir with its posix backend, on
//! 127.0.0.1 and a free port, with fixed test credentials. Each
//! subdirectory of the served dir is a bucket; each file below it, an
//! object.

use crate::location::Location;
use crate::store::Store;
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The version `store/versitygw.sh` builds by default.
pub const VERSITYGW_VERSION: &str = "v1.8.0";
/// The root user's credentials of every `LocalS3` (test values, not secrets).
pub const ACCESS_KEY: &str = "wordcount-test";
pub const SECRET_KEY: &str = "wordcount-test-secret-3f9a";

/// A running versitygw; killed on drop, its directory deleted.
pub struct LocalS3 {
    binary: PathBuf,
    /// `data/` is served; `versitygw.log` has the server's output.
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
    /// Clients for `put`, one per bucket, made on first use.
    writers: Mutex<HashMap<String, Arc<Store>>>,
}

impl LocalS3 {
    /// The versitygw binary: `$WORDCOUNT_VERSITYGW`, else where
    /// `store/versitygw.sh` caches it
    /// (`${WORDCOUNT_CACHE:-~/.cache/wordcount}/versitygw/v1.8.0/versitygw`);
    /// None when it is not there (tests then skip).
    pub fn binary() -> Option<PathBuf> {
        let path = match std::env::var_os("WORDCOUNT_VERSITYGW") {
            Some(path) if !path.is_empty() => PathBuf::from(path),
            _ => {
                let cache = match std::env::var_os("WORDCOUNT_CACHE") {
                    Some(cache) if !cache.is_empty() => PathBuf::from(cache),
                    _ => PathBuf::from(std::env::var_os("HOME")?).join(".cache/wordcount"),
                };
                cache
                    .join("versitygw")
                    .join(VERSITYGW_VERSION)
                    .join("versitygw")
            }
        };
        path.is_file().then_some(path)
    }

    /// Starts versitygw on an empty temp dir; returns once it answers.
    pub fn start() -> Result<LocalS3> {
        let binary = Self::binary().context(
            "no versitygw binary: build it with store/versitygw.sh, or set WORDCOUNT_VERSITYGW",
        )?;
        let dir = tempfile::Builder::new()
            .prefix("wordcount-s3-")
            .tempdir()
            .context("cannot make the server's temp dir")?;
        std::fs::create_dir(dir.path().join("data")).context("cannot make the served dir")?;
        // A port the kernel had free a moment ago; start_again reuses it.
        let port = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
            .and_then(|listener| listener.local_addr())
            .context("cannot find a free port")?
            .port();
        let mut server = LocalS3 {
            binary,
            dir,
            port,
            child: None,
            writers: Mutex::new(HashMap::new()),
        };
        server.start_again()?;
        Ok(server)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The served directory: `root()/BUCKET/KEY` is an object's file.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The variables that point an S3 client at this server (for
    /// `Store::open_with_env`, or a child process's environment).
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ALLOW_HTTP", "true".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Makes an empty bucket: with the posix backend, a directory of the
    /// served dir (the root user owns every bucket).
    pub fn create_bucket(&self, name: &str) -> Result<()> {
        let path = self.root().join(name);
        std::fs::create_dir(&path)
            .with_context(|| format!("cannot create bucket {name} ({})", path.display()))
    }

    /// Puts `bytes` at `bucket/key` through the S3 API (so that the object
    /// has its ETag), replacing any object there.
    pub fn put(&self, bucket: &str, key: &str, bytes: &[u8]) -> Result<()> {
        let store = {
            let mut writers = self
                .writers
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            match writers.get(bucket) {
                Some(store) => Arc::clone(store),
                None => {
                    let location = Location::S3 {
                        bucket: bucket.to_owned(),
                        prefix: String::new(),
                    };
                    let store = Arc::new(Store::open_with_env(&location, &self.env())?);
                    writers.insert(bucket.to_owned(), Arc::clone(&store));
                    store
                }
            }
        };
        store.put(key, bytes)
    }

    /// Kills the server (SIGKILL, as a crash); the data stays.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again, on the same port and directory; returns once
    /// it answers.
    pub fn start_again(&mut self) -> Result<()> {
        self.stop();
        let log_path = self.dir.path().join("versitygw.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .context("cannot open the server's log")?;
        let child = Command::new(&self.binary)
            .arg("--port")
            .arg(format!("127.0.0.1:{}", self.port))
            .args(["--access", ACCESS_KEY, "--secret", SECRET_KEY])
            .arg("--quiet")
            .arg("posix")
            .arg(self.root())
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("cannot open the server's log")?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", self.binary.display()))?;
        self.child = Some(child);
        self.wait_until_it_answers(&log_path)
    }

    fn wait_until_it_answers(&mut self, log: &Path) -> Result<()> {
        let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.port).into();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            let exited = match self.child.as_mut() {
                Some(child) => child.try_wait().ok().flatten(),
                None => None,
            };
            if let Some(status) = exited {
                self.child = None;
                let output = std::fs::read_to_string(log).unwrap_or_default();
                bail!(
                    "versitygw exited ({status}) before answering: {}",
                    output.trim()
                );
            }
            if Instant::now() > deadline {
                self.stop();
                bail!("versitygw did not answer on port {} within 20 s", self.port);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for LocalS3 {
    fn drop(&mut self) {
        self.stop();
    }
}
