//! Redis as production runs it: over TLS with an ACL user and a private CA, under an eviction
//! policy checked at start, and behind Sentinel through a failover. Each test starts its own
//! throw-away `redis-server`s (and `redis-sentinel`) and a full stack: an auth-service and two
//! resource-service replicas.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokenauth_testkit::certs::Authority;
use tokenauth_testkit::{TempDir, free_port};

use crate::helpers::{RedisServer, RedisStack, access, log_lines};

/// Login, a protected call on both replicas, logout, and the token refused by both within 1 s.
async fn login_call_logout_refused(stack: &RedisStack) {
    let token = access(&stack.user().await);
    assert_eq!(stack.secret(0, &token).await, 200);
    assert_eq!(stack.secret(1, &token).await, 200);
    assert_eq!(stack.logout(&token).await, 204);
    let started = Instant::now();
    while !(stack.secret(0, &token).await == 401 && stack.secret(1, &token).await == 401) {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "a logout not refused everywhere within 1 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

const ACL: [&str; 4] = [
    "--user",
    "default off",
    "--user",
    "app on >app-s3cret ~* &* +@all",
];

fn with_user(url: &str, user: &str, password: &str) -> String {
    url.replacen("://", &format!("://{user}:{password}@"), 1)
}

/// Split `--user "…"` pairs into the words redis-server expects on its command line.
fn acl_args(acl: &[&str]) -> Vec<String> {
    acl.iter()
        .flat_map(|a| a.split(' ').map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_with_an_acl_user_and_a_private_ca_carries_the_whole_flow() {
    let ca = Authority::new("redis");
    let cert = ca.server("redis", &["127.0.0.1"]);
    let args = acl_args(&ACL);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let redis = RedisServer::start_tls(&cert, &args);
    assert!(redis.url().starts_with("rediss://"));
    let stack = RedisStack::start_unready(&[
        ("REDIS_URL", with_user(&redis.url(), "app", "app-s3cret")),
        ("REDIS_TLS_CA_FILE", ca.ca_file.display().to_string()),
    ])
    .await;
    stack.wait_all_ready(Duration::from_secs(15)).await;
    login_call_logout_refused(&stack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_not_trusted_or_a_wrong_password_leaves_every_service_unready() {
    crate::helpers::init_logs();
    let (trusted, other) = (Authority::new("trusted"), Authority::new("other"));
    let cert = other.server("redis", &["127.0.0.1"]);
    let args = acl_args(&ACL);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let redis = RedisServer::start_tls(&cert, &args);
    let untrusted = RedisStack::start_unready(&[
        ("REDIS_URL", with_user(&redis.url(), "app", "app-s3cret")),
        ("REDIS_TLS_CA_FILE", trusted.ca_file.display().to_string()),
    ])
    .await;
    // The right CA, the wrong password.
    let denied = RedisStack::start_unready(&[
        (
            "REDIS_URL",
            with_user(&redis.url(), "app", "not-the-password"),
        ),
        ("REDIS_TLS_CA_FILE", other.ca_file.display().to_string()),
    ])
    .await;
    // Plain Redis spoken to the TLS port (as `redis://` would): no answer it can use.
    let plain = RedisStack::start_unready(&[(
        "REDIS_URL",
        with_user(&redis.url(), "app", "app-s3cret").replace("rediss://", "redis://"),
    )])
    .await;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(4) {
        for stack in [&untrusted, &denied, &plain] {
            for replica in [None, Some(0), Some(1)] {
                let (status, body) = stack.readyz(replica).await;
                assert_eq!(status, 503, "{replica:?} ready: {body}");
            }
            let res = stack
                .client
                .post(format!("{}/v1/login", stack.auth))
                .json(&serde_json::json!({"username": "nobody", "password": "whatever-1234"}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 503, "login without Redis");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let logs: String = log_lines().iter().map(|l| l.to_string()).collect();
    assert!(
        !logs.contains("app-s3cret") && !logs.contains("not-the-password"),
        "a Redis password in the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_eviction_policy_that_could_drop_a_revocation_keeps_the_auth_service_unready() {
    crate::helpers::init_logs();
    let redis = RedisServer::start_with(&["--maxmemory-policy", "allkeys-lru"]);
    let stack = RedisStack::start_unready(&[("REDIS_URL", redis.url())]).await;
    // Everything else comes up; the auth-service stays unready, and says why.
    for replica in [Some(0), Some(1)] {
        crate::helpers::wait_ready(
            &stack.client,
            &stack.replicas[replica.unwrap()],
            Duration::from_secs(10),
        )
        .await;
    }
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(2) {
        let (status, body) = stack.readyz(None).await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["checks"]["eviction_policy"], "unavailable", "{body}");
        assert_eq!(body["checks"]["revocations"], "ok", "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        log_lines()
            .iter()
            .map(|l| l.to_string())
            .any(|l| l.contains("maxmemory-policy may evict") && l.contains("allkeys-lru")),
        "no log line saying why"
    );
    // A policy that only evicts keys with a TTL cannot touch revocation keys (they have none).
    redis.cli(&["CONFIG", "SET", "maxmemory-policy", "volatile-lru"]);
    crate::helpers::wait_ready(&stack.client, &stack.auth, Duration::from_secs(15)).await;
    login_call_logout_refused(&stack).await;
    let sid_ttl = redis.cli(&["TTL", &format!("{}rev:sid", stack.prefix())]);
    assert_eq!(sid_ttl.trim(), "-1", "a revocation key with a TTL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_eviction_policy_is_read_for_what_it_means() {
    use tokenauth_redis::KeyPrefix;
    use tokenauth_redis::target::Target;
    use tokenauth_revocation::redis_store::{Eviction, Publisher};
    let redis = RedisServer::start_with(&[
        "--user",
        "default",
        "on",
        "nopass",
        "~*",
        "&*",
        "+@all",
        "--user",
        "noconfig",
        "on",
        ">pw-noconfig",
        "~*",
        "&*",
        "+@all",
        "-config",
    ]);
    for (policy, safe) in [
        ("noeviction", true),
        ("volatile-lru", true),
        ("volatile-lfu", true),
        ("volatile-random", true),
        ("volatile-ttl", true),
        ("allkeys-lru", false),
        ("allkeys-lfu", false),
        ("allkeys-random", false),
    ] {
        redis.cli(&["CONFIG", "SET", "maxmemory-policy", policy]);
        let publisher = Publisher::new(Target::new(&redis.url()).unwrap(), &KeyPrefix::new("t:"));
        let expected = if safe {
            Eviction::Safe(policy.to_owned())
        } else {
            Eviction::Unsafe(policy.to_owned())
        };
        assert_eq!(publisher.eviction().await.unwrap(), expected);
    }
    // A user without CONFIG (as on some managed services): not known, not an error.
    let url = with_user(&redis.url(), "noconfig", "pw-noconfig");
    let publisher = Publisher::new(Target::new(&url).unwrap(), &KeyPrefix::new("t:"));
    assert_eq!(publisher.eviction().await.unwrap(), Eviction::Unknown);
}

/// A Redis master, its replica and one Sentinel watching them, each a throw-away process.
struct Sentinel {
    master: RedisServer,
    replica: RedisServer,
    port: u16,
    child: Child,
    _dir: TempDir,
}

impl Sentinel {
    fn start() -> Sentinel {
        let master = RedisServer::start();
        let upstream = master.port.to_string();
        let replica = RedisServer::start_with(&["--replicaof", "127.0.0.1", &upstream]);
        let dir = TempDir::new();
        let port = free_port();
        let conf = dir.join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndir {}\n\
                 sentinel monitor main 127.0.0.1 {upstream} 1\n\
                 sentinel down-after-milliseconds main 1000\n\
                 sentinel failover-timeout main 4000\n",
                dir.display()
            ),
        )
        .unwrap();
        let child = Command::new("redis-sentinel")
            .arg(&conf)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-sentinel must be installed (scripts/test installs it)");
        let sentinel = Sentinel {
            master,
            replica,
            port,
            child,
            _dir: dir,
        };
        // Ready once it has found the replica through the master.
        let started = Instant::now();
        loop {
            let out = Command::new("redis-cli")
                .args(["-p", &port.to_string(), "SENTINEL", "replicas", "main"])
                .output()
                .unwrap();
            if String::from_utf8_lossy(&out.stdout).contains(&sentinel.replica.port.to_string()) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "sentinel never saw the replica"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        sentinel
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_failover_is_followed_and_loses_no_revocation() {
    let mut sentinel = Sentinel::start();
    let stack = RedisStack::start_unready(&[
        // Scheme (and here no credentials) only: Sentinel names the server.
        ("REDIS_URL", "redis://unused.invalid:1".into()),
        ("REDIS_SENTINELS", format!("127.0.0.1:{}", sentinel.port)),
        ("REDIS_SENTINEL_MASTER", "main".into()),
    ])
    .await;
    stack.wait_all_ready(Duration::from_secs(15)).await;
    login_call_logout_refused(&stack).await;
    let valid = access(&stack.user().await);
    let revoked = access(&stack.user().await);
    for r in 0..2 {
        assert_eq!(stack.secret(r, &revoked).await, 200);
    }
    // The replica is frozen, so the next revocation reaches the master only; then the master
    // dies. The replica that Sentinel promotes has never seen it.
    sentinel.replica.pause();
    assert_eq!(stack.logout(&revoked).await, 204);
    sentinel.master.kill();
    sentinel.replica.resume();
    let killed = Instant::now();
    let mut served_again = None;
    while killed.elapsed() < Duration::from_secs(12) {
        for r in 0..2 {
            let status = stack.secret(r, &revoked).await;
            assert_ne!(
                status, 200,
                "replica {r} accepted a revoked token during failover"
            );
        }
        if served_again.is_none()
            && stack.secret(0, &valid).await == 200
            && stack.secret(1, &valid).await == 200
        {
            served_again = Some(killed.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = served_again.expect("verifiers never served again after the failover");
    eprintln!("served again {took:?} after the master died");
    assert!(
        took < Duration::from_secs(10),
        "served again after {took:?}"
    );
    // The promoted replica now holds the revocation (reconciled from the database), and the
    // whole flow works through the new master.
    let out = Command::new("redis-cli")
        .args([
            "-p",
            &sentinel.port.to_string(),
            "SENTINEL",
            "get-master-addr-by-name",
            "main",
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&sentinel.replica.port.to_string()),
        "Sentinel did not promote the replica"
    );
    for r in 0..2 {
        assert_eq!(stack.secret(r, &revoked).await, 401);
    }
    login_call_logout_refused(&stack).await;
}
