//! Authorization code with PKCE over plain HTTP, as a browser without script would drive it:
//! the login page and its headers, the code and its bindings, single use, the login session,
//! CSRF, and the failed-login limits shared with `POST /v1/login`.

use std::collections::HashMap;

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both;
use crate::helpers::{Backend, PASSWORD, TestApp, claims, unique, with_admin};
use crate::oauth::{assert_oauth_error, token};

pub const APP_URI: &str = "https://app.example.com/callback";
pub const NATIVE_URI: &str = "http://127.0.0.1/native";

/// A browser: its cookies, and no redirect followed (the test reads each `Location`).
pub struct Browser {
    http: reqwest::Client,
    pub cookies: HashMap<String, String>,
    base: String,
    /// Sent as `X-Forwarded-For` (for a service that trusts the test as its proxy).
    pub forwarded_for: Option<String>,
}

pub struct Page {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> Option<url::Url> {
        self.headers
            .get("location")
            .map(|l| url::Url::parse(l.to_str().unwrap()).unwrap())
    }

    /// The value of the hidden (or any) input named `name`.
    pub fn input(&self, name: &str) -> Option<String> {
        let marker = format!("name=\"{name}\"");
        let at = self.body.find(&marker)?;
        let rest = &self.body[at..];
        let value_at = rest.find("value=\"")? + 7;
        let end = rest[value_at..].find('"')?;
        Some(unescape(&rest[value_at..value_at + end]))
    }
}

