//! What every reconcile step shares: `Context`, `Error`, `apply`.
//!
//! The steps (`autoscale`, `chaos`, `events`, `finish`) and the controller
//! that calls them all import from here, and this imports none of them: the
//! controller only orchestrates.

use crate::{
    crd::{FaultKind, WordCountJob, WordCountJobStatus, DEFAULT_IMAGE},
    metrics::Metrics,
    redis::{
        clients::{ClientKill, EndConnections},
        progress::ProgressReader,
        Endpoint,
    },
    resources::{network_policy::OperatorPods, MANAGER},
    view::Views,
};
use k8s_openapi::NamespaceResourceScope;
use kube::{
    api::{Patch, PatchParams},
    runtime::events::Recorder,
    Api, Client, Resource, ResourceExt,
};
use serde::{de::DeserializeOwned, Serialize};
use std::{fmt::Debug, sync::Arc};

/// Why a reconcile failed, a variant for each step that can: dereference
/// (the job), build (its password), apply (a child), observe (pods, their
/// events), autoscale, chaos, the status write, and a finished job letting
/// go. A step that runs others' calls (`apply`) wraps their error, so the
/// message says both the step and the call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the job has no namespace")]
    NoNamespace,
    #[error("cannot get WordCountJob {name}: {source}")]
    GetJob { name: String, source: kube::Error },
    #[error("cannot read the Redis password from Secret {secret}: {source}")]
    ReadPassword { secret: String, source: kube::Error },
    #[error("cannot apply {kind} {name}: {source}")]
    ApplyResource {
        kind: String,
        name: String,
        source: kube::Error,
    },
    #[error("cannot get {kind} {name}: {source}")]
    GetResource {
        kind: String,
        name: String,
        source: kube::Error,
    },
    #[error("cannot delete {kind} {name}: {source}")]
    DeleteResource {
        kind: String,
        name: String,
        source: kube::Error,
    },
    #[error("cannot list the job's pods: {source}")]
    ListPods { source: kube::Error },
    #[error("cannot list the events of pod {pod}: {source}")]
    ListPodEvents { pod: String, source: kube::Error },
    #[error("autoscale to {workers} workers: {source}")]
    Autoscale { workers: i32, source: Box<Error> },
    #[error("chaos ({fault:?}): {source}")]
    Chaos {
        fault: FaultKind,
        source: Box<Error>,
    },
    #[error("cannot write the status: {source}")]
    PatchStatus { source: kube::Error },
    #[error("finishing: {source}")]
    Finish { source: Box<Error> },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A short label for metrics: what the API server said (`api_<code>`,
    /// else `kube`) whichever step asked, as before steps were told apart,
    /// so that the metric keeps its series.
    pub fn kind(&self) -> String {
        match self {
            Error::NoNamespace => "no_namespace".into(),
            Error::Autoscale { source, .. }
            | Error::Chaos { source, .. }
            | Error::Finish { source } => source.kind(),
            Error::GetJob { source, .. }
            | Error::ReadPassword { source, .. }
            | Error::ApplyResource { source, .. }
            | Error::GetResource { source, .. }
            | Error::DeleteResource { source, .. }
            | Error::ListPods { source }
            | Error::ListPodEvents { source, .. }
            | Error::PatchStatus { source } => match source {
                kube::Error::Api(s) => format!("api_{}", s.code),
                _ => "kube".into(),
            },
        }
    }

    /// The step's error, wrapped as a chaos fault's.
    pub fn chaos(fault: FaultKind) -> impl FnOnce(Error) -> Error {
        move |e| Error::Chaos {
            fault,
            source: Box::new(e),
        }
    }
}

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub progress: Arc<dyn ProgressReader>,
    /// What a partition uses to end the workers' Redis connections.
    pub connections: Arc<dyn EndConnections>,
    pub metrics: Arc<Metrics>,
    /// Images for jobs whose spec names none.
    pub job_image: String,
    pub redis_image: Option<String>,
    /// The image with the RedisRaft module, for RedisRaft jobs whose spec
    /// names none.
    pub redisraft_image: Option<String>,
    /// The operator's own pods, which every job's Redis admits.
    pub operator_pods: OperatorPods,
    /// The live view of every job, when it is served.
    pub views: Option<Arc<Views>>,
}

impl Context {
    pub fn new(client: Client, progress: Arc<dyn ProgressReader>, metrics: Arc<Metrics>) -> Self {
        Self {
            recorder: Recorder::new(client.clone(), MANAGER.into()),
            client,
            progress,
            connections: Arc::new(ClientKill::default()),
            metrics,
            job_image: DEFAULT_IMAGE.into(),
            redis_image: None,
            redisraft_image: None,
            operator_pods: OperatorPods::default(),
            views: None,
        }
    }

    pub fn with_images(mut self, job_image: String, redis_image: Option<String>) -> Self {
        self.job_image = job_image;
        self.redis_image = redis_image;
        self
    }

    pub fn with_redisraft_image(mut self, image: Option<String>) -> Self {
        self.redisraft_image = image;
        self
    }

    pub fn with_connections(mut self, connections: Arc<dyn EndConnections>) -> Self {
        self.connections = connections;
        self
    }

    pub fn with_operator_pods(mut self, operator_pods: OperatorPods) -> Self {
        self.operator_pods = operator_pods;
        self
    }

    pub fn with_views(mut self, views: Arc<Views>) -> Self {
        self.views = Some(views);
        self
    }

    /// Tells the live view what this reconcile saw, if it is served.
    pub(crate) async fn view(
        &self,
        job: &WordCountJob,
        redis: Option<&Endpoint>,
        status: &WordCountJobStatus,
    ) {
        if let Some(views) = &self.views {
            views.observe(job, redis, status).await;
        }
    }
}

/// Server-side apply of a desired child; returns it as stored (with status).
pub(crate) async fn apply<K>(ctx: &Context, ns: &str, obj: &K) -> Result<K>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), ns);
    let params = PatchParams::apply(MANAGER).force();
    let name = obj.name_any();
    api.patch(&name, &params, &Patch::Apply(obj))
        .await
        .map_err(|source| Error::ApplyResource {
            kind: K::kind(&()).into_owned(),
            name,
            source,
        })
}
