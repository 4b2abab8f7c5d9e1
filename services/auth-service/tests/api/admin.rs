//! The admin API on users: pagination, changes, disabling, deleting, revoking, and the refusals
//! (no admin role, bad ids, bad bodies, the last admin).

use std::collections::HashSet;

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::both;
use crate::helpers::{Backend, PASSWORD, TestApp, assert_problem, claims, with_admin};

fn access(tokens: &Value) -> String {
    tokens["access_token"].as_str().unwrap().to_owned()
}

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Response {
    let req = app.client.request(method, app.url(path)).bearer_auth(token);
    match body {
        Some(b) => req.json(&b),
        None => req,
    }
    .send()
    .await
    .unwrap()
}

async fn page(app: &TestApp, token: &str, query: &str) -> Value {
    let res = call(app, Method::GET, &format!("/v1/users{query}"), token, None).await;
    assert_eq!(res.status(), StatusCode::OK, "{query}");
    res.json().await.unwrap()
}

async fn users_are_listed_a_page_at_a_time_in_a_stable_order(b: Backend) {
    let (app, admin) = with_admin(b).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(app.register(&format!("user{n}")).await["user"]["id"].clone());
    }
    // Pages of two: the admin and five users, each seen once, in creation order.
    let mut seen = Vec::new();
    let mut query = "?limit=2".to_owned();
    loop {
        let body = page(&app, &admin, &query).await;
        let users = body["users"].as_array().unwrap();
        assert!(users.len() <= 2);
        for u in users {
            assert!(u.get("password_hash").is_none());
            seen.push(u["id"].clone());
        }
        match body["next_cursor"].as_str() {
            Some(cursor) => query = format!("?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 6);
    assert_eq!(seen[1..], ids[..]);
    // The whole list fits the default page; the last page says so.
    let all = page(&app, &admin, "").await;
    assert_eq!(all["users"].as_array().unwrap().len(), 6);
    assert_eq!(all["next_cursor"], Value::Null);
    // A full last page has no next cursor either.
    let six = page(&app, &admin, "?limit=6").await;
    assert_eq!(six["next_cursor"], Value::Null);

    // Cursors the service did not hand out: one made by hand from a real id (the form an
    // earlier version handed out), and a real one with another id put in.
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let handed = page(&app, &admin, "?limit=1").await["next_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let decoded = String::from_utf8(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&handed)
            .unwrap(),
    )
    .unwrap();
    let (_, tag) = decoded.split_once('.').unwrap();
    let other = ids[2].as_str().unwrap();
    let forged = [
        format!("?cursor={}", b64(&format!("u1:{other}"))),
        format!("?cursor={}", b64(&format!("u1:{other}.{tag}"))),
        format!("?cursor={}", b64(&format!("u1:{}", uuid::Uuid::new_v4()))),
    ];
    for bad in &forged {
        let res = call(&app, Method::GET, &format!("/v1/users{bad}"), &admin, None).await;
        assert_problem(res, 400, "invalid_request").await;
    }
    for bad in [
        "?limit=0",
        "?limit=101",
        "?limit=ten",
        "?limit=-1",
        "?limit=2&limit=3",
        "?cursor=nonsense",
        "?cursor=dTE6bm90LWEtdXVpZA",
        "?cursor=",
    ] {
        let res = call(&app, Method::GET, &format!("/v1/users{bad}"), &admin, None).await;
        assert_problem(res, 400, "invalid_request").await;
    }
}
both!(users_are_listed_a_page_at_a_time_in_a_stable_order);

async fn only_an_admin_may_use_the_admin_api(b: Backend) {
    let (app, _admin) = with_admin(b).await;
    let user = app.register("mallory").await;
    let token = access(&user);
    let id = user["user"]["id"].as_str().unwrap().to_owned();
    let requests = [
        (Method::GET, "/v1/users".to_owned(), None),
        (Method::GET, format!("/v1/users/{id}"), None),
        (
            Method::PATCH,
            format!("/v1/users/{id}"),
            Some(json!({"roles": ["user", "admin"]})),
        ),
        (Method::DELETE, format!("/v1/users/{id}"), None),
        (Method::POST, format!("/v1/users/{id}/revoke"), None),
    ];
    for (method, path, body) in &requests {
        let res = call(&app, method.clone(), path, &token, body.clone()).await;
        assert_problem(res, 403, "insufficient_role").await;
        let res = app
            .client
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_problem(res, 401, "missing_token").await;
    }
    // Nothing changed: still a plain user, still logged in.
    let me: Value = app.get_auth("/v1/me", &token).await.json().await.unwrap();
    assert_eq!(me["roles"], json!(["user"]));
}
both!(only_an_admin_may_use_the_admin_api);

async fn bad_ids_and_bodies_get_the_contract_codes(b: Backend) {
    let (app, admin) = with_admin(b).await;
    let user = app.register("alice").await;
    let id = user["user"]["id"].as_str().unwrap().to_owned();
    let unknown = uuid::Uuid::now_v7().to_string();
    for path in [
        format!("/v1/users/{unknown}"),
        "/v1/users/not-an-id".to_owned(),
        "/v1/users/%00".to_owned(),
    ] {
        for (method, body) in [
            (Method::GET, None),
            (Method::PATCH, Some(json!({"disabled": true}))),
            (Method::DELETE, None),
        ] {
            let res = call(&app, method.clone(), &path, &admin, body).await;
            assert_problem(res, 404, "not_found").await;
        }
        let res = call(&app, Method::POST, &format!("{path}/revoke"), &admin, None).await;
        assert_problem(res, 404, "not_found").await;
    }
    let path = format!("/v1/users/{id}");
    for body in [
        json!({"roles": "admin"}),
        json!({"roles": [1]}),
        json!({"roles": ["Admin"]}),
        json!({"roles": ["has space"]}),
        json!({"roles": [""]}),
        json!({"roles": ["a".repeat(33)]}),
        json!({"roles": (0..17).map(|n| format!("r{n}")).collect::<Vec<_>>()}),
        json!({"disabled": "yes"}),
    ] {
        let res = call(&app, Method::PATCH, &path, &admin, Some(body.clone())).await;
        let problem = assert_problem(res, 422, "validation_failed").await;
        assert!(problem["errors"].is_object(), "{body}");
    }
    let res = app
        .client
        .patch(app.url(&path))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body("[]")
        .send()
        .await
        .unwrap();
    assert_problem(res, 400, "invalid_request").await;
    let res = call(&app, Method::PUT, &path, &admin, Some(json!({}))).await;
    assert_problem(res, 405, "method_not_allowed").await;
    // Nothing stored was changed by any of it.
    let res = call(&app, Method::GET, &path, &admin, None).await;
    let stored: Value = res.json().await.unwrap();
    assert_eq!(stored["roles"], json!(["user"]));
    assert_eq!(stored["disabled"], false);
}
both!(bad_ids_and_bodies_get_the_contract_codes);

async fn a_role_change_applies_to_tokens_minted_after_it(b: Backend) {
    let (app, admin) = with_admin(b).await;
    let user = app.register("bob").await;
    let old = access(&user);
    let id = user["user"]["id"].as_str().unwrap().to_owned();
    let res = call(
        &app,
        Method::PATCH,
        &format!("/v1/users/{id}"),
        &admin,
        Some(json!({"roles": ["user", "auditor", "user"]})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["roles"], json!(["user", "auditor"]));
    // The old token still works and still says what it said; a new one carries the new roles.
    assert_eq!(app.get_auth("/v1/me", &old).await.status(), StatusCode::OK);
    assert_eq!(claims(&old)["roles"], json!(["user"]));
    let new = access(&app.login_ok("bob").await);
    assert_eq!(claims(&new)["roles"], json!(["user", "auditor"]));
}
both!(a_role_change_applies_to_tokens_minted_after_it);

async fn a_disabled_user_is_locked_out_until_enabled_again(b: Backend) {
    let (app, admin) = with_admin(b).await;
    let user = app.register("carol").await;
    let token = access(&user);
    let refresh = user["refresh_token"].as_str().unwrap().to_owned();
    let path = format!("/v1/users/{}", user["user"]["id"].as_str().unwrap());
    let res = call(
        &app,
        Method::PATCH,
        &path,
        &admin,
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["disabled"], true);

    assert_problem(
        app.get_auth("/v1/me", &token).await,
        403,
        "account_disabled",
    )
    .await;
    assert_problem(app.login("carol", PASSWORD).await, 403, "account_disabled").await;
    assert_problem(app.refresh(&refresh).await, 403, "account_disabled").await;

    // Enabled again: the old tokens stay revoked, a new login works.
    let res = call(
        &app,
        Method::PATCH,
        &path,
        &admin,
        Some(json!({"disabled": false})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_problem(app.get_auth("/v1/me", &token).await, 401, "token_revoked").await;
    assert_problem(app.refresh(&refresh).await, 401, "invalid_refresh_token").await;
    let again = access(&app.login_ok("carol").await);
    assert_eq!(
        app.get_auth("/v1/me", &again).await.status(),
        StatusCode::OK
    );
}
both!(a_disabled_user_is_locked_out_until_enabled_again);

async fn deleting_or_revoking_a_user_ends_its_tokens(b: Backend) {
    let (app, admin) = with_admin(b).await;
    let dave = app.register("dave").await;
    let erin = app.register("erin").await;
    let dave_path = format!("/v1/users/{}", dave["user"]["id"].as_str().unwrap());
    let erin_id = erin["user"]["id"].as_str().unwrap();

    let res = call(
        &app,
        Method::POST,
        &format!("/v1/users/{erin_id}/revoke"),
        &admin,
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_problem(
        app.get_auth("/v1/me", &access(&erin)).await,
        401,
        "token_revoked",
    )
    .await;
    let refresh = erin["refresh_token"].as_str().unwrap();
    assert_problem(app.refresh(refresh).await, 401, "invalid_refresh_token").await;
    // Revoked, not disabled: erin logs in again.
    app.login_ok("erin").await;

    let res = call(&app, Method::DELETE, &dave_path, &admin, None).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_problem(
        app.get_auth("/v1/me", &access(&dave)).await,
        401,
        "token_revoked",
    )
    .await;
    assert_problem(
        app.login("dave", PASSWORD).await,
        401,
        "invalid_credentials",
    )
    .await;
    let res = call(&app, Method::GET, &dave_path, &admin, None).await;
    assert_problem(res, 404, "not_found").await;
    let res = call(&app, Method::DELETE, &dave_path, &admin, None).await;
    assert_problem(res, 404, "not_found").await;
    // The name is free again.
    app.register("dave").await;
}
both!(deleting_or_revoking_a_user_ends_its_tokens);

async fn the_last_admin_cannot_be_removed(b: Backend) {
    let (app, admin) = with_admin(b).await;
    let me: Value = app.get_auth("/v1/me", &admin).await.json().await.unwrap();
    let path = format!("/v1/users/{}", me["id"].as_str().unwrap());
    for body in [json!({"roles": ["user"]}), json!({"disabled": true})] {
        let res = call(&app, Method::PATCH, &path, &admin, Some(body)).await;
        assert_problem(res, 409, "last_admin").await;
    }
    let res = call(&app, Method::DELETE, &path, &admin, None).await;
    assert_problem(res, 409, "last_admin").await;
    // Still an admin, still enabled.
    assert_eq!(
        page(&app, &admin, "").await["users"][0]["roles"],
        json!(["user", "admin"])
    );

    // With a second admin, either may step down; then the other is the last.
    let second = app.register("second").await;
    let second_path = format!("/v1/users/{}", second["user"]["id"].as_str().unwrap());
    let res = call(
        &app,
        Method::PATCH,
        &second_path,
        &admin,
        Some(json!({"roles": ["user", "admin"]})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = call(
        &app,
        Method::PATCH,
        &path,
        &admin,
        Some(json!({"roles": ["user"]})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    // The demoted admin's token no longer admits it: the role is read from the database.
    let res = call(&app, Method::GET, "/v1/users", &admin, None).await;
    assert_problem(res, 403, "insufficient_role").await;
    let second_token = access(&app.login_ok("second").await);
    let res = call(&app, Method::DELETE, &second_path, &second_token, None).await;
    assert_problem(res, 409, "last_admin").await;
}
both!(the_last_admin_cannot_be_removed);

async fn two_admins_demoting_each_other_at_once_leave_one(b: Backend) {
    let (app, root) = with_admin(b).await;
    let other = app.register("other").await;
    let other_id = other["user"]["id"].as_str().unwrap().to_owned();
    let root_id = app
        .get_auth("/v1/me", &root)
        .await
        .json::<Value>()
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let promote = json!({"roles": ["user", "admin"]});
    let res = call(
        &app,
        Method::PATCH,
        &format!("/v1/users/{other_id}"),
        &root,
        Some(promote),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let other_token = access(&app.login_ok("other").await);
    let (other_path, root_path) = (
        format!("/v1/users/{other_id}"),
        format!("/v1/users/{root_id}"),
    );
    for _ in 0..5 {
        let demote = json!({"roles": ["user"]});
        let (a, b) = tokio::join!(
            call(
                &app,
                Method::PATCH,
                &other_path,
                &root,
                Some(demote.clone())
            ),
            call(
                &app,
                Method::PATCH,
                &root_path,
                &other_token,
                Some(demote.clone())
            ),
        );
        let mut statuses = [a.status().as_u16(), b.status().as_u16()];
        statuses.sort_unstable();
        // One steps the other down; the other's own request then finds itself without the
        // role (403) or the last admin (409). Never both demoted.
        assert_eq!(statuses[0], 200, "{statuses:?}");
        assert!(matches!(statuses[1], 403 | 409), "{statuses:?}");
        let admins: HashSet<String> = page(
            &app,
            if a.status() == StatusCode::OK {
                &root
            } else {
                &other_token
            },
            "",
        )
        .await["users"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|u| u["roles"].as_array().unwrap().contains(&json!("admin")))
            .map(|u| u["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(admins.len(), 1);
        // Make both admins again for the next round.
        let (survivor, demoted) = if admins.contains(&root_id) {
            (&root, &other_id)
        } else {
            (&other_token, &root_id)
        };
        let res = call(
            &app,
            Method::PATCH,
            &format!("/v1/users/{demoted}"),
            survivor,
            Some(json!({"roles": ["user", "admin"]})),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK);
    }
}
both!(two_admins_demoting_each_other_at_once_leave_one);
