//! Every endpoint of the resource-service, and its refusals.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, Stack, access, assert_problem, log_lines};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_whoami_and_greeting() {
    let stack = Stack::start().await;
    let user = stack.user().await;
    let token = access(&user);

    let res = stack.get("/v1/secret", Some(&token)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().contains_key("x-request-id"));
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"answer": 42}));
    assert_problem(stack.get("/v1/secret", None).await, 401, "missing_token").await;
    assert_problem(
        stack.get("/v1/secret", Some("nope")).await,
        401,
        "invalid_token",
    )
    .await;

    let who: Value = stack
        .get("/v1/whoami", Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(who["sub"], user["user"]["id"]);
    assert_eq!(who["username"], user["user"]["username"]);
    assert_eq!(who["roles"], json!(["user"]));
    assert_eq!(who["scope"], "api");
    assert_eq!(who["client_id"], "tokenauth");
    assert!(who["session_id"].is_string());
    assert!(who["expires_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(who.as_object().unwrap().len(), 7);

    let anon: Value = stack.get("/v1/greeting", None).await.json().await.unwrap();
    assert_eq!(anon, json!({"logged_in_as": null}));
    let named: Value = stack
        .get("/v1/greeting", Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(named["logged_in_as"], user["user"]["username"]);
    assert_problem(
        stack.get("/v1/greeting", Some("bad.token.here")).await,
        401,
        "invalid_token",
    )
    .await;

    assert_problem(stack.get("/v1/nothing", None).await, 404, "not_found").await;
    let res = stack
        .client
        .post(format!("{}/v1/secret", stack.resource))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["allow"], "GET, HEAD");
    assert_problem(res, 405, "method_not_allowed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_stats_needs_the_admin_role() {
    let stack = Stack::start_with(&[
        ("BOOTSTRAP_ADMIN_USERNAME", "chief".into()),
        ("BOOTSTRAP_ADMIN_PASSWORD", PASSWORD.into()),
    ])
    .await;
    let user = stack.user().await;
    assert_problem(
        stack.get("/v1/admin/stats", Some(&access(&user))).await,
        403,
        "insufficient_role",
    )
    .await;
    let mut admin = None;
    for _ in 0..100 {
        let res = stack
            .client
            .post(format!("{}/v1/login", stack.auth))
            .json(&json!({"username": "chief", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        if res.status() == StatusCode::OK {
            admin = Some(res.json::<Value>().await.unwrap());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let admin = admin.expect("bootstrap admin can log in");
    let res = stack.get("/v1/admin/stats", Some(&access(&admin))).await;
    assert_eq!(res.status(), StatusCode::OK);
    let stats: Value = res.json().await.unwrap();
    assert_eq!(stats["revocations"]["current"], true);
    assert!(stats["uptime_secs"].is_u64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_served_with_their_type_and_never_outside_the_directory() {
    let stack = Stack::start().await;
    let token = access(&stack.user().await);
    std::fs::write(stack.files_dir.join("notes.txt"), "plain text").unwrap();
    std::fs::write(stack.files_dir.join("data.json"), "{\"a\":1}").unwrap();
    std::fs::write(stack.files_dir.join(".hidden"), "hidden").unwrap();
    let outside = stack.files_dir.parent().unwrap().join("outside.txt");
    std::fs::write(&outside, "outside").unwrap();
    std::os::unix::fs::symlink(&outside, stack.files_dir.join("link.txt")).unwrap();
    // Symlinks inside the directory: one to a plain file is served; those whose target is
    // hidden (itself, or inside a hidden directory) are not, by GET or by link.
    std::fs::create_dir(stack.files_dir.join(".secret")).unwrap();
    std::fs::write(stack.files_dir.join(".secret/key.txt"), "key").unwrap();
    std::os::unix::fs::symlink("notes.txt", stack.files_dir.join("alias.txt")).unwrap();
    std::os::unix::fs::symlink(".hidden", stack.files_dir.join("linkhidden")).unwrap();
    std::os::unix::fs::symlink(".secret/key.txt", stack.files_dir.join("linkkey.txt")).unwrap();
    std::os::unix::fs::symlink(
        stack.files_dir.join(".secret"),
        stack.files_dir.join("linkdir"),
    )
    .unwrap();

    let res = stack.get("/v1/files/notes.txt", Some(&token)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(res.text().await.unwrap(), "plain text");
    let res = stack.get("/v1/files/data.json", Some(&token)).await;
    assert_eq!(res.headers()["content-type"], "application/json");
    // An HTML file is served as data: no sniffing, and a sandbox with nothing allowed.
    std::fs::write(
        stack.files_dir.join("page.html"),
        "<script>alert(1)</script>",
    )
    .unwrap();
    let res = stack.get("/v1/files/page.html", Some(&token)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert_eq!(
        res.headers()["content-security-policy"],
        "default-src 'none'; sandbox"
    );

    assert_problem(
        stack.get("/v1/files/notes.txt", None).await,
        401,
        "missing_token",
    )
    .await;
    for path in [
        "/v1/files/..%2Foutside.txt",
        "/v1/files/%2E%2E",
        "/v1/files/..",
        "/v1/files/%2Fetc%2Fpasswd",
        "/v1/files/.hidden",
        "/v1/files/link.txt",
        "/v1/files/missing.txt",
        "/v1/files/notes.txt%00.png",
        "/v1/files/..%5Coutside.txt",
        "/v1/files/linkhidden",
        "/v1/files/linkkey.txt",
        "/v1/files/linkdir",
        "/v1/files/linkdir%2Fkey.txt",
    ] {
        let res = stack.get(path, Some(&token)).await;
        assert_problem(res, 404, "not_found").await;
    }
    let res = stack.get("/v1/files/alias.txt", Some(&token)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.text().await.unwrap(), "plain text");
    for name in ["linkhidden", "linkkey.txt", "link.txt", ".hidden"] {
        let res = stack
            .client
            .post(format!("{}/v1/files/{name}/link", stack.resource))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_problem(res, 404, "not_found").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_links_work_without_a_header_and_refuse_tampering() {
    let stack = Stack::start().await;
    let token = access(&stack.user().await);
    std::fs::write(stack.files_dir.join("report.txt"), "the report").unwrap();
    std::fs::write(stack.files_dir.join("other.txt"), "other").unwrap();

    let res = stack
        .client
        .post(format!("{}/v1/files/report.txt/link", stack.resource))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let link: Value = res.json().await.unwrap();
    let path = link["url"].as_str().unwrap().to_owned();
    assert!(path.starts_with("/v1/files/report.txt?expires="), "{path}");
    let url = format!("{}{path}", stack.resource);
    let expires_at = time::OffsetDateTime::parse(
        link["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let left = expires_at - time::OffsetDateTime::now_utc();
    assert!(left <= time::Duration::minutes(5) && left > time::Duration::minutes(4));

    let res = stack.client.get(&url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.text().await.unwrap(), "the report");

    let (base, query) = url.split_once('?').unwrap();
    let params: Vec<(&str, &str)> = query
        .split('&')
        .map(|kv| kv.split_once('=').unwrap())
        .collect();
    let expires: i64 = params
        .iter()
        .find(|(k, _)| *k == "expires")
        .unwrap()
        .1
        .parse()
        .unwrap();
    let sig = params.iter().find(|(k, _)| *k == "sig").unwrap().1;
    let mut flipped = sig.to_owned();
    let last = flipped.pop().unwrap();
    flipped.push(if last == 'A' { 'B' } else { 'A' });
    for bad in [
        format!("{base}?expires={expires}&sig={flipped}"),
        format!("{base}?expires={}&sig={sig}", expires + 60),
        format!("{base}?expires={}&sig={sig}", expires - 1),
        base.replace("report.txt", "other.txt") + &format!("?expires={expires}&sig={sig}"),
        format!("{base}?expires={expires}"),
        format!("{base}?sig={sig}"),
        format!("{base}?expires=soon&sig={sig}"),
    ] {
        let res = stack.client.get(&bad).send().await.unwrap();
        assert!(
            res.status().is_client_error(),
            "{bad} answered {}",
            res.status()
        );
        assert_ne!(res.status(), StatusCode::OK);
    }
    // A link needs a token to be made, and only for a file that exists.
    let res = stack
        .client
        .post(format!("{}/v1/files/report.txt/link", stack.resource))
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "missing_token").await;
    let res = stack
        .client
        .post(format!("{}/v1/files/..%2Fauth.db/link", stack.resource))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_problem(res, 404, "not_found").await;
}

/// Link URLs come from configuration, never from what the client says the host or scheme is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_urls_ignore_forwarding_and_host_headers() {
    let stack = Stack::start().await;
    let token = access(&stack.user().await);
    std::fs::write(stack.files_dir.join("report.txt"), "the report").unwrap();
    let spoofed = [
        ("x-forwarded-host", "attacker.example"),
        ("x-forwarded-proto", "javascript"),
        ("forwarded", "host=attacker.example;proto=javascript"),
        ("host", "attacker.example"),
    ];
    for headers in [&spoofed[..], &spoofed[..2], &spoofed[2..3], &spoofed[3..]] {
        let mut req = stack
            .client
            .post(format!("{}/v1/files/report.txt/link", stack.resource))
            .bearer_auth(&token);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let link: Value = res.json().await.unwrap();
        let url = link["url"].as_str().unwrap();
        // No base configured: a path relative to the service the client called.
        assert!(url.starts_with("/v1/files/report.txt?expires="), "{url}");
        assert!(
            !url.contains("attacker") && !url.contains("javascript"),
            "{url}"
        );
        let res = stack
            .client
            .get(format!("{}{url}", stack.resource))
            .send()
            .await
            .unwrap();
        assert_eq!(res.text().await.unwrap(), "the report");
    }
}

/// With `PUBLIC_BASE_URL`, links are absolute under it (its path kept), whatever the headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_urls_use_the_public_base_url() {
    let stack =
        Stack::start_with(&[("PUBLIC_BASE_URL", "https://Files.Example.com/api/".into())]).await;
    let token = access(&stack.user().await);
    std::fs::write(stack.files_dir.join("a b.txt"), "spaced").unwrap();
    let res = stack
        .client
        .post(format!("{}/v1/files/a%20b.txt/link", stack.resource))
        .bearer_auth(&token)
        .header("x-forwarded-host", "attacker.example")
        .header("x-forwarded-proto", "http")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let link: Value = res.json().await.unwrap();
    let url = link["url"].as_str().unwrap();
    let rest = url
        .strip_prefix("https://files.example.com/api/v1/files/a%20b.txt?expires=")
        .unwrap_or_else(|| panic!("{url}"));
    // The same path and query work against the service itself.
    let res = stack
        .client
        .get(format!(
            "{}/v1/files/a%20b.txt?expires={rest}",
            stack.resource
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.text().await.unwrap(), "spaced");
}

/// Issuing a link is logged with the client's address, resolved through `TRUSTED_PROXIES`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_issuance_is_logged_with_the_resolved_client_address() {
    for (trusted, expected) in [("127.0.0.1", "203.0.113.9"), ("10.9.9.9", "127.0.0.1")] {
        let stack = Stack::start_with(&[("TRUSTED_PROXIES", trusted.into())]).await;
        let user = stack.user().await;
        std::fs::write(stack.files_dir.join("report.txt"), "the report").unwrap();
        let res = stack
            .client
            .post(format!("{}/v1/files/report.txt/link", stack.resource))
            .bearer_auth(access(&user))
            .header("x-forwarded-for", "junk, 203.0.113.9:4711")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let link: Value = res.json().await.unwrap();
        let sig = link["url"]
            .as_str()
            .unwrap()
            .rsplit("sig=")
            .next()
            .unwrap()
            .to_owned();
        let sub = user["user"]["id"].as_str().unwrap();
        let lines = log_lines();
        let line = lines
            .iter()
            .find(|l| {
                l["fields"]["message"] == "signed file link issued" && l["fields"]["sub"] == sub
            })
            .unwrap_or_else(|| panic!("no link line for {sub}"));
        assert_eq!(line["fields"]["client_ip"], expected, "trusting {trusted}");
        assert!(
            !line.to_string().contains(&sig),
            "the signature is a credential"
        );
    }
}

/// HEAD answers like GET without a body, on every GET endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_answers_like_get_without_a_body() {
    let stack = Stack::start().await;
    let token = access(&stack.user().await);
    std::fs::write(stack.files_dir.join("notes.txt"), "plain text").unwrap();
    for (path, token) in [
        ("/healthz", None),
        ("/readyz", None),
        ("/v1/secret", Some(token.as_str())),
        ("/v1/whoami", Some(token.as_str())),
        ("/v1/greeting", None),
        ("/v1/files/notes.txt", Some(token.as_str())),
    ] {
        let url = format!("{}{path}", stack.resource);
        let send = |method: reqwest::Method| {
            let mut req = stack.client.request(method, &url);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            req.send()
        };
        let get = send(reqwest::Method::GET).await.unwrap();
        let head = send(reqwest::Method::HEAD).await.unwrap();
        assert_eq!(get.status(), StatusCode::OK, "{path}");
        assert_eq!(head.status(), StatusCode::OK, "{path}");
        assert_eq!(
            head.headers()["content-type"],
            get.headers()["content-type"],
            "{path}"
        );
        let len = get.bytes().await.unwrap().len();
        assert_eq!(
            head.headers()["content-length"],
            len.to_string().as_str(),
            "{path}"
        );
        assert!(head.bytes().await.unwrap().is_empty(), "{path}");
    }
    let res = stack
        .client
        .head(format!("{}/v1/secret", stack.resource))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(res.headers().contains_key("www-authenticate"));
    let res = stack
        .client
        .head(format!("{}/v1/files/notes.txt/link", stack.resource))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(res.headers()["allow"], "POST");
}

/// The resource-service refuses a preflight from an unlisted origin with problem details too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_preflights_are_problem_details() {
    let stack =
        Stack::start_with(&[("CORS_ALLOWED_ORIGINS", "https://app.example.com".into())]).await;
    let preflight = |origin: &'static str| {
        stack
            .client
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/v1/secret", stack.resource),
            )
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let ok = preflight("https://app.example.com").await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let res = preflight("https://evil.example.com").await.unwrap();
    assert!(!res.headers().contains_key("access-control-allow-origin"));
    assert_problem(res, 400, "invalid_request").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_malformed_and_oversized_tokens_are_invalid_token() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};

    let stack = Stack::start().await;
    let token = access(&stack.user().await);
    let parts: Vec<&str> = token.split('.').collect();
    let header: Value = serde_json::from_slice(&B64.decode(parts[0]).unwrap()).unwrap();
    let mut claims: Value = serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
    let kid = header["kid"].as_str().unwrap().to_owned();
    let jwks: Value = stack
        .client
        .get(format!("{}/.well-known/jwks.json", stack.auth))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let x = jwks["keys"][0]["x"].as_str().unwrap().to_owned();

    let mut hs = Header::new(Algorithm::HS256);
    hs.typ = Some("at+jwt".into());
    hs.kid = Some(kid.clone());
    let with_public_key =
        jsonwebtoken::encode(&hs, &claims, &EncodingKey::from_secret(x.as_bytes())).unwrap();
    let with_public_key_raw = jsonwebtoken::encode(
        &hs,
        &claims,
        &EncodingKey::from_secret(&B64.decode(&x).unwrap()),
    )
    .unwrap();
    let other = tokenauth_jwt::SigningKey::ed25519_from_pem(
        &tokenauth_jwt::SigningKey::generate_ed25519_pem().unwrap(),
    )
    .unwrap();
    let other_signed = other[0]
        .sign(&serde_json::from_value(claims.clone()).unwrap())
        .unwrap();
    let other_sig = other_signed.rsplit('.').next().unwrap();
    let none = format!(
        "{}.{}.",
        B64.encode(format!(r#"{{"alg":"none","typ":"at+jwt","kid":"{kid}"}}"#)),
        parts[1]
    );
    claims["roles"] = json!(["admin"]);
    let changed_payload = format!(
        "{}.{}.{}",
        parts[0],
        B64.encode(serde_json::to_vec(&claims).unwrap()),
        parts[2]
    );
    let jwt_typ = format!(
        "{}.{}.{}",
        B64.encode(format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{kid}"}}"#)),
        parts[1],
        parts[2]
    );
    let cases = [
        (none, "alg none"),
        (with_public_key, "HS256 keyed with the public key"),
        (with_public_key_raw, "HS256 keyed with the raw public key"),
        (
            format!("{}.{}.{other_sig}", parts[0], parts[1]),
            "another key's signature",
        ),
        (changed_payload, "changed payload"),
        (format!("{}.{}.", parts[0], parts[1]), "stripped signature"),
        (format!("{}.{}", parts[0], parts[1]), "two parts"),
        (token[..token.len() - 10].to_owned(), "truncated"),
        (
            format!("{}.{}.{}", parts[0], "@@@", parts[2]),
            "wrongly encoded",
        ),
        (jwt_typ, "typ JWT"),
        (format!("{token}{}", "A".repeat(9000)), "oversized"),
        ("\u{00e9}t\u{00e9}".to_owned(), "not ASCII"),
    ];
    for (bad, why) in cases {
        let res = stack.get("/v1/secret", Some(&bad)).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{why}");
        let body = assert_problem(res, 401, "invalid_token").await;
        assert!(body["detail"].is_string(), "{why}");
    }
    // The real token still works: nothing above poisoned the cache.
    assert_eq!(
        stack.get("/v1/secret", Some(&token)).await.status(),
        StatusCode::OK
    );
}

/// A metric's value in a Prometheus text answer (`name{labels}` exactly), if present.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_services_expose_prometheus_metrics() {
    let stack = Stack::start().await;
    let scrape = |base: String| {
        let client = stack.client.clone();
        async move {
            let res = client.get(format!("{base}/metrics")).send().await.unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            assert!(
                res.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("text/plain; version=0.0.4")
            );
            res.text().await.unwrap()
        }
    };
    let before = scrape(stack.resource.clone()).await;
    let verified = |text: &str| metric(text, "tokenauth_tokens_verified_total").unwrap_or(0.0);
    let token = access(&stack.user().await);
    assert_eq!(stack.get("/v1/secret", Some(&token)).await.status(), 200);
    assert_eq!(stack.get("/v1/secret", Some(&token)).await.status(), 200);
    assert_eq!(
        stack.get("/v1/secret", Some("not.a.token")).await.status(),
        401
    );
    let res = stack
        .client
        .post(format!("{}/v1/logout", stack.auth))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let resource = scrape(stack.resource.clone()).await;
    let auth = scrape(stack.auth.clone()).await;
    // Every line is a comment or `name{labels} value`.
    for line in resource.lines().chain(auth.lines()) {
        assert!(
            line.starts_with('#')
                || line
                    .rsplit_once(' ')
                    .is_some_and(|(_, v)| v.parse::<f64>().is_ok()),
            "not Prometheus text: {line}"
        );
    }
    assert!(verified(&resource) >= verified(&before) + 2.0, "{resource}");
    for series in [
        r#"http_requests_total{method="GET",route="/v1/secret",status="200"}"#,
        r#"http_requests_total{method="GET",route="/v1/secret",status="401"}"#,
        r#"tokenauth_tokens_refused_total{reason="invalid_token"}"#,
        r#"http_request_duration_seconds_count{route="/v1/secret"}"#,
        r#"tokenauth_revocation_mirror{value="seq"}"#,
        r#"tokenauth_revocation_mirror{value="current"}"#,
        r#"tokenauth_revocation_mirror{value="lag_ms"}"#,
    ] {
        assert!(
            metric(&resource, series).is_some_and(|v| v >= 1.0 || series.contains("lag")),
            "{series} in\n{resource}"
        );
    }
    for series in [
        r#"tokenauth_tokens_issued_total{type="access"}"#,
        r#"tokenauth_tokens_issued_total{type="refresh"}"#,
        r#"tokenauth_revocations_written_total{kind="sid"}"#,
        r#"http_requests_total{method="POST",route="/v1/register",status="201"}"#,
        r#"tokenauth_auth_service{value="db_connections"}"#,
        r#"tokenauth_auth_service{value="redis_connected"}"#,
    ] {
        assert!(
            metric(&auth, series).is_some_and(|v| v >= 1.0),
            "{series} in\n{auth}"
        );
    }
    for series in [
        r#"tokenauth_auth_service{value="argon2_running"}"#,
        r#"tokenauth_auth_service{value="argon2_waiting"}"#,
    ] {
        assert!(metric(&auth, series).is_some(), "{series} in\n{auth}");
    }
    // No raw path (a user id, a file name) ever becomes a label.
    assert!(!auth.contains("route=\"/v1/users/0"), "{auth}");
}
