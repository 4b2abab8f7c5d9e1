//! A CLI signing in by device code (RFC 8628): it prints a code and an address, the user
//! approves on the auth-service's `/device` page in any browser, and the CLI, polling meanwhile,
//! gets a session and calls the resource-service's `GET /v1/whoami` with it.
//!
//! ```text
//! TOKENAUTH_CLIENT_ID=svc-… cargo run -p tokenauth-client --example device_sign_in
//! ```
//!
//! The client must be public and registered for `urn:ietf:params:oauth:grant-type:device_code`
//! (docs/client.md). `AUTH_URL` (default `http://127.0.0.1:8080`) and `RESOURCE_URL`
//! (default `http://127.0.0.1:8081`) say where the services are.

use tokenauth_client::{AuthClient, send};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("device_sign_in: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let var = |name: &str, default: Option<&str>| {
        std::env::var(name)
            .ok()
            .or(default.map(str::to_owned))
            .ok_or(format!("{name} is not set"))
    };
    let auth = AuthClient::new(var("AUTH_URL", Some("http://127.0.0.1:8080"))?);
    let resource = var("RESOURCE_URL", Some("http://127.0.0.1:8081"))?;
    let pending = auth
        .device_sign_in(&var("TOKENAUTH_CLIENT_ID", None)?)
        .await?;
    println!(
        "Open {} and enter the code {} (or open {}).",
        pending.verification_uri(),
        pending.user_code(),
        pending.verification_uri_complete().unwrap_or("-"),
    );
    let session = pending.wait().await?;
    let http = reqwest::Client::new();
    let url = format!("{resource}/v1/whoami");
    let res = send(&session, || http.get(&url)).await?;
    println!("GET {url}: {} {}", res.status(), res.text().await?);
    Ok(())
}
