//! The API description every service serves about itself: `GET /openapi.json` (OpenAPI 3.1,
//! built from the handlers' `#[utoipa::path]` annotations) and `GET /docs`, Swagger UI served
//! from the binary (no CDN, no validator badge: it works offline).
//!
//! A service derives its document with `#[derive(utoipa::OpenApi)]`, names its handlers there,
//! and passes it through [`finish`], which adds what every service shares: the problem-details
//! schema, the reusable error responses, the bearer security scheme and the operational
//! endpoints. [`ApiDocs`] serves the result.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItem};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{HeaderBuilder, InfoBuilder, OpenApi, RefOr};
use utoipa::{PartialSchema, ToResponse, ToSchema};

use crate::problem::{self, Code};
use crate::resource::get;

/// The name of the bearer-token security scheme (`Authorization: Bearer <access token>`).
pub const BEARER: &str = "bearer";

/// Where Swagger UI is served; `GET /docs` redirects here.
const DOCS: &str = "/docs/";

/// An RFC 9457 problem-details body, as every error outside `/oauth/` has it.
#[derive(ToSchema)]
#[schema(as = Problem)]
#[allow(dead_code)]
pub struct ProblemDetails {
    /// The HTTP status, repeated.
    status: u16,
    /// The status's reason phrase.
    title: String,
    /// What clients match on; each code has one status.
    #[schema(schema_with = code_schema)]
    code: String,
    /// For people; never a secret.
    detail: String,
    /// The request's id, as in the `X-Request-Id` response header and the logs.
    request_id: Option<String>,
    /// With `validation_failed`: the messages for each field.
    errors: Option<BTreeMap<String, Vec<String>>>,
    /// With a 503 from `/readyz`: each check and whether it passed.
    checks: Option<BTreeMap<String, String>>,
}

fn code_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(SchemaType::new(Type::String))
        .enum_values(Some(Code::ALL.iter().map(|c| c.as_str())))
        .into()
}

/// A reusable error response: its description and the codes it carries.
pub fn problem_response(description: &str, codes: &[Code]) -> RefOr<utoipa::openapi::Response> {
    let names: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
    let mut response = ResponseBuilder::new()
        .description(format!("{description} (`code`: {})", names.join(", ")))
        .content(
            problem::CONTENT_TYPE,
            ContentBuilder::new()
                .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                    ProblemDetails::name(),
                ))))
                .build(),
        );
    if codes.contains(&Code::RateLimited) {
        response = response.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(Some(<u64 as PartialSchema>::schema()))
                .description(Some("Seconds to wait before trying again"))
                .build(),
        );
    }
    // The problems that carry a challenge (see `Problem::www_authenticate`).
    if codes
        .iter()
        .any(|c| c.status() == StatusCode::UNAUTHORIZED || *c == Code::InsufficientScope)
    {
        response = response.header(
            "WWW-Authenticate",
            HeaderBuilder::new()
                .schema(Some(<String as PartialSchema>::schema()))
                .description(Some("An RFC 6750 `Bearer` challenge"))
                .build(),
        );
    }
    response.build().into()
}

