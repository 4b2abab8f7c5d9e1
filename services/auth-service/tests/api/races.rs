//! Logins in flight against the revocation they race: a login, page sign-in or password grant
//! that already read the user when an admin disables or deletes it, the user changes the
//! password or logs out everywhere, must fail or yield tokens that are refused, never a live
//! session.
//!
//! The race is made to happen every time: many logins of one user start at once on one
//! auth-service, and the revocation is made on a second one (the same database and key) as
//! soon as the first login is answered. The first service's argon2 pool hashes a couple at a
//! time, so the other logins have read the user and are waiting for their hash when the
//! revocation returns (the second service hashes a password change at once).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::authorize::{APP_URI, Browser, authorize_path, pkce, public_app, redeem};
use crate::both;
use crate::helpers::{
    Backend, PASSWORD, Spawn, TestApp, admin_spawn, admin_token, fresh_data_dir, unique,
};
use crate::oauth::token;

const IN_FLIGHT: usize = 24;
const NEW_PASSWORD: &str = "a brand new horse battery";

#[derive(Debug, Clone, Copy)]
enum Revocation {
    Disable,
    Delete,
    PasswordChange,
    LogoutEverywhere,
}

#[derive(Debug, Clone, Copy)]
enum Path {
    /// `POST /v1/login`.
    Json,
    /// `POST /oauth/token` with `grant_type=password`.
    PasswordGrant,
    /// The login page, then the code redeemed at the token endpoint.
    Page,
}

struct Race {
    /// Where the revocation is made and what it left is checked.
    app: TestApp,
    /// Where the logins run: another auth-service on the same database, with the same key.
    logins: TestApp,
    data_dir: std::path::PathBuf,
    admin: String,
    user_id: String,
    username: String,
    /// A session of the user from before the race (for the password change).
    own_access: String,
    page_client: String,
}

async fn race_setup(b: Backend) -> Race {
    // Every login here has the right password; the failed-login limits have their own tests.
    let data_dir = fresh_data_dir();
    let mut spawn = admin_spawn(b).env("LOGIN_RATE_LIMIT_PER_MINUTE", "0");
    spawn.data_dir = Some(data_dir.clone());
    let app = spawn.start().await;
    let mut spawn = Spawn::new(b).env("LOGIN_RATE_LIMIT_PER_MINUTE", "0");
    spawn.data_dir = Some(data_dir.clone());
    spawn.database_url = Some(app.database_url.clone());
    let logins = spawn.start().await;
    let admin = admin_token(&app).await;
    let username = unique("racer");
    let registered = app.register(&username).await;
    let user_id = registered["user"]["id"].as_str().unwrap().to_owned();
    let own_access = registered["access_token"].as_str().unwrap().to_owned();
    let page_client = public_app(&app, &admin).await;
    Race {
        app,
        logins,
        data_dir,
        admin,
        user_id,
        username,
        own_access,
        page_client,
    }
}

/// One login by `path`: the access and refresh tokens it got, or the status it was refused with.
async fn login(race: &Race, path: Path) -> Result<(String, String), (StatusCode, String)> {
    let app = &race.logins;
    let (status, body) = match path {
        Path::Json => {
            let res = app.login(&race.username, PASSWORD).await;
            (res.status(), res.text().await.unwrap())
        }
        Path::PasswordGrant => {
            let res = token(
                app,
                &[
                    ("grant_type", "password"),
                    ("username", &race.username),
                    ("password", PASSWORD),
                ],
                None,
            )
            .await;
            (res.status(), res.text().await.unwrap())
        }
        Path::Page => {
            let mut browser = Browser::new(app);
            let (verifier, challenge) = pkce();
            let page = browser
                .get(&authorize_path(&race.page_client, APP_URI, &challenge, "s"))
                .await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.body);
            let done = browser.sign_in(&page, &race.username, PASSWORD).await;
            if done.status != StatusCode::SEE_OTHER {
                return Err((done.status, done.body));
            }
            let location = done.location().unwrap();
            let pairs: std::collections::HashMap<String, String> =
                location.query_pairs().into_owned().collect();
            let Some(code) = pairs.get("code") else {
                return Err((done.status, location.to_string()));
            };
            let res = redeem(app, &race.page_client, code, APP_URI, &verifier).await;
            (res.status(), res.text().await.unwrap())
        }
    };
    if status != StatusCode::OK {
        return Err((status, body));
    }
    let body: Value = serde_json::from_str(&body).unwrap();
    Ok((
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    ))
}

