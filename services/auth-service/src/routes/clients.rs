//! The admin API on service clients: `POST /v1/clients`, `GET /v1/clients`,
//! `DELETE /v1/clients/{client_id}`. Every handler needs an admin (403 `insufficient_role`).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Serialize;
use tokenauth_kit::body::{Fields, JsonObject};
use tokenauth_kit::openapi as doc;
use tokenauth_store::models::Client;

use crate::admin::require_admin;
use crate::auth::CurrentUser;
use crate::clients;
use crate::error::ApiResult;
use crate::state::AppState;
use crate::views;

/// A client as the API shows it: never its secret or the secret's hash.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Client)]
struct ClientView {
    client_id: String,
    name: String,
    scopes: Vec<String>,
    audience: Vec<String>,
    /// RFC 3339.
    #[schema(format = DateTime)]
    created_at: String,
}

impl From<&Client> for ClientView {
    fn from(c: &Client) -> Self {
        ClientView {
            client_id: c.client_id.clone(),
            name: c.name.clone(),
            scopes: c.scope_list(),
            audience: c.audience_list(),
            created_at: views::rfc3339(c.created_at),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = RegisteredClient)]
struct Registered {
    #[serde(flatten)]
    client: ClientView,
    /// Shown in this response only: it is stored hashed.
    client_secret: String,
}

#[derive(Serialize, utoipa::ToSchema)]
struct ClientList {
    clients: Vec<ClientView>,
}

/// Registers a service client for the `client_credentials` grant.
#[utoipa::path(
    post,
    path = "/v1/clients",
    operation_id = "create_client",
    tag = "admin",
    request_body = crate::openapi::NewClient,
    responses(
        (status = 201, description = "Registered; the secret is in this response only", body = Registered),
        (status = 400, response = doc::BadRequest),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = crate::openapi::AdminOnly),
        (status = 413, response = doc::PayloadTooLarge),
        (status = 415, response = doc::UnsupportedMediaType),
        (status = 422, response = doc::ValidationFailed),
        (status = 503, response = doc::Unavailable),
    ),
    security(("bearer" = [])),
)]
pub async fn create(
    state: web::Data<AppState>,
    auth: CurrentUser,
    body: JsonObject,
) -> ApiResult<HttpResponse> {
    require_admin(&auth)?;
    let mut fields = Fields::new(body.0);
    let name = fields.required_str("name").and_then(|n| {
        clients::parse_name(&n)
            .map_err(|m| fields.error("name", m))
            .ok()
    });
    let scopes = match fields.optional_str_array("scopes") {
        None => Some(Vec::new()),
        Some(raw) => clients::parse_scopes(raw)
            .map_err(|m| fields.error("scopes", m))
            .ok(),
    };
    let audience = match fields.optional_str_array("audience") {
        None => Some(None),
        Some(raw) => clients::parse_audience(raw)
            .map(Some)
            .map_err(|m| fields.error("audience", m))
            .ok(),
    };
    let (name, (scopes, audience)) = fields.finish_with(name.zip(scopes.zip(audience)))?;
    let registered = clients::register(&state, &auth.user.id, name, scopes, audience).await?;
    // The secret is in this body only: never cached.
    Ok(views::tokens(
        StatusCode::CREATED,
        &Registered {
            client: ClientView::from(&registered.client),
            client_secret: registered.secret,
        },
    ))
}

/// Every registered client, never a secret.
#[utoipa::path(
    get,
    path = "/v1/clients",
    operation_id = "list_clients",
    tag = "admin",
    responses(
        (status = 200, description = "The clients", body = ClientList),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = crate::openapi::AdminOnly),
        (status = 503, response = doc::Unavailable),
    ),
    security(("bearer" = [])),
)]
pub async fn list(state: web::Data<AppState>, auth: CurrentUser) -> ApiResult<HttpResponse> {
    require_admin(&auth)?;
    let all = clients::list(&state).await?;
    Ok(HttpResponse::Ok().json(ClientList {
        clients: all.iter().map(ClientView::from).collect(),
    }))
}

/// Deletes a client; its tokens are refused everywhere at once.
#[utoipa::path(
    delete,
    path = "/v1/clients/{client_id}",
    operation_id = "delete_client",
    tag = "admin",
    params(("client_id" = String, Path, description = "The client's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = crate::openapi::AdminOnly),
        (status = 404, response = doc::NotFound),
        (status = 503, response = doc::Unavailable),
    ),
    security(("bearer" = [])),
)]
pub async fn delete(
    state: web::Data<AppState>,
    auth: CurrentUser,
    client_id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    require_admin(&auth)?;
    clients::delete(&state, &auth.user.id, &client_id).await?;
    Ok(HttpResponse::NoContent().finish())
}