/// HTML character references as askama writes them (`&#60;`, `&quot;`, `&amp;`, ...).
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        let Some(end) = after.find(';') else {
            out.push_str(after);
            return out;
        };
        let entity = &after[1..end];
        let decoded = match entity {
            "quot" => Some('"'),
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix('#')
                .and_then(|n| n.parse::<u32>().ok())
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &after[end + 1..];
            }
            None => {
                out.push('&');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

impl Browser {
    pub fn new(app: &TestApp) -> Browser {
        Self::trusting(app, None)
    }

    /// A browser that also trusts `root` (a service serving TLS with a test certificate).
    pub fn trusting(app: &TestApp, root: Option<reqwest::Certificate>) -> Browser {
        let mut http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
        if let Some(root) = root {
            http = http.add_root_certificate(root);
        }
        Browser {
            http: http.build().unwrap(),
            cookies: HashMap::new(),
            base: app.url(""),
            forwarded_for: None,
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn keep(&mut self, res: reqwest::Response) -> Page {
        for set in res.headers().get_all("set-cookie") {
            let set = set.to_str().unwrap();
            let (pair, _) = set.split_once(';').unwrap_or((set, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || set.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        Page {
            status: res.status(),
            headers: res.headers().clone(),
            body: res.text().await.unwrap(),
        }
    }

    pub async fn get(&mut self, path_and_query: &str) -> Page {
        let mut req = self
            .http
            .get(format!("{}{path_and_query}", self.base))
            .header("cookie", self.cookie_header());
        if let Some(ip) = &self.forwarded_for {
            req = req.header("x-forwarded-for", ip);
        }
        let res = req.send().await.unwrap();
        self.keep(res).await
    }

    pub async fn post(&mut self, path: &str, pairs: &[(String, String)]) -> Page {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(ip) = &self.forwarded_for {
            req = req.header("x-forwarded-for", ip);
        }
        let res = req.send().await.unwrap();
        self.keep(res).await
    }

    /// Submits the login form of `page` with these credentials (every hidden field as sent).
    pub async fn sign_in(&mut self, page: &Page, username: &str, password: &str) -> Page {
        let mut pairs = hidden_fields(&page.body);
        pairs.push(("username".into(), username.into()));
        pairs.push(("password".into(), password.into()));
        self.post("/oauth/authorize", &pairs).await
    }
}

/// Every hidden input of a page, in order.
pub fn hidden_fields(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for part in html.split("<input type=\"hidden\" ").skip(1) {
        let name_at = part.find("name=\"").unwrap() + 6;
        let name_end = part[name_at..].find('"').unwrap();
        let value_at = part.find("value=\"").unwrap() + 7;
        let value_end = part[value_at..].find('"').unwrap();
        out.push((
            unescape(&part[name_at..name_at + name_end]),
            unescape(&part[value_at..value_at + value_end]),
        ));
    }
    out
}

/// A PKCE pair: `(verifier, S256 challenge)`.
pub fn pkce() -> (String, String) {
    let verifier = format!(
        "{}-{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let challenge = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()));
    (verifier, challenge)
}

/// An authorization request's path and query.
pub fn authorize_path(client_id: &str, redirect_uri: &str, challenge: &str, state: &str) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", redirect_uri),
            ("scope", "api"),
            ("state", state),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ])
        .finish();
    format!("/oauth/authorize?{query}")
}

/// A public browser-and-native app client; returns its id.
pub async fn public_app(app: &TestApp, admin: &str) -> String {
    let res = app
        .post_auth(
            "/v1/clients",
            admin,
            Some(&json!({"name": "Example App", "public": true,
                "grant_types": ["authorization_code", "refresh_token"],
                "redirect_uris": [APP_URI, NATIVE_URI]})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json::<Value>().await.unwrap()["client_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn query(url: &url::Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

/// Redeems a code at the token endpoint as a public client.
pub async fn redeem(
    app: &TestApp,
    client_id: &str,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
) -> reqwest::Response {
    token(
        app,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("client_id", client_id),
            ("code_verifier", verifier),
        ],
        None,
    )
    .await
}

/// Signs `username` in through the login page; returns the browser (with its login session),
/// the code and the verifier.
pub async fn code_for(app: &TestApp, client_id: &str, username: &str) -> (Browser, String, String) {
    let mut browser = Browser::new(app);
    let (verifier, challenge) = pkce();
    let page = browser
        .get(&authorize_path(client_id, APP_URI, &challenge, "s"))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let done = browser.sign_in(&page, username, PASSWORD).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let code = query(&done.location().unwrap())["code"].clone();
    (browser, code, verifier)
}

async fn a_public_app_signs_in_with_a_code_and_pkce(b: Backend) {
    let (app, admin) = with_admin(b).await;
    let client_id = public_app(&app, &admin).await;
    let name = unique("page");
    let email = format!("{name}@example.com");
    let res = app
        .post(
            "/v1/register",
            &json!({"username": name, "email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);

    let mut browser = Browser::new(&app);
    let (verifier, challenge) = pkce();
    let state = "xyz <&> \"state\"";
    let page = browser
        .get(&authorize_path(&client_id, APP_URI, &challenge, state))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    // The login page: what it must carry and what it must not allow.
    let header = |n: &str| page.headers[n].to_str().unwrap().to_owned();
    assert!(header("content-type").starts_with("text/html"));
    let csp = header("content-security-policy");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(
        !csp.contains("script-src") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(
        csp.contains("form-action 'self' https://app.example.com"),
        "{csp}"
    );
    assert_eq!(header("x-frame-options"), "DENY");
    assert_eq!(header("referrer-policy"), "no-referrer");
    assert_eq!(header("cache-control"), "no-store");
    assert!(!page.body.contains("<script"));
    assert!(page.body.contains("Example App"));
    assert_eq!(page.body.matches("type=\"submit\"").count(), 1);
    assert!(page.body.contains("name=\"username\"") && page.body.contains("name=\"password\""));
    assert!(page.input("csrf_token").is_some_and(|t| t.len() == 43));
    assert_eq!(
        page.input("state").as_deref(),
        Some(state),
        "carried as sent"
    );
    assert!(browser.cookies.contains_key("tokenauth_csrf"));

    // Signing in by email: a code for exactly this redirect URI, with state and iss.
    let done = browser.sign_in(&page, &email, PASSWORD).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let to = done.location().unwrap();
    assert!(to.as_str().starts_with(&format!("{APP_URI}?")), "{to}");
    let q = query(&to);
    assert_eq!(q["state"], state);
    assert_eq!(q["iss"], "http://127.0.0.1:8080");
    let code = q["code"].clone();
    let set_cookie: Vec<String> = done
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let login = set_cookie
        .iter()
        .find(|c| c.starts_with("tokenauth_login="))
        .unwrap();
    assert!(
        login.contains("HttpOnly") && login.contains("SameSite=Lax") && login.contains("Path=/")
    );
    assert!(
        !login.to_ascii_lowercase().contains("domain="),
        "host-only: {login}"
    );
    assert!(!login.contains("Secure"), "plain HTTP here: {login}");

    // The code, with the verifier, for tokens of a session bound to the app.
    let res = redeem(&app, &client_id, &code, APP_URI, &verifier).await;
    assert_eq!(res.status(), StatusCode::OK);
    let tokens: Value = res.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let c = claims(&access);
    assert_eq!(c["client_id"], client_id.as_str());
    assert_eq!(c["preferred_username"], name.as_str());
    assert!(c["sid"].is_string());
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();

    // The refresh token rotates for the app, and for no other client.
    let res = token(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", "svc-someone-else"),
        ],
        None,
    )
    .await;
    assert_oauth_error(res, 400, "invalid_grant").await;
    let res = token(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &client_id),
        ],
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let rotated: Value = res.json().await.unwrap();
    assert_eq!(
        claims(rotated["access_token"].as_str().unwrap())["client_id"],
        client_id.as_str()
    );

    // A second authorization skips the form: the login session answers at once.
    let (verifier2, challenge2) = pkce();
    let again = browser
        .get(&authorize_path(&client_id, APP_URI, &challenge2, "second"))
        .await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    let q2 = query(&again.location().unwrap());
    assert_eq!(q2["state"], "second");
    let res = redeem(&app, &client_id, &q2["code"], APP_URI, &verifier2).await;
    assert_eq!(res.status(), StatusCode::OK);

    // The first code again: refused, and the session it started is revoked.
    let res = redeem(&app, &client_id, &code, APP_URI, &verifier).await;
    assert_oauth_error(res, 400, "invalid_grant").await;
    let me = app
        .get_auth("/v1/me", rotated["access_token"].as_str().unwrap())
        .await;
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);

    // Signing out of the browser: the next authorization shows the form again.
    let page = browser.get("/oauth/logout").await;
    assert_eq!(page.status, StatusCode::OK);
    let out = browser
        .post("/oauth/logout", &hidden_fields(&page.body))
        .await;
    assert_eq!(out.status, StatusCode::OK);
    assert!(!browser.cookies.contains_key("tokenauth_login"));
    let (_, challenge3) = pkce();
    let form = browser
        .get(&authorize_path(&client_id, APP_URI, &challenge3, "third"))
        .await;
    assert_eq!(form.status, StatusCode::OK);
}
both!(a_public_app_signs_in_with_a_code_and_pkce);

async fn bad_authorization_requests_are_refused(b: Backend) {
    let (app, admin) = with_admin(b).await;
    let client_id = public_app(&app, &admin).await;
    let (_, challenge) = pkce();
    let mut browser = Browser::new(&app);

    // Never redirected: an unknown client, a redirect URI it did not register.
    for path in [
        authorize_path(
            "svc-00000000-0000-0000-0000-000000000000",
            APP_URI,
            &challenge,
            "s",
        ),
        authorize_path(
            &client_id,
            "https://evil.example.com/callback",
            &challenge,
            "s",
        ),
        authorize_path(
            &client_id,
            "https://app.example.com/callback/more",
            &challenge,
            "s",
        ),
        authorize_path(&client_id, "http://localhost:8000/native", &challenge, "s"),
        format!("/oauth/authorize?response_type=code&client_id={client_id}"),
    ] {
        let page = browser.get(&path).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(page.headers.get("location").is_none(), "{path}");
        assert!(
            page.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }
    // A native app's loopback redirect URI on any port.
    let page = browser
        .get(&authorize_path(
            &client_id,
            "http://127.0.0.1:53219/native",
            &challenge,
            "s",
        ))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("http://127.0.0.1:*")
    );

    // Everything else goes back to the app with error, state and iss.
    let base = authorize_path(&client_id, APP_URI, &challenge, "st");
    let cases = [
        (
            base.replace("code_challenge_method=S256", "code_challenge_method=plain"),
            "invalid_request",
        ),
        (
            base.replace("&code_challenge_method=S256", ""),
            "invalid_request",
        ),
        (
            base.replace(
                &format!("code_challenge={challenge}"),
                "code_challenge=short",
            ),
            "invalid_request",
        ),
        (
            base.replace("response_type=code", "response_type=token"),
            "unsupported_response_type",
        ),
        (base.replace("response_type=code&", ""), "invalid_request"),
        (base.replace("scope=api", "scope=admin"), "invalid_scope"),
    ];
    for (path, error) in cases {
        let page = browser.get(&path).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        let to = page.location().unwrap();
        assert!(to.as_str().starts_with(APP_URI), "{to}");
        let q = query(&to);
        assert_eq!(q["error"], error, "{path}");
        assert_eq!(q["state"], "st");
        assert_eq!(q["iss"], "http://127.0.0.1:8080");
        assert!(!q.contains_key("code"));
    }
}
both!(bad_authorization_requests_are_refused);

async fn codes_are_bound_and_single_use(b: Backend) {
    let (app, admin) = with_admin(b).await;
    let client_id = public_app(&app, &admin).await;
    let name = unique("codes");
    app.register(&name).await;

    // Wrong verifier, wrong redirect URI, another client, garbage: refused; the code still
    // works afterwards for its own client.
    let (_browser, code, verifier) = code_for(&app, &client_id, &name).await;
    let (other_verifier, _) = pkce();
    let other_client = public_app(&app, &admin).await;
    for res in [
        redeem(&app, &client_id, &code, APP_URI, &other_verifier).await,
        redeem(&app, &client_id, &code, APP_URI, "too-short").await,
        redeem(&app, &client_id, &code, NATIVE_URI, &verifier).await,
        redeem(&app, &other_client, &code, APP_URI, &verifier).await,
        redeem(&app, &client_id, "not-a-code", APP_URI, &verifier).await,
    ] {
        assert_oauth_error(res, 400, "invalid_grant").await;
    }
    // A public client never authenticates; an unknown one is no client.
    let res = token(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", APP_URI),
            ("code_verifier", &verifier),
        ],
        Some((&client_id, "a-secret")),
    )
    .await;
    assert_oauth_error(res, 401, "invalid_client").await;
    let res = redeem(
        &app,
        "svc-00000000-0000-0000-0000-000000000000",
        &code,
        APP_URI,
        &verifier,
    )
    .await;
    assert_oauth_error(res, 401, "invalid_client").await;
    let res = redeem(&app, &client_id, &code, APP_URI, &verifier).await;
    assert_eq!(res.status(), StatusCode::OK);

    // Two redemptions at once: exactly one gets tokens.
    let (_browser, code, verifier) = code_for(&app, &client_id, &name).await;
    let both = futures_util::future::join_all(
        (0..4).map(|_| redeem(&app, &client_id, &code, APP_URI, &verifier)),
    )
    .await;
    let ok = both.iter().filter(|r| r.status() == StatusCode::OK).count();
    assert_eq!(ok, 1);

    // An expired code.
    let (_browser, code, verifier) = code_for(&app, &client_id, &name).await;
    let db = app.store().await;
    db.run(|conn| {
        use diesel::prelude::*;
        use tokenauth_store::schema::authorization_codes::dsl;
        diesel::update(dsl::authorization_codes)
            .set(dsl::expires_at.eq(dsl::expires_at - 61))
            .execute(conn)?;
        Ok(())
    })
    .await
    .unwrap();
    let res = redeem(&app, &client_id, &code, APP_URI, &verifier).await;
    assert_oauth_error(res, 400, "invalid_grant").await;

    // A confidential client of the same grant authenticates to redeem.
    let res = app
        .post_auth(
            "/v1/clients",
            &admin,
            Some(
                &json!({"name": "web", "grant_types": ["authorization_code", "refresh_token"],
                "redirect_uris": [APP_URI]}),
            ),
        )
        .await;
    let web: Value = res.json().await.unwrap();
    let (web_id, web_secret) = (
        web["client_id"].as_str().unwrap().to_owned(),
        web["client_secret"].as_str().unwrap().to_owned(),
    );
    let (_browser, code, verifier) = code_for(&app, &web_id, &name).await;
    let res = redeem(&app, &web_id, &code, APP_URI, &verifier).await;
    assert_oauth_error(res, 401, "invalid_client").await;
    let res = token(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", APP_URI),
            ("code_verifier", &verifier),
        ],
        Some((&web_id, &web_secret)),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let tokens: Value = res.json().await.unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    // Its refresh token works only with its secret: not by its id alone, not through the JSON
    // API, not for another client.
    let by_id = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
        ("client_id", web_id.as_str()),
    ];
    assert_oauth_error(token(&app, &by_id, None).await, 401, "invalid_client").await;
    let res = app.refresh(&refresh).await;
    crate::helpers::assert_problem(res, 401, "invalid_refresh_token").await;
    let res = token(
        &app,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        None,
    )
    .await;
    assert_oauth_error(res, 400, "invalid_grant").await;
    let with_secret = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
    ];
    let res = token(&app, &with_secret, Some((&web_id, &web_secret))).await;
    assert_eq!(res.status(), StatusCode::OK);
    // A session of the JSON API is no client's.
    let plain = app.login_ok(&name).await;
    let res = token(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", plain["refresh_token"].as_str().unwrap()),
            ("client_id", client_id.as_str()),
        ],
        None,
    )
    .await;
    assert_oauth_error(res, 400, "invalid_grant").await;
}
both!(codes_are_bound_and_single_use);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_form_refuses_forged_csrf_and_counts_failures() {
    // From an address of its own (the admin's first logins may have failed on the loopback
    // while the bootstrap admin was being made).
    let app = crate::helpers::admin_spawn(Backend::Sqlite)
        .env("TRUSTED_PROXIES", "127.0.0.1")
        .start()
        .await;
    let admin = crate::helpers::admin_token(&app).await;
    let client_id = public_app(&app, &admin).await;
    let name = unique("csrf");
    app.register(&name).await;
    let (_, challenge) = pkce();
    let mut browser = Browser::new(&app);
    browser.forwarded_for = Some("198.51.100.20".into());
    let page = browser
        .get(&authorize_path(&client_id, APP_URI, &challenge, "s"))
        .await;
    let fields = hidden_fields(&page.body);
    let with = |csrf: Option<&str>| {
        let mut pairs: Vec<(String, String)> = fields
            .iter()
            .filter(|(n, _)| n != "csrf_token")
            .cloned()
            .collect();
        if let Some(csrf) = csrf {
            pairs.push(("csrf_token".into(), csrf.into()));
        }
        pairs.push(("username".into(), name.clone()));
        pairs.push(("password".into(), PASSWORD.into()));
        pairs
    };
    let forged = "A".repeat(43);
    for pairs in [with(None), with(Some(&forged)), with(Some(""))] {
        let res = browser.post("/oauth/authorize", &pairs).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN);
        assert!(res.headers.get("location").is_none());
        assert!(!browser.cookies.contains_key("tokenauth_login"));
    }
    // The right token without the cookie (another site's form) is refused too.
    let real = page.input("csrf_token").unwrap();
    let mut stranger = Browser::new(&app);
    let res = stranger.post("/oauth/authorize", &with(Some(&real))).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    // Over plain HTTP an attacker may plant the cookie: a token of its own making that equals
    // the planted cookie, or the browser's own cookie value sent as the token, is still refused.
    let cookie = browser.cookies["tokenauth_csrf"].clone();
    assert_ne!(real, cookie, "the form token is not the cookie's value");
    for (planted, sent) in [
        ("a".to_owned(), "a".to_owned()),
        ("A".repeat(43), "A".repeat(43)),
        (cookie.clone(), cookie.clone()),
    ] {
        let mut victim = Browser::new(&app);
        victim.forwarded_for = Some("198.51.100.21".into());
        victim.cookies.insert("tokenauth_csrf".into(), planted);
        let res = victim.post("/oauth/authorize", &with(Some(&sent))).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{sent}");
        assert!(!victim.cookies.contains_key("tokenauth_login"));
    }

    // Wrong passwords: shown on the page, counted with /v1/login's.
    for _ in 0..5 {
        let res = browser.sign_in(&page, &name, "not the password").await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
        assert!(res.body.contains("Unknown username or wrong password"));
        assert!(res.input("csrf_token").is_some(), "the form again");
    }
    let res = browser.sign_in(&page, &name, PASSWORD).await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers.contains_key("retry-after"));
    let res = app.login(&name, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
}

/// "Log out everywhere" and a password change end login sessions too, even one begun in the
/// same second: the next authorization asks again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_out_everywhere_or_a_new_password_ends_the_login_session() {
    let (app, admin) = with_admin(Backend::Sqlite).await;
    let client_id = public_app(&app, &admin).await;
    let name = unique("everywhere");
    let signed = app.register(&name).await;
    let access = signed["access_token"].as_str().unwrap().to_owned();
    let (_, challenge) = pkce();
    let path = authorize_path(&client_id, APP_URI, &challenge, "s");

    let (mut browser, _, _) = code_for(&app, &client_id, &name).await;
    assert_eq!(browser.get(&path).await.status, StatusCode::SEE_OTHER);
    let res = app.post_auth("/v1/logout/all", &access, None).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(browser.get(&path).await.status, StatusCode::OK);

    let (mut browser, _, _) = code_for(&app, &client_id, &name).await;
    assert_eq!(browser.get(&path).await.status, StatusCode::SEE_OTHER);
    let fresh = app.login_ok(&name).await;
    let res = app
        .client
        .put(app.url("/v1/me/password"))
        .bearer_auth(fresh["access_token"].as_str().unwrap())
        .json(&json!({"current_password": PASSWORD, "new_password": "an entirely new passphrase"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(browser.get(&path).await.status, StatusCode::OK);
}

/// Behind TLS (here: a public https issuer), both cookies are `Secure` and `__Host-` prefixed,
/// so neither a sibling subdomain nor a plain-HTTP response can plant one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_tls_the_cookies_are_host_prefixed_and_secure() {
    let app = crate::helpers::admin_spawn(Backend::Sqlite)
        .env("TOKEN_ISSUER", "https://auth.example.com")
        .start()
        .await;
    let admin = crate::helpers::admin_token(&app).await;
    let client_id = public_app(&app, &admin).await;
    let name = unique("tls");
    app.register(&name).await;
    let mut browser = Browser::new(&app);
    let (_, challenge) = pkce();
    let page = browser
        .get(&authorize_path(&client_id, APP_URI, &challenge, "s"))
        .await;
    let set = |p: &Page| -> Vec<String> {
        p.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    };
    let csrf = set(&page);
    assert!(
        csrf.iter()
            .any(|c| c.starts_with("__Host-tokenauth_csrf=") && c.contains("Secure")),
        "{csrf:?}"
    );
    // A cookie without the prefix (planted) is not the CSRF cookie.
    let mut planted = Browser::new(&app);
    planted
        .cookies
        .insert("tokenauth_csrf".into(), "A".repeat(43));
    let mut pairs = hidden_fields(&page.body);
    for (n, v) in pairs.iter_mut() {
        if n == "csrf_token" {
            *v = "A".repeat(43);
        }
    }
    pairs.push(("username".into(), name.clone()));
    pairs.push(("password".into(), PASSWORD.into()));
    assert_eq!(
        planted.post("/oauth/authorize", &pairs).await.status,
        StatusCode::FORBIDDEN
    );
    let done = browser.sign_in(&page, &name, PASSWORD).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let login = set(&done);
    assert!(
        login
            .iter()
            .any(|c| c.starts_with("__Host-tokenauth_login=") && c.contains("Secure")),
        "{login:?}"
    );
    assert_eq!(
        query(&done.location().unwrap())["iss"],
        "https://auth.example.com"
    );
}

/// What a stolen password or login cookie set up dies with the user's "log out everywhere":
/// a code not yet redeemed is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unredeemed_codes_die_with_logging_out_everywhere() {
    let (app, admin) = with_admin(Backend::Sqlite).await;
    let client_id = public_app(&app, &admin).await;
    let name = unique("pending");
    let signed = app.register(&name).await;
    let (_browser, code, verifier) = code_for(&app, &client_id, &name).await;
    let res = app
        .post_auth(
            "/v1/logout/all",
            signed["access_token"].as_str().unwrap(),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = redeem(&app, &client_id, &code, APP_URI, &verifier).await;
    assert_oauth_error(res, 400, "invalid_grant").await;
}

/// Deleting an app's client ends the sessions it started: its users' tokens are refused.
async fn deleting_a_client_ends_the_sessions_it_started(b: Backend) {
    let (app, admin) = with_admin(b).await;
    let client_id = public_app(&app, &admin).await;
    let name = unique("gone");
    app.register(&name).await;
    let (_browser, code, verifier) = code_for(&app, &client_id, &name).await;
    let res = redeem(&app, &client_id, &code, APP_URI, &verifier).await;
    let tokens: Value = res.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        app.get_auth("/v1/me", access).await.status(),
        StatusCode::OK
    );
    let res = app
        .client
        .delete(app.url(&format!("/v1/clients/{client_id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    crate::helpers::assert_problem(app.get_auth("/v1/me", access).await, 401, "token_revoked")
        .await;
    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ("client_id", client_id.as_str()),
    ];
    assert_oauth_error(token(&app, &refresh, None).await, 400, "invalid_grant").await;
}
both!(deleting_a_client_ends_the_sessions_it_started);
