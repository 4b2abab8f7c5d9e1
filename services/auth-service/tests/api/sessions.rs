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

/// Logging out everywhere covers everything issued in its second; a login right after it, in
/// the same second, still gets tokens that work at once (and refresh).
async fn a_login_right_after_logging_out_everywhere_works_at_once(b: Backend) {
    let app = spawn_app(b).await;
    let name = unique("again");
    let first = app.register(&name).await;
    let mut access = s(&first, "access_token");
    for _ in 0..5 {
        let res = app.post_auth("/v1/logout/all", &access, None).await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        assert_problem(app.get_auth("/v1/me", &access).await, 401, "token_revoked").await;
        let fresh = app.login_ok(&name).await;
        access = s(&fresh, "access_token");
        assert_eq!(
            app.get_auth("/v1/me", &access).await.status(),
            StatusCode::OK
        );
        let res = app.refresh(&s(&fresh, "refresh_token")).await;
        assert_eq!(res.status(), StatusCode::OK);
        let refreshed: Value = res.json().await.unwrap();
        let refreshed_access = s(&refreshed, "access_token");
        assert_eq!(
            app.get_auth("/v1/me", &refreshed_access).await.status(),
            StatusCode::OK
        );
    }
}
both!(a_login_right_after_logging_out_everywhere_works_at_once);

