//! The protected example API: each endpoint shows one way a service uses tokens.

use std::path::{Component, Path, PathBuf};
use tokenauth_kit::problem::Code;

use std::time::Instant;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokenauth_guard::{Authenticated, Guard, MaybeAuthenticated, RequireRole, Role};
use tokenauth_kit::Problem;
use tokenauth_kit::client_ip::TrustedProxies;
use tokenauth_kit::openapi as doc;
use tokenauth_kit::resource::{get, post};
use tokenauth_revocation::unix_now;

use crate::links::{LinkSigner, MAX_LINK_SECS};

pub struct Admin;

impl Role for Admin {
    const NAME: &'static str = "admin";
}

#[derive(Debug)]
pub struct Files {
    /// Canonical path of `FILES_DIR`.
    pub dir: PathBuf,
    pub signer: LinkSigner,
    /// `PUBLIC_BASE_URL`: links are absolute under it, or paths when unset.
    pub public_base_url: Option<String>,
}

#[derive(Debug)]
pub struct Started(pub Instant);

/// Mounts every route. A GET route answers HEAD too; unknown methods on a known path answer
/// 405 with `Allow`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(get("/v1/secret", secret))
        .service(get("/v1/whoami", whoami))
        .service(get("/v1/greeting", greeting))
        .service(get("/v1/admin/stats", admin_stats))
        .service(get("/v1/files/{name}", file))
        .service(post("/v1/files/{name}/link", file_link))
        .service(get("/healthz", tokenauth_kit::health::healthz))
        .service(get("/readyz", readyz))
        .service(get("/metrics", metrics));
}

/// `{"answer": 42}` for any valid access token.
#[utoipa::path(
    get,
    path = "/v1/secret",
    tag = "examples",
    responses(
        (status = 200, description = "The answer", body = Answer),
        (status = 401, response = doc::Unauthorized),
        (status = 503, response = doc::Unavailable),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn secret(_: Authenticated) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"answer":42}"#)
}

fn rfc3339(unix: i64) -> Option<String> {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
}

/// What the access token says about its bearer.
#[utoipa::path(
    get,
    path = "/v1/whoami",
    tag = "examples",
    responses(
        (status = 200, description = "The token's claims", body = WhoAmI),
        (status = 401, response = doc::Unauthorized),
        (status = 503, response = doc::Unavailable),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn whoami(Authenticated(claims): Authenticated) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "sub": claims.sub,
        "username": claims.preferred_username,
        "roles": claims.roles,
        "scope": claims.scope,
        "client_id": claims.client_id,
        "session_id": claims.sid,
        "expires_at": rfc3339(claims.exp),
    }))
}

/// A greeting that works with or without a token; a bad token is still 401.
#[utoipa::path(
    get,
    path = "/v1/greeting",
    tag = "examples",
    responses(
        (status = 200, description = "Who is logged in, if anyone", body = Greeting),
        (status = 401, response = doc::Unauthorized),
        (status = 503, response = doc::Unavailable),
    ),
    security((), ("bearer" = [])),
)]
pub(crate) async fn greeting(MaybeAuthenticated(claims): MaybeAuthenticated) -> HttpResponse {
    let name = claims.and_then(|c| c.preferred_username.clone().or_else(|| Some(c.sub.clone())));
    HttpResponse::Ok().json(json!({"logged_in_as": name}))
}

/// Uptime, cached tokens and the revocation mirror (role `admin`).
#[utoipa::path(
    get,
    path = "/v1/admin/stats",
    tag = "examples",
    responses(
        (status = 200, description = "The statistics", body = AdminStats),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 503, response = doc::Unavailable),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn admin_stats(
    _: RequireRole<Admin>,
    guard: Guard,
    started: web::Data<Started>,
) -> HttpResponse {
    let m = guard.revocation_stats();
    HttpResponse::Ok().json(json!({
        "uptime_secs": started.0.elapsed().as_secs(),
        "verified_tokens_cached": guard.cached_tokens(),
        "revocations": {
            "tokens": m.tokens,
            "sessions": m.sessions,
            "users": m.users,
            "seq": m.seq,
            "current": m.current,
        },
    }))
}

/// `GET /metrics`: requests, tokens verified and refused, the revocation mirror (Prometheus
/// text format).
async fn metrics(guard: Guard) -> HttpResponse {
    guard.record_metrics();
    tokenauth_kit::metrics::render()
}

