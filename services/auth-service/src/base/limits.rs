//! Attempt limits in sliding 60-second windows: failed logins per client IP and per username
//! (`LOGIN_RATE_LIMIT_PER_MINUTE`), wrong `current_password`s like failed logins, and
//! registrations per client IP (`REGISTER_RATE_LIMIT_PER_MINUTE`); 0 disables a limit. With
//! `REDIS_URL` the windows live in Redis (its clock, its atomic scripts), shared by every
//! replica; otherwise in this process.
//!
//! An attempt is **reserved** before the password is hashed, atomically with the check: a window
//! holds counted attempts and pending ones, and while counted + pending reach the limit a new
//! attempt waits for a pending one to settle (at most [`BUSY_WAIT`], then 429). So a burst of any
//! size checks at most `limit` passwords, yet many users behind one address who all know their
//! passwords still log in: a right password gives its reservation back, a wrong one turns it
//! into a counted failure. A reservation whose request vanished is given back when dropped, and a
//! pending entry left by a crashed process lapses after [`PENDING_TTL_MS`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::digest;
use redis::Script;
use redis::aio::ConnectionManager;
use tokenauth_jwt::unix_now_ms;
use tokenauth_redis::connection::SharedConnection;
use tokenauth_redis::{KeyPrefix, REDIS_TIMEOUT, within};
use tokio::sync::Notify;

pub const WINDOW_MS: i64 = 60_000;
/// A pending attempt older than this is forgotten (its process died mid-attempt).
pub const PENDING_TTL_MS: i64 = 30_000;
/// How long an attempt waits for a place before it is told to come back. A place is held only
/// while a password is hashed (tens of milliseconds), so this is long for a crowd behind one
/// address, and short enough that every answer comes within the 5 s every answer is bounded by.
pub const BUSY_WAIT: Duration = Duration::from_secs(3);
/// How often a waiting attempt asks again (other replicas settle without telling this one).
const POLL: Duration = Duration::from_millis(25);

#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    #[error("rate-limit store: {0}")]
    Store(#[from] tokenauth_redis::Error),
}

/// The outcome of asking for an attempt.
#[derive(Debug)]
pub enum Attempt {
    /// Go ahead; settle the reservation with what happened.
    Reserved(Reservation),
    /// Limited: retry after this many seconds.
    Limited(u64),
}

enum TryReserve {
    Reserved,
    /// Counted + pending attempts fill a window: wait for a pending one.
    Busy,
    Limited(u64),
}

/// 0: reserved; -1: busy; else ms until the fullest window frees a place.
/// KEYS: pairs of (counted window, pending set). ARGV: window ms, limit, id, pending ttl ms.
/// Sending it twice with one id reserves once (the connection helper may resend).
const RESERVE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local id = ARGV[3]
local pending_ttl = tonumber(ARGV[4])
local wait = 0
local busy = false
for i = 1, #KEYS, 2 do
  local counted, pending = KEYS[i], KEYS[i + 1]
  redis.call('ZREMRANGEBYSCORE', counted, '-inf', now - window)
  redis.call('ZREMRANGEBYSCORE', pending, '-inf', now - pending_ttl)
  local n = redis.call('ZCARD', counted)
  if n >= limit then
    local oldest = redis.call('ZRANGE', counted, 0, n - limit, 'WITHSCORES')
    local w = tonumber(oldest[#oldest]) + window - now
    if w > wait then wait = w end
  elseif redis.call('ZSCORE', pending, id) == false
      and n + redis.call('ZCARD', pending) >= limit then
    busy = true
  end
end
if wait > 0 then return wait end
if busy then return -1 end
for i = 1, #KEYS, 2 do
  redis.call('ZADD', KEYS[i + 1], now, id)
  redis.call('PEXPIRE', KEYS[i + 1], pending_ttl)
end
return 0
";

/// Ends a reservation: ARGV[2] = 1 counts it in every window, 0 gives it back.
const SETTLE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 1, #KEYS, 2 do
  redis.call('ZREM', KEYS[i + 1], ARGV[1])
  if ARGV[2] == '1' then
    redis.call('ZADD', KEYS[i], now, ARGV[1])
    redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[3]))
  end
end
return 0
";

#[derive(Default)]
struct Window {
    /// When each counted attempt happened (ms).
    counted: Vec<i64>,
    /// Attempts under way: (id, when reserved).
    pending: Vec<(u128, i64)>,
}

impl Window {
    fn prune(&mut self, now: i64) {
        self.counted.retain(|t| *t > now - WINDOW_MS);
        self.pending.retain(|(_, t)| *t > now - PENDING_TTL_MS);
    }

