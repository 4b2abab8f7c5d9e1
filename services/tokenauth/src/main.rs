//! `cargo run --release`: the whole tokenauth stack in one process on the embedded default
//! (SQLite under ./data, a generated Ed25519 key, in-process revocation). The same environment
//! variables as the separate services apply.

use auth_service::config::AuthConfig;
use clap::Parser;
use resource_service::config::ResourceConfig;
use tokenauth_kit::config::{self, Env};

/// The whole tokenauth stack in one process: the auth-service on 127.0.0.1:8080 and the
/// resource-service on 127.0.0.1:8081 (RESOURCE_BIND_ADDR), on the embedded default (SQLite
/// and a generated key under ./data, in-process revocation). Configured by the environment, as
/// the separate services are (docs/configuration.md); it takes no arguments.
#[derive(Parser)]
#[command(name = "tokenauth", version)]
struct Cli {}

#[tokio::main]
async fn main() {
    // `--help`, `--version` and anything unknown are answered here, before anything starts or
    // is written.
    Cli::parse();
    tokenauth_kit::service::exit_on_error("tokenauth", run()).await;
}

async fn run() -> anyhow::Result<()> {
    tokenauth_kit::telemetry::init(&Env)?;
    let config = AuthConfig::from_source(&Env)?;
    let auth = auth_service::Application::build(config).await?;
    let url = auth.base_url();
    // The resource-service verifies with the auth-service's published keys and shares its
    // revocation mirror (or, with REDIS_URL, follows Redis like any other replica). Its own listen address: RESOURCE_BIND_ADDR (default 127.0.0.1:8081).
    let mut resource_config = ResourceConfig::from_source(&Env)?;
    resource_config.common.listen.bind_addr = config::string_or(
        &Env,
        "RESOURCE_BIND_ADDR",
        resource_service::config::DEFAULT_BIND,
    );
    if config::string(&Env, "JWKS_URL").is_none()
        && config::string(&Env, "JWT_PUBLIC_KEY_FILE").is_none()
    {
        resource_config.guard.keys =
            tokenauth_guard::KeySource::JwksUrl(format!("{url}/.well-known/jwks.json"));
    }
    let mode = if resource_config.guard.redis.is_some() {
        "revocations through Redis"
    } else {
        "in-process revocation"
    };
    let resource =
        resource_service::Application::build(resource_config, auth.revocation_mirror()).await?;
    let resource_url = resource.base_url();
    println!("tokenauth is running ({mode}; default database: SQLite under ./data)");
    println!("  auth-service      {url}");
    println!("  resource-service  {resource_url}");
    println!();
    println!("Try it:");
    println!(
        "  curl -s {url}/v1/register -H 'content-type: application/json' -d '{{\"username\":\"alice\",\"password\":\"correct horse battery\"}}'"
    );
    println!(
        "  TOKEN=$(curl -s {url}/v1/login -H 'content-type: application/json' -d '{{\"username\":\"alice\",\"password\":\"correct horse battery\"}}' | sed 's/.*\"access_token\":\"\\([^\"]*\\)\".*/\\1/')"
    );
    println!("  curl -s {resource_url}/v1/secret -H \"Authorization: Bearer $TOKEN\"");
    println!();
    tokio::try_join!(auth.run_until_stopped(), resource.run_until_stopped())?;
    Ok(())
}
