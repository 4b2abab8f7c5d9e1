//! The OAuth 2.0 wire protocol (RFC 6749) every `/oauth/` endpoint speaks: form-encoded
//! requests (each parameter at most once), client credentials as presented (HTTP Basic or form
//! fields, never both), scopes asked within what is allowed, and §5.2 errors.

use std::borrow::Cow;
use std::collections::HashSet;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap};
use actix_web::{HttpResponse, ResponseError};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokenauth_kit::problem::Code;

use crate::base::error::ApiError;
use crate::base::tokens::DEFAULT_USER_SCOPE;

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
            _ => {
                problem.log_cause();
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "The server could not answer",
                )
            }
        }
    }
}

impl From<ApiError> for OAuthError {
    fn from(e: ApiError) -> Self {
        OAuthError::from_api(e)
    }
}

/// RFC 6749 §5.2: the error body of every `/oauth/` endpoint.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = OAuthError)]
pub struct ErrorBody<'a> {
    /// `invalid_request`, `invalid_client`, `invalid_grant`, `unauthorized_client`,
    /// `unsupported_grant_type`, `invalid_scope`, `invalid_target`, `slow_down` (429, with
    /// `Retry-After`), `temporarily_unavailable` (503) or `server_error`; the device grant's
    /// `authorization_pending`, `access_denied` and `expired_token`.
    #[schema(example = "invalid_grant")]
    pub error: &'a str,
    pub error_description: &'a str,
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

/// A form-encoded request body read into `T` (one of [`crate::oauth::forms`] or a page's
/// form): the content type must say so, each parameter comes at most once (RFC 6749 §3.1), a
/// parameter sent without a value counts as omitted, and parameters `T` does not name are
/// ignored.
pub fn read_form<T: DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> OAuthResult<T> {
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
    let mut params = serde_json::Map::new();
    let mut seen = HashSet::new();
    for (name, value) in form_urlencoded::parse(body) {
        if !seen.insert(name.clone()) {
            return Err(OAuthError::invalid_request(format!(
                "`{name}` is given more than once"
            )));
        }
        if !value.is_empty() {
            params.insert(name.into_owned(), Value::String(value.into_owned()));
        }
    }
    // Every field of a form is an optional string, so only a form type that asks for more
    // than that could fail here.
    T::deserialize(Value::Object(params)).map_err(|e| OAuthError::invalid_request(e.to_string()))
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
pub fn credentials(
    headers: &HeaderMap,
    client_id: Option<&str>,
    client_secret: Option<&str>,
) -> OAuthResult<Option<Credentials>> {
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
    let form_secret = client_secret;
    match basic {
        Some(creds) => {
            if form_secret.is_some() {
                return Err(OAuthError::invalid_request(
                    "Client credentials are given both in the Authorization header and the form",
                ));
            }
            if client_id.is_some_and(|id| id != creds.client_id) {
                return Err(OAuthError::invalid_request(
                    "client_id differs from the authenticated client",
                ));
            }
            Ok(Some(creds))
        }
        None => Ok(client_id.map(|id| Credentials {
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

/// `scope` as asked: within `allowed`, or all of `allowed` when not asked.
pub fn granted(asked: Option<&str>, allowed: &[String], what: &str) -> OAuthResult<Vec<String>> {
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

/// User tokens carry the one scope the JSON API gives them; asking for another is refused.
pub fn reject_scope_change(scope: Option<&str>) -> OAuthResult<()> {
    match scope {
        None => Ok(()),
        Some(scope)
            if scope
                .split(' ')
                .filter(|s| !s.is_empty())
                .all(|s| s == DEFAULT_USER_SCOPE) =>
        {
            Ok(())
        }
        Some(_) => Err(OAuthError::invalid_scope(format!(
            "user tokens carry the scope `{}` only",
            DEFAULT_USER_SCOPE
        ))),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use actix_web::http::header::{self, HeaderMap, HeaderValue};
    use proptest::prelude::*;

    use super::read_form;

    /// The headers of a request with a form body.
    pub(crate) fn form_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        headers
    }

    fn encoded<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<u8> {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
            .into_bytes()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Distinct names with any values read back as sent; an empty value is absent.
        #[test]
        fn a_form_of_distinct_names_reads_back_as_sent(
            pairs in proptest::collection::btree_map("\\PC{1,12}", "\\PC{0,24}", 0..8)
        ) {
            let body = encoded(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())));
            let read: BTreeMap<String, String> = read_form(&form_headers(), &body).unwrap();
            let expected: BTreeMap<String, String> =
                pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect();
            prop_assert_eq!(read, expected);
        }

        /// A name given twice is refused, whatever the values and wherever the repeat is.
        #[test]
        fn a_name_given_twice_is_refused(
            pairs in proptest::collection::btree_map("[a-z_]{1,12}", "\\PC{0,24}", 1..8),
            pick in any::<prop::sample::Index>(),
            again in "\\PC{0,24}",
            at in any::<prop::sample::Index>(),
        ) {
            let mut list: Vec<(&str, &str)> =
                pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            let (name, _) = list[pick.index(list.len())];
            list.insert(at.index(list.len() + 1), (name, again.as_str()));
            let refused = read_form::<BTreeMap<String, String>>(&form_headers(), &encoded(list));
            prop_assert!(refused.is_err());
        }

        /// Any body is read or refused with `invalid_request`; never a panic.
        #[test]
        fn any_body_is_read_or_refused(body in proptest::collection::vec(any::<u8>(), 0..128)) {
            if let Err(e) = read_form::<BTreeMap<String, String>>(&form_headers(), &body) {
                prop_assert_eq!(e.error, "invalid_request");
            }
        }
    }
}
