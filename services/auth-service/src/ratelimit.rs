//! Failed-login limits: at most N failures in any 60-second window per client IP and per
//! username (`LOGIN_RATE_LIMIT_PER_MINUTE`, 0 disables). Unknown usernames count exactly like
//! known ones. With `REDIS_URL` the windows live in Redis, shared by every replica; otherwise in
//! this process.
//!
//! An attempt takes a slot before the password is checked and gives it back only if the
//! password was right, so concurrent guesses cannot slip past the limit. Once limited, even the
//! right password is refused until the window allows again.

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
#[derive(Debug)]
pub enum Attempt {
    /// Go ahead; call [`LoginLimiter::succeeded`] with it if the password was right.
    Allowed(Slot),
    /// Limited: retry after this many seconds.
    Limited(u64),
}

#[derive(Debug)]
pub struct Slot {
    keys: Vec<String>,
    member: String,
}

/// Takes a slot in every window unless one is full; returns 0, or ms until a slot frees.
const ACQUIRE: &str = r"
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
if wait > 0 then return wait end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[3])
  redis.call('PEXPIRE', key, window)
end
return 0
";

pub enum LoginLimiter {
    Disabled,
    InProcess {
        limit: usize,
        windows: Mutex<HashMap<String, Vec<(i64, String)>>>,
    },
    Redis(Box<RedisLimiter>),
}

pub struct RedisLimiter {
    limit: usize,
    client: Client,
    conn: tokio::sync::Mutex<Option<ConnectionManager>>,
    prefix: String,
    acquire: Script,
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
                acquire: Script::new(ACQUIRE),
            })),
        })
    }

    pub async fn attempt(&self, keys: Vec<String>) -> Result<Attempt, LimitError> {
        let member = uuid::Uuid::new_v4().to_string();
        match self {
            LoginLimiter::Disabled => Ok(Attempt::Allowed(Slot {
                keys: vec![],
                member,
            })),
            LoginLimiter::InProcess { limit, windows } => {
                let now = now_ms();
                let mut windows = windows.lock().unwrap_or_else(|e| e.into_inner());
                let mut wait = 0;
                for key in &keys {
                    let entries = windows.entry(key.clone()).or_default();
                    entries.retain(|(t, _)| *t > now - WINDOW_MS);
                    if entries.len() >= *limit {
                        entries.sort_by_key(|(t, _)| *t);
                        let freeing = entries[entries.len() - limit].0;
                        wait = wait.max(freeing + WINDOW_MS - now);
                    }
                }
                if wait > 0 {
                    return Ok(Attempt::Limited(secs_ceil(wait)));
                }
                for key in &keys {
                    windows
                        .entry(key.clone())
                        .or_default()
                        .push((now, member.clone()));
                }
                // Keep the map from growing without bound.
                if windows.len() > 100_000 {
                    windows.retain(|_, e| e.iter().any(|(t, _)| *t > now - WINDOW_MS));
                }
                Ok(Attempt::Allowed(Slot { keys, member }))
            }
            LoginLimiter::Redis(redis) => {
                let keys: Vec<String> = keys
                    .into_iter()
                    .map(|k| format!("{}{k}", redis.prefix))
                    .collect();
                let mut conn = redis.connection().await?;
                let mut invocation = redis.acquire.prepare_invoke();
                for key in &keys {
                    invocation.key(key);
                }
                invocation.arg(WINDOW_MS).arg(redis.limit).arg(&member);
                let wait: i64 = timed(invocation.invoke_async(&mut conn)).await?;
                if wait > 0 {
                    return Ok(Attempt::Limited(secs_ceil(wait)));
                }
                Ok(Attempt::Allowed(Slot { keys, member }))
            }
        }
    }

    /// The password was right: the attempt does not count as a failure.
    pub async fn succeeded(&self, slot: Slot) -> Result<(), LimitError> {
        match self {
            LoginLimiter::Disabled => Ok(()),
            LoginLimiter::InProcess { windows, .. } => {
                let mut windows = windows.lock().unwrap_or_else(|e| e.into_inner());
                for key in &slot.keys {
                    if let Some(entries) = windows.get_mut(key) {
                        entries.retain(|(_, m)| *m != slot.member);
                    }
                }
                Ok(())
            }
            LoginLimiter::Redis(redis) => {
                let mut conn = redis.connection().await?;
                let mut pipe = redis::pipe();
                for key in &slot.keys {
                    pipe.zrem(key, &slot.member).ignore();
                }
                timed(pipe.query_async::<()>(&mut conn)).await
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
    async fn in_process_windows_limit_failures_and_forgive_successes() {
        let limiter = LoginLimiter::new(2, None).unwrap();
        let keys = || keys_for(None, "alice");
        for _ in 0..2 {
            let Attempt::Allowed(_) = limiter.attempt(keys()).await.unwrap() else {
                panic!("allowed")
            };
        }
        let Attempt::Limited(wait) = limiter.attempt(keys()).await.unwrap() else {
            panic!("limited")
        };
        assert!((1..=60).contains(&wait));
        // Another user is not limited; a success gives its slot back.
        let other = || keys_for(None, "bob");
        let Attempt::Allowed(slot) = limiter.attempt(other()).await.unwrap() else {
            panic!()
        };
        limiter.succeeded(slot).await.unwrap();
        let Attempt::Allowed(_) = limiter.attempt(other()).await.unwrap() else {
            panic!()
        };
        let Attempt::Allowed(_) = limiter.attempt(other()).await.unwrap() else {
            panic!("the success did not count")
        };
    }

    #[tokio::test]
    async fn zero_disables() {
        let limiter = LoginLimiter::new(0, None).unwrap();
        for _ in 0..20 {
            assert!(matches!(
                limiter.attempt(keys_for(None, "x")).await.unwrap(),
                Attempt::Allowed(_)
            ));
        }
    }
}
