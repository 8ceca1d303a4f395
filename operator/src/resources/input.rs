//! Where the driver and the workers find the input: the shared volume
//! every pod mounts (and for a synthetic corpus the claim it is generated
//! into and the init container that generates it), or an S3 bucket they
//! read themselves, with no volume at all.

use super::{container_security, meta, Component, Names, Site};
use crate::crd::{Input, SyntheticInput, WordCountJob};
use k8s_openapi::api::core::v1::{
    Container, HostPathVolumeSource, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeClaimVolumeSource, Volume, VolumeMount, VolumeResourceRequirements,
};
use std::collections::BTreeMap;

pub const VOLUME: &str = "input";
/// Where the volume is mounted in every pod.
pub const MOUNT: &str = "/input";
/// A synthetic corpus goes into a folder of its claim, beside the marker
/// that says generation finished (the driver enqueues every file under its
/// `--input`, so the marker must stay outside it). Each Crdt site's driver
/// generates the same corpus (same seed) into a folder of its own, so that
/// no site waits for another; it then enqueues its share of it.
const GENERATED_DIR: &str = "corpus";
const GENERATED_MARKER: &str = ".generated";

/// What a site's driver and workers get as `--input`: a directory of the
/// volume, or `s3://BUCKET/PREFIX` (the same for every Crdt site: each
/// site's driver enqueues its share of what it lists).
pub fn location(job: &WordCountJob, site: Site) -> String {
    let suffix = site.map_or(String::new(), |i| format!("-{i}"));
    match &job.spec.input {
        Input::Synthetic(_) => format!("{MOUNT}/{GENERATED_DIR}{suffix}"),
        Input::HostPath(_) | Input::Pvc(_) => MOUNT.to_string(),
        Input::S3(s3) => s3.url(),
    }
}

/// The claim a synthetic corpus is generated into; other inputs bring their own.
pub fn claim(job: &WordCountJob) -> Option<PersistentVolumeClaim> {
    let Input::Synthetic(_) = job.spec.input else {
        return None;
    };
    let storage = &job.spec.storage;
    Some(PersistentVolumeClaim {
        metadata: meta(job, &Names::of(job).input, Component::Input),
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec![storage.access_mode.as_str().into()]),
            storage_class_name: storage.class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".into(),
                    storage.input_size.clone(),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    })
}

/// The input volume of the driver's and the workers' pods; none for S3.
pub fn volume(job: &WordCountJob) -> Option<Volume> {
    let (host_path, claim) = match &job.spec.input {
        // Type Directory: a missing path fails the mount (reported in the
        // status) rather than silently creating an empty folder on the node.
        Input::HostPath(h) => (
            Some(HostPathVolumeSource {
                path: h.path.clone(),
                type_: Some("Directory".into()),
            }),
            None,
        ),
        Input::Pvc(p) => (
            None,
            Some(PersistentVolumeClaimVolumeSource {
                claim_name: p.claim_name.clone(),
                read_only: Some(true),
            }),
        ),
        Input::Synthetic(_) => (
            None,
            Some(PersistentVolumeClaimVolumeSource {
                claim_name: Names::of(job).input,
                read_only: None,
            }),
        ),
        Input::S3(_) => return None,
    };
    Some(Volume {
        name: VOLUME.into(),
        host_path,
        persistent_volume_claim: claim,
        ..Volume::default()
    })
}

/// The mount in the driver and the workers: read-only, they only read
/// files; none for S3.
pub fn mount(job: &WordCountJob) -> Option<VolumeMount> {
    let sub_path = match &job.spec.input {
        Input::Pvc(p) => p.sub_path.clone().filter(|s| !s.is_empty()),
        Input::S3(_) => return None,
        Input::HostPath(_) | Input::Synthetic(_) => None,
    };
    Some(VolumeMount {
        name: VOLUME.into(),
        mount_path: MOUNT.into(),
        read_only: Some(true),
        sub_path,
        ..VolumeMount::default()
    })
}

/// `wordcount generate` arguments; unset knobs keep the generator's defaults.
pub fn generate_args(s: &SyntheticInput, out: &str) -> Vec<String> {
    let mut args = vec![
        "generate".to_string(),
        "--out".into(),
        out.into(),
        "--files".into(),
        s.files.to_string(),
        "--bytes".into(),
        s.bytes_per_file.to_string(),
    ];
    let mut opt = |flag: &str, value: Option<String>| {
        if let Some(v) = value {
            args.push(flag.into());
            args.push(v);
        }
    };
    opt("--vocabulary", s.vocabulary.map(|v| v.to_string()));
    opt("--zipf", s.zipf.map(|v| v.to_string()));
    opt("--skew", s.skew_factor.map(|v| v.to_string()));
    opt("--seed", s.seed.map(|v| v.to_string()));
    args
}

