//! The baseline for cold verification: an actix-web endpoint that verifies an EdDSA token with
//! jsonwebtoken and nothing else (no typ/kid/iat checks, no revocation, no cache).

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

async fn secret(req: HttpRequest, state: web::Data<(DecodingKey, Validation)>) -> HttpResponse {
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(token) = token else {
        return HttpResponse::Unauthorized().finish();
    };
    match jsonwebtoken::decode::<serde_json::Value>(token, &state.0, &state.1) {
        Ok(_) => HttpResponse::Ok().json(serde_json::json!({"answer": 42})),
        Err(_) => HttpResponse::Unauthorized().finish(),
    }
}

pub fn serve(port: u16, public_key_file: &str) -> anyhow::Result<()> {
    tokenauth_jwt::install_crypto_provider();
    let pem = std::fs::read(public_key_file)?;
    let key = DecodingKey::from_ed_pem(&pem)?;
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&["resource-service"]);
    validation.set_issuer(&["http://127.0.0.1:8080"]);
    let state = web::Data::new((key, validation));
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .route("/v1/secret", web::get().to(secret))
                .route("/healthz", web::get().to(HttpResponse::Ok))
        })
        .bind(("127.0.0.1", port))?
        .run()
        .await
    })?;
    Ok(())
}
