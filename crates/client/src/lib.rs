#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{RequestBuilder, Response, StatusCode};
use secrecy::ExposeSecret;
use serde::Deserialize;
use tokenauth_wire::{Login, Logout, SignedIn};
use tokio::sync::Mutex;

/// The HTTP client this crate is built on (reqwest 0.13): [`send`] takes its request builders,
/// and [`AuthClient::with_http`] one of its clients. Use this re-export so that the versions
/// match.
pub use reqwest;
/// Where this crate keeps secrets; [`SecretString`] is what a password is given as.
pub use secrecy::{self, SecretString};
/// The bodies of the auth-service's API, shared with the server.
pub use tokenauth_wire::{self, Registration, TokenResponse, User};

/// A token is renewed when it has less than this left, so that it does not expire on its way.
pub const RENEW_BEFORE: Duration = Duration::from_secs(30);

/// What went wrong, with what the service said when it said something.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A problem-details answer of the JSON API (`code` is the stable part).
    #[error("{status}: {code}: {detail}")]
    Problem {
        /// The HTTP status.
        status: StatusCode,
        /// The stable `code` (docs/api.md lists them).
        code: String,
        /// For people.
        detail: String,
    },
    /// An RFC 6749 §5.2 answer of an `/oauth/` endpoint.
    #[error("{status}: {error}: {description}")]
    OAuth {
        /// The HTTP status.
        status: StatusCode,
        /// The `error` (`invalid_grant`, `slow_down`, …).
        error: String,
        /// The `error_description`.
        description: String,
    },
    /// An answer that is neither.
    #[error("unexpected answer {status}")]
    Unexpected {
        /// The HTTP status.
        status: StatusCode,
    },
    /// The request did not complete (connection, timeout, a body that is not the expected JSON).
    #[error(transparent)]
    Http(#[from] reqwest::Error),
}

impl Error {
    /// The problem `code` or the OAuth `error`, when the service gave one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Problem { code, .. } => Some(code),
            Error::OAuth { error, .. } => Some(error),
            _ => None,
        }
    }

    /// Reads an error answer.
    pub async fn from_response(res: Response) -> Error {
        let status = res.status();
        let body: serde_json::Value = match res.json().await {
            Ok(body) => body,
            Err(_) => return Error::Unexpected { status },
        };
        let text = |name: &str| body[name].as_str().unwrap_or_default().to_owned();
        if body["code"].is_string() {
            Error::Problem {
                status,
                code: text("code"),
                detail: text("detail"),
            }
        } else if body["error"].is_string() {
            Error::OAuth {
                status,
                error: text("error"),
                description: text("error_description"),
            }
        } else {
            Error::Unexpected { status }
        }
    }
}

/// Something that hands out access tokens: a [`Session`] or a [`ServiceToken`].
pub trait TokenSource {
    /// A token that is not about to expire.
    fn access_token(&self) -> impl std::future::Future<Output = Result<String, Error>> + Send;
    /// A new token in place of `stale`, which a service refused as expired (unless another
    /// caller already replaced it).
    fn renew(&self, stale: &str)
    -> impl std::future::Future<Output = Result<String, Error>> + Send;
}

/// The auth-service's address and an HTTP client.
#[derive(Debug, Clone)]
pub struct AuthClient {
    base: String,
    http: reqwest::Client,
}

async fn json_or_error<T: for<'de> Deserialize<'de>>(res: Response) -> Result<T, Error> {
    if res.status().is_success() {
        Ok(res.json().await?)
    } else {
        Err(Error::from_response(res).await)
    }
}

