//! `GET /openapi.json` and `GET /docs` on both services: the document names every endpoint of
//! the endpoint tables of docs/api.md with the auth the table gives it, every path it names is
//! served, it passes an OpenAPI 3.1 validator, and the docs page loads only its own files.

use std::collections::BTreeSet;
use std::path::Path;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Stack, TempDir};

const API_REFERENCE: &str = include_str!("../../../../docs/api.md");

/// One row of an endpoint table of docs/api.md: each `METHOD /path` of its first cell, and its
/// auth cell.
struct Row {
    endpoints: Vec<(String, String)>,
    auth: String,
}

/// The rows of the table under `## {heading}`.
fn documented_table(heading: &str) -> Vec<Row> {
    let section = API_REFERENCE
        .split(&format!("\n## {heading}\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("docs/api.md has no section {heading}"));
    let rows: Vec<Row> = section
        .lines()
        .skip_while(|l| !l.starts_with("| method, path |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let endpoints = cells[1]
                .split('`')
                .skip(1)
                .step_by(2)
                .map(|e| {
                    let (method, path) = e.split_once(' ').unwrap();
                    let path = path.split('?').next().unwrap();
                    (method.to_lowercase(), path.to_owned())
                })
                .collect();
            Row {
                endpoints,
                auth: cells[2].to_owned(),
            }
        })
        .collect();
    assert!(
        rows.len() >= 5,
        "docs/api.md table under {heading} not found"
    );
    rows
}

async fn fetch_document(stack: &Stack, base: &str) -> Value {
    let res = stack
        .client
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let doc: Value = res.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    doc
}

/// The security requirements of an operation: `bearer` required, optional, or none.
fn security(op: &Value) -> BTreeSet<String> {
    op["security"]
        .as_array()
        .map(|reqs| {
            reqs.iter()
                .map(|r| {
                    let names: Vec<&String> = r.as_object().unwrap().keys().collect();
                    match names.as_slice() {
                        [] => "none".to_owned(),
                        [name] => (*name).clone(),
                        _ => panic!("one scheme per requirement: {r}"),
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Each endpoint of the table is in the document, with the auth the table gives it; the
/// document has nothing the table does not list.
fn matches_readme(doc: &Value, rows: &[Row], service: &str) {
    let mut listed = BTreeSet::new();
    for row in rows {
        for (method, path) in &row.endpoints {
            listed.insert((path.clone(), method.clone()));
            let op = &doc["paths"][path][method];
            assert!(
                op.is_object(),
                "{service}: docs/api.md lists {method} {path}, the document does not"
            );
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{service}: {method} {path} has no responses"
            );
            let schemes = security(op);
            let auth = row.auth.as_str();
            if auth.starts_with('–') {
                assert!(
                    schemes.is_empty() || schemes.contains("none"),
                    "{service}: {method} {path} needs no credentials, the document says {schemes:?}"
                );
                assert!(!schemes.contains("bearer"), "{service}: {method} {path}");
            } else if auth.starts_with("optional") || auth.contains(" or ") {
                assert!(
                    schemes.contains("bearer") && schemes.contains("none"),
                    "{service}: {method} {path} takes an optional token: {schemes:?}"
                );
            } else if auth.contains("client auth") {
                assert!(
                    schemes.contains("client_basic"),
                    "{service}: {method} {path} takes client auth: {schemes:?}"
                );
            } else {
                assert!(
                    auth.contains("access token") || auth.contains("admin"),
                    "unexpected auth cell {auth}"
                );
                assert_eq!(
                    schemes,
                    BTreeSet::from(["bearer".to_owned()]),
                    "{service}: {method} {path} needs a token"
                );
            }
        }
    }
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |m| (path.clone(), m.clone()))
        })
        .collect();
    assert_eq!(
        documented, listed,
        "{service}: the document and the table in docs/api.md differ"
    );
}

/// Every documented operation is routed: a bare request (no token, no body) is answered by the
/// endpoint, never 404 for an unknown path or 405 for an unrouted method.
async fn every_operation_is_served(stack: &Stack, base: &str, doc: &Value) {
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete = path
            .replace("{id}", "0193b3c5-7a4e-7c1d-9d7e-8f4a2b1c0d9e")
            .replace("{client_id}", "unknown-client")
            .replace("{name}", "missing.txt");
        for method in item.as_object().unwrap().keys() {
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let res = stack
                .client
                .request(method.clone(), format!("{base}{concrete}"))
                .send()
                .await
                .unwrap();
            let status = res.status();
            assert!(
                status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} (as {concrete}) answered {status}"
            );
        }
    }
}

/// Runs `command`: its success, and its output and errors as one report.
fn report_of(mut command: std::process::Command) -> (bool, String) {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), report)
}

