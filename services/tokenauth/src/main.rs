//! `cargo run --release`: the whole tokenauth stack in one process on the embedded default
//! (SQLite under ./data, a generated Ed25519 key, in-process revocation). The same environment
//! variables as the separate services apply.

use auth_service::Application;
use auth_service::config::AuthConfig;
use tokenauth_kit::config::Env;

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("tokenauth: {e}");
        std::process::exit(1);
    }
}

async fn run() -> anyhow::Result<()> {
    tokenauth_kit::telemetry::init(&Env)?;
    let config = AuthConfig::from_env()?;
    let auth = Application::build(config).await?;
    let url = auth.base_url();
    println!("tokenauth is running (embedded default: SQLite under ./data, in-process revocation)");
    println!("  auth-service      {url}");
    println!();
    println!("Try it:");
    println!(
        "  curl -s {url}/v1/register -H 'content-type: application/json' -d '{{\"username\":\"alice\",\"password\":\"correct horse battery\"}}'"
    );
    println!(
        "  TOKEN=$(curl -s {url}/v1/login -H 'content-type: application/json' -d '{{\"username\":\"alice\",\"password\":\"correct horse battery\"}}' | sed 's/.*\"access_token\":\"\\([^\"]*\\)\".*/\\1/')"
    );
    println!("  curl -s {url}/v1/me -H \"Authorization: Bearer $TOKEN\"");
    println!();
    auth.run_until_stopped().await?;
    Ok(())
}
