//! What the extractors refuse, and how: the documented status, code and headers.

use actix_web::{App, test, web};
use tokenauth_guard::{
    Guard, KeySource, MaybeAuthenticated, RequireRole, RequireScope, Role, Scope,
};
use tokenauth_revocation::{Event, Kind, unix_now};

use crate::{assert_problem, claims, current, guard, read, secret, sign, token};

struct Admin;
impl Role for Admin {
    const NAME: &'static str = "admin";
}

struct Write;
impl Scope for Write {
    const NAME: &'static str = "write";
}

/// An app with one route per extractor.
macro_rules! app {
    ($guard:expr) => {
        test::init_service(
            App::new()
                .app_data($guard)
                .route("/secret", web::get().to(secret))
                .route(
                    "/greeting",
                    web::get().to(|MaybeAuthenticated(c): MaybeAuthenticated| async move {
                        c.map_or_else(|| "nobody".to_owned(), |c| c.sub.clone())
                    }),
                )
                .route(
                    "/admin",
                    web::get().to(|_: RequireRole<Admin>| async { "admin" }),
                )
                .route(
                    "/write",
                    web::get().to(|_: RequireScope<Write>| async { "write" }),
                ),
        )
        .await
    };
}

/// `GET uri` with these `Authorization` headers: (status, headers, body).
macro_rules! call {
    ($app:expr, $uri:expr, $authorization:expr) => {{
        let mut req = test::TestRequest::get().uri($uri);
        for value in $authorization {
            req = req.append_header(("authorization", value.as_str()));
        }
        read(test::call_service(&$app, req.to_request()).await).await
    }};
}

fn bearer(token: &str) -> Vec<String> {
    vec![format!("Bearer {token}")]
}

#[actix_web::test]
async fn more_than_one_authorization_header_is_400_in_the_extractor_itself() {
    let writer = current();
    let app = app!(guard(&writer));
    let token = token();
    let one = format!("Bearer {token}");
    // Verified and cached first, so the fast path would accept these bytes.
    assert_eq!(call!(app, "/secret", &bearer(&token)).0, 200);
    for uri in ["/secret", "/greeting", "/admin"] {
        for headers in [
            vec![one.clone(), one.clone()],
            vec![one.clone(), "Bearer other".to_owned()],
            vec!["Basic eDp5".to_owned(), one.clone()],
        ] {
            let res = call!(app, uri, &headers);
            assert_problem(&res, 400, "invalid_request");
        }
    }
}

#[actix_web::test]
async fn tokens_are_required_checked_and_authorized() {
    let writer = current();
    let app = app!(guard(&writer));
    let none: Vec<String> = vec![];
    let res = call!(app, "/secret", &none);
    assert_problem(&res, 401, "missing_token");
    assert_eq!(
        res.1.get("www-authenticate").unwrap(),
        "Bearer realm=\"tokenauth\""
    );
    let res = call!(app, "/greeting", &none);
    assert_eq!((res.0, res.2.as_str()), (200, Some("nobody")));

    let mut expired = claims();
    expired.exp = unix_now() - 120;
    assert_problem(
        &call!(app, "/secret", &bearer(&sign(&expired))),
        401,
        "token_expired",
    );
    assert_problem(
        &call!(app, "/greeting", &bearer("x.y.z")),
        401,
        "invalid_token",
    );

    let plain = token();
    assert_problem(
        &call!(app, "/admin", &bearer(&plain)),
        403,
        "insufficient_role",
    );
    assert_problem(
        &call!(app, "/write", &bearer(&plain)),
        403,
        "insufficient_scope",
    );
    let mut admin = claims();
    admin.roles.push("admin".into());
    admin.scope = "read write".into();
    let admin = sign(&admin);
    assert_eq!(call!(app, "/admin", &bearer(&admin)).0, 200);
    assert_eq!(call!(app, "/write", &bearer(&admin)).0, 200);

    // Revoked while cached: refused at once.
    let revoked = claims();
    let token = sign(&revoked);
    assert_eq!(call!(app, "/secret", &bearer(&token)).0, 200);
    writer.apply(&Event {
        seq: 1,
        kind: Kind::Jti,
        subject: revoked.jti.clone(),
        not_before: None,
        expires_at: revoked.exp,
    });
    assert_problem(
        &call!(app, "/secret", &bearer(&token)),
        401,
        "token_revoked",
    );
}

#[actix_web::test]
async fn missing_keys_are_503_saying_so_with_retry_after() {
    // Nothing listens there: the JWKS cannot be fetched.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let writer = current();
    let guard = Guard::builder()
        .keys(KeySource::JwksUrl(format!(
            "http://127.0.0.1:{port}/jwks.json"
        )))
        .in_process(writer.mirror().clone())
        .build()
        .unwrap();
    assert!(!guard.keys_ready() && guard.revocations_current());
    let app = app!(guard);
    let res = call!(app, "/secret", &bearer(&token()));
    assert_problem(&res, 503, "unavailable");
    assert_eq!(res.1.get("retry-after").unwrap(), "1");
    let detail = res.2["detail"].as_str().unwrap();
    assert!(
        detail.contains("keys") && !detail.contains("revocation"),
        "{detail}"
    );
}

#[actix_web::test]
async fn missing_revocation_state_is_503_saying_so_with_retry_after() {
    let writer = current();
    let guard = guard(&writer);
    let app = app!(guard.clone());
    let cached = token();
    assert_eq!(call!(app, "/secret", &bearer(&cached)).0, 200);
    writer.mark_stale();
    assert!(guard.keys_ready() && !guard.revocations_current() && !guard.is_ready());
    // A token seen before and one not seen before alike.
    for token in [cached, token()] {
        let res = call!(app, "/secret", &bearer(&token));
        assert_problem(&res, 503, "unavailable");
        assert_eq!(res.1.get("retry-after").unwrap(), "1");
        let detail = res.2["detail"].as_str().unwrap();
        assert!(
            detail.contains("revocation") && !detail.contains("keys"),
            "{detail}"
        );
    }
    writer.mark_current();
    assert_eq!(call!(app, "/secret", &bearer(&token())).0, 200);
}
