//! JSON request bodies. actix's own errors (wrong content type, too large, not JSON) become
//! problems; a body must be a JSON object (400 otherwise), and fields are read one by one so
//! every bad field is reported at once (422 `validation_failed`).
//!
//! A JSON body is one sent as `application/json` (any case), with no parameter but an optional
//! `charset=utf-8` (any case, quoted or not); everything else is 415 `unsupported_media_type`.
//! actix's own check is wider (any `json` subtype or `+json` suffix, any charset), so
//! [`JsonObject`] checks first.

use crate::problem::Code;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use actix_web::dev::{JsonBody, Payload};
use actix_web::error::JsonPayloadError;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use serde_json::{Map, Value};

use crate::Problem;

/// Default body limit.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Every extractor configuration at once: `App::new().configure(body::configure)`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(json_config())
        .app_data(form_config())
        .app_data(query_config())
        .app_data(path_config());
}

/// `app_data` for `web::Json` extraction with the body limit and problem-details errors. The
/// content type stays required, but `JsonConfig::content_type` can only widen actix's check (its
/// predicate is or-ed with "any json subtype or `+json` suffix"), so the exact rule is
/// [`is_json_content_type`], applied by [`JsonObject`], which every handler takes.
pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(BODY_LIMIT)
        .content_type_required(true)
        .error_handler(|err, _req| json_problem(&err).into())
}

/// Whether a request's `Content-Type` is `application/json`, optionally with `charset=utf-8`:
/// one header, the type and subtype in any case, and no other parameter. Empty parameters
/// (`application/json;`) are allowed, as RFC 9110 §5.6.6 allows them.
pub fn is_json_content_type(req: &HttpRequest) -> bool {
    let mut values = req.headers().get_all(header::CONTENT_TYPE);
    let (Some(value), None) = (values.next(), values.next()) else {
        return false;
    };
    let Ok(text) = value.to_str() else {
        return false;
    };
    let mut parts = text.split(';');
    let essence = parts.next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return false;
    }
    let mut charset_seen = false;
    for param in parts.map(str::trim).filter(|p| !p.is_empty()) {
        let Some((name, value)) = param.split_once('=') else {
            return false;
        };
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        let utf8 =
            name.trim().eq_ignore_ascii_case("charset") && value.eq_ignore_ascii_case("utf-8");
        if !utf8 || charset_seen {
            return false;
        }
        charset_seen = true;
    }
    true
}

/// `app_data` for form bodies (the OAuth endpoints) with the same limit.
pub fn form_config() -> web::FormConfig {
    web::FormConfig::default()
        .limit(BODY_LIMIT)
        .error_handler(|err, _req| {
            use actix_web::error::UrlencodedError as E;
            match err {
                E::Overflow { .. } => payload_too_large(),
                E::ContentType => unsupported_media_type(),
                _ => Problem::invalid_request("Body is not a valid form"),
            }
            .into()
        })
}

/// `app_data` for query strings.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default()
        .error_handler(|_err, _req| Problem::invalid_request("Invalid query string").into())
}

/// `app_data` for path segments.
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|_err, _req| Problem::not_found().into())
}

fn payload_too_large() -> Problem {
    Problem::new(
        Code::PayloadTooLarge,
        format!("Body is larger than {BODY_LIMIT} bytes"),
    )
}

fn unsupported_media_type() -> Problem {
    Problem::new(
        Code::UnsupportedMediaType,
        "Send the body as application/json (UTF-8)",
    )
}

fn json_problem(err: &JsonPayloadError) -> Problem {
    match err {
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
            payload_too_large()
        }
        JsonPayloadError::ContentType => unsupported_media_type(),
        JsonPayloadError::Deserialize(e) if e.is_eof() && e.line() == 1 && e.column() == 0 => {
            Problem::invalid_request("Body is empty; send a JSON object")
        }
        JsonPayloadError::Payload(actix_web::error::PayloadError::Io(e))
            if e.kind() == std::io::ErrorKind::TimedOut =>
        {
            Problem::invalid_request(format!(
                "Body not received within {}s",
                crate::deadline::BODY_DEADLINE.as_secs()
            ))
        }
        JsonPayloadError::Deserialize(e) if e.is_data() => {
            Problem::invalid_request(format!("Body is not acceptable: {e}"))
        }
        _ => Problem::invalid_request("Body is not valid JSON"),
    }
}

