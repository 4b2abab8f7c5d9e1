//! Service clients and `POST /oauth/token`: the three grants, client authentication both ways,
//! and the RFC 6749 §5.2 refusals.

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::both;
use crate::helpers::{ADMIN, Backend, PASSWORD, TestApp, assert_problem, claims, with_admin};

/// Registers a client; returns `(client_id, client_secret)`.
pub(crate) async fn client(app: &TestApp, admin: &str, body: Value) -> (String, String) {
    let res = app.post_auth("/v1/clients", admin, Some(&body)).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    (
        body["client_id"].as_str().unwrap().to_owned(),
        body["client_secret"].as_str().unwrap().to_owned(),
    )
}

/// A form-encoded body.
pub(crate) fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

pub(crate) async fn token(
    app: &TestApp,
    pairs: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> Response {
    let mut req = app
        .client
        .post(app.url("/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(pairs));
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    req.send().await.unwrap()
}

/// Asserts an RFC 6749 §5.2 error; returns its body.
pub(crate) async fn assert_oauth_error(res: Response, status: u16, error: &str) -> Value {
    assert_eq!(res.status().as_u16(), status, "{error}");
    assert_eq!(res.headers()["cache-control"], "no-store", "{error}");
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "{error}"
    );
    if status == 401 {
        assert_eq!(
            res.headers()["www-authenticate"],
            "Basic realm=\"tokenauth\"",
            "{error}"
        );
    }
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].is_string(), "{body}");
    body
}

