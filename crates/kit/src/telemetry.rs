//! Tracing set-up: `RUST_LOG` filters (default `info`), `LOG_FORMAT` picks `json` or `pretty`
//! (default: pretty on a terminal, JSON otherwise).

use std::fmt::{self, Write as _};
use std::io::IsTerminal;

use tracing::field::{Field, Visit};
use tracing::span::Record;
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
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
            LogFilter::parse(&spec).map_err(|e| ConfigError::new("RUST_LOG", e.to_string()))?
        }
        None => LogFilter::from(LevelFilter::INFO),
    };
    // Requests open real spans for a format that draws them, and for a filter that names them.
    crate::request_id::open_spans(format == LogFormat::Pretty || filter.names_spans());
    // Not installed when one already is (a test's): that one stays.
    let _ = match format {
        LogFormat::Json => json(filter, std::io::stdout).try_init().is_ok(),
        LogFormat::Pretty => tracing_subscriber::registry()
            .with(filter.targets)
            .with(filter.env)
            .with(tracing_subscriber::fmt::layer())
            .try_init()
            .is_ok(),
    };
    Ok(())
}

/// What `RUST_LOG` lets through. A filter of targets and levels only (`warn`,
/// `info,tokenauth_store=debug`) is a [`Targets`] filter, which a span costs nothing; one that
/// names spans or fields (`[request{request_id=x}]=debug`) needs an [`EnvFilter`], which
/// takes a lock shared by every thread each time a request's span is opened, entered, left or
/// closed.
#[derive(Debug)]
pub struct LogFilter {
    targets: Option<Targets>,
    env: Option<EnvFilter>,
}

impl LogFilter {
    /// `spec` in `RUST_LOG`'s syntax (`EnvFilter`'s, whichever filter it becomes).
    pub fn parse(spec: &str) -> Result<Self, tracing_subscriber::filter::ParseError> {
        // Parsed as an `EnvFilter` first: that is the syntax, and the errors, users know.
        let env = EnvFilter::try_new(spec)?;
        let plain = !spec.contains(['[', ']', '{', '}']);
        if plain {
            let directives: Vec<&str> = spec.split(',').filter(|d| !d.is_empty()).collect();
            if let Ok(targets) = directives.join(",").parse::<Targets>() {
                return Ok(LogFilter {
                    targets: Some(targets),
                    env: None,
                });
            }
        }
        Ok(LogFilter::from(env))
    }
}

impl LogFilter {
    /// Whether the filter names spans or fields: it then needs the request's span to exist.
    pub(crate) fn names_spans(&self) -> bool {
        self.env.is_some()
    }
}

impl From<EnvFilter> for LogFilter {
    fn from(env: EnvFilter) -> Self {
        LogFilter {
            targets: None,
            env: Some(env),
        }
    }
}

impl From<LevelFilter> for LogFilter {
    fn from(level: LevelFilter) -> Self {
        LogFilter {
            targets: Some(Targets::new().with_default(level)),
            env: None,
        }
    }
}

/// The JSON log format: one object per line, the event's fields at the top level and, under
/// `span`, the fields of the innermost span or else of the request being handled
/// (`request_id`, `trace_id`, `parent_span_id`: see [`InRequest`]).
pub fn json<W>(filter: impl Into<LogFilter>, writer: W) -> impl Subscriber + Send + Sync + 'static
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = filter.into();
    tracing_subscriber::registry()
        .with(filter.targets)
        .with(filter.env)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(writer)
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .fmt_fields(SpanFields)
                .map_event_format(InRequest),
        )
}

/// A JSON line written while a request is handled, outside any span, gets the request's
/// [`Context`](crate::request_id::Context) as the `span` object a `request` span would have
/// given it: `{"request_id":…,"trace_id":…,"parent_span_id":…,"name":"request"}`.
#[derive(Debug, Clone)]
pub(crate) struct InRequest<F>(F);

impl<S, N, F> FormatEvent<S, N> for InRequest<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let request = match ctx.lookup_current() {
            Some(_) => None,
            None => crate::request_id::current_context(),
        };
        let Some(request) = request else {
            return self.0.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        // The object's closing brace: the span goes in before it.
        let Some(end) = line.rfind('}') else {
            return writer.write_str(&line);
        };
        let (object, rest) = line.split_at(end);
        writer.write_str(object)?;
        writer.write_str(",\"span\":")?;
        write_request(&mut writer, &request)?;
        writer.write_str(rest)
    }
}