    fn is_empty(&self) -> bool {
        self.counted.is_empty() && self.pending.is_empty()
    }
}

enum Store {
    InProcess(Mutex<HashMap<String, Window>>),
    Redis {
        conn: Arc<SharedConnection>,
        prefix: KeyPrefix,
        reserve: Script,
        settle: Script,
    },
}

/// One kind of limit (failed logins, registrations).
pub struct Limiter {
    limit: usize,
    store: Store,
    /// Woken whenever a reservation of this process settles.
    settled: Notify,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let store = match self.store {
            Store::InProcess(_) => "in-process",
            Store::Redis { .. } => "redis",
        };
        f.debug_struct("Limiter")
            .field("limit", &self.limit)
            .field("store", &store)
            .finish()
    }
}

fn secs_ceil(ms: i64) -> u64 {
    ((ms.max(1) + 999) / 1000) as u64
}

/// The windows a login attempt counts in. The username is hashed: keys stay short, and no
/// username is written to Redis.
pub fn login_keys(client_ip: Option<std::net::IpAddr>, username_key: &str) -> Vec<String> {
    let user = digest::digest(&digest::SHA256, username_key.as_bytes());
    let hex: String = user.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut keys = vec![format!("login:user:{hex}")];
    keys.extend(login_ip_key(client_ip));
    keys
}

/// The failed-login window of a client address (none without one).
pub fn login_ip_key(client_ip: Option<std::net::IpAddr>) -> Option<String> {
    client_ip.map(|ip| format!("login:ip:{ip}"))
}

/// The window a registration counts in (none without a client address).
/// The window of device authorizations a client address starts (each stores a request for
/// ten minutes): the registration budget, in a window of its own.
pub fn device_keys(client_ip: Option<std::net::IpAddr>) -> Vec<String> {
    client_ip
        .map(|ip| vec![format!("device:ip:{ip}")])
        .unwrap_or_default()
}

pub fn register_keys(client_ip: Option<std::net::IpAddr>) -> Vec<String> {
    client_ip
        .map(|ip| vec![format!("register:ip:{ip}")])
        .unwrap_or_default()
}

impl Limiter {
    /// `limit` attempts per window; 0 disables. `redis`: a shared connection and the key prefix.
    pub fn new(limit: u32, redis: Option<(Arc<SharedConnection>, KeyPrefix)>) -> Arc<Self> {
        let store = match redis {
            None => Store::InProcess(Mutex::new(HashMap::new())),
            Some((conn, prefix)) => Store::Redis {
                conn,
                prefix,
                reserve: Script::new(RESERVE),
                settle: Script::new(SETTLE),
            },
        };
        Arc::new(Limiter {
            limit: limit as usize,
            store,
            settled: Notify::new(),
        })
    }