async fn admins_register_list_and_delete_clients(b: Backend) {
    let (app, admin) = with_admin(b).await;
    let res = app
        .post_auth(
            "/v1/clients",
            &admin,
            Some(&json!({"name": "billing", "scopes": ["read", "write", "read"], "audience": ["resource-service"]})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.unwrap();
    assert!(created["client_id"].as_str().unwrap().starts_with("svc-"));
    assert!(created["client_secret"].as_str().unwrap().len() >= 43);
    assert_eq!(created["scopes"], json!(["read", "write"]));

    let list: Value = app
        .get_auth("/v1/clients", &admin)
        .await
        .json()
        .await
        .unwrap();
    let listed = &list["clients"][0];
    assert_eq!(listed["client_id"], created["client_id"]);
    assert!(listed.get("client_secret").is_none());
    assert!(listed.get("secret_hash").is_none());
    assert!(
        !list
            .to_string()
            .contains(created["client_secret"].as_str().unwrap())
    );

    for bad in [
        json!({}),
        json!({"name": ""}),
        json!({"name": "x", "scopes": ["has space"]}),
        json!({"name": "x", "scopes": ["quo\"te"]}),
        json!({"name": "x", "audience": []}),
        json!({"name": "x", "scopes": "read"}),
    ] {
        let res = app.post_auth("/v1/clients", &admin, Some(&bad)).await;
        assert_problem(res, 422, "validation_failed").await;
    }
    let user = app.register("mallory").await;
    let token = user["access_token"].as_str().unwrap();
    let res = app
        .post_auth("/v1/clients", token, Some(&json!({"name": "x"})))
        .await;
    assert_problem(res, 403, "insufficient_role").await;
    assert_problem(
        app.get_auth("/v1/clients", token).await,
        403,
        "insufficient_role",
    )
    .await;

    let id = created["client_id"].as_str().unwrap();
    let secret = created["client_secret"].as_str().unwrap();
    // The client authenticates (and may be remembered) before it is deleted.
    let res = token_for(&app, id, secret).await;
    assert_eq!(res.status(), StatusCode::OK);
    let live: Value = res.json().await.unwrap();
    let live = live["access_token"].as_str().unwrap().to_owned();
    let (gateway, gateway_secret) = client(&app, &admin, json!({"name": "gateway"})).await;
    let creds = (gateway.as_str(), gateway_secret.as_str());
    assert_eq!(introspect(&app, creds, &live).await["active"], true);
    let delete = |id: String| {
        let app = &app;
        let admin = &admin;
        async move {
            app.client
                .delete(app.url(&format!("/v1/clients/{id}")))
                .bearer_auth(admin)
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(delete(id.to_owned()).await.status(), StatusCode::NO_CONTENT);
    assert_problem(delete(id.to_owned()).await, 404, "not_found").await;
    assert_problem(delete("nonsense".to_owned()).await, 404, "not_found").await;
    let list: Value = app
        .get_auth("/v1/clients", &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["clients"].as_array().unwrap().len(), 1);
    assert_eq!(list["clients"][0]["client_id"], gateway.as_str());
    // A deleted client gets no more tokens, cannot introspect, and its tokens are inactive.
    let res = token_for(&app, id, secret).await;
    assert_oauth_error(res, 401, "invalid_client").await;
    let res = form_post(
        &app,
        "/oauth/introspect",
        &[("token", &live)],
        Some((id, secret)),
    )
    .await;
    assert_oauth_error(res, 401, "invalid_client").await;
    assert_eq!(
        introspect(&app, creds, &live).await,
        json!({"active": false})
    );
    // A grant already under way when the deletion landed mints a token dated after it: the
    // revocation covers every token issued for a minute after the deletion, for its whole life.
    let db = app.store().await;
    let now = tokenauth_jwt::unix_now();
    let rows = db
        .run(move |c| tokenauth_store::revocations::live(c, now))
        .await
        .unwrap();
    let row = rows.iter().find(|r| r.subject == id).unwrap();
    let not_before = row.not_before.unwrap();
    assert!(not_before >= row.created_at + 60, "{row:?}");
    assert!(row.expires_at >= not_before + 900, "{row:?}");
}
both!(admins_register_list_and_delete_clients);

async fn token_for(app: &TestApp, id: &str, secret: &str) -> Response {
    token(
        app,
        &[("grant_type", "client_credentials")],
        Some((id, secret)),
    )
    .await
}

async fn a_client_gets_a_token_for_itself_by_basic_or_form(b: Backend) {
    let (app, admin) = with_admin(b).await;
    let (id, secret) = client(
        &app,
        &admin,
        json!({"name": "reports", "scopes": ["read", "write"], "audience": ["resource-service", "billing"]}),
    )
    .await;

    let res = token_for(&app, &id, &secret).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "read write");
    assert!(body.get("refresh_token").is_none());
    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(c["sub"], id.as_str());
    assert_eq!(c["client_id"], id.as_str());
    assert!(c.get("sid").is_none() || c["sid"].is_null());
    assert!(c.get("preferred_username").is_none() || c["preferred_username"].is_null());
    assert_eq!(c["aud"], json!(["resource-service", "billing"]));

    // By form fields, asking for less.
    let res = token(
        &app,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
            ("scope", "read"),
            ("audience", "billing"),
        ],
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["scope"], "read");
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["aud"],
        json!(["billing"])
    );

    // RFC 6749 §2.3.1: id and secret are form-encoded before Basic; `-` may come escaped.
    let escaped = id.replace('-', "%2D");
    let res = token_for(&app, &escaped, &secret).await;
    assert_eq!(res.status(), StatusCode::OK);

    // The token is not a user's: the account endpoints do not take it.
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(app.get_auth("/v1/me", access).await.status(), 401);
}
both!(a_client_gets_a_token_for_itself_by_basic_or_form);

async fn bad_token_requests_get_the_rfc_6749_errors(b: Backend) {
    let (app, admin) = with_admin(b).await;
    let (id, secret) = client(&app, &admin, json!({"name": "svc", "scopes": ["read"]})).await;
    let cc = ("grant_type", "client_credentials");

    // Client authentication.
    assert_oauth_error(token_for(&app, &id, "wrong").await, 401, "invalid_client").await;
    assert_oauth_error(
        token_for(&app, "svc-unknown", &secret).await,
        401,
        "invalid_client",
    )
    .await;
    assert_oauth_error(token(&app, &[cc], None).await, 401, "invalid_client").await;
    assert_oauth_error(
        token(&app, &[cc, ("client_id", &id)], None).await,
        401,
        "invalid_client",
    )
    .await;
    let res = token(
        &app,
        &[cc, ("client_id", &id), ("client_secret", &secret)],
        Some((&id, &secret)),
    )
    .await;
    assert_oauth_error(res, 400, "invalid_request").await;
    for header in ["Bearer abc", "Basic !!!", "Basic bm9jb2xvbg=="] {
        let res = app
            .client
            .post(app.url("/oauth/token"))
            .header("authorization", header)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[cc]))
            .send()
            .await
            .unwrap();
        assert_oauth_error(res, 401, "invalid_client").await;
    }

    // Parameters.
    let res = token(&app, &[cc, cc], Some((&id, &secret))).await;
    assert_oauth_error(res, 400, "invalid_request").await;
    let res = token(&app, &[("scope", "read")], Some((&id, &secret))).await;
    assert_oauth_error(res, 400, "invalid_request").await;
    let res = token(&app, &[("grant_type", "implicit")], Some((&id, &secret))).await;
    assert_oauth_error(res, 400, "unsupported_grant_type").await;
    // A grant type served, but not one this client was registered for.
    let res = token(
        &app,
        &[("grant_type", "authorization_code")],
        Some((&id, &secret)),
    )
    .await;
    assert_oauth_error(res, 400, "unauthorized_client").await;
    let res = token(&app, &[cc, ("scope", "read admin")], Some((&id, &secret))).await;
    assert_oauth_error(res, 400, "invalid_scope").await;
    let res = token(&app, &[cc, ("audience", "elsewhere")], Some((&id, &secret))).await;
    assert_oauth_error(res, 400, "invalid_scope").await;
    let res = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(&id, Some(&secret))
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_oauth_error(res, 400, "invalid_request").await;
    let res = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(&id, Some(&secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&x={}",
            "a".repeat(70_000)
        ))
        .send()
        .await
        .unwrap();
    assert_oauth_error(res, 400, "invalid_request").await;
    let res = app
        .client
        .get(app.url("/oauth/token"))
        .send()
        .await
        .unwrap();
    assert_problem(res, 405, "method_not_allowed").await;

    // A service client gets neither user nor refresh tokens.
    let res = token(
        &app,
        &[
            ("grant_type", "password"),
            ("username", ADMIN),
            ("password", PASSWORD),
        ],
        Some((&id, &secret)),
    )
    .await;
    assert_oauth_error(res, 400, "unauthorized_client").await;
}
both!(bad_token_requests_get_the_rfc_6749_errors);