impl AuthClient {
    /// The auth-service at `base_url` (`http://127.0.0.1:8080`), with a new HTTP client.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self::with_http(base_url, reqwest::Client::new())
    }

    /// The auth-service at `base_url`, through `http` (shared with the rest of the app, or
    /// configured: timeouts, proxies, TLS roots).
    pub fn with_http(base_url: impl Into<String>, http: reqwest::Client) -> Self {
        AuthClient {
            base: base_url.into().trim_end_matches('/').to_owned(),
            http,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn sign_in(&self, path: &str, body: &impl serde::Serialize) -> Result<Session, Error> {
        let res = self.http.post(self.url(path)).json(body).send().await?;
        let signed_in: SignedIn = json_or_error(res).await?;
        Ok(Session::new(
            self.clone(),
            signed_in.tokens,
            Some(signed_in.user),
        ))
    }

    /// `POST /v1/register`: a new account, signed in.
    pub async fn register(&self, username: &str, password: &str) -> Result<Session, Error> {
        self.register_with(&Registration {
            username: username.to_owned(),
            email: None,
            password: SecretString::from(password),
        })
        .await
    }

    /// `POST /v1/register` with everything the API takes (an email, say): a new account,
    /// signed in.
    pub async fn register_with(&self, registration: &Registration) -> Result<Session, Error> {
        self.sign_in("/v1/register", registration).await
    }

    /// `POST /v1/login`, by username or email.
    pub async fn login(&self, username: &str, password: &str) -> Result<Session, Error> {
        let login = Login {
            username: username.to_owned(),
            password: SecretString::from(password),
        };
        self.sign_in("/v1/login", &login).await
    }

    /// The OAuth 2.0 password grant (`POST /oauth/token`), as a public client.
    pub async fn password_grant(&self, username: &str, password: &str) -> Result<Session, Error> {
        let tokens = self
            .token_request(
                &[
                    ("grant_type", "password"),
                    ("username", username),
                    ("password", password),
                ],
                None,
            )
            .await?;
        Ok(Session::new(self.clone(), tokens, None))
    }

    /// A form-encoded `POST /oauth/token`, with HTTP Basic client authentication if given.
    async fn token_request(
        &self,
        params: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> Result<TokenResponse, Error> {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        let mut req = self
            .http
            .post(self.url("/oauth/token"))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body);
        if let Some((id, secret)) = basic {
            // RFC 6749 §2.3.1: form-encoded before Basic.
            let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            req = req.basic_auth(enc(id), Some(enc(secret)));
        }
        json_or_error(req.send().await?).await
    }

    /// Starts a device sign-in (RFC 8628) for a public client registered for the device grant:
    /// show [`DeviceSignIn::user_code`] and [`DeviceSignIn::verification_uri`] to the user,
    /// then [`DeviceSignIn::wait`] for the session.
    pub async fn device_sign_in(&self, client_id: &str) -> Result<DeviceSignIn, Error> {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs([("client_id", client_id), ("scope", "api")])
            .finish();
        let res = self
            .http
            .post(self.url("/oauth/device_authorization"))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await?;
        let codes: DeviceCodes = json_or_error(res).await?;
        Ok(DeviceSignIn {
            auth: self.clone(),
            client_id: client_id.to_owned(),
            codes,
        })
    }

    /// A service client's token source: client-credentials tokens, cached.
    pub fn service_token(&self, client_id: &str, client_secret: &str) -> ServiceToken {
        ServiceToken {
            auth: self.clone(),
            client_id: client_id.to_owned(),
            secret: SecretString::from(client_secret),
            scope: None,
            current: Arc::new(Mutex::new(None)),
        }
    }
}

#[derive(Clone, Deserialize)]
struct DeviceCodes {
    device_code: SecretString,
    user_code: String,
    verification_uri: String,
    verification_uri_complete: Option<String>,
    expires_in: u64,
    interval: u64,
}

/// A device sign-in under way (RFC 8628): the code the user types and where, and a wait for
/// their decision.
#[derive(Clone)]
pub struct DeviceSignIn {
    auth: AuthClient,
    client_id: String,
    codes: DeviceCodes,
}

impl DeviceSignIn {
    /// What the user types on the device page (`XXXX-XXXX`).
    pub fn user_code(&self) -> &str {
        &self.codes.user_code
    }

    /// Where the user goes (`…/device`).
    pub fn verification_uri(&self) -> &str {
        &self.codes.verification_uri
    }

    /// The same with the code filled in, for a link or a QR code.
    pub fn verification_uri_complete(&self) -> Option<&str> {
        self.codes.verification_uri_complete.as_deref()
    }

    /// How long the user has to decide.
    pub fn expires_in(&self) -> Duration {
        Duration::from_secs(self.codes.expires_in)
    }

    /// Polls until the user decides: the session once approved; [`Error::OAuth`] with
    /// `access_denied` if denied, `expired_token` if nobody decided in time. Waits the interval
    /// between polls, 5 s longer after each `slow_down`, as RFC 8628 §3.5 asks.
    pub async fn wait(&self) -> Result<Session, Error> {
        let mut interval = Duration::from_secs(self.codes.interval.max(1));
        let deadline = Instant::now() + self.expires_in() + interval;
        loop {
            tokio::time::sleep(interval).await;
            let res = self
                .auth
                .token_request(
                    &[
                        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                        ("device_code", self.codes.device_code.expose_secret()),
                        ("client_id", &self.client_id),
                    ],
                    None,
                )
                .await;
            match res {
                Ok(tokens) => {
                    return Ok(Session::for_client(
                        self.auth.clone(),
                        Some(self.client_id.clone()),
                        tokens,
                    ));
                }
                Err(e) if e.code() == Some("authorization_pending") => {}
                Err(e) if e.code() == Some("slow_down") => interval += Duration::from_secs(5),
                Err(e) => return Err(e),
            }
            if Instant::now() > deadline {
                return Err(Error::OAuth {
                    status: StatusCode::BAD_REQUEST,
                    error: "expired_token".into(),
                    description: "Nobody approved the sign-in in time".into(),
                });
            }
        }
    }
}

/// A token and when it stops being worth sending.
#[derive(Clone)]
struct Held {
    access: String,
    renew_at: Instant,
}

impl Held {
    fn of(tokens: &TokenResponse) -> Held {
        let life = Duration::from_secs(u64::try_from(tokens.expires_in).unwrap_or(0));
        Held {
            access: tokens.access_token.clone(),
            renew_at: Instant::now() + life.saturating_sub(RENEW_BEFORE),
        }
    }

    fn fresh(&self) -> bool {
        Instant::now() < self.renew_at
    }
}

struct SessionState {
    held: Held,
    refresh_token: Option<SecretString>,
}

/// A signed-in user's tokens. Cheap to clone; clones share the tokens. Its `Debug` output
/// shows no token.
#[derive(Clone)]
pub struct Session {
    auth: AuthClient,
    /// The public client a device sign-in was made for: it refreshes the session.
    client_id: Option<String>,
    user: Option<User>,
    state: Arc<Mutex<SessionState>>,
}

impl Session {
    fn new(auth: AuthClient, tokens: TokenResponse, user: Option<User>) -> Session {
        Session {
            user,
            ..Self::for_client(auth, None, tokens)
        }
    }

    fn for_client(auth: AuthClient, client_id: Option<String>, tokens: TokenResponse) -> Session {
        Session {
            auth,
            client_id,
            user: None,
            state: Arc::new(Mutex::new(SessionState {
                held: Held::of(&tokens),
                refresh_token: tokens.refresh_token.map(SecretString::from),
            })),
        }
    }

    /// The user, as registering or logging in answered (`None` for a session from a grant,
    /// whose answer names no user).
    pub fn user(&self) -> Option<&User> {
        self.user.as_ref()
    }

    /// Spends the refresh token for a new pair; the caller holds the lock, so this runs once
    /// however many callers wait.
    async fn refresh(&self, state: &mut SessionState) -> Result<String, Error> {
        let Some(refresh) = state.refresh_token.clone() else {
            return Err(Error::Problem {
                status: StatusCode::UNAUTHORIZED,
                code: "invalid_refresh_token".into(),
                detail: "This session has no refresh token".into(),
            });
        };
        let mut params = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.expose_secret()),
        ];
        if let Some(client_id) = &self.client_id {
            params.push(("client_id", client_id));
        }
        let tokens = self.auth.token_request(&params, None).await?;
        state.held = Held::of(&tokens);
        state.refresh_token = tokens.refresh_token.map(SecretString::from);
        Ok(state.held.access.clone())
    }

    /// `POST /v1/logout` with the refresh token: ends the session everywhere.
    pub async fn logout(&self) -> Result<(), Error> {
        let state = self.state.lock().await;
        let res = self
            .auth
            .http
            .post(self.auth.url("/v1/logout"))
            .json(&Logout {
                refresh_token: state.refresh_token.clone(),
            })
            .send()
            .await?;
        if res.status().is_success() {
            Ok(())
        } else {
            Err(Error::from_response(res).await)
        }
    }
}

