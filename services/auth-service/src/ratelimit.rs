//! Failed-login limits: at most N failures in any 60-second window per client IP and per
//! username (`LOGIN_RATE_LIMIT_PER_MINUTE`, 0 disables). Unknown usernames count exactly like
//! known ones. With `REDIS_URL` the windows live in Redis, shared by every replica; otherwise in
//! this process.
//!
//! A login first asks whether its windows are full (then 429, even for the right password), and
//! records a failure only when the password was wrong: successes never count, so many users
//! behind one address can log in at once. Guesses already in flight when a window fills still
//! finish (at most one per concurrent request).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Script};

pub const WINDOW_MS: i64 = 60_000;
const REDIS_TIMEOUT: Duration = Duration::from_millis(1000);

#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    #[error("rate-limit store: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("rate-limit store did not answer in time")]
    Timeout,
}

/// The outcome of asking for an attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum Attempt {
    Allowed,
    /// Limited: retry after this many seconds.
    Limited(u64),
}

/// 0 when no window is full, else ms until the fullest one frees a place.
const CHECK: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local wait = 0
for _, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local n = redis.call('ZCARD', key)
  if n >= limit then
    local oldest = redis.call('ZRANGE', key, 0, n - limit, 'WITHSCORES')
    local w = tonumber(oldest[#oldest]) + window - now
    if w > wait then wait = w end
  end
end
return wait
";

/// Records one failure in every window.
const RECORD: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[2])
  redis.call('PEXPIRE', key, tonumber(ARGV[1]))
end
return 0
";

pub enum LoginLimiter {
    Disabled,
    InProcess {
        limit: usize,
        windows: Mutex<HashMap<String, Vec<i64>>>,
    },
    Redis(Box<RedisLimiter>),
}

pub struct RedisLimiter {
    limit: usize,
    client: Client,
    conn: tokio::sync::Mutex<Option<ConnectionManager>>,
    prefix: String,
    check: Script,
    record: Script,
}

impl std::fmt::Debug for LoginLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LoginLimiter::Disabled => "LoginLimiter::Disabled",
            LoginLimiter::InProcess { .. } => "LoginLimiter::InProcess",
            LoginLimiter::Redis(_) => "LoginLimiter::Redis",
        })
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The windows an attempt counts in. The username is hashed: keys stay short, and no
/// username is written to Redis.
pub fn keys_for(client_ip: Option<std::net::IpAddr>, username_key: &str) -> Vec<String> {
    let user = digest::digest(&digest::SHA256, username_key.as_bytes());
    let hex: String = user.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut keys = vec![format!("login:user:{hex}")];
    if let Some(ip) = client_ip {
        keys.push(format!("login:ip:{ip}"));
    }
    keys
}

impl LoginLimiter {
    pub fn new(limit: u32, redis: Option<(&str, &str)>) -> Result<Self, redis::RedisError> {
        let limit = limit as usize;
        if limit == 0 {
            return Ok(LoginLimiter::Disabled);
        }
        Ok(match redis {
            None => LoginLimiter::InProcess {
                limit,
                windows: Mutex::new(HashMap::new()),
            },
            Some((url, prefix)) => LoginLimiter::Redis(Box::new(RedisLimiter {
                limit,
                client: Client::open(url)?,
                conn: tokio::sync::Mutex::new(None),
                prefix: prefix.to_owned(),
                check: Script::new(CHECK),
                record: Script::new(RECORD),
            })),
        })
    }