/// For a synthetic input, the driver's init container that writes the corpus.
///
/// It runs once per driver pod, and a driver retry must not rewrite files
/// that workers may be reading: so it generates only when the marker is
/// absent, and writes the marker last.
pub fn generator(job: &WordCountJob, site: Site) -> Option<Container> {
    let Input::Synthetic(s) = &job.spec.input else {
        return None;
    };
    let out = location(job, site);
    let suffix = site.map_or(String::new(), |i| format!("-{i}"));
    let marker = format!("{MOUNT}/{GENERATED_MARKER}{suffix}");
    let script = format!(
        "if [ -e {marker} ]; then echo 'input already generated'; exit 0; fi\n\
         rm -rf {out} && wordcount \"$@\" && touch {marker}"
    );
    let mut args = vec!["-ec".to_string(), script, "generate".into()];
    args.extend(generate_args(s, &out));
    Some(Container {
        name: "generate".into(),
        image: Some(job.spec.image().to_string()),
        image_pull_policy: Some(job.spec.image_pull_policy.as_str().into()),
        command: Some(vec!["sh".into()]),
        args: Some(args),
        volume_mounts: Some(vec![VolumeMount {
            name: VOLUME.into(),
            mount_path: MOUNT.into(),
            ..VolumeMount::default()
        }]),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        security_context: Some(container_security()),
        ..Container::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        crd::{HostPathInput, PvcInput},
        resources::fixtures,
    };

    #[test]
    fn synthetic_input_gets_a_claim_and_a_generator() {
        let job = fixtures::synthetic("demo");
        let c = claim(&job).unwrap();
        assert_eq!(c.metadata.name.as_deref(), Some("demo-input"));
        let spec = c.spec.unwrap();
        assert_eq!(spec.access_modes.unwrap(), ["ReadWriteOnce"]);
        assert_eq!(
            spec.resources.unwrap().requests.unwrap()["storage"].0,
            "1Gi"
        );
        assert_eq!(
            volume(&job)
                .unwrap()
                .persistent_volume_claim
                .unwrap()
                .claim_name,
            "demo-input"
        );
        assert_eq!(location(&job, None), "/input/corpus");
        assert_eq!(location(&job, Some(2)), "/input/corpus-2");

        let g = generator(&job, None).unwrap();
        let args = g.args.unwrap();
        // sh -ec SCRIPT $0 "$@": $0 is "generate", then wordcount's own args.
        assert_eq!(args[2], "generate");
        assert_eq!(
            args[3..],
            [
                "generate",
                "--out",
                "/input/corpus",
                "--files",
                "8",
                "--bytes",
                "4096",
                "--vocabulary",
                "100",
                "--zipf",
                "1.1",
                "--seed",
                "7"
            ]
        );
        assert!(args[1].contains("/input/.generated"));
        // The generator writes, so its mount is not read-only.
        assert_eq!(g.volume_mounts.unwrap()[0].read_only, None);
    }

    #[test]
    fn host_path_input_is_mounted_read_only_without_a_claim() {
        let job = fixtures::job(
            "demo",
            Input::HostPath(HostPathInput {
                path: "/data/books".into(),
            }),
        );
        assert!(claim(&job).is_none());
        assert!(generator(&job, None).is_none());
        let hp = volume(&job).unwrap().host_path.unwrap();
        assert_eq!(hp.path, "/data/books");
        assert_eq!(hp.type_.as_deref(), Some("Directory"));
        assert_eq!(mount(&job).unwrap().read_only, Some(true));
        assert_eq!(location(&job, None), "/input");
        assert_eq!(location(&job, Some(1)), "/input");
    }

    #[test]
    fn pvc_input_uses_the_claim_and_sub_path() {
        let job = fixtures::job(
            "demo",
            Input::Pvc(PvcInput {
                claim_name: "books".into(),
                sub_path: Some("en".into()),
            }),
        );
        assert!(claim(&job).is_none());
        let pvc = volume(&job).unwrap().persistent_volume_claim.unwrap();
        assert_eq!(
            (pvc.claim_name.as_str(), pvc.read_only),
            ("books", Some(true))
        );
        assert_eq!(mount(&job).unwrap().sub_path.as_deref(), Some("en"));
    }

    #[test]
    fn s3_input_is_a_url_with_no_volume_claim_or_generator() {
        let job = fixtures::s3("demo");
        assert_eq!(location(&job, None), "s3://corpus/books/");
        // Every Crdt site lists the same objects and enqueues its share.
        assert_eq!(location(&job, Some(2)), "s3://corpus/books/");
        assert!(volume(&job).is_none() && mount(&job).is_none());
        assert!(claim(&job).is_none() && generator(&job, None).is_none());

        // No prefix, or an empty one: the whole bucket.
        for prefix in [None, Some("")] {
            let mut whole = fixtures::s3("demo");
            let Input::S3(s3) = &mut whole.spec.input else {
                unreachable!("an S3 job")
            };
            s3.prefix = prefix.map(str::to_string);
            assert_eq!(location(&whole, None), "s3://corpus");
        }
    }
}