    /// Reserves one attempt in every window of `keys`, waiting (at most [`BUSY_WAIT`]) while
    /// attempts under way fill one.
    pub async fn reserve(self: &Arc<Self>, keys: Vec<String>) -> Result<Attempt, LimitError> {
        let id: u128 = rand_id();
        let mut reservation = Reservation {
            limiter: self.clone(),
            keys,
            id,
            settled: false,
            sent_on: Pinned::default(),
        };
        if self.limit == 0 || reservation.keys.is_empty() {
            reservation.settled = true;
            return Ok(Attempt::Reserved(reservation));
        }
        let deadline = tokio::time::Instant::now() + BUSY_WAIT;
        loop {
            let woken = self.settled.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            match self
                .try_reserve(&reservation.keys, id, &reservation.sent_on)
                .await
            {
                Ok(TryReserve::Reserved) => return Ok(Attempt::Reserved(reservation)),
                Ok(TryReserve::Limited(secs)) => {
                    reservation.forget();
                    return Ok(Attempt::Limited(secs));
                }
                Ok(TryReserve::Busy) => {}
                // Not forgotten: a command that timed out may still run when a stalled Redis
                // wakes, and would then hold a place for PENDING_TTL_MS. Dropped unsettled, the
                // reservation is given back by a command sent after it on the same connection.
                Err(e) => return Err(e),
            }
            let wake = tokio::time::Instant::now() + POLL;
            if wake >= deadline {
                reservation.forget();
                return Ok(Attempt::Limited(1));
            }
            tokio::select! {
                () = &mut woken => {}
                () = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    async fn try_reserve(
        &self,
        keys: &[String],
        id: u128,
        sent_on: &Pinned,
    ) -> Result<TryReserve, LimitError> {
        match &self.store {
            Store::InProcess(windows) => {
                let now = unix_now_ms();
                let mut windows = windows.lock().unwrap_or_else(|e| e.into_inner());
                let (mut wait, mut busy) = (0, false);
                for key in keys {
                    let Some(w) = windows.get_mut(key) else {
                        continue;
                    };
                    w.prune(now);
                    if w.counted.len() >= self.limit {
                        w.counted.sort_unstable();
                        let oldest = w.counted[w.counted.len() - self.limit];
                        wait = wait.max(oldest + WINDOW_MS - now);
                    } else if w.counted.len() + w.pending.len() >= self.limit {
                        busy = true;
                    }
                }
                if wait > 0 {
                    return Ok(TryReserve::Limited(secs_ceil(wait)));
                }
                if busy {
                    return Ok(TryReserve::Busy);
                }
                for key in keys {
                    windows
                        .entry(key.clone())
                        .or_default()
                        .pending
                        .push((id, now));
                }
                // Keep the map bounded: drop windows with nothing left in them.
                if windows.len() > 100_000 {
                    windows.retain(|_, w| {
                        w.prune(now);
                        !w.is_empty()
                    });
                }
                Ok(TryReserve::Reserved)
            }
            Store::Redis {
                conn,
                prefix,
                reserve,
                ..
            } => {
                let mut invocation = reserve.prepare_invoke();
                for key in keys {
                    invocation
                        .key(prefix.key(key))
                        .key(prefix.key(&format!("{key}:pending")));
                }
                invocation
                    .arg(WINDOW_MS)
                    .arg(self.limit)
                    .arg(id.to_string())
                    .arg(PENDING_TTL_MS);
                let invocation = &invocation;
                let answer: i64 = conn
                    .run(|mut c| {
                        if let Ok(mut pinned) = sent_on.lock() {
                            *pinned = Some(c.clone());
                        }
                        async move { invocation.invoke_async(&mut c).await }
                    })
                    .await?;
                Ok(match answer {
                    0 => TryReserve::Reserved,
                    -1 => TryReserve::Busy,
                    ms => TryReserve::Limited(secs_ceil(ms)),
                })
            }
        }
    }

    async fn settle(
        &self,
        keys: &[String],
        id: u128,
        count: bool,
        sent_on: &Pinned,
    ) -> Result<(), LimitError> {
        let result = match &self.store {
            Store::InProcess(windows) => {
                let now = unix_now_ms();
                let mut windows = windows.lock().unwrap_or_else(|e| e.into_inner());
                for key in keys {
                    let w = windows.entry(key.clone()).or_default();
                    w.pending.retain(|(p, _)| *p != id);
                    if count {
                        w.counted.push(now);
                    }
                }
                Ok(())
            }
            Store::Redis {
                conn,
                prefix,
                settle,
                ..
            } => {
                let mut invocation = settle.prepare_invoke();
                for key in keys {
                    invocation
                        .key(prefix.key(key))
                        .key(prefix.key(&format!("{key}:pending")));
                }
                invocation
                    .arg(id.to_string())
                    .arg(u8::from(count))
                    .arg(WINDOW_MS);
                let invocation = &invocation;
                let pinned = sent_on.lock().ok().and_then(|p| p.clone());
                let on_pinned = match pinned {
                    Some(mut c) => {
                        Some(within(REDIS_TIMEOUT, invocation.invoke_async::<i64>(&mut c)).await)
                    }
                    None => None,
                };
                match on_pinned {
                    Some(Ok(_)) => Ok(()),
                    // Never sent, or its connection is gone (then so is what it carried): any
                    // connection will do.
                    _ => conn
                        .run(|mut c| async move { invocation.invoke_async::<i64>(&mut c).await })
                        .await
                        .map(drop)
                        .map_err(LimitError::from),
                }
            }
        };
        self.settled.notify_waiters();
        result
    }
}

fn rand_id() -> u128 {
    uuid::Uuid::new_v4().as_u128()
}

/// One attempt under way. Settle it with [`Reservation::count`] or [`Reservation::release`];
/// dropped unsettled (the request went away), it is given back.
pub struct Reservation {
    limiter: Arc<Limiter>,
    keys: Vec<String>,
    id: u128,
    settled: bool,
    /// The Redis connection the reservation was sent on: it is settled on the same one, after
    /// it, even when the reservation timed out (a stalled Redis may still run it when it wakes;
    /// a give-back sent on another connection could run first and leave the place taken).
    sent_on: Pinned,
}

/// The connection a reservation was last sent on.
type Pinned = Arc<Mutex<Option<ConnectionManager>>>;

impl std::fmt::Debug for Reservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reservation")
            .field("windows", &self.keys.len())
            .field("settled", &self.settled)
            .finish()
    }
}

impl Reservation {
    /// The attempt failed (a wrong password) or is one the limit counts: it stays in every window.
    pub async fn count(mut self) -> Result<(), LimitError> {
        if self.settled {
            return Ok(());
        }
        self.settled = true;
        self.limiter
            .settle(&self.keys, self.id, true, &self.sent_on)
            .await
    }

