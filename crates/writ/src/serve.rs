//! `writ serve`: load everything, refuse to start on any error, then serve the API and
//! run the scheduler until SIGINT or SIGTERM.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::watch;
use tracing_subscriber::EnvFilter;
use writ_connectors::Connectors;
use writ_engine::SystemClock;
use writ_engine::health::supervise;
use writ_engine::{Engine, EvidenceCourier, Reconciler, Scheduler};

/// A supervised task's body, built afresh for each (re)start.
type TaskFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

use crate::Failure;
use crate::cli::LogFormat;
use crate::offline::{load_config, load_policy, open_store_upgrading};
use writ_config::Config;
use writ_store::Store;

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_env("WRIT_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour only for a person at a terminal, never in a file or a pipe.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

pub async fn run(config_path: &Path, log_format: LogFormat, migrate: bool) -> Result<(), Failure> {
    init_tracing(log_format);
    let config = load_config(config_path)?;
    let policy = load_policy(&config)?;
    let connectors = Connectors::from_config(&config)
        .map_err(|e| Failure::usage(format!("{}: {e}", config.path.display())))?;
    let tickets = writ_itsm::TicketSystems::from_config(&config)
        .map_err(|e| Failure::usage(format!("{}: itsm: {e}", config.path.display())))?;
    let token_key = writ_engine::keys::TokenKey::load(&config.keys.token)
        .map_err(|error| Failure::failed(format!("{}: keys: {error}", config.path.display())))?;
    let ledger_key = writ_engine::checkpoint::LedgerKey::load(&config.keys.ledger)
        .map_err(|error| Failure::failed(format!("{}: keys: {error}", config.path.display())))?;
    // Binding tokens are signed only where PEPs enforce something (no key file otherwise).
    let binding_key = config
        .entitlements
        .values()
        .any(|entitlement| entitlement.pep.is_some())
        .then(|| writ_engine::arap::BindingKey::load(&config.keys.authzen))
        .transpose()
        .map_err(|error| Failure::failed(format!("{}: keys: {error}", config.path.display())))?;
    let tls = config
        .tls
        .clone()
        .map(crate::tls::ReloadingTls::load)
        .transpose()
        .map_err(|e| Failure::failed(format!("{}: server TLS: {e}", config.path.display())))?
        .map(Arc::new);
    let (store, migrated) = open_store_upgrading(&config, migrate).await?;
    if migrated.from != migrated.to {
        tracing::info!(
            from = migrated.from,
            to = migrated.to,
            "database schema upgraded"
        );
    }
    let _one_node = sqlite_serve_lock(&config, &store)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| {
            Failure::failed(format!(
                "{}: server.listen: cannot listen on {}: {e}",
                config.path.display(),
                config.listen
            ))
        })?;
    let metrics_listener = match config.metrics_listen {
        None => None,
        Some(address) => Some(tokio::net::TcpListener::bind(address).await.map_err(|e| {
            Failure::failed(format!(
                "{}: server.metrics_listen: cannot listen on {address}: {e}",
                config.path.display()
            ))
        })?),
    };
    if let Some(address) = config.metrics_listen {
        tracing::info!("metrics (no token) on http://{address}/metrics");
    }
    tracing::info!(
        policies = policy.policy_count(),
        policy_hash = policy.policy_hash(),
        storage = %writ_store::redact(&config.storage_url),
        "writ serving on {}://{}",
        if tls.is_some() { "https" } else { "http" },
        config.listen
    );
    if tls.is_none() && !config.listen.ip().is_loopback() {
        tracing::warn!(
            "serving plaintext HTTP on {} (allow_plaintext = true): bearer tokens must reach writ through a proxy that terminates TLS",
            config.listen
        );
    }

    let oidc = writ_oidc::OidcVerifier::new(&config.oidc, &config.workload_issuers)
        .map_err(|e| Failure::failed(format!("{}: oidc: {e}", config.path.display())))?;
    let config = Arc::new(config);
    {
        // In the background: a target that is slow to answer must not delay serving.
        let (config, connectors) = (config.clone(), connectors.clone());
        tokio::spawn(async move {
            crate::check::log_problems(&writ_engine::check_targets(&config, &connectors).await);
        });
    }
    let mut engine = Engine::new(
        config,
        Arc::new(policy),
        store.clone(),
        connectors,
        Arc::new(SystemClock),
    )
    .with_ticket_systems(tickets)
    .with_oidc(oidc)
    .with_token_key(token_key)
    .with_ledger_key(ledger_key);
    if let Some(key) = binding_key {
        engine = engine.with_binding_key(key);
    }
    let engine = Arc::new(engine);
    // The people an identity provider pushed, before anything decides or sweeps: a
    // leaver sweep that did not know them would take them for leavers.
    engine
        .load_directory()
        .await
        .map_err(|e| Failure::failed(format!("cannot read the directory: {e}")))?;
    // Orphans writ disabled stay disabled from the first request on.
    engine
        .load_orphans()
        .await
        .map_err(|e| Failure::failed(format!("cannot read the orphaned identities: {e}")))?;
    let state = writ_api::AppState {
        engine: engine.clone(),
        metrics: writ_api::install_metrics_recorder(engine.config()),
        limits: Arc::new(writ_api::limits::RateLimits::new(&engine.config().http)),
        verifying: Arc::new(tokio::sync::Semaphore::new(1)),
    };
    let (stop, stopped) = watch::channel(false);
    // A task that keeps panicking ends writ (non-zero) rather than run without it.
    let (died, mut dead) = watch::channel(None::<String>);
    let supervised = |name: &'static str,
                      deadline: Option<std::time::Duration>,
                      task: Box<dyn Fn() -> TaskFuture + Send + Sync>| {
        let (health, stopped, died) = (engine.health().clone(), stopped.clone(), died.clone());
        tokio::spawn(async move {
            if let Err(error) = supervise(health, name, deadline, stopped, task).await {
                tracing::error!(%error, "a background task cannot be kept running; stopping writ");
                let _ = died.send(Some(error.to_string()));
            }
        })
    };
    let courier = {
        let (engine, stopped) = (engine.clone(), stopped.clone());
        supervised(
            writ_engine::COURIER_TASK_NAME,
            Some(writ_engine::COURIER_TICK_DEADLINE),
            Box::new(move || Box::pin(EvidenceCourier::new(engine.clone()).run(stopped.clone()))),
        )
    };
    let reconciler = {
        let (engine, stopped) = (engine.clone(), stopped.clone());
        supervised(
            writ_engine::metrics_names::RECONCILER_TASK_NAME,
            None,
            Box::new(move || Box::pin(Reconciler::new(engine.clone()).run(stopped.clone()))),
        )
    };
    let scheduler = {
        let (engine, stopped) = (engine.clone(), stopped.clone());
        supervised(
            writ_engine::SCHEDULER_TASK_NAME,
            Some(writ_engine::SCHEDULER_TICK_DEADLINE),
            Box::new(move || Box::pin(Scheduler::new(engine.clone()).run(stopped.clone()))),
        )
    };

    let checkpointer = {
        let (engine, stopped) = (engine.clone(), stopped.clone());
        supervised(
            writ_engine::checkpoint::CHECKPOINT_TASK_NAME,
            engine.checkpoint_tick_deadline(),
            Box::new(move || {
                let (engine, stopped) = (engine.clone(), stopped.clone());
                Box::pin(async move { engine.run_checkpoints(stopped).await })
            }),
        )
    };

    let poller = {
        let (engine, stopped) = (engine.clone(), stopped.clone());
        supervised(
            writ_engine::polling::POLLER_TASK_NAME,
            engine.poller_tick_deadline(),
            Box::new(move || {
                let (engine, stopped) = (engine.clone(), stopped.clone());
                Box::pin(async move { engine.run_ticket_polls(stopped).await })
            }),
        )
    };

    let reloader = {
        let (engine, mut stopped) = (engine.clone(), stopped.clone());
        tokio::spawn(async move {
            #[cfg(unix)]
            {
                use tokio::signal::unix::{SignalKind, signal};
                let Ok(mut hangups) = signal(SignalKind::hangup()) else {
                    tracing::warn!(
                        "cannot listen for SIGHUP; reload policies with `writ policy reload`"
                    );
                    return;
                };
                loop {
                    tokio::select! {
                        _ = hangups.recv() => {}
                        _ = stopped.wait_for(|stop| *stop) => return,
                    }
                    let by = writ_domain::ledger::SystemActor::Signal.into();
                    if let Err(error) = engine.reload_policy(&by).await {
                        tracing::error!(%error, "SIGHUP: the policies were not reloaded");
                    }
                }
            }
            #[cfg(not(unix))]
            let _ = stopped.wait_for(|stop| *stop).await;
        })
    };

    let header_read_timeout = std::time::Duration::from_secs(
        u64::try_from(engine.config().http.header_read_timeout_seconds).unwrap_or(10),
    );
    let metrics_server = metrics_listener.map(|listener| {
        let (router, mut stopped) = (writ_api::metrics_router(state.clone()), stopped.clone());
        tokio::spawn(crate::http_server::serve(
            listener,
            router,
            header_read_timeout,
            None,
            async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            },
        ))
    });
    let tls_watcher = tls
        .clone()
        .map(|tls| tokio::spawn(tls.watch(stopped.clone())));
    crate::http_server::serve(
        listener,
        writ_api::router(state),
        header_read_timeout,
        tls,
        async move {
            tokio::select! {
                () = shutdown_signal() => {}
                _ = dead.wait_for(Option::is_some) => {}
            }
        },
    )
    .await;
    let _ = stop.send(true);
    let _ = scheduler.await;
    let _ = courier.await;
    let _ = reconciler.await;
    let _ = checkpointer.await;
    let _ = poller.await;
    let _ = reloader.await;
    if let Some(tls_watcher) = tls_watcher {
        let _ = tls_watcher.await;
    }
    if let Some(metrics_server) = metrics_server {
        let _ = metrics_server.await;
    }
    store.close().await;
    tracing::info!("writ stopped");
    if let Some(reason) = died.borrow().clone() {
        return Err(Failure::failed(format!("stopped because {reason}")));
    }
    Ok(())
}

/// A SQLite database has one node: a second `writ serve` on the same file is refused
/// (several nodes share a PostgreSQL database instead). The lock is the OS's, on the
/// database file itself (independent of SQLite's own), held until the process ends.
fn sqlite_serve_lock(config: &Config, store: &Store) -> Result<Option<std::fs::File>, Failure> {
    let Some(file) = store.sqlite_file() else {
        return Ok(None);
    };
    let handle = std::fs::File::open(file).map_err(|error| {
        Failure::failed(format!(
            "{}: storage.url: {}: {error}",
            config.path.display(),
            file.display()
        ))
    })?;
    match handle.try_lock() {
        Ok(()) => Ok(Some(handle)),
        Err(std::fs::TryLockError::WouldBlock) => Err(Failure::failed(format!(
            "{}: storage.url: another `writ serve` is using {}; a SQLite database has one node \
             (run several nodes on PostgreSQL: docs/deployment.md)",
            config.path.display(),
            file.display()
        ))),
        Err(std::fs::TryLockError::Error(error)) => Err(Failure::failed(format!(
            "{}: storage.url: cannot lock {}: {error}",
            config.path.display(),
            file.display()
        ))),
    }
}
