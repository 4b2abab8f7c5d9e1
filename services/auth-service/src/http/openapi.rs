//! The auth-service's OpenAPI 3.1 document, built from the handlers' `#[utoipa::path]`
//! annotations (served at `GET /openapi.json`, browsable at `GET /docs`).

use utoipa::openapi::OpenApi as Document;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToResponse};

use crate::http::schema::{AdminOnly, CLIENT_BASIC, Disabled};
use crate::http::{account, clients, keys, oauth, pages, session, users};

#[derive(OpenApi)]
#[openapi(
    paths(
        account::register,
        account::login,
        session::refresh,
        session::logout,
        session::logout_all,
        account::me,
        account::change_password,
        users::list,
        users::get,
        users::update,
        users::delete,
        users::revoke,
        clients::create,
        clients::list,
        clients::delete,
        pages::login::authorize,
        pages::login::login,
        pages::login::logout_page,
        pages::login::logout,
        oauth::device_authorization,
        pages::device::page,
        pages::device::decide,
        oauth::token,
        oauth::revoke,
        oauth::introspect,
        oauth::metadata,
        keys::jwks,
    ),
    modifiers(&AuthComponents),
    tags(
        (name = "accounts", description = "Register, log in, the current user"),
        (name = "sessions", description = "Refresh and log out"),
        (name = "admin", description = "Users and service clients (role `admin`)"),
        (name = "oauth", description = "OAuth 2.0 endpoints for tools and services (RFC 6749, 7009, 7662, 8414)"),
        (name = "browser", description = "Pages for people: the login page of the authorization-code flow (RFC 6749 §4.1 with PKCE) and sign-out"),
        (name = "operations", description = "Health, metrics and this document"),
    )
)]
struct AuthApi;

struct AuthComponents;

impl Modify for AuthComponents {
    fn modify(&self, api: &mut Document) {
        let components = api.components.get_or_insert_with(Default::default);
        for (name, response) in [Disabled::response(), AdminOnly::response()] {
            components.responses.insert(name.to_owned(), response);
        }
        components.add_security_scheme(
            CLIENT_BASIC,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "A service client's `client_id` and `client_secret` \
                             (form-urlencoded, RFC 6749 §2.3.1)",
                    ))
                    .build(),
            ),
        );
    }
}

/// The whole document, as served.
pub fn document() -> Document {
    tokenauth_kit::openapi::finish(
        AuthApi::openapi(),
        "tokenauth auth-service",
        "Users, sessions, access and refresh tokens, service clients and the OAuth 2.0 \
         endpoints. Errors outside `/oauth/` are RFC 9457 problem details whose `code` is \
         stable; `/oauth/` errors are RFC 6749 §5.2 bodies.",
        &["database", "migrations", "revocations", "eviction_policy"],
    )
}
