//! The device authorization grant (RFC 8628) over plain HTTP: every polling answer, the
//! `/device` page approving and denying (with and without a login session), `slow_down`
//! enforced under concurrent polls, expiry, and codes that cannot be guessed faster than
//! passwords.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::authorize::{Browser, hidden_fields};
use crate::both;
use crate::helpers::{Backend, PASSWORD, TestApp, claims, unique, with_admin};
use crate::oauth::{assert_oauth_error, token};

const DEVICE: &str = "urn:ietf:params:oauth:grant-type:device_code";

async fn cli_client(app: &TestApp, admin: &str) -> String {
    let res = app
        .post_auth(
            "/v1/clients",
            admin,
            Some(&json!({"name": "Example CLI", "public": true,
                "grant_types": [DEVICE, "refresh_token"]})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json::<Value>().await.unwrap()["client_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn start(app: &TestApp, client_id: &str) -> Value {
    let res = app
        .client
        .post(app.url("/oauth/device_authorization"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("client_id={client_id}&scope=api"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    res.json().await.unwrap()
}

async fn poll(app: &TestApp, client_id: &str, device_code: &str) -> reqwest::Response {
    token(
        app,
        &[
            ("grant_type", DEVICE),
            ("device_code", device_code),
            ("client_id", client_id),
        ],
        None,
    )
    .await
}

/// Lets `device_code`'s interval pass, as the clock would.
async fn wait_interval(app: &TestApp) {
    let db = app.store().await;
    db.run(|conn| {
        use diesel::prelude::*;
        use tokenauth_store::schema::device_codes::dsl;
        diesel::update(dsl::device_codes)
            .set(dsl::last_poll_ms.eq(dsl::last_poll_ms - (dsl::poll_interval * 1000).nullable()))
            .execute(conn)?;
        Ok(())
    })
    .await
    .unwrap();
}

/// Submits the device page: `user_code`, `action`, and credentials if the page asks.
async fn decide(
    browser: &mut Browser,
    user_code: &str,
    action: &str,
    login: Option<(&str, &str)>,
) -> crate::authorize::Page {
    let page = browser.get("/device").await;
    assert_eq!(page.status, StatusCode::OK);
    let mut pairs = hidden_fields(&page.body);
    pairs.push(("user_code".into(), user_code.into()));
    pairs.push(("action".into(), action.into()));
    if let Some((name, password)) = login {
        pairs.push(("username".into(), name.into()));
        pairs.push(("password".into(), password.into()));
    }
    let answer = browser.post("/device", &pairs).await;
    // An approval of a typed code first names the client asking, and counts only from there.
    if action == "approve" && answer.input("shown_code").is_some() {
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        let mut pairs = hidden_fields(&answer.body);
        pairs.push(("user_code".into(), user_code.into()));
        pairs.push(("action".into(), action.into()));
        return browser.post("/device", &pairs).await;
    }
    answer
}

async fn a_device_is_approved_from_the_page_and_polls_every_answer(b: Backend) {
    // The page's requests come from an address of their own: a mistyped code counts there.
    let app = crate::helpers::admin_spawn(b)
        .env("TRUSTED_PROXIES", "127.0.0.1")
        .start()
        .await;
    let admin = crate::helpers::admin_token(&app).await;
    let client_id = cli_client(&app, &admin).await;
    let name = unique("tv");
    app.register(&name).await;

    let codes = start(&app, &client_id).await;
    let user_code = codes["user_code"].as_str().unwrap().to_owned();
    let device_code = codes["device_code"].as_str().unwrap().to_owned();
    assert_eq!(user_code.len(), 9);
    assert_eq!(&user_code[4..5], "-");
    assert!(
        user_code
            .chars()
            .filter(|c| *c != '-')
            .all(|c| "BCDFGHJKLMNPQRSTVWXZ".contains(c))
    );
    assert_eq!(codes["verification_uri"], "http://127.0.0.1:8080/device");
    assert_eq!(
        codes["verification_uri_complete"],
        format!("http://127.0.0.1:8080/device?user_code={user_code}")
    );
    assert_eq!(codes["expires_in"], 600);
    assert_eq!(codes["interval"], 5);

    // Pending; then too soon: slow_down, twice at once only one passes.
    assert_oauth_error(
        poll(&app, &client_id, &device_code).await,
        400,
        "authorization_pending",
    )
    .await;
    assert_oauth_error(poll(&app, &client_id, &device_code).await, 400, "slow_down").await;
    wait_interval(&app).await;
    let both =
        futures_util::future::join_all((0..3).map(|_| poll(&app, &client_id, &device_code))).await;
    let mut answers = Vec::new();
    for res in both {
        answers.push(
            res.json::<Value>().await.unwrap()["error"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    answers.sort();
    assert_eq!(answers, ["authorization_pending", "slow_down", "slow_down"]);

    // The page asks for a login, then approves (the code typed loosely).
    let mut browser = Browser::new(&app);
    browser.forwarded_for = Some("198.51.100.31".into());
    let page = browser.get(&format!("/device?user_code={user_code}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.input("user_code").as_deref(), Some(user_code.as_str()));
    assert!(page.body.contains("name=\"username\"") && page.body.contains("name=\"password\""));
    assert!(page.body.contains("name=\"action\" value=\"approve\""));
    assert!(page.body.contains("name=\"action\" value=\"deny\""));
    assert!(
        page.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    let typed = user_code.to_lowercase().replace('-', " ");
    let done = decide(&mut browser, &typed, "approve", Some((&name, PASSWORD))).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.body.contains("Example CLI"));
    assert!(browser.cookies.contains_key("tokenauth_login"));

    // Tokens once, for a session of the CLI; then the code is spent.
    wait_interval(&app).await;
    let res = poll(&app, &client_id, &device_code).await;
    assert_eq!(res.status(), StatusCode::OK);
    let tokens: Value = res.json().await.unwrap();
    let c = claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(c["client_id"], client_id.as_str());
    assert_eq!(c["preferred_username"], name.as_str());
    assert!(tokens["refresh_token"].is_string());
    wait_interval(&app).await;
    assert_oauth_error(
        poll(&app, &client_id, &device_code).await,
        400,
        "invalid_grant",
    )
    .await;

    // With the login session, the page asks only for the code; this time: deny.
    let codes = start(&app, &client_id).await;
    let (user_code, device_code) = (
        codes["user_code"].as_str().unwrap().to_owned(),
        codes["device_code"].as_str().unwrap().to_owned(),
    );
    let page = browser.get("/device").await;
    assert!(!page.body.contains("name=\"password\""));
    assert!(page.body.contains(&name));
    let done = decide(&mut browser, &user_code, "deny", None).await;
    assert_eq!(done.status, StatusCode::OK);
    assert_oauth_error(
        poll(&app, &client_id, &device_code).await,
        400,
        "access_denied",
    )
    .await;
    // A decided code cannot be decided again.
    let again = decide(&mut browser, &user_code, "approve", None).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    wait_interval(&app).await;
    assert_oauth_error(
        poll(&app, &client_id, &device_code).await,
        400,
        "access_denied",
    )
    .await;

    // Expired: never tokens, even if approved in time.
    let codes = start(&app, &client_id).await;
    let device_code = codes["device_code"].as_str().unwrap().to_owned();
    let user_code = codes["user_code"].as_str().unwrap().to_owned();
    let done = decide(&mut browser, &user_code, "approve", None).await;
    assert_eq!(done.status, StatusCode::OK);
    let db = app.store().await;
    db.run(|conn| {
        use diesel::prelude::*;
        use tokenauth_store::schema::device_codes::dsl;
        diesel::update(dsl::device_codes)
            .set(dsl::expires_at.eq(dsl::expires_at - 601))
            .execute(conn)?;
        Ok(())
    })
    .await
    .unwrap();
    assert_oauth_error(
        poll(&app, &client_id, &device_code).await,
        400,
        "expired_token",
    )
    .await;
}
both!(a_device_is_approved_from_the_page_and_polls_every_answer);

/// RFC 8628 §5.4: the page names the client asking before anything is approved, whether the
/// code came in the link or was typed; looking a code up counts like typing one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_names_the_client_before_anything_is_approved() {
    let app = crate::helpers::admin_spawn(Backend::Sqlite)
        .env("TRUSTED_PROXIES", "127.0.0.1")
        .start()
        .await;
    let admin = crate::helpers::admin_token(&app).await;
    let client_id = cli_client(&app, &admin).await;
    let name = unique("viewer");
    app.register(&name).await;
    let pending = |device_code: String| {
        let (app, client_id) = (&app, client_id.clone());
        async move {
            wait_interval(app).await;
            let res = poll(app, &client_id, &device_code).await;
            res.json::<Value>().await.unwrap()["error"].clone()
        }
    };

    // From the link: named at once.
    let codes = start(&app, &client_id).await;
    let user_code = codes["user_code"].as_str().unwrap().to_owned();
    let device_code = codes["device_code"].as_str().unwrap().to_owned();
    let mut browser = Browser::new(&app);
    browser.forwarded_for = Some("198.51.100.41".into());
    let page = browser.get(&format!("/device?user_code={user_code}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains("<strong>Example CLI</strong> is asking to sign in"),
        "{}",
        page.body
    );
    assert_eq!(
        page.input("shown_code").as_deref(),
        Some(user_code.as_str())
    );

    // Typed on the bare page: the first approve names the client and approves nothing.
    let bare = browser.get("/device").await;
    assert!(!bare.body.contains("Example CLI"));
    assert!(bare.input("shown_code").is_none());
    let mut pairs = hidden_fields(&bare.body);
    pairs.push(("user_code".into(), user_code.clone()));
    pairs.push(("action".into(), "approve".into()));
    pairs.push(("username".into(), name.clone()));
    pairs.push(("password".into(), PASSWORD.into()));
    let asked = browser.post("/device", &pairs).await;
    assert_eq!(asked.status, StatusCode::OK, "{}", asked.body);
    assert!(
        asked
            .body
            .contains("<strong>Example CLI</strong> is asking to sign in")
    );
    assert_eq!(pending(device_code.clone()).await, "authorization_pending");
    // A page shown for another code approves nothing either.
    let other = start(&app, &client_id).await;
    let mut pairs = hidden_fields(&asked.body);
    pairs.retain(|(n, _)| n != "shown_code");
    pairs.push((
        "shown_code".into(),
        other["user_code"].as_str().unwrap().into(),
    ));
    pairs.push(("user_code".into(), user_code.clone()));
    pairs.push(("action".into(), "approve".into()));
    let again = browser.post("/device", &pairs).await;
    assert!(again.body.contains("is asking to sign in"));
    assert_eq!(pending(device_code.clone()).await, "authorization_pending");
    // From the page that named it: approved.
    let mut pairs = hidden_fields(&again.body);
    pairs.push(("user_code".into(), user_code.clone()));
    pairs.push(("action".into(), "approve".into()));
    let done = browser.post("/device", &pairs).await;
    assert_eq!(done.status, StatusCode::OK);
    assert!(done.body.contains("Device connected"), "{}", done.body);

    // Unknown codes in the link name nobody, and count like typed ones.
    let mut guesser = Browser::new(&app);
    guesser.forwarded_for = Some("198.51.100.42".into());
    for _ in 0..5 {
        let page = guesser.get("/device?user_code=BBBB-BBBB").await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST);
        assert!(page.body.contains("That code is unknown"));
        assert!(!page.body.contains("is asking"));
    }
    let limited = guesser
        .get(&format!(
            "/device?user_code={}",
            other["user_code"].as_str().unwrap()
        ))
        .await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(!limited.body.contains("Example CLI"));
}

async fn device_requests_and_polls_are_refused_when_they_must_be(b: Backend) {
    let (app, admin) = with_admin(b).await;
    let client_id = cli_client(&app, &admin).await;
    // A client not registered for the grant, an unknown one, a bad scope.
    let res = app
        .post_auth(
            "/v1/clients",
            &admin,
            Some(
                &json!({"name": "web", "public": true, "grant_types": ["authorization_code"],
                "redirect_uris": ["https://app.example.com/cb"]}),
            ),
        )
        .await;
    let web = res.json::<Value>().await.unwrap()["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ask = |body: String| {
        let app = &app;
        async move {
            app.client
                .post(app.url("/oauth/device_authorization"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    assert_oauth_error(
        ask(format!("client_id={web}")).await,
        400,
        "unauthorized_client",
    )
    .await;
    assert_oauth_error(
        ask("client_id=svc-nobody".into()).await,
        401,
        "invalid_client",
    )
    .await;
    assert_oauth_error(ask(String::new()).await, 401, "invalid_client").await;
    assert_oauth_error(
        ask(format!("client_id={client_id}&scope=admin")).await,
        400,
        "invalid_scope",
    )
    .await;

    // Polls: another client's device code, an unknown one.
    let codes = start(&app, &client_id).await;
    let device_code = codes["device_code"].as_str().unwrap().to_owned();
    let other = cli_client(&app, &admin).await;
    assert_oauth_error(poll(&app, &other, &device_code).await, 400, "invalid_grant").await;
    assert_oauth_error(
        poll(&app, &client_id, "no-such-code").await,
        400,
        "invalid_grant",
    )
    .await;
    let res = token(
        &app,
        &[("grant_type", DEVICE), ("client_id", &client_id)],
        None,
    )
    .await;
    assert_oauth_error(res, 400, "invalid_request").await;
}
both!(device_requests_and_polls_are_refused_when_they_must_be);

/// Wrong user codes count as failed attempts of the address; a forged form is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_codes_cannot_be_guessed_faster_than_passwords() {
    let app = crate::helpers::admin_spawn(Backend::Sqlite)
        .env("TRUSTED_PROXIES", "127.0.0.1")
        .start()
        .await;
    let admin = crate::helpers::admin_token(&app).await;
    let client_id = cli_client(&app, &admin).await;
    let name = unique("guess");
    app.register(&name).await;
    let codes = start(&app, &client_id).await;
    let real = codes["user_code"].as_str().unwrap().to_owned();
    let mut browser = Browser::new(&app);
    browser.forwarded_for = Some("198.51.100.30".into());

    // No CSRF token, a forged one: refused, nothing decided.
    let res = browser
        .post(
            "/device",
            &[
                ("user_code".into(), real.clone()),
                ("action".into(), "approve".into()),
                ("username".into(), name.clone()),
                ("password".into(), PASSWORD.into()),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);

    let first = decide(
        &mut browser,
        "BBBB-BBBB",
        "approve",
        Some((&name, PASSWORD)),
    )
    .await;
    assert_eq!(first.status, StatusCode::BAD_REQUEST);
    for guess in ["CCCC-CCCC", "DDDD-DDDD", "FFFF-FFFF", "GGGG-GGGG"] {
        let res = decide(&mut browser, guess, "approve", None).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{guess}");
        assert!(res.body.contains("unknown, expired or already used"));
    }
    // Five wrong codes from this address: even the right one waits now.
    let res = decide(&mut browser, &real, "approve", None).await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers.contains_key("retry-after"));
    let device_code = codes["device_code"].as_str().unwrap();
    assert_oauth_error(
        poll(&app, &client_id, device_code).await,
        400,
        "authorization_pending",
    )
    .await;
}

/// An approved request not yet polled for dies with the user's password change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_request_dies_with_a_password_change() {
    let (app, admin) = with_admin(Backend::Sqlite).await;
    let client_id = cli_client(&app, &admin).await;
    let name = unique("changed");
    let signed = app.register(&name).await;
    let codes = start(&app, &client_id).await;
    let mut browser = Browser::new(&app);
    let user_code = codes["user_code"].as_str().unwrap();
    let done = decide(&mut browser, user_code, "approve", Some((&name, PASSWORD))).await;
    assert_eq!(done.status, StatusCode::OK);
    let res = app
        .client
        .put(app.url("/v1/me/password"))
        .bearer_auth(signed["access_token"].as_str().unwrap())
        .json(&json!({"current_password": PASSWORD, "new_password": "an entirely new passphrase"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let device_code = codes["device_code"].as_str().unwrap();
    assert_oauth_error(
        poll(&app, &client_id, device_code).await,
        400,
        "access_denied",
    )
    .await;
}

/// Every device authorization is stored for ten minutes, so each counts in the address's
/// window; beyond it, 429 with `Retry-After`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_authorizations_are_limited_per_address() {
    let app = crate::helpers::admin_spawn(Backend::Sqlite)
        .env("REGISTER_RATE_LIMIT_PER_MINUTE", "3")
        .start()
        .await;
    let admin = crate::helpers::admin_token(&app).await;
    let client_id = cli_client(&app, &admin).await;
    for _ in 0..3 {
        start(&app, &client_id).await;
    }
    let res = app
        .client
        .post(app.url("/oauth/device_authorization"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("client_id={client_id}"))
        .send()
        .await
        .unwrap();
    assert!(res.headers().contains_key("retry-after"));
    assert_oauth_error(res, 429, "slow_down").await;
}
