//! The OAuth 2.0 token endpoint (RFC 6749): its form-encoded requests, client authentication
//! (HTTP Basic or form fields, never both) and §5.2 errors, and the `password`,
//! `refresh_token`, `client_credentials` and token-exchange (RFC 8693) grants.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap};
use actix_web::{HttpResponse, ResponseError};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::SecretString;
use serde::Serialize;
use tokenauth_kit::problem::Code;
use tokenauth_store::models::Client;

use crate::accounts;
use crate::clients;
use crate::domain::Password;
use crate::error::ApiError;
use crate::sessions;
use crate::state::{AppState, unix_now};
use crate::tokens::{Grant, TokenResponse};

/// The largest form body read.
pub const MAX_FORM_BYTES: usize = 64 * 1024;

/// An RFC 6749 §5.2 error: `{"error", "error_description"}`, never cached; `invalid_client` is
/// a 401 with a Basic challenge.
#[derive(Debug, Clone)]
pub struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: Cow<'static, str>,
    retry_after: Option<u64>,
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.description)
    }
}

impl OAuthError {
    fn new(
        status: StatusCode,
        error: &'static str,
        description: impl Into<Cow<'static, str>>,
    ) -> Self {
        OAuthError {
            status,
            error,
            description: description.into(),
            retry_after: None,
        }
    }

    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    pub fn invalid_client() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed",
        )
    }

    pub fn invalid_grant(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }

    pub fn unauthorized_client(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unauthorized_client", description)
    }

    pub fn unsupported_grant_type() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be authorization_code, password, refresh_token, \
             client_credentials, urn:ietf:params:oauth:grant-type:device_code or \
             urn:ietf:params:oauth:grant-type:token-exchange",
        )
    }

    pub fn invalid_scope(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_scope", description)
    }

    /// A 400 with this RFC 6749 / RFC 8628 `error`.
    pub fn bad_request(error: &'static str, description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error, description)
    }

    pub fn error(&self) -> &'static str {
        self.error
    }

    /// How an error of the shared flows reads at the token endpoint. Wrong credentials and
    /// spent or unknown refresh tokens are `invalid_grant`; a failed-attempt limit is 429
    /// `slow_down` (RFC 8628's name for "too fast") with `Retry-After`; an outage is 503
    /// `temporarily_unavailable`; anything else a 500 `server_error` that says nothing more.
    pub fn from_api(e: ApiError) -> Self {
        let problem = e.problem();
        match problem.code() {
            Code::InvalidCredentials => Self::invalid_grant("Unknown username or wrong password"),
            Code::AccountDisabled => Self::invalid_grant("Account is disabled"),
            // A login cut off by the end of every session of the account.
            Code::TokenRevoked => Self::invalid_grant(problem.detail().to_owned()),
            Code::InvalidRefreshToken => {
                Self::invalid_grant("Refresh token is unknown, expired, revoked or already used")
            }
            Code::ValidationFailed | Code::InvalidRequest => {
                Self::invalid_request(problem.detail().to_owned())
            }
            Code::RateLimited => OAuthError {
                retry_after: problem.retry_after(),
                ..Self::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "slow_down",
                    "Too many failed attempts; try again later",
                )
            },
            Code::Unavailable => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "A dependency is unavailable; try again later",
            ),
            _ => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "The server could not answer",
            ),
        }
    }
}

impl From<ApiError> for OAuthError {
    fn from(e: ApiError) -> Self {
        OAuthError::from_api(e)
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    error_description: &'a str,
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        res.insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::PRAGMA, "no-cache"));
        if self.status == StatusCode::UNAUTHORIZED {
            res.insert_header((
                header::WWW_AUTHENTICATE,
                format!("Basic realm=\"{}\"", tokenauth_kit::problem::REALM),
            ));
        }
        if let Some(secs) = self.retry_after {
            res.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        res.json(ErrorBody {
            error: self.error,
            error_description: &self.description,
        })
    }
}

pub type OAuthResult<T> = Result<T, OAuthError>;

