//! The resource-service binary: configuration from the environment, then the library. It
//! follows revocations through Redis (`REDIS_URL`).

use resource_service::Application;
use resource_service::config::ResourceConfig;
use tokenauth_kit::config::Env;

#[tokio::main]
async fn main() {
    tokenauth_kit::service::exit_on_error("resource-service", run()).await;
}

async fn run() -> anyhow::Result<()> {
    tokenauth_kit::telemetry::init(&Env)?;
    let config = ResourceConfig::from_env()?;
    let app = Application::build(config, None).await?;
    tracing::info!(url = %app.base_url(), "resource-service listening");
    app.run_until_stopped().await?;
    Ok(())
}
