//! A standard OAuth 2.0 client that is not ours (the `oauth2` crate) completes the password,
//! refresh, client-credentials and authorization-code (with PKCE) grants, introspects and
//! revokes; its tokens verify against the
//! published JWKS with jsonwebtoken configured here, independently of tokenauth's verifier.

use oauth2::basic::BasicClient;
use oauth2::{
    AccessToken, AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    IntrospectionUrl, PkceCodeChallenge, RedirectUrl, RefreshToken, ResourceOwnerPassword,
    ResourceOwnerUsername, RevocationUrl, Scope, StandardRevocableToken,
    TokenIntrospectionResponse, TokenResponse, TokenUrl,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both;
use tokenauth_testkit::TempDir;

use crate::helpers::{Backend, PASSWORD, TestApp, admin_spawn, admin_token};

/// The auth-service over HTTPS (`oauth2` refuses a revocation endpoint without TLS, as RFC 7009
/// asks), with a bootstrap admin; the test client trusts its certificate. Returns the service,
/// an admin token, the certificate and the directory holding it (removed when dropped).
async fn over_tls(b: Backend) -> (TestApp, String, reqwest::Certificate, TempDir) {
    let dir = TempDir::new();
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let mut spawn = admin_spawn(b)
        .env("TLS_CERT_FILE", cert_path.to_str().unwrap())
        .env("TLS_KEY_FILE", key_path.to_str().unwrap());
    spawn.wait_ready = false;
    let mut app = spawn.start().await;
    let root = reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap();
    app.client = reqwest::Client::builder()
        .add_root_certificate(root.clone())
        .build()
        .unwrap();
    app.wait_ready(std::time::Duration::from_secs(10)).await;
    let admin = admin_token(&app).await;
    (app, admin, root, dir)
}

/// The HTTP client handed to `oauth2`: reqwest, no redirects (RFC 6749 §10 asks for none).
fn http_client(
    root: reqwest::Certificate,
) -> impl Fn(
    oauth2::HttpRequest,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<oauth2::HttpResponse, reqwest::Error>>>,
> {
    let http = reqwest::Client::builder()
        .add_root_certificate(root)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    move |req: oauth2::HttpRequest| {
        let http = http.clone();
        Box::pin(async move {
            let res = http
                .request(req.method().clone(), req.uri().to_string())
                .headers(req.headers().clone())
                .body(req.body().clone())
                .send()
                .await?;
            let mut out = oauth2::http::Response::builder().status(res.status());
            for (name, value) in res.headers() {
                out = out.header(name, value);
            }
            Ok(out.body(res.bytes().await?.to_vec()).unwrap())
        })
    }
}

/// Verifies a token as an independent resource server would: jsonwebtoken with the published
/// JWKS, EdDSA only, the issuer and an audience.
async fn verify_independently(app: &TestApp, token: &str, issuer: &str, audience: &str) -> Value {
    let jwks: jsonwebtoken::jwk::JwkSet = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap()
        .claims
}

async fn a_standard_oauth2_client_completes_every_grant(b: Backend) {
    let (app, admin, root, _certs) = over_tls(b).await;
    assert!(app.base.starts_with("https://"));
    let meta: Value = app
        .client
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let issuer = meta["issuer"].as_str().unwrap().to_owned();
    let http = http_client(root);
    let url = |path: &str| app.url(path);

    // A public client: password, then refresh.
    app.register("alice").await;
    let public = BasicClient::new(ClientId::new("tokenauth".into()))
        .set_auth_type(AuthType::RequestBody)
        .set_token_uri(TokenUrl::new(url("/oauth/token")).unwrap())
        .set_revocation_url(RevocationUrl::new(url("/oauth/revoke")).unwrap());
    let tokens = public
        .exchange_password(
            &ResourceOwnerUsername::new("alice".into()),
            &ResourceOwnerPassword::new(PASSWORD.into()),
        )
        .request_async(&http)
        .await
        .unwrap();
    assert!(tokens.expires_in().is_some());
    assert_eq!(tokens.scopes(), Some(&vec![Scope::new("api".into())]));
    let claims = verify_independently(
        &app,
        tokens.access_token().secret(),
        &issuer,
        "resource-service",
    )
    .await;
    assert_eq!(claims["preferred_username"], "alice");
    let refreshed = public
        .exchange_refresh_token(tokens.refresh_token().unwrap())
        .request_async(&http)
        .await
        .unwrap();
    assert_ne!(
        refreshed.refresh_token().unwrap().secret(),
        tokens.refresh_token().unwrap().secret()
    );
    // A confidential client: client credentials by Basic, introspection, revocation.
    let res = app
        .post_auth(
            "/v1/clients",
            &admin,
            Some(&json!({"name": "interop", "scopes": ["read"]})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.unwrap();
    let service = BasicClient::new(ClientId::new(created["client_id"].as_str().unwrap().into()))
        .set_client_secret(ClientSecret::new(
            created["client_secret"].as_str().unwrap().into(),
        ))
        .set_token_uri(TokenUrl::new(url("/oauth/token")).unwrap())
        .set_introspection_url(IntrospectionUrl::new(url("/oauth/introspect")).unwrap())
        .set_revocation_url(RevocationUrl::new(url("/oauth/revoke")).unwrap());
    let machine = service
        .exchange_client_credentials()
        .add_scope(Scope::new("read".into()))
        .request_async(&http)
        .await
        .unwrap();
    assert!(machine.refresh_token().is_none());
    let claims = verify_independently(
        &app,
        machine.access_token().secret(),
        &issuer,
        "resource-service",
    )
    .await;
    assert_eq!(claims["sub"], created["client_id"]);

    let user_token = AccessToken::new(refreshed.access_token().secret().clone());
    let active = service
        .introspect(&user_token)
        .request_async(&http)
        .await
        .unwrap();
    assert!(active.active());
    assert_eq!(active.sub(), Some(claims_sub(&refreshed)).as_deref());
    // Revoking the user's refresh token (by the public client) ends the session: the access
    // token is no longer active.
    public
        .revoke_token(StandardRevocableToken::RefreshToken(RefreshToken::new(
            refreshed.refresh_token().unwrap().secret().clone(),
        )))
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    let inactive = service
        .introspect(&user_token)
        .request_async(&http)
        .await
        .unwrap();
    assert!(!inactive.active());
    // The first, spent refresh token is refused as the standard says (invalid_grant).
    let reused = public
        .exchange_refresh_token(tokens.refresh_token().unwrap())
        .request_async(&http)
        .await;
    match reused {
        Err(oauth2::RequestTokenError::ServerResponse(e)) => {
            assert_eq!(e.error().as_ref(), "invalid_grant");
        }
        other => panic!("reuse was not refused: {other:?}"),
    }

    // And the machine token, revoked by its own client.
    service
        .revoke_token(StandardRevocableToken::AccessToken(
            machine.access_token().clone(),
        ))
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    let inactive = service
        .introspect(machine.access_token())
        .request_async(&http)
        .await
        .unwrap();
    assert!(!inactive.active());
}
both!(a_standard_oauth2_client_completes_every_grant);

/// The `sub` of a token response's access token.
fn claims_sub(tokens: &oauth2::basic::BasicTokenResponse) -> String {
    crate::helpers::claims(tokens.access_token().secret())["sub"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The authorization code with PKCE as a standard client builds the request and redeems the
/// code; the login page in between is driven like a browser.
async fn a_standard_client_signs_in_with_a_code_and_pkce(b: Backend) {
    let (app, admin, root, _dir) = over_tls(b).await;
    let client_id = crate::authorize::public_app(&app, &admin).await;
    app.register("carol").await;
    let meta: Value = app
        .client
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let issuer = meta["issuer"].as_str().unwrap().to_owned();
    let client = BasicClient::new(ClientId::new(client_id.clone()))
        .set_auth_type(AuthType::RequestBody)
        .set_auth_uri(AuthUrl::new(app.url("/oauth/authorize")).unwrap())
        .set_token_uri(TokenUrl::new(app.url("/oauth/token")).unwrap())
        .set_redirect_uri(RedirectUrl::new(crate::authorize::APP_URI.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (authorize_url, state) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("api".into()))
        .set_pkce_challenge(challenge)
        .url();
    let mut browser = crate::authorize::Browser::trusting(&app, Some(root.clone()));
    let path = authorize_url
        .as_str()
        .strip_prefix(&app.url(""))
        .unwrap()
        .to_owned();
    let page = browser.get(&path).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let done = browser.sign_in(&page, "carol", PASSWORD).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let back: std::collections::HashMap<String, String> = done
        .location()
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(&back["state"], state.secret());
    assert_eq!(back["iss"], issuer);
    let tokens = client
        .exchange_code(AuthorizationCode::new(back["code"].clone()))
        .set_pkce_verifier(verifier)
        .request_async(&http_client(root))
        .await
        .unwrap();
    assert!(tokens.refresh_token().is_some());
    let claims = verify_independently(
        &app,
        tokens.access_token().secret(),
        &issuer,
        "resource-service",
    )
    .await;
    assert_eq!(claims["client_id"], client_id.as_str());
    assert_eq!(claims["preferred_username"], "carol");
}
both!(a_standard_client_signs_in_with_a_code_and_pkce);