/// A body's top-level JSON value: an object whose names are each given once, `null`, or anything
/// else.
/// A repeated name is refused rather than letting the last one win: two parsers reading the same
/// body must never see different fields (`{"password": "a", "password": "b"}`).
enum TopLevel {
    Object(Map<String, Value>),
    Null,
    Other,
}

impl<'de> serde::Deserialize<'de> for TopLevel {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TopLevelVisitor)
    }
}

struct TopLevelVisitor;

macro_rules! other {
    ($($name:ident: $ty:ty),*) => {
        $(fn $name<E: serde::de::Error>(self, _: $ty) -> Result<TopLevel, E> {
            Ok(TopLevel::Other)
        })*
    };
}

impl<'de> serde::de::Visitor<'de> for TopLevelVisitor {
    type Value = TopLevel;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut access: A) -> Result<TopLevel, A::Error> {
        let mut map = Map::new();
        while let Some(name) = access.next_key::<String>()? {
            let value: Value = access.next_value()?;
            if map.contains_key(&name) {
                return Err(serde::de::Error::custom(format!(
                    "the field `{name}` is given more than once"
                )));
            }
            map.insert(name, value);
        }
        Ok(TopLevel::Object(map))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<TopLevel, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(TopLevel::Other)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<TopLevel, E> {
        Ok(TopLevel::Null)
    }

    other!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str);
}

/// A JSON object body. Anything else (an array, a number, `null`) is 400 `invalid_request`, and
/// so is an object that gives a field twice.
#[derive(Debug, Default)]
pub struct JsonObject(pub Map<String, Value>);

/// The body's top-level JSON value, its content type checked and its size bounded.
fn read_top_level(
    req: &HttpRequest,
    payload: &mut Payload,
) -> Pin<Box<dyn Future<Output = Result<TopLevel, actix_web::Error>>>> {
    if !is_json_content_type(req) {
        return Box::pin(async { Err(unsupported_media_type().into()) });
    }
    // The type is checked above; actix's own check would refuse some types the rule allows
    // (`application/json ; charset=utf-8`: RFC 9110 allows the space), so it is skipped.
    let body = JsonBody::<TopLevel>::new(req, payload, None, false).limit(BODY_LIMIT);
    Box::pin(async move { Ok(body.await.map_err(|e| json_problem(&e))?) })
}

fn not_an_object() -> actix_web::Error {
    Problem::invalid_request("Body must be a JSON object").into()
}

impl FromRequest for JsonObject {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read_top_level(req, payload);
        Box::pin(async move {
            match body.await? {
                TopLevel::Object(map) => Ok(JsonObject(map)),
                TopLevel::Null | TopLevel::Other => Err(not_an_object()),
            }
        })
    }
}

/// A JSON object body that may be absent: no body at all, or the JSON `null` (which the
/// document shows such a body may be), reads as an empty object.
#[derive(Debug, Default)]
pub struct OptionalJsonObject(pub Map<String, Value>);

impl FromRequest for OptionalJsonObject {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let headers = req.headers();
        let length = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let chunked = headers.contains_key(header::TRANSFER_ENCODING);
        if length == Some(0) || (length.is_none() && !chunked) {
            return Box::pin(async { Ok(OptionalJsonObject::default()) });
        }
        let body = read_top_level(req, payload);
        Box::pin(async move {
            match body.await? {
                TopLevel::Object(map) => Ok(OptionalJsonObject(map)),
                TopLevel::Null => Ok(OptionalJsonObject::default()),
                TopLevel::Other => Err(not_an_object()),
            }
        })
    }
}

/// Reads fields from a JSON object, collecting every problem before answering.
#[derive(Debug)]
pub struct Fields {
    map: Map<String, Value>,
    errors: BTreeMap<String, Vec<String>>,
}

