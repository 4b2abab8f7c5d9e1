//! Account flows: register, log in, change password, bootstrap the admin.

use tokenauth_kit::Problem;
use tokenauth_kit::problem::Code;
use tokenauth_store::StoreError;
use tokenauth_store::models::User;
use tokenauth_store::users;

use crate::base::config::BootstrapAdmin;
use crate::base::passwords::Hasher;
use std::net::IpAddr;
use tokenauth_store::Database;

use crate::base::attempts::{reserve, settle};
use crate::base::domain::{Email, LoginId, Password, Username};
use crate::base::error::ApiResult;
use crate::base::limits::{Attempt, login_keys, register_keys};
use crate::base::state::{AppState, unix_now};
use crate::base::views;
use crate::flows::sessions::start_session;
use tokenauth_wire::SignedIn;

pub const ROLE_USER: &str = "user";
pub const ROLE_ADMIN: &str = tokenauth_store::admin::ADMIN_ROLE;

fn username_taken() -> Problem {
    Problem::new(Code::UsernameTaken, "That username is taken")
}

fn email_taken() -> Problem {
    Problem::new(Code::EmailTaken, "That email belongs to another account")
}

fn invalid_credentials() -> Problem {
    Problem::new(
        Code::InvalidCredentials,
        "Unknown username or wrong password",
    )
}

/// Registers a user, within the client address's registration budget: every attempt that
/// gets this far counts, whatever its outcome, since each may cost a hash.
pub async fn register(
    state: &AppState,
    username: Username,
    email: Option<Email>,
    password: Password,
    client_ip: Option<IpAddr>,
) -> ApiResult<SignedIn> {
    reserve(&state.register_limiter, register_keys(client_ip))
        .await?
        .count()
        .await?;
    let forms = username.forms();
    let email_key = email.as_ref().map(Email::key);
    // Answer a taken (or look-alike) name, or a taken email, before spending a hash on it; the
    // insert below still decides races.
    let (name_taken, email_in_use) = state
        .db
        .run(move |conn| {
            let name_taken = users::is_taken(conn, &forms)?;
            let email_in_use = match &email_key {
                Some(key) if !name_taken => users::is_email_taken(conn, key)?,
                _ => false,
            };
            Ok((name_taken, email_in_use))
        })
        .await?;
    if name_taken {
        return Err(username_taken().into());
    }
    if email_in_use {
        return Err(email_taken().into());
    }
    let hash = state.hasher.hash(password).await?;
    let user = User {
        id: uuid::Uuid::now_v7().to_string(),
        username: username.as_str().to_owned(),
        username_key: username.key(),
        username_skeleton: Some(username.skeleton()),
        username_upper_skeleton: Some(username.upper_skeleton()),
        username_display_skeleton: Some(username.display_skeleton()),
        password_hash: hash,
        roles: ROLE_USER.to_owned(),
        disabled: false,
        created_at: unix_now(),
        tokens_not_before: None,
        grant_epoch: 0,
        email: email.as_ref().map(|e| e.as_str().to_owned()),
        email_key: email.as_ref().map(Email::key),
    };
    let row = user.clone();
    match state.db.run(move |conn| users::insert(conn, &row)).await {
        Ok(()) => {}
        Err(StoreError::Conflict) => return Err(conflict(state, &user).await?.into()),
        Err(e) => return Err(e.into()),
    }
    tracing::info!(user_id = %user.id, "user registered");
    let tokens = start_session(state, &user).await?;
    Ok(SignedIn {
        tokens,
        user: views::user(&user),
    })
}

/// Which unique value a concurrent registration took first: the name, else the email.
async fn conflict(state: &AppState, user: &User) -> ApiResult<Problem> {
    let Some(email_key) = user.email_key.clone() else {
        return Ok(username_taken());
    };
    let forms = users::UsernameForms {
        key: user.username_key.clone(),
        skeleton: user.username_skeleton.clone().unwrap_or_default(),
        upper_skeleton: user.username_upper_skeleton.clone().unwrap_or_default(),
        display_skeleton: user.username_display_skeleton.clone().unwrap_or_default(),
    };
    let name_taken = state
        .db
        .run(move |conn| users::is_taken(conn, &forms))
        .await?;
    if name_taken {
        return Ok(username_taken());
    }
    let email_in_use = state
        .db
        .run(move |conn| users::is_email_taken(conn, &email_key))
        .await?;
    Ok(if email_in_use {
        email_taken()
    } else {
        username_taken()
    })
}

