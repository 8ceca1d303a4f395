//! Partitions: cut the workers off from Redis over
//! `[start + after, start + after + duration)`.
//!
//! While one is in force the job's standing NetworkPolicy leaves the workers
//! out, and the workers' open Redis connections are ended on every reconcile
//! (enforcers filter new connections only, and one may get through before
//! the enforcer acts). Otherwise the policy admits them again. In a Crdt
//! job, each instance's policy leaves out the sites (their drivers and
//! workers) the partition cuts off from it.

use super::scene::{count, record, Scene};
use crate::{
    context::{apply, Context, Error, Result},
    crd::{FaultKind, Partition, WordCountJob, WordCountJobStatus},
    events,
    pods::of_component,
    redis::Endpoint,
    resources::{self, network_policy, Component, Names, LABEL_SITE},
};
use k8s_openapi::{
    api::{core::v1::Pod, networking::v1::NetworkPolicy},
    jiff::Timestamp,
};
use kube::{runtime::events::EventType, Api, ResourceExt};
use std::time::Duration;
use tracing::{info, warn};

/// While a partition is in force: how often worker connections that got
/// through are ended.
const POLL: Duration = Duration::from_secs(1);

/// Where the partition schedule stands at a moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cut {
    /// The partition (index in the spec) in force now, if any.
    pub active: Option<usize>,
    /// Time to the next start or end of a partition.
    pub next_change: Option<Duration>,
}

/// Partition i is in force over [start + after, start + after + duration).
pub fn cut(partitions: &[Partition], start: Timestamp, now: Timestamp) -> Cut {
    let mut result = Cut::default();
    let mut note = |at: Timestamp| {
        if at > now {
            let d = now.duration_until(at).unsigned_abs();
            result.next_change = Some(result.next_change.map_or(d, |n: Duration| n.min(d)));
        }
    };
    for (i, p) in partitions.iter().enumerate() {
        let (Ok(from), Ok(to)) = (
            start.checked_add(p.after.as_std()),
            start.checked_add(p.after.as_std() + p.duration.as_std()),
        ) else {
            continue;
        };
        if from <= now && now < to && result.active.is_none() {
            result.active = Some(i);
        }
        note(from);
        note(to);
    }
    result
}

/// The addresses of pods (any phase: a pod on its way out may still hold
/// a connection).
fn ips<'a>(pods: impl Iterator<Item = &'a Pod>) -> Vec<String> {
    pods.filter_map(|p| p.status.as_ref()?.pod_ip.clone())
        .collect()
}

/// Each Redis the partition cuts pods off from, and those pods' addresses:
/// the one Redis and the workers, or each Crdt instance and the pods of
/// the sites cut off from it.
fn cut_off(job: &WordCountJob, scene: &Scene<'_>, p: &Partition) -> Vec<(Endpoint, Vec<String>)> {
    let Some(n) = job.spec.crdt_sites() else {
        let workers = of_component(scene.pods, Component::Worker);
        return vec![(scene.redis.clone(), ips(workers))];
    };
    let site_of = |pod: &Pod| -> Option<usize> { pod.labels().get(LABEL_SITE)?.parse().ok() };
    (0..n)
        .filter_map(|instance| {
            let cut = scene
                .pods
                .iter()
                .filter(|pod| site_of(pod).is_some_and(|s| p.cuts(s, instance)));
            Some((scene.redis.instance(instance)?, ips(cut)))
        })
        .filter(|(_, ips)| !ips.is_empty())
        .collect()
}

/// "0, 2", or "all" for an empty list (every site or instance).
fn listed(list: &[i32]) -> String {
    if list.is_empty() {
        return "all".into();
    }
    list.iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Puts the partition in force now (none unless the job runs: `start`) into
/// the standing policy, ends the workers' connections while one is, and
/// records a partition that starts. Returns when to look again.
pub async fn run(
    ctx: &Context,
    job: &WordCountJob,
    scene: &Scene<'_>,
    start: Option<Timestamp>,
    status: &mut WordCountJobStatus,
) -> Result<Option<Duration>> {
    let partitions = job.spec.partitions();
    let cut = match start {
        Some(start) => cut(partitions, start, scene.now),
        None => Cut::default(),
    };
    let ns = job.namespace().ok_or(Error::NoNamespace)?;
    let sites = resources::sites(job);
    // Every policy of the job carries the partition in force; the first says.
    let name = Names::of_site(job, sites[0]).redis_ingress;
    let policies: Api<NetworkPolicy> = Api::namespaced(ctx.client.clone(), &ns);
    let was = match partitions.is_empty() {
        true => None,
        false => policies
            .get_opt(&name)
            .await
            .map_err(|source| Error::GetResource {
                kind: "NetworkPolicy".into(),
                name: name.clone(),
                source,
            })?
            .as_ref()
            .and_then(network_policy::partition_of),
    };
    for &site in &sites {
        let policy = network_policy::redis_ingress(job, site, &ctx.operator_pods, cut.active);
        apply(ctx, &ns, &policy).await?;
    }

    let Some(index) = cut.active else {
        if was.is_some() {
            info!("chaos: partition lifted");
            let note = "workers can reach Redis again".to_string();
            events::publish(
                ctx,
                job,
                EventType::Normal,
                "PartitionLifted",
                "InjectFault",
                note,
            )
            .await;
        }
        return Ok(cut.next_change);
    };
    let mut ended = 0;
    for (redis, ips) in cut_off(job, scene, &partitions[index]) {
        match ctx.connections.end(&redis, &ips).await {
            Ok(n) => ended += n,
            Err(e) => warn!(error = %e, "partition: could not end the cut pods' connections"),
        }
    }
    if count(status, FaultKind::Partition) > index {
        if ended > 0 {
            info!(
                ended,
                "partition: ended worker connections that got through"
            );
        }
        return Ok(Some(POLL));
    }
    info!(policy = %name, ended, "chaos: partition");
    let p = &partitions[index];
    let what = match job.spec.crdt_sites() {
        None => format!("the workers off from Redis with NetworkPolicy {name}"),
        Some(_) => format!(
            "sites {} off from Redis instances {} with NetworkPolicies {}-*",
            listed(&p.sites),
            listed(&p.redis),
            name.trim_end_matches("-0"),
        ),
    };
    let note = format!(
        "cut {what} (partition {} of {}); ended {ended} open connections",
        index + 1,
        partitions.len()
    );
    record(
        ctx,
        job,
        status,
        (FaultKind::Partition, name),
        "Partitioned",
        note,
    )
    .await;
    Ok(Some(POLL))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn partitions_are_in_force_over_their_window() {
        let parts = [
            Partition {
                after: "2s".parse().unwrap(),
                duration: "3s".parse().unwrap(),
                ..Default::default()
            },
            Partition {
                after: "10s".parse().unwrap(),
                duration: "1s".parse().unwrap(),
                ..Default::default()
            },
        ];
        let start = t("2025-01-01T00:00:00Z");
        let at = |s: &str| {
            let c = cut(&parts, start, t(&format!("2025-01-01T00:00:{s}Z")));
            (c.active, c.next_change)
        };
        let secs = Duration::from_secs;
        assert_eq!(at("01"), (None, Some(secs(1))));
        assert_eq!(at("02"), (Some(0), Some(secs(3))));
        assert_eq!(at("05"), (None, Some(secs(5))));
        assert_eq!(at("10"), (Some(1), Some(secs(1))));
        assert_eq!(at("11"), (None, None));
    }
}
