//! The wordcount operator: runs `WordCountJob`s on Kubernetes.
//!
//! `crd` holds the resource types, `resources` the builders of its children,
//! `controller` the reconciler that applies them, `status` how the status is
//! derived, `progress` how Redis is read, `chaos` the faults the operator
//! injects (each with its schedule and its effects), `finish` what a finished
//! job keeps and stops, `events` what people watching are told, `autoscale`
//! how a stream's workers follow its lag, `view` the live view of every
//! job in a browser.

pub mod autoscale;
pub mod chaos;
pub mod controller;
pub mod crd;
pub mod duration;
pub mod events;
#[cfg(test)]
mod fake_apiserver;
pub mod finish;
pub mod metrics;
pub mod pods;
pub mod progress;
pub mod resources;
pub mod server;
pub mod status;
pub mod view;
