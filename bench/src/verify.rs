//! Verifying tokens at the resource-service, against baselines measured in the same run:
//! - warm: `GET /v1/secret` with one valid EdDSA token and a live Redis revocation mirror, vs.
//!   the same service's `GET /healthz` (target ≥ 0.90);
//! - cold: every request a token not seen before, vs. a bare jsonwebtoken EdDSA-verify endpoint
//!   built here (target ≥ 0.85);
//! - the resource-service's resident memory under that load (target ≤ 32 MiB);
//! - revocation propagation: from `POST /v1/logout` returning to both of two replicas refusing
//!   the token, over 200 logouts (target p99 ≤ 50 ms).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::json;
use tokenauth_jwt::{AccessClaims, SigningKey};

use crate::procs::{self, Proc, wait_ready};
use crate::stats::{ms, percentile};
use crate::wrk;

const PASSWORD: &str = "benchmark password 1";
const COLD_TOKENS: usize = 200_000;

pub struct Setup {
    pub auth: Proc,
    pub replicas: Vec<Proc>,
    pub public_key_file: std::path::PathBuf,
    pub client: reqwest::Client,
}

/// An auth-service and `replicas` resource-services sharing Redis, on a fresh SQLite file.
pub async fn start(dir: &Path, redis_url: &str, replicas: usize) -> anyhow::Result<Setup> {
    let (key_file, public_key_file) = procs::key_files(dir)?;
    let prefix = format!("bench{}:", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let shared = [
        ("REDIS_URL", redis_url.to_owned()),
        ("REDIS_KEY_PREFIX", prefix),
    ];
    let mut auth_env = shared.to_vec();
    auth_env.push((
        "DATABASE_URL",
        format!("sqlite://{}/auth.db", dir.display()),
    ));
    auth_env.push(("JWT_PRIVATE_KEY_FILE", key_file.display().to_string()));
    let auth = procs::spawn("auth-service", &auth_env, dir)?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    wait_ready(&client, &auth.base, "/readyz").await?;
    let mut started = Vec::new();
    for _ in 0..replicas {
        let mut env = shared.to_vec();
        env.push(("JWT_PUBLIC_KEY_FILE", public_key_file.display().to_string()));
        env.push(("FILES_DIR", dir.join("files").display().to_string()));
        let replica = procs::spawn("resource-service", &env, dir)?;
        wait_ready(&client, &replica.base, "/readyz").await?;
        started.push(replica);
    }
    Ok(Setup {
        auth,
        replicas: started,
        public_key_file,
        client,
    })
}

impl Setup {
    /// The status of `GET /v1/secret` on one replica with `token`.
    pub async fn secret_status(&self, replica: &Proc, token: &str) -> anyhow::Result<u16> {
        Ok(self
            .client
            .get(format!("{}/v1/secret", replica.base))
            .bearer_auth(token)
            .send()
            .await?
            .status()
            .as_u16())
    }

    pub async fn login(&self, username: &str) -> anyhow::Result<String> {
        let res = self
            .client
            .post(format!("{}/v1/login", self.auth.base))
            .json(&json!({"username": username, "password": PASSWORD}))
            .send()
            .await?;
        if !res.status().is_success() {
            bail!("login answered {}", res.status());
        }
        let body: serde_json::Value = res.json().await?;
        Ok(body["access_token"].as_str().unwrap_or_default().to_owned())
    }

    pub async fn register(&self, username: &str) -> anyhow::Result<()> {
        let res = self
            .client
            .post(format!("{}/v1/register", self.auth.base))
            .json(&json!({"username": username, "password": PASSWORD}))
            .send()
            .await?;
        if res.status().as_u16() != 201 {
            bail!("register answered {}", res.status());
        }
        Ok(())
    }
}

fn mint(key: &SigningKey, count: usize) -> anyhow::Result<Vec<String>> {
    let now = tokenauth_revocation::unix_now();
    let threads = 2;
    let per = count.div_ceil(threads);
    let chunks: Vec<anyhow::Result<Vec<String>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    (0..per)
                        .map(|i| {
                            let claims = AccessClaims {
                                iss: "http://127.0.0.1:8080".into(),
                                sub: format!("bench-{t}-{i}"),
                                aud: vec!["resource-service".into()],
                                exp: now + 900,
                                iat: now,
                                nbf: now,
                                jti: uuid::Uuid::new_v4().to_string(),
                                client_id: "bench".into(),
                                scope: "api".into(),
                                roles: vec!["user".into()],
                                sid: Some(uuid::Uuid::new_v4().to_string()),
                                preferred_username: None,
                                act: None,
                            };
                            Ok(key.sign(&claims)?)
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("minting thread panicked")))
            })
            .collect()
    });
    let mut all = Vec::with_capacity(count);
    for chunk in chunks {
        all.extend(chunk?);
    }
    all.truncate(count);
    Ok(all)
}

