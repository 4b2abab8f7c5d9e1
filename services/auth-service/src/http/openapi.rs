//! The auth-service's OpenAPI 3.1 document, built from the handlers' `#[utoipa::path]`
//! annotations (served at `GET /openapi.json`, browsable at `GET /docs`).

use utoipa::openapi::OpenApi as Document;
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{
    AuthorizationCode, ClientCredentials, Flow, HttpAuthScheme, HttpBuilder, OAuth2, Password,
    Scopes, SecurityScheme,
};
use utoipa::openapi::{RefOr, path::Operation};
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
        // Where the access tokens come from, for client generators and gateways. No operation
        // names it: each endpoint takes the `bearer` token these flows issue.
        let scopes = || {
            Scopes::one(
                crate::base::tokens::DEFAULT_USER_SCOPE,
                "The users' APIs (a service client's scopes are its registered ones)",
            )
        };
        components.add_security_scheme(
            OAUTH2,
            SecurityScheme::OAuth2(OAuth2::with_description(
                [
                    Flow::AuthorizationCode(AuthorizationCode::new(
                        "/oauth/authorize",
                        "/oauth/token",
                        scopes(),
                    )),
                    Flow::ClientCredentials(ClientCredentials::new("/oauth/token", scopes())),
                    Flow::Password(Password::new("/oauth/token", scopes())),
                ],
                "OAuth 2.0 (RFC 6749): the authorization code grant with PKCE for apps, \
                 client credentials for services, the password grant for first-party tools; the \
                 device grant (RFC 8628) starts at `/oauth/device_authorization`",
            )),
        );
    }
}

/// The name of the OAuth 2.0 security scheme, which describes the flows tokens come from.
const OAUTH2: &str = "oauth2";

/// Every form body is read by [`crate::oauth::protocol::read_form`]: a parameter the form does
/// not name is ignored, and no parameter may be given twice (RFC 6749 §3.1). The document says
/// so on each form's schema: any other field, once, as a string.
fn forms_ignore_other_fields(api: &mut Document) {
    let operations = api.paths.paths.values().flat_map(|item| {
        [&item.get, &item.post, &item.put, &item.patch, &item.delete]
            .into_iter()
            .flatten()
    });
    let forms: Vec<String> = operations
        .filter_map(|op: &Operation| {
            let body = match op.request_body.as_ref()? {
                RefOr::T(body) => body,
                RefOr::Ref(_) => return None,
            };
            let RefOr::T(form) = body.content.get("application/x-www-form-urlencoded")? else {
                return None;
            };
            match form.schema.as_ref()? {
                RefOr::Ref(r) => r.ref_location.rsplit('/').next().map(str::to_owned),
                RefOr::T(_) => None,
            }
        })
        .collect();
    let Some(components) = api.components.as_mut() else {
        return;
    };
    for name in forms {
        if let Some(RefOr::T(Schema::Object(form))) = components.schemas.get_mut(&name) {
            let other = ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some(
                    "Any other parameter is ignored; none may be given twice",
                ));
            form.additional_properties = Some(Box::new(AdditionalProperties::RefOr(RefOr::T(
                other.into(),
            ))));
        }
    }
}

/// The whole document, as served.
pub fn document() -> serde_json::Value {
    let mut doc = serde_json::to_value(derived()).unwrap_or_default();
    if let Some(new_client) = doc.pointer_mut("/components/schemas/NewClient") {
        client_rules(new_client);
    }
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(|s| s.as_object_mut())
    {
        schemas
            .values_mut()
            .filter_map(|schema| schema.get_mut("properties")?.as_object_mut())
            .flat_map(|properties| properties.values_mut())
            .for_each(split_nullable_format);
    }
    doc
}

/// A field that may be `null` or a string of a `format` (`{"type": ["string", "null"],
/// "format": "email"}`) written as the choice it is: either `null`, or a string with the
/// format and its bounds. The two say the same in JSON Schema, where `format` applies to
/// strings only; generators (Schemathesis among them) read the first as "`null` breaks the
/// format".
fn split_nullable_format(property: &mut serde_json::Value) {
    let Some(field) = property.as_object_mut() else {
        return;
    };
    let nullable_string = field.get("type") == Some(&serde_json::json!(["string", "null"]))
        && field.contains_key("format");
    if !nullable_string {
        return;
    }
    let mut string = serde_json::Map::new();
    string.insert("type".into(), "string".into());
    for key in ["format", "minLength", "maxLength", "pattern"] {
        if let Some(value) = field.remove(key) {
            string.insert(key.into(), value);
        }
    }
    field.remove("type");
    field.insert(
        "oneOf".into(),
        serde_json::json!([string, {"type": "null"}]),
    );
}

/// The rules of [`crate::flows::clients::check_consistency`] that tie a new client's fields
/// together, in JSON Schema (`utoipa` has no `if`/`then`): redirect URIs with the
/// authorization code grant and only with it; a public client names its grants (the default,
/// `client_credentials`, needs a secret) and neither of those that need one.
fn client_rules(schema: &mut serde_json::Value) {
    use crate::flows::clients::{
        GRANT_AUTHORIZATION_CODE, GRANT_CLIENT_CREDENTIALS, GRANT_TOKEN_EXCHANGE,
    };
    let rules = serde_json::json!([
        {
            "if": {
                "required": ["grant_types"],
                "properties": {"grant_types": {"type": "array", "contains": {"const": GRANT_AUTHORIZATION_CODE}}}
            },
            "then": {
                "required": ["redirect_uris"],
                "properties": {"redirect_uris": {"type": "array", "minItems": 1}}
            },
            "else": {"properties": {"redirect_uris": {"maxItems": 0}}}
        },
        {
            "if": {"required": ["public"], "properties": {"public": {"const": true}}},
            "then": {
                "required": ["grant_types"],
                "properties": {"grant_types": {
                    "type": "array",
                    "not": {"contains": {"enum": [GRANT_CLIENT_CREDENTIALS, GRANT_TOKEN_EXCHANGE]}}
                }}
            }
        }
    ]);
    if let Some(object) = schema.as_object_mut() {
        object.insert("allOf".into(), rules);
    }
}

/// The document as the handlers' annotations and the types derive it.
fn derived() -> Document {
    let mut api = tokenauth_kit::openapi::finish(
        AuthApi::openapi(),
        "tokenauth auth-service",
        "Users, sessions, access and refresh tokens, service clients and the OAuth 2.0 \
         endpoints. Errors outside `/oauth/` are RFC 9457 problem details whose `code` is \
         stable; `/oauth/` errors are RFC 6749 §5.2 bodies.",
        &["database", "migrations", "revocations", "eviction_policy"],
    );
    forms_ignore_other_fields(&mut api);
    api
}
