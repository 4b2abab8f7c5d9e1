//! tokenauth-client against the real auth-service and resource-service, started in this process
//! and sharing a revocation mirror as the all-in-one binary does. Requests are counted from the
//! services' own request log.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::future::join_all;
use tokenauth_client::{AuthClient, Error, Session, TokenSource, send};
use tokenauth_testkit::auth::{Backend, HS_SECRET, PASSWORD, Spawn};
use tokenauth_testkit::logs::{capture, log_lines};
use tokenauth_testkit::{TempDir, wait_ready};

struct Stack {
    auth: String,
    resource: String,
    _dir: TempDir,
}

/// Both services, HS256 (so the test can mint a token of its own), a bootstrap admin, and
/// access tokens that live `access_ttl` seconds.
async fn stack(access_ttl: u64) -> Stack {
    capture("info");
    let dir = TempDir::new();
    let ttl = access_ttl.to_string();
    let auth = Spawn::new(Backend::Sqlite)
        .env("JWT_ALGORITHM", "HS256")
        .env("JWT_SECRET", HS_SECRET)
        .env("ACCESS_TOKEN_TTL_SECS", &ttl)
        .env("BOOTSTRAP_ADMIN_USERNAME", "root")
        .env("BOOTSTRAP_ADMIN_PASSWORD", PASSWORD)
        .build(&format!("sqlite://{}/auth.db", dir.display()), dir.path())
        .await;
    let mirror = auth.revocation_mirror();
    let auth_url = auth.base_url();
    tokio::spawn(auth.run_until_stopped());
    let vars: std::collections::HashMap<String, String> = [
        ("BIND_ADDR", "127.0.0.1:0".to_owned()),
        ("JWT_ALGORITHM", "HS256".to_owned()),
        ("JWT_SECRET", HS_SECRET.to_owned()),
        ("FILES_DIR", dir.join("files").display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let config = resource_service::config::ResourceConfig::from_source(&vars).unwrap();
    let resource = resource_service::Application::build(config, mirror)
        .await
        .unwrap();
    let resource_url = resource.base_url();
    tokio::spawn(resource.run_until_stopped());
    let http = reqwest::Client::new();
    wait_ready(&http, &auth_url, Duration::from_secs(10)).await;
    wait_ready(&http, &resource_url, Duration::from_secs(10)).await;
    Stack {
        auth: auth_url,
        resource: resource_url,
        _dir: dir,
    }
}

/// Requests the services answered on `path`, from their request log.
fn answered(path: &str) -> usize {
    log_lines()
        .iter()
        .filter(|l| l["fields"]["path"] == path)
        .count()
}

async fn admin(auth: &AuthClient) -> Session {
    for _ in 0..500 {
        if let Ok(session) = auth.login("root", PASSWORD).await {
            return session;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no bootstrap admin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_sessions_and_typed_errors() {
    let s = stack(900).await;
    let auth = AuthClient::new(&s.auth);
    let http = reqwest::Client::new();
    let secret = format!("{}/v1/secret", s.resource);

    let session = auth.register("alice", PASSWORD).await.unwrap();
    let res = send(&session, || http.get(&secret)).await.unwrap();
    assert_eq!(res.status(), 200);
    let again = auth.password_grant("alice", PASSWORD).await.unwrap();
    assert_ne!(
        again.access_token().await.unwrap(),
        session.access_token().await.unwrap()
    );

    // Errors carry the documented code, from either API.
    let taken = auth.register("alice", PASSWORD).await.unwrap_err();
    assert_eq!(taken.code(), Some("username_taken"));
    assert!(matches!(taken, Error::Problem { status, .. } if status == 409));
    let wrong = auth.login("alice", "wrong password").await.unwrap_err();
    assert_eq!(wrong.code(), Some("invalid_credentials"));
    let wrong = auth
        .password_grant("alice", "wrong password")
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Some("invalid_grant"));
    assert!(matches!(wrong, Error::OAuth { .. }));

    // Logging out ends the session at the resource service too; `send` says why.
    let token = session.access_token().await.unwrap();
    session.logout().await.unwrap();
    let refused = send(&session, || http.get(&secret)).await.unwrap_err();
    assert_eq!(refused.code(), Some("token_revoked"));
    let res = http.get(&secret).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_callers_share_one_refresh() {
    // 31 s tokens are renewed 30 s early: after a second every caller needs a fresh one.
    let s = stack(31).await;
    let auth = AuthClient::new(&s.auth);
    let session = auth.register("bob", PASSWORD).await.unwrap();
    let first = session.access_token().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let before = answered("/oauth/token");
    let tokens = join_all((0..100).map(|_| {
        let session = session.clone();
        async move { session.access_token().await.unwrap() }
    }))
    .await;
    assert_eq!(answered("/oauth/token") - before, 1);
    assert!(tokens.iter().all(|t| *t == tokens[0] && *t != first));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_tokens_are_cached_and_fetched_once() {
    let s = stack(900).await;
    let auth = AuthClient::new(&s.auth);
    let root = admin(&auth).await;
    let http = reqwest::Client::new();
    let res = http
        .post(format!("{}/v1/clients", s.auth))
        .bearer_auth(root.access_token().await.unwrap())
        .json(&serde_json::json!({"name": "reports", "scopes": ["read"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let client: serde_json::Value = res.json().await.unwrap();
    let service = auth.service_token(
        client["client_id"].as_str().unwrap(),
        client["client_secret"].as_str().unwrap(),
    );
    let before = answered("/oauth/token");
    let tokens = join_all((0..100).map(|_| {
        let service = service.clone();
        async move { service.access_token().await.unwrap() }
    }))
    .await;
    assert!(tokens.iter().all(|t| *t == tokens[0]));
    let secret = format!("{}/v1/secret", s.resource);
    for _ in 0..10 {
        let res = send(&service, || http.get(&secret)).await.unwrap();
        assert_eq!(res.status(), 200);
    }
    assert_eq!(answered("/oauth/token") - before, 1);

    let wrong = auth.service_token(client["client_id"].as_str().unwrap(), "wrong");
    let refused = wrong.access_token().await.unwrap_err();
    assert_eq!(refused.code(), Some("invalid_client"));
}

/// A token source whose first token has expired, as a clock that runs late would hand out.
struct Stale {
    expired: String,
    fresh: Session,
    renewed: AtomicUsize,
}

impl TokenSource for Stale {
    async fn access_token(&self) -> Result<String, Error> {
        Ok(self.expired.clone())
    }

    async fn renew(&self, stale: &str) -> Result<String, Error> {
        assert_eq!(stale, self.expired);
        self.renewed.fetch_add(1, Ordering::SeqCst);
        self.fresh.access_token().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_renewed_and_the_request_sent_once_more() {
    let s = stack(900).await;
    let auth = AuthClient::new(&s.auth);
    let fresh = auth.register("carol", PASSWORD).await.unwrap();
    // An HS256 token for the same service, expired an hour ago.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let key = tokenauth_jwt::SigningKey::hs256(HS_SECRET.as_bytes()).unwrap();
    let claims = tokenauth_jwt::AccessClaims {
        iss: "http://127.0.0.1:8080".into(),
        sub: "someone".into(),
        aud: vec!["resource-service".into()],
        exp: now - 3600,
        iat: now - 4000,
        nbf: now - 4000,
        jti: "expired-jti".into(),
        client_id: "tokenauth".into(),
        scope: "api".into(),
        roles: vec!["user".into()],
        sid: None,
        preferred_username: None,
        act: None,
    };
    let source = Stale {
        expired: key.sign(&claims).unwrap(),
        fresh,
        renewed: AtomicUsize::new(0),
    };
    let http = reqwest::Client::new();
    let secret = format!("{}/v1/secret", s.resource);
    let res = send(&source, || http.get(&secret)).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(source.renewed.load(Ordering::SeqCst), 1);
}

/// A service exchanges the token a user called it with for one addressed to the next service:
/// the resource-service sees the user, acted for by the service, and refuses the exchanged
/// token once the user logs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_calls_on_with_an_exchanged_token() {
    let s = stack(900).await;
    let auth = AuthClient::new(&s.auth);
    let root = admin(&auth).await;
    let http = reqwest::Client::new();
    let res = http
        .post(format!("{}/v1/clients", s.auth))
        .bearer_auth(root.access_token().await.unwrap())
        .json(&serde_json::json!({
            "name": "orders",
            "grant_types": ["urn:ietf:params:oauth:grant-type:token-exchange"],
            "scopes": ["api"],
            "audience": ["resource-service"],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let client: serde_json::Value = res.json().await.unwrap();
    let client_id = client["client_id"].as_str().unwrap();
    let service = auth.service_token(client_id, client["client_secret"].as_str().unwrap());

    let user = auth.register("dana", PASSWORD).await.unwrap();
    let user_token = user.access_token().await.unwrap();
    let exchanged = service
        .exchange(&user_token, "resource-service")
        .await
        .unwrap();
    assert_eq!(
        exchanged.issued_token_type.as_deref(),
        Some("urn:ietf:params:oauth:token-type:access_token")
    );
    assert!(exchanged.refresh_token.is_none());
    let whoami = format!("{}/v1/whoami", s.resource);
    let res = http
        .get(&whoami)
        .bearer_auth(&exchanged.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let me: serde_json::Value = res.json().await.unwrap();
    assert_eq!(me["username"], "dana");
    assert_eq!(me["client_id"], client_id);

    // Not for an audience the client was not registered for.
    let refused = service.exchange(&user_token, "billing").await.unwrap_err();
    assert_eq!(refused.code(), Some("invalid_target"));

    user.logout().await.unwrap();
    let res = http
        .get(&whoami)
        .bearer_auth(&exchanged.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["code"], "token_revoked");
}

/// Approves or denies a device sign-in as a person would on the `/device` page.
async fn decide_on_page(auth: &str, user_code: &str, action: &str, username: &str) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // As the person who opens `verification_uri_complete`: the page names the client asking,
    // and its form carries the CSRF token (bound to the cookie) and the code it was shown for.
    let page = http
        .get(format!("{auth}/device?user_code={user_code}"))
        .send()
        .await
        .unwrap();
    let csrf = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("tokenauth_csrf="))
        .map(|c| c.split(';').next().unwrap().to_owned())
        .unwrap();
    let html = page.text().await.unwrap();
    assert!(html.contains("is asking to sign in"), "{html}");
    let hidden = |name: &str| {
        let marker = format!("name=\"{name}\" value=\"");
        let at = html.find(&marker).unwrap() + marker.len();
        html[at..at + html[at..].find('"').unwrap()].to_owned()
    };
    let (csrf_token, shown_code) = (hidden("csrf_token"), hidden("shown_code"));
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("csrf_token", csrf_token.as_str()),
            ("shown_code", shown_code.as_str()),
            ("user_code", user_code),
            ("action", action),
            ("username", username),
            ("password", PASSWORD),
        ])
        .finish();
    let res = http
        .post(format!("{auth}/device"))
        .header("cookie", format!("tokenauth_csrf={csrf}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
}

/// A CLI signs in by device code while the user approves in a browser; a denied sign-in
/// comes back as `access_denied`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cli_signs_in_by_device_code() {
    let s = stack(900).await;
    let auth = AuthClient::new(&s.auth);
    let root = admin(&auth).await;
    let http = reqwest::Client::new();
    let res = http
        .post(format!("{}/v1/clients", s.auth))
        .bearer_auth(root.access_token().await.unwrap())
        .json(&serde_json::json!({
            "name": "cli",
            "public": true,
            "grant_types": ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let client: serde_json::Value = res.json().await.unwrap();
    let client_id = client["client_id"].as_str().unwrap();
    auth.register("erin", PASSWORD).await.unwrap();

    let pending = auth.device_sign_in(client_id).await.unwrap();
    assert!(pending.verification_uri().ends_with("/device"));
    assert_eq!(pending.user_code().len(), 9);
    let waiting = tokio::spawn({
        let pending = pending.clone();
        async move { pending.wait().await }
    });
    decide_on_page(&s.auth, pending.user_code(), "approve", "erin").await;
    let session = waiting.await.unwrap().unwrap();
    let res = send(&session, || http.get(format!("{}/v1/whoami", s.resource)))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let me: serde_json::Value = res.json().await.unwrap();
    assert_eq!(me["username"], "erin");
    assert_eq!(me["client_id"], client_id);

    let denied = auth.device_sign_in(client_id).await.unwrap();
    decide_on_page(&s.auth, denied.user_code(), "deny", "erin").await;
    let refused = denied.wait().await.unwrap_err();
    assert_eq!(refused.code(), Some("access_denied"));
}
