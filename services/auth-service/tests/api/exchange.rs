//! Clients for every kind of app (grant types, redirect URIs, public clients) and token
//! exchange (RFC 8693): a service trading a user's token for a narrower one addressed to the
//! service it calls next, refused every way docs/oauth.md lists, and dying with the user's
//! sessions.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both;
use crate::helpers::{Backend, TestApp, assert_problem, claims, unique, with_admin};
use crate::oauth::{assert_oauth_error, client, introspect, token};

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";

async fn create_client(app: &TestApp, admin: &str, body: Value) -> reqwest::Response {
    app.post_auth("/v1/clients", admin, Some(&body)).await
}

async fn clients_are_registered_for_grant_types_redirect_uris_and_as_public(b: Backend) {
    let (app, admin) = with_admin(b).await;
    // A service client by default: client_credentials, a secret, no redirect URIs.
    let res = create_client(&app, &admin, json!({"name": "svc"})).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["grant_types"], json!(["client_credentials"]));
    assert_eq!(body["redirect_uris"], json!([]));
    assert_eq!(body["public"], false);
    assert!(body["client_secret"].is_string());

    // A browser and native app: public, no secret ever made.
    let uris = json!([
        "https://app.example.com/callback",
        "http://127.0.0.1/callback",
        "http://[::1]:8400/cb",
        "com.example.app:/oauth2redirect",
    ]);
    let res = create_client(
        &app,
        &admin,
        json!({"name": "spa", "public": true,
               "grant_types": ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"],
               "redirect_uris": uris}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let spa: Value = res.json().await.unwrap();
    assert_eq!(spa["public"], true);
    assert!(spa.get("client_secret").is_none(), "{spa}");
    assert_eq!(spa["redirect_uris"], uris);
    assert_eq!(
        spa["grant_types"],
        json!([
            "authorization_code",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:device_code"
        ])
    );
    let listed: Value = app
        .get_auth("/v1/clients", &admin)
        .await
        .json()
        .await
        .unwrap();
    let found = listed["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["client_id"] == spa["client_id"])
        .unwrap();
    assert_eq!(found["public"], true);
    assert_eq!(found["redirect_uris"], uris);

    // A public client cannot authenticate: no secret matches, not even an empty one.
    let spa_id = spa["client_id"].as_str().unwrap();
    for secret in ["", "anything"] {
        let res = token(
            &app,
            &[("grant_type", "client_credentials")],
            Some((spa_id, secret)),
        )
        .await;
        assert_oauth_error(res, 401, "invalid_client").await;
    }

    let code_client = |uris: Value| json!({"name": "x", "public": true, "grant_types": ["authorization_code"], "redirect_uris": uris});
    let refused = [
        (
            "grant_types",
            json!({"name": "x", "grant_types": ["password"]}),
        ),
        ("grant_types", json!({"name": "x", "grant_types": []})),
        (
            "grant_types",
            json!({"name": "x", "grant_types": "client_credentials"}),
        ),
        ("grant_types", json!({"name": "x", "public": true})),
        (
            "grant_types",
            json!({"name": "x", "public": true, "grant_types": [EXCHANGE]}),
        ),
        ("public", json!({"name": "x", "public": "yes"})),
        (
            "redirect_uris",
            json!({"name": "x", "public": true, "grant_types": ["authorization_code"]}),
        ),
        (
            "redirect_uris",
            json!({"name": "x", "redirect_uris": ["https://app.example.com/cb"]}),
        ),
        (
            "redirect_uris",
            code_client(json!(["http://app.example.com/cb"])),
        ),
        ("redirect_uris", code_client(json!(["http://localhost/cb"]))),
        (
            "redirect_uris",
            code_client(json!(["https://app.example.com/cb#frag"])),
        ),
        ("redirect_uris", code_client(json!(["/relative/cb"]))),
        (
            "redirect_uris",
            code_client(json!(["https://user:pw@app.example.com/cb"])),
        ),
        ("redirect_uris", code_client(json!(["myapp:/cb"]))),
        ("redirect_uris", code_client(json!(["javascript:alert(1)"]))),
        (
            "redirect_uris",
            code_client(json!(["https://app.example.com/x http://evil.example/cb"])),
        ),
        (
            "redirect_uris",
            code_client(json!(["https://app.example.com/x\thttp://evil.example/cb"])),
        ),
        (
            "redirect_uris",
            code_client(json!([
                "https://app.example.com/x\u{3000}javascript:alert(1)"
            ])),
        ),
        ("redirect_uris", code_client(json!(["http://127.0.0.2/cb"]))),
        ("redirect_uris", code_client(json!(["http://127.1/cb"]))),
        (
            "redirect_uris",
            code_client(json!(["http://2130706433/cb"])),
        ),
        (
            "redirect_uris",
            code_client(json!(["http://127.0.0.1./cb"])),
        ),
        (
            "redirect_uris",
            code_client(json!(["http://[0:0:0:0:0:0:0:1]/cb"])),
        ),
        (
            "redirect_uris",
            code_client(json!(["https://@app.example.com/cb"])),
        ),
        ("redirect_uris", code_client(json!(["http:/127.0.0.1/cb"]))),
        (
            "redirect_uris",
            code_client(json!(["https:app.example.com/cb"])),
        ),
        (
            "redirect_uris",
            code_client(json!(["https://app.example.com:0/cb"])),
        ),
        (
            "redirect_uris",
            code_client(json!(["http://127.0.0.1:0/cb"])),
        ),
        (
            "redirect_uris",
            code_client(json!(["https://app.exa\u{200b}mple.com/cb"])),
        ),
        (
            "redirect_uris",
            code_client(json!(["https://app.example.com/c\u{202e}b"])),
        ),
        (
            "redirect_uris",
            code_client(json!(["https://ex\u{e4}mple.example/cb"])),
        ),
        (
            "redirect_uris",
            code_client(json!(["https://app.example.com:443/cb"])),
        ),
        (
            "redirect_uris",
            code_client(json!(["https://APP.example.com/cb"])),
        ),
        (
            "redirect_uris",
            code_client(json!(["http://127.0.0.1:080/cb"])),
        ),
        (
            "redirect_uris",
            code_client(json!([format!(
                "https://app.example.com/{}",
                "a".repeat(600)
            )])),
        ),
    ];
    for (field, body) in refused {
        let res = create_client(&app, &admin, body.clone()).await;
        let problem = assert_problem(res, 422, "validation_failed").await;
        assert!(problem["errors"][field].is_array(), "{body}: {problem}");
    }
}
both!(clients_are_registered_for_grant_types_redirect_uris_and_as_public);

/// A service client registered for token exchange; returns `(client_id, secret)`.
async fn exchanger(app: &TestApp, admin: &str, audience: &[&str]) -> (String, String) {
    client(
        app,
        admin,
        json!({"name": unique("orders"), "grant_types": [EXCHANGE],
               "scopes": ["api", "orders:read"], "audience": audience}),
    )
    .await
}

async fn exchange(
    app: &TestApp,
    creds: (&str, &str),
    subject: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut pairs = vec![
        ("grant_type", EXCHANGE),
        ("subject_token", subject),
        ("subject_token_type", ACCESS),
    ];
    pairs.extend_from_slice(extra);
    token(app, &pairs, Some(creds)).await
}

async fn a_service_exchanges_a_users_token_for_a_narrower_one(b: Backend) {
    let (app, admin) = with_admin(b).await;
    let (id, secret) = exchanger(&app, &admin, &["billing", "shipping"]).await;
    let creds = (id.as_str(), secret.as_str());
    let user = app.register(&unique("carol")).await;
    let subject = user["access_token"].as_str().unwrap();
    let subject_claims = claims(subject);
    // A second later, so that a full lifetime from now would outlive the subject token.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let res = exchange(&app, creds, subject, &[("audience", "billing")]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["issued_token_type"], ACCESS);
    assert_eq!(body["token_type"], "Bearer");
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert_eq!(body["scope"], "api");
    let exchanged = body["access_token"].as_str().unwrap();
    let c = claims(exchanged);
    assert_eq!(c["sub"], subject_claims["sub"]);
    assert_eq!(c["sid"], subject_claims["sid"]);
    assert_eq!(c["roles"], subject_claims["roles"]);
    assert_eq!(
        c["preferred_username"],
        subject_claims["preferred_username"]
    );
    assert_eq!(c["aud"], json!(["billing"]));
    assert_eq!(c["scope"], "api");
    assert_eq!(c["client_id"], id.as_str());
    assert_eq!(c["act"], json!({"sub": id}));
    assert_ne!(c["jti"], subject_claims["jti"]);
    assert_eq!(
        c["exp"], subject_claims["exp"],
        "never outlives the subject token"
    );
    let expires_in = body["expires_in"].as_i64().unwrap();
    assert!(expires_in < 900 && expires_in > 800, "{expires_in}");
    assert_eq!(introspect(&app, creds, exchanged).await["active"], true);
    // Not a key to the user's account here: the auth-service's own API wants the user's token.
    let res = app.get_auth("/v1/me", exchanged).await;
    assert_problem(res, 401, "invalid_token").await;
    let res = app.post_auth("/v1/logout/all", exchanged, None).await;
    assert_problem(res, 401, "invalid_token").await;

    // Passed on again by a second service: the first actor is nested inside.
    let (id2, secret2) = exchanger(&app, &admin, &["ledger"]).await;
    // The exchanged token's scope, intersected with the second client's.
    let res = exchange(&app, (&id2, &secret2), exchanged, &[("audience", "ledger")]).await;
    assert_eq!(res.status(), StatusCode::OK);
    let again = claims(
        res.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(again["act"], json!({"sub": id2, "act": {"sub": id}}));
    assert_eq!(again["sub"], subject_claims["sub"]);
    assert_eq!(again["aud"], json!(["ledger"]));
}
both!(a_service_exchanges_a_users_token_for_a_narrower_one);

async fn every_way_an_exchange_must_be_refused_is(b: Backend) {
    let (app, admin) = with_admin(b).await;
    let (id, secret) = exchanger(&app, &admin, &["billing"]).await;
    let creds = (id.as_str(), secret.as_str());
    let user = app.register(&unique("dave")).await;
    let subject = user["access_token"].as_str().unwrap().to_owned();
    let refused = |res, status, error| assert_oauth_error(res, status, error);

    // Scope: never wider than the subject token's (`api`) or the client's.
    refused(
        exchange(
            &app,
            creds,
            &subject,
            &[("audience", "billing"), ("scope", "orders:read")],
        )
        .await,
        400,
        "invalid_scope",
    )
    .await;
    refused(
        exchange(
            &app,
            creds,
            &subject,
            &[("audience", "billing"), ("scope", "admin")],
        )
        .await,
        400,
        "invalid_scope",
    )
    .await;
    // Audience: required, one, and one the client is registered for.
    refused(
        exchange(&app, creds, &subject, &[]).await,
        400,
        "invalid_request",
    )
    .await;
    for audience in ["shipping", "billing shipping", "resource-service"] {
        refused(
            exchange(&app, creds, &subject, &[("audience", audience)]).await,
            400,
            "invalid_target",
        )
        .await;
    }
    let billing = [("audience", "billing")];
    // The subject token: of the right type, valid, a user's.
    let res = token(
        &app,
        &[
            ("grant_type", EXCHANGE),
            ("subject_token", &subject),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:refresh_token",
            ),
            ("audience", "billing"),
        ],
        Some(creds),
    )
    .await;
    refused(res, 400, "invalid_request").await;
    let res = token(
        &app,
        &[
            ("grant_type", EXCHANGE),
            ("subject_token_type", ACCESS),
            ("audience", "billing"),
        ],
        Some(creds),
    )
    .await;
    refused(res, 400, "invalid_request").await;
    refused(
        exchange(&app, creds, "not.a.token", &billing).await,
        400,
        "invalid_grant",
    )
    .await;
    let refresh = user["refresh_token"].as_str().unwrap();
    refused(
        exchange(&app, creds, refresh, &billing).await,
        400,
        "invalid_grant",
    )
    .await;
    let (svc_id, svc_secret) = client(
        &app,
        &admin,
        json!({"name": "svc", "scopes": ["api"], "audience": ["billing"]}),
    )
    .await;
    let res = token(
        &app,
        &[("grant_type", "client_credentials")],
        Some((&svc_id, &svc_secret)),
    )
    .await;
    let service_token = res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    refused(
        exchange(&app, creds, &service_token, &billing).await,
        400,
        "invalid_grant",
    )
    .await;
    // Actor tokens are not taken: the authenticated client is the actor.
    refused(
        exchange(
            &app,
            creds,
            &subject,
            &[
                ("audience", "billing"),
                ("actor_token", &subject),
                ("actor_token_type", ACCESS),
            ],
        )
        .await,
        400,
        "invalid_request",
    )
    .await;

    // The client: authenticated, and registered for token exchange.
    refused(
        token(
            &app,
            &[
                ("grant_type", EXCHANGE),
                ("subject_token", &subject),
                ("subject_token_type", ACCESS),
                ("audience", "billing"),
            ],
            None,
        )
        .await,
        401,
        "invalid_client",
    )
    .await;
    refused(
        exchange(&app, (&id, "wrong-secret"), &subject, &billing).await,
        401,
        "invalid_client",
    )
    .await;
    refused(
        exchange(&app, (&svc_id, &svc_secret), &subject, &billing).await,
        400,
        "unauthorized_client",
    )
    .await;
    // And the exchange client cannot mint tokens for itself.
    refused(
        token(&app, &[("grant_type", "client_credentials")], Some(creds)).await,
        400,
        "unauthorized_client",
    )
    .await;

    // A revoked subject token is not exchanged.
    let res = app.post_auth("/v1/logout", &subject, None).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    refused(
        exchange(&app, creds, &subject, &billing).await,
        400,
        "invalid_grant",
    )
    .await;
}
both!(every_way_an_exchange_must_be_refused_is);

async fn exchanged_tokens_die_with_the_users_logout_and_revocation(b: Backend) {
    let (app, admin) = with_admin(b).await;
    let (id, secret) = exchanger(&app, &admin, &["billing"]).await;
    let creds = (id.as_str(), secret.as_str());
    let name = unique("erin");
    let user = app.register(&name).await;
    let user_id = user["user"]["id"].as_str().unwrap().to_owned();
    let billing = [("audience", "billing")];

    // The user logs out of the session: the exchanged token is refused too.
    let subject = user["access_token"].as_str().unwrap();
    let res = exchange(&app, creds, subject, &billing).await;
    let exchanged = res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(introspect(&app, creds, &exchanged).await["active"], true);
    let res = app.post_auth("/v1/logout", subject, None).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(introspect(&app, creds, &exchanged).await["active"], false);

    // An admin revokes every token of the user: the exchanged one of another session too.
    let signed = app.login_ok(&name).await;
    let subject = signed["access_token"].as_str().unwrap();
    let res = exchange(&app, creds, subject, &billing).await;
    let exchanged = res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(introspect(&app, creds, &exchanged).await["active"], true);
    let res = app
        .post_auth(&format!("/v1/users/{user_id}/revoke"), &admin, None)
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(introspect(&app, creds, &exchanged).await["active"], false);
}
both!(exchanged_tokens_die_with_the_users_logout_and_revocation);

/// Deleting a client refuses every token in whose `act` chain it appears: what it got by
/// exchange, and what another client exchanged from that; and nothing more is exchanged from
/// them.
async fn deleting_a_client_refuses_the_tokens_it_acted_in(b: Backend) {
    let (app, admin) = with_admin(b).await;
    let (first, first_secret) = exchanger(&app, &admin, &["billing"]).await;
    let (second, second_secret) = exchanger(&app, &admin, &["ledger", "billing"]).await;
    let (watcher, watcher_secret) = exchanger(&app, &admin, &["billing"]).await;
    let watch = (watcher.as_str(), watcher_secret.as_str());
    let user = app.register(&unique("frank")).await;
    let subject = user["access_token"].as_str().unwrap();
    let take = |res: reqwest::Response| async move {
        assert_eq!(res.status(), StatusCode::OK);
        res.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let by_first = take(
        exchange(
            &app,
            (&first, &first_secret),
            subject,
            &[("audience", "billing")],
        )
        .await,
    )
    .await;
    let passed_on = take(
        exchange(
            &app,
            (&second, &second_secret),
            &by_first,
            &[("audience", "ledger")],
        )
        .await,
    )
    .await;
    // Exchanged by the second client straight from the user's token: no part of the first.
    let unrelated = take(
        exchange(
            &app,
            (&second, &second_secret),
            subject,
            &[("audience", "ledger")],
        )
        .await,
    )
    .await;
    for token in [&by_first, &passed_on, &unrelated] {
        assert_eq!(introspect(&app, watch, token).await["active"], true);
    }

    let res = app
        .client
        .delete(app.url(&format!("/v1/clients/{first}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(introspect(&app, watch, &by_first).await["active"], false);
    assert_eq!(introspect(&app, watch, &passed_on).await["active"], false);
    assert_eq!(introspect(&app, watch, &unrelated).await["active"], true);
    assert_eq!(introspect(&app, watch, subject).await["active"], true);
    // Nothing is exchanged from a token the deleted client acted in.
    let res = exchange(
        &app,
        (&second, &second_secret),
        &by_first,
        &[("audience", "billing")],
    )
    .await;
    assert_oauth_error(res, 400, "invalid_grant").await;
}
both!(deleting_a_client_refuses_the_tokens_it_acted_in);

/// An exchange whose token every verifier would refuse (an `act` chain deeper than 5) is
/// refused with `invalid_request`; five deep is still handed out.
async fn an_exchange_nested_deeper_than_five_is_refused(b: Backend) {
    let (app, admin) = with_admin(b).await;
    let (id, secret) = exchanger(&app, &admin, &["billing"]).await;
    let creds = (id.as_str(), secret.as_str());
    let user = app.register(&unique("gina")).await;
    let mut token = user["access_token"].as_str().unwrap().to_owned();
    for depth in 1..=5 {
        let res = exchange(&app, creds, &token, &[("audience", "billing")]).await;
        assert_eq!(res.status(), StatusCode::OK, "depth {depth}");
        token = res.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(introspect(&app, creds, &token).await["active"], true);
    }
    let mut act = &claims(&token)["act"];
    let mut depth = 0;
    while act.is_object() {
        depth += 1;
        act = &act["act"];
    }
    assert_eq!(depth, 5);
    let res = exchange(&app, creds, &token, &[("audience", "billing")]).await;
    let body = assert_oauth_error(res, 400, "invalid_request").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("at most 5 actors"),
        "{body}"
    );
}
both!(an_exchange_nested_deeper_than_five_is_refused);
