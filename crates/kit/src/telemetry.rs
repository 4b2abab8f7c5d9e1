//! Tracing set-up: `RUST_LOG` filters (default `info`), `LOG_FORMAT` picks `json` or `pretty`
//! (default: pretty on a terminal, JSON otherwise).

use std::io::IsTerminal;

use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{ConfigError, Source};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

pub fn log_format(src: &dyn Source) -> Result<LogFormat, ConfigError> {
    match crate::config::string(src, "LOG_FORMAT").as_deref() {
        None => Ok(if std::io::stdout().is_terminal() {
            LogFormat::Pretty
        } else {
            LogFormat::Json
        }),
        Some("json") => Ok(LogFormat::Json),
        Some("pretty") => Ok(LogFormat::Pretty),
        Some(other) => Err(ConfigError::new(
            "LOG_FORMAT",
            format!("{other:?} is not json or pretty"),
        )),
    }
}

/// Installs the global subscriber once; later calls (tests) do nothing.
pub fn init(src: &dyn Source) -> Result<(), ConfigError> {
    let format = log_format(src)?;
    let filter = match crate::config::string(src, "RUST_LOG") {
        Some(spec) => {
            EnvFilter::try_new(&spec).map_err(|e| ConfigError::new("RUST_LOG", e.to_string()))?
        }
        None => EnvFilter::new("info"),
    };
    // Not installed when one already is (a test's): that one stays.
    let _ = match format {
        LogFormat::Json => json(filter, std::io::stdout).try_init().is_ok(),
        LogFormat::Pretty => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .try_init()
            .is_ok(),
    };
    Ok(())
}

/// The JSON log format: one object per line, the event's fields at the top level and the
/// fields of the innermost span (the request's: `request_id`, `trace_id`, `parent_span_id`)
/// under `span`.
pub fn json<W>(filter: EnvFilter, writer: W) -> impl Subscriber + Send + Sync + 'static
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .finish()
}