/// Runs `scripts/openapi-validate` (openapi-spec-validator) on `files`: its success and report.
fn run_validator(files: &[String]) -> (bool, String) {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/openapi-validate"
    );
    let mut command = std::process::Command::new(script);
    command.args(files);
    report_of(command)
}

/// The reference validator on the documents as served.
fn validate(dir: &Path, docs: &[(&str, &Value)]) {
    let files: Vec<String> = docs
        .iter()
        .map(|(name, doc)| {
            let file = dir.join(format!("{name}.openapi.json"));
            std::fs::write(&file, serde_json::to_vec_pretty(doc).unwrap()).unwrap();
            file.display().to_string()
        })
        .collect();
    let (valid, report) = run_validator(&files);
    assert!(valid, "the validator refused:\n{report}");
    assert_eq!(
        report.matches(": valid OpenAPI 3.1.0").count(),
        docs.len(),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_documents_cover_the_readme_tables_and_pass_a_validator() {
    let stack = Stack::start().await;
    let auth = fetch_document(&stack, &stack.auth).await;
    let resource = fetch_document(&stack, &stack.resource).await;

    matches_readme(
        &auth,
        &documented_table("auth-service endpoints"),
        "auth-service",
    );
    matches_readme(
        &resource,
        &documented_table("resource-service endpoints"),
        "resource-service",
    );
    every_operation_is_served(&stack, &stack.auth, &auth).await;
    every_operation_is_served(&stack, &stack.resource, &resource).await;

    for doc in [&auth, &resource] {
        let schemes = &doc["components"]["securitySchemes"];
        assert_eq!(schemes["bearer"]["scheme"], "bearer");
        assert_eq!(schemes["bearer"]["bearerFormat"], "JWT");
        // The problem-details schema names every code the error table of docs/api.md lists.
        let codes = doc["components"]["schemas"]["Problem"]["properties"]["code"]["enum"]
            .as_array()
            .unwrap();
        for code in ["token_revoked", "validation_failed", "rate_limited"] {
            assert!(codes.iter().any(|c| c == code), "{code}");
        }
        let unauthorized = &doc["components"]["responses"]["Unauthorized"];
        assert_eq!(
            unauthorized["content"]["application/problem+json"]["schema"]["$ref"],
            "#/components/schemas/Problem"
        );
    }
    assert_eq!(
        auth["components"]["securitySchemes"]["client_basic"]["scheme"],
        "basic"
    );
    // Form bodies are documented as forms.
    assert!(
        auth["paths"]["/oauth/token"]["post"]["requestBody"]["content"]
            ["application/x-www-form-urlencoded"]
            .is_object()
    );

    let dir = TempDir::new();
    validate(dir.path(), &[("auth", &auth), ("resource", &resource)]);
}

/// A deliberately broken document is refused, so the validator can fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_validator_refuses_a_broken_document() {
    let stack = Stack::start().await;
    let mut doc = fetch_document(&stack, &stack.resource).await;
    doc["paths"]["/v1/secret"]["get"]["responses"]["200"] = serde_json::json!({"content": 5});
    let dir = TempDir::new();
    let file = dir.path().join("broken.json");
    std::fs::write(&file, serde_json::to_vec(&doc).unwrap()).unwrap();
    let (valid, report) = run_validator(&[file.display().to_string()]);
    assert!(!valid, "{report}");
    assert!(
        report.contains("/v1/secret"),
        "the error names the path: {report}"
    );
}

/// `/docs` is Swagger UI from the service itself: every file the page loads is served here, it
/// reads this service's document, and it reaches for nothing elsewhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_page_is_served_whole_and_offline() {
    let stack = Stack::start().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for base in [&stack.auth, &stack.resource] {
        let res = client.get(format!("{base}/docs")).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(res.headers()["location"], "/docs/");

        let res = client.get(format!("{base}/docs/")).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let csp = res.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.contains("default-src 'self'"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        let page = res.text().await.unwrap();
        assert!(page.contains("swagger-ui"), "{page}");
        assert!(!page.contains("<script>"), "no inline script: {page}");

        // Every src= and href= of the page is a file of this service.
        let mut loaded = Vec::new();
        for attr in ["src=\"", "href=\""] {
            for part in page.split(attr).skip(1) {
                let url = part.split('"').next().unwrap();
                assert!(
                    !url.contains("://") && !url.starts_with("//"),
                    "the page loads {url} from elsewhere"
                );
                loaded.push(url.trim_start_matches("./").to_owned());
            }
        }
        assert!(
            loaded.iter().any(|u| u.ends_with(".js")),
            "no script: {loaded:?}"
        );
        for file in &loaded {
            let res = client
                .get(format!("{base}/docs/{file}"))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK, "{file}");
            assert!(!res.bytes().await.unwrap().is_empty(), "{file}");
        }

        let init = client
            .get(format!("{base}/docs/swagger-initializer.js"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(init.contains("\"/openapi.json\""), "{init}");
        assert!(init.contains("\"validatorUrl\": \"none\""), "{init}");
        assert!(!init.contains("https://"), "{init}");

        let res = client
            .get(format!("{base}/docs/no-such-file.js"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
    }
}

/// Runs `scripts/api-fuzz` (Schemathesis, every check, a fixed seed) against `base`, logged in
/// as the bootstrap admin of the auth-service at `auth` if given: its success and report.
fn run_fuzzer(base: &str, auth: Option<&str>) -> (bool, String) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/api-fuzz");
    let mut command = std::process::Command::new(script);
    command.arg(base).env_remove("API_FUZZ_LOGIN");
    if let Some(auth) = auth {
        command
            .env("API_FUZZ_LOGIN", format!("{auth}/v1/login"))
            .env("API_FUZZ_USERNAME", crate::helpers::ADMIN)
            .env("API_FUZZ_PASSWORD", crate::helpers::PASSWORD);
    }
    report_of(command)
}

/// Schemathesis, generating requests from each service's own document (valid ones and invalid
/// ones), finds nothing: no 5xx, no status, header, content type or body the document does not
/// give, no request the document allows refused, none it forbids accepted. The failed-login
/// and registration limits are off, so that the fuzzer's wrong passwords do not lock out the
/// address it logs in from and its registrations reach the store; the limits have tests of
/// their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_fuzzer_finds_nothing_in_either_document() {
    let stack = Stack::start_with(&[
        ("BOOTSTRAP_ADMIN_USERNAME", crate::helpers::ADMIN.into()),
        ("BOOTSTRAP_ADMIN_PASSWORD", crate::helpers::PASSWORD.into()),
        ("LOGIN_RATE_LIMIT_PER_MINUTE", "0".into()),
        ("REGISTER_RATE_LIMIT_PER_MINUTE", "0".into()),
    ])
    .await;
    // The bootstrap admin is created in the background at start-up.
    let started = std::time::Instant::now();
    while stack
        .client
        .post(format!("{}/v1/login", stack.auth))
        .json(&serde_json::json!({
            "username": crate::helpers::ADMIN,
            "password": crate::helpers::PASSWORD,
        }))
        .send()
        .await
        .unwrap()
        .status()
        != StatusCode::OK
    {
        assert!(started.elapsed().as_secs() < 10, "no bootstrap admin");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for base in [stack.auth.clone(), stack.resource.clone()] {
        let auth = stack.auth.clone();
        let (clean, report) = tokio::task::spawn_blocking(move || run_fuzzer(&base, Some(&auth)))
            .await
            .unwrap();
        assert!(clean, "Schemathesis found something:\n{report}");
        let generated = report
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_suffix(" generated")
                    .or_else(|| l.trim().split_once(" generated,").map(|(n, _)| n))
            })
            .and_then(|n| n.trim().parse::<u32>().ok());
        assert!(
            generated.is_some_and(|n| n >= 300),
            "too few requests were generated:\n{report}"
        );
    }
}

/// The fuzzer can fail: a server whose one operation answers 500 and a body its document does
/// not give is reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_fuzzer_reports_what_a_document_does_not_say() {
    use actix_web::{App, HttpResponse, HttpServer, web};
    const DOCUMENT: &str = r#"{
        "openapi": "3.1.0",
        "info": {"title": "broken", "version": "1"},
        "paths": {"/thing": {"get": {
            "parameters": [{"name": "n", "in": "query", "required": true,
                            "schema": {"type": "integer", "minimum": 0}}],
            "responses": {"200": {"description": "ok",
                "content": {"application/json": {"schema": {"type": "object"}}}}}
        }}}
    }"#;
    let server = HttpServer::new(|| {
        App::new()
            .route(
                "/openapi.json",
                web::get().to(|| async {
                    HttpResponse::Ok()
                        .content_type("application/json")
                        .body(DOCUMENT)
                }),
            )
            .route(
                "/thing",
                web::get().to(|| async { HttpResponse::InternalServerError().body("[]") }),
            )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let base = format!("http://{}", server.addrs()[0]);
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    let (clean, report) = tokio::task::spawn_blocking(move || run_fuzzer(&base, None))
        .await
        .unwrap();
    handle.stop(false).await;
    assert!(!clean, "{report}");
    assert!(report.contains("Server error"), "{report}");
    assert!(report.contains("Undocumented status code"), "{report}");
}