/// The parameters of a form-encoded request: each at most once (RFC 6749 §3.1), and one sent
/// without a value counts as omitted.
#[derive(Debug, Default)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// Checks the content type and parses the body.
    pub fn parse(headers: &HeaderMap, body: &[u8]) -> OAuthResult<Params> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !is_form(content_type) {
            return Err(OAuthError::invalid_request(
                "The body must be application/x-www-form-urlencoded",
            ));
        }
        if std::str::from_utf8(body).is_err() {
            return Err(OAuthError::invalid_request("The body is not UTF-8"));
        }
        let mut params = HashMap::new();
        let mut seen = std::collections::HashSet::new();
        for (name, value) in form_urlencoded::parse(body) {
            if !seen.insert(name.to_string()) {
                return Err(OAuthError::invalid_request(format!(
                    "`{name}` is given more than once"
                )));
            }
            if !value.is_empty() {
                params.insert(name.into_owned(), value.into_owned());
            }
        }
        Ok(Params(params))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn required(&self, name: &str) -> OAuthResult<&str> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("`{name}` is required")))
    }
}

/// `application/x-www-form-urlencoded`, in any case, with no parameter but `charset=utf-8`.
fn is_form(content_type: &str) -> bool {
    let mut parts = content_type.split(';').map(str::trim);
    let essence = parts.next().unwrap_or("");
    essence.eq_ignore_ascii_case("application/x-www-form-urlencoded")
        && parts.all(|p| {
            p.split_once('=').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("charset")
                    && v.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
            })
        })
}

/// Client credentials as presented: by HTTP Basic (id and secret form-encoded first, RFC 6749
/// §2.3.1) or by the form's `client_id` and `client_secret`.
#[derive(Debug)]
pub struct Credentials {
    pub client_id: String,
    pub secret: Option<String>,
}

/// The credentials of a request, if any. Both ways at once, more than one `Authorization`
/// header, or a malformed Basic header is `invalid_request` / `invalid_client`.
pub fn credentials(headers: &HeaderMap, params: &Params) -> OAuthResult<Option<Credentials>> {
    let mut auth = headers.get_all(header::AUTHORIZATION);
    let basic = match (auth.next(), auth.next()) {
        (None, _) => None,
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_request(
                "More than one Authorization header",
            ));
        }
        (Some(value), None) => Some(parse_basic(value.as_bytes())?),
    };
    let form_secret = params.get("client_secret");
    match basic {
        Some(creds) => {
            if form_secret.is_some() {
                return Err(OAuthError::invalid_request(
                    "Client credentials are given both in the Authorization header and the form",
                ));
            }
            if params
                .get("client_id")
                .is_some_and(|id| id != creds.client_id)
            {
                return Err(OAuthError::invalid_request(
                    "client_id differs from the authenticated client",
                ));
            }
            Ok(Some(creds))
        }
        None => Ok(params.get("client_id").map(|id| Credentials {
            client_id: id.to_owned(),
            secret: form_secret.map(str::to_owned),
        })),
    }
}

fn parse_basic(value: &[u8]) -> OAuthResult<Credentials> {
    let text = std::str::from_utf8(value).map_err(|_| OAuthError::invalid_client())?;
    let (scheme, encoded) = text
        .split_once(' ')
        .ok_or_else(OAuthError::invalid_client)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_client());
    }
    let decoded = STANDARD
        .decode(encoded.trim())
        .map_err(|_| OAuthError::invalid_client())?;
    let decoded = String::from_utf8(decoded).map_err(|_| OAuthError::invalid_client())?;
    let (id, secret) = decoded
        .split_once(':')
        .ok_or_else(OAuthError::invalid_client)?;
    let unescape = |s: &str| -> String {
        form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Ok(Credentials {
        client_id: unescape(id),
        secret: Some(unescape(secret)),
    })
}

/// The service client the credentials authenticate; `invalid_client` otherwise.
async fn authenticate_client(
    state: &AppState,
    creds: &Credentials,
    client_ip: Option<IpAddr>,
) -> OAuthResult<Client> {
    let Some(secret) = &creds.secret else {
        return Err(OAuthError::invalid_client());
    };
    clients::authenticate(state, &creds.client_id, secret, client_ip)
        .await?
        .ok_or_else(OAuthError::invalid_client)
}

/// The client of an authorization-code redemption: a public client by its id alone (a secret
/// sent for it is refused), a confidential one authenticated.
pub(crate) async fn code_client(
    state: &AppState,
    creds: Option<Credentials>,
    client_ip: Option<IpAddr>,
) -> OAuthResult<Client> {
    let Some(creds) = creds else {
        return Err(OAuthError::invalid_client());
    };
    if creds.secret.is_some() {
        return authenticate_client(state, &creds, client_ip).await;
    }
    match clients::find(state, &creds.client_id).await? {
        Some(client) if client.public => Ok(client),
        _ => Err(OAuthError::invalid_client()),
    }
}

