//! `POST /v1/token/refresh`, `POST /v1/logout`, `POST /v1/logout/all`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use secrecy::ExposeSecret;
use tokenauth_kit::body::{Fields, JsonObject, OptionalJsonObject};
use tokenauth_kit::openapi as doc;
use tokenauth_wire::{Logout, Refresh};

use crate::base::error::{ApiError, ApiResult};
use crate::base::state::AppState;
use crate::flows::sessions::{self, Refresher};
use crate::http::body::ReadBody;
use crate::http::extract::{CurrentUser, MaybeCurrentUser};
use crate::http::reply;

/// Spends a refresh token for a new token pair (rotation). A refresh token used twice ends its
/// session: both the thief's and the owner's tokens stop working.
#[utoipa::path(
    post,
    path = "/v1/token/refresh",
    tag = "sessions",
    request_body = tokenauth_wire::Refresh,
    responses(
        (status = 200, description = "A new access token and refresh token", body = tokenauth_wire::TokenResponse),
        (status = 400, response = doc::BadRequest),
        (status = 401, description = "Unknown, expired, revoked or already used (`code`: invalid_refresh_token)", body = doc::ProblemDetails, content_type = "application/problem+json"),
        (status = 403, response = crate::http::schema::Disabled),
        (status = 413, response = doc::PayloadTooLarge),
        (status = 415, response = doc::UnsupportedMediaType),
        (status = 422, response = doc::ValidationFailed),
        (status = 503, response = doc::Unavailable),
    ),
    security(()),
)]
pub async fn refresh(state: web::Data<AppState>, body: JsonObject) -> ApiResult<HttpResponse> {
    let mut fields = Fields::new(body.0);
    let body = Refresh::read(&mut fields);
    fields.finish()?;
    let token = body.refresh_token.expose_secret();
    // Sessions started for a client app are refreshed by that app at the token endpoint.
    let tokens = sessions::refresh_as(&state, token, Refresher::FirstParty)
        .await?
        .map_err(|_| {
            tokenauth_kit::Problem::new(
                tokenauth_kit::problem::Code::InvalidRefreshToken,
                "Refresh token is unknown, expired, revoked or already used",
            )
        })?;
    Ok(reply::tokens(StatusCode::OK, &tokens))
}

/// A valid `refresh_token` is enough to end its session, whatever the access token (absent,
/// expired, invalid): a client whose access token lapsed must still be able to log out. Without
/// one, the access token must be valid.
#[utoipa::path(
    post,
    path = "/v1/logout",
    tag = "sessions",
    request_body(content = Option<tokenauth_wire::Logout>, description = "Optional"),
    responses(
        (status = 204, description = "The session has ended, in every service"),
        (status = 400, response = doc::BadRequest),
        (status = 401, response = doc::Unauthorized),
        (status = 413, response = doc::PayloadTooLarge),
        (status = 415, response = doc::UnsupportedMediaType),
        (status = 422, response = doc::ValidationFailed),
        (status = 503, response = doc::Unavailable),
    ),
    security(("bearer" = []), ()),
)]
pub async fn logout(
    state: web::Data<AppState>,
    auth: Result<MaybeCurrentUser, ApiError>,
    body: OptionalJsonObject,
) -> ApiResult<HttpResponse> {
    let mut fields = Fields::new(body.0);
    let refresh_token = Logout::read(&mut fields)
        .refresh_token
        .map(|t| t.expose_secret().to_owned());
    fields.finish()?;
    let auth = match (auth, &refresh_token) {
        (Ok(auth), _) => auth.0,
        (Err(_), Some(_)) => None,
        (Err(e), None) => return Err(e),
    };
    let access_session = auth.and_then(|a| a.claims.sid);
    sessions::logout(&state, access_session, refresh_token).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Ends every session of the user: every token issued to them so far is refused everywhere.
#[utoipa::path(
    post,
    path = "/v1/logout/all",
    tag = "sessions",
    responses(
        (status = 204, description = "Every session of the user has ended"),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = crate::http::schema::Disabled),
        (status = 503, response = doc::Unavailable),
    ),
    security(("bearer" = [])),
)]
pub async fn logout_all(state: web::Data<AppState>, auth: CurrentUser) -> ApiResult<HttpResponse> {
    sessions::logout_all(&state, &auth.user.id).await?;
    Ok(HttpResponse::NoContent().finish())
}
