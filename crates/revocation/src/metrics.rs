//! The revocation mirror as Prometheus gauges (feature `metrics`), in the process-wide registry:
//! what a `/metrics` answer shows of a verifier's copy of the revocations.

use std::sync::LazyLock;

use prometheus::{IntGaugeVec, Opts};

use crate::Mirror;

static MIRROR: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    let family = IntGaugeVec::new(
        Opts::new(
            "tokenauth_revocation_mirror",
            "The revocation mirror: entries by kind (tokens, sessions, users), seq, current (1/0) \
             and lag_ms (since the last sync confirmed it; 0 for a mirror kept in process)",
        ),
        &["value"],
    );
    match family {
        Ok(family) => {
            if let Err(e) = prometheus::register(Box::new(family.clone())) {
                tracing::error!(error = %e, "a metric could not be registered");
            }
            family
        }
        Err(e) => unreachable!("invalid metric: {e}"),
    }
});

/// Sets the mirror gauges from `mirror`: call it when `/metrics` is scraped.
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
