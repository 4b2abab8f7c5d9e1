//! The resource-service binary: configured by the environment, it follows revocations through
//! Redis (`REDIS_URL`); with no subcommand (or `serve`) it serves.

use clap::{Parser, Subcommand};
use resource_service::Application;
use resource_service::config::ResourceConfig;
use tokenauth_kit::config::Env;

/// tokenauth's resource-service: a protected API that verifies access tokens locally.
/// Configured by the environment (docs/configuration.md); with no subcommand it serves.
#[derive(Parser)]
#[command(name = "resource-service", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (what running with no subcommand does).
    Serve,
    /// Read and check the configuration, print it (no secret), and exit.
    CheckConfig,
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    tokenauth_kit::service::exit_on_error("resource-service", run(cli.command)).await;
}

async fn run(command: Option<Command>) -> anyhow::Result<()> {
    tokenauth_kit::telemetry::init(&Env)?;
    let config = ResourceConfig::from_env()?;
    match command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = Application::build(config, None).await?;
            tracing::info!(url = %app.base_url(), "resource-service listening");
            app.run_until_stopped().await?;
        }
        Command::CheckConfig => println!("{config:#?}"),
    }
    Ok(())
}