macro_rules! responses {
    ($($(#[$doc:meta])* $name:ident => $description:literal, [$($code:ident),+];)+) => {
        $(
            $(#[$doc])*
            pub struct $name;

            impl<'r> ToResponse<'r> for $name {
                fn response() -> (&'r str, RefOr<utoipa::openapi::Response>) {
                    (stringify!($name), problem_response($description, &[$(Code::$code),+]))
                }
            }
        )+

        /// Every reusable response, for the components section.
        fn shared_responses() -> Vec<(&'static str, RefOr<utoipa::openapi::Response>)> {
            vec![$(<$name as ToResponse>::response()),+]
        }
    };
}

responses! {
    /// 400: the body is not the JSON object (or form) the endpoint reads.
    BadRequest => "The request is malformed", [InvalidRequest];
    /// 401 on an endpoint that needs an access token.
    Unauthorized => "No valid access token", [MissingToken, InvalidToken, TokenExpired, TokenRevoked];
    /// 403 on an admin endpoint.
    Forbidden => "The token's user is not an admin", [InsufficientRole];
    /// 404.
    NotFound => "No such resource", [NotFound];
    /// 409 from the admin API.
    Conflict => "The change would leave no admin", [LastAdmin];
    /// 413.
    PayloadTooLarge => "The body is over the limit", [PayloadTooLarge];
    /// 415.
    UnsupportedMediaType => "The body is not `application/json`", [UnsupportedMediaType];
    /// 422, with `errors` by field.
    ValidationFailed => "Some fields are invalid", [ValidationFailed];
    /// 429, with `Retry-After`.
    RateLimited => "Too many attempts", [RateLimited];
    /// 503: a dependency needed to answer safely is down (fail closed).
    Unavailable => "A dependency is unavailable; try again shortly", [Unavailable];
}

/// Adds to a service's derived document what every service shares. `ready_checks` names the
/// checks `GET /readyz` reports.
pub fn finish(mut api: OpenApi, title: &str, description: &str, ready_checks: &[&str]) -> OpenApi {
    api.info = InfoBuilder::new()
        .title(title)
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(description))
        .build();
    let components = api.components.get_or_insert_with(Default::default);
    components.schemas.insert(
        ProblemDetails::name().into_owned(),
        ProblemDetails::schema(),
    );
    for (name, response) in shared_responses() {
        components.responses.insert(name.to_owned(), response);
    }
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some("An access token from the auth-service"))
                .build(),
        ),
    );
    for (path, item) in operational_paths(ready_checks) {
        api.paths.paths.insert(path.to_owned(), item);
    }
    api
}

fn operation(
    summary: &str,
    description: String,
    responses: Vec<(&str, RefOr<utoipa::openapi::Response>)>,
) -> PathItem {
    let mut op = OperationBuilder::new()
        .tag("operations")
        .summary(Some(summary))
        .description(Some(description));
    for (status, response) in responses {
        op = op.response(status, response);
    }
    PathItem::new(HttpMethod::Get, op)
}

fn content(content_type: &str, schema: RefOr<Schema>) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description("OK")
        .content(
            content_type,
            ContentBuilder::new().schema(Some(schema)).build(),
        )
        .build()
        .into()
}

fn object(properties: &[(&str, RefOr<Schema>)]) -> RefOr<Schema> {
    let mut o = ObjectBuilder::new();
    for (name, schema) in properties {
        o = o.property(*name, schema.clone()).required(*name);
    }
    o.into()
}

fn operational_paths(ready_checks: &[&str]) -> Vec<(&'static str, PathItem)> {
    let string = <String as PartialSchema>::schema;
    let checks: RefOr<Schema> = ObjectBuilder::new()
        .additional_properties(Some(
            ObjectBuilder::new()
                .schema_type(SchemaType::new(Type::String))
                .enum_values(Some(["ok", "unavailable"])),
        ))
        .into();
    let unavailable: RefOr<utoipa::openapi::Response> =
        RefOr::Ref(utoipa::openapi::Ref::from_response_name("Unavailable"));
    vec![
        (
            "/healthz",
            operation(
                "Liveness",
                "200 while the process serves requests; it checks no dependency.".to_owned(),
                vec![(
                    "200",
                    content("application/json", object(&[("status", string())])),
                )],
            ),
        ),
        (
            "/readyz",
            operation(
                "Readiness",
                format!(
                    "200 when every check passes, else 503 `unavailable` naming each check \
                     (checks: {}).",
                    ready_checks.join(", ")
                ),
                vec![
                    (
                        "200",
                        content(
                            "application/json",
                            object(&[("status", string()), ("checks", checks)]),
                        ),
                    ),
                    ("503", unavailable),
                ],
            ),
        ),
        (
            "/metrics",
            operation(
                "Prometheus metrics",
                "The Prometheus text exposition format (version 0.0.4).".to_owned(),
                vec![("200", content("text/plain", string()))],
            ),
        ),
        (
            "/openapi.json",
            operation(
                "This document",
                "OpenAPI 3.1, generated from the code.".to_owned(),
                vec![(
                    "200",
                    content("application/json", ObjectBuilder::new().into()),
                )],
            ),
        ),
        (
            "/docs",
            operation(
                "Interactive API documentation",
                format!("Redirects to `{DOCS}`: Swagger UI, served by this service itself."),
                vec![(
                    "308",
                    ResponseBuilder::new()
                        .description("To the Swagger UI page")
                        .header(
                            "Location",
                            HeaderBuilder::new().schema(Some(string())).build(),
                        )
                        .build()
                        .into(),
                )],
            ),
        ),
    ]
}