    /// Whether a login may go ahead for these windows.
    pub async fn check(&self, keys: &[String]) -> Result<Attempt, LimitError> {
        match self {
            LoginLimiter::Disabled => Ok(Attempt::Allowed),
            LoginLimiter::InProcess { limit, windows } => {
                let now = now_ms();
                let mut windows = windows.lock().unwrap_or_else(|e| e.into_inner());
                let mut wait = 0;
                for key in keys {
                    let Some(entries) = windows.get_mut(key) else {
                        continue;
                    };
                    entries.retain(|t| *t > now - WINDOW_MS);
                    if entries.len() >= *limit {
                        entries.sort_unstable();
                        wait = wait.max(entries[entries.len() - limit] + WINDOW_MS - now);
                    }
                }
                Ok(if wait > 0 {
                    Attempt::Limited(secs_ceil(wait))
                } else {
                    Attempt::Allowed
                })
            }
            LoginLimiter::Redis(redis) => {
                let mut conn = redis.connection().await?;
                let mut invocation = redis.check.prepare_invoke();
                for key in keys {
                    invocation.key(format!("{}{key}", redis.prefix));
                }
                invocation.arg(WINDOW_MS).arg(redis.limit);
                let wait: i64 = timed(invocation.invoke_async(&mut conn)).await?;
                Ok(if wait > 0 {
                    Attempt::Limited(secs_ceil(wait))
                } else {
                    Attempt::Allowed
                })
            }
        }
    }

    /// The password was wrong: one failure in every window.
    pub async fn failed(&self, keys: &[String]) -> Result<(), LimitError> {
        match self {
            LoginLimiter::Disabled => Ok(()),
            LoginLimiter::InProcess { windows, .. } => {
                let now = now_ms();
                let mut windows = windows.lock().unwrap_or_else(|e| e.into_inner());
                for key in keys {
                    windows.entry(key.clone()).or_default().push(now);
                }
                // Keep the map from growing without bound.
                if windows.len() > 100_000 {
                    windows.retain(|_, e| e.iter().any(|t| *t > now - WINDOW_MS));
                }
                Ok(())
            }
            LoginLimiter::Redis(redis) => {
                let mut conn = redis.connection().await?;
                let mut invocation = redis.record.prepare_invoke();
                for key in keys {
                    invocation.key(format!("{}{key}", redis.prefix));
                }
                invocation
                    .arg(WINDOW_MS)
                    .arg(uuid::Uuid::new_v4().to_string());
                timed(invocation.invoke_async::<i64>(&mut conn)).await?;
                Ok(())
            }
        }
    }
}

impl RedisLimiter {
    async fn connection(&self) -> Result<ConnectionManager, LimitError> {
        let (client, conn) = (&self.client, &self.conn);
        let mut slot = conn.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(1);
        let c = timed(client.get_connection_manager_with_config(config)).await?;
        *slot = Some(c.clone());
        Ok(c)
    }
}

fn secs_ceil(ms: i64) -> u64 {
    ((ms.max(1) + 999) / 1000) as u64
}

async fn timed<T>(
    fut: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, LimitError> {
    match tokio::time::timeout(REDIS_TIMEOUT, fut).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(LimitError::Timeout),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn in_process_windows_count_failures_only() {
        let limiter = LoginLimiter::new(2, None).unwrap();
        let alice = keys_for(None, "alice");
        // Checks alone (successful logins) never fill a window.
        for _ in 0..10 {
            assert_eq!(limiter.check(&alice).await.unwrap(), Attempt::Allowed);
        }
        limiter.failed(&alice).await.unwrap();
        assert_eq!(limiter.check(&alice).await.unwrap(), Attempt::Allowed);
        limiter.failed(&alice).await.unwrap();
        let Attempt::Limited(wait) = limiter.check(&alice).await.unwrap() else {
            panic!("limited after two failures")
        };
        assert!((1..=60).contains(&wait));
        assert_eq!(
            limiter.check(&keys_for(None, "bob")).await.unwrap(),
            Attempt::Allowed
        );
    }

    #[tokio::test]
    async fn zero_disables() {
        let limiter = LoginLimiter::new(0, None).unwrap();
        let keys = keys_for(None, "x");
        for _ in 0..20 {
            limiter.failed(&keys).await.unwrap();
        }
        assert_eq!(limiter.check(&keys).await.unwrap(), Attempt::Allowed);
    }
}