/// A wrk script giving each of its two threads its own half of the tokens, each used once.
fn cold_script(dir: &Path, tokens_file: &Path) -> anyhow::Result<std::path::PathBuf> {
    let script = dir.join("cold.lua");
    std::fs::write(
        &script,
        format!(
            r#"
local counter = 0
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end
function init(args)
  tokens = {{}}
  for line in io.lines("{}") do tokens[#tokens + 1] = line end
  half = math.floor(#tokens / 2)
  i = 0
end
function request()
  i = i + 1
  local idx = (tid * half + (i % half)) + 1
  return wrk.format(nil, nil, {{["Authorization"] = "Bearer " .. tokens[idx]}})
end
"#,
            tokens_file.display()
        ),
    )?;
    Ok(script)
}

pub async fn run(seconds: u64, redis_url: &str) -> anyhow::Result<bool> {
    let dir = procs::temp_dir("verify")?;
    let setup = start(&dir, redis_url, 2).await?;
    let resource = &setup.replicas[0];
    let user = format!("bench{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    setup.register(&user).await?;
    let token = setup.login(&user).await?;
    let header = format!("Authorization: Bearer {token}");
    let secret_url = format!("{}/v1/secret", resource.base);

    // Warm: one token, cached after its first check; revocation still checked every time.
    // Three alternating rounds of each, medians compared.
    let health_url = format!("{}/healthz", resource.base);
    let round = seconds.div_ceil(3).max(2);
    wrk::run(&secret_url, 2, Some(&header), None)?;
    let [health, secret] = wrk::alternate(
        [&|| wrk::run(&health_url, round, None, None), &|| {
            wrk::run(&secret_url, round, Some(&header), None)
        }],
        3,
    )?;
    let rss_kib = resource.rss_kib().unwrap_or(0);
    let warm_ratio = secret.rps / health.rps;

    // Cold: a new token every request, vs. a bare verify endpoint on the same tokens.
    let pem = std::fs::read_to_string(dir.join("signing.pem"))?;
    let tokens = tokio::task::spawn_blocking(move || {
        let key = SigningKey::ed25519_from_pem(&pem)?.remove(0);
        mint(&key, COLD_TOKENS)
    })
    .await??;
    let tokens_file = dir.join("tokens.txt");
    std::fs::write(&tokens_file, tokens.join("\n"))?;
    drop(tokens);
    let script = cold_script(&dir, &tokens_file)?;
    let cold_seconds = seconds.min(5);
    let cold = wrk::run(
        &secret_url,
        cold_seconds,
        None,
        Some(&script.display().to_string()),
    )?;
    let cold_rss_kib = resource.rss_kib().unwrap_or(0);
    let bare = procs::spawn_bench_bare(&setup.public_key_file, &dir)?;
    wait_ready(&setup.client, &bare.base, "/healthz").await?;
    let bare_cold = wrk::run(
        &format!("{}/v1/secret", bare.base),
        cold_seconds,
        None,
        Some(&script.display().to_string()),
    )?;
    drop(bare);
    let cold_ratio = cold.rps / bare_cold.rps;
    if secret.non_2xx + cold.non_2xx > 0 {
        println!(
            "tokenauth answered {} requests with a non-2xx status; its warnings:",
            secret.non_2xx + cold.non_2xx
        );
        Proc::print_warnings(&[&setup.auth, resource]);
    }

    // Propagation: 200 logouts, both replicas polled until they refuse.
    let mut samples = Vec::new();
    for _ in 0..200 {
        let token = setup.login(&user).await?;
        for replica in &setup.replicas {
            let status = setup.secret_status(replica, &token).await?;
            if status != 200 {
                bail!("fresh token refused: {status}");
            }
        }
        let res = setup
            .client
            .post(format!("{}/v1/logout", setup.auth.base))
            .bearer_auth(&token)
            .send()
            .await?;
        if res.status().as_u16() != 204 {
            bail!("logout answered {}", res.status());
        }
        let returned = Instant::now();
        let mut pending: Vec<&Proc> = setup.replicas.iter().collect();
        while !pending.is_empty() {
            let mut still = Vec::new();
            for replica in pending {
                if setup.secret_status(replica, &token).await? != 401 {
                    still.push(replica);
                }
            }
            pending = still;
            if returned.elapsed() > Duration::from_secs(5) {
                bail!("a replica still accepts a revoked token after 5 s");
            }
        }
        samples.push(returned.elapsed());
    }
    samples.sort();
    let (p50, p99, max) = (
        percentile(&samples, 50.0),
        percentile(&samples, 99.0),
        samples.last().copied().unwrap_or_default(),
    );
    let _ = std::fs::remove_dir_all(&dir);

    println!(
        "tokenauth verification benchmark (wrk -t2 -c32; warm: median of 3 alternating {round} s runs each; cold: {cold_seconds} s)"
    );
    println!(
        "  resource-service GET /healthz:           {:>9.0} req/s  p50 {:.2} ms  p99 {:.2} ms",
        health.rps,
        ms(health.p50),
        ms(health.p99)
    );
    println!(
        "  GET /v1/secret, one valid EdDSA token:   {:>9.0} req/s  p50 {:.2} ms  p99 {:.2} ms  (non-2xx {})",
        secret.rps,
        ms(secret.p50),
        ms(secret.p99),
        secret.non_2xx
    );
    println!("  warm ratio /v1/secret / /healthz: {warm_ratio:.3}  (target >= 0.90)");
    println!(
        "  cold /v1/secret, a new token each request: {:>7.0} req/s  p99 {:.2} ms  ({} requests, {COLD_TOKENS} tokens; non-2xx {})",
        cold.rps,
        ms(cold.p99),
        cold.requests,
        cold.non_2xx
    );
    println!(
        "  bare jsonwebtoken EdDSA verify, same tokens: {:>5.0} req/s  p99 {:.2} ms  (non-2xx {})",
        bare_cold.rps,
        ms(bare_cold.p99),
        bare_cold.non_2xx
    );
    println!("  cold ratio resource-service / bare verify: {cold_ratio:.3}  (target >= 0.85)");
    println!(
        "  resource-service RSS: {:.1} MiB after the warm run, {:.1} MiB after the cold run  (target <= 32 MiB)",
        rss_kib as f64 / 1024.0,
        cold_rss_kib as f64 / 1024.0
    );
    println!(
        "  revocation propagation to both of 2 replicas over {} logouts: p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms  (target p99 <= 50 ms)",
        samples.len(),
        ms(p50),
        ms(p99),
        ms(max)
    );
    let pass = warm_ratio >= 0.90
        && cold_ratio >= 0.85
        && ms(p99) <= 50.0
        && (cold_rss_kib.max(rss_kib) as f64 / 1024.0) <= 32.0
        && secret.non_2xx == 0
        && cold.non_2xx == 0
        && bare_cold.non_2xx == 0;
    println!("  result: {}", if pass { "PASS" } else { "FAIL" });
    Ok(pass)
}
