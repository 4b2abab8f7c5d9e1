//! JSON request bodies. actix's own errors (wrong content type, too large, not JSON) become
//! problems; a body must be a JSON object (400 otherwise), and fields are read one by one so
//! every bad field is reported at once (422 `validation_failed`).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::error::JsonPayloadError;
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

/// `app_data` for JSON extraction with the body limit and problem-details errors.
pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(BODY_LIMIT)
        .error_handler(|err, _req| json_problem(&err).into())
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
        actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("Body is larger than {BODY_LIMIT} bytes"),
    )
}

fn unsupported_media_type() -> Problem {
    Problem::new(
        actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "Send the body as application/json",
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
        _ => Problem::invalid_request("Body is not valid JSON"),
    }
}

/// A JSON object body. Anything else (an array, a number, `null`) is 400 `invalid_request`.
#[derive(Debug, Default)]
pub struct JsonObject(pub Map<String, Value>);

impl FromRequest for JsonObject {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let fut = web::Json::<Value>::from_request(req, payload);
        Box::pin(async move {
            match fut.await?.into_inner() {
                Value::Object(map) => Ok(JsonObject(map)),
                _ => Err(Problem::invalid_request("Body must be a JSON object").into()),
            }
        })
    }
}

/// A JSON object body that may be absent: no body at all reads as an empty object.
#[derive(Debug, Default)]
pub struct OptionalJsonObject(pub Map<String, Value>);

impl FromRequest for OptionalJsonObject {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let headers = req.headers();
        let length = headers
            .get(actix_web::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let chunked = headers.contains_key(actix_web::http::header::TRANSFER_ENCODING);
        if length == Some(0) || (length.is_none() && !chunked) {
            return Box::pin(async { Ok(OptionalJsonObject::default()) });
        }
        let fut = JsonObject::from_request(req, payload);
        Box::pin(async move { Ok(OptionalJsonObject(fut.await?.0)) })
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