    /// The attempt did not count (the right password): its place is free again.
    pub async fn release(mut self) -> Result<(), LimitError> {
        if self.settled {
            return Ok(());
        }
        self.settled = true;
        self.limiter
            .settle(&self.keys, self.id, false, &self.sent_on)
            .await
    }

    /// Never reserved in the store: nothing to give back.
    fn forget(mut self) {
        self.settled = true;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let (limiter, keys, id, sent_on) = (
            self.limiter.clone(),
            std::mem::take(&mut self.keys),
            self.id,
            self.sent_on.clone(),
        );
        // Without a runtime (process ending) the pending entry lapses after PENDING_TTL_MS.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = limiter.settle(&keys, id, false, &sent_on).await {
                    tracing::debug!(error = %e, "an abandoned attempt will lapse by itself");
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn reserve(limiter: &Arc<Limiter>, keys: &[String]) -> Attempt {
        limiter.reserve(keys.to_vec()).await.unwrap()
    }

    #[tokio::test]
    async fn in_process_windows_count_failures_only() {
        let limiter = Limiter::new(2, None);
        let alice = login_keys(None, "alice");
        // Given-back attempts (successful logins) never fill a window.
        for _ in 0..10 {
            let Attempt::Reserved(r) = reserve(&limiter, &alice).await else {
                panic!("allowed")
            };
            r.release().await.unwrap();
        }
        for _ in 0..2 {
            let Attempt::Reserved(r) = reserve(&limiter, &alice).await else {
                panic!("allowed")
            };
            r.count().await.unwrap();
        }
        let Attempt::Limited(wait) = reserve(&limiter, &alice).await else {
            panic!("limited after two failures")
        };
        assert!((1..=60).contains(&wait));
        assert!(matches!(
            reserve(&limiter, &login_keys(None, "bob")).await,
            Attempt::Reserved(_)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_under_way_hold_their_places_until_settled() {
        let limiter = Limiter::new(2, None);
        let keys = login_keys(None, "carol");
        let Attempt::Reserved(a) = reserve(&limiter, &keys).await else {
            panic!()
        };
        let Attempt::Reserved(b) = reserve(&limiter, &keys).await else {
            panic!()
        };
        // A third waits while two are under way ...
        let third = tokio::spawn({
            let (limiter, keys) = (limiter.clone(), keys.clone());
            async move { limiter.reserve(keys).await.unwrap() }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!third.is_finished());
        // ... and is refused once both turn out to be failures.
        a.count().await.unwrap();
        b.count().await.unwrap();
        assert!(matches!(third.await.unwrap(), Attempt::Limited(_)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_given_back_or_dropped_reservation_frees_its_place() {
        let limiter = Limiter::new(1, None);
        let keys = login_keys(None, "dave");
        let Attempt::Reserved(a) = reserve(&limiter, &keys).await else {
            panic!()
        };
        let waiting = tokio::spawn({
            let (limiter, keys) = (limiter.clone(), keys.clone());
            async move { limiter.reserve(keys).await.unwrap() }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(a);
        let Attempt::Reserved(b) = waiting.await.unwrap() else {
            panic!("a dropped reservation gives its place back")
        };
        b.release().await.unwrap();
        assert!(matches!(
            reserve(&limiter, &keys).await,
            Attempt::Reserved(_)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_is_bounded() {
        let limiter = Limiter::new(1, None);
        let keys = register_keys(Some([10, 0, 0, 1].into()));
        let Attempt::Reserved(_held) = reserve(&limiter, &keys).await else {
            panic!()
        };
        assert!(matches!(
            reserve(&limiter, &keys).await,
            Attempt::Limited(1)
        ));
    }

    #[tokio::test]
    async fn zero_disables() {
        let limiter = Limiter::new(0, None);
        let keys = login_keys(None, "x");
        for _ in 0..20 {
            let Attempt::Reserved(r) = reserve(&limiter, &keys).await else {
                panic!()
            };
            r.count().await.unwrap();
        }
    }
}