/// `scope` as asked: within `allowed`, or all of `allowed` when not asked.
fn granted(asked: Option<&str>, allowed: &[String], what: &str) -> OAuthResult<Vec<String>> {
    let Some(asked) = asked else {
        return Ok(allowed.to_vec());
    };
    let mut out: Vec<String> = Vec::new();
    for value in asked.split(' ').filter(|s| !s.is_empty()) {
        if !allowed.iter().any(|a| a == value) {
            return Err(OAuthError::invalid_scope(format!(
                "{what} `{value}` is not one this client was registered with"
            )));
        }
        if !out.iter().any(|o| o == value) {
            out.push(value.to_owned());
        }
    }
    Ok(out)
}

/// `POST /oauth/token`.
pub async fn token(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    client_ip: Option<IpAddr>,
) -> OAuthResult<TokenResponse> {
    let params = Params::parse(headers, body)?;
    let creds = credentials(headers, &params)?;
    match params.required("grant_type")? {
        "client_credentials" => {
            let Some(creds) = creds else {
                return Err(OAuthError::invalid_client());
            };
            let client = authenticate_client(state, &creds, client_ip).await?;
            if !client.may_use(clients::GRANT_CLIENT_CREDENTIALS) {
                return Err(OAuthError::unauthorized_client(
                    "This client is not registered for client_credentials",
                ));
            }
            client_credentials(state, &client, &params)
        }
        clients::GRANT_AUTHORIZATION_CODE => {
            let client = code_client(state, creds, client_ip).await?;
            if !client.may_use(clients::GRANT_AUTHORIZATION_CODE) {
                return Err(OAuthError::unauthorized_client(
                    "This client is not registered for the authorization_code grant",
                ));
            }
            reject_scope_change(&params)?;
            crate::authorize::redeem(state, &client, &params, client_ip).await
        }
        clients::GRANT_DEVICE_CODE => {
            let client = code_client(state, creds, client_ip).await?;
            if !client.may_use(clients::GRANT_DEVICE_CODE) {
                return Err(OAuthError::unauthorized_client(
                    "This client is not registered for the device_code grant",
                ));
            }
            crate::device::poll(state, &client, &params).await
        }
        clients::GRANT_TOKEN_EXCHANGE => {
            let Some(creds) = creds else {
                return Err(OAuthError::invalid_client());
            };
            let client = authenticate_client(state, &creds, client_ip).await?;
            if !client.may_use(clients::GRANT_TOKEN_EXCHANGE) {
                return Err(OAuthError::unauthorized_client(
                    "This client is not registered for token exchange",
                ));
            }
            token_exchange(state, &client, &params).await
        }
        "password" => {
            // A public client may send only its id; a client that sends a secret must be
            // authenticated by it.
            if let Some(creds) = creds.as_ref().filter(|c| c.secret.is_some()) {
                authenticate_client(state, creds, client_ip).await?;
                return Err(OAuthError::unauthorized_client(
                    "Service clients get tokens with client_credentials",
                ));
            }
            password(state, &params, client_ip).await
        }
        "refresh_token" => {
            let refresh = params.required("refresh_token")?;
            reject_scope_change(&params)?;
            // A session started for a client (authorization code, device) is refreshed by that
            // client only: authenticated if confidential (RFC 6749 §6), by its id if public.
            // Sessions of the JSON API and the password grant belong to no client, and are
            // refreshed without one.
            let (presented, authenticated) = match creds {
                Some(creds) if creds.secret.is_some() => {
                    let client = authenticate_client(state, &creds, client_ip).await?;
                    if !client.may_use(clients::GRANT_REFRESH_TOKEN) {
                        return Err(OAuthError::unauthorized_client(
                            "This client is not registered for the refresh_token grant",
                        ));
                    }
                    (Some(client.client_id), true)
                }
                // The first-party id names no registered client: the JSON API's own.
                Some(creds) if creds.client_id == crate::tokens::FIRST_PARTY_CLIENT_ID => {
                    (None, false)
                }
                Some(creds) => (Some(creds.client_id), false),
                None => (None, false),
            };
            let owner = sessions::client_of_refresh_token(state, refresh).await?;
            let spent = || {
                OAuthError::invalid_grant(
                    "Refresh token is unknown, expired, revoked or already used",
                )
            };
            if owner != presented {
                return Err(spent());
            }
            if let Some(owner) = &owner
                && !authenticated
            {
                match clients::find(state, owner).await? {
                    Some(client) if client.public => {}
                    // A confidential client's session: only its secret refreshes it.
                    Some(_) => return Err(OAuthError::invalid_client()),
                    None => return Err(spent()),
                }
            }
            Ok(sessions::refresh(state, refresh).await?)
        }
        _ => Err(OAuthError::unsupported_grant_type()),
    }
}

