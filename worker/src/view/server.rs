//! The HTTP side of the live view: the page, its assets, and `/updates`,
//! server-sent events that give each page what is new since it last heard.

use super::{lock, Model, TICK};
use anyhow::Result;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::Router;
use futures_util::Stream;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// An axum server on a thread of its own, until dropped.
pub struct Server {
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    pub fn start(addr: SocketAddr, model: Arc<Mutex<Model>>) -> Result<Server> {
        // Bound here, so that a bad or busy address fails the run at once.
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            rt.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                // Pages keep their update streams open: the server ends by
                // dropping them (with the runtime), not by waiting for them.
                tokio::select! {
                    _ = axum::serve(listener, router(model)) => {}
                    _ = stopped => {}
                }
            });
        });
        Ok(Server {
            addr,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn router(model: Arc<Mutex<Model>>) -> Router {
    let asset = |kind: &'static str, body: &'static str| {
        get(move || async move { ([(CONTENT_TYPE, kind)], body) })
    };
    Router::new()
        .route(
            "/",
            asset(
                "text/html; charset=utf-8",
                include_str!("assets/index.html"),
            ),
        )
        .route(
            "/view.js",
            asset("text/javascript", include_str!("assets/view.js")),
        )
        .route(
            "/view.css",
            asset("text/css", include_str!("assets/view.css")),
        )
        .route(
            "/echarts.min.js",
            asset(
                "text/javascript",
                include_str!("assets/vendor/echarts-6.1.0.min.js"),
            ),
        )
        .route("/updates", get(updates))
        .with_state(model)
}

/// Every `TICK`, what is new for this page: the job as it stands, and the
/// files, events and queue samples it has not had yet (all at first).
async fn updates(
    State(model): State<Arc<Mutex<Model>>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let updates =
        futures_util::stream::unfold((model, [0; 3], true), |(model, seen, first)| async move {
            if !first {
                tokio::time::sleep(TICK).await;
            }
            let (data, seen) = {
                let m = lock(&model);
                let [files, events, samples] = seen;
                let update = serde_json::json!({
                    "job": m.job,
                    "files": m.files.get(files..).unwrap_or_default(),
                    "events": m.events.get(events..).unwrap_or_default(),
                    "samples": m.samples.get(samples..).unwrap_or_default(),
                });
                let seen = [m.files.len(), m.events.len(), m.samples.len()];
                (update.to_string(), seen)
            };
            Some((Ok(Event::default().data(data)), (model, seen, false)))
        });
    Sse::new(updates).keep_alive(KeepAlive::default())
}
