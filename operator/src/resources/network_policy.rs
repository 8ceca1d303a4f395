//! The standing NetworkPolicy in front of a job's Redis: its port admits
//! the job's own pods and the operator (which reads the job's progress),
//! nobody else. A partition fault narrows this same policy while it is in
//! force (the workers are left out), rather than adding a second one:
//! policies only ever add allowances, so a second could never take one away.

use super::{meta, selector, Component, Names, LABEL_COMPONENT, LABEL_JOB, REDIS_PORT};
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
use kube::ResourceExt;
use std::collections::BTreeMap;

/// Marks the policy while a partition narrows it (the partition's index in
/// the spec), so that the operator knows when one is lifted.
pub const PARTITION_ANNOTATION: &str = "wordcount.dev/partition";
/// The label every namespace carries with its own name.
const NAMESPACE_NAME: &str = "kubernetes.io/metadata.name";

/// Where the operator's pods are, to let them through: the chart passes
/// its namespace and its pods' labels. Out of a cluster there is no such
/// pod (nor a route to the job's Redis), and no labels.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OperatorPods {
    pub namespace: Option<String>,
    pub labels: BTreeMap<String, String>,
}

/// The policy, with the workers cut off while partition `partition` is in force.
pub fn redis_ingress(
    job: &WordCountJob,
    operator: &OperatorPods,
    partition: Option<usize>,
) -> NetworkPolicy {
    let own_pods = LabelSelector {
        match_labels: Some(BTreeMap::from([(LABEL_JOB.into(), job.name_any())])),
        match_expressions: partition.map(|_| {
            vec![LabelSelectorRequirement {
                key: LABEL_COMPONENT.into(),
                operator: "NotIn".into(),
                values: Some(vec![Component::Worker.as_str().into()]),
            }]
        }),
    };
    let mut from = vec![NetworkPolicyPeer {
        // No namespace selector: the job's own namespace only.
        pod_selector: Some(own_pods),
        ..NetworkPolicyPeer::default()
    }];
    if !operator.labels.is_empty() {
        from.push(NetworkPolicyPeer {
            namespace_selector: Some(LabelSelector {
                match_labels: operator
                    .namespace
                    .as_ref()
                    .map(|ns| BTreeMap::from([(NAMESPACE_NAME.into(), ns.clone())])),
                ..LabelSelector::default()
            }),
            pod_selector: Some(LabelSelector {
                match_labels: Some(operator.labels.clone()),
                ..LabelSelector::default()
            }),
            ..NetworkPolicyPeer::default()
        });
    }
    let mut metadata = meta(job, &Names::of(job).redis_ingress, Component::Redis);
    metadata.annotations =
        partition.map(|i| BTreeMap::from([(PARTITION_ANNOTATION.into(), i.to_string())]));
    NetworkPolicy {
        metadata,
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(selector(job, Component::Redis)),
                ..LabelSelector::default()
            }),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(from),
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

/// The partition a stored policy says is in force, if any.
pub fn partition_of(policy: &NetworkPolicy) -> Option<usize> {
    policy
        .metadata
        .annotations
        .as_ref()?
        .get(PARTITION_ANNOTATION)?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::fixtures;

    fn operator() -> OperatorPods {
        OperatorPods {
            namespace: Some("wordcount-system".into()),
            labels: BTreeMap::from([(
                "app.kubernetes.io/name".into(),
                "wordcount-operator".into(),
            )]),
        }
    }

    #[test]
    fn redis_admits_the_jobs_pods_and_the_operator_only() {
        let job = fixtures::synthetic("demo");
        let policy = redis_ingress(&job, &operator(), None);
        assert_eq!(policy.metadata.name.as_deref(), Some("demo-redis-ingress"));
        assert_eq!(partition_of(&policy), None);
        let spec = policy.spec.unwrap();
        assert_eq!(
            spec.pod_selector.unwrap().match_labels.unwrap(),
            selector(&job, Component::Redis)
        );
        let rule = &spec.ingress.unwrap()[0];
        assert_eq!(
            rule.ports.as_ref().unwrap()[0].port,
            Some(IntOrString::Int(6379))
        );
        let from = rule.from.clone().unwrap();
        // The job's pods, in its namespace (no namespace selector), all of them.
        assert_eq!(from[0].namespace_selector, None);
        let own = from[0].pod_selector.clone().unwrap();
        assert_eq!(own.match_labels.unwrap()[LABEL_JOB], "demo");
        assert_eq!(own.match_expressions, None);
        // The operator's pods, in its namespace only.
        let ns = from[1]
            .namespace_selector
            .clone()
            .unwrap()
            .match_labels
            .unwrap();
        assert_eq!(ns[NAMESPACE_NAME], "wordcount-system");
        assert_eq!(
            from[1].pod_selector.clone().unwrap().match_labels,
            Some(operator().labels)
        );
        // Without the operator's labels, only the job's pods.
        let alone = redis_ingress(&job, &OperatorPods::default(), None);
        assert_eq!(
            alone.spec.unwrap().ingress.unwrap()[0]
                .from
                .as_ref()
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn a_partition_leaves_the_workers_out_of_the_same_policy() {
        let job = fixtures::synthetic("demo");
        let cut = redis_ingress(&job, &operator(), Some(1));
        assert_eq!(
            cut.metadata.name,
            redis_ingress(&job, &operator(), None).metadata.name
        );
        assert_eq!(partition_of(&cut), Some(1));
        let from = cut.spec.unwrap().ingress.unwrap()[0].from.clone().unwrap();
        let expr = &from[0]
            .pod_selector
            .as_ref()
            .unwrap()
            .match_expressions
            .clone()
            .unwrap()[0];
        assert_eq!(
            (expr.key.as_str(), expr.operator.as_str()),
            (LABEL_COMPONENT, "NotIn")
        );
        assert_eq!(expr.values.as_deref(), Some(&["worker".to_string()][..]));
        // The operator still gets through.
        assert_eq!(from.len(), 2);
    }
}