/// User tokens carry the one scope the JSON API gives them; asking for another is refused.
fn reject_scope_change(params: &Params) -> OAuthResult<()> {
    match params.get("scope") {
        None => Ok(()),
        Some(scope)
            if scope
                .split(' ')
                .filter(|s| !s.is_empty())
                .all(|s| s == crate::tokens::DEFAULT_USER_SCOPE) =>
        {
            Ok(())
        }
        Some(_) => Err(OAuthError::invalid_scope(format!(
            "user tokens carry the scope `{}` only",
            crate::tokens::DEFAULT_USER_SCOPE
        ))),
    }
}

async fn password(
    state: &AppState,
    params: &Params,
    client_ip: Option<IpAddr>,
) -> OAuthResult<TokenResponse> {
    let username = params.required("username")?;
    let password = params.required("password")?;
    reject_scope_change(params)?;
    let password = Password::parse_for_check(SecretString::from(password.to_owned()))
        .map_err(|m| OAuthError::invalid_request(format!("password {m}")))?;
    let signed_in = accounts::login(state, username, password, client_ip).await?;
    Ok(signed_in.tokens)
}

fn client_credentials(
    state: &AppState,
    client: &Client,
    params: &Params,
) -> OAuthResult<TokenResponse> {
    if params.get("refresh_token").is_some() || params.get("username").is_some() {
        return Err(OAuthError::invalid_request(
            "client_credentials takes no user or refresh token",
        ));
    }
    let scopes = granted(params.get("scope"), &client.scope_list(), "scope")?;
    let audience = granted(params.get("audience"), &client.audience_list(), "audience")?;
    if audience.is_empty() {
        return Err(OAuthError::invalid_scope("name at least one audience"));
    }
    let scope = scopes.join(" ");
    let grant = Grant {
        subject: client.client_id.clone(),
        client_id: client.client_id.clone(),
        scope: scope.clone(),
        roles: Vec::new(),
        session_id: None,
        username: None,
        audience: Some(audience),
        actor: None,
        issued_at_least: 0,
    };
    let (access, _) = state
        .tokens
        .mint_access(&grant, unix_now())
        .map_err(|e| OAuthError::from_api(e.into()))?;
    Ok(TokenResponse {
        access_token: access,
        token_type: "Bearer",
        expires_in: state.tokens.access_ttl,
        refresh_token: None,
        refresh_expires_in: None,
        scope,
        issued_token_type: None,
    })
}

pub const TOKEN_TYPE_ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";

