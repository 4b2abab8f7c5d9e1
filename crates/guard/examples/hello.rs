//! The crate's README example as a program: `/hello` for any valid token, `/admin/stats` for
//! admins, on 127.0.0.1:8082. docs/guard.md shows how to run it against the local stack.

use actix_web::{App, HttpServer, web};
use tokenauth_guard::{AccessClaims, Authenticated, Guard, RequireRole, Role};

struct Admin;
impl Role for Admin {
    const NAME: &'static str = "admin";
}

fn name(claims: &AccessClaims) -> &str {
    claims.preferred_username.as_deref().unwrap_or(&claims.sub)
}

async fn hello(Authenticated(claims): Authenticated) -> String {
    format!("hello {}", name(&claims))
}

async fn stats(_: RequireRole<Admin>) -> &'static str {
    "only admins"
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Keys, issuer, audience and Redis from the environment (the variables below).
    let guard = Guard::from_env()?.build()?;
    HttpServer::new(move || {
        App::new()
            .app_data(guard.clone())
            .route("/hello", web::get().to(hello))
            .route("/admin/stats", web::get().to(stats))
    })
    // BIND_ADDR, else port 8082 (8080 and 8081 are the local stack's).
    .bind(std::env::var("BIND_ADDR").unwrap_or_else(|_| "127.0.0.1:8082".into()))?
    .run()
    .await?;
    Ok(())
}
