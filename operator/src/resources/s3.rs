//! What the driver's and the workers' containers need to reach an S3
//! store: the `AWS_*` variables, the only S3 settings `wordcount` reads.
//! The keys come from the user's Secret by reference (`secretKeyRef`),
//! never as values: the operator never reads them, and they are in no
//! argument, status, Event or log. The driver reaches the input and the
//! output, the workers only the input.

use crate::crd::{S3Connection, S3Input, S3Output, WordCountJob};
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, SecretKeySelector};

/// The keys of the credentials Secret, each the name of the variable it
/// becomes.
pub const ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
pub const SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";

/// The store the driver speaks to: its input's, else its output's (the
/// same when both are in S3, by the CRD's rule).
pub fn driver_connection(job: &WordCountJob) -> Option<S3Connection<'_>> {
    (job.spec.s3_input().map(S3Input::connection))
        .or_else(|| job.spec.s3_output().map(S3Output::connection))
}

/// The workers only read the input: no credentials when it is a volume,
/// even if the output is in S3.
pub fn worker_connection(job: &WordCountJob) -> Option<S3Connection<'_>> {
    job.spec.s3_input().map(S3Input::connection)
}

/// The variables of a connection: the keys from its Secret, the region,
/// and the endpoint when it is not AWS (`AWS_ALLOW_HTTP` for plain http).
pub fn env(c: S3Connection<'_>) -> Vec<EnvVar> {
    let from_secret = |key: &str| EnvVar {
        name: key.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: c.credentials_secret.into(),
                key: key.into(),
                // A missing Secret or key keeps the pod from starting,
                // saying which (rather than an anonymous request failing).
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    };
    let literal = |name: &str, value: &str| EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..EnvVar::default()
    };
    let mut env = vec![
        from_secret(ACCESS_KEY_ID),
        from_secret(SECRET_ACCESS_KEY),
        literal("AWS_REGION", c.region),
    ];
    if let Some(endpoint) = c.endpoint {
        env.push(literal("AWS_ENDPOINT_URL", endpoint));
        if endpoint.starts_with("http://") {
            env.push(literal("AWS_ALLOW_HTTP", "true"));
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::fixtures;

    fn names(env: &[EnvVar]) -> Vec<&str> {
        env.iter().map(|e| e.name.as_str()).collect()
    }

    #[test]
    fn keys_come_from_the_secret_by_reference_and_the_rest_as_values() {
        let job = fixtures::s3("demo");
        let env = env(driver_connection(&job).unwrap());
        assert_eq!(
            names(&env),
            [
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_REGION",
                "AWS_ENDPOINT_URL",
                "AWS_ALLOW_HTTP"
            ]
        );
        for key in &env[..2] {
            assert_eq!(key.value, None, "{} is no literal", key.name);
            let r = key.value_from.as_ref().unwrap().secret_key_ref.as_ref();
            let r = r.unwrap();
            assert_eq!(
                (r.name.as_str(), r.key.as_str(), r.optional),
                ("s3-credentials", key.name.as_str(), Some(false))
            );
        }
        let values: Vec<_> = env[2..].iter().map(|e| e.value.as_deref()).collect();
        assert_eq!(
            values,
            [
                Some("us-east-1"),
                Some("http://s3.default.svc:7070"),
                Some("true")
            ]
        );
    }

    #[test]
    fn aws_itself_needs_no_endpoint_and_https_no_plain_http() {
        let mut job = fixtures::s3("demo");
        job.spec.output = None;
        let crate::crd::Input::S3(s3) = &mut job.spec.input else {
            unreachable!("an S3 job")
        };
        s3.endpoint = None;
        s3.region = "eu-west-3".into();
        let aws = env(driver_connection(&job).unwrap());
        assert_eq!(
            names(&aws),
            ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"]
        );
        assert_eq!(aws[2].value.as_deref(), Some("eu-west-3"));

        let mut s3 = job.spec.s3_input().unwrap().clone();
        s3.endpoint = Some("https://minio.storage.svc:9000".into());
        let tls = env(s3.connection());
        assert!(!names(&tls).contains(&"AWS_ALLOW_HTTP"), "{tls:?}");
        assert!(names(&tls).contains(&"AWS_ENDPOINT_URL"));
    }

    #[test]
    fn the_workers_get_the_inputs_store_only() {
        let job = fixtures::s3("demo");
        assert_eq!(worker_connection(&job), driver_connection(&job));
        // Output in S3, input on a volume: only the driver writes.
        let mut out_only = fixtures::synthetic("demo");
        out_only.spec.output = fixtures::s3("demo").spec.output;
        assert_eq!(worker_connection(&out_only), None);
        let c = driver_connection(&out_only).unwrap();
        assert_eq!(c.credentials_secret, "s3-credentials");
        assert_eq!(driver_connection(&fixtures::synthetic("demo")), None);
    }
}
