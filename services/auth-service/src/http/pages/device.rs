//! The `/device` page, where a person approves or denies a device's sign-in (RFC 8628 §3.3).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::base::attempts::{reserve, settle};
use crate::base::error::ApiResult;
use crate::base::state::AppState;
use crate::flows::device::{self, Decision};
use crate::http::pages::sign_in::{Refusal, sign_in_on_page, with_login};
use crate::http::pages::{self, STYLE, cookies};

/// `POST /device`.
#[derive(Default, Deserialize, ToSchema)]
pub struct DeviceForm {
    #[schema(required = true)]
    user_code: Option<String>,
    /// `approve` or `deny`.
    #[schema(required = true)]
    action: Option<String>,
    /// The token of the page's form (bound to the `tokenauth_csrf` cookie the page set).
    #[schema(required = true)]
    csrf_token: Option<String>,
    /// The code the page named the asking client for: an approval counts only with it equal
    /// to `user_code`; without it the page names the client and asks again.
    shown_code: Option<String>,
    /// Without a login session.
    username: Option<String>,
    #[schema(format = Password)]
    password: Option<String>,
}

#[derive(Template)]
#[template(path = "device.html")]
struct DevicePage<'a> {
    style: &'a str,
    csrf_token: &'a str,
    user_code: &'a str,
    username: &'a str,
    signed_in_as: Option<&'a str>,
    error: Option<&'a str>,
    /// The registered name of the client whose request `user_code` is: shown before anything
    /// is approved (RFC 8628 §5.4).
    asking: Option<&'a str>,
    /// The user code the page named the client for; an approval counts only with it.
    shown_code: &'a str,
}

/// What one drawing of the device page shows.
#[derive(Default)]
struct View<'a> {
    user_code: &'a str,
    username: &'a str,
    signed_in_as: Option<&'a str>,
    error: Option<&'a str>,
    asking: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "device_done.html")]
struct DoneTemplate<'a> {
    style: &'a str,
    title: &'a str,
    message: &'a str,
}

fn render(req: &HttpRequest, state: &AppState, status: StatusCode, view: View<'_>) -> HttpResponse {
    let shown_code = match view.asking {
        Some(_) => view.user_code,
        None => "",
    };
    pages::form_page(req, state, status, &[], |csrf| {
        DevicePage {
            style: STYLE,
            csrf_token: csrf,
            user_code: view.user_code,
            username: view.username,
            signed_in_as: view.signed_in_as,
            error: view.error,
            asking: view.asking,
            shown_code,
        }
        .render()
        .unwrap_or_default()
    })
}

/// The name of the client whose live request `user_code` is, looked up within the address's
/// failed-login window like a typed code (an unknown code counts), so that the page cannot be
/// used to find live codes faster than passwords. `Err` is the page's refusal (429).
async fn client_asking(
    state: &AppState,
    user_code: &str,
    client_ip: Option<std::net::IpAddr>,
) -> ApiResult<Result<Option<String>, Refusal>> {
    let windows = crate::base::limits::login_ip_key(client_ip)
        .into_iter()
        .collect();
    let reservation = match reserve(&state.login_limiter, windows).await {
        Ok(r) => r,
        Err(e) => return Refusal::of(&e.problem()).map(Err).ok_or(e),
    };
    let found = device::pending_client(state, user_code).await;
    settle(reservation, matches!(found, Ok(None))).await?;
    Ok(Ok(found?))
}

/// The page a person approves or denies a device on; it asks for a login without a login
/// session.
#[utoipa::path(
    get,
    path = "/device",
    operation_id = "device_page",
    tag = "browser",
    params(("user_code" = Option<String>, Query, description = "Filled in from `verification_uri_complete`")),
    responses(
        (status = 200, description = "The device page (HTML), naming the client whose request `user_code` is", content_type = "text/html"),
        (status = 400, description = "No live request has `user_code` (counted as a failed login of the address): the page, saying so", content_type = "text/html"),
        (status = 429, description = "The address's failed-login limit, with `Retry-After` (HTML)", content_type = "text/html"),
        (status = 503, response = tokenauth_kit::openapi::Unavailable),
    ),
    security(()),
)]
pub async fn page(req: HttpRequest, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let user_code: String = form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "user_code")
        .map(|(_, v)| v.chars().take(32).collect())
        .unwrap_or_default();
    let user = cookies::login_session(&state, &req).await?;
    let signed_in_as = user.as_ref().map(|u| u.username.as_str());
    if user_code.is_empty() {
        let view = View {
            signed_in_as,
            ..View::default()
        };
        return Ok(render(&req, &state, StatusCode::OK, view));
    }
    let client_ip = state.config.common.trusted_proxies.client_ip(&req);
    let asking = client_asking(&state, &user_code, client_ip).await?;
    Ok(asking_page(&req, &state, &user_code, signed_in_as, asking))
}

/// The page naming the client whose request `user_code` is (or saying that no live request
/// has it, or the refusal of the lookup), with the code it was shown for.
fn asking_page(
    req: &HttpRequest,
    state: &AppState,
    user_code: &str,
    signed_in_as: Option<&str>,
    asking: Result<Option<String>, Refusal>,
) -> HttpResponse {
    let show = |status: StatusCode, error: Option<&str>, asking: Option<&str>| {
        let view = View {
            user_code,
            signed_in_as,
            error,
            asking,
            ..View::default()
        };
        render(req, state, status, view)
    };
    match asking {
        Ok(Some(name)) => show(StatusCode::OK, None, Some(&name)),
        Ok(None) => show(StatusCode::BAD_REQUEST, Some(UNKNOWN_CODE), None),
        Err(refusal) => refusal.respond(|status, message| show(status, Some(message), None)),
    }
}

