//! The S3 client: an `object_store` [`AmazonS3`] configured from the
//! standard AWS environment variables, and an HTTP layer under it that
//! counts the transient failures `object_store` retries (the count behind
//! `Store::retries`).
//!
//! Retrying itself is `object_store`'s: each request is retried on a
//! connection error, a timeout (of a read-only request), HTTP 5xx, 429 or
//! 408, with jittered exponential back-off (100 ms doubling to 15 s, at most
//! 10 retries within 3 minutes); a GET whose body is cut mid-stream is
//! resumed from the bytes already delivered by a ranged GET that must return
//! the same ETag. All of that happens inside `object_store`, so the count
//! is taken where every attempt passes: its pluggable HTTP client
//! ([`HttpConnector`]), which sees each response and each body error.

use anyhow::{Context, Result};
use async_trait::async_trait;
use http_body_util::BodyExt;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpResponse,
    HttpResponseBody, HttpService, ReqwestConnector,
};
use object_store::{Certificate, ClientOptions};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The client of one bucket, its settings from `env` (the AWS variables of
/// the process environment, or of a test's server); every transient
/// failure it meets adds one to `retries`.
pub(crate) fn client(
    bucket: &str,
    env: &[(String, String)],
    retries: Arc<AtomicU64>,
) -> Result<AmazonS3> {
    // reqwest's TLS takes the process's crypto provider: ring's, as the
    // operator's kube uses (an error means one is installed already).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut options = ClientOptions::new()
        // A caller may take minutes over a big object (it counts as it
        // reads), so no deadline on a whole request (object_store's default
        // of 30 s would cut and resume every long read); a stalled server
        // is still caught by the timeout between two chunks of a body (a
        // caller that stops reading for that long also trips it: its read
        // is then resumed, and counted as a retry). The variables below
        // (AWS_TIMEOUT, AWS_READ_TIMEOUT, ...) override these.
        .with_timeout_disabled()
        .with_read_timeout(Duration::from_secs(30));
    // The AWS SDKs' variable for a private CA (a local server with TLS);
    // object_store has no variable of its own for it.
    if let Some((_, path)) = env.iter().find(|(k, _)| k == "AWS_CA_BUNDLE") {
        let pem =
            std::fs::read(path).with_context(|| format!("cannot read AWS_CA_BUNDLE {path}"))?;
        for cert in Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("AWS_CA_BUNDLE {path} is not a PEM bundle"))?
        {
            options = options.with_root_certificate(cert);
        }
    }
    let mut builder = AmazonS3Builder::new().with_client_options(options);
    // What AmazonS3Builder::from_env does, over `env`: every AWS_* variable
    // object_store knows, the others ignored.
    for (key, value) in env {
        if !key.starts_with("AWS_") {
            continue;
        }
        if let Ok(key) = key.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
            builder = builder.with_config(key, value);
        }
    }
    builder
        .with_bucket_name(bucket)
        // Path style (http://host/bucket/key): local servers have no
        // wildcard DNS for bucket.host, and AWS still serves it.
        .with_virtual_hosted_style_request(false)
        .with_http_connector(CountingConnector { retries })
        .build()
        // Build errors name a missing or malformed setting, never a value
        // of the credentials.
        .with_context(|| format!("cannot configure S3 for bucket {bucket}"))
}

/// The process environment's AWS variables.
pub(crate) fn process_env() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(k, _)| k.starts_with("AWS_"))
        .collect()
}

/// What the server said, shortly: `Code: Message` from an S3 error body in
/// the error's text, else the whole text.
pub(crate) fn server_says(err: &object_store::Error) -> String {
    let text = err.to_string();
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let start = text.find(&open)? + open.len();
        let len = text[start..].find(&format!("</{name}>"))?;
        Some(text[start..start + len].to_owned())
    };
    match (tag("Code"), tag("Message")) {
        // (Without its final period: a context follows it.)
        (Some(code), Some(message)) => format!("{code}: {}", message.trim_end_matches('.')),
        (Some(code), None) => code,
        _ => text,
    }
}

/// Makes object_store's HTTP clients: reqwest's, wrapped in a counter.
#[derive(Debug)]
struct CountingConnector {
    retries: Arc<AtomicU64>,
}

impl HttpConnector for CountingConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        Ok(HttpClient::new(Counting {
            inner: ReqwestConnector::default().connect(options)?,
            retries: Arc::clone(&self.retries),
        }))
    }
}

/// Counts each attempt that failed in a way object_store retries. (The last
/// attempt of a request that then gives up counts too: the store's
/// operation fails then, and with it the job's use of this count.)
#[derive(Debug)]
struct Counting {
    inner: HttpClient,
    retries: Arc<AtomicU64>,
}

#[async_trait]
impl HttpService for Counting {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        let read_only = req.method() == "GET" || req.method() == "HEAD";
        // An object's GET has no query string; a list's has (list-type=2).
        // Only an object's body is resumed when it is cut.
        let object_get = req.method() == "GET" && req.uri().query().is_none();
        let response = match self.inner.execute(req).await {
            Ok(response) => response,
            Err(err) => {
                let retried = match err.kind() {
                    HttpErrorKind::Connect | HttpErrorKind::Request => true,
                    HttpErrorKind::Timeout | HttpErrorKind::Interrupted => read_only,
                    // Decode, Unknown, and kinds added later: not retried.
                    _ => false,
                };
                if retried {
                    self.retries.fetch_add(1, Ordering::Relaxed);
                }
                return Err(err);
            }
        };
        let status = response.status().as_u16();
        if response.status().is_server_error() || status == 429 || status == 408 {
            self.retries.fetch_add(1, Ordering::Relaxed);
        }
        if !(object_get && response.status().is_success()) {
            return Ok(response);
        }
        let retries = Arc::clone(&self.retries);
        Ok(response.map(|body| {
            HttpResponseBody::new(body.map_err(move |err| {
                retries.fetch_add(1, Ordering::Relaxed);
                err
            }))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_bundle_that_cannot_be_read_is_named() {
        let env = [("AWS_CA_BUNDLE".to_owned(), "/nonexistent/ca.pem".to_owned())];
        let err = client("bucket", &env, Arc::default()).unwrap_err();
        assert!(
            format!("{err:#}").contains("/nonexistent/ca.pem"),
            "{err:#}"
        );
    }

    #[test]
    fn server_says_code_and_message() {
        let err = object_store::Error::Generic {
            store: "S3",
            source: "Server returned non-2xx status code: 404 Not Found: <?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist.</Message></Error>".into(),
        };
        assert_eq!(
            server_says(&err),
            "NoSuchBucket: The specified bucket does not exist"
        );
        let err = object_store::Error::Generic {
            store: "S3",
            source: "connection refused".into(),
        };
        assert!(server_says(&err).contains("connection refused"));
    }
}
