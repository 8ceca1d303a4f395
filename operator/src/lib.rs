//! The wordcount operator: runs `WordCountJob`s on Kubernetes.
//!
//! From the bottom up: `duration` and `crd` the resource types,
//! `resources` the builders of its children, `pods` what its pods say,
//! `redis` reaching its Redis (and `redis::progress` what is read there),
//! `metrics`, `view` the live view of every job in a browser, `status` how
//! the status is derived, `context` what every reconcile step shares
//! (`Context`, `Error`, `apply`), then the steps: `events` what people
//! watching are told, `autoscale` how a stream's workers follow its lag,
//! `chaos` the faults the operator injects (each with its schedule and its
//! effects), `finish` what a finished job keeps and stops; `controller`
//! the reconciler that runs them, and `server` health and metrics. A module
//! imports only from those below it.

pub mod autoscale;
pub mod chaos;
pub mod context;
pub mod controller;
pub mod crd;
pub mod duration;
pub mod events;
#[cfg(test)]
mod fake_apiserver;
pub mod finish;
pub mod metrics;
pub mod pods;
pub mod redis;
pub mod resources;
pub mod server;
pub mod status;
pub mod view;
