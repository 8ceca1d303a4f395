//! What a job's pods say about failures the batch Jobs do not explain: the
//! driver's last words, an input volume that cannot be mounted, and a
//! Secret a container needs that is not there (both leave pods waiting
//! forever rather than failing).

use crate::resources::{Component, LABEL_COMPONENT};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

fn component(pod: &Pod) -> Option<&str> {
    pod.metadata
        .labels
        .as_ref()?
        .get(LABEL_COMPONENT)
        .map(String::as_str)
}

fn phase(pod: &Pod) -> Option<&str> {
    pod.status.as_ref()?.phase.as_deref()
}

pub fn of_component(pods: &[Pod], c: Component) -> impl Iterator<Item = &Pod> {
    pods.iter()
        .filter(move |p| component(p) == Some(c.as_str()))
}

/// The termination message of the newest failed driver pod: the container
/// that failed (the generator or the driver) and its message, which with
/// `FallbackToLogsOnError` is the tail of its log.
pub fn driver_error(pods: &[Pod]) -> Option<String> {
    let newest = of_component(pods, Component::Driver)
        .filter(|p| phase(p) == Some("Failed"))
        .max_by_key(|p| p.metadata.creation_timestamp.clone())?;
    let status = newest.status.as_ref()?;
    let failed = |statuses: &Option<Vec<ContainerStatus>>| {
        statuses.iter().flatten().find_map(|c| {
            let t = c.state.as_ref()?.terminated.as_ref()?;
            (t.exit_code != 0).then(|| {
                let why = t
                    .message
                    .as_deref()
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("exit code {}", t.exit_code));
                format!("{}: {why}", c.name)
            })
        })
    };
    failed(&status.init_container_statuses).or_else(|| failed(&status.container_statuses))
}

/// The exit code of the driver container in the newest failed driver pod.
pub fn driver_exit_code(pods: &[Pod]) -> Option<i32> {
    let newest = of_component(pods, Component::Driver)
        .filter(|p| phase(p) == Some("Failed"))
        .max_by_key(|p| p.metadata.creation_timestamp.clone())?;
    newest
        .status
        .as_ref()?
        .container_statuses
        .iter()
        .flatten()
        .filter(|c| c.name == crate::resources::driver::CONTAINER)
        .find_map(|c| Some(c.state.as_ref()?.terminated.as_ref()?.exit_code))
}

/// Why a driver or worker pod cannot start its containers, as the kubelet
/// says (`CreateContainerConfigError`): a Secret, or a key of it, that
/// its environment names is missing (an S3 input's credentials, most
/// likely). The pod starts by itself once it is there.
pub fn config_error(pods: &[Pod]) -> Option<String> {
    pods.iter()
        .filter(|p| matches!(component(p), Some("driver" | "worker")))
        .find_map(|p| {
            let s = p.status.as_ref()?;
            let waiting = (s.init_container_statuses.iter())
                .chain(s.container_statuses.iter())
                .flatten()
                .find_map(|c| c.state.as_ref()?.waiting.as_ref())
                .filter(|w| w.reason.as_deref() == Some("CreateContainerConfigError"))?;
            let why = waiting
                .message
                .as_deref()
                .unwrap_or("CreateContainerConfigError");
            let name = p.metadata.name.as_deref().unwrap_or("a pod");
            Some(format!("{name} cannot start: {why}"))
        })
}

/// A pod the scheduler cannot place because a claim it mounts does not exist.
pub fn missing_claim(pods: &[Pod]) -> Option<String> {
    pods.iter().find_map(|p| {
        let conditions = p.status.as_ref()?.conditions.as_ref()?;
        let c = conditions
            .iter()
            .find(|c| c.type_ == "PodScheduled" && c.status == "False")?;
        let msg = c.message.as_deref()?;
        (msg.contains("persistentvolumeclaim") && msg.contains("not found"))
            .then(|| msg.to_string())
    })
}

/// Pods that are scheduled but whose containers have not started: the ones
/// whose events may hold a mount failure.
pub fn stuck_creating(pods: &[Pod]) -> impl Iterator<Item = &Pod> {
    pods.iter().filter(|p| {
        let Some(s) = p.status.as_ref() else {
            return false;
        };
        let scheduled = s
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "PodScheduled" && c.status == "True");
        let waiting = s
            .init_container_statuses
            .iter()
            .chain(s.container_statuses.iter())
            .flatten()
            .any(|c| {
                c.state
                    .as_ref()
                    .and_then(|st| st.waiting.as_ref())
                    .is_some()
            });
        phase(p) == Some("Pending") && scheduled && waiting
    })
}

