//! An auth-service and a resource-service started together, sharing a revocation mirror as the
//! all-in-one binary does.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokenauth_revocation::{Mirror, MirrorWriter};

pub const PASSWORD: &str = "correct horse battery staple";
/// The bootstrap admin of a [`RedisStack`].
pub const ADMIN: &str = "root";

/// Captures this process's log lines (see [`log_lines`]).
pub fn init_logs() {
    tokenauth_testkit::logs::capture("info");
}

pub use tokenauth_testkit::logs::log_lines;

pub struct Stack {
    pub auth: String,
    pub resource: String,
    pub client: reqwest::Client,
    pub files_dir: PathBuf,
    /// The write side of the mirror both services share, to make it stale as a lost feed would.
    pub revocations: MirrorWriter,
    /// Removed when the stack is dropped.
    _dir: TempDir,
}

pub use tokenauth_testkit::{RedisServer, TempDir, assert_problem, wait_ready};

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
    let mut spawn = tokenauth_testkit::auth::Spawn::new(tokenauth_testkit::auth::Backend::Sqlite);
    spawn.workers = 1;
    for (k, v) in extra {
        spawn = spawn.env(k, v);
    }
    spawn
        .build(&format!("sqlite://{}/auth.db", dir.display()), dir)
        .await
}

pub async fn start_resource(
    vars: &[(&str, String)],
    mirror: Option<Arc<Mirror>>,
) -> resource_service::Application {
    let mut all = env(&[("BIND_ADDR", "127.0.0.1:0".into())]);
    all.extend(env(vars));
    let mut config = resource_service::config::ResourceConfig::from_source(&all).unwrap();
    config.common.workers = Some(1);
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
        init_logs();
        let dir = TempDir::new();
        let auth = start_auth(dir.path(), extra).await;
        let auth_url = auth.base_url();
        let revocations = auth.revocation_writer().unwrap();
        tokio::spawn(auth.run_until_stopped());
        let files_dir = dir.join("files");
        let mut vars = vec![
            ("JWKS_URL", format!("{auth_url}/.well-known/jwks.json")),
            ("FILES_DIR", files_dir.display().to_string()),
        ];
        vars.extend(extra.iter().cloned());
        let resource = start_resource(&vars, Some(revocations.mirror().clone())).await;
        let resource_url = resource.base_url();
        tokio::spawn(resource.run_until_stopped());
        let stack = Stack {
            auth: auth_url,
            resource: resource_url,
            client: reqwest::Client::new(),
            files_dir,
            revocations,
            _dir: dir,
        };
        stack.wait_ready(&stack.auth).await;
        stack.wait_ready(&stack.resource).await;
        stack
    }

    pub async fn wait_ready(&self, base: &str) {
        wait_ready(&self.client, base, Duration::from_secs(15)).await;
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

/// An auth-service and two resource-service replicas sharing one Redis.
pub struct RedisStack {
    pub auth: String,
    shared: Vec<(&'static str, String)>,
    pub replicas: Vec<String>,
    pub client: reqwest::Client,
    pub auth_handle: actix_web::dev::ServerHandle,
    dir: TempDir,
}

impl RedisStack {
    pub async fn start(redis: &RedisServer) -> RedisStack {
        let stack = Self::start_unready(&[("REDIS_URL", redis.url())]).await;
        stack.wait_all_ready(Duration::from_secs(10)).await;
        stack
    }

    /// Started with these Redis settings (`REDIS_URL` and the like) shared by every service,
    /// without waiting for anything to be ready.
    pub async fn start_unready(redis: &[(&'static str, String)]) -> RedisStack {
        let dir = TempDir::new();
        let prefix = format!("t{}:", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let mut shared = redis.to_vec();
        shared.push(("REDIS_KEY_PREFIX", prefix));
        let mut auth_vars = shared.clone();
        auth_vars.push(("BOOTSTRAP_ADMIN_USERNAME", ADMIN.to_owned()));
        auth_vars.push(("BOOTSTRAP_ADMIN_PASSWORD", PASSWORD.to_owned()));
        let auth = start_auth(dir.path(), &auth_vars).await;
        let auth_url = auth.base_url();
        let auth_handle = auth.handle();
        tokio::spawn(auth.run_until_stopped());
        let mut replicas = Vec::new();
        for _ in 0..2 {
            let mut vars = shared.clone();
            vars.push(("JWKS_URL", format!("{auth_url}/.well-known/jwks.json")));
            vars.push(("FILES_DIR", dir.join("files").display().to_string()));
            let replica = start_resource(&vars, None).await;
            replicas.push(replica.base_url());
            tokio::spawn(replica.run_until_stopped());
        }
        RedisStack {
            auth: auth_url,
            shared,
            replicas,
            // A pooled connection idle past the server's keep-alive may be closed just as it is
            // reused (`IncompleteMessage`): drop idle ones well before.
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .pool_idle_timeout(Duration::from_secs(1))
                .build()
                .unwrap(),
            auth_handle,
            dir,
        }
    }

    /// The key prefix this stack's services share.
    pub fn prefix(&self) -> &str {
        self.shared
            .iter()
            .find(|(k, _)| *k == "REDIS_KEY_PREFIX")
            .map(|(_, v)| v.as_str())
            .unwrap()
    }

    /// `GET /readyz` on the auth-service (`None`) or a replica: status and body.
    pub async fn readyz(&self, replica: Option<usize>) -> (u16, serde_json::Value) {
        let base = replica.map_or(&self.auth, |r| &self.replicas[r]);
        let res = self
            .client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or_default())
    }

    /// Another auth-service replica on the same database, signing key and Redis.
    pub async fn second_auth(&self) -> String {
        let second = start_auth(self.dir.path(), &self.shared).await;
        let url = second.base_url();
        tokio::spawn(second.run_until_stopped());
        wait_ready(&self.client, &url, Duration::from_secs(5)).await;
        url
    }

    pub async fn wait_all_ready(&self, limit: Duration) {
        let deadline = std::time::Instant::now() + limit;
        for base in std::iter::once(&self.auth).chain(self.replicas.iter()) {
            wait_ready(&self.client, base, deadline - std::time::Instant::now()).await;
        }
    }

    pub async fn user(&self) -> Value {
        let name = format!("r{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
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

    /// An access token of the bootstrap admin (created in the background at start-up).
    pub async fn admin_token(&self) -> String {
        let started = std::time::Instant::now();
        loop {
            let res = self
                .client
                .post(format!("{}/v1/login", self.auth))
                .json(&json!({"username": ADMIN, "password": PASSWORD}))
                .send()
                .await
                .unwrap();
            if res.status() == StatusCode::OK {
                return access(&res.json().await.unwrap());
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no bootstrap admin"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// An admin API call on the auth-service: the status only.
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        admin: &str,
        body: Option<Value>,
    ) -> u16 {
        let req = self
            .client
            .request(method, format!("{}{path}", self.auth))
            .bearer_auth(admin);
        match body {
            Some(b) => req.json(&b),
            None => req,
        }
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
    }

    /// `GET /v1/secret` on one replica: the status only.
    pub async fn secret(&self, replica: usize, token: &str) -> u16 {
        self.client
            .get(format!("{}/v1/secret", self.replicas[replica]))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    pub async fn logout(&self, token: &str) -> u16 {
        self.client
            .post(format!("{}/v1/logout", self.auth))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }
}
