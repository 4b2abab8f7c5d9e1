//! Tracing set-up: `RUST_LOG` filters (default `info`), `LOG_FORMAT` picks `json` or `pretty`
//! (default: pretty on a terminal, JSON otherwise).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

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
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
    Ok(())
}
