//! HTTP routes: each handler parses its input, calls one flow, and maps the result.

mod account;
mod health;
mod keys;
mod session;

use actix_web::web;
use tokenauth_kit::problem::method_not_allowed;

/// Mounts every auth-service route; unknown methods on a known path answer 405 with `Allow`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let post = |path: &'static str, route: actix_web::Route| {
        web::resource(path)
            .route(route)
            .default_service(method_not_allowed("POST"))
    };
    cfg.service(post("/v1/register", web::post().to(account::register)))
        .service(post("/v1/login", web::post().to(account::login)))
        .service(post("/v1/token/refresh", web::post().to(session::refresh)))
        .service(post("/v1/logout", web::post().to(session::logout)))
        .service(post("/v1/logout/all", web::post().to(session::logout_all)))
        .service(
            web::resource("/v1/me")
                .route(web::get().to(account::me))
                .default_service(method_not_allowed("GET")),
        )
        .service(
            web::resource("/v1/me/password")
                .route(web::put().to(account::change_password))
                .default_service(method_not_allowed("PUT")),
        )
        .service(
            web::resource("/.well-known/jwks.json")
                .route(web::get().to(keys::jwks))
                .default_service(method_not_allowed("GET")),
        )
        .service(
            web::resource("/healthz")
                .route(web::get().to(tokenauth_kit::health::healthz))
                .default_service(method_not_allowed("GET")),
        )
        .service(
            web::resource("/readyz")
                .route(web::get().to(health::readyz))
                .default_service(method_not_allowed("GET")),
        );
}