impl Fields {
    pub fn new(map: Map<String, Value>) -> Self {
        Fields {
            map,
            errors: BTreeMap::new(),
        }
    }

    pub fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errors
            .entry(field.to_owned())
            .or_default()
            .push(message.into());
    }

    /// A string field that must be present.
    pub fn required_str(&mut self, field: &str) -> Option<String> {
        match self.map.remove(field) {
            None | Some(Value::Null) => {
                self.error(field, "is required");
                None
            }
            Some(Value::String(s)) => Some(s),
            Some(_) => {
                self.error(field, "must be a string");
                None
            }
        }
    }

    /// A string field that may be absent or `null`.
    pub fn optional_str(&mut self, field: &str) -> Option<String> {
        match self.map.remove(field) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(_) => {
                self.error(field, "must be a string");
                None
            }
        }
    }

    pub fn optional_bool(&mut self, field: &str) -> Option<bool> {
        match self.map.remove(field) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(b),
            Some(_) => {
                self.error(field, "must be true or false");
                None
            }
        }
    }

    /// An array of strings that may be absent.
    pub fn optional_str_array(&mut self, field: &str) -> Option<Vec<String>> {
        match self.map.remove(field) {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Value::String(s) => out.push(s),
                        _ => {
                            self.error(field, "must be an array of strings");
                            return None;
                        }
                    }
                }
                Some(out)
            }
            Some(_) => {
                self.error(field, "must be an array of strings");
                None
            }
        }
    }

    /// The value of a check of `field` (its domain rules, after it was read): `None`, with the
    /// check's message recorded, if it failed. A field already reported (missing, or of the
    /// wrong type) is not checked again: `None`, nothing more recorded.
    pub fn check<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        if self.errors.contains_key(field) {
            return None;
        }
        result.map_err(|m| self.error(field, m)).ok()
    }

    /// 422 with every collected error, or `Ok` if there were none. Unknown fields are ignored.
    pub fn finish(self) -> Result<(), Problem> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(Problem::validation(self.errors))
        }
    }

    /// Like [`Fields::finish`], then unwraps the values read (all present when nothing failed).
    pub fn finish_with<T>(self, values: Option<T>) -> Result<T, Problem> {
        self.finish()?;
        values.ok_or_else(|| Problem::internal("a checked field was missing"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    /// The status of reading `{}` sent with this `Content-Type` (200 when it was read).
    async fn read_with(content_type: Option<&[u8]>) -> u16 {
        let mut req = TestRequest::post()
            .app_data(json_config())
            .set_payload("{}");
        if let Some(ct) = content_type {
            let value = header::HeaderValue::from_bytes(ct).unwrap();
            req = req.insert_header((header::CONTENT_TYPE, value));
        }
        let (req, mut payload) = req.to_http_parts();
        match JsonObject::from_request(&req, &mut payload).await {
            Ok(_) => 200,
            Err(e) => e.as_response_error().status_code().as_u16(),
        }
    }

    #[actix_web::test]
    async fn only_application_json_in_utf_8_is_json() {
        for accepted in [
            "application/json",
            "APPLICATION/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=UTF-8",
            "application/json; charset=\"utf-8\"",
            "application/json ; CHARSET=Utf-8",
            "application/json;",
            "application/json; ",
        ] {
            assert_eq!(
                read_with(Some(accepted.as_bytes())).await,
                200,
                "{accepted}"
            );
        }
        for refused in [
            "application/json-patch+json",
            "application/problem+json",
            "application/merge-patch+json",
            "application/vnd.api+json",
            "text/json",
            "text/plain",
            "application/jsonx",
            "application/json; charset=latin1",
            "application/json; charset=iso-8859-1",
            "application/json; charset=utf-16",
            "application/json; charset=utf8",
            "application/json; charset=\"latin1\"",
            "application/json; charset=\"utf-8",
            "application/json; charset=",
            "application/json; charset=utf-8; charset=utf-8",
            "application/json; charset=utf-8; boundary=x",
            "application/json; version=2",
            "application/json, text/plain",
            "application/json charset=utf-8",
            "application/x-www-form-urlencoded",
            "application/",
            "json",
            "",
        ] {
            assert_eq!(read_with(Some(refused.as_bytes())).await, 415, "{refused}");
        }
        assert_eq!(read_with(None).await, 415, "no content type");
        let two = TestRequest::post()
            .append_header((header::CONTENT_TYPE, "application/json"))
            .append_header((header::CONTENT_TYPE, "application/json"))
            .to_http_request();
        assert!(!is_json_content_type(&two), "two Content-Type headers");
        assert_eq!(
            read_with(Some(b"application/json; charset=\xfftf-8")).await,
            415,
            "not text"
        );
    }

    /// What each reader makes of `body`: the object's field names, or the refusal's status.
    async fn read_body(body: &'static str) -> [Result<Vec<String>, u16>; 2] {
        let parts = || {
            TestRequest::post()
                .insert_header((header::CONTENT_TYPE, "application/json"))
                .set_payload(body)
                .to_http_parts()
        };
        let status = |e: actix_web::Error| e.as_response_error().status_code().as_u16();
        let (req, mut payload) = parts();
        let required = JsonObject::from_request(&req, &mut payload)
            .await
            .map(|o| o.0.keys().cloned().collect())
            .map_err(status);
        let (req, mut payload) = parts();
        let optional = OptionalJsonObject::from_request(&req, &mut payload)
            .await
            .map(|o| o.0.keys().cloned().collect())
            .map_err(status);
        [required, optional]
    }

    /// A JSON object's text with `fields` in order, each value written as JSON.
    fn object_text(fields: &[(String, Value)]) -> String {
        let members: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("{}:{v}", Value::String(k.clone())))
            .collect();
        format!("{{{}}}", members.join(","))
    }

    fn values() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            "\\PC{0,12}".prop_map(Value::String),
            prop::collection::vec("\\PC{0,4}".prop_map(Value::String), 0..3).prop_map(Value::Array),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(256))]

        /// An object whose names are each given once is read whole, as written; the same object
        /// with any one name given again, anywhere and with any value, is refused: two readers
        /// of one body must never see different fields.
        #[test]
        fn an_object_is_read_whole_and_a_name_given_twice_is_refused(
            fields in proptest::collection::btree_map("\\PC{0,8}", values(), 1..6),
            pick: proptest::sample::Index,
            at: proptest::sample::Index,
            again in values(),
        ) {
            let fields: Vec<(String, Value)> = fields.into_iter().collect();
            let read = serde_json::from_str::<TopLevel>(&object_text(&fields));
            let expected: Map<String, Value> = fields.iter().cloned().collect();
            proptest::prop_assert!(matches!(read, Ok(TopLevel::Object(ref m)) if *m == expected));

            let name = fields[pick.index(fields.len())].0.clone();
            let mut twice = fields.clone();
            twice.insert(at.index(fields.len() + 1), (name.clone(), again));
            let refused = serde_json::from_str::<TopLevel>(&object_text(&twice));
            let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
            let expected = format!("the field `{name}` is given more than once");
            proptest::prop_assert!(message.starts_with(&expected), "{}", message);
        }
    }

    #[actix_web::test]
    async fn null_is_no_body_where_the_body_is_optional_and_refused_where_it_is_required() {
        assert_eq!(read_body("null").await, [Err(400), Ok(vec![])]);
        assert_eq!(read_body(" null ").await, [Err(400), Ok(vec![])]);
        let object = Ok(vec!["a".to_owned()]);
        assert_eq!(read_body(r#"{"a":1}"#).await, [object.clone(), object]);
        for other in ["[]", "1", "\"x\"", "true", "[null]"] {
            assert_eq!(read_body(other).await, [Err(400), Err(400)], "{other}");
        }
        assert_eq!(read_body(r#"{"a":1,"a":2}"#).await, [Err(400), Err(400)]);
        assert_eq!(read_body("nul").await, [Err(400), Err(400)]);
    }
}