async fn readyz(guard: Guard) -> HttpResponse {
    tokenauth_kit::health::readiness(&[
        ("keys", guard.keys_ready()),
        ("revocations", guard.revocations_current()),
    ])
}

/// A file name is one plain path segment: no separators, no `..`, nothing hidden. A symlink is
/// judged by where it leads: the canonical target must be a file inside `dir` (itself canonical)
/// with no hidden component below `dir`, or a link could publish what a name could not.
fn resolve(dir: &Path, name: &str) -> Option<PathBuf> {
    let plain = !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0', ':']);
    if !plain {
        return None;
    }
    let path = dir.join(name).canonicalize().ok()?;
    let visible = path.strip_prefix(dir).ok()?.components().all(
        |c| matches!(c, Component::Normal(part) if !part.as_encoded_bytes().starts_with(b".")),
    );
    (visible && path.is_file()).then_some(path)
}

/// A signed link's query; without both fields the request needs an access token.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LinkQuery {
    /// Signed link: its expiry, Unix seconds (a signed 64-bit integer).
    expires: Option<i64>,
    /// Signed link: its signature.
    sig: Option<String>,
}

/// A file from `FILES_DIR`, with an access token or a signed link (`expires` and `sig`).
/// Served as data: `nosniff` and a sandboxing `Content-Security-Policy`.
#[utoipa::path(
    get,
    path = "/v1/files/{name}",
    tag = "examples",
    params(
        ("name" = String, Path, description = "One plain path segment; hidden files, `..` and separators are 404"),
        LinkQuery,
    ),
    responses(
        (status = 200, description = "The file, with its content type", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 400, response = doc::BadRequest),
        (status = 401, response = doc::Unauthorized),
        (status = 404, response = doc::NotFound),
        (status = 503, response = doc::Unavailable),
    ),
    security(("bearer" = []), ()),
)]
pub(crate) async fn file(
    req: HttpRequest,
    name: web::Path<String>,
    query: web::Query<LinkQuery>,
    files: web::Data<Files>,
    guard: Guard,
) -> Result<HttpResponse, actix_web::Error> {
    let name = name.into_inner();
    match (&query.expires, &query.sig) {
        (Some(expires), Some(sig)) => {
            if !files.signer.verify(&name, *expires, sig, unix_now()) {
                return Err(
                    Problem::new(Code::InvalidToken, "The link is invalid or has expired").into(),
                );
            }
        }
        (None, None) => {
            let token = tokenauth_kit::bearer::bearer_token(&req)?.ok_or_else(|| {
                Problem::new(
                    Code::MissingToken,
                    "An access token or a signed link is required",
                )
            })?;
            guard.authenticate(token).await?;
        }
        _ => return Err(Problem::new(Code::InvalidToken, "The link is incomplete").into()),
    }
    let path = resolve(&files.dir, &name).ok_or_else(Problem::not_found)?;
    let file = web::block(move || actix_files::NamedFile::open(path))
        .await
        .map_err(Problem::internal)?
        .map_err(|_| Problem::not_found())?;
    let mut res = file.into_response(&req);
    // A served file is data, never a page of this origin: an HTML or SVG file opened from a
    // signed link runs no script and is not sniffed into another type.
    let headers = res.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    Ok(res)
}

/// A link to the file that works without any header for five minutes.
#[utoipa::path(
    post,
    path = "/v1/files/{name}/link",
    tag = "examples",
    params(("name" = String, Path, description = "The file's name")),
    responses(
        (status = 200, description = "The signed link", body = SignedLink),
        (status = 401, response = doc::Unauthorized),
        (status = 404, response = doc::NotFound),
        (status = 503, response = doc::Unavailable),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn file_link(
    req: HttpRequest,
    Authenticated(claims): Authenticated,
    name: web::Path<String>,
    files: web::Data<Files>,
    proxies: web::Data<TrustedProxies>,
) -> Result<HttpResponse, Problem> {
    let name = name.into_inner();
    resolve(&files.dir, &name).ok_or_else(Problem::not_found)?;
    let expires = unix_now() + MAX_LINK_SECS;
    let sig = files.signer.sign(&name, expires);
    let encoded: String = name
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    // The Host and X-Forwarded-* headers are the client's to choose: a link built from them
    // could point anywhere, so the base comes from configuration or is left out.
    let base = files.public_base_url.as_deref().unwrap_or("");
    let url = format!("{base}/v1/files/{encoded}?expires={expires}&sig={sig}");
    // Who can fetch a file without a token, from where: the signature itself is not logged.
    let client_ip = proxies
        .client_ip(&req)
        .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    tracing::info!(sub = %claims.sub, file = ?name, client_ip, expires, "signed file link issued");
    Ok(HttpResponse::Ok().json(json!({"url": url, "expires_at": rfc3339(expires)})))
}

/// `GET /v1/secret`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct Answer {
    #[schema(example = 42)]
    answer: u32,
}

