//! The standing NetworkPolicy in front of a job's Redis: its port admits
//! the job's own pods and the operator (which reads the job's progress),
//! nobody else. A partition fault narrows this same policy while it is in
//! force (the workers are left out), rather than adding a second one:
//! policies only ever add allowances, so a second could never take one away.
//! A Crdt job has one a Redis instance, and a partition leaves out the pods
//! (driver and workers) of the sites it cuts off from that instance.

use super::{
    site_meta, site_selector, Component, Names, Site, LABEL_COMPONENT, LABEL_JOB, LABEL_SITE,
    REDIS_PORT,
};
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

/// The policy of a site's Redis, with the pods that partition `partition`
/// cuts off left out while it is in force.
pub fn redis_ingress(
    job: &WordCountJob,
    site: Site,
    operator: &OperatorPods,
    partition: Option<usize>,
) -> NetworkPolicy {
    let left_out = partition.and_then(|i| match site {
        None => Some((LABEL_COMPONENT, vec![Component::Worker.as_str().into()])),
        Some(instance) => {
            let p = job.spec.partitions().get(i)?;
            let sites: Vec<String> = (0..job.spec.crdt_sites().unwrap_or(0))
                .filter(|&s| p.cuts(s, instance))
                .map(|s| s.to_string())
                .collect();
            (!sites.is_empty()).then_some((LABEL_SITE, sites))
        }
    });
    let own_pods = LabelSelector {
        match_labels: Some(BTreeMap::from([(LABEL_JOB.into(), job.name_any())])),
        match_expressions: left_out.map(|(key, values)| {
            vec![LabelSelectorRequirement {
                key: key.into(),
                operator: "NotIn".into(),
                values: Some(values),
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
    let name = Names::of_site(job, site).redis_ingress;
    let mut metadata = site_meta(job, &name, Component::Redis, site);
    metadata.annotations =
        partition.map(|i| BTreeMap::from([(PARTITION_ANNOTATION.into(), i.to_string())]));
    NetworkPolicy {
        metadata,
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(site_selector(job, Component::Redis, site)),
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
        let policy = redis_ingress(&job, None, &operator(), None);
        assert_eq!(policy.metadata.name.as_deref(), Some("demo-redis-ingress"));
        assert_eq!(partition_of(&policy), None);
        let spec = policy.spec.unwrap();
        assert_eq!(
            spec.pod_selector.unwrap().match_labels.unwrap(),
            crate::resources::selector(&job, Component::Redis)
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
        let alone = redis_ingress(&job, None, &OperatorPods::default(), None);
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
        let cut = redis_ingress(&job, None, &operator(), Some(1));
        assert_eq!(
            cut.metadata.name,
            redis_ingress(&job, None, &operator(), None).metadata.name
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

    #[test]
    fn a_crdt_partition_leaves_out_the_sites_it_cuts_from_each_instance() {
        let mut job = fixtures::synthetic("demo");
        job.spec.redis.mode = wordcount_protocol::RedisMode::Crdt;
        job.spec.faults = Some(crate::crd::Faults {
            partitions: vec![crate::crd::Partition {
                after: "1s".parse().unwrap(),
                duration: "1s".parse().unwrap(),
                sites: vec![0, 1],
                redis: vec![2],
            }],
            ..Default::default()
        });
        let left_out = |instance: usize, partition| {
            let policy = redis_ingress(&job, Some(instance), &operator(), partition);
            let spec = policy.spec.unwrap();
            let selected = spec.pod_selector.unwrap().match_labels.unwrap();
            assert_eq!(selected[LABEL_SITE], instance.to_string());
            let own = spec.ingress.unwrap()[0].from.clone().unwrap()[0]
                .pod_selector
                .clone()
                .unwrap();
            own.match_expressions.map(|e| {
                assert_eq!(
                    (e[0].key.as_str(), e[0].operator.as_str()),
                    (LABEL_SITE, "NotIn")
                );
                e[0].values.clone().unwrap()
            })
        };
        assert_eq!(left_out(2, Some(0)), Some(vec!["0".into(), "1".into()]));
        // Instances the partition does not name admit every site.
        assert_eq!(left_out(0, Some(0)), None);
        assert_eq!(left_out(2, None), None);
        let name = |i| {
            redis_ingress(&job, Some(i), &operator(), None)
                .metadata
                .name
        };
        assert_eq!(name(1).as_deref(), Some("demo-redis-ingress-1"));
    }
}