const UNKNOWN_CODE: &str =
    "That code is unknown, expired or already used. Check the code on your device.";

/// The device page's form: the user code, `action` (`approve` or `deny`), the CSRF token, and
/// a username and password when there is no login session (counted like `POST /v1/login`).
#[utoipa::path(
    post,
    path = "/device",
    operation_id = "device_decide",
    tag = "browser",
    request_body(content = DeviceForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Approved or denied (HTML)", content_type = "text/html"),
        (status = 400, description = "An unknown, expired or already decided code (counted as a failed login of the address), or a bad form: the page again", content_type = "text/html"),
        (status = 401, description = "Unknown username or wrong password: the page again", content_type = "text/html"),
        (status = 403, description = "A missing or forged CSRF token, or a disabled account (HTML)", content_type = "text/html"),
        (status = 429, description = "The failed-login limit, with `Retry-After` (HTML)", content_type = "text/html"),
        (status = 503, response = tokenauth_kit::openapi::Unavailable),
    ),
    security(()),
)]
pub async fn decide(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let form = pages::read_page_form::<DeviceForm>(&req, payload)
        .await
        .unwrap_or_default();
    if let Some(refusal) = pages::csrf_refusal(
        &req,
        &state,
        form.csrf_token.as_deref(),
        "Cannot connect the device",
        "This form was not sent from this site's page, or it expired. Open the device page \
         again.",
    ) {
        return Ok(refusal);
    }
    let user_code = form.user_code.as_deref().unwrap_or_default();
    let user_code: String = user_code.chars().take(32).collect();
    let username = form.username.as_deref().unwrap_or_default();
    let approve = match form.action.as_deref() {
        Some("approve") => true,
        Some("deny") => false,
        _ => {
            let view = View {
                user_code: &user_code,
                username,
                error: Some("Choose Approve or Deny."),
                ..View::default()
            };
            return Ok(render(&req, &state, StatusCode::BAD_REQUEST, view));
        }
    };
    let client_ip = state.config.common.trusted_proxies.client_ip(&req);
    let mut new_login = None;
    let user = match cookies::login_session(&state, &req).await? {
        Some(user) => user,
        None => {
            let again = |status, message: &str| {
                let view = View {
                    user_code: &user_code,
                    username,
                    error: Some(message),
                    ..View::default()
                };
                render(&req, &state, status, view)
            };
            match sign_in_on_page(&state, username, form.password.as_deref(), client_ip).await? {
                Ok((user, login)) => {
                    new_login = Some(login);
                    user
                }
                Err(refusal) => return Ok(refusal.respond(again)),
            }
        }
    };
    let signed_in_as = Some(user.username.as_str());
    let again = |status, message: &str| {
        let view = View {
            user_code: &user_code,
            signed_in_as,
            error: Some(message),
            ..View::default()
        };
        render(&req, &state, status, view)
    };
    // An approval counts only from a page that named the client asking with this very code;
    // else the page names it now and asks again.
    let shown = form
        .shown_code
        .as_deref()
        .and_then(device::normalise_user_code);
    if approve && (shown.is_none() || shown != device::normalise_user_code(&user_code)) {
        let asking = client_asking(&state, &user_code, client_ip).await?;
        let res = asking_page(&req, &state, &user_code, signed_in_as, asking);
        return Ok(with_login(&state, res, new_login));
    }
    // A code typed wrong counts as a failed attempt of the address, so that codes cannot be
    // guessed faster than passwords; a right one gives its place back.
    let windows = crate::base::limits::login_ip_key(client_ip)
        .into_iter()
        .collect();
    let reservation = match reserve(&state.login_limiter, windows).await {
        Ok(r) => r,
        Err(e) => {
            let Some(refusal) = Refusal::of(&e.problem()) else {
                return Err(e);
            };
            return Ok(with_login(&state, refusal.respond(again), new_login));
        }
    };
    let decision = device::decide(&state, &user_code, approve, &user).await;
    settle(reservation, matches!(decision, Ok(Decision::Unknown))).await?;
    let decision = match decision {
        Ok(decision) => decision,
        // The account was disabled, deleted or had all its sessions ended meanwhile.
        Err(e) => match Refusal::of(&e.problem()) {
            Some(refusal) => {
                return Ok(with_login(&state, refusal.respond(again), new_login));
            }
            None => return Err(e),
        },
    };
    let res = match decision {
        Decision::Unknown => again(StatusCode::BAD_REQUEST, UNKNOWN_CODE),
        Decision::Approved { client_name } => done(
            "Device connected",
            &format!(
                "{client_name} is signed in as {}. You can return to your device.",
                user.username
            ),
        ),
        Decision::Denied { client_name } => done(
            "Request denied",
            &format!("{client_name} was not signed in. You can close this page."),
        ),
    };
    Ok(with_login(&state, res, new_login))
}

fn done(title: &str, message: &str) -> HttpResponse {
    let body = DoneTemplate {
        style: STYLE,
        title,
        message,
    }
    .render()
    .unwrap_or_default();
    pages::page(StatusCode::OK, &[]).body(body)
}
