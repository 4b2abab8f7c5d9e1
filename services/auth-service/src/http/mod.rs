//! The HTTP edge: the route table, each handler (it parses its input, calls one flow, and maps
//! the result), the extractors, the service's HTML pages and the OpenAPI document.

pub mod account;
pub mod body;
pub mod clients;
pub mod extract;
pub mod form;
pub mod health;
pub mod keys;
pub mod metrics;
pub mod oauth;
pub mod openapi;
pub mod pages;
pub mod reply;
pub mod schema;
pub mod session;
pub mod users;

use actix_web::web;
use tokenauth_kit::resource::{get, methods, post, put};

/// Mounts every auth-service route. A GET route answers HEAD too; unknown methods on a known
/// path answer 405 with `Allow`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(post("/v1/register", account::register))
        .service(post("/v1/login", account::login))
        .service(post("/v1/token/refresh", session::refresh))
        .service(post("/v1/logout", session::logout))
        .service(post("/v1/logout/all", session::logout_all))
        .service(get("/v1/me", account::me))
        .service(put("/v1/me/password", account::change_password))
        .service(get("/v1/users", users::list))
        .service(
            methods("/v1/users/{id}")
                .get(users::get)
                .patch(users::update)
                .delete(users::delete)
                .finish(),
        )
        .service(post("/v1/users/{id}/revoke", users::revoke))
        .service(
            methods("/v1/clients")
                .get(clients::list)
                .post(clients::create)
                .finish(),
        )
        .service(
            methods("/v1/clients/{client_id}")
                .delete(clients::delete)
                .finish(),
        )
        .service(
            methods("/oauth/authorize")
                .get(pages::login::authorize)
                .post(pages::login::login)
                .finish(),
        )
        .service(
            methods("/oauth/logout")
                .get(pages::login::logout_page)
                .post(pages::login::logout)
                .finish(),
        )
        .service(post(
            "/oauth/device_authorization",
            oauth::device_authorization,
        ))
        .service(
            methods("/device")
                .get(pages::device::page)
                .post(pages::device::decide)
                .finish(),
        )
        .service(post("/oauth/token", oauth::token))
        .service(post("/oauth/revoke", oauth::revoke))
        .service(post("/oauth/introspect", oauth::introspect))
        .service(get(
            "/.well-known/oauth-authorization-server",
            oauth::metadata,
        ))
        .service(get("/.well-known/jwks.json", keys::jwks))
        .service(get("/healthz", tokenauth_kit::health::healthz))
        .service(get("/readyz", health::readyz))
        .service(get("/metrics", metrics::render));
}
