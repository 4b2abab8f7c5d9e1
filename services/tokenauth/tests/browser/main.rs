//! The browser tests: headless Chromium (Debian's `chromium` and `chromium-driver`, which the
//! test command installs) driven over WebDriver with fantoccini, through the example app in
//! `examples/browser-app`, the auth-service's login page and its device page. They fail, never
//! skip, when Chromium cannot be started.
//!
//! With `TOKENAUTH_SCREENSHOTS=<dir>` set, they also save the login page and the device page as
//! PNGs there (`scripts/screenshots` does that for the README).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tokenauth_testkit::auth::{Backend, HS_SECRET, PASSWORD, Spawn};
use tokenauth_testkit::{TempDir, free_port, wait_ready};

mod tour;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver on a free port; killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn browser() -> (Driver, Client) {
    for path in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            std::path::Path::new(path).exists(),
            "{path} is missing: install Debian's chromium and chromium-driver (scripts/test does)"
        );
    }
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver must start");
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1000,800"],
        }),
    );
    let started = Instant::now();
    loop {
        let connected = ClientBuilder::rustls()
            .expect("a TLS setup for the WebDriver client")
            .capabilities(caps.clone())
            .connect(&driver.url)
            .await;
        match connected {
            Ok(client) => return (driver, client),
            Err(e) => {
                assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "Chromium could not be started through chromedriver: {e}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// The auth-service and the resource-service in this process (sharing a revocation mirror, as
/// the all-in-one binary does), the example app served from `examples/browser-app` with its
/// `config.json`, and a public client registered for it.
struct Stack {
    auth: String,
    resource: String,
    app: String,
    client_id: String,
    admin: String,
    _dir: TempDir,
}

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/browser-app")
}

async fn stack() -> Stack {
    let dir = TempDir::new();
    // The app's origin first: both services must allow it.
    let app_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let app = format!("http://{}", app_listener.local_addr().unwrap());
    let auth_app = Spawn::new(Backend::Sqlite)
        .env("JWT_ALGORITHM", "HS256")
        .env("JWT_SECRET", HS_SECRET)
        .env("CORS_ALLOWED_ORIGINS", &app)
        .env("BOOTSTRAP_ADMIN_USERNAME", "root")
        .env("BOOTSTRAP_ADMIN_PASSWORD", PASSWORD)
        .build(&format!("sqlite://{}/auth.db", dir.display()), dir.path())
        .await;
    let mirror = auth_app.revocation_mirror();
    let auth = auth_app.base_url();
    tokio::spawn(auth_app.run_until_stopped());
    let vars: std::collections::HashMap<String, String> = [
        ("BIND_ADDR", "127.0.0.1:0".to_owned()),
        ("JWT_ALGORITHM", "HS256".to_owned()),
        ("JWT_SECRET", HS_SECRET.to_owned()),
        ("CORS_ALLOWED_ORIGINS", app.clone()),
        ("FILES_DIR", dir.join("files").display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let config = resource_service::config::ResourceConfig::from_source(&vars).unwrap();
    let resource_app = resource_service::Application::build(config, mirror)
        .await
        .unwrap();
    let resource = resource_app.base_url();
    tokio::spawn(resource_app.run_until_stopped());
    let http = reqwest::Client::new();
    wait_ready(&http, &auth, Duration::from_secs(10)).await;
    wait_ready(&http, &resource, Duration::from_secs(10)).await;

    let admin = admin_token(&http, &auth).await;
    let res = http
        .post(format!("{auth}/v1/clients"))
        .bearer_auth(&admin)
        .json(&json!({
            "name": "Example App",
            "public": true,
            "grant_types": ["authorization_code", "refresh_token",
                            "urn:ietf:params:oauth:grant-type:device_code"],
            "redirect_uris": [format!("{app}/index.html")],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let client_id = res.json::<Value>().await.unwrap()["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = http
        .post(format!("{auth}/v1/register"))
        .json(&json!({"username": "alice", "email": "alice@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);

    // The example app, served as it is, with the configuration for this stack.
    let config = json!({
        "auth_url": auth,
        "issuer": "http://127.0.0.1:8080",
        "resource_url": resource,
        "client_id": client_id,
    });
    let server = actix_web::HttpServer::new(move || {
        let config = config.clone();
        actix_web::App::new()
            .route(
                "/config.json",
                actix_web::web::get()
                    .to(move || std::future::ready(actix_web::HttpResponse::Ok().json(&config))),
            )
            .service(actix_files::Files::new("/", examples_dir()).index_file("index.html"))
    })
    .workers(1)
    .listen(app_listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    Stack {
        auth,
        resource,
        app,
        client_id,
        admin,
        _dir: dir,
    }
}

async fn admin_token(http: &reqwest::Client, auth: &str) -> String {
    for _ in 0..500 {
        let res = http
            .post(format!("{auth}/v1/login"))
            .json(&json!({"username": "root", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        if res.status() == 200 {
            return res.json::<Value>().await.unwrap()["access_token"]
                .as_str()
                .unwrap()
                .to_owned();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no bootstrap admin");
}

/// Waits until the element's text contains `expected`.
async fn wait_for_text(c: &Client, css: &str, expected: &str) -> String {
    let started = Instant::now();
    loop {
        if let Ok(element) = c.find(Locator::Css(css)).await
            && let Ok(text) = element.text().await
            && text.contains(expected)
        {
            return text;
        }
        if started.elapsed() > Duration::from_secs(15) {
            let source = c.source().await.unwrap_or_default();
            let at = c
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default();
            panic!("{css} never said {expected:?} (at {at}):\n{source}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A counter of the auth-service's `/metrics`.
async fn metric(auth: &str, series: &str) -> f64 {
    let text = reqwest::get(format!("{auth}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn screenshot(c: &Client, name: &str) {
    if let Ok(dir) = std::env::var("TOKENAUTH_SCREENSHOTS") {
        let png = c.screenshot().await.unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(PathBuf::from(dir).join(name), png).unwrap();
    }
}

async fn fill(c: &Client, name: &str, value: &str) {
    let input = c
        .find(Locator::Css(&format!("input[name={name}]")))
        .await
        .unwrap();
    input.clear().await.unwrap();
    input.send_keys(value).await.unwrap();
}

async fn submit(c: &Client) {
    c.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_app_signs_in_calls_refreshes_and_signs_out_in_a_real_browser() {
    let s = stack().await;
    let (_driver, c) = browser().await;
    c.goto(&format!("{}/index.html", s.app)).await.unwrap();
    wait_for_text(&c, "#status", "Signed out").await;

    // Sign in: the app sends the browser to the auth-service's login page.
    c.find(Locator::Css("#sign-in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(&c, "h1", "Sign in").await;
    let at = c.current_url().await.unwrap();
    assert!(
        at.as_str()
            .starts_with(&format!("{}/oauth/authorize?", s.auth)),
        "{at}"
    );
    assert!(c.source().await.unwrap().contains("Example App"));
    screenshot(&c, "login.png").await;

    // A wrong password: shown on the page, and counted.
    let failed = r#"tokenauth_audit_events_total{event="login_failed"}"#;
    let before = metric(&s.auth, failed).await;
    fill(&c, "username", "alice").await;
    fill(&c, "password", "not the password").await;
    submit(&c).await;
    wait_for_text(&c, ".error", "Unknown username or wrong password").await;
    assert_eq!(metric(&s.auth, failed).await, before + 1.0);

    // The right one (by email): back in the app, which calls the resource-service across
    // origins with the access token.
    fill(&c, "username", "alice@example.com").await;
    fill(&c, "password", PASSWORD).await;
    submit(&c).await;
    wait_for_text(&c, "#status", "Signed in as alice").await;
    let whoami = c
        .find(Locator::Css("#whoami"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let whoami: Value = serde_json::from_str(&whoami).unwrap();
    assert_eq!(whoami["client_id"], s.client_id.as_str());
    assert!(c.current_url().await.unwrap().as_str().starts_with(&s.app));
    // No password ever reached the app's origin: its pages hold none.
    assert!(!c.source().await.unwrap().contains(PASSWORD));

    // Refresh: a new pair through the token endpoint, across origins.
    c.find(Locator::Css("#refresh"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(&c, "#status", "(refreshed)").await;

    // Sign out: the app's session is revoked; its old access token is refused.
    let access: String = c
        .execute("return sessionStorage.getItem('access_token')", vec![])
        .await
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned();
    c.find(Locator::Css("#sign-out"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(&c, "#status", "Signed out").await;
    let refused = reqwest::Client::new()
        .get(format!("{}/v1/whoami", s.resource))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    // Signing in again skips the form: the login session answers at once.
    let posts = r#"http_requests_total{method="POST",route="/oauth/authorize",status="303"}"#;
    let posted = metric(&s.auth, posts).await;
    assert_eq!(posted, 1.0, "the first sign-in posted the form once");
    c.find(Locator::Css("#sign-in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(&c, "#status", "Signed in as alice").await;
    assert_eq!(
        metric(&s.auth, posts).await,
        posted,
        "the form was shown again"
    );
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_forms_and_unregistered_redirects_go_nowhere() {
    let s = stack().await;
    let (_driver, c) = browser().await;
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let authorize = |redirect_uri: &str| {
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("response_type", "code"),
                ("client_id", s.client_id.as_str()),
                ("redirect_uri", redirect_uri),
                ("code_challenge", challenge),
                ("code_challenge_method", "S256"),
                ("state", "st"),
            ])
            .finish();
        format!("{}/oauth/authorize?{query}", s.auth)
    };

    // An unregistered redirect URI: an error page, and the browser stays on the auth-service.
    c.goto(&authorize("https://evil.example.com/steal"))
        .await
        .unwrap();
    wait_for_text(&c, "h1", "Cannot sign in").await;
    let at = c.current_url().await.unwrap();
    assert!(at.as_str().starts_with(&s.auth), "{at}");

    // A forged CSRF token, then none: refused, no redirect, no login session.
    let registered = format!("{}/index.html", s.app);
    for script in [
        "document.querySelector('input[name=csrf_token]').value = 'A'.repeat(43)",
        "document.querySelector('input[name=csrf_token]').remove()",
    ] {
        c.goto(&authorize(&registered)).await.unwrap();
        wait_for_text(&c, "h1", "Sign in").await;
        c.execute(script, vec![]).await.unwrap();
        fill(&c, "username", "alice").await;
        fill(&c, "password", PASSWORD).await;
        submit(&c).await;
        wait_for_text(&c, ".error", "not sent from this site").await;
        assert!(c.current_url().await.unwrap().as_str().starts_with(&s.auth));
        let cookies = c.get_all_cookies().await.unwrap();
        assert!(cookies.iter().all(|k| k.name() != "tokenauth_login"));
    }
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_is_approved_and_denied_from_the_page() {
    let s = stack().await;
    let (_driver, c) = browser().await;
    let http = reqwest::Client::new();
    let start = || async {
        let res = http
            .post(format!("{}/oauth/device_authorization", s.auth))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("client_id={}", s.client_id))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.json::<Value>().await.unwrap()
    };
    let poll = |device_code: String| {
        let http = http.clone();
        let (auth, client_id) = (s.auth.clone(), s.client_id.clone());
        async move {
            let body = form_urlencoded::Serializer::new(String::new())
                .extend_pairs([
                    ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                    ("device_code", device_code.as_str()),
                    ("client_id", client_id.as_str()),
                ])
                .finish();
            http.post(format!("{auth}/oauth/token"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };

    // Approve: the page asks for a login (no login session yet) with the code filled in.
    let codes = start().await;
    let page = codes["verification_uri_complete"]
        .as_str()
        .unwrap()
        .replace("http://127.0.0.1:8080", &s.auth);
    c.goto(&page).await.unwrap();
    wait_for_text(&c, "h1", "Connect a device").await;
    let shown = c
        .find(Locator::Css("input[name=user_code]"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(shown.as_deref(), codes["user_code"].as_str());
    // The client asking is named before anything is approved (RFC 8628 §5.4).
    wait_for_text(&c, "main", "is asking to sign in").await;
    fill(&c, "username", "alice").await;
    fill(&c, "password", PASSWORD).await;
    screenshot(&c, "device.png").await;
    c.find(Locator::Css("button[value=approve]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(&c, "h1", "Device connected").await;
    let res = poll(codes["device_code"].as_str().unwrap().to_owned()).await;
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.unwrap();
    assert!(tokens["access_token"].is_string());

    // Deny, with the login session now: only the code is asked for.
    let codes = start().await;
    c.goto(&format!("{}/device", s.auth)).await.unwrap();
    wait_for_text(&c, "main", "Signed in as alice").await;
    assert!(c.find(Locator::Css("input[name=password]")).await.is_err());
    fill(&c, "user_code", codes["user_code"].as_str().unwrap()).await;
    c.find(Locator::Css("button[value=deny]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(&c, "h1", "Request denied").await;
    let res = poll(codes["device_code"].as_str().unwrap().to_owned()).await;
    assert_eq!(res.status(), 400);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "access_denied");
    let _ = &s.admin;
    c.close().await.unwrap();
}

/// `tokenauth --help` (and any argument it does not know) answers and exits: nothing starts,
/// and no `./data` is written where it was run.
#[test]
fn help_and_unknown_arguments_start_nothing() {
    let dir = std::env::temp_dir().join(format!("tokenauth-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = |arg: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tokenauth"))
            .arg(arg)
            .current_dir(&dir)
            .env("BIND_ADDR", "127.0.0.1:1")
            .output()
            .unwrap()
    };
    let help = run("--help");
    assert!(help.status.success(), "{help:?}");
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("Usage: tokenauth"), "{text}");
    assert!(text.contains("RESOURCE_BIND_ADDR"), "{text}");
    let unknown = run("--no-such-flag");
    assert!(!unknown.status.success(), "{unknown:?}");
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("--no-such-flag"),
        "{unknown:?}"
    );
    assert!(!dir.join("data").exists(), "a data directory was written");
    let _ = std::fs::remove_dir_all(&dir);
}
