//! The OAuth 2.0 endpoints against a certified OAuth server on this machine
//! (`../shared/peer-oidc-provider`: oidc-provider, one Node.js process, in-memory storage, JWT
//! access tokens signed EdDSA), with tokenauth's auth-service on PostgreSQL (EdDSA, in-process
//! revocations: one process, like the peer), every figure from the same wrk load in one run.
//!
//! Targets: `client_credentials` grants ≥ 2× the peer's; introspections ≥ 2× the peer's and
//! ≥ 0.5× the auth-service's own `/healthz`; refreshes through `/oauth/token` (rotation
//! included) at least those through `/v1/token/refresh` (0.95× allows for noise between two
//! runs of the same work); refreshes through `/v1/token/refresh` ≥ 0.6× the transactions per
//! second of `pgbench -N` against the same PostgreSQL (the database's own ceiling for a small
//! write transaction on this machine: a rotation is one), each pgbench run between two refresh
//! runs.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::cgroup::Group;
use crate::procs::{self, Proc, free_port, wait_ready};
use crate::stats::ms;
use crate::wrk::{self, WrkResult};

const ADMIN: &str = "bench-admin";
const PASSWORD: &str = "benchmark password 1";
/// Sessions each refresh run starts from: more than wrk's connections, so every connection
/// always has a refresh token to send while its previous answer is on the way.
const SESSIONS: usize = 64;

/// Users the sessions belong to: refreshes come from many users, each holding a few sessions
/// (a phone, a laptop, a CLI), not from one user refreshing 64 sessions at once.
const USERS: usize = 16;

/// wrk's script for a form POST with a fixed body.
fn form_script(dir: &Path, name: &str, body: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("{name}.lua"));
    std::fs::write(
        &path,
        format!(
            "wrk.method = \"POST\"\nwrk.body = \"{body}\"\n\
             wrk.headers[\"Content-Type\"] = \"application/x-www-form-urlencoded\"\n"
        ),
    )?;
    Ok(path)
}

/// wrk's script for refreshes: each thread keeps a queue of live refresh tokens (its half of
/// the file given as the first argument), sends the oldest and queues the one each answer
/// rotates to, so no token is ever sent twice. `oauth` sends the grant as a form to
/// `/oauth/token`, `json` as JSON to `/v1/token/refresh`. A thread whose queue ran dry sends a
/// token that cannot work, which counts as a non-2xx answer.
const REFRESH_SCRIPT: &str = r#"
local threads = 0
function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end
function init(args)
  queue = {}
  local i = 0
  for line in io.lines(args[1]) do
    if i % 2 == id then table.insert(queue, line) end
    i = i + 1
  end
  kind = args[2]
end
function request()
  local token = table.remove(queue, 1) or "spent"
  if kind == "oauth" then
    return wrk.format("POST", "/oauth/token",
      {["Content-Type"] = "application/x-www-form-urlencoded"},
      "grant_type=refresh_token&refresh_token=" .. token)
  end
  return wrk.format("POST", "/v1/token/refresh", {["Content-Type"] = "application/json"},
    '{"refresh_token":"' .. token .. '"}')
end
function response(status, headers, body)
  local token = body:match('"refresh_token":"([^"]+)"')
  if token then table.insert(queue, token) end
end
"#;

fn basic(id: &str, secret: &str) -> String {
    use base64::Engine as _;
    let pair = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    format!("Authorization: Basic {pair}")
}

/// The peer, started as its README says, from a folder where its packages are installed.
async fn start_peer(dir: &Path, secret: &str, client: &reqwest::Client) -> anyhow::Result<Proc> {
    let port = free_port()?;
    let child = Command::new("node")
        .arg("server.mjs")
        .current_dir(dir)
        .env("CLIENT_SECRET", secret)
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting node server.mjs (bench/run installs Node.js and the peer)")?;
    let mut peer = Proc {
        base: format!("http://127.0.0.1:{port}"),
        log: None,
        group: None,
        child,
    };
    peer.group = Some(Group::of(peer.child.id(), &format!("oidc-{port}"))?);
    wait_ready(client, &peer.base, "/.well-known/openid-configuration").await?;
    Ok(peer)
}

