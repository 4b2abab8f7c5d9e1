//! tokenauth's resource-service: a protected API built only on tokenauth-guard and
//! tokenauth-revocation. It never talks to PostgreSQL: tokens are verified with published keys
//! and checked against an in-memory revocation mirror.

pub mod config;
pub mod links;
mod routes;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use actix_web::web;
use secrecy::ExposeSecret;
use tokenauth_guard::GuardBuilder;
use tokenauth_kit::config::ConfigError;
use tokenauth_kit::service::{self, Running};
use tokenauth_revocation::Mirror;

use crate::config::ResourceConfig;
use crate::links::LinkSigner;
use crate::routes::{Files, Started};

pub struct Application {
    server: Running,
}

impl Application {
    /// Builds the service. `in_process` is the auth-service's mirror when both run in one
    /// process; otherwise the mirror follows Redis (`REDIS_URL`, under `REDIS_KEY_PREFIX`),
    /// which is then required.
    pub async fn build(
        config: ResourceConfig,
        in_process: Option<Arc<Mirror>>,
    ) -> anyhow::Result<Self> {
        let mut guard = GuardBuilder::new(config.guard.clone());
        if let Some(mirror) = in_process {
            guard = guard.in_process(mirror);
        }
        let guard = guard.build()?;

        let dir = std::fs::create_dir_all(&config.files_dir)
            .and_then(|()| config.files_dir.canonicalize())
            .map_err(|e| {
                ConfigError::new("FILES_DIR", format!("{}: {e}", config.files_dir.display()))
            })?;
        let signer = match &config.link_secret {
            Some(secret) => LinkSigner::new(secret.expose_secret().as_bytes()),
            None => LinkSigner::random()?,
        };
        let files = web::Data::new(Files {
            dir,
            signer,
            public_base_url: config.public_base_url.clone(),
        });
        let proxies = web::Data::new(config.common.trusted_proxies.clone());
        let started = web::Data::new(Started(Instant::now()));
        let docs = tokenauth_kit::openapi::ApiDocs::new(&routes::document());
        let server = service::start(&config.common, move |app| {
            app.app_data(guard.clone())
                .app_data(files.clone())
                .app_data(proxies.clone())
                .app_data(started.clone());
            routes::configure(app);
            docs.configure(app);
        })?;
        Ok(Application { server })
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// Stops the server from elsewhere (graceful shutdown).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.run_until_stopped().await
    }
}