/// Token exchange (RFC 8693 §2): a service trades the access token a user called it with for
/// one addressed to the service it calls next. The new token keeps the user (`sub`, `sid`,
/// `roles`, `preferred_username`), so the user's logout and every revocation of the user refuse
/// it too; names only the requested audience, one the client is registered for; carries only
/// scope both the subject token and the client have; expires no later than the subject token;
/// names the client in `client_id` and in `act` (with any earlier actor nested, §4.1); and
/// comes with no refresh token. Only an active user token is exchanged: not a revoked or expired
/// one, not a service's own token.
async fn token_exchange(
    state: &AppState,
    client: &Client,
    params: &Params,
) -> OAuthResult<TokenResponse> {
    let subject_token = params.required("subject_token")?;
    let subject_type = params.required("subject_token_type")?;
    if subject_type != TOKEN_TYPE_ACCESS {
        return Err(OAuthError::invalid_request(format!(
            "subject_token_type must be {TOKEN_TYPE_ACCESS}"
        )));
    }
    for unsupported in ["actor_token", "actor_token_type", "resource"] {
        if params.get(unsupported).is_some() {
            return Err(OAuthError::invalid_request(format!(
                "{unsupported} is not supported; the authenticated client is the actor"
            )));
        }
    }
    if let Some(requested) = params.get("requested_token_type")
        && requested != TOKEN_TYPE_ACCESS
    {
        return Err(OAuthError::invalid_request(format!(
            "requested_token_type must be {TOKEN_TYPE_ACCESS}"
        )));
    }
    let audience = params.required("audience")?;
    if audience.split(' ').filter(|a| !a.is_empty()).count() != 1 {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "invalid_target",
            "name exactly one audience",
        ));
    }
    if !client.audience_list().iter().any(|a| a == audience) {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "invalid_target",
            format!("`{audience}` is not an audience this client was registered for"),
        ));
    }
    let subject = state
        .tokens
        .keys()
        .issued_verifier()
        .verify(subject_token)
        .map_err(|_| OAuthError::invalid_grant("subject_token is not a valid access token"))?;
    if subject.sid.is_none() || subject.sub.starts_with(clients::CLIENT_ID_PREFIX) {
        return Err(OAuthError::invalid_grant(
            "subject_token is not a user's token",
        ));
    }
    let now = unix_now();
    // Within the verifier's leeway a token past `exp` still verifies; one minted now with that
    // `exp` would be born expired.
    if subject.exp <= now || !crate::auth::is_active(state, &subject).await? {
        return Err(OAuthError::invalid_grant(
            "subject_token is revoked or expired",
        ));
    }
    let allowed: Vec<String> = subject
        .scope
        .split(' ')
        .filter(|s| !s.is_empty() && client.scope_list().iter().any(|c| c == s))
        .map(str::to_owned)
        .collect();
    let scopes = granted(params.get("scope"), &allowed, "scope").map_err(|_| {
        OAuthError::invalid_scope("scope beyond the subject token's or this client's")
    })?;
    if scopes.is_empty() {
        return Err(OAuthError::invalid_scope(
            "the subject token and this client share no scope",
        ));
    }
    let scope = scopes.join(" ");
    let grant = Grant {
        subject: subject.sub.clone(),
        client_id: client.client_id.clone(),
        scope: scope.clone(),
        roles: subject.roles.clone(),
        session_id: subject.sid.clone(),
        username: subject.preferred_username.clone(),
        audience: Some(vec![audience.to_owned()]),
        actor: Some(tokenauth_jwt::Actor {
            sub: client.client_id.clone(),
            act: subject.act.clone().map(Box::new),
        }),
        // Never older than what it was exchanged from (which a user-wide revocation that came
        // before it does not cover).
        issued_at_least: subject.iat,
    };
    // A token every verifier would refuse is not handed out.
    if subject.actors().count() >= tokenauth_jwt::MAX_ACT_DEPTH {
        return Err(OAuthError::invalid_request(format!(
            "subject_token has been exchanged {} times; a token may carry at most {} actors",
            subject.actors().count(),
            tokenauth_jwt::MAX_ACT_DEPTH
        )));
    }
    let (access, claims) = state
        .tokens
        .mint_access_until(&grant, now, subject.exp)
        .map_err(|e| OAuthError::from_api(e.into()))?;
    if access.len() > tokenauth_jwt::MAX_TOKEN_BYTES {
        return Err(OAuthError::invalid_request(format!(
            "the exchanged token would be {} bytes, over the {} every verifier accepts",
            access.len(),
            tokenauth_jwt::MAX_TOKEN_BYTES
        )));
    }
    Ok(TokenResponse {
        access_token: access,
        token_type: "Bearer",
        expires_in: claims.exp - now,
        refresh_token: None,
        refresh_expires_in: None,
        scope,
        issued_token_type: Some(TOKEN_TYPE_ACCESS),
    })
}