impl TokenSource for Session {
    async fn access_token(&self) -> Result<String, Error> {
        let mut state = self.state.lock().await;
        if state.held.fresh() {
            return Ok(state.held.access.clone());
        }
        self.refresh(&mut state).await
    }

    async fn renew(&self, stale: &str) -> Result<String, Error> {
        let mut state = self.state.lock().await;
        if state.held.access != stale && state.held.fresh() {
            return Ok(state.held.access.clone());
        }
        self.refresh(&mut state).await
    }
}

/// A service client's client-credentials tokens, each cached until shortly before it expires.
/// Cheap to clone; clones share the cache. Its `Debug` output shows neither the secret nor a
/// token.
#[derive(Clone)]
pub struct ServiceToken {
    auth: AuthClient,
    client_id: String,
    secret: SecretString,
    scope: Option<String>,
    current: Arc<Mutex<Option<Held>>>,
}

impl ServiceToken {
    /// Asks for these scopes (space-separated) instead of all the client was registered with.
    pub fn with_scope(mut self, scope: &str) -> Self {
        self.scope = Some(scope.to_owned());
        self.current = Arc::new(Mutex::new(None));
        self
    }

    /// Token exchange (RFC 8693): trades `subject_token`, the access token a user called this
    /// service with, for a token addressed to `audience` (one this client is registered for) to
    /// call the next service with, on the user's behalf. The result keeps the user as `sub` and
    /// names this client in `act`; its scope is what the user's token and this client share
    /// (narrowed further by [`ServiceToken::with_scope`]); it expires no later than the user's
    /// token, and the user's logout refuses it everywhere. It has no refresh token: exchange
    /// again with the user's next token. Needs a client registered with the
    /// `urn:ietf:params:oauth:grant-type:token-exchange` grant type.
    pub async fn exchange(
        &self,
        subject_token: &str,
        audience: &str,
    ) -> Result<TokenResponse, Error> {
        let mut params = vec![
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", subject_token),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
            ("audience", audience),
        ];
        if let Some(scope) = &self.scope {
            params.push(("scope", scope));
        }
        self.auth
            .token_request(
                &params,
                Some((&self.client_id, self.secret.expose_secret())),
            )
            .await
    }

