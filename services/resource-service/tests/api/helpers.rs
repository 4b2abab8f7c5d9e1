//! An auth-service and a resource-service started together, sharing a revocation mirror as the
//! all-in-one binary does.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokenauth_revocation::Mirror;

pub const PASSWORD: &str = "correct horse battery staple";

pub struct Stack {
    pub auth: String,
    pub resource: String,
    pub client: reqwest::Client,
    pub files_dir: PathBuf,
    pub mirror: Arc<Mirror>,
    dir: PathBuf,
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tokenauth-rs-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn env(pairs: &[(&str, String)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

pub async fn start_auth(
    dir: &std::path::Path,
    extra: &[(&str, String)],
) -> auth_service::Application {
    let mut vars = env(&[
        ("BIND_ADDR", "127.0.0.1:0".into()),
        (
            "DATABASE_URL",
            format!("sqlite://{}/auth.db", dir.display()),
        ),
    ]);
    vars.extend(env(extra));
    let mut config = auth_service::config::AuthConfig::from_source(&vars).unwrap();
    config.data_dir = dir.to_path_buf();
    config.workers = Some(1);
    auth_service::Application::build(config).await.unwrap()
}

pub async fn start_resource(
    vars: &[(&str, String)],
    mirror: Arc<Mirror>,
) -> resource_service::Application {
    let mut all = env(&[("BIND_ADDR", "127.0.0.1:0".into())]);
    all.extend(env(vars));
    let mut config = resource_service::config::ResourceConfig::from_source(&all).unwrap();
    config.workers = Some(1);
    resource_service::Application::build(config, mirror)
        .await
        .unwrap()
}

impl Stack {
    pub async fn start() -> Stack {
        Self::start_with(&[]).await
    }

    /// `extra` applies to both services (e.g. HS256 mode).
    pub async fn start_with(extra: &[(&str, String)]) -> Stack {
        let dir = temp_dir();
        let auth = start_auth(&dir, extra).await;
        let auth_url = auth.base_url();
        let mirror = auth.revocation_mirror();
        tokio::spawn(auth.run_until_stopped());
        let files_dir = dir.join("files");
        let mut vars = vec![
            ("JWKS_URL", format!("{auth_url}/.well-known/jwks.json")),
            ("FILES_DIR", files_dir.display().to_string()),
        ];
        vars.extend(extra.iter().cloned());
        let resource = start_resource(&vars, mirror.clone()).await;
        let resource_url = resource.base_url();
        tokio::spawn(resource.run_until_stopped());
        let stack = Stack {
            auth: auth_url,
            resource: resource_url,
            client: reqwest::Client::new(),
            files_dir,
            mirror,
            dir,
        };
        stack.wait_ready(&stack.auth).await;
        stack.wait_ready(&stack.resource).await;
        stack
    }

    pub async fn wait_ready(&self, base: &str) {
        for _ in 0..300 {
            if let Ok(res) = self.client.get(format!("{base}/readyz")).send().await
                && res.status() == StatusCode::OK
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{base} not ready");
    }

    /// Registers a user and returns its token response.
    pub async fn user(&self) -> Value {
        let name = format!("u{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let res = self
            .client
            .post(format!("{}/v1/register", self.auth))
            .json(&json!({"username": name, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        res.json().await.unwrap()
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut req = self.client.get(format!("{}{path}", self.resource));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }
}

pub fn access(v: &Value) -> String {
    v["access_token"].as_str().unwrap().to_owned()
}

pub async fn assert_problem(res: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(res.status().as_u16(), status, "status for {code}");
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    if status == 401 {
        assert!(
            res.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer realm=\"tokenauth\"")
        );
    }
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    body
}
