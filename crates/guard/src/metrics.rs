//! What a verifier counts, in the process-wide Prometheus registry (see
//! `tokenauth_kit::metrics`): tokens verified, tokens refused by reason, and the revocation
//! mirror's size, sequence, state and lag (set when `/metrics` is scraped).

use std::sync::LazyLock;

use prometheus::{IntCounter, IntCounterVec, IntGaugeVec};
use tokenauth_kit::metrics::{counter, gauge};
use tokenauth_revocation::Mirror;

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

static MIRROR: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    gauge(
        "tokenauth_revocation_mirror",
        "The revocation mirror: entries by kind (tokens, sessions, users), seq, current (1/0) \
         and lag_ms (since the last sync confirmed it; 0 for a mirror kept in process)",
        &["value"],
    )
});

/// Sets the mirror gauges from `mirror` (at scrape time).
pub fn record_mirror(mirror: &Mirror) {
    let stats = mirror.stats();
    let lag = mirror
        .since_confirmed()
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    for (value, n) in [
        ("tokens", stats.tokens as i64),
        ("sessions", stats.sessions as i64),
        ("users", stats.users as i64),
        ("seq", stats.seq),
        ("current", i64::from(stats.current)),
        ("lag_ms", lag),
    ] {
        MIRROR.with_label_values(&[value]).set(n);
    }
}
