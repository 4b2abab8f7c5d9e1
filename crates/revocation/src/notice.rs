//! State changes an operator must hear of: the revocation feed lost or back, verification keys
//! loaded or not loadable. Each is reported once per change, never per request, so an outage is
//! one line, not a flood. They go to the tracing subscriber; when the thread reporting has none
//! (a service that installed no subscriber), they go to stderr, so an integrator still hears
//! that their service is refusing every token.

use std::fmt::Display;

use tracing::subscriber::NoSubscriber;

/// Whether a tracing event emitted on this thread would reach no subscriber at all.
pub fn no_subscriber() -> bool {
    !tracing::dispatcher::has_been_set()
        || tracing::dispatcher::get_default(|dispatch| dispatch.is::<NoSubscriber>())
}

/// A state change that makes the service refuse requests (503).
pub fn warn(what: &str, error: Option<&dyn Display>) {
    if no_subscriber() {
        match error {
            Some(error) => eprintln!("tokenauth WARN {what}: {error}"),
            None => eprintln!("tokenauth WARN {what}"),
        }
        return;
    }
    match error {
        Some(error) => tracing::warn!(%error, "{what}"),
        None => tracing::warn!("{what}"),
    }
}

/// A state change back to serving.
pub fn info(what: &str) {
    if no_subscriber() {
        eprintln!("tokenauth INFO {what}");
        return;
    }
    tracing::info!("{what}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_without_a_subscriber_is_told_apart_from_one_with() {
        // A fresh thread: no scoped subscriber, and this test binary sets no global one.
        assert!(std::thread::spawn(no_subscriber).join().unwrap());
        let _scoped = tracing::subscriber::set_default(tracing_subscriber::fmt().finish());
        assert!(!no_subscriber());
        assert!(std::thread::spawn(no_subscriber).join().unwrap());
    }
}
