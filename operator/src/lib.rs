//! The wordcount operator: runs `WordCountJob`s on Kubernetes.
//!
//! `crd` holds the resource types, `resources` the builders of its children,
//! `controller` the reconciler that applies them, `status` how the status is
//! derived, `progress` how Redis is read, `chaos` the pod-kill schedule.

pub mod chaos;
pub mod controller;
pub mod crd;
pub mod duration;
#[cfg(test)]
mod fake_apiserver;
pub mod metrics;
pub mod pods;
pub mod progress;
pub mod resources;
pub mod server;
pub mod status;