/// What the routes serve: the document serialized once, and Swagger UI's configuration.
struct Docs {
    json: web::Bytes,
    swagger: Arc<utoipa_swagger_ui::Config<'static>>,
}

/// A service's API description, built once and mounted in every worker.
#[derive(Clone)]
pub struct ApiDocs(web::Data<Docs>);

impl ApiDocs {
    /// `api` is the document as [`finish`] left it, or its JSON with what `utoipa` cannot
    /// express added (JSON Schema's `if`/`then`).
    pub fn new(api: &impl serde::Serialize) -> Self {
        let json = serde_json::to_vec(api).unwrap_or_default();
        let swagger = utoipa_swagger_ui::Config::new(["/openapi.json"])
            // The default fetches a badge from validator.swagger.io: nothing leaves the page.
            .validator_url("none")
            .try_it_out_enabled(true)
            .display_request_duration(true);
        ApiDocs(web::Data::new(Docs {
            json: web::Bytes::from(json),
            swagger: Arc::new(swagger),
        }))
    }

    /// Mounts `GET /openapi.json`, `GET /docs` (a redirect) and `GET /docs/{file}`.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.service(get("/openapi.json", openapi_json).app_data(self.0.clone()))
            .service(get("/docs", redirect_to_docs))
            .service(get("/docs/{file:.*}", swagger_file).app_data(self.0.clone()));
    }
}

async fn openapi_json(docs: web::Data<Docs>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(docs.json.clone())
}

async fn redirect_to_docs() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, DOCS))
        .finish()
}

/// Swagger UI's page runs only its own files: no inline script, nothing from elsewhere, never
/// framed.
const DOCS_CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
                        object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

async fn swagger_file(
    file: web::Path<String>,
    docs: web::Data<Docs>,
) -> Result<HttpResponse, problem::Problem> {
    let file = utoipa_swagger_ui::serve(&file, docs.swagger.clone())
        .map_err(problem::Problem::internal)?
        .ok_or_else(problem::Problem::not_found)?;
    let body = match file.bytes {
        Cow::Borrowed(b) => web::Bytes::from_static(b),
        Cow::Owned(b) => web::Bytes::from(b),
    };
    Ok(HttpResponse::Ok()
        .content_type(file.content_type)
        .insert_header((header::CONTENT_SECURITY_POLICY, DOCS_CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field a problem body can carry is in the schema.
    #[actix_web::test]
    async fn the_schema_names_every_field_of_a_problem() {
        use actix_web::ResponseError as _;
        let mut errors = BTreeMap::new();
        errors.insert("username".to_owned(), vec!["too short".to_owned()]);
        let res = problem::Problem::validation(errors).error_response();
        let body = actix_web::body::to_bytes(res.into_body()).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let schema = serde_json::to_value(ProblemDetails::schema()).unwrap();
        for field in body.as_object().unwrap().keys() {
            assert!(
                schema["properties"].get(field).is_some(),
                "{field} is not in the Problem schema: {schema}"
            );
        }
        let codes = schema["properties"]["code"]["enum"].as_array().unwrap();
        assert_eq!(codes.len(), Code::ALL.len());
    }
}