/// The user a login names, if any (one database read, made before the attempt is reserved so
/// that a database that does not answer holds no place in the login windows).
async fn find_login_user(state: &AppState, id: Option<&LoginId>) -> ApiResult<Option<User>> {
    Ok(match id {
        None => None,
        Some(LoginId::Username(name)) => {
            let (key, legacy_key) = (name.key(), name.legacy_key());
            state
                .db
                .run(move |conn| users::find_for_login(conn, &key, &legacy_key))
                .await?
        }
        Some(LoginId::Email(email)) => {
            let key = email.key();
            state
                .db
                .run(move |conn| users::find_by_email_key(conn, &key))
                .await?
        }
    })
}

/// `user` if `password` is theirs, else `None`, in constant work: no user costs one argon2id
/// run like a known one.
async fn check_password(
    state: &AppState,
    user: Option<User>,
    password: Password,
) -> ApiResult<Option<User>> {
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    Ok(if state.hasher.verify(password, hash).await? {
        user
    } else {
        None
    })
}

/// Logs in by username or email, within the failed-login limits of the client IP and of the
/// name given. A login by email also counts against the account's username, so that naming an
/// account both ways does not double its budget. A disabled account is reported only after the
/// right password.
pub async fn login(
    state: &AppState,
    username: &str,
    password: Password,
    client_ip: Option<IpAddr>,
) -> ApiResult<SignedIn> {
    let user = check_login(state, username, password, client_ip).await?;
    let tokens = start_session(state, &user).await?;
    Ok(SignedIn {
        tokens,
        user: views::user(&user),
    })
}

/// The user a username (or email) and password name, within the failed-login limits, as
/// [`login`] checks them, without starting a session (the login page starts a login session
/// instead).
pub async fn check_login(
    state: &AppState,
    username: &str,
    password: Password,
    client_ip: Option<IpAddr>,
) -> ApiResult<User> {
    let id = LoginId::parse(username).ok();
    // Names that break the rules are limited like any other (by their lower case).
    let limit_key = id
        .as_ref()
        .map_or_else(|| username.to_lowercase(), LoginId::limit_key);
    let user = find_login_user(state, id.as_ref()).await?;
    let mut windows = login_keys(client_ip, &limit_key);
    if let (Some(LoginId::Email(_)), Some(user)) = (&id, &user) {
        windows.extend(login_keys(None, &user.username_key));
    }
    let reservation = match state.login_limiter.reserve(windows).await? {
        Attempt::Reserved(reservation) => reservation,
        Attempt::Limited(retry_after) => {
            crate::base::audit::login_limited(username, client_ip, retry_after);
            return Err(Problem::rate_limited(retry_after).into());
        }
    };
    let verified = check_password(state, user, password).await;
    settle(reservation, matches!(verified, Ok(None))).await?;
    let Some(user) = verified? else {
        crate::base::audit::login_failed(username, client_ip);
        return Err(invalid_credentials().into());
    };
    if user.disabled {
        return Err(Problem::new(Code::AccountDisabled, "Account is disabled").into());
    }
    Ok(user)
}