/// A request's context as the JSON object of its span.
fn write_request(out: &mut impl fmt::Write, request: &crate::request_id::Context) -> fmt::Result {
    out.write_str("{\"request_id\":")?;
    json_str(out, request.id())?;
    if let (Some(trace_id), Some(parent)) = (request.trace_id(), request.parent_span_id()) {
        out.write_str(",\"trace_id\":")?;
        json_str(out, trace_id)?;
        out.write_str(",\"parent_span_id\":")?;
        json_str(out, parent)?;
    }
    out.write_str(",\"name\":\"request\"}")
}

/// A span's fields as the JSON object the JSON log format shows under `span`, written as they
/// are recorded. Every request opens a span, whatever is logged in it: `tracing-subscriber`'s
/// own `JsonFields` builds a map of values and serializes it for each one, a cost every request
/// paid (a few per cent of the resource-service's CPU), which this writer does not.
#[derive(Debug, Default, Clone, Copy)]
pub struct SpanFields;

impl<'w> FormatFields<'w> for SpanFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        writer.write_char('{')?;
        let mut object = JsonObject {
            out: &mut writer,
            empty: true,
            result: Ok(()),
        };
        fields.record(&mut object);
        object.result?;
        writer.write_char('}')
    }

    /// Fields recorded later are added to the object (one recorded twice appears twice; the
    /// last is the one a JSON reader keeps).
    fn add_fields(
        &self,
        current: &'w mut FormattedFields<Self>,
        fields: &Record<'_>,
    ) -> fmt::Result {
        if current.fields.is_empty() {
            return self.format_fields(current.as_writer(), fields);
        }
        let closed = current.fields.pop();
        debug_assert_eq!(closed, Some('}'));
        let mut object = JsonObject {
            empty: current.fields.len() <= 1,
            out: &mut current.fields,
            result: Ok(()),
        };
        fields.record(&mut object);
        object.result?;
        current.fields.push('}');
        Ok(())
    }
}

/// Writes each field as `"name":value` into an open JSON object.
struct JsonObject<'a, W: fmt::Write> {
    out: &'a mut W,
    empty: bool,
    result: fmt::Result,
}

impl<W: fmt::Write> JsonObject<'_, W> {
    fn entry(&mut self, field: &Field, value: impl FnOnce(&mut W) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        self.result = (|| {
            if !self.empty {
                self.out.write_char(',')?;
            }
            self.empty = false;
            json_str(self.out, field.name())?;
            self.out.write_char(':')?;
            value(self.out)
        })();
    }
}

impl<W: fmt::Write> Visit for JsonObject<'_, W> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.entry(field, |out| json_str(out, value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.entry(field, |out| write!(out, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.entry(field, |out| write!(out, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.entry(field, |out| write!(out, "{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.entry(field, |out| {
            if value.is_finite() {
                write!(out, "{value}")
            } else {
                out.write_str("null")
            }
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.entry(field, |out| json_string(out, format_args!("{value:?}")));
    }
}

/// `text` as a JSON string: [`json_string`] without formatting machinery for the usual string,
/// which needs no escape (a request id, a field's name).
fn json_str(out: &mut impl fmt::Write, text: &str) -> fmt::Result {
    if text.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        return json_string(out, format_args!("{text}"));
    }
    out.write_char('"')?;
    out.write_str(text)?;
    out.write_char('"')
}

