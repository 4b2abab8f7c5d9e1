//! A service calling another with a client-credentials token: it gets a token for itself from
//! the auth-service (cached until shortly before it expires) and calls the resource-service's
//! `GET /v1/secret` with it, renewing and retrying once if the token was refused as expired.
//!
//! ```text
//! TOKENAUTH_CLIENT_ID=svc-… TOKENAUTH_CLIENT_SECRET=… \
//!   cargo run -p tokenauth-client --example service_to_service
//! ```
//!
//! `AUTH_URL` (default `http://127.0.0.1:8080`) and `RESOURCE_URL` (default
//! `http://127.0.0.1:8081`) say where the services are. docs/client.md shows how to
//! register the client.
//!
//! With `USER_TOKEN` set (a user's access token, as the user would call this service with), it
//! also acts for that user: it exchanges the token (RFC 8693) for one addressed to
//! `DOWNSTREAM_AUDIENCE` (default `resource-service`) and calls `GET /v1/whoami` with it. That
//! needs a client registered with the token-exchange grant type and that audience.

use tokenauth_client::{AuthClient, send};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("service_to_service: {e}");
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
    let service = auth.service_token(
        &var("TOKENAUTH_CLIENT_ID", None)?,
        &var("TOKENAUTH_CLIENT_SECRET", None)?,
    );
    let http = reqwest::Client::new();
    let url = format!("{resource}/v1/secret");
    for _ in 0..3 {
        let res = send(&service, || http.get(&url)).await?;
        println!("GET {url}: {} {}", res.status(), res.text().await?);
    }
    // Acting for a user: the token the user called this service with is exchanged for one
    // addressed to the next service, never forwarded as it is.
    if let Ok(user_token) = std::env::var("USER_TOKEN") {
        let audience = var("DOWNSTREAM_AUDIENCE", Some("resource-service"))?;
        let exchanged = service.exchange(&user_token, &audience).await?;
        let whoami = format!("{resource}/v1/whoami");
        let res = http
            .get(&whoami)
            .bearer_auth(&exchanged.access_token)
            .send()
            .await?;
        println!(
            "GET {whoami} for the user: {} {}",
            res.status(),
            res.text().await?
        );
    }
    Ok(())
}
