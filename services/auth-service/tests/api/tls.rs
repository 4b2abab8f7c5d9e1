//! `TLS_CERT_FILE` and `TLS_KEY_FILE` serve HTTPS with rustls.

use reqwest::StatusCode;

use crate::helpers::{Backend, Spawn, fresh_data_dir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_when_a_certificate_is_configured() {
    let dir = fresh_data_dir();
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();

    let mut spawn = Spawn::new(Backend::Sqlite)
        .env("TLS_CERT_FILE", cert_path.to_str().unwrap())
        .env("TLS_KEY_FILE", key_path.to_str().unwrap());
    spawn.wait_ready = false;
    let app = spawn.start().await;
    assert!(app.base.starts_with("https://"), "{}", app.base);

    let client = reqwest::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let res = client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = app.url("/healthz").replace("https://", "http://");
    assert!(reqwest::get(plain).await.is_err());
    let _ = std::fs::remove_dir_all(dir);
}
