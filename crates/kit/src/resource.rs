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
    web::resource(path)
        .route(
            web::route()
                .guard(guard::Any(guard::Get()).or(guard::Head()))
                .to(handler),
        )
        .default_service(method_not_allowed("GET, HEAD"))
}

/// `POST` on `path`.
pub fn post<F, Args>(path: &str, handler: F) -> Resource
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    web::resource(path)
        .route(web::post().to(handler))
        .default_service(method_not_allowed("POST"))
}

/// `PUT` on `path`.
pub fn put<F, Args>(path: &str, handler: F) -> Resource
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    web::resource(path)
        .route(web::put().to(handler))
        .default_service(method_not_allowed("PUT"))
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
                .service(put("/u", hello)),
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
        for (method, path) in [(Method::POST, "/p"), (Method::PUT, "/u")] {
            let res = t::call_service(&app, call(method.clone(), path)).await;
            assert_eq!(res.status(), StatusCode::OK, "{method} {path}");
        }
    }
}
