//! Prometheus metrics of the operator, served on `/metrics`.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::{Registry, Unit},
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabels {
    pub target: String,
}

pub struct Metrics {
    registry: Registry,
    pub reconciles: Counter,
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    pub reconcile_duration: Histogram,
    /// Reconciles that found Redis unreachable (normal while pods start).
    pub redis_unreachable: Counter,
    pub phase_transitions: Family<PhaseLabels, Counter>,
    pub pod_kills: Family<TargetLabels, Counter>,
    /// 1 once the controller watches its resources.
    pub ready: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("wordcount_operator");
        let reconciles = Counter::default();
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        let reconcile_duration =
            Histogram::new([0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]);
        let redis_unreachable = Counter::default();
        let phase_transitions = Family::<PhaseLabels, Counter>::default();
        let pod_kills = Family::<TargetLabels, Counter>::default();
        let ready = Gauge::default();
        registry.register("reconciles", "Reconciles run", reconciles.clone());
        registry.register(
            "reconcile_errors",
            "Reconciles that failed, by error",
            reconcile_errors.clone(),
        );
        registry.register_with_unit(
            "reconcile_duration",
            "Time a reconcile takes",
            Unit::Seconds,
            reconcile_duration.clone(),
        );
        registry.register(
            "redis_unreachable",
            "Reconciles that could not read a job's Redis",
            redis_unreachable.clone(),
        );
        registry.register(
            "phase_transitions",
            "Jobs entering a phase",
            phase_transitions.clone(),
        );
        registry.register(
            "pod_kills",
            "Pods deleted by chaos, by target",
            pod_kills.clone(),
        );
        registry.register("ready", "1 once the controller is watching", ready.clone());
        Self {
            registry,
            reconciles,
            reconcile_errors,
            reconcile_duration,
            redis_unreachable,
            phase_transitions,
            pod_kills,
            ready,
        }
    }
}

impl Metrics {
    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_counters_with_labels() {
        let m = Metrics::default();
        m.reconciles.inc();
        m.pod_kills
            .get_or_create(&TargetLabels {
                target: "worker".into(),
            })
            .inc();
        let text = m.encode();
        assert!(
            text.contains("wordcount_operator_reconciles_total 1"),
            "{text}"
        );
        assert!(
            text.contains("wordcount_operator_pod_kills_total{target=\"worker\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("wordcount_operator_reconcile_duration_seconds_bucket"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
