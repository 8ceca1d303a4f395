//! `wordcount run --ui`: the job, live, in a browser. A thread reads the
//! job a few times a second ([`reader`]) into the model the view crate
//! (`wordcount-view`) defines; a small axum server on a thread of its own
//! serves that crate's page and updates ([`server`]).

mod reader;
mod server;

use crate::timeline::{epoch_ms, EventLog};
use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use wordcount_count::counts::WordCount;
use wordcount_protocol::RedisMode;
use wordcount_view::{lock, Model, Shared, TICK};

/// The live view of one run, up until it is dropped.
pub struct View {
    url: String,
    model: Shared,
    stop: Arc<AtomicBool>,
    reader: Option<std::thread::JoinHandle<()>>,
    server: Option<server::Server>,
}

impl View {
    /// Serves the view of the job in the Redis at `redis` on `addr` (port 0:
    /// any free port), with the runner's `events`.
    pub fn start(
        addr: SocketAddr,
        mode: RedisMode,
        redis: &str,
        prefix: &str,
        events: EventLog,
    ) -> Result<View> {
        let model = Arc::new(Mutex::new(Model::default()));
        lock(&model).job.started_ms = epoch_ms();
        let server = server::Server::start(addr, model.clone())
            .with_context(|| format!("cannot serve the live view on {addr}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut reader = reader::LocalReader::new(mode, redis, prefix, events);
        let (m, s) = (model.clone(), stop.clone());
        let reader = std::thread::spawn(move || {
            loop {
                // Told to stop: one last look, since the job has just ended.
                let last = s.load(Ordering::Relaxed);
                let (look, read) = reader.look();
                lock(&m).add(look);
                // Redis may be down for a while (a fault): look again later.
                if let Err(e) = read {
                    tracing::debug!("live view: {e:#}");
                }
                if last {
                    break;
                }
                std::thread::sleep(TICK);
            }
        });
        Ok(View {
            url: format!("http://{}/", server.addr),
            model,
            stop,
            reader: Some(reader),
            server: Some(server),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The job is over: reads Redis a last time, and no more (it is about
    /// to go away).
    pub fn stop_reading(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }

    /// The run is over: shows its final top words and `--verify`'s verdict.
    pub fn finish(&mut self, top: &[WordCount], verified: Option<bool>) {
        self.stop_reading();
        let mut m = lock(&self.model);
        m.job.top = top
            .iter()
            .map(|w| (String::from_utf8_lossy(&w.word).into_owned(), w.count))
            .collect();
        m.job.verified = verified;
        m.job.phase = "done";
        m.job.ended = true;
    }
}

impl Drop for View {
    fn drop(&mut self) {
        self.stop_reading();
        drop(self.server.take());
    }
}