/// `POST /oauth/revoke` (RFC 7009). Credentials are optional; when sent they must be right, and
/// a client may revoke only its own tokens. Whatever the token (unknown, expired, malformed,
/// someone else's), a well-formed request is answered 200, so the answer tells nothing.
pub async fn revoke(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    client_ip: Option<IpAddr>,
) -> OAuthResult<()> {
    let params = Params::parse(headers, body)?;
    let creds = credentials(headers, &params)?;
    let client = match creds.filter(|c| c.secret.is_some()) {
        Some(creds) => Some(authenticate_client(state, &creds, client_ip).await?),
        None => None,
    };
    let token = params.required("token")?;
    // `token_type_hint` is only a hint: both kinds are tried, in either order alike.
    if let Ok(claims) = state.tokens.keys().issued_verifier().verify(token) {
        if client
            .as_ref()
            .is_some_and(|c| c.client_id != claims.client_id)
        {
            return Ok(());
        }
        let now = unix_now();
        let until = claims.exp + tokenauth_jwt::MAX_LEEWAY_SECS as i64;
        let jti = claims.jti.clone();
        let revoked = state
            .db
            .run(move |conn| tokenauth_store::revocations::revoke_token(conn, &jti, now, until))
            .await
            .map_err(ApiError::from)?;
        state
            .revocations
            .publish(&[revoked])
            .await
            .map_err(ApiError::from)?;
        tracing::info!(jti = %claims.jti, "access token revoked");
        return Ok(());
    }
    if client.is_none() {
        sessions::revoke_by_refresh_token(state, token).await?;
    }
    Ok(())
}

/// `POST /oauth/introspect` (RFC 7662), for authenticated service clients: an access token this
/// service minted, of any audience, is active while it verifies and is not revoked (asked as
/// every verifier asks, see [`crate::auth::is_active`]); anything else (expired, revoked, unknown, malformed, another issuer's, a refresh
/// token) is `{"active": false}`.
pub async fn introspect(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    client_ip: Option<IpAddr>,
) -> OAuthResult<serde_json::Value> {
    let params = Params::parse(headers, body)?;
    let Some(creds) = credentials(headers, &params)? else {
        return Err(OAuthError::invalid_client());
    };
    authenticate_client(state, &creds, client_ip).await?;
    let token = params.required("token")?;
    let inactive = serde_json::json!({"active": false});
    let now = unix_now();
    // The key set of the moment: a token verified with a key since retired is verified again.
    let keys = state.tokens.keys();
    let cached = state
        .introspected
        .with(token.as_bytes(), now, keys.generation(), |entry| {
            entry.claims.clone()
        });
    let claims = match cached {
        Some(claims) => claims,
        None => match keys.issued_verifier().verify(token) {
            Ok(claims) => {
                let claims = Arc::new(claims);
                state
                    .introspected
                    .insert(token.as_bytes(), claims.clone(), now, keys.generation());
                claims
            }
            Err(_) => return Ok(inactive),
        },
    };
    if !crate::auth::is_active(state, &claims).await? {
        return Ok(inactive);
    }
    Ok(serde_json::json!({
        "active": true,
        "scope": claims.scope,
        "client_id": claims.client_id,
        "username": claims.preferred_username,
        "token_type": "Bearer",
        "exp": claims.exp,
        "iat": claims.iat,
        "nbf": claims.nbf,
        "sub": claims.sub,
        "aud": claims.aud,
        "iss": claims.iss,
        "jti": claims.jti,
        "sid": claims.sid,
        "roles": claims.roles,
    }))
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414): exactly what is served.
pub fn metadata(state: &AppState) -> serde_json::Value {
    let issuer = state.config.issuer.trim_end_matches('/');
    let client_auth = ["client_secret_basic", "client_secret_post"];
    let algorithm = match state.config.keys {
        crate::config::KeyConfig::Hs256 { .. } => "HS256",
        crate::config::KeyConfig::EdDsa { .. } => "EdDSA",
    };
    serde_json::json!({
        "issuer": state.config.issuer,
        "token_endpoint": format!("{issuer}/oauth/token"),
        "revocation_endpoint": format!("{issuer}/oauth/revoke"),
        "introspection_endpoint": format!("{issuer}/oauth/introspect"),
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "authorization_endpoint": format!("{issuer}/oauth/authorize"),
        "device_authorization_endpoint": format!("{issuer}/oauth/device_authorization"),
        "grant_types_supported": ["authorization_code", "password", "refresh_token", "client_credentials", clients::GRANT_DEVICE_CODE, clients::GRANT_TOKEN_EXCHANGE],
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        "scopes_supported": [crate::tokens::DEFAULT_USER_SCOPE],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": client_auth,
        "access_token_signing_alg_values_supported": [algorithm],
    })
}
