//! Resources that answer one method, so both services register routes alike. A GET resource
//! answers HEAD with the same handler: the server sends HEAD's status and headers, including
//! `Content-Length`, and drops the body (RFC 9110 §9.3.2). Any other method is 405
//! `method_not_allowed` with `Allow`.

use actix_web::{FromRequest, Handler, Resource, Responder, guard, web};

use crate::problem::method_not_allowed;

/// `GET` (and so `HEAD`) on `path`.
pub fn get<F, Args>(path: &str, handler: F) -> Resource
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    methods(path).get(handler).finish()
}

/// `POST` on `path`.
pub fn post<F, Args>(path: &str, handler: F) -> Resource
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    methods(path).post(handler).finish()
}

/// `PUT` on `path`.
pub fn put<F, Args>(path: &str, handler: F) -> Resource
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    methods(path).put(handler).finish()
}

/// A path that answers several methods, each with its own handler; any other method is 405
/// with an `Allow` naming exactly those registered. `GET` answers `HEAD` too.
pub struct Methods {
    resource: Resource,
    allow: Vec<&'static str>,
}

/// Starts a [`Methods`] resource on `path`.
pub fn methods(path: &str) -> Methods {
    Methods {
        resource: web::resource(path),
        allow: Vec::new(),
    }
}

macro_rules! method {
    ($(#[$doc:meta])* $name:ident, $guard:expr, $allow:literal) => {
        $(#[$doc])*
        pub fn $name<F, Args>(mut self, handler: F) -> Self
        where
            F: Handler<Args>,
            Args: FromRequest + 'static,
            F::Output: Responder + 'static,
        {
            self.resource = self.resource.route(web::route().guard($guard).to(handler));
            self.allow.push($allow);
            self
        }
    };
}

impl Methods {
    method!(
        /// `GET` and `HEAD`.
        get,
        guard::Any(guard::Get()).or(guard::Head()),
        "GET, HEAD"
    );
    method!(post, guard::Post(), "POST");
    method!(put, guard::Put(), "PUT");
    method!(patch, guard::Patch(), "PATCH");
    method!(delete, guard::Delete(), "DELETE");

    /// The resource, with its 405 for every other method.
    pub fn finish(self) -> Resource {
        let allow = self.allow.join(", ");
        self.resource.default_service(method_not_allowed(allow))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::{Method, StatusCode};
    use actix_web::test as t;
    use actix_web::{App, HttpResponse, body};

    async fn hello() -> HttpResponse {
        HttpResponse::Ok().content_type("text/plain").body("hello")
    }

    #[actix_web::test]
    async fn get_resources_answer_head_and_refuse_the_rest_with_allow() {
        let app = t::init_service(
            App::new()
                .service(get("/g", hello))
                .service(post("/p", hello))
                .service(put("/u", hello))
                .service(
                    methods("/m")
                        .get(hello)
                        .patch(|| async { HttpResponse::Accepted().finish() })
                        .delete(|| async { HttpResponse::NoContent().finish() })
                        .finish(),
                ),
        )
        .await;
        let call = |method: Method, path: &'static str| {
            t::TestRequest::default()
                .method(method)
                .uri(path)
                .to_request()
        };
        for method in [Method::GET, Method::HEAD] {
            let res = t::call_service(&app, call(method.clone(), "/g")).await;
            assert_eq!(res.status(), StatusCode::OK, "{method}");
            // The transport, not the handler, leaves HEAD's body out.
            assert_eq!(body::to_bytes(res.into_body()).await.unwrap(), "hello");
        }
        for (method, path, allow) in [
            (Method::POST, "/g", "GET, HEAD"),
            (Method::OPTIONS, "/g", "GET, HEAD"),
            (Method::HEAD, "/p", "POST"),
            (Method::GET, "/p", "POST"),
            (Method::HEAD, "/u", "PUT"),
            (Method::POST, "/m", "GET, HEAD, PATCH, DELETE"),
            (Method::PUT, "/m", "GET, HEAD, PATCH, DELETE"),
        ] {
            let res = t::call_service(&app, call(method.clone(), path)).await;
            assert_eq!(
                res.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            assert_eq!(
                res.headers().get("allow").unwrap(),
                allow,
                "{method} {path}"
            );
        }
        for (method, path, status) in [
            (Method::POST, "/p", StatusCode::OK),
            (Method::PUT, "/u", StatusCode::OK),
            (Method::GET, "/m", StatusCode::OK),
            (Method::HEAD, "/m", StatusCode::OK),
            (Method::PATCH, "/m", StatusCode::ACCEPTED),
            (Method::DELETE, "/m", StatusCode::NO_CONTENT),
        ] {
            let res = t::call_service(&app, call(method.clone(), path)).await;
            assert_eq!(res.status(), status, "{method} {path}");
        }
    }
}
