//! The live view's routes: `/`, an index of the jobs, and each job's page
//! at `/ns/NAMESPACE/NAME/` (its assets and updates beside it, as the
//! page asks for them by relative URLs).

use super::Views;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use std::fmt::Write;
use std::sync::Arc;

pub fn router(views: Arc<Views>) -> Router {
    Router::new()
        .route("/", get(index))
        // The page's relative URLs need the trailing slash.
        .route(
            "/ns/{ns}/{name}",
            get(|Path((_, name)): Path<(String, String)>| async move {
                Redirect::permanent(&format!("{name}/"))
            }),
        )
        .route(
            "/ns/{ns}/{name}/",
            get(
                |State(v): State<Arc<Views>>, Path((ns, name)): Path<(String, String)>| async move {
                    file(&v, &ns, &name, "")
                },
            ),
        )
        .route(
            "/ns/{ns}/{name}/{file}",
            get(
                |State(v): State<Arc<Views>>,
                 Path((ns, name, f)): Path<(String, String, String)>| async move {
                    file(&v, &ns, &name, &f)
                },
            ),
        )
        .with_state(views)
}

fn file(views: &Views, ns: &str, name: &str, file: &str) -> Response {
    match views.model(ns, name) {
        Some(model) => wordcount_view::file(model, file),
        None => (
            StatusCode::NOT_FOUND,
            format!("no live view of {ns}/{name}: no such job, or not started yet\n"),
        )
            .into_response(),
    }
}

/// Every job, with a link to the view of those that have one. Namespaces
/// and names are DNS labels and subdomains: nothing in them needs escaping.
/// The page reloads itself every 2 s: new jobs, their phases, their links.
async fn index(State(views): State<Arc<Views>>) -> Html<String> {
    let mut rows = String::new();
    for (ns, name, phase, viewed) in views.index() {
        let phase = phase.map_or("", |p| p.as_str());
        let link = if viewed {
            format!(r#"<a href="ns/{ns}/{name}/">live view</a>"#)
        } else {
            String::new()
        };
        let _ = writeln!(
            rows,
            "<tr><td>{ns}</td><td>{name}</td><td>{phase}</td><td>{link}</td></tr>"
        );
    }
    Html(format!(
        r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta http-equiv="refresh" content="2"><title>wordcount · jobs</title>
<style>body {{ font: 15px system-ui, sans-serif; margin: 2em; }} td, th {{ padding: 0.3em 1em; text-align: left; }}</style>
</head>
<body>
<h1>WordCountJobs</h1>
<table id="jobs">
<thead><tr><th>namespace</th><th>name</th><th>phase</th><th></th></tr></thead>
<tbody>
{rows}</tbody>
</table>
</body>
</html>
"#
    ))
}

/// Serves the views on `addr` until the process ends.
pub async fn serve(addr: std::net::SocketAddr, views: Arc<Views>) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "serving the live view of every job");
    axum::serve(listener, router(views)).await
}