async fn revoke(race: &Race, revocation: Revocation) {
    let app = &race.app;
    let path = format!("/v1/users/{}", race.user_id);
    let res = match revocation {
        Revocation::Disable => app
            .client
            .patch(app.url(&path))
            .bearer_auth(&race.admin)
            .json(&json!({"disabled": true}))
            .send()
            .await
            .unwrap(),
        Revocation::Delete => app
            .client
            .delete(app.url(&path))
            .bearer_auth(&race.admin)
            .send()
            .await
            .unwrap(),
        Revocation::PasswordChange => app
            .client
            .put(app.url("/v1/me/password"))
            .bearer_auth(&race.own_access)
            .json(&json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}))
            .send()
            .await
            .unwrap(),
        Revocation::LogoutEverywhere => {
            app.post_auth("/v1/logout/all", &race.own_access, None)
                .await
        }
    };
    assert!(
        res.status().is_success(),
        "{revocation:?}: {}",
        res.status()
    );
}

/// Starts [`IN_FLIGHT`] logins by `path`, makes `revocation` once the first is answered, and
/// checks that no login in flight came out of it with a token or a session that still works.
async fn logins_in_flight_lose_to(b: Backend, path: Path, revocation: Revocation) {
    let race = Arc::new(race_setup(b).await);
    let (first_tx, first_rx) = tokio::sync::oneshot::channel::<()>();
    let first_tx = Arc::new(std::sync::Mutex::new(Some(first_tx)));
    let revoked = Arc::new(AtomicBool::new(false));
    let logins = (0..IN_FLIGHT).map(|_| {
        let (race, first_tx, revoked) = (race.clone(), first_tx.clone(), revoked.clone());
        tokio::spawn(async move {
            let outcome = login(&race, path).await;
            if let Some(tx) = first_tx.lock().unwrap().take() {
                let _ = tx.send(());
            }
            (outcome, revoked.load(Ordering::SeqCst))
        })
    });
    let logins: Vec<_> = logins.collect();
    first_rx.await.unwrap();
    revoke(&race, revocation).await;
    revoked.store(true, Ordering::SeqCst);
    // Answered after the revocation returned: whatever a login got must be refused from now on.
    let answered: Vec<_> = join_all(logins)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    // The race did happen: most logins were still under way when the revocation returned.
    let after = answered.iter().filter(|(_, after)| *after).count();
    assert!(
        after >= IN_FLIGHT / 8,
        "only {after} of {IN_FLIGHT} logins were answered after the revocation"
    );
    let outcomes: Vec<_> = answered.into_iter().map(|(o, _)| o).collect();
    let app = &race.app;
    if let Revocation::Disable = revocation {
        // Nothing of the race may come back to life when the account is enabled again.
        enable(&race).await;
    }
    let mut live = Vec::new();
    let mut succeeded = 0;
    for outcome in &outcomes {
        match outcome {
            Ok((access, refresh)) => {
                succeeded += 1;
                let mut left = Vec::new();
                let me = app.get_auth("/v1/me", access).await;
                if me.status() != StatusCode::UNAUTHORIZED {
                    left.push(format!("access token answered {}", me.status()));
                }
                let refreshed = match path {
                    Path::Json | Path::PasswordGrant => app.refresh(refresh).await,
                    Path::Page => {
                        token(
                            app,
                            &[
                                ("grant_type", "refresh_token"),
                                ("refresh_token", refresh),
                                ("client_id", &race.page_client),
                            ],
                            None,
                        )
                        .await
                    }
                };
                if refreshed.status().is_success() {
                    left.push("refresh token refreshed".to_owned());
                }
                if !left.is_empty() {
                    live.push(left.join(", "));
                }
            }
            Err((status, body)) => {
                assert!(
                    status.is_client_error(),
                    "{path:?} racing {revocation:?} answered {status}: {body}"
                );
                // A login of the JSON API says why: the password given is no longer right
                // (changed), the account is disabled or gone, or every session was ended while
                // it was under way (the password is still right: sign in again).
                if let Path::Json = path {
                    let code = serde_json::from_str::<Value>(body).unwrap()["code"].clone();
                    let expected = match revocation {
                        Revocation::Disable => "account_disabled",
                        Revocation::Delete | Revocation::PasswordChange => "invalid_credentials",
                        Revocation::LogoutEverywhere => "token_revoked",
                    };
                    assert_eq!(code, expected, "{path:?} racing {revocation:?}: {body}");
                }
            }
        }
    }
    assert!(
        live.is_empty(),
        "{path:?} racing {revocation:?}: {} of {succeeded} logins that got through left something live: {live:?}",
        live.len()
    );
    // The race did happen: the first login was answered before the revocation.
    assert!(succeeded >= 1, "{outcomes:?}");
    let _ = std::fs::remove_dir_all(&race.data_dir);
}

