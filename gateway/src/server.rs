//! Starting and stopping a gateway: build the shared state from the config, bind the
//! listener, serve until the shutdown signal, then let in-flight requests finish (bounded).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use axum::Router;
use cluster_config::{ConfigError, GatewayConfig};
use tokio::net::{TcpListener, TcpSocket};

use crate::admission::Admission;
use crate::cluster::{Batcher, Cluster, ClusterOptions};
use crate::metrics::Metrics;
use crate::routes::{self, AppState};

/// How long in-flight requests may take to finish after the shutdown signal: twice the
/// default request deadline, so a request that started just before it can still complete.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Connections the kernel may hold before they are accepted (it caps this at
/// `net.core.somaxconn`). A flash sale opens thousands at once; the usual 1,024 would drop
/// SYNs and cost buyers a one-second retransmit.
const LISTEN_BACKLOG: u32 = 16_384;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("TLS towards the nodes: {0:#}")]
    Tls(anyhow::Error),
    #[error("HTTPS: {0:#}")]
    Https(anyhow::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// The gateway's HTTP application, without a listener: for serving it yourself or calling
/// it in-process in tests. Must be called inside a Tokio runtime (it starts the batcher).
pub fn app(config: &GatewayConfig) -> Result<Router, StartError> {
    config.validate()?;
    let metrics = Arc::new(Metrics::default());
    let cluster = Arc::new(Cluster::new(
        ClusterOptions {
            nodes: config.nodes.clone(),
            request_deadline: Duration::from_millis(config.request_deadline_ms),
            backoff_initial: Duration::from_millis(config.backoff_initial_ms),
            backoff_max: Duration::from_millis(config.backoff_max_ms),
            dialer: node_dialer(config).map_err(StartError::Tls)?,
        },
        metrics.clone(),
    ));
    let batcher = Batcher::spawn(cluster.clone(), config.max_in_flight);
    let state = Arc::new(AppState {
        cluster,
        batcher,
        admission: Admission::new(
            config.max_in_flight,
            config.rate_limit_per_sec,
            config.rate_limit_burst,
        ),
        metrics,
        tokens: Arc::new(crate::auth::Tokens::from_config(&config.tokens)),
        body_timeout: Duration::from_millis(config.body_timeout_ms),
    });
    Ok(routes::router(state))
}

/// How the gateway dials the nodes: with its gateway certificate, or in plaintext when the
/// config says `insecure` (warned about at every start).
fn node_dialer(config: &GatewayConfig) -> anyhow::Result<cluster_config::mtls::Dialer> {
    let Some(files) = config.tls.tls_files() else {
        tracing::warn!("tls.insecure = true: the gateway dials the nodes in plaintext");
        return Ok(cluster_config::mtls::Dialer::Plain);
    };
    cluster_config::mtls::provider::install_tls13_only();
    let identity = cluster_config::mtls::PemIdentity::load(&files.ca, &files.cert, &files.key)?;
    let role = identity.role()?;
    anyhow::ensure!(
        role == cluster_config::mtls::Role::Gateway,
        "{} is a certificate for {role}, not for a gateway",
        files.cert.display()
    );
    Ok(cluster_config::mtls::Dialer::tls(&identity))
}

/// A gateway bound to its listen address, not yet serving.
pub struct Gateway {
    listener: TcpListener,
    local_addr: SocketAddr,
    app: Router,
    /// `Some`: the API is served over TLS with this config.
    https: Option<Arc<rustls::ServerConfig>>,
}

impl Gateway {
    /// Validates the config and binds `config.listen` (port 0 picks a free port; see
    /// [`Gateway::local_addr`]).
    pub async fn bind(config: GatewayConfig) -> Result<Gateway, StartError> {
        let app = app(&config)?;
        // Bad certificate files fail the start, not the first client's handshake.
        let https = config
            .https
            .as_ref()
            .map(crate::https::server_config)
            .transpose()
            .map_err(StartError::Https)?;
        let listener = listen(config.listen).map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
        let local_addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
        Ok(Gateway {
            listener,
            local_addr,
            app,
            https,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes, then stops accepting connections and waits up to
    /// [`SHUTDOWN_GRACE`] for in-flight requests before returning.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let stopped = async move {
            let _ = stop_rx.await;
        };
        let (mut server, scheme) = match self.https {
            Some(tls) => {
                let listener = crate::https::TlsListener::new(self.listener, tls)?;
                (spawn_server(listener, self.app, stopped), "https")
            }
            None => {
                // Answers are small and latency-bound: do not let Nagle hold them back.
                let listener = self.listener.tap_io(|tcp| {
                    if let Err(e) = tcp.set_nodelay(true) {
                        tracing::debug!(error = %e, "cannot set TCP_NODELAY");
                    }
                });
                (spawn_server(listener, self.app, stopped), "http")
            }
        };
        tracing::info!(addr = %self.local_addr, scheme, "gateway listening");
        tokio::select! {
            ended = &mut server => {
                // The server stopped without being asked: an accept loop error.
                ended??;
                return Ok(());
            }
            () = shutdown => {}
        }
        tracing::info!("shutting down: no new connections, finishing in-flight requests");
        let _ = stop_tx.send(());
        match tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await {
            Ok(ended) => ended??,
            Err(_) => {
                server.abort();
                tracing::warn!(grace = ?SHUTDOWN_GRACE, "in-flight requests did not finish in time; dropped");
            }
        }
        tracing::info!("gateway stopped");
        Ok(())
    }
}

fn spawn_server<L>(
    listener: L,
    app: Router,
    stopped: impl Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<std::io::Result<()>>
where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    let server = axum::serve(listener, app).with_graceful_shutdown(stopped);
    tokio::spawn(std::future::IntoFuture::into_future(server))
}

fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // A restarted gateway can bind while the old one's connections sit in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Binds `config.listen` and serves until `shutdown` completes.
pub async fn serve(
    config: GatewayConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    Gateway::bind(config).await?.run(shutdown).await
}