async fn logout_with_a_refresh_token_ends_its_session_whatever_the_access_token(b: Backend) {
    let app = spawn_app(b).await;
    let name = unique("lapsed");
    app.register(&name).await;
    // An access token that is not valid (lapsed, garbled, forged) beside a valid refresh token.
    for bad_access in ["garbage", "eyJhbGciOiJFZERTQSJ9.e30.c2ln"] {
        let signed = app.login_ok(&name).await;
        let refresh = s(&signed, "refresh_token");
        let res = app
            .client
            .post(app.url("/v1/logout"))
            .bearer_auth(bad_access)
            .json(&json!({"refresh_token": refresh}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        assert_problem(app.refresh(&refresh).await, 401, "invalid_refresh_token").await;
        assert_problem(
            app.get_auth("/v1/me", &s(&signed, "access_token")).await,
            401,
            "token_revoked",
        )
        .await;
    }
    // Without a refresh token, the access token must be valid.
    let res = app
        .client
        .post(app.url("/v1/logout"))
        .bearer_auth("garbage")
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "invalid_token").await;
}
both!(logout_with_a_refresh_token_ends_its_session_whatever_the_access_token);

async fn set_disabled(app: &crate::helpers::TestApp, name: &str, disabled: bool) {
    use tokenauth_store::schema::users;
    let db = app.store().await;
    let key = name.to_lowercase();
    db.run(move |conn| {
        Ok(
            diesel::update(users::table.filter(users::username_key.eq(key)))
                .set(users::disabled.eq(disabled))
                .execute(conn)?,
        )
    })
    .await
    .unwrap();
}

async fn a_disabled_users_refresh_token_is_refused_unspent(b: Backend) {
    let app = spawn_app(b).await;
    let name = unique("frozen");
    let signed = app.register(&name).await;
    let refresh = s(&signed, "refresh_token");
    set_disabled(&app, &name, true).await;
    assert_problem(app.refresh(&refresh).await, 403, "account_disabled").await;
    // Enabled again: the token was not spent (spending it would make this reuse).
    set_disabled(&app, &name, false).await;
    assert_eq!(app.refresh(&refresh).await.status(), StatusCode::OK);
}
both!(a_disabled_users_refresh_token_is_refused_unspent);

async fn a_session_ends_at_its_absolute_lifetime(b: Backend) {
    let app = crate::helpers::Spawn::new(b)
        .env("SESSION_MAX_AGE_SECS", "3600")
        .start()
        .await;
    let signed = app.register(&unique("aging")).await;
    // Refresh tokens never outlive the session.
    assert!(signed["refresh_expires_in"].as_i64().unwrap() <= 3600);
    let next: Value = app
        .refresh(&s(&signed, "refresh_token"))
        .await
        .json()
        .await
        .unwrap();
    assert!(next["refresh_expires_in"].as_i64().unwrap() <= 3600);

    // The session began 3590 s ago: the next refresh token lives 10 s at most.
    let db = app.store().await;
    let backdate = |secs: i64| {
        let db = db.clone();
        async move {
            db.run(move |conn| {
                let now = tokenauth_jwt::unix_now();
                Ok(diesel::update(sessions::table)
                    .set(sessions::created_at.eq(now - secs))
                    .execute(conn)?)
            })
            .await
            .unwrap()
        }
    };
    backdate(3590).await;
    let last: Value = app
        .refresh(&s(&next, "refresh_token"))
        .await
        .json()
        .await
        .unwrap();
    assert!(last["refresh_expires_in"].as_i64().unwrap() <= 10, "{last}");
    // Past its lifetime, however fresh its refresh token: refused, and the token is unspent
    // (no reuse alarm, just the end).
    backdate(3601).await;
    let last_refresh = s(&last, "refresh_token");
    assert_problem(
        app.refresh(&last_refresh).await,
        401,
        "invalid_refresh_token",
    )
    .await;
    assert_problem(
        app.refresh(&last_refresh).await,
        401,
        "invalid_refresh_token",
    )
    .await;
}
both!(a_session_ends_at_its_absolute_lifetime);

async fn prune_deletes_only_what_can_no_longer_matter(b: Backend) {
    let app = spawn_app(b).await;
    let name = unique("tidy");
    let live = app.register(&name).await;
    let ended = app.login_ok(&name).await;
    assert_eq!(
        app.post_auth("/v1/logout", &s(&ended, "access_token"), None)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let spent = s(&live, "refresh_token");
    let current: Value = app.refresh(&spent).await.json().await.unwrap();
    let db = app.store().await;
    let now = tokenauth_jwt::unix_now();
    let access_ttl = 900;
    // The logged-out session ended long ago, and every revocation has lapsed.
    let ended_sid = db
        .run(move |conn| {
            let sid: String = sessions::table
                .filter(sessions::revoked_at.is_not_null())
                .select(sessions::id)
                .first(conn)?;
            diesel::update(sessions::table.find(&sid))
                .set(sessions::revoked_at.eq(now - access_ttl - 1))
                .execute(conn)?;
            diesel::update(revocations::table)
                .set(revocations::expires_at.eq(now - 1))
                .execute(conn)?;
            Ok(sid)
        })
        .await
        .unwrap();
    // A second lapsed revocation: only the newest is kept (it holds the sequence number).
    let newest = app.login_ok(&name).await;
    app.post_auth("/v1/logout", &s(&newest, "access_token"), None)
        .await;
    let pruned = db
        .run(move |conn| {
            diesel::update(revocations::table)
                .set(revocations::expires_at.eq(now - 1))
                .execute(conn)?;
            tokenauth_store::prune::prune(conn, now, access_ttl, 2_592_000)
        })
        .await
        .unwrap();
    assert_eq!(pruned.sessions, 1, "{pruned:?}");
    assert_eq!(pruned.revocations, 1, "{pruned:?}");
    let (sids, revocation_count, tokens): (Vec<String>, i64, i64) = db
        .run(|conn| {
            Ok((
                sessions::table.select(sessions::id).load(conn)?,
                revocations::table.count().get_result(conn)?,
                refresh_tokens::table.count().get_result(conn)?,
            ))
        })
        .await
        .unwrap();
    assert!(!sids.contains(&ended_sid));
    assert_eq!(sids.len(), 2, "the live session and the recent logout stay");
    assert_eq!(revocation_count, 1);
    // The live session's spent token (reuse detection needs it) and current token stay, as do
    // the recent logout's; the ended session's went with it.
    assert_eq!(tokens, 3);
    assert_eq!(
        app.refresh(&s(&current, "refresh_token")).await.status(),
        StatusCode::OK
    );
    // Reuse of the spent token is still detected after the prune.
    assert_problem(app.refresh(&spent).await, 401, "invalid_refresh_token").await;
}
both!(prune_deletes_only_what_can_no_longer_matter);

async fn prune_deletes_expired_refresh_tokens(b: Backend) {
    let app = spawn_app(b).await;
    let signed = app.register(&unique("stale")).await;
    let db = app.store().await;
    let now = tokenauth_jwt::unix_now();
    let pruned = db
        .run(move |conn| {
            diesel::update(refresh_tokens::table)
                .set(refresh_tokens::expires_at.eq(now))
                .execute(conn)?;
            tokenauth_store::prune::prune(conn, now, 900, 2_592_000)
        })
        .await
        .unwrap();
    assert_eq!(pruned.refresh_tokens, 1);
    assert_problem(
        app.refresh(&s(&signed, "refresh_token")).await,
        401,
        "invalid_refresh_token",
    )
    .await;
}
both!(prune_deletes_expired_refresh_tokens);

/// The store's one-call rotation (PostgreSQL): a current token presented by who may refresh
/// its session is rotated once, whoever else races for it; a spent token, a foreign presenter
/// or a disabled user get no row and change nothing, and are judged the long way. On SQLite it
/// never answers, and the long way does all of it.
async fn the_one_call_rotation_spends_only_what_it_may(b: Backend) {
    use base64::Engine as _;
    use tokenauth_store::models::RefreshToken;
    use tokenauth_store::sessions::{Presenter, rotate_current};
    let hash = |secret: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret.as_bytes()).as_ref(),
        )
    };
    let app = spawn_app(b).await;
    let db = app.store().await;
    let signed = app.register(&unique("oncall")).await;
    let user_id = s(&signed["user"], "id");
    let rotate = |presented: String, successor: String, by: Presenter<'static>| {
        let db = db.clone();
        async move {
            let now = tokenauth_jwt::unix_now();
            let new = RefreshToken {
                token_hash: successor,
                session_id: String::new(),
                created_at: now,
                expires_at: now + 3600,
                used_at: None,
            };
            db.run(move |conn| rotate_current(conn, &presented, &new, now, 86_400, by))
                .await
                .unwrap()
        }
    };
    let first_party = Presenter {
        client_id: None,
        authenticated: false,
    };
    let current = hash(&s(&signed, "refresh_token"));

    // A client presenting a first-party session's token gets nothing, and spends nothing.
    let foreign = Presenter {
        client_id: Some("svc-someone-else"),
        authenticated: true,
    };
    assert!(
        rotate(current.clone(), unique("n"), foreign)
            .await
            .is_none()
    );

    // Eight at once for the same token: on PostgreSQL exactly one rotates.
    let racers = (0..8).map(|i| rotate(current.clone(), format!("racer-{i}"), first_party));
    let rotated: Vec<_> = join_all(racers).await.into_iter().flatten().collect();
    match b {
        Backend::Postgres => {
            assert_eq!(rotated.len(), 1, "{rotated:?}");
            assert_eq!(rotated[0].user.id, user_id);
            assert_eq!(rotated[0].session.user_id, user_id);
            assert!(rotated[0].expires_at > tokenauth_jwt::unix_now());
        }
        Backend::Sqlite => assert!(rotated.is_empty(), "{rotated:?}"),
    }
    let live: i64 = db
        .run(|conn| {
            Ok(refresh_tokens::table
                .filter(refresh_tokens::used_at.is_null())
                .count()
                .get_result(conn)?)
        })
        .await
        .unwrap();
    // The session has one live token: the successor on PostgreSQL, the first one on SQLite.
    assert_eq!(live, 1);

    // The spent token again: no row here; the long way then finds the reuse and ends the session.
    assert!(rotate(current, unique("n"), first_party).await.is_none());
    if b == Backend::Postgres {
        assert_problem(
            app.refresh(&s(&signed, "refresh_token")).await,
            401,
            "invalid_refresh_token",
        )
        .await;
        let revoked: Option<i64> = db
            .run(|conn| Ok(sessions::table.select(sessions::revoked_at).first(conn)?))
            .await
            .unwrap();
        assert!(revoked.is_some(), "reuse ended the session");
    }
}
both!(the_one_call_rotation_spends_only_what_it_may);

