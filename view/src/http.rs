//! The HTTP side of the live view: a job's page, its assets, and
//! `updates`, server-sent events that give each page what is new since it
//! last heard. [`file`] answers for one job whatever its mount point;
//! [`router`] mounts one job at `/`.

use crate::{lock, Shared, TICK};
use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::convert::Infallible;

/// The page and what it loads, by the relative name the page uses.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "",
        "text/html; charset=utf-8",
        include_str!("../assets/index.html"),
    ),
    (
        "view.js",
        "text/javascript",
        include_str!("../assets/view.js"),
    ),
    ("view.css", "text/css", include_str!("../assets/view.css")),
    (
        "echarts.min.js",
        "text/javascript",
        include_str!("../assets/vendor/echarts-6.1.0.min.js"),
    ),
];

/// The file `name` of the view of the job in `model`: the page (`""`), an
/// asset, or `updates`.
pub fn file(model: Shared, name: &str) -> Response {
    if name == "updates" {
        return updates(model).into_response();
    }
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, kind, body)) => ([(CONTENT_TYPE, *kind)], *body).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The view of one job at `/`.
pub fn router(model: Shared) -> Router {
    Router::new()
        .route(
            "/",
            get(|State(m): State<Shared>| async move { file(m, "") }),
        )
        .route(
            "/{name}",
            get(|State(m): State<Shared>, Path(name): Path<String>| async move { file(m, &name) }),
        )
        .with_state(model)
}

/// Every `TICK`, what is new for this page: the job as it stands, and the
/// files, events and queue samples it has not had yet (all at first).
fn updates(model: Shared) -> impl IntoResponse {
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
            Some((
                Ok::<_, Infallible>(Event::default().data(data)),
                (model, seen, false),
            ))
        });
    Sse::new(updates).keep_alive(KeepAlive::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Model;
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// The answer to GET `path`, read until it has `until` (an update
    /// stream never ends) or the server closes.
    async fn get(addr: std::net::SocketAddr, path: &str, until: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        let mut buf = [0; 8192];
        while !String::from_utf8_lossy(&out).contains(until) {
            match s.read(&mut buf).await.unwrap() {
                0 => break,
                n => out.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    #[tokio::test]
    async fn the_page_asks_for_relative_urls_and_updates_start_with_everything() {
        let model: Shared = Arc::new(Mutex::new(Model::default()));
        lock(&model).job.files = 7;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router(model)).await });

        let page = get(addr, "/", "</html>").await;
        assert!(page.starts_with("HTTP/1.1 200"), "{page}");
        // Mounted anywhere (`/ns/NAMESPACE/NAME/`), the page finds its own.
        for url in ["\"view.css\"", "\"echarts.min.js\"", "\"view.js\""] {
            assert!(page.contains(url), "{url} in {page}");
        }
        let js = get(addr, "/view.js", "new EventSource").await;
        assert!(js.contains("new EventSource(\"updates\")"), "{js}");
        assert!(get(addr, "/nothing", "\r\n")
            .await
            .starts_with("HTTP/1.1 404"));
        let sse = get(addr, "/updates", "\"files\":7").await;
        assert!(
            sse.contains("text/event-stream") && sse.contains("\"files\":7"),
            "{sse}"
        );
    }
}
