//! Register, log in, `GET /v1/me`, change password.

use std::time::{Duration, Instant};

use diesel::prelude::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokenauth_store::Database;
use tokenauth_store::models::User;
use tokenauth_store::schema::users;

use crate::both;
use crate::helpers::{Backend, PASSWORD, Spawn, TestApp, assert_problem, logs, spawn_app, unique};

async fn register_returns_tokens_and_the_user(b: Backend) {
    let app = spawn_app(b).await;
    let name = unique("alice");
    let res = app
        .post(
            "/v1/register",
            &json!({"username": name, "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert!(res.headers().contains_key("x-request-id"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["refresh_expires_in"], 1_209_600);
    assert_eq!(body["scope"], "api");
    assert!(body["access_token"].as_str().unwrap().split('.').count() == 3);
    assert!(body["refresh_token"].as_str().unwrap().len() >= 43);
    let user = &body["user"];
    assert_eq!(user["username"], name.as_str());
    assert_eq!(user["roles"], json!(["user"]));
    assert_eq!(user["disabled"], false);
    assert!(user["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(user["email"], Value::Null);
    let keys: Vec<&String> = user.as_object().unwrap().keys().collect();
    assert_eq!(
        keys.len(),
        6,
        "user has exactly the documented fields: {user}"
    );

    // The password is stored as an argon2id hash, never as given.
    let db = app.store().await;
    let key = name.to_lowercase();
    let hash: String = db
        .run(move |conn| {
            Ok(users::table
                .filter(users::username_key.eq(key))
                .select(users::password_hash)
                .first(conn)?)
        })
        .await
        .unwrap();
    assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    assert!(!hash.contains(PASSWORD));
}
both!(register_returns_tokens_and_the_user);

async fn usernames_are_unique_ignoring_case_and_width(b: Backend) {
    let app = spawn_app(b).await;
    let name = unique("bob");
    app.register(&name).await;
    let upper = name.to_uppercase();
    let res = app
        .post(
            "/v1/register",
            &json!({"username": upper, "password": PASSWORD}),
        )
        .await;
    assert_problem(res, 409, "username_taken").await;
    // Fullwidth "B" (U+FF22) normalises (NFKC) to "B", which then matches ignoring case.
    let fullwidth = format!("\u{FF22}{}", &name[1..]);
    let res = app
        .post(
            "/v1/register",
            &json!({"username": fullwidth, "password": PASSWORD}),
        )
        .await;
    assert_problem(res, 409, "username_taken").await;
    // And the user can log in with any of those spellings.
    assert_eq!(app.login(&upper, PASSWORD).await.status(), StatusCode::OK);
}
both!(usernames_are_unique_ignoring_case_and_width);

async fn register_validates_every_field(b: Backend) {
    let app = spawn_app(b).await;
    let cases = [
        (json!({"username": "ab", "password": PASSWORD}), "username"),
        (
            json!({"username": "a".repeat(65), "password": PASSWORD}),
            "username",
        ),
        (
            json!({"username": "has space", "password": PASSWORD}),
            "username",
        ),
        (
            json!({"username": "slash/name", "password": PASSWORD}),
            "username",
        ),
        (
            json!({"username": unique("c"), "password": "short"}),
            "password",
        ),
        (
            json!({"username": unique("c"), "password": "p".repeat(129)}),
            "password",
        ),
        (json!({"username": unique("c")}), "password"),
        (json!({"username": 42, "password": PASSWORD}), "username"),
    ];
    for (body, field) in cases {
        let res = app.post("/v1/register", &body).await;
        let problem = assert_problem(res, 422, "validation_failed").await;
        assert!(problem["errors"][field].is_array(), "{field} in {problem}");
    }
    // Boundaries are accepted.
    let res = app
        .post(
            "/v1/register",
            &json!({"username": unique(&"d".repeat(54)), "password": "p".repeat(128)}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
}
both!(register_validates_every_field);

async fn wrong_password_and_unknown_user_look_the_same(b: Backend) {
    let app = spawn_app(b).await;
    let name = unique("carol");
    app.register(&name).await;
    let wrong = app.login(&name, "not the password").await;
    let unknown = app.login(&unique("nobody"), PASSWORD).await;
    let malformed = app.login("x", PASSWORD).await;
    let mut bodies = Vec::new();
    for res in [wrong, unknown, malformed] {
        assert_eq!(
            res.headers()["www-authenticate"],
            "Bearer realm=\"tokenauth\""
        );
        let mut body = assert_problem(res, 401, "invalid_credentials").await;
        body.as_object_mut().unwrap().remove("request_id");
        bodies.push(body);
    }
    assert_eq!(bodies[0], bodies[1]);
    assert_eq!(bodies[1], bodies[2]);
}
both!(wrong_password_and_unknown_user_look_the_same);

async fn login_refuses_overlong_passwords_before_hashing(b: Backend) {
    let app = spawn_app(b).await;
    let res = app.login(&unique("dave"), &"p".repeat(129)).await;
    let body = assert_problem(res, 422, "validation_failed").await;
    assert!(body["errors"]["password"].is_array());
}
both!(login_refuses_overlong_passwords_before_hashing);

async fn disabled_users_get_account_disabled_only_with_the_right_password(b: Backend) {
    let app = spawn_app(b).await;
    let name = unique("erin");
    let signed = app.register(&name).await;
    let access = signed["access_token"].as_str().unwrap().to_owned();
    let db = app.store().await;
    let key = name.to_lowercase();
    db.run(move |conn| {
        diesel::update(users::table.filter(users::username_key.eq(key)))
            .set(users::disabled.eq(true))
            .execute(conn)?;
        Ok(())
    })
    .await
    .unwrap();
    assert_problem(app.login(&name, PASSWORD).await, 403, "account_disabled").await;
    assert_problem(
        app.login(&name, "wrong password").await,
        401,
        "invalid_credentials",
    )
    .await;
    assert_problem(
        app.get_auth("/v1/me", &access).await,
        403,
        "account_disabled",
    )
    .await;
}
both!(disabled_users_get_account_disabled_only_with_the_right_password);

async fn me_returns_the_user(b: Backend) {
    let app = spawn_app(b).await;
    let name = unique("frank");
    let signed = app.register(&name).await;
    let res = app
        .get_auth("/v1/me", signed["access_token"].as_str().unwrap())
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let me: Value = res.json().await.unwrap();
    assert_eq!(me, signed["user"]);
}
both!(me_returns_the_user);

async fn password_change_keeps_this_session_and_revokes_the_others(b: Backend) {
    let app = spawn_app(b).await;
    let name = unique("grace");
    let first = app.register(&name).await;
    let second = app.login_ok(&name).await;
    let this = first["access_token"].as_str().unwrap();
    let new_password = "a brand new passphrase";

    // The wrong current password changes nothing.
    let res = app
        .client
        .put(app.url("/v1/me/password"))
        .bearer_auth(this)
        .json(&json!({"current_password": "not it at all", "new_password": new_password}))
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "invalid_credentials").await;
    let res = app
        .client
        .put(app.url("/v1/me/password"))
        .bearer_auth(this)
        .json(&json!({"current_password": PASSWORD, "new_password": "short"}))
        .send()
        .await
        .unwrap();
    let body = assert_problem(res, 422, "validation_failed").await;
    assert!(body["errors"]["new_password"].is_array());

    let res = app
        .client
        .put(app.url("/v1/me/password"))
        .bearer_auth(this)
        .json(&json!({"current_password": PASSWORD, "new_password": new_password}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    // This session goes on; the other one is over, access and refresh.
    assert_eq!(app.get_auth("/v1/me", this).await.status(), StatusCode::OK);
    assert_eq!(
        app.refresh(first["refresh_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );
    let other = second["access_token"].as_str().unwrap();
    assert_problem(app.get_auth("/v1/me", other).await, 401, "token_revoked").await;
    assert_problem(
        app.refresh(second["refresh_token"].as_str().unwrap()).await,
        401,
        "invalid_refresh_token",
    )
    .await;
    // Only the new password logs in.
    assert_problem(app.login(&name, PASSWORD).await, 401, "invalid_credentials").await;
    assert_eq!(
        app.login(&name, new_password).await.status(),
        StatusCode::OK
    );
}
both!(password_change_keeps_this_session_and_revokes_the_others);

async fn bootstrap_admin_is_created_and_can_log_in(b: Backend) {
    let name = unique("root");
    let app = crate::helpers::Spawn::new(b)
        .env("BOOTSTRAP_ADMIN_USERNAME", &name)
        .env("BOOTSTRAP_ADMIN_PASSWORD", "admin password 123")
        .start()
        .await;
    // The admin is created in the background once the schema is in place.
    let mut status = StatusCode::UNAUTHORIZED;
    for _ in 0..100 {
        status = app.login(&name, "admin password 123").await.status();
        if status == StatusCode::OK {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, StatusCode::OK);
    let body: Value = app
        .login(&name, "admin password 123")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["user"]["roles"], json!(["user", "admin"]));
}
both!(bootstrap_admin_is_created_and_can_log_in);

/// Registers `name`, asserting the status and, for a refusal, the code and field.
async fn register_status(app: &TestApp, name: &str) -> u16 {
    let res = app
        .post(
            "/v1/register",
            &json!({"username": name, "password": PASSWORD}),
        )
        .await;
    let status = res.status().as_u16();
    match status {
        422 => {
            let body = assert_problem(res, 422, "validation_failed").await;
            assert!(body["errors"]["username"].is_array(), "{name:?}: {body}");
        }
        409 => {
            assert_problem(res, 409, "username_taken").await;
        }
        _ => {}
    }
    status
}

async fn look_alike_usernames_are_refused(b: Backend) {
    let app = spawn_app(b).await;
    app.register("alice").await;
    app.register("bob").await;
    app.register("Stra\u{DF}e").await;
    let cases = [
        // Mixed scripts: CYRILLIC SMALL LETTER A, GREEK SMALL LETTER OMICRON.
        ("\u{430}lice", 422),
        ("b\u{3BF}b", 422),
        // HANGUL FILLER and HANGUL CHOSEONG FILLER show as blanks.
        ("alice\u{3164}", 422),
        ("alice\u{115F}", 422),
        // LATIN CAPITAL LETTER I WITH DOT ABOVE folds to `i` plus a combining dot.
        ("AL\u{130}CE", 422),
        // All Cyrillic, so one script, but it looks like "alice" (same UTS 39 skeleton).
        ("\u{430}\u{4CF}\u{456}\u{441}\u{435}", 409),
        ("a1ice", 409),
        // Unicode case folding: `ß` folds to `ss`.
        ("STRASSE", 409),
        ("ALICE", 409),
        // Whole-script look-alikes in capitals: Greek TAU OMICRON RHO beside "top", Cyrillic
        // EN O EM IE (typed in lower case) beside "HOME", Greek KAPPA EPSILON UPSILON.
        ("top", 201),
        ("\u{3A4}\u{39F}\u{3A1}", 409),
        ("HOME", 201),
        ("\u{43D}\u{43E}\u{43C}\u{435}", 409),
        ("\u{397}\u{39F}\u{39C}\u{395}", 409),
        ("\u{39A}\u{395}\u{3A5}", 201),
        ("key", 409),
        // As written, a capital I looks like a small l.
        ("aIice", 409),
        ("Ivan", 201),
        ("lvan", 409),
        ("biII", 201),
        ("bill", 409),
    ];
    for (name, status) in cases {
        assert_eq!(register_status(&app, name).await, status, "{name:?}");
    }
    // The user who owns the name logs in with any case of it.
    assert_eq!(
        app.login("STRASSE", PASSWORD).await.status(),
        StatusCode::OK
    );
    // Only the real accounts exist.
    let db = app.store().await;
    let count: i64 = db
        .run(|conn| Ok(users::table.count().get_result(conn)?))
        .await
        .unwrap();
    assert_eq!(count, 8);
}
both!(look_alike_usernames_are_refused);

async fn racing_look_alike_registrations_get_one_account(b: Backend) {
    let app = spawn_app(b).await;
    // Both pass the early check at once; the unique skeleton index decides.
    let (latin, cyrillic) = tokio::join!(
        register_status(&app, "alice"),
        register_status(&app, "\u{430}\u{4CF}\u{456}\u{441}\u{435}"),
    );
    let mut statuses = [latin, cyrillic];
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409]);
}
both!(racing_look_alike_registrations_get_one_account);

/// A row written as the service wrote it before usernames were case-folded and checked for
/// look-alikes: lower-case key, no skeleton.
fn legacy_user(username: &str, password_hash: &str) -> User {
    User {
        id: uuid::Uuid::now_v7().to_string(),
        username: username.to_owned(),
        username_key: username.to_lowercase(),
        username_skeleton: None,
        username_upper_skeleton: None,
        username_display_skeleton: None,
        password_hash: password_hash.to_owned(),
        roles: "user".to_owned(),
        disabled: false,
        created_at: 1_700_000_000,
        tokens_not_before: None,
        grant_epoch: 0,
        email: None,
        email_key: None,
    }
}

async fn stored_user(db: &Database, id: &str) -> User {
    let id = id.to_owned();
    db.run(move |conn| {
        Ok(users::table
            .find(id)
            .select(User::as_select())
            .first(conn)?)
    })
    .await
    .unwrap()
}

async fn accounts_named_before_the_look_alike_rules_still_log_in_and_are_backfilled(b: Backend) {
    let app = spawn_app(b).await;
    let alice = app.register("alice").await;
    let db = app.store().await;
    let hash: String = db
        .run(|conn| {
            Ok(users::table
                .filter(users::username_key.eq("alice"))
                .select(users::password_hash)
                .first(conn)?)
        })
        .await
        .unwrap();
    // Mixed scripts (GREEK SMALL LETTER OMICRON); a name whose case fold differs from its
    // lower case; a mixed-script look-alike of "alice".
    let mixed = legacy_user("b\u{3BF}b", &hash);
    let folded = legacy_user("Stra\u{DF}e", &hash);
    let look_alike = legacy_user("\u{430}lice", &hash);
    // A row as the version before upper-case skeletons stored it.
    let top = User {
        username_skeleton: Some("top".to_owned()),
        ..legacy_user("top", &hash)
    };
    let rows = vec![
        mixed.clone(),
        folded.clone(),
        look_alike.clone(),
        top.clone(),
    ];
    db.run(move |conn| {
        for row in &rows {
            diesel::insert_into(users::table)
                .values(row)
                .execute(conn)?;
        }
        Ok(())
    })
    .await
    .unwrap();

    // Not yet backfilled: found by the new key where it equals the old one, else by the old.
    assert_eq!(app.login(&mixed.username, PASSWORD).await.status(), 200);
    assert_eq!(app.login(&folded.username, PASSWORD).await.status(), 200);

    // A new start backfills them.
    let restarted = Spawn {
        database_url: Some(app.database_url.clone()),
        ..Spawn::new(b)
    }
    .start()
    .await;
    let started = Instant::now();
    loop {
        let done = stored_user(&db, &top.id)
            .await
            .username_display_skeleton
            .is_some()
            && logs().contains(&look_alike.id);
        if done {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not backfilled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let row = stored_user(&db, &mixed.id).await;
    assert_eq!(row.username_key, "b\u{3BF}b");
    assert_eq!(row.username_skeleton.as_deref(), Some("bob"));
    assert_eq!(row.username_upper_skeleton.as_deref(), Some("BOB"));
    let row = stored_user(&db, &top.id).await;
    assert_eq!(row.username_upper_skeleton.as_deref(), Some("TOP"));
    assert_eq!(row.username_display_skeleton.as_deref(), Some("top"));
    let row = stored_user(&db, &folded.id).await;
    assert_eq!(row.username_key, "strasse");
    assert_eq!(row.username_skeleton.as_deref(), Some("strasse"));
    // "alice" has that skeleton: the look-alike keeps none, and a warning names only its id.
    let row = stored_user(&db, &look_alike.id).await;
    assert_eq!(row.username_key, "\u{430}lice");
    assert_eq!(row.username_skeleton, None);
    let logs = logs();
    let warning = logs.lines().find(|l| l.contains(&look_alike.id)).unwrap();
    assert!(warning.contains("WARN"), "{warning}");
    for name in [&mixed.username, &folded.username, &look_alike.username] {
        assert!(!logs.contains(name.as_str()), "a username was logged");
    }

    // Every one of them still logs in, as itself.
    for (name, id) in [
        (mixed.username.as_str(), mixed.id.as_str()),
        ("STRASSE", folded.id.as_str()),
        (look_alike.username.as_str(), look_alike.id.as_str()),
        ("alice", alice["user"]["id"].as_str().unwrap()),
    ] {
        let res = restarted.login(name, PASSWORD).await;
        assert_eq!(res.status(), StatusCode::OK, "{name:?}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["user"]["id"], id, "{name:?}");
    }
    // And the backfilled skeletons keep new look-alikes out (Greek TAU OMICRON RHO).
    assert_eq!(register_status(&restarted, "Bob").await, 409);
    assert_eq!(
        register_status(&restarted, "\u{3A4}\u{39F}\u{3A1}").await,
        409
    );
}
both!(accounts_named_before_the_look_alike_rules_still_log_in_and_are_backfilled);

async fn a_look_alike_bootstrap_admin_is_neither_created_nor_promoted(b: Backend) {
    let app = spawn_app(b).await;
    app.register("alice").await;
    let cyrillic = "\u{430}\u{4CF}\u{456}\u{441}\u{435}";
    let _restarted = Spawn {
        database_url: Some(app.database_url.clone()),
        ..Spawn::new(b)
    }
    .env("BOOTSTRAP_ADMIN_USERNAME", cyrillic)
    .env("BOOTSTRAP_ADMIN_PASSWORD", "admin password 123")
    .start()
    .await;
    let started = Instant::now();
    while !logs().contains("bootstrap admin: not created") {
        assert!(started.elapsed() < Duration::from_secs(10), "no warning");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let db = app.store().await;
    let rows: Vec<(String, String)> = db
        .run(|conn| {
            Ok(users::table
                .select((users::username, users::roles))
                .load(conn)?)
        })
        .await
        .unwrap();
    assert_eq!(rows, [("alice".to_owned(), "user".to_owned())]);
}
both!(a_look_alike_bootstrap_admin_is_neither_created_nor_promoted);
