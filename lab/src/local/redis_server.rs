//! A real `redis-server` process on loopback, with a password, a free port
//! and its own data directory; or a RedisRaft replica (the module loaded,
//! no password: RedisRaft has no authentication). It dies with us.

use super::die_with_parent;
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    pub password: String,
    dir: PathBuf,
    save: Option<Duration>,
    /// The RedisRaft module, for a replica, and whether it fsyncs its log.
    module: Option<(PathBuf, bool)>,
    /// Where it listens: loopback, or a site's address in its network
    /// namespace (`ip netns exec`).
    host: std::net::Ipv4Addr,
    netns: Option<String>,
    _tmp: Option<tempfile::TempDir>,
}

impl RedisServer {
    /// Starts Redis in a new temporary directory. With `save`, Redis writes
    /// an RDB snapshot every `save` while anything changed (BGSAVE).
    pub fn start(save: Option<Duration>) -> Result<Self> {
        Self::start_with_password(save, &random_password())
    }

    /// Like [`RedisServer::start`], with this password: instances that the
    /// same clients reach all share one (`REDIS_PASSWORD`).
    pub fn start_with_password(save: Option<Duration>, password: &str) -> Result<Self> {
        Self::start_in(save, password, None)
    }

    /// Like [`RedisServer::start_with_password`], in a network namespace
    /// (its name and address), if any.
    pub fn start_in(
        save: Option<Duration>,
        password: &str,
        netns: Option<(&str, std::net::Ipv4Addr)>,
    ) -> Result<Self> {
        let tmp = tempfile::Builder::new()
            .prefix("wordcount-redis-")
            .tempdir()?;
        let mut server = RedisServer {
            child: None,
            port: 0,
            password: password.to_string(),
            dir: tmp.path().to_path_buf(),
            save,
            module: None,
            host: netns.map_or(std::net::Ipv4Addr::LOCALHOST, |(_, a)| a),
            netns: netns.map(|(n, _)| n.to_string()),
            _tmp: Some(tmp),
        };
        server.spawn_on_free_port()?;
        Ok(server)
    }

    /// Starts a RedisRaft replica in `dir` (which must exist), not yet in
    /// any cluster. Its Raft log is `dir/raftlog.db`, written with fsync
    /// after every entry if `fsync`.
    pub fn start_replica(module: &Path, dir: &Path, fsync: bool) -> Result<Self> {
        let mut server = RedisServer {
            child: None,
            port: 0,
            password: String::new(),
            dir: dir.to_path_buf(),
            save: None,
            module: Some((module.to_path_buf(), fsync)),
            host: std::net::Ipv4Addr::LOCALHOST,
            netns: None,
            _tmp: None,
        };
        server.spawn_on_free_port()?;
        Ok(server)
    }

    /// The URL without the password; clients take it from `REDIS_PASSWORD`.
    pub fn url(&self) -> String {
        format!("redis://{}:{}", self.host, self.port)
    }

    /// The URL with the password, for in-process clients.
    pub fn url_with_password(&self) -> String {
        if self.password.is_empty() {
            return self.url();
        }
        format!("redis://:{}@{}:{}", self.password, self.host, self.port)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `kill -9`: whatever was not in the last snapshot is lost.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts Redis again on the same port and directory: it loads its last
    /// RDB snapshot, if any.
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        let started = Instant::now();
        loop {
            match self.spawn(self.port) {
                Ok(()) => return Ok(()),
                // The old socket may linger for a moment.
                Err(e) if started.elapsed() < Duration::from_secs(5) => {
                    tracing::debug!("restart: {e:#}");
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn spawn_on_free_port(&mut self) -> Result<()> {
        let mut last = None;
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            match self.spawn(port) {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("tried at least once"))
    }

    fn spawn(&mut self, port: u16) -> Result<()> {
        let exe = which::which("redis-server").context(
            "redis-server not found on PATH; install it (Debian/Ubuntu: apt-get install redis-server)",
        )?;
        let save = match self.save {
            Some(d) => format!("save {} 1", d.as_secs().max(1)),
            None => "save \"\"".to_string(),
        };
        // The configuration goes in on stdin so that the password is on no
        // command line.
        let mut config = format!(
            "port {port}\nbind {host}\ndir {dir}\ndbfilename dump.rdb\n\
             {save}\nappendonly no\ndaemonize no\nlogfile {dir}/redis.log\n\
             proto-max-bulk-len 1gb\nclient-query-buffer-limit 1gb\n",
            dir = self.dir.display(),
            host = self.host,
        );
        match &self.module {
            // What RedisRaft requires: no RDB or AOF of Redis's own (it
            // snapshots itself), one database, no password. A peer is
            // dialled again, and timeouts are checked, every 10 ms rather
            // than 100: each join waits for the leader to reach the node.
            Some((module, fsync)) => config.push_str(&format!(
                "databases 1\nloadmodule {}\nraft.addr 127.0.0.1:{port}\n\
                 raft.log-filename raftlog.db\nraft.log-fsync {}\n\
                 raft.reconnect-interval 10\nraft.periodic-interval 10\n",
                module.display(),
                if *fsync { "yes" } else { "no" }
            )),
            None => config.push_str(&format!("requirepass {}\n", self.password)),
        }
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        cmd.arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        die_with_parent(&mut cmd);
        let mut child = cmd.spawn().context("cannot start redis-server")?;
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(config.as_bytes())?;
        self.port = port;
        let client = redis::Client::open(self.url_with_password())?;
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "redis-server exited ({status}) on port {port}: {}",
                    self.log_tail()
                );
            }
            let pong = client
                .get_connection_with_timeout(Duration::from_millis(200))
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
            if pong.is_ok() {
                self.child = Some(child);
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                bail!(
                    "redis-server did not answer within 20 s: {}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(5)..].join("\n")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn random_password() -> String {
    use rand::RngExt;
    let mut rng = rand::rng();
    (0..32)
        .map(|_| format!("{:x}", rng.random_range(0..16u8)))
        .collect()
}
