//! The admin API on service clients: `POST /v1/clients`, `GET /v1/clients`,
//! `DELETE /v1/clients/{client_id}`. Every handler needs an admin (403 `insufficient_role`).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Serialize;
use tokenauth_kit::body::{Fields, JsonObject};
use tokenauth_kit::openapi as doc;
use tokenauth_store::models::Client;

use crate::base::error::ApiResult;
use crate::base::state::AppState;
use crate::base::views;
use crate::flows::clients;
use crate::http::body::ReadBody;
use crate::http::extract::Admin;
use crate::http::reply;

/// A client as the API shows it: never its secret or the secret's hash.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Client)]
struct ClientView {
    client_id: String,
    name: String,
    scopes: Vec<String>,
    audience: Vec<String>,
    grant_types: Vec<String>,
    redirect_uris: Vec<String>,
    /// A browser or native app, with no secret.
    public: bool,
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
            grant_types: c.grant_type_list(),
            redirect_uris: c.redirect_uri_list(),
            public: c.public,
            created_at: views::rfc3339(c.created_at),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = RegisteredClient)]
struct Registered {
    #[serde(flatten)]
    client: ClientView,
    /// Shown in this response only: it is stored hashed. Absent for a public client.
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct ClientList {
    clients: Vec<ClientView>,
}

/// Registers a client: a service (`client_credentials`, token exchange) with a secret, or a
/// public browser or native app (authorization code, device code) without one.
#[utoipa::path(
    post,
    path = "/v1/clients",
    operation_id = "create_client",
    tag = "admin",
    request_body = tokenauth_wire::NewClient,
    responses(
        (status = 201, description = "Registered; the secret is in this response only", body = Registered),
        (status = 400, response = doc::BadRequest),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = crate::http::schema::AdminOnly),
        (status = 413, response = doc::PayloadTooLarge),
        (status = 415, response = doc::UnsupportedMediaType),
        (status = 422, response = doc::ValidationFailed),
        (status = 503, response = doc::Unavailable),
    ),
    security(("bearer" = [])),
)]
pub async fn create(
    state: web::Data<AppState>,
    Admin(admin_user): Admin,
    body: JsonObject,
) -> ApiResult<HttpResponse> {
    let mut fields = Fields::new(body.0);
    let body = tokenauth_wire::NewClient::read(&mut fields);
    let name = fields.check("name", clients::parse_name(&body.name));
    let scopes = match body.scopes {
        None => Some(Vec::new()),
        Some(raw) => fields.check("scopes", clients::parse_scopes(raw)),
    };
    let audience = match body.audience {
        None => Some(None),
        Some(raw) => fields.check("audience", clients::parse_audience(raw).map(Some)),
    };
    let grant_types = match body.grant_types {
        None => Some(vec![clients::GRANT_CLIENT_CREDENTIALS.to_owned()]),
        Some(raw) => fields.check("grant_types", clients::parse_grant_types(raw)),
    };
    let redirect_uris = match body.redirect_uris {
        None => Some(Vec::new()),
        Some(raw) => fields.check("redirect_uris", clients::parse_redirect_uris(raw)),
    };
    let public = body.public.unwrap_or(false);
    let checked = name
        .zip(scopes)
        .zip(audience)
        .zip(grant_types)
        .zip(redirect_uris)
        .map(
            |((((name, scopes), audience), grant_types), redirect_uris)| clients::NewClient {
                name,
                scopes,
                audience,
                grant_types,
                redirect_uris,
                public,
            },
        );
    let new = fields.finish_with(checked)?;
    if let Err((field, message)) = clients::check_consistency(&new) {
        let mut fields = Fields::new(Default::default());
        fields.error(field, message);
        fields.finish()?;
    }
    let registered = clients::register(&state, &admin_user.user.id, new).await?;
    // The secret is in this body only: never cached.
    Ok(reply::tokens(
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
        (status = 403, response = crate::http::schema::AdminOnly),
        (status = 503, response = doc::Unavailable),
    ),
    security(("bearer" = [])),
)]
pub async fn list(state: web::Data<AppState>, _: Admin) -> ApiResult<HttpResponse> {
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
        (status = 403, response = crate::http::schema::AdminOnly),
        (status = 404, response = doc::NotFound),
        (status = 503, response = doc::Unavailable),
    ),
    security(("bearer" = [])),
)]
pub async fn delete(
    state: web::Data<AppState>,
    Admin(admin_user): Admin,
    client_id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    clients::delete(&state, &admin_user.user.id, &client_id).await?;
    Ok(HttpResponse::NoContent().finish())
}
