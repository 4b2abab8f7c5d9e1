//! One attempt in the failed-login (or registration) windows, as the flows take it: a place
//! reserved before the password is checked, or 429; then counted or given back.

use tokenauth_kit::Problem;

use crate::base::error::ApiResult;
use crate::base::limits::{Attempt, Limiter, Reservation};

/// A place in `limiter`'s windows for one attempt, or 429.
pub async fn reserve(
    limiter: &std::sync::Arc<Limiter>,
    keys: Vec<String>,
) -> ApiResult<Reservation> {
    match limiter.reserve(keys).await? {
        Attempt::Reserved(reservation) => Ok(reservation),
        Attempt::Limited(retry_after) => Err(Problem::rate_limited(retry_after).into()),
    }
}

/// Settles a password check's reservation: a wrong password counts, anything else is given
/// back. A failure to give back is only logged: the place lapses by itself, and the user did
/// nothing wrong.
pub async fn settle(reservation: Reservation, wrong_password: bool) -> ApiResult<()> {
    if wrong_password {
        reservation.count().await?;
    } else if let Err(e) = reservation.release().await {
        tracing::warn!(error = %e, "could not give back a login attempt; it lapses by itself");
    }
    Ok(())
}
