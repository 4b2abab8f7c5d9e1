//! The admin API on users: `GET /v1/users`, `GET/PATCH/DELETE /v1/users/{id}`,
//! `POST /v1/users/{id}/revoke`. Every handler needs an admin (403 `insufficient_role`).

use actix_web::{HttpResponse, web};
use serde::Serialize;
use tokenauth_kit::body::{Fields, JsonObject};
use tokenauth_kit::openapi as doc;
use tokenauth_wire::UserUpdate;

use crate::base::error::ApiResult;
use crate::base::state::AppState;
use crate::base::views;
use crate::flows::admin;
use crate::http::body::ReadBody;
use crate::http::extract::Admin;

#[derive(Serialize, utoipa::ToSchema)]
struct UserPage {
    users: Vec<tokenauth_wire::User>,
    /// Pass as `cursor` for the next page; null on the last.
    next_cursor: Option<String>,
}

/// Users in creation order, a page at a time.
#[utoipa::path(
    get,
    path = "/v1/users",
    operation_id = "list_users",
    tag = "admin",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Page size, 1 to 100 (default 50)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page, as handed out; any other value is 400"),
    ),
    responses(
        (status = 200, description = "One page", body = UserPage),
        (status = 400, response = doc::BadRequest),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = crate::http::schema::AdminOnly),
        (status = 503, response = doc::Unavailable),
    ),
    security(("bearer" = [])),
)]
pub async fn list(
    state: web::Data<AppState>,
    _: Admin,
    query: web::Query<Vec<(String, String)>>,
) -> ApiResult<HttpResponse> {
    let (limit, cursor) = admin::page_request(&state, &query)?;
    let page = admin::list(&state, limit, cursor).await?;
    Ok(HttpResponse::Ok().json(UserPage {
        users: page.users.iter().map(views::user).collect(),
        next_cursor: page.next_cursor,
    }))
}

#[utoipa::path(
    get,
    path = "/v1/users/{id}",
    operation_id = "get_user",
    tag = "admin",
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The user", body = tokenauth_wire::User),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = crate::http::schema::AdminOnly),
        (status = 404, response = doc::NotFound),
        (status = 503, response = doc::Unavailable),
    ),
    security(("bearer" = [])),
)]
pub async fn get(
    state: web::Data<AppState>,
    _: Admin,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let user = admin::get(&state, &id).await?;
    Ok(HttpResponse::Ok().json(views::user(&user)))
}

/// Changes roles or disables (or enables) a user. Disabling revokes every token of the user.
#[utoipa::path(
    patch,
    path = "/v1/users/{id}",
    operation_id = "update_user",
    tag = "admin",
    params(("id" = String, Path, description = "The user's id")),
    request_body = tokenauth_wire::UserUpdate,
    responses(
        (status = 200, description = "The user as changed", body = tokenauth_wire::User),
        (status = 400, response = doc::BadRequest),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = crate::http::schema::AdminOnly),
        (status = 404, response = doc::NotFound),
        (status = 409, response = doc::Conflict),
        (status = 413, response = doc::PayloadTooLarge),
        (status = 415, response = doc::UnsupportedMediaType),
        (status = 422, response = doc::ValidationFailed),
        (status = 503, response = doc::Unavailable),
    ),
    security(("bearer" = [])),
)]
pub async fn update(
    state: web::Data<AppState>,
    Admin(admin_user): Admin,
    id: web::Path<String>,
    body: JsonObject,
) -> ApiResult<HttpResponse> {
    let mut fields = Fields::new(body.0);
    let body = UserUpdate::read(&mut fields);
    let roles = match body.roles {
        None => None,
        Some(roles) => fields.check("roles", admin::parse_roles(roles)),
    };
    let disabled = body.disabled;
    fields.finish()?;
    let user = admin::update(&state, &admin_user.user.id, &id, roles, disabled).await?;
    Ok(HttpResponse::Ok().json(views::user(&user)))
}

/// Deletes a user; every token of the user is revoked.
#[utoipa::path(
    delete,
    path = "/v1/users/{id}",
    operation_id = "delete_user",
    tag = "admin",
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = crate::http::schema::AdminOnly),
        (status = 404, response = doc::NotFound),
        (status = 409, response = doc::Conflict),
        (status = 503, response = doc::Unavailable),
    ),
    security(("bearer" = [])),
)]
pub async fn delete(
    state: web::Data<AppState>,
    Admin(admin_user): Admin,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    admin::delete(&state, &admin_user.user.id, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Revokes every token of a user issued so far, in every service.
#[utoipa::path(
    post,
    path = "/v1/users/{id}/revoke",
    operation_id = "revoke_user",
    tag = "admin",
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = crate::http::schema::AdminOnly),
        (status = 404, response = doc::NotFound),
        (status = 503, response = doc::Unavailable),
    ),
    security(("bearer" = [])),
)]
pub async fn revoke(
    state: web::Data<AppState>,
    Admin(admin_user): Admin,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    admin::revoke(&state, &admin_user.user.id, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}
