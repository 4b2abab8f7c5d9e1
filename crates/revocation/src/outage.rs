//! Logging an outage without flooding the log: a dependency that fails every few hundred
//! milliseconds (and perhaps differently each time, as a server answering garbage does) is
//! reported when it starts failing, then at most once per [`REPEAT_EVERY`] with the number of
//! failures meanwhile, and once more when it recovers.

use std::time::{Duration, Instant};

/// The least time between two reports of one ongoing outage.
pub const REPEAT_EVERY: Duration = Duration::from_secs(60);

/// What to log about one more failure or success.
#[derive(Debug, PartialEq, Eq)]
pub enum Report {
    /// Nothing: the outage is already reported (or nothing was ever wrong).
    Quiet,
    /// The dependency started failing.
    Started,
    /// Still failing; this many failures since the last report.
    Continuing(u64),
    /// Back after failing this long.
    Recovered(Duration),
}

#[derive(Debug, Default)]
pub struct OutageLog {
    /// When the outage began, and when it was last reported.
    failing: Option<(Instant, Instant)>,
    unreported: u64,
}

impl OutageLog {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_failing(&self) -> bool {
        self.failing.is_some()
    }

    pub fn failed(&mut self) -> Report {
        self.failed_at(Instant::now())
    }

    pub fn succeeded(&mut self) -> Report {
        self.succeeded_at(Instant::now())
    }

    fn failed_at(&mut self, now: Instant) -> Report {
        match &mut self.failing {
            None => {
                self.failing = Some((now, now));
                self.unreported = 0;
                Report::Started
            }
            Some((_, reported)) => {
                self.unreported += 1;
                if now.duration_since(*reported) >= REPEAT_EVERY {
                    *reported = now;
                    Report::Continuing(std::mem::take(&mut self.unreported))
                } else {
                    Report::Quiet
                }
            }
        }
    }

    fn succeeded_at(&mut self, now: Instant) -> Report {
        match self.failing.take() {
            Some((since, _)) => Report::Recovered(now.duration_since(since)),
            None => Report::Quiet,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_is_reported_once_then_every_minute_then_its_end() {
        let mut log = OutageLog::new();
        let t0 = Instant::now();
        assert_eq!(log.succeeded_at(t0), Report::Quiet);
        assert_eq!(log.failed_at(t0), Report::Started);
        // A failure every 500 ms for a minute: nothing more until the minute is up.
        for i in 1..120 {
            let at = t0 + Duration::from_millis(500 * i);
            assert_eq!(log.failed_at(at), Report::Quiet, "failure {i}");
        }
        assert_eq!(log.failed_at(t0 + REPEAT_EVERY), Report::Continuing(120));
        assert_eq!(
            log.succeeded_at(t0 + Duration::from_secs(61)),
            Report::Recovered(Duration::from_secs(61))
        );
        assert_eq!(
            log.succeeded_at(t0 + Duration::from_secs(62)),
            Report::Quiet
        );
        assert_eq!(log.failed_at(t0 + Duration::from_secs(63)), Report::Started);
    }
}