async fn guessing_a_client_secret_is_limited_like_a_password(b: Backend) {
    let (app, admin) = with_admin(b).await;
    let (id, secret) = client(&app, &admin, json!({"name": "svc"})).await;
    let guesses: Vec<_> = (0..20)
        .map(|n| {
            let app = &app;
            let id = id.clone();
            async move {
                token_for(app, &id, &format!("guess-{n}"))
                    .await
                    .status()
                    .as_u16()
            }
        })
        .collect();
    let statuses = futures_util::future::join_all(guesses).await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    assert!(checked <= 5, "{checked} guesses were checked: {statuses:?}");
    assert!(
        statuses.iter().all(|s| matches!(s, 401 | 429)),
        "{statuses:?}"
    );
    // Once limited, even the right secret waits.
    let res = token_for(&app, &id, &secret).await;
    assert!(res.headers().contains_key("retry-after"));
    assert_oauth_error(res, 429, "slow_down").await;
}
both!(guessing_a_client_secret_is_limited_like_a_password);

/// Client ids are not secret: guesses from one address must not lock the client out of its
/// tokens from another. And an id no client can have (a NUL byte) is just unknown.
async fn guesses_lock_out_their_address_not_the_client(b: Backend) {
    let app = crate::helpers::admin_spawn(b)
        .env("TRUSTED_PROXIES", "127.0.0.1")
        .start()
        .await;
    let admin = crate::helpers::admin_token(&app).await;
    let (id, secret) = client(&app, &admin, json!({"name": "svc"})).await;
    let from = |ip: &'static str, id: String, secret: String| {
        let app = &app;
        async move {
            app.client
                .post(app.url("/oauth/token"))
                .header("content-type", "application/x-www-form-urlencoded")
                .header("x-forwarded-for", ip)
                .basic_auth(id, Some(secret))
                .body("grant_type=client_credentials")
                .send()
                .await
                .unwrap()
        }
    };
    for n in 0..8 {
        let status = from("10.1.1.1", id.clone(), format!("guess-{n}"))
            .await
            .status();
        assert!(matches!(status.as_u16(), 401 | 429), "{status}");
    }
    let res = from("10.1.1.1", id.clone(), secret.clone()).await;
    assert_oauth_error(res, 429, "slow_down").await;
    assert_eq!(
        from("10.2.2.2", id.clone(), secret.clone()).await.status(),
        StatusCode::OK
    );
    for bad in ["svc-\0", "svc-%00", "svc-\u{1}x"] {
        let res = form_post(
            &app,
            "/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", bad),
                ("client_secret", "x"),
            ],
            None,
        )
        .await;
        assert_oauth_error(res, 401, "invalid_client").await;
    }
}
both!(guesses_lock_out_their_address_not_the_client);