async fn enable(race: &Race) {
    let res = race
        .app
        .client
        .patch(race.app.url(&format!("/v1/users/{}", race.user_id)))
        .bearer_auth(&race.admin)
        .json(&json!({"disabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

async fn json_logins_lose_to_a_disable(b: Backend) {
    logins_in_flight_lose_to(b, Path::Json, Revocation::Disable).await;
}
both!(json_logins_lose_to_a_disable);

async fn json_logins_lose_to_a_delete(b: Backend) {
    logins_in_flight_lose_to(b, Path::Json, Revocation::Delete).await;
}
both!(json_logins_lose_to_a_delete);

async fn json_logins_lose_to_a_password_change(b: Backend) {
    logins_in_flight_lose_to(b, Path::Json, Revocation::PasswordChange).await;
}
both!(json_logins_lose_to_a_password_change);

async fn json_logins_lose_to_logging_out_everywhere(b: Backend) {
    logins_in_flight_lose_to(b, Path::Json, Revocation::LogoutEverywhere).await;
}
both!(json_logins_lose_to_logging_out_everywhere);

async fn password_grants_lose_to_a_password_change(b: Backend) {
    logins_in_flight_lose_to(b, Path::PasswordGrant, Revocation::PasswordChange).await;
}
both!(password_grants_lose_to_a_password_change);

async fn page_sign_ins_lose_to_a_disable(b: Backend) {
    logins_in_flight_lose_to(b, Path::Page, Revocation::Disable).await;
}
both!(page_sign_ins_lose_to_a_disable);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_sign_ins_lose_to_a_password_change() {
    logins_in_flight_lose_to(Backend::Postgres, Path::Page, Revocation::PasswordChange).await;
}

/// Deleting a user while its sessions refresh, again and again on two auth-services: every
/// delete succeeds (it deadlocked with the refreshes' inserts and answered 500, leaving the user
/// and its tokens in place), no refresh answers 500, and nothing of the user works afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_user_while_its_sessions_refresh_always_succeeds() {
    let race = Arc::new(race_setup(Backend::Postgres).await);
    for trial in 0..6 {
        let name = unique("refresher");
        let registered = race.app.register(&name).await;
        let id = registered["user"]["id"].as_str().unwrap().to_owned();
        let mut chains = vec![registered["refresh_token"].as_str().unwrap().to_owned()];
        for _ in 0..3 {
            chains.push(
                race.app.login_ok(&name).await["refresh_token"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
        let stop = Arc::new(AtomicBool::new(false));
        let loops: Vec<_> = chains
            .into_iter()
            .enumerate()
            .map(|(i, mut refresh)| {
                let (race, stop) = (race.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut last_access = None;
                    let mut server_errors = Vec::new();
                    while !stop.load(Ordering::SeqCst) {
                        let app = if i % 2 == 0 { &race.app } else { &race.logins };
                        let res = app.refresh(&refresh).await;
                        let status = res.status();
                        if status.is_server_error() {
                            server_errors.push(res.text().await.unwrap());
                            continue;
                        }
                        if status != StatusCode::OK {
                            break;
                        }
                        let body: Value = res.json().await.unwrap();
                        refresh = body["refresh_token"].as_str().unwrap().to_owned();
                        last_access = body["access_token"].as_str().map(str::to_owned);
                    }
                    (server_errors, last_access)
                })
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        let res = race
            .app
            .client
            .delete(race.app.url(&format!("/v1/users/{id}")))
            .bearer_auth(&race.admin)
            .send()
            .await
            .unwrap();
        let status = res.status();
        let body = res.text().await.unwrap();
        stop.store(true, Ordering::SeqCst);
        let mut accesses = Vec::new();
        for outcome in join_all(loops).await {
            let (server_errors, last_access) = outcome.unwrap();
            assert!(
                server_errors.is_empty(),
                "trial {trial}: refreshes answered 5xx: {server_errors:?}"
            );
            accesses.extend(last_access);
        }
        assert_eq!(
            status,
            StatusCode::NO_CONTENT,
            "trial {trial}: delete answered {body}"
        );
        for access in &accesses {
            let me = race.app.get_auth("/v1/me", access).await;
            assert_eq!(me.status(), StatusCode::UNAUTHORIZED, "trial {trial}");
        }
    }
    let _ = std::fs::remove_dir_all(&race.data_dir);
}