/// `GET /v1/whoami`: the claims, by the names docs/api.md gives them.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct WhoAmI {
    sub: String,
    /// Null for a service client's token.
    username: Option<String>,
    roles: Vec<String>,
    /// Space-separated.
    scope: String,
    client_id: String,
    /// Null for a service client's token.
    session_id: Option<String>,
    #[schema(format = DateTime)]
    expires_at: String,
}

/// `GET /v1/greeting`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct Greeting {
    logged_in_as: Option<String>,
}

/// `GET /v1/admin/stats`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct AdminStats {
    uptime_secs: u64,
    verified_tokens_cached: u64,
    revocations: MirrorStats,
}

/// The revocation mirror: entries by kind, the last sequence applied, and whether it is current.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct MirrorStats {
    tokens: u64,
    sessions: u64,
    users: u64,
    seq: i64,
    current: bool,
}

/// `POST /v1/files/{name}/link`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct SignedLink {
    /// Absolute under `PUBLIC_BASE_URL`, else a path.
    url: String,
    #[schema(format = DateTime)]
    expires_at: String,
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(secret, whoami, greeting, admin_stats, file, file_link),
    tags(
        (name = "examples", description = "Each endpoint shows one way a service uses tokens"),
        (name = "operations", description = "Health, metrics and this document"),
    )
)]
struct ResourceApi;

/// The whole document, as served.
pub fn document() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi as _;
    doc::finish(
        ResourceApi::openapi(),
        "tokenauth resource-service",
        "An example API protected by tokenauth-guard: access tokens are verified locally and \
         checked against the revocation mirror, with no call to the auth-service. Errors are \
         RFC 9457 problem details whose `code` is stable.",
        &["keys", "revocations"],
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::os::unix::fs::symlink;

    /// A fresh directory for `FILES_DIR`, under a hidden parent so that only the part below
    /// `FILES_DIR` counts when looking for hidden components.
    fn files_dir() -> (PathBuf, PathBuf) {
        let root = std::env::temp_dir().join(format!(
            "tokenauth-resolve-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let dir = root.join(".deploy").join("files");
        std::fs::create_dir_all(dir.join(".secret")).unwrap();
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("plain.txt"), "plain").unwrap();
        std::fs::write(dir.join(".hidden"), "hidden").unwrap();
        std::fs::write(dir.join(".secret/key.txt"), "key").unwrap();
        std::fs::write(dir.join("sub/ok.txt"), "ok").unwrap();
        std::fs::write(root.join("outside.txt"), "outside").unwrap();
        (root, dir.canonicalize().unwrap())
    }

    #[test]
    fn only_plain_files_below_the_directory_resolve() {
        let (root, dir) = files_dir();
        symlink("plain.txt", dir.join("alias.txt")).unwrap();
        symlink("sub/ok.txt", dir.join("nested.txt")).unwrap();
        symlink(".hidden", dir.join("linkhidden")).unwrap();
        symlink(".secret/key.txt", dir.join("linkkey")).unwrap();
        symlink(dir.join(".secret"), dir.join("linkdir")).unwrap();
        symlink(root.join("outside.txt"), dir.join("linkout")).unwrap();
        symlink("../files/.hidden", dir.join("roundabout")).unwrap();
        symlink("missing.txt", dir.join("dangling")).unwrap();

        for name in ["plain.txt", "alias.txt", "nested.txt"] {
            let path = resolve(&dir, name).unwrap_or_else(|| panic!("{name}"));
            assert!(path.starts_with(&dir));
        }
        for name in [
            ".hidden",
            "linkhidden",
            "linkkey",
            "linkdir",
            "linkout",
            "roundabout",
            "dangling",
            "sub",
            "missing.txt",
            "..",
            ".",
            "",
            "sub/ok.txt",
        ] {
            assert_eq!(resolve(&dir, name), None, "{name}");
        }
        let _ = std::fs::remove_dir_all(root);
    }
}
