//! The auth-service binary: configuration from the environment, then the library.

use auth_service::Application;
use auth_service::config::AuthConfig;
use tokenauth_kit::config::Env;

#[tokio::main]
async fn main() {
    tokenauth_kit::service::exit_on_error("auth-service", run()).await;
}

async fn run() -> anyhow::Result<()> {
    tokenauth_kit::telemetry::init(&Env)?;
    let config = AuthConfig::from_env()?;
    let app = Application::build(config).await?;
    tracing::info!(url = %app.base_url(), "auth-service listening");
    app.run_until_stopped().await?;
    Ok(())
}
