//! What a verifier counts, in the process-wide Prometheus registry: tokens verified and tokens
//! refused by reason (the `metrics` feature; without it, nothing is counted and the crate does
//! not depend on prometheus). The mirror's gauges are `Guard::record_metrics`.

#[cfg(feature = "metrics")]
mod counters {
    use std::sync::LazyLock;

    use prometheus::{IntCounter, IntCounterVec};
    use tokenauth_kit::metrics::counter;

    /// Tokens accepted (signature, claims and revocation checked, or the cached answer).
    pub static VERIFIED: LazyLock<IntCounter> = LazyLock::new(|| {
        counter(
            "tokenauth_tokens_verified_total",
            "Access tokens accepted by this verifier",
            &[],
        )
        .with_label_values::<&str>(&[])
    });

    /// Requests refused by the guard, by reason (the problem code: `missing_token`,
    /// `invalid_token`, `token_expired`, `token_revoked`, `unavailable`, `insufficient_role`, …).
    pub static REFUSED: LazyLock<IntCounterVec> = LazyLock::new(|| {
        counter(
            "tokenauth_tokens_refused_total",
            "Requests refused by this verifier, by reason",
            &["reason"],
        )
    });
}

/// Counts an accepted token.
pub(crate) fn verified() {
    #[cfg(feature = "metrics")]
    counters::VERIFIED.inc();
}

/// Counts a refusal, by its problem code.
pub(crate) fn refused(_code: &str) {
    #[cfg(feature = "metrics")]
    counters::REFUSED.with_label_values(&[_code]).inc();
}
