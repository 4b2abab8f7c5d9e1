//! The auth-service as the tests of every service start it: on port 0, against a fresh
//! database of its own (PostgreSQL or SQLite), with a typed client; or, for stacks that need it,
//! the built [`Application`] itself.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use auth_service::Application;
use auth_service::config::AuthConfig;
use diesel::prelude::*;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use tokenauth_store::{Database, DatabaseUrl};

pub const PASSWORD: &str = "correct horse battery staple";
pub const HS_SECRET: &str = "an-hs256-test-secret-of-at-least-32-bytes!";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

pub fn admin_pg_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// `postgres://…/postgres` with the database name replaced.
pub fn pg_url_for(db: &str) -> String {
    let base = admin_pg_url();
    let (prefix, _) = base
        .rsplit_once('/')
        .expect("TEST_DATABASE_URL has a database name");
    format!("{prefix}/{db}")
}

pub fn create_pg_database() -> String {
    let name = format!("tokenauth_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = tokenauth_store::connect_postgres(&admin_pg_url())
        .expect("PostgreSQL must be running for the tests (scripts/test starts it)");
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .expect("create test database");
    name
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub database_url: String,
    pg_database: Option<String>,
    data_dir: Option<PathBuf>,
    /// The write side of the service's in-process revocation mirror (none with Redis), to make
    /// it stale as a lost feed would.
    pub revocations: Option<tokenauth_revocation::MirrorWriter>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(name) = &self.pg_database
            && let Ok(mut conn) = tokenauth_store::connect_postgres(&admin_pg_url())
        {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut conn);
        }
        if let Some(dir) = &self.data_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

pub fn fresh_data_dir() -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("tokenauth-test-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

pub struct Spawn {
    pub backend: Backend,
    pub env: HashMap<String, String>,
    /// Wait for `/readyz` before returning.
    pub wait_ready: bool,
    /// Use this DATABASE_URL instead of a fresh database.
    pub database_url: Option<String>,
    /// Keep the generated key (and SQLite file) here instead of a fresh directory: replicas
    /// sharing it share the signing key.
    pub data_dir: Option<PathBuf>,
    /// HTTP workers.
    pub workers: usize,
}

impl Spawn {
    pub fn new(backend: Backend) -> Self {
        Spawn {
            backend,
            env: HashMap::new(),
            wait_ready: true,
            database_url: None,
            data_dir: None,
            workers: 2,
        }
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.insert(key.to_owned(), value.to_owned());
        self
    }

    /// Starts without waiting for `/readyz`, then waits for the schema only.
    pub async fn start_unready(mut self) -> TestApp {
        self.wait_ready = false;
        let app = self.start().await;
        let db = app.store().await;
        drop(db);
        app
    }

    /// The built application on `database_url` with this configuration, not yet running.
    pub async fn build(&self, database_url: &str, data_dir: &std::path::Path) -> Application {
        let mut env = self.env.clone();
        env.entry("BIND_ADDR".into())
            .or_insert_with(|| "127.0.0.1:0".into());
        // Tests register many users from one address; the registration limit has its own tests.
        env.entry("REGISTER_RATE_LIMIT_PER_MINUTE".into())
            .or_insert_with(|| "0".into());
        env.insert("DATABASE_URL".into(), database_url.to_owned());
        let mut config = AuthConfig::from_source(&env).expect("test config");
        config.data_dir = data_dir.to_path_buf();
        config.common.workers = Some(self.workers);
        Application::build(config).await.expect("build app")
    }

    /// Starts it with every log line captured (at DEBUG, to check that no secret leaks).
    pub async fn start(self) -> TestApp {
        crate::logs::capture("debug");
        let data_dir = self.data_dir.clone().unwrap_or_else(fresh_data_dir);
        let (database_url, pg_database) = match (&self.database_url, self.backend) {
            (Some(url), _) => (url.clone(), None),
            (None, Backend::Postgres) => {
                let name = tokio::task::spawn_blocking(create_pg_database)
                    .await
                    .unwrap();
                (pg_url_for(&name), Some(name))
            }
            (None, Backend::Sqlite) => (
                format!("sqlite://{}", data_dir.join("tokenauth.db").display()),
                None,
            ),
        };
        let app = self.build(&database_url, &data_dir).await;
        let base = app.base_url();
        let revocations = app.revocation_writer();
        tokio::spawn(app.run_until_stopped());
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let test_app = TestApp {
            base,
            client,
            database_url,
            pg_database,
            // A directory the caller handed in is the caller's to remove.
            data_dir: self.data_dir.is_none().then_some(data_dir),
            revocations,
        };
        if self.wait_ready {
            test_app.wait_ready(Duration::from_secs(20)).await;
        }
        test_app
    }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    Spawn::new(backend).start().await
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn wait_ready(&self, limit: Duration) {
        crate::wait_ready(&self.client, &self.base, limit).await;
    }

    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_auth(&self, path: &str, token: &str, body: Option<&Value>) -> Response {
        let req = self.client.post(self.url(path)).bearer_auth(token);
        match body {
            Some(b) => req.json(b),
            None => req,
        }
        .send()
        .await
        .unwrap()
    }

    pub async fn get_auth(&self, path: &str, token: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn register(&self, username: &str) -> Value {
        let res = self
            .post(
                "/v1/register",
                &json!({"username": username, "password": PASSWORD}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED, "register {username}");
        res.json().await.unwrap()
    }

    pub async fn login(&self, username: &str, password: &str) -> Response {
        self.post(
            "/v1/login",
            &json!({"username": username, "password": password}),
        )
        .await
    }

    /// Logs in with the standard password and returns the token response.
    pub async fn login_ok(&self, username: &str) -> Value {
        let res = self.login(username, PASSWORD).await;
        assert_eq!(res.status(), StatusCode::OK);
        res.json().await.unwrap()
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.post(
            "/v1/token/refresh",
            &json!({"refresh_token": refresh_token}),
        )
        .await
    }

    /// A migrated handle on the same database, for checking what was stored.
    pub async fn store(&self) -> Database {
        let db = Database::new(DatabaseUrl::parse(&self.database_url).unwrap()).unwrap();
        let handle = db.clone();
        tokio::task::spawn_blocking(move || handle.migrate())
            .await
            .unwrap()
            .unwrap();
        db
    }
}
