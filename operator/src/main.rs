//! `wordcount-operator`: reconciles `WordCountJob`s in the watched namespaces
//! and serves health and metrics endpoints.

use clap::{Parser, ValueEnum};
use std::{net::SocketAddr, process::ExitCode, sync::Arc};
use tracing::{error, info};
use tracing_subscriber::EnvFilter;
use wordcount_operator::{
    context::Context, controller, metrics::Metrics, redis::progress::RedisReader,
    resources::network_policy::OperatorPods, server, view,
};

#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Namespace to watch; repeat or comma-separate for several. All
    /// namespaces when none is given.
    #[arg(long = "namespace", env = "WATCH_NAMESPACES", value_delimiter = ',')]
    namespaces: Vec<String>,

    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,

    /// Address of the live view of every job (`/`: the jobs; their pages
    /// at `/ns/NAMESPACE/NAME/`); not served when not given.
    #[arg(long, env = "VIEW_LISTEN")]
    view_listen: Option<SocketAddr>,

    /// The `wordcount` image of jobs whose spec names none.
    #[arg(long, env = "WORDCOUNT_JOB_IMAGE", default_value = wordcount_operator::crd::DEFAULT_IMAGE)]
    job_image: String,

    /// The Redis image of jobs whose spec names none; the job image (which
    /// carries `redis-server`) when not given.
    #[arg(long, env = "WORDCOUNT_REDIS_IMAGE")]
    redis_image: Option<String>,

    /// The Redis image of RedisRaft jobs whose spec names none: one with
    /// the RedisRaft module where docs/src/modes/redisraft.md says. Such a job fails at once,
    /// saying so, when neither names one.
    #[arg(long, env = "WORDCOUNT_REDISRAFT_IMAGE")]
    redisraft_image: Option<String>,

    /// The operator's namespace (the chart passes its pod's): every job's
    /// Redis admits the operator's pods from there.
    #[arg(long, env = "OPERATOR_NAMESPACE")]
    operator_namespace: Option<String>,

    /// Labels of the operator's pods, `key=value` comma-separated (the
    /// chart passes its selector labels). Without them a job's Redis admits
    /// only the job's own pods, and the operator cannot read its progress.
    #[arg(long, env = "OPERATOR_POD_LABELS", value_delimiter = ',', value_parser = label)]
    operator_pod_labels: Vec<(String, String)>,

    /// Log format; the level comes from RUST_LOG (default info).
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

fn label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().into(), v.trim().into())),
        _ => Err(format!("{s:?} is not key=value")),
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: pod logs are read by tools, not people.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi);
    match args.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    let namespaces: Vec<String> = args
        .namespaces
        .into_iter()
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .collect();

    let client = match kube::Client::try_default().await {
        Ok(c) => c,
        Err(e) => {
            error!(error = %e, "no Kubernetes client configuration (in-cluster or KUBECONFIG)");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = controller::check_access(&client, &namespaces).await {
        error!(error = %e, "cannot list WordCountJobs: is the CRD installed (crds/wordcountjob.yaml) and RBAC granted?");
        return ExitCode::FAILURE;
    }

    let metrics = Arc::new(Metrics::default());
    let http = tokio::spawn(server::serve(args.listen, metrics.clone()));
    let mut ctx = Context::new(client.clone(), Arc::new(RedisReader::default()), metrics)
        .with_images(args.job_image, args.redis_image.filter(|i| !i.is_empty()))
        .with_redisraft_image(args.redisraft_image.filter(|i| !i.is_empty()))
        .with_operator_pods(OperatorPods {
            namespace: args.operator_namespace.filter(|n| !n.is_empty()),
            labels: args.operator_pod_labels.into_iter().collect(),
        });
    // Without the live view: no port, no routes, no readers.
    let views = match args.view_listen {
        Some(addr) => {
            let views = Arc::new(view::Views::default());
            ctx = ctx.with_views(views.clone());
            tokio::spawn(views.clone().sweep_every(std::time::Duration::from_secs(5)));
            tokio::spawn(view::http::serve(addr, views))
        }
        None => tokio::spawn(std::future::pending::<std::io::Result<()>>()),
    };
    let ctx = Arc::new(ctx);
    info!(namespaces = ?namespaces, "watching WordCountJobs{}", if namespaces.is_empty() { " in all namespaces" } else { "" });
    tokio::select! {
        _ = controller::run(client, namespaces, ctx) => {
            info!("controller stopped");
            ExitCode::SUCCESS
        }
        served = http => {
            error!(result = ?served, "the HTTP server stopped");
            ExitCode::FAILURE
        }
        served = views => {
            error!(result = ?served, "the live view's server stopped");
            ExitCode::FAILURE
        }
    }
}