/// A token from a form POST to `url` with Basic credentials.
async fn grant(
    client: &reqwest::Client,
    url: &str,
    (id, secret): (&str, &str),
    form: &[(&str, &str)],
) -> anyhow::Result<String> {
    let res = client
        .post(url)
        .basic_auth(id, Some(secret))
        .header("content-type", "application/x-www-form-urlencoded")
        // Every value here is a plain token: nothing to escape.
        .body(
            form.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&"),
        )
        .send()
        .await?;
    let status = res.status();
    let body: Value = res.json().await?;
    body["access_token"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("{url} answered {status}: {body}"))
}

/// The auth-service on PostgreSQL with a bootstrap admin, one service client and one user.
struct Ours {
    service: Proc,
    client_id: String,
    secret: String,
}

async fn start_ours(
    client: &reqwest::Client,
    database_url: &str,
    dir: &Path,
) -> anyhow::Result<Ours> {
    let service = procs::spawn(
        "auth-service",
        &[
            ("DATABASE_URL", database_url.to_owned()),
            ("BOOTSTRAP_ADMIN_USERNAME", ADMIN.to_owned()),
            ("BOOTSTRAP_ADMIN_PASSWORD", PASSWORD.to_owned()),
            ("REGISTER_RATE_LIMIT_PER_MINUTE", "0".to_owned()),
        ],
        dir,
    )?;
    wait_ready(client, &service.base, "/readyz").await?;
    let admin = login(client, &service.base, ADMIN).await?.0;
    let res = client
        .post(format!("{}/v1/clients", service.base))
        .bearer_auth(&admin)
        .json(&json!({"name": "bench", "scopes": ["api"]}))
        .send()
        .await?;
    if !res.status().is_success() {
        bail!("registering the client answered {}", res.status());
    }
    let created: Value = res.json().await?;
    for user in 0..USERS {
        let res = client
            .post(format!("{}/v1/register", service.base))
            .json(&json!({"username": format!("bench-user-{user}"), "password": PASSWORD}))
            .send()
            .await?;
        if !res.status().is_success() {
            bail!("registering a user answered {}", res.status());
        }
    }
    Ok(Ours {
        service,
        client_id: created["client_id"]
            .as_str()
            .context("client_id")?
            .to_owned(),
        secret: created["client_secret"]
            .as_str()
            .context("client_secret")?
            .to_owned(),
    })
}