/// A logout by refresh token racing the rotations of its session never fails for want of the
/// database (on SQLite a transaction that read first could not wait for the write lock, and the
/// logout answered 503 with the session left alive): it ends the session, or finds its token
/// spent (reuse), and either way the session is over.
async fn a_logout_racing_refreshes_of_its_session_is_answered(b: Backend) {
    let app = spawn_app(b).await;
    for round in 0..40 {
        let signed = app.register(&unique(&format!("racer{round}"))).await;
        let first = s(&signed, "refresh_token");
        // The session's owner keeps rotating while the logout carrying its first token runs.
        let chain = async {
            let mut current = first.clone();
            let mut last_won = None;
            for _ in 0..12 {
                let res = app.refresh(&current).await;
                let status = res.status();
                assert!(
                    [StatusCode::OK, StatusCode::UNAUTHORIZED].contains(&status),
                    "round {round}: a refresh answered {status}"
                );
                if status != StatusCode::OK {
                    break;
                }
                let body = res.json::<Value>().await.unwrap();
                current = s(&body, "refresh_token");
                last_won = Some(current.clone());
            }
            last_won
        };
        let body = json!({ "refresh_token": first });
        let logout = async {
            tokio::time::sleep(std::time::Duration::from_millis(round % 5)).await;
            app.post("/v1/logout", &body).await
        };
        let (last_won, logout) = tokio::join!(chain, logout);
        let logout_status = logout.status();
        assert!(
            [StatusCode::NO_CONTENT, StatusCode::UNAUTHORIZED].contains(&logout_status),
            "round {round}: logout answered {logout_status}: {}",
            logout.text().await.unwrap_or_default()
        );
        // Whatever won, the session is over: the logout ended it, or the spent token it carried
        // was reuse.
        if let Some(token) = last_won {
            assert_problem(app.refresh(&token).await, 401, "invalid_refresh_token").await;
        }
    }
}
both!(a_logout_racing_refreshes_of_its_session_is_answered);
