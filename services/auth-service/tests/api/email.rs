//! Email at registration, and logins by email on the JSON API and the password grant: unique
//! ignoring case, checked when given, sharing the account's failed-login budget.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both;
use crate::helpers::{Backend, PASSWORD, Spawn, TestApp, assert_problem, unique};

fn email_of(name: &str) -> String {
    format!("{name}.Mail+tag@Example.COM")
}

async fn register_with(app: &TestApp, name: &str, email: Value) -> reqwest::Response {
    app.post(
        "/v1/register",
        &json!({"username": name, "email": email, "password": PASSWORD}),
    )
    .await
}

async fn an_email_is_registered_shown_and_logs_in(b: Backend) {
    let app = crate::helpers::spawn_app(b).await;
    let name = unique("mail");
    let email = email_of(&name);
    let res = register_with(&app, &name, json!(email)).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["email"], email.as_str(), "kept as given");
    let id = body["user"]["id"].clone();

    // Without one (absent or null), `email` is null.
    let plain = unique("nomail");
    let res = register_with(&app, &plain, Value::Null).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["email"], Value::Null);
    assert_eq!(
        app.register(&unique("nomail")).await["user"]["email"],
        Value::Null
    );

    // The email logs in, in any case, on the JSON API and through the password grant.
    for given in [email.clone(), email.to_uppercase(), email.to_lowercase()] {
        let res = app.login(&given, PASSWORD).await;
        assert_eq!(res.status(), StatusCode::OK, "{given}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["user"]["id"], id);
        let me: Value = app
            .get_auth("/v1/me", body["access_token"].as_str().unwrap())
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(me["email"], email.as_str());
    }
    let res = crate::oauth::token(
        &app,
        &[
            ("grant_type", "password"),
            ("username", email.as_str()),
            ("password", PASSWORD),
        ],
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let token: Value = res.json().await.unwrap();
    assert!(token["refresh_token"].is_string());

    // A wrong password by email, and an email nobody has, answer alike.
    assert_problem(
        app.login(&email, "not the password").await,
        401,
        "invalid_credentials",
    )
    .await;
    assert_problem(
        app.login(&format!("nobody-{name}@example.com"), PASSWORD)
            .await,
        401,
        "invalid_credentials",
    )
    .await;
}
both!(an_email_is_registered_shown_and_logs_in);

async fn emails_are_unique_ignoring_case_and_checked(b: Backend) {
    let app = crate::helpers::spawn_app(b).await;
    let name = unique("uniq");
    let email = email_of(&name);
    assert_eq!(
        register_with(&app, &name, json!(email)).await.status(),
        StatusCode::CREATED
    );
    for taken in [email.clone(), email.to_lowercase(), email.to_uppercase()] {
        let res = register_with(&app, &unique("other"), json!(taken)).await;
        assert_problem(res, 409, "email_taken").await;
    }
    // A taken username is reported as such, whatever the email.
    let res = register_with(&app, &name, json!(format!("fresh-{name}@example.com"))).await;
    assert_problem(res, 409, "username_taken").await;

    for bad in [
        json!("not-an-email"),
        json!("alice@localhost"),
        json!("\"alice smith\"@example.com"),
        json!("Alice <alice@example.com>"),
        json!("alice@[192.0.2.1]"),
        json!(format!("{}@example.com", "a".repeat(250))),
        json!(42),
        json!(["a@example.com"]),
    ] {
        let res = register_with(&app, &unique("bad"), bad.clone()).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        let problem: Value = res.json().await.unwrap();
        assert_eq!(problem["code"], "validation_failed");
        assert!(problem["errors"]["email"].is_array(), "{problem}");
    }
}
both!(emails_are_unique_ignoring_case_and_checked);

async fn racing_registrations_of_one_email_get_one_account(b: Backend) {
    let app = crate::helpers::spawn_app(b).await;
    let email = email_of(&unique("race"));
    let attempts = (0..4).map(|_| {
        let (app, email) = (&app, email.clone());
        async move { register_with(app, &unique("racer"), json!(email)).await }
    });
    let answers = futures_util::future::join_all(attempts).await;
    let mut created = 0;
    for res in answers {
        match res.status() {
            StatusCode::CREATED => created += 1,
            _ => {
                assert_problem(res, 409, "email_taken").await;
            }
        }
    }
    assert_eq!(created, 1);
}
both!(racing_registrations_of_one_email_get_one_account);

/// Failures by email and by username count against the one account: naming it both ways does
/// not double the budget, from addresses of their own (through a trusted proxy) so that only the
/// account's windows fill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_by_email_and_by_username_share_the_accounts_budget() {
    let app = Spawn::new(Backend::Sqlite)
        .env("TRUSTED_PROXIES", "127.0.0.1")
        .start()
        .await;
    let name = unique("budget");
    let email = email_of(&name);
    assert_eq!(
        register_with(&app, &name, json!(email)).await.status(),
        StatusCode::CREATED
    );
    let login_from = |who: String, password: &'static str, ip: String| {
        let app = &app;
        async move {
            app.client
                .post(app.url("/v1/login"))
                .header("x-forwarded-for", ip)
                .json(&json!({"username": who, "password": password}))
                .send()
                .await
                .unwrap()
        }
    };
    for i in 0..5 {
        let who = if i % 2 == 0 {
            name.clone()
        } else {
            email.clone()
        };
        let res = login_from(who, "wrong password!", format!("198.51.100.{i}")).await;
        assert_problem(res, 401, "invalid_credentials").await;
    }
    for who in [name.clone(), email.clone(), email.to_lowercase()] {
        let res = login_from(who.clone(), PASSWORD, "198.51.100.77".into()).await;
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "{who}");
        assert_problem(res, 429, "rate_limited").await;
    }
    // An email nobody has is limited exactly like one that exists.
    let nobody = format!("nobody-{name}@example.com");
    for i in 0..5 {
        let res = login_from(nobody.clone(), "wrong password!", format!("203.0.113.{i}")).await;
        assert_problem(res, 401, "invalid_credentials").await;
    }
    let res = login_from(nobody, "wrong password!", "203.0.113.77".into()).await;
    assert_problem(res, 429, "rate_limited").await;
}
