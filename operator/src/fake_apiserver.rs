//! A small in-memory stand-in for the API server, for the reconciler's unit
//! tests: it stores what is applied, answers gets and lists from what it
//! holds, and records every request so tests can check what the reconciler
//! did. Real API server behaviour is tested in `tests/apiserver.rs`.

use http::{Method, Request, Response, StatusCode};
use kube::{client::Body, Client};
use serde_json::{json, Value};
use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: Method,
    /// Path without the query string.
    pub path: String,
    pub query: String,
    pub body: Value,
}

#[derive(Default)]
struct State {
    /// Objects by path (`/api/v1/namespaces/ns1/secrets/x`).
    objects: BTreeMap<String, Value>,
    /// Status a controller would have written, merged into applied objects.
    statuses: BTreeMap<String, Value>,
    /// Items returned by list requests, by collection path.
    lists: BTreeMap<String, Vec<Value>>,
    requests: Vec<Recorded>,
}

#[derive(Clone, Default)]
pub struct FakeApiServer {
    state: Arc<Mutex<State>>,
}

impl FakeApiServer {
    /// A client whose every request this fake answers.
    pub fn start() -> (Self, Client) {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let fake = Self::default();
        let server = fake.clone();
        tokio::spawn(async move {
            while let Some((request, respond)) = handle.next_request().await {
                let response = server.answer(request).await;
                respond.send_response(response);
            }
        });
        (fake, Client::new(service, "default"))
    }

    pub fn put(&self, path: &str, object: Value) {
        self.state
            .lock()
            .unwrap()
            .objects
            .insert(path.into(), object);
    }

    pub fn get(&self, path: &str) -> Option<Value> {
        self.state.lock().unwrap().objects.get(path).cloned()
    }

    /// Deletes the object at `path`, and the status it was given, as a
    /// user's `kubectl delete` would.
    pub fn remove(&self, path: &str) {
        let mut state = self.state.lock().unwrap();
        state.objects.remove(path);
        state.statuses.remove(path);
    }

    /// Make applied objects at `path` come back with this status.
    pub fn set_status(&self, path: &str, status: Value) {
        self.state
            .lock()
            .unwrap()
            .statuses
            .insert(path.into(), status);
    }

    pub fn set_list(&self, collection: &str, items: Vec<Value>) {
        self.state
            .lock()
            .unwrap()
            .lists
            .insert(collection.into(), items);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.state.lock().unwrap().requests.clear();
    }

    async fn answer(&self, request: Request<Body>) -> Response<Body> {
        let method = request.method().clone();
        let path = request.uri().path().to_string();
        let query = request.uri().query().unwrap_or_default().to_string();
        let bytes = request.into_body().collect_bytes().await.unwrap();
        let body: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        let mut state = self.state.lock().unwrap();
        state.requests.push(Recorded {
            method: method.clone(),
            path: path.clone(),
            query: query.clone(),
            body: body.clone(),
        });
        match method {
            Method::GET if state.lists.contains_key(&path) => {
                let items = state.lists[&path].clone();
                ok(json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": items}))
            }
            Method::GET => match state.objects.get(path.trim_end_matches("/status")) {
                Some(o) => ok(o.clone()),
                None => not_found(&path),
            },
            Method::PATCH if path.ends_with("/status") => {
                let parent = path.trim_end_matches("/status").to_string();
                let Some(object) = state.objects.get_mut(&parent) else {
                    return not_found(&path);
                };
                object["status"] = body["status"].clone();
                ok(object.clone())
            }
            Method::PATCH => {
                // Server-side apply: the stored object becomes the applied
                // one, with whatever status its controller would have set.
                let mut object = body;
                if let Some(status) = state.statuses.get(&path) {
                    object["status"] = status.clone();
                }
                object["metadata"]["uid"] =
                    json!(format!("uid-{}", path.rsplit('/').next().unwrap()));
                state.objects.insert(path, object.clone());
                ok(object)
            }
            Method::POST => ok(body),
            Method::DELETE => {
                if let Some(object) = state.objects.remove(&path) {
                    return ok(object);
                }
                let (collection, name) = path.rsplit_once('/').unwrap();
                let list = state.lists.entry(collection.to_string()).or_default();
                match list.iter().position(|o| o["metadata"]["name"] == name) {
                    Some(i) => ok(list.remove(i)),
                    None => not_found(&path),
                }
            }
            _ => not_found(&path),
        }
    }
}

fn ok(body: Value) -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .body(Body::from(serde_json::to_vec(&body).unwrap()))
        .unwrap()
}

fn not_found(path: &str) -> Response<Body> {
    let status = json!({
        "apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
        "message": format!("{path} not found"), "reason": "NotFound", "code": 404
    });
    Response::builder()
        .status(StatusCode::NOT_FOUND)
        .body(Body::from(serde_json::to_vec(&status).unwrap()))
        .unwrap()
}
