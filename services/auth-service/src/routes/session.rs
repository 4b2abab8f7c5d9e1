//! `POST /v1/token/refresh`, `POST /v1/logout`, `POST /v1/logout/all`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use tokenauth_kit::body::{Fields, JsonObject, OptionalJsonObject};

use crate::auth::{CurrentUser, MaybeCurrentUser};
use crate::error::{ApiError, ApiResult};
use crate::sessions;
use crate::state::AppState;
use crate::views;

pub async fn refresh(state: web::Data<AppState>, body: JsonObject) -> ApiResult<HttpResponse> {
    let mut fields = Fields::new(body.0);
    let token = fields.required_str("refresh_token");
    fields.finish()?;
    let token = token.unwrap_or_default();
    let tokens = sessions::refresh(&state, &token).await?;
    Ok(views::tokens(StatusCode::OK, &tokens))
}

/// A valid `refresh_token` is enough to end its session, whatever the access token (absent,
/// expired, invalid): a client whose access token lapsed must still be able to log out. Without
/// one, the access token must be valid.
pub async fn logout(
    state: web::Data<AppState>,
    auth: Result<MaybeCurrentUser, ApiError>,
    body: OptionalJsonObject,
) -> ApiResult<HttpResponse> {
    let mut fields = Fields::new(body.0);
    let refresh_token = fields.optional_str("refresh_token");
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

pub async fn logout_all(state: web::Data<AppState>, auth: CurrentUser) -> ApiResult<HttpResponse> {
    sessions::logout_all(&state, &auth.user.id).await?;
    Ok(HttpResponse::NoContent().finish())
}