/// Whether an event message says the input can never be mounted (as opposed
/// to a mount that is merely slow).
pub fn is_permanent_mount_failure(message: &str) -> bool {
    message.contains("hostPath type check failed")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::{
        api::core::v1::{
            ContainerState, ContainerStateTerminated, ContainerStateWaiting, PodCondition,
            PodStatus,
        },
        apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time},
    };
    use std::collections::BTreeMap;

    fn pod(c: Component, phase: &str, created: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                labels: Some(BTreeMap::from([(
                    LABEL_COMPONENT.into(),
                    c.as_str().into(),
                )])),
                creation_timestamp: Some(Time(created.parse().unwrap())),
                ..ObjectMeta::default()
            },
            status: Some(PodStatus {
                phase: Some(phase.into()),
                ..PodStatus::default()
            }),
            ..Pod::default()
        }
    }

    fn terminated(name: &str, code: i32, message: Option<&str>) -> ContainerStatus {
        ContainerStatus {
            name: name.into(),
            state: Some(ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: code,
                    message: message.map(str::to_string),
                    ..ContainerStateTerminated::default()
                }),
                ..ContainerState::default()
            }),
            ..ContainerStatus::default()
        }
    }

    #[test]
    fn driver_error_is_the_newest_failed_pods_message() {
        let mut old = pod(Component::Driver, "Failed", "2025-01-01T00:00:00Z");
        old.status.as_mut().unwrap().container_statuses =
            Some(vec![terminated("driver", 1, Some("old"))]);
        let mut new = pod(Component::Driver, "Failed", "2025-01-01T00:01:00Z");
        new.status.as_mut().unwrap().container_statuses = Some(vec![terminated(
            "driver",
            1,
            Some("error: no such directory /input\n"),
        )]);
        let worker = pod(Component::Worker, "Failed", "2025-01-01T00:02:00Z");
        let pods = [old, new, worker];
        assert_eq!(
            driver_error(&pods).as_deref(),
            Some("driver: error: no such directory /input")
        );
        assert_eq!(driver_exit_code(&pods), Some(1));
        assert_eq!(driver_exit_code(&pods[2..]), None);
    }

    #[test]
    fn a_failed_generator_is_named() {
        let mut p = pod(Component::Driver, "Failed", "2025-01-01T00:00:00Z");
        let s = p.status.as_mut().unwrap();
        s.init_container_statuses = Some(vec![terminated("generate", 2, None)]);
        assert_eq!(driver_error(&[p]).as_deref(), Some("generate: exit code 2"));
        assert_eq!(
            driver_error(&[pod(Component::Driver, "Running", "2025-01-01T00:00:00Z")]),
            None
        );
    }

    #[test]
    fn a_missing_secret_is_what_keeps_a_pod_waiting() {
        let mut p = pod(Component::Worker, "Pending", "2025-01-01T00:00:00Z");
        p.metadata.name = Some("demo-workers-0-abcde".into());
        p.status.as_mut().unwrap().container_statuses = Some(vec![ContainerStatus {
            name: "worker".into(),
            state: Some(ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some("CreateContainerConfigError".into()),
                    message: Some("secret \"s3-credentials\" not found".into()),
                }),
                ..ContainerState::default()
            }),
            ..ContainerStatus::default()
        }]);
        assert_eq!(
            config_error(&[p]).as_deref(),
            Some("demo-workers-0-abcde cannot start: secret \"s3-credentials\" not found")
        );
        let creating = pod(Component::Driver, "Pending", "2025-01-01T00:00:00Z");
        assert_eq!(config_error(&[creating]), None);
    }

    #[test]
    fn unschedulable_for_a_missing_claim() {
        let mut p = pod(Component::Worker, "Pending", "2025-01-01T00:00:00Z");
        p.status.as_mut().unwrap().conditions = Some(vec![PodCondition {
            type_: "PodScheduled".into(),
            status: "False".into(),
            message: Some(
                "0/1 nodes are available: persistentvolumeclaim \"books\" not found.".into(),
            ),
            ..PodCondition::default()
        }]);
        assert!(missing_claim(&[p]).unwrap().contains("\"books\" not found"));
    }

    #[test]
    fn stuck_pods_are_scheduled_and_waiting() {
        let mut p = pod(Component::Driver, "Pending", "2025-01-01T00:00:00Z");
        let s = p.status.as_mut().unwrap();
        s.conditions = Some(vec![PodCondition {
            type_: "PodScheduled".into(),
            status: "True".into(),
            ..PodCondition::default()
        }]);
        s.container_statuses = Some(vec![ContainerStatus {
            name: "driver".into(),
            state: Some(ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some("ContainerCreating".into()),
                    ..ContainerStateWaiting::default()
                }),
                ..ContainerState::default()
            }),
            ..ContainerStatus::default()
        }]);
        let unscheduled = pod(Component::Driver, "Pending", "2025-01-01T00:00:00Z");
        assert_eq!(stuck_creating(&[p, unscheduled]).count(), 1);
        assert!(is_permanent_mount_failure(
            "MountVolume.SetUp failed for volume \"input\" : hostPath type check failed: /data/x is not a directory"
        ));
        assert!(!is_permanent_mount_failure(
            "Unable to attach or mount volumes: timed out"
        ));
    }
}