async fn the_password_and_refresh_grants_work_like_the_json_api(b: Backend) {
    let (app, _admin) = with_admin(b).await;
    app.register("alice").await;
    let res = token(
        &app,
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
        ],
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let first: Value = res.json().await.unwrap();
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(
        app.get_auth("/v1/me", access).await.status(),
        StatusCode::OK
    );
    assert!(claims(access)["sid"].is_string());

    let refresh = first["refresh_token"].as_str().unwrap();
    let res = token(
        &app,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let second: Value = res.json().await.unwrap();
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    // The spent token again is reuse: invalid_grant, and the session is over.
    let res = token(
        &app,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        None,
    )
    .await;
    assert_oauth_error(res, 400, "invalid_grant").await;
    let next = second["refresh_token"].as_str().unwrap();
    let res = token(
        &app,
        &[("grant_type", "refresh_token"), ("refresh_token", next)],
        None,
    )
    .await;
    assert_oauth_error(res, 400, "invalid_grant").await;

    // Wrong password, missing fields, a scope user tokens do not carry.
    let res = token(
        &app,
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "wrong password"),
        ],
        None,
    )
    .await;
    assert_oauth_error(res, 400, "invalid_grant").await;
    let res = token(
        &app,
        &[("grant_type", "password"), ("username", "alice")],
        None,
    )
    .await;
    assert_oauth_error(res, 400, "invalid_request").await;
    let res = token(
        &app,
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
            ("scope", "admin"),
        ],
        None,
    )
    .await;
    assert_oauth_error(res, 400, "invalid_scope").await;
    let res = token(&app, &[("grant_type", "refresh_token")], None).await;
    assert_oauth_error(res, 400, "invalid_request").await;
}
both!(the_password_and_refresh_grants_work_like_the_json_api);