/// `text` as a JSON string, escaped as it is written.
fn json_string(out: &mut impl fmt::Write, text: fmt::Arguments<'_>) -> fmt::Result {
    struct Escaped<'a, W: fmt::Write>(&'a mut W);
    impl<W: fmt::Write> fmt::Write for Escaped<'_, W> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            let mut plain = 0;
            for (i, c) in s.char_indices() {
                let escape = match c {
                    '"' => "\\\"",
                    '\\' => "\\\\",
                    '\n' => "\\n",
                    '\r' => "\\r",
                    '\t' => "\\t",
                    c if (c as u32) < 0x20 => "",
                    _ => continue,
                };
                self.0.write_str(&s[plain..i])?;
                if escape.is_empty() {
                    write!(self.0, "\\u{:04x}", c as u32)?;
                } else {
                    self.0.write_str(escape)?;
                }
                plain = i + c.len_utf8();
            }
            self.0.write_str(&s[plain..])
        }
    }
    out.write_char('"')?;
    Escaped(out).write_fmt(text)?;
    out.write_char('"')
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The `span` object of the one line logged inside a span that `open` enters.
    fn span_object(open: impl FnOnce() -> tracing::Span) -> serde_json::Value {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = json(EnvFilter::new("info"), move || writer.clone());
        tracing::subscriber::with_default(subscriber, || {
            let span = open();
            let _entered = span.enter();
            tracing::info!("inside");
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        line["span"].clone()
    }

    #[test]
    fn span_fields_are_a_json_object_of_every_kind_of_value() {
        let awkward = "a \"quoted\"\\path\nwith\ttabs\u{1}and é";
        let span = span_object(|| {
            tracing::info_span!(
                "request",
                text = awkward,
                signed = -7i64,
                unsigned = 7u64,
                yes = true,
                ratio = 0.5f64,
                nan = f64::NAN,
                debug = ?vec!["x", "y"],
                shown = %"display",
            )
        });
        assert_eq!(
            span,
            serde_json::json!({
                "name": "request",
                "text": awkward,
                "signed": -7,
                "unsigned": 7,
                "yes": true,
                "ratio": 0.5,
                "nan": null,
                "debug": "[\"x\", \"y\"]",
                "shown": "display",
            })
        );
    }

    #[test]
    fn fields_recorded_later_join_the_object() {
        let span = span_object(|| {
            let span = tracing::info_span!(
                "request",
                request_id = "r-1",
                trace_id = tracing::field::Empty,
            );
            span.record("trace_id", "abc");
            span
        });
        assert_eq!(
            span,
            serde_json::json!({"name": "request", "request_id": "r-1", "trace_id": "abc"})
        );
        let only_later = span_object(|| {
            let span = tracing::info_span!("request", trace_id = tracing::field::Empty);
            span.record("trace_id", "abc");
            span
        });
        assert_eq!(
            only_later,
            serde_json::json!({"name": "request", "trace_id": "abc"})
        );
        let none = span_object(|| tracing::info_span!("request"));
        assert_eq!(none, serde_json::json!({"name": "request"}));
    }

    /// The lines each filter of `spec` lets through, of a fixed set of events.
    fn let_through(filter: LogFilter) -> Vec<String> {
        let captured = Captured::default();
        let writer = captured.clone();
        tracing::subscriber::with_default(json(filter, move || writer.clone()), || {
            tracing::debug!(target: "tokenauth_store::db", "store debug");
            tracing::info!(target: "tokenauth_store::db", "store info");
            tracing::info!(target: "tokenauth_kit::server", "kit info");
            tracing::warn!(target: "tokenauth_kit::server", "kit warn");
            tracing::error!(target: "other", "other error");
            let span = tracing::error_span!("request", request_id = "r-1");
            let _entered = span.enter();
            tracing::debug!(target: "tokenauth_kit::server", "kit debug in a request");
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["message"].to_string())
            .collect()
    }

    #[test]
    fn a_filter_of_targets_and_levels_lets_through_what_env_filter_would() {
        for spec in [
            "warn",
            "info,tokenauth_store=debug",
            "tokenauth_kit=debug,,off",
            "tokenauth_store",
            "error,tokenauth_kit::server=trace",
            "OFF",
        ] {
            let filter = LogFilter::parse(spec).unwrap();
            assert!(filter.targets.is_some() && filter.env.is_none(), "{spec}");
            assert_eq!(
                let_through(filter),
                let_through(LogFilter::from(EnvFilter::new(spec))),
                "{spec}"
            );
        }
    }

    #[test]
    fn a_filter_naming_spans_or_fields_stays_an_env_filter() {
        let spec = "warn,[request{request_id=r-1}]=debug";
        let filter = LogFilter::parse(spec).unwrap();
        assert!(filter.targets.is_none() && filter.env.is_some());
        assert!(filter.names_spans());
        assert!(
            !LogFilter::parse("warn,tokenauth_kit=debug")
                .unwrap()
                .names_spans()
        );
        let lines = let_through(filter);
        assert!(
            lines.iter().any(|l| l.contains("kit debug in a request")),
            "{lines:?}"
        );
        assert!(!lines.iter().any(|l| l.contains("store info")), "{lines:?}");
        assert!(LogFilter::parse("info,=nonsense=").is_err());
    }
}
