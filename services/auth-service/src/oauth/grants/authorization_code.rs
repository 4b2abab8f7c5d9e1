//! The `authorization_code` grant (RFC 6749 §4.1.3 with PKCE, RFC 7636): a code is redeemed
//! once, by the client it was issued to, with the redirect URI and the verifier of its
//! request; a second use revokes the session the first one started.

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tokenauth_store::codes;
use tokenauth_store::models::{AuthorizationCode, Client};
use tokenauth_store::standing::Standing;

use crate::base::error::ApiError;
use crate::base::secrets::stored_hash;
use crate::base::state::{AppState, unix_now};
use crate::flows::sessions::new_session;
use crate::oauth::forms::{TokenForm, required};
use crate::oauth::protocol::{OAuthError, OAuthResult};
use tokenauth_wire::TokenResponse;

/// A PKCE code verifier (RFC 7636 §4.1): 43 to 128 unreserved characters.
fn is_verifier(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// The `authorization_code` grant: `code`, `redirect_uri`, `code_verifier`, and the client (by
/// its id alone if public, authenticated if confidential). Returns a token response with a
/// refresh token and a session bound to the client.
pub async fn redeem(
    state: &AppState,
    client: &Client,
    form: &TokenForm,
) -> OAuthResult<TokenResponse> {
    let code = required("code", &form.code)?;
    let redirect_uri = required("redirect_uri", &form.redirect_uri)?;
    let verifier = required("code_verifier", &form.code_verifier)?;
    let invalid = || {
        OAuthError::invalid_grant("The code is unknown, expired, already used or not this client's")
    };
    let hash = stored_hash(code);
    let lookup = hash.clone();
    let found = state
        .db
        .run(move |conn| codes::find_code(conn, &lookup))
        .await
        .map_err(ApiError::from)?;
    let Some(found) = found else {
        return Err(invalid());
    };
    if found.client_id != client.client_id {
        return Err(invalid());
    }
    let now = unix_now();
    if found.used_at.is_some() {
        revoke_what_it_issued(state, &found).await;
        return Err(invalid());
    }
    if found.expires_at <= now {
        return Err(invalid());
    }
    if found.redirect_uri != redirect_uri {
        return Err(OAuthError::invalid_grant(
            "redirect_uri differs from the authorization request's",
        ));
    }
    if !is_verifier(verifier) {
        return Err(OAuthError::invalid_grant(
            "code_verifier must be 43 to 128 unreserved characters",
        ));
    }
    let computed = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()));
    if verify_slices_are_equal(computed.as_bytes(), found.code_challenge.as_bytes()).is_err() {
        return Err(OAuthError::invalid_grant(
            "code_verifier does not match the code_challenge",
        ));
    }
    // Whether the user is still there and enabled, the redemption itself finds out.
    let new = new_session(state, &found.user_id, Some(client.client_id.clone()), now)?;
    let (session, refresh_row) = (new.session.clone(), new.refresh_row.clone());
    let redeemed = state
        .db
        .run(move |conn| codes::redeem(conn, &hash, now, &session, &refresh_row))
        .await
        .map_err(ApiError::from)?;
    match redeemed {
        Some(Standing::Current(user)) => Ok(new.tokens(state, &user)?),
        // The user was disabled or deleted since the code was issued.
        Some(_) => Err(invalid()),
        None => {
            // A concurrent redemption won: this is a second use. (Or the code was deleted
            // with all of its user's grants: then there is nothing to revoke.)
            revoke_what_it_issued(state, &found).await;
            Err(invalid())
        }
    }
}

/// A code presented again: the session its first use started is revoked everywhere.
async fn revoke_what_it_issued(state: &AppState, code: &AuthorizationCode) {
    let hash = code.code_hash.clone();
    let ttl = state.tokens.access_ttl;
    let now = unix_now();
    let result = state
        .db
        .run(move |conn| {
            // Read again: a concurrent first use records its session in the same transaction
            // that spends the code.
            let Some(code) = codes::find_code(conn, &hash)? else {
                return Ok(None);
            };
            match code.session_id {
                Some(session_id) => tokenauth_store::sessions::revoke(conn, &session_id, now, ttl),
                None => Ok(None),
            }
        })
        .await;
    match result {
        Ok(Some(revocation)) => {
            if let Err(e) = state.publisher.publish(&[revocation]).await {
                tracing::warn!(error = %e, "code reuse revocation will reach verifiers on the next sync");
            }
            crate::base::audit::authorization_code_reused(&code.client_id);
        }
        Ok(None) => crate::base::audit::authorization_code_reused(&code.client_id),
        Err(e) => tracing::warn!(error = %e, "could not revoke the session of a reused code"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifiers_have_their_rfc_7636_shape() {
        assert!(is_verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"));
        assert!(!is_verifier("short"));
        assert!(!is_verifier(&"a".repeat(129)));
        assert!(!is_verifier(&format!("{}!", "a".repeat(50))));
        // RFC 7636 appendix B.
        let computed = URL_SAFE_NO_PAD.encode(digest::digest(
            &digest::SHA256,
            b"dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        ));
        assert_eq!(computed, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }
}
