//! Refresh rotation, reuse detection, the concurrent-refresh race, logout and logout-all.

use diesel::prelude::*;
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokenauth_store::schema::{refresh_tokens, revocations, sessions};

use crate::both;
use crate::helpers::{Backend, assert_problem, spawn_app, unique};

fn s(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap().to_owned()
}

async fn refresh_rotates_the_pair(b: Backend) {
    let app = spawn_app(b).await;
    let signed = app.register(&unique("henry")).await;
    let res = app.refresh(&s(&signed, "refresh_token")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let next: Value = res.json().await.unwrap();
    assert_ne!(next["refresh_token"], signed["refresh_token"]);
    assert_ne!(next["access_token"], signed["access_token"]);
    assert_eq!(next["token_type"], "Bearer");
    assert!(next.get("user").is_none());
    // The new access token works and belongs to the same session.
    assert_eq!(
        app.get_auth("/v1/me", &s(&next, "access_token"))
            .await
            .status(),
        StatusCode::OK
    );
    // The new refresh token rotates again.
    assert_eq!(
        app.refresh(&s(&next, "refresh_token")).await.status(),
        StatusCode::OK
    );

    // Only hashes are stored.
    let db = app.store().await;
    let raw = s(&next, "refresh_token");
    let stored: i64 = db
        .run(move |conn| {
            Ok(refresh_tokens::table
                .filter(refresh_tokens::token_hash.eq(raw))
                .count()
                .get_result(conn)?)
        })
        .await
        .unwrap();
    assert_eq!(stored, 0);
}
both!(refresh_rotates_the_pair);

async fn reusing_a_refresh_token_revokes_the_whole_session(b: Backend) {
    let app = spawn_app(b).await;
    let signed = app.register(&unique("ivy")).await;
    let first = s(&signed, "refresh_token");
    let next: Value = app.refresh(&first).await.json().await.unwrap();

    // The spent token again: refused, and the session is over.
    assert_problem(app.refresh(&first).await, 401, "invalid_refresh_token").await;
    assert_problem(
        app.refresh(&s(&next, "refresh_token")).await,
        401,
        "invalid_refresh_token",
    )
    .await;
    for access in [s(&signed, "access_token"), s(&next, "access_token")] {
        assert_problem(app.get_auth("/v1/me", &access).await, 401, "token_revoked").await;
    }
    // Recorded as a session revocation with a sequence number.
    let db = app.store().await;
    let kinds: Vec<(i64, String)> = db
        .run(|conn| {
            Ok(revocations::table
                .select((revocations::seq, revocations::kind))
                .load(conn)?)
        })
        .await
        .unwrap();
    assert_eq!(kinds.len(), 1);
    assert_eq!(kinds[0].1, "sid");
}
both!(reusing_a_refresh_token_revokes_the_whole_session);

async fn concurrent_refreshes_of_one_token_let_exactly_one_through(b: Backend) {
    let app = spawn_app(b).await;
    let signed = app.register(&unique("jack")).await;
    let token = s(&signed, "refresh_token");
    let attempts = join_all((0..8).map(|_| app.refresh(&token))).await;
    let statuses: Vec<u16> = attempts.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        7,
        "{statuses:?}"
    );
    // Exactly one successor token was stored.
    let db = app.store().await;
    let rows: i64 = db
        .run(|conn| Ok(refresh_tokens::table.count().get_result(conn)?))
        .await
        .unwrap();
    assert_eq!(rows, 2);
}
both!(concurrent_refreshes_of_one_token_let_exactly_one_through);

async fn unknown_and_expired_refresh_tokens_are_refused(b: Backend) {
    let app = spawn_app(b).await;
    assert_problem(
        app.refresh("no-such-token").await,
        401,
        "invalid_refresh_token",
    )
    .await;
    let res = app.post("/v1/token/refresh", &json!({})).await;
    assert_problem(res, 422, "validation_failed").await;

    let signed = app.register(&unique("kate")).await;
    let db = app.store().await;
    db.run(|conn| {
        diesel::update(refresh_tokens::table)
            .set(refresh_tokens::expires_at.eq(1))
            .execute(conn)?;
        Ok(())
    })
    .await
    .unwrap();
    assert_problem(
        app.refresh(&s(&signed, "refresh_token")).await,
        401,
        "invalid_refresh_token",
    )
    .await;
}
both!(unknown_and_expired_refresh_tokens_are_refused);

