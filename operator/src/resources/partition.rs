//! The NetworkPolicy of a partition fault: Redis takes connections from
//! every pod but the job's workers. Ingress on Redis, not egress on the
//! workers, so that the workers still resolve names and the operator (in
//! its own namespace) still reads the job's progress.

use super::{meta, selector, Component, Names, LABEL_COMPONENT, REDIS_PORT};
use crate::crd::WordCountJob;
use k8s_openapi::{
    api::networking::v1::{
        NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
        NetworkPolicySpec,
    },
    apimachinery::pkg::{
        apis::meta::v1::{LabelSelector, LabelSelectorRequirement},
        util::intstr::IntOrString,
    },
};

pub fn network_policy(job: &WordCountJob) -> NetworkPolicy {
    let not_a_worker = LabelSelector {
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: LABEL_COMPONENT.into(),
            operator: "NotIn".into(),
            values: Some(vec![Component::Worker.as_str().into()]),
        }]),
        ..LabelSelector::default()
    };
    NetworkPolicy {
        metadata: meta(job, &Names::of(job).partition, Component::Redis),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(selector(job, Component::Redis)),
                ..LabelSelector::default()
            }),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(vec![NetworkPolicyPeer {
                    // Any namespace, any pod that is not a worker.
                    namespace_selector: Some(LabelSelector::default()),
                    pod_selector: Some(not_a_worker),
                    ..NetworkPolicyPeer::default()
                }]),
                ports: Some(vec![NetworkPolicyPort {
                    port: Some(IntOrString::Int(REDIS_PORT)),
                    protocol: Some("TCP".into()),
                    ..NetworkPolicyPort::default()
                }]),
            }]),
            ..NetworkPolicySpec::default()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::fixtures;

    #[test]
    fn redis_admits_everyone_but_the_workers() {
        let job = fixtures::synthetic("demo");
        let policy = network_policy(&job);
        assert_eq!(policy.metadata.name.as_deref(), Some("demo-partition"));
        let spec = policy.spec.unwrap();
        let selected = spec.pod_selector.unwrap().match_labels.unwrap();
        assert_eq!(selected[LABEL_COMPONENT], "redis");
        let from = &spec.ingress.unwrap()[0].from.clone().unwrap()[0];
        let expr = &from
            .pod_selector
            .as_ref()
            .unwrap()
            .match_expressions
            .as_ref()
            .unwrap()[0];
        assert_eq!(
            (expr.key.as_str(), expr.operator.as_str()),
            (LABEL_COMPONENT, "NotIn")
        );
        assert_eq!(expr.values.as_deref(), Some(&["worker".to_string()][..]));
        assert_eq!(from.namespace_selector, Some(LabelSelector::default()));
    }
}