/// Changes the password and revokes every session of the user but `keep_session`. A wrong
/// `current_password` counts as a failed login of the user, within the same limits, so a stolen
/// access token cannot be used to guess the password.
pub async fn change_password(
    state: &AppState,
    user: &User,
    keep_session: Option<String>,
    current: Password,
    new: Password,
    client_ip: Option<IpAddr>,
) -> ApiResult<()> {
    let windows = login_keys(client_ip, &user.username_key);
    let reservation = reserve(&state.login_limiter, windows).await?;
    let verified = state
        .hasher
        .verify(current, Some(user.password_hash.clone()))
        .await;
    settle(reservation, matches!(verified, Ok(false))).await?;
    if !verified? {
        crate::base::audit::login_failed(&user.username, client_ip);
        return Err(invalid_credentials().into());
    }
    let hash = state.hasher.hash(new).await?;
    let id = user.id.clone();
    let ttl = state.tokens.access_ttl;
    let revoked = state
        .db
        .run(move |conn| {
            users::change_password(conn, &id, &hash, keep_session.as_deref(), unix_now(), ttl)
        })
        .await?;
    state.publisher.publish(&revoked).await?;
    crate::base::audit::password_changed(&user.id, revoked.len());
    Ok(())
}

/// Creates the bootstrap admin, or gives an existing user of that name the admin role.
pub async fn bootstrap_admin(
    db: &Database,
    hasher: &Hasher,
    admin: &BootstrapAdmin,
) -> ApiResult<AdminOutcome> {
    let key = admin.username.key();
    let existing = db
        .run(move |conn| users::find_by_username_key(conn, &key))
        .await?;
    if let Some(user) = existing {
        let mut roles = user.role_list();
        if !roles.iter().any(|r| r == ROLE_ADMIN) {
            roles.push(ROLE_ADMIN.to_owned());
            let joined = roles.join(" ");
            let id = user.id.clone();
            db.run(move |conn| users::set_roles(conn, &id, &joined))
                .await?;
            tracing::info!(user_id = %user.id, "bootstrap admin: promoted existing user");
            return Ok(AdminOutcome::Promoted);
        }
        return Ok(AdminOutcome::AlreadyAdmin);
    }
    let hash = hasher.hash(admin.password.clone()).await?;
    let user = User {
        id: uuid::Uuid::now_v7().to_string(),
        username: admin.username.as_str().to_owned(),
        username_key: admin.username.key(),
        username_skeleton: Some(admin.username.skeleton()),
        username_upper_skeleton: Some(admin.username.upper_skeleton()),
        username_display_skeleton: Some(admin.username.display_skeleton()),
        password_hash: hash,
        roles: format!("{ROLE_USER} {ROLE_ADMIN}"),
        disabled: false,
        created_at: unix_now(),
        tokens_not_before: None,
        grant_epoch: 0,
        email: None,
        email_key: None,
    };
    let id = user.id.clone();
    let key = user.username_key.clone();
    match db.run(move |conn| users::insert(conn, &user)).await {
        Ok(()) => tracing::info!(user_id = %id, "bootstrap admin: created"),
        Err(StoreError::Conflict) => {
            // Another replica created it first, or another user's name looks just like it.
            let created = db
                .run(move |conn| users::find_by_username_key(conn, &key))
                .await?
                .is_some();
            if !created {
                tracing::warn!(
                    "bootstrap admin: not created, another user's name looks just like it"
                );
                return Ok(AdminOutcome::NameTaken);
            }
            return Ok(AdminOutcome::AlreadyAdmin);
        }
        Err(e) => return Err(e.into()),
    }
    Ok(AdminOutcome::Created)
}

/// What making a user an admin came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminOutcome {
    /// A new user, with the password given.
    Created,
    /// An existing user, given the admin role; its password unchanged.
    Promoted,
    /// An admin already; its password unchanged.
    AlreadyAdmin,
    /// Not created: another user's name looks just like it.
    NameTaken,
}

/// Sets the password of the user `username` names (an operator's reset) and ends all of its
/// sessions, as a password change does; the revocations reach the verifiers with the running
/// services' next reconciliation. `false` if there is no such user.
pub async fn reset_password(
    db: &Database,
    hasher: &Hasher,
    username: &Username,
    password: Password,
    revocation_ttl: i64,
) -> ApiResult<bool> {
    let key = username.key();
    let Some(user) = db
        .run(move |conn| users::find_by_username_key(conn, &key))
        .await?
    else {
        return Ok(false);
    };
    let hash = hasher.hash(password).await?;
    let now = unix_now();
    db.run(move |conn| users::change_password(conn, &user.id, &hash, None, now, revocation_ttl))
        .await?;
    Ok(true)
}