/// An access and a refresh token of a new session of `username`.
async fn login(
    client: &reqwest::Client,
    base: &str,
    username: &str,
) -> anyhow::Result<(String, String)> {
    let started = std::time::Instant::now();
    loop {
        let res = client
            .post(format!("{base}/v1/login"))
            .json(&json!({"username": username, "password": PASSWORD}))
            .send()
            .await?;
        if res.status().is_success() {
            let body: Value = res.json().await?;
            return Ok((
                body["access_token"].as_str().context("access")?.to_owned(),
                body["refresh_token"]
                    .as_str()
                    .context("refresh")?
                    .to_owned(),
            ));
        }
        // The bootstrap admin is created in the background once the schema is in place.
        if started.elapsed() > Duration::from_secs(30) {
            bail!("login of {username} answered {}", res.status());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Writes the refresh tokens of [`SESSIONS`] new sessions to a file for the refresh script.
async fn fresh_sessions(client: &reqwest::Client, base: &str, file: &Path) -> anyhow::Result<()> {
    let names: Vec<String> = (0..SESSIONS)
        .map(|i| format!("bench-user-{}", i % USERS))
        .collect();
    let logins = names.iter().map(|name| login(client, base, name));
    let sessions = futures_util::future::try_join_all(logins).await?;
    let lines: Vec<String> = sessions.into_iter().map(|(_, refresh)| refresh).collect();
    std::fs::write(file, lines.join("\n") + "\n")?;
    Ok(())
}

fn line(name: &str, r: &WrkResult) {
    println!(
        "  {name:<52} {:>8.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  (non-2xx {})",
        r.rps,
        ms(r.p50),
        ms(r.p99),
        r.non_2xx
    );
}

/// Connections pgbench uses: as many as the auth-service's pool holds on PostgreSQL.
const PGBENCH_CLIENTS: &str = "10";

/// Transactions per second of `pgbench -N` (TPC-B-like with only the `pgbench_accounts` update,
/// a select and a history insert: the ceiling for a small write transaction), prepared
/// statements, run from a CPU group of its own like wrk. `database_url` holds pgbench's tables.
fn pgbench(database_url: &str, seconds: u64) -> anyhow::Result<f64> {
    let group = Group::empty("pgbench")?;
    let out = group
        .wrap("pgbench")
        .args([
            "-n",
            "-N",
            "-M",
            "prepared",
            "-c",
            PGBENCH_CLIENTS,
            "-j",
            "2",
            "-T",
        ])
        .arg(seconds.to_string())
        .arg(database_url)
        .stderr(Stdio::inherit())
        .output()
        .context("running pgbench")?;
    if !out.status.success() {
        bail!("pgbench failed: {}", out.status);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    // `tps = 2466.123456 (without initial connection time)`
    text.lines()
        .find_map(|l| {
            l.strip_prefix("tps = ")
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse::<f64>().ok())
        })
        .with_context(|| format!("no tps in pgbench's output: {text}"))
}

pub async fn run(
    seconds: u64,
    database_url: &str,
    pgbench_url: &str,
    peer_dir: &str,
) -> anyhow::Result<bool> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let dir = procs::temp_dir("oauth")?;
    let peer_secret = uuid::Uuid::new_v4().simple().to_string();
    let mut peer = start_peer(Path::new(peer_dir), &peer_secret, &client).await?;
    let ours = start_ours(&client, database_url, &dir).await?;
    let base = ours.service.base.clone();
    let creds = (ours.client_id.as_str(), ours.secret.as_str());

    // What each side introspects: a live token of its own.
    let peer_token = grant(
        &client,
        &format!("{}/token", peer.base),
        ("svc", &peer_secret),
        &[
            ("grant_type", "client_credentials"),
            ("scope", "api"),
            ("resource", "urn:bench:opaque"),
        ],
    )
    .await?;
    let our_token = grant(
        &client,
        &format!("{base}/oauth/token"),
        creds,
        &[("grant_type", "client_credentials"), ("scope", "api")],
    )
    .await?;

    let grant_script = form_script(&dir, "grant", "grant_type=client_credentials&scope=api")?;
    let peer_introspect = form_script(&dir, "peer-introspect", &format!("token={peer_token}"))?;
    let our_introspect = form_script(&dir, "our-introspect", &format!("token={our_token}"))?;
    let refresh_script = dir.join("refresh.lua");
    std::fs::write(&refresh_script, REFRESH_SCRIPT)?;
    let sessions = dir.join("sessions.txt");
    let (peer_auth, our_auth) = (basic("svc", &peer_secret), basic(creds.0, creds.1));
    let (peer_token_url, our_token_url) = (
        format!("{}/token", peer.base),
        format!("{base}/oauth/token"),
    );
    let peer_introspect_url = format!("{}/token/introspection", peer.base);
    let our_introspect_url = format!("{base}/oauth/introspect");
    let healthz = format!("{base}/healthz");
    let round = seconds.div_ceil(3).max(2);
    let script = |p: &Path| p.display().to_string();

    // A warm-up of each side's token endpoint, as the peer's own run.sh does.
    wrk::run(
        &peer_token_url,
        2,
        Some(&peer_auth),
        Some(&script(&grant_script)),
    )?;
    wrk::run(
        &our_token_url,
        2,
        Some(&our_auth),
        Some(&script(&grant_script)),
    )?;

    let [peer_grants, our_grants, peer_intro, our_intro, ceiling] = wrk::alternate(
        [
            &|| {
                wrk::run(
                    &peer_token_url,
                    round,
                    Some(&peer_auth),
                    Some(&script(&grant_script)),
                )
            },
            &|| {
                wrk::run(
                    &our_token_url,
                    round,
                    Some(&our_auth),
                    Some(&script(&grant_script)),
                )
            },
            &|| {
                wrk::run(
                    &peer_introspect_url,
                    round,
                    Some(&peer_auth),
                    Some(&script(&peer_introspect)),
                )
            },
            &|| {
                wrk::run(
                    &our_introspect_url,
                    round,
                    Some(&our_auth),
                    Some(&script(&our_introspect)),
                )
            },
            &|| wrk::run(&healthz, round, None, None),
        ],
        3,
    )?;

    // Refreshes rotate: every run starts from sessions no run has used. Each run adds rows to
    // the tables the next one reads, so the order alternates: neither kind always goes second.
    let mut refreshes: [Vec<WrkResult>; 2] = [Vec::new(), Vec::new()];
    let mut pgbench_tps = Vec::new();
    for i in 0..4 {
        pgbench_tps.push(pgbench(pgbench_url, round)?);
        let mut order: Vec<(&str, &mut Vec<WrkResult>)> =
            ["json", "oauth"].into_iter().zip(&mut refreshes).collect();
        if i % 2 == 1 {
            order.reverse();
        }
        for (kind, results) in order {
            fresh_sessions(&client, &base, &sessions).await?;
            let file = sessions.display().to_string();
            let run = wrk::run_with_args(
                &base,
                round,
                None,
                Some(&script(&refresh_script)),
                &[&file, kind],
            )?;
            results.push(run);
        }
    }
    let [json_refresh, oauth_refresh] = refreshes.map(wrk::median);
    pgbench_tps.sort_by(f64::total_cmp);
    let pgbench_tps = pgbench_tps[pgbench_tps.len() / 2];

    let peer_rss = procs::rss_kib(&peer.child.id().to_string()).unwrap_or(0);
    let our_rss = ours.service.rss_kib().unwrap_or(0);
    let non_2xx = [
        &peer_grants,
        &our_grants,
        &peer_intro,
        &our_intro,
        &ceiling,
        &json_refresh,
        &oauth_refresh,
    ]
    .iter()
    .map(|r| r.non_2xx)
    .sum::<u64>();
    if non_2xx > 0 {
        Proc::print_warnings(&[&ours.service]);
    }
    peer.terminate();
    drop(ours);
    let _ = std::fs::remove_dir_all(&dir);

    println!(
        "OAuth 2.0 endpoints vs. oidc-provider (wrk -t2 -c32, median of 3 alternating {round} s runs each, 4 for refreshes; \
         tokenauth: auth-service on PostgreSQL, EdDSA)"
    );
    line(
        "peer POST /token (client_credentials, JWT EdDSA)",
        &peer_grants,
    );
    line(
        "tokenauth POST /oauth/token (client_credentials)",
        &our_grants,
    );
    line("peer POST /token/introspection (opaque token)", &peer_intro);
    line("tokenauth POST /oauth/introspect (JWT)", &our_intro);
    line("tokenauth GET /healthz", &ceiling);
    println!(
        "  {:<55} {pgbench_tps:>8.0} tps",
        format!("pgbench -N -M prepared -c {PGBENCH_CLIENTS} (same PostgreSQL)")
    );
    line("tokenauth POST /v1/token/refresh (rotation)", &json_refresh);
    line(
        "tokenauth POST /oauth/token (refresh_token, rotation)",
        &oauth_refresh,
    );
    let grants = our_grants.rps / peer_grants.rps;
    let intro = our_intro.rps / peer_intro.rps;
    let intro_ceiling = our_intro.rps / ceiling.rps;
    let refresh = oauth_refresh.rps / json_refresh.rps;
    let database = json_refresh.rps / pgbench_tps;
    println!("  client_credentials: {grants:.2}x the peer (target >= 2)");
    println!(
        "  introspection: {intro:.2}x the peer (target >= 2), {intro_ceiling:.2} of /healthz (target >= 0.5)"
    );
    println!("  refresh via /oauth/token: {refresh:.2} of /v1/token/refresh (target >= 0.95)");
    println!("  refresh: {database:.2} of pgbench -N (target >= 0.6)");
    println!(
        "  resident memory after the runs: peer {:.0} MiB, tokenauth {:.0} MiB",
        peer_rss as f64 / 1024.0,
        our_rss as f64 / 1024.0
    );
    let pass = grants >= 2.0
        && intro >= 2.0
        && intro_ceiling >= 0.5
        && refresh >= 0.95
        && database >= 0.6
        && non_2xx == 0;
    println!("  result: {}", if pass { "PASS" } else { "FAIL" });
    Ok(pass)
}
