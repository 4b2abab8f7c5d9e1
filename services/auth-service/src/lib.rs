//! tokenauth's auth-service: users, sessions, access and refresh tokens over a JSON API.
//! `main.rs` reads the configuration and calls [`Application::build`]; tests and the local
//! all-in-one stack start exactly the same code.

mod base;
mod flows;
mod http;
mod oauth;
pub mod ops;

pub use base::{audit, config, domain, passwords, tokens};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use tokenauth_kit::config::ConfigError;
use tokenauth_kit::service::{self, Running};
use tokenauth_redis::connection::SharedConnection;
use tokenauth_store::Database;

use crate::base::config::AuthConfig;
use crate::base::limits::Limiter;
use crate::base::passwords::Hasher;
use crate::base::publish::Publisher;
use crate::base::state::AppState;
use crate::base::tokens::Tokens;

/// A built, bound, not yet running auth-service.
pub struct Application {
    server: Running,
    state: AppState,
}

impl Application {
    /// Loads keys, binds the listener and starts catching up with the database in the
    /// background; the service answers (503 where it needs the database) before it is ready.
    pub async fn build(config: AuthConfig) -> anyhow::Result<Self> {
        let tokens = Tokens::from_config(&config).map_err(|e| {
            let var = match config.keys {
                crate::base::config::KeyConfig::Hs256 { .. } => "JWT_SECRET",
                crate::base::config::KeyConfig::EdDsa { .. } => "JWT_PRIVATE_KEY_FILE",
            };
            ConfigError::new(var, e.to_string())
        })?;
        let db = Database::new(config.database_url.clone())
            .map_err(|e| ConfigError::new("DATABASE_URL", e.to_string()))?;
        let hasher = Hasher::start(Hasher::default_threads()).await?;
        let redis_error = |e: tokenauth_redis::Error| ConfigError::new("REDIS_URL", e.to_string());
        let (publisher, limit_store) = match &config.redis {
            Some(redis) => (
                Publisher::redis(redis.target(), &redis.prefix).map_err(redis_error)?,
                Some((
                    Arc::new(SharedConnection::open(redis.target().clone())),
                    redis.prefix.clone(),
                )),
            ),
            None => (Publisher::in_process(), None),
        };
        let limiter = |limit| Limiter::new(limit, limit_store.clone());
        let (login_limiter, register_limiter) = (
            limiter(config.login_rate_limit),
            limiter(config.register_rate_limit),
        );
        let state = AppState {
            db,
            tokens: Arc::new(tokens),
            hasher,
            publisher,
            login_limiter,
            register_limiter,
            config: Arc::new(config),
            clients: Arc::default(),
            introspected: Arc::new(tokenauth_revocation::verified::VerifiedCache::new(
                tokenauth_revocation::verified::DEFAULT_CAPACITY,
            )),
            caught_up: Arc::default(),
        };
        let data = web::Data::new(state.clone());
        let docs = tokenauth_kit::openapi::ApiDocs::new(&http::openapi::document());
        let server = service::start(&state.config.common, move |app| {
            app.app_data(data.clone());
            http::configure(app);
            docs.configure(app);
        })?;
        state.publisher.spawn_sync(state.db.clone());
        tokio::spawn(catch_up(state.clone()));
        tokio::spawn(prune_forever(state.clone()));
        tokio::spawn(reload_keys_forever(state.tokens.clone()));
        Ok(Application { server, state })
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// The revocation mirror verifiers in this process share (embedded default only; with
    /// `REDIS_URL` verifiers follow Redis).
    pub fn revocation_mirror(&self) -> Option<Arc<tokenauth_revocation::Mirror>> {
        self.state.publisher.mirror().cloned()
    }

    /// The write side of that mirror (embedded default only), for tests that need to make it
    /// stale as a lost feed would.
    pub fn revocation_writer(&self) -> Option<tokenauth_revocation::MirrorWriter> {
        self.state.publisher.writer().cloned()
    }

    /// Stops the server from elsewhere (graceful shutdown).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.run_until_stopped().await
    }
}

/// How often the key file is read again (see [`Tokens::reload`]): a rotation written to it
/// (`auth-service rotate-key`) signs within this long, without a restart.
pub const KEY_RELOAD_EVERY: Duration = Duration::from_secs(2);

async fn reload_keys_forever(tokens: Arc<Tokens>) {
    let mut tick = tokio::time::interval(KEY_RELOAD_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tick.tick().await;
        match tokens.reload() {
            Ok(Some(kids)) => {
                failing = false;
                tracing::info!(signing = %kids[0], published = ?kids, "signing keys reloaded");
            }
            Ok(None) => failing = false,
            Err(e) => {
                if !failing {
                    tracing::error!(error = %e, "cannot reload the key file; keeping the keys in use");
                }
                failing = true;
            }
        }
    }
}

/// How often spent refresh tokens, ended sessions and lapsed revocations are deleted.
pub const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Deletes what can no longer matter ([`tokenauth_store::prune`]) every [`PRUNE_EVERY`], the
/// first time soon after start-up. Replicas pruning at once is harmless.
async fn prune_forever(state: AppState) {
    let mut tick = tokio::time::interval(PRUNE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if !state.db.is_migrated() {
            continue;
        }
        let (access_ttl, max_age) = (state.tokens.access_ttl, state.config.session_max_age_secs);
        let pruned = state
            .db
            .run_within(Duration::from_secs(60), move |conn| {
                tokenauth_store::prune::prune(
                    conn,
                    crate::base::state::unix_now(),
                    access_ttl,
                    max_age,
                )
            })
            .await;
        match pruned {
            Ok(p) if p.total() > 0 => tracing::info!(
                refresh_tokens = p.refresh_tokens,
                sessions = p.sessions,
                revocations = p.revocations,
                "pruned what can no longer matter"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "prune failed; trying again later"),
        }
    }
}

/// Applies migrations, backfills username keys and skeletons and creates the bootstrap admin as
/// soon as the database allows, retrying while it is down.
async fn catch_up(state: AppState) {
    let mut warned = false;
    loop {
        let step = async {
            if !state.db.is_migrated() {
                let db = state.db.clone();
                tokio::task::spawn_blocking(move || db.migrate())
                    .await
                    .map_err(|e| anyhow::anyhow!("migration task failed: {e}"))??;
                tracing::info!(database = ?state.db.url(), "database schema is current");
            }
            if state.publisher.mirror().is_some_and(|m| !m.is_current()) {
                state.publisher.load_in_process(&state.db).await?;
            }
            // Before the bootstrap admin, which is looked up by the new key.
            crate::base::usernames::backfill(&state.db).await?;
            if let Some(admin) = &state.config.bootstrap_admin {
                crate::flows::accounts::bootstrap_admin(&state.db, &state.hasher, admin)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            anyhow::Ok(())
        };
        match step.await {
            Ok(()) => {
                state
                    .caught_up
                    .store(true, std::sync::atomic::Ordering::Release);
                return;
            }
            Err(e) => {
                if !warned {
                    tracing::warn!(error = %e, "database not ready; retrying every second");
                    warned = true;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