async fn form_post(
    app: &TestApp,
    path: &str,
    pairs: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> Response {
    let mut req = app
        .client
        .post(app.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(pairs));
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    req.send().await.unwrap()
}

pub(crate) async fn introspect(app: &TestApp, creds: (&str, &str), token: &str) -> Value {
    let res = form_post(app, "/oauth/introspect", &[("token", token)], Some(creds)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    res.json().await.unwrap()
}

async fn introspection_says_which_tokens_are_active(b: Backend) {
    let (app, admin) = with_admin(b).await;
    let (id, secret) = client(
        &app,
        &admin,
        json!({"name": "gateway", "scopes": ["read"], "audience": ["billing"]}),
    )
    .await;
    let creds = (id.as_str(), secret.as_str());
    let user = app.register("alice").await;
    let access = user["access_token"].as_str().unwrap();

    let active = introspect(&app, creds, access).await;
    assert_eq!(active["active"], true);
    assert_eq!(active["sub"], user["user"]["id"]);
    assert_eq!(active["username"], "alice");
    assert_eq!(active["token_type"], "Bearer");
    assert!(active["exp"].is_i64() && active["jti"].is_string());
    // A client's own token, of an audience other than the service's default.
    let own: Value = token_for(&app, &id, &secret).await.json().await.unwrap();
    let own = own["access_token"].as_str().unwrap();
    let active = introspect(&app, creds, own).await;
    assert_eq!(active["active"], true);
    assert_eq!(active["aud"], json!(["billing"]));

    // Inactive: malformed, a refresh token, another issuer's key, revoked, a disabled user.
    let refresh = user["refresh_token"].as_str().unwrap();
    // A signature changed in the middle (not in the last character's padding bits).
    let at = access.len() - 10;
    let flipped = if &access[at..=at] == "A" { "B" } else { "A" };
    let forged = format!("{}{flipped}{}", &access[..at], &access[at + 1..]);
    for token in ["nonsense", refresh, &forged, "a.b.c"] {
        assert_eq!(
            introspect(&app, creds, token).await,
            json!({"active": false}),
            "{token}"
        );
    }
    assert_eq!(
        app.post_auth("/v1/logout", access, None).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        introspect(&app, creds, access).await,
        json!({"active": false})
    );

    // Client authentication is required, and a wrong secret is refused.
    let res = form_post(&app, "/oauth/introspect", &[("token", own)], None).await;
    assert_oauth_error(res, 401, "invalid_client").await;
    let res = form_post(
        &app,
        "/oauth/introspect",
        &[("token", own)],
        Some((&id, "wrong")),
    )
    .await;
    assert_oauth_error(res, 401, "invalid_client").await;
    let res = form_post(&app, "/oauth/introspect", &[], Some(creds)).await;
    assert_oauth_error(res, 400, "invalid_request").await;
}
both!(introspection_says_which_tokens_are_active);

/// Introspection and client authentication answer from the service's copy of the revocations
/// only while it is current; otherwise from the database, which knows every logout and deletion.
async fn without_a_current_revocation_copy_the_database_answers(b: Backend) {
    let (app, admin) = with_admin(b).await;
    let (id, secret) = client(&app, &admin, json!({"name": "gateway"})).await;
    let creds = (id.as_str(), secret.as_str());
    let (doomed, doomed_secret) = client(&app, &admin, json!({"name": "doomed"})).await;
    let res = token_for(&app, &doomed, &doomed_secret).await;
    assert_eq!(res.status(), StatusCode::OK);
    let theirs: Value = res.json().await.unwrap();
    let theirs = theirs["access_token"].as_str().unwrap();
    app.register("carol").await;
    let first = app.login_ok("carol").await;
    let second = app.login_ok("carol").await;
    let (first, second) = (
        first["access_token"].as_str().unwrap(),
        second["access_token"].as_str().unwrap(),
    );
    for token in [theirs, first, second] {
        assert_eq!(introspect(&app, creds, token).await["active"], true);
    }

    let copy = app.revocations.as_ref().expect("in-process revocations");
    copy.mark_stale();
    assert_eq!(
        app.post_auth("/v1/logout", first, None).await.status(),
        StatusCode::NO_CONTENT
    );
    let res = app
        .client
        .delete(app.url(&format!("/v1/clients/{doomed}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    // Stale, the database answers; current again, the copy (which got both while stale).
    for current in [false, true] {
        if current {
            copy.mark_current();
        }
        for gone in [first, theirs] {
            let answer = introspect(&app, creds, gone).await;
            assert_eq!(answer, json!({"active": false}), "current: {current}");
        }
        assert_eq!(introspect(&app, creds, second).await["active"], true);
        let res = token_for(&app, &doomed, &doomed_secret).await;
        assert_oauth_error(res, 401, "invalid_client").await;
    }
}
both!(without_a_current_revocation_copy_the_database_answers);

async fn revocation_ends_access_and_refresh_tokens(b: Backend) {
    let (app, admin) = with_admin(b).await;
    let user = app.register("bob").await;
    let access = user["access_token"].as_str().unwrap();
    // An access token alone: that token ends, the session goes on.
    let res = form_post(
        &app,
        "/oauth/revoke",
        &[("token", access), ("token_type_hint", "refresh_token")],
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_problem(app.get_auth("/v1/me", access).await, 401, "token_revoked").await;
    let refresh = user["refresh_token"].as_str().unwrap();
    let renewed: Value = app.refresh(refresh).await.json().await.unwrap();
    let access = renewed["access_token"].as_str().unwrap();
    assert_eq!(
        app.get_auth("/v1/me", access).await.status(),
        StatusCode::OK
    );
    // A refresh token: its whole session ends.
    let refresh = renewed["refresh_token"].as_str().unwrap();
    let res = form_post(&app, "/oauth/revoke", &[("token", refresh)], None).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_problem(app.get_auth("/v1/me", access).await, 401, "token_revoked").await;
    assert_problem(app.refresh(refresh).await, 401, "invalid_refresh_token").await;
    // Unknown, malformed or already revoked: 200 all the same.
    for token in ["unknown", refresh, "a.b.c"] {
        let res = form_post(
            &app,
            "/oauth/revoke",
            &[("token", token), ("token_type_hint", "whatever")],
            None,
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK, "{token}");
    }
    // A client may revoke only its own tokens; a wrong secret is refused.
    let (id, secret) = client(&app, &admin, json!({"name": "one"})).await;
    let (other_id, other_secret) = client(&app, &admin, json!({"name": "two"})).await;
    let theirs: Value = token_for(&app, &other_id, &other_secret)
        .await
        .json()
        .await
        .unwrap();
    let theirs = theirs["access_token"].as_str().unwrap();
    let res = form_post(
        &app,
        "/oauth/revoke",
        &[("token", theirs)],
        Some((&id, &secret)),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        introspect(&app, (&id, &secret), theirs).await["active"],
        true
    );
    let res = form_post(
        &app,
        "/oauth/revoke",
        &[("token", theirs)],
        Some((&other_id, &other_secret)),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        introspect(&app, (&id, &secret), theirs).await["active"],
        false
    );
    let res = form_post(
        &app,
        "/oauth/revoke",
        &[("token", theirs)],
        Some((&id, "wrong")),
    )
    .await;
    assert_oauth_error(res, 401, "invalid_client").await;
    // Bad requests are still bad.
    let res = form_post(&app, "/oauth/revoke", &[], None).await;
    assert_oauth_error(res, 400, "invalid_request").await;
    let res = form_post(
        &app,
        "/oauth/revoke",
        &[("token", "x"), ("token", "y")],
        None,
    )
    .await;
    assert_oauth_error(res, 400, "invalid_request").await;
}
both!(revocation_ends_access_and_refresh_tokens);

async fn the_metadata_names_exactly_what_is_served(b: Backend) {
    let (app, admin) = with_admin(b).await;
    let res = app
        .client
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let meta: Value = res.json().await.unwrap();
    let issuer = meta["issuer"].as_str().unwrap();
    assert_eq!(meta["token_endpoint"], format!("{issuer}/oauth/token"));
    assert_eq!(
        meta["grant_types_supported"],
        json!([
            "authorization_code",
            "password",
            "refresh_token",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:device_code",
            "urn:ietf:params:oauth:grant-type:token-exchange"
        ])
    );
    assert_eq!(
        meta["device_authorization_endpoint"],
        format!("{issuer}/oauth/device_authorization")
    );
    assert_eq!(
        meta["authorization_endpoint"],
        format!("{issuer}/oauth/authorize")
    );
    assert_eq!(meta["response_types_supported"], json!(["code"]));
    assert_eq!(meta["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(meta["authorization_response_iss_parameter_supported"], true);
    assert_eq!(
        meta["access_token_signing_alg_values_supported"],
        json!(["EdDSA"])
    );
    // Every endpoint it names answers here (the test service's issuer is not its address, so
    // only the path is followed).
    let path_of = |url: &str| url.strip_prefix(issuer).unwrap().to_owned();
    let jwks = app
        .client
        .get(app.url(&path_of(meta["jwks_uri"].as_str().unwrap())))
        .send()
        .await
        .unwrap();
    assert_eq!(jwks.status(), StatusCode::OK);
    let (id, secret) = client(&app, &admin, json!({"name": "m"})).await;
    for (field, pairs) in [
        ("token_endpoint", vec![("grant_type", "client_credentials")]),
        ("introspection_endpoint", vec![("token", "x")]),
        ("revocation_endpoint", vec![("token", "x")]),
    ] {
        let path = path_of(meta[field].as_str().unwrap());
        let res = form_post(&app, &path, &pairs, Some((&id, &secret))).await;
        assert_eq!(res.status(), StatusCode::OK, "{field}");
    }
}
both!(the_metadata_names_exactly_what_is_served);