async fn logout_with_an_access_token_ends_that_session_only(b: Backend) {
    let app = spawn_app(b).await;
    let name = unique("liam");
    let one = app.register(&name).await;
    let two = app.login_ok(&name).await;
    let res = app
        .post_auth("/v1/logout", &s(&one, "access_token"), None)
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert!(res.headers().contains_key("x-request-id"));
    assert_problem(
        app.get_auth("/v1/me", &s(&one, "access_token")).await,
        401,
        "token_revoked",
    )
    .await;
    assert_problem(
        app.refresh(&s(&one, "refresh_token")).await,
        401,
        "invalid_refresh_token",
    )
    .await;
    // The other session is untouched.
    assert_eq!(
        app.get_auth("/v1/me", &s(&two, "access_token"))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.refresh(&s(&two, "refresh_token")).await.status(),
        StatusCode::OK
    );
    // The revocation is in the database.
    let db = app.store().await;
    let revoked: i64 = db
        .run(|conn| {
            Ok(sessions::table
                .filter(sessions::revoked_at.is_not_null())
                .count()
                .get_result(conn)?)
        })
        .await
        .unwrap();
    assert_eq!(revoked, 1);
}
both!(logout_with_an_access_token_ends_that_session_only);

async fn logout_with_only_a_refresh_token(b: Backend) {
    let app = spawn_app(b).await;
    let one = app.register(&unique("mia")).await;
    let res = app
        .post(
            "/v1/logout",
            &json!({"refresh_token": s(&one, "refresh_token")}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_problem(
        app.get_auth("/v1/me", &s(&one, "access_token")).await,
        401,
        "token_revoked",
    )
    .await;
    // Again with the same token: it no longer names a live session.
    let res = app
        .post(
            "/v1/logout",
            &json!({"refresh_token": s(&one, "refresh_token")}),
        )
        .await;
    assert_problem(res, 401, "invalid_refresh_token").await;
    // Nothing at all.
    let res = app.client.post(app.url("/v1/logout")).send().await.unwrap();
    assert_eq!(
        res.headers()["www-authenticate"],
        "Bearer realm=\"tokenauth\""
    );
    assert_problem(res, 401, "missing_token").await;
}
both!(logout_with_only_a_refresh_token);

async fn logout_all_revokes_every_session(b: Backend) {
    let app = spawn_app(b).await;
    let name = unique("noah");
    let one = app.register(&name).await;
    let two = app.login_ok(&name).await;
    let other_user = app.register(&unique("olga")).await;
    let res = app
        .post_auth("/v1/logout/all", &s(&two, "access_token"), None)
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    for t in [&one, &two] {
        assert_problem(
            app.get_auth("/v1/me", &s(t, "access_token")).await,
            401,
            "token_revoked",
        )
        .await;
        assert_problem(
            app.refresh(&s(t, "refresh_token")).await,
            401,
            "invalid_refresh_token",
        )
        .await;
    }
    assert_eq!(
        app.get_auth("/v1/me", &s(&other_user, "access_token"))
            .await
            .status(),
        StatusCode::OK
    );
    // A fresh login after logging out everywhere works.
    let again = app.login_ok(&name).await;
    assert_eq!(
        app.get_auth("/v1/me", &s(&again, "access_token"))
            .await
            .status(),
        StatusCode::OK
    );
    assert_problem(
        app.client
            .post(app.url("/v1/logout/all"))
            .send()
            .await
            .unwrap(),
        401,
        "missing_token",
    )
    .await;
}
both!(logout_all_revokes_every_session);