    async fn fetch(&self, current: &mut Option<Held>) -> Result<String, Error> {
        let mut params = vec![("grant_type", "client_credentials")];
        if let Some(scope) = &self.scope {
            params.push(("scope", scope));
        }
        let tokens = self
            .auth
            .token_request(
                &params,
                Some((&self.client_id, self.secret.expose_secret())),
            )
            .await?;
        let held = Held::of(&tokens);
        let access = held.access.clone();
        *current = Some(held);
        Ok(access)
    }
}

impl TokenSource for ServiceToken {
    async fn access_token(&self) -> Result<String, Error> {
        let mut current = self.current.lock().await;
        if let Some(held) = current.as_ref().filter(|h| h.fresh()) {
            return Ok(held.access.clone());
        }
        self.fetch(&mut current).await
    }

    async fn renew(&self, stale: &str) -> Result<String, Error> {
        let mut current = self.current.lock().await;
        if let Some(held) = current.as_ref().filter(|h| h.access != stale && h.fresh()) {
            return Ok(held.access.clone());
        }
        self.fetch(&mut current).await
    }
}

/// Sends `build()` with `source`'s token; on 401 `token_expired`, renews the token and sends a
/// rebuilt request once more. Any other answer is returned as it is, but a 401, which comes back
/// as the [`Error`] it carries.
pub async fn send<S, F>(source: &S, build: F) -> Result<Response, Error>
where
    S: TokenSource,
    F: Fn() -> RequestBuilder,
{
    let token = source.access_token().await?;
    let res = build().bearer_auth(&token).send().await?;
    if res.status() != StatusCode::UNAUTHORIZED {
        return Ok(res);
    }
    let refused = Error::from_response(res).await;
    if refused.code() != Some("token_expired") {
        return Err(refused);
    }
    let token = source.renew(&token).await?;
    let res = build().bearer_auth(&token).send().await?;
    if res.status() == StatusCode::UNAUTHORIZED {
        return Err(Error::from_response(res).await);
    }
    Ok(res)
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("auth", &self.auth)
            .field("client_id", &self.client_id)
            .field("user", &self.user.as_ref().map(|u| &u.username))
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ServiceToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceToken")
            .field("auth", &self.auth)
            .field("client_id", &self.client_id)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for DeviceSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceSignIn")
            .field("client_id", &self.client_id)
            .field("user_code", &self.codes.user_code)
            .field("verification_uri", &self.codes.verification_uri)
            .finish_non_exhaustive()
    }
}
