//! The admin API on users: `GET /v1/users`, `GET/PATCH/DELETE /v1/users/{id}`,
//! `POST /v1/users/{id}/revoke`. Every handler needs an admin (403 `insufficient_role`).

use actix_web::{HttpResponse, web};
use serde::Serialize;
use tokenauth_kit::body::{Fields, JsonObject};

use crate::admin;
use crate::auth::CurrentUser;
use crate::error::ApiResult;
use crate::state::AppState;
use crate::views::UserView;

#[derive(Serialize)]
struct UserPage {
    users: Vec<UserView>,
    next_cursor: Option<String>,
}

pub async fn list(
    state: web::Data<AppState>,
    auth: CurrentUser,
    query: web::Query<Vec<(String, String)>>,
) -> ApiResult<HttpResponse> {
    admin::require_admin(&auth)?;
    let (limit, cursor) = admin::page_request(&query)?;
    let page = admin::list(&state, limit, cursor).await?;
    Ok(HttpResponse::Ok().json(UserPage {
        users: page.users.iter().map(UserView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

pub async fn get(
    state: web::Data<AppState>,
    auth: CurrentUser,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    admin::require_admin(&auth)?;
    let user = admin::get(&state, &id).await?;
    Ok(HttpResponse::Ok().json(UserView::from(&user)))
}

pub async fn update(
    state: web::Data<AppState>,
    auth: CurrentUser,
    id: web::Path<String>,
    body: JsonObject,
) -> ApiResult<HttpResponse> {
    admin::require_admin(&auth)?;
    let mut fields = Fields::new(body.0);
    let roles = fields.optional_str_array("roles").and_then(|r| {
        admin::parse_roles(r)
            .map_err(|m| fields.error("roles", m))
            .ok()
    });
    let disabled = fields.optional_bool("disabled");
    fields.finish()?;
    let user = admin::update(&state, &auth.user.id, &id, roles, disabled).await?;
    Ok(HttpResponse::Ok().json(UserView::from(&user)))
}

pub async fn delete(
    state: web::Data<AppState>,
    auth: CurrentUser,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    admin::require_admin(&auth)?;
    admin::delete(&state, &auth.user.id, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn revoke(
    state: web::Data<AppState>,
    auth: CurrentUser,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    admin::require_admin(&auth)?;
    admin::revoke(&state, &auth.user.id, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}
