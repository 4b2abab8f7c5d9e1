//! The shared revocation store in Redis, written by the auth-service and mirrored by every
//! verifier. The layout is in this crate's README so services in other languages can read it.
//!
//! Keys (`P` is the prefix, `tokenauth:` by default):
//! - `P rev:jti`, `P rev:sid`: sorted sets, member = the `jti` / `sid`, score = when every token
//!   it covers has expired (Unix seconds). `P rev:user`: member = `"<sub> <not_before>"`.
//!   Members are trimmed (by score) on every write once their score has passed. No key here has
//!   a TTL, so a `volatile-*` eviction policy never touches them; an `allkeys-*` one could, and
//!   the auth-service is not ready under one (see [`Publisher::eviction`]).
//! - `P rev:seq`: the highest revocation sequence number written.
//! - `P rev:ready`: present only while Redis holds the full state (Redis restarted empty has
//!   none); the auth-service re-seeds from the database whenever it is missing.
//! - channel `P revocations`: JSON messages `{"type":"revoked","event":{...}}`,
//!   `{"type":"sync","seq":N}` (the auth-service has reconciled the database into Redis up to N),
//!   `{"type":"reset"}` (re-seeded: reload).

use std::time::Duration;

use redis::{AsyncCommands, Client, Script};
use serde::{Deserialize, Serialize};

use crate::{Event, Kind, StateBuilder, unix_now};
use tokenauth_redis::connection::SharedConnection;
use tokenauth_redis::target::Target;
use tokenauth_redis::within;
use tokenauth_redis::{Error, KeyPrefix, REDIS_TIMEOUT};

/// Reading the full state may take longer with a million entries; the mirror is stale (and
/// verifiers refuse) meanwhile, so a hung Redis still fails closed.
pub const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(30);
/// Members written per command when seeding.
const SEED_CHUNK: usize = 5_000;

/// Key names under a prefix.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: KeyPrefix,
}

impl Keys {
    pub fn new(prefix: &KeyPrefix) -> Self {
        Keys {
            prefix: prefix.clone(),
        }
    }

    pub fn set(&self, kind: Kind) -> String {
        self.prefix.key(&format!("rev:{}", kind.as_str()))
    }

    pub fn seq(&self) -> String {
        self.prefix.key("rev:seq")
    }

    pub fn ready(&self) -> String {
        self.prefix.key("rev:ready")
    }

    pub fn channel(&self) -> String {
        self.prefix.key("revocations")
    }
}

/// A message on the revocations channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Message {
    Revoked { event: Event },
    Sync { seq: i64 },
    Reset,
}

/// The sorted-set member of an event.
pub fn member_of(event: &Event) -> String {
    match event.kind {
        Kind::User => format!("{} {}", event.subject, event.not_before.unwrap_or(i64::MAX)),
        Kind::Jti | Kind::Sid => event.subject.clone(),
    }
}

/// The event a sorted-set member stands for (sequence numbers are not kept per member).
pub fn event_of_member(kind: Kind, member: &str, expires_at: i64) -> Result<Event, Error> {
    let (subject, not_before) = match kind {
        Kind::User => {
            let (sub, nb) = member
                .rsplit_once(' ')
                .ok_or_else(|| Error::Malformed(format!("user member {member:?}")))?;
            let nb = nb
                .parse()
                .map_err(|_| Error::Malformed(format!("user member {member:?}")))?;
            (sub.to_owned(), Some(nb))
        }
        Kind::Jti | Kind::Sid => (member.to_owned(), None),
    };
    Ok(Event {
        seq: 0,
        kind,
        subject,
        not_before,
        expires_at,
    })
}

/// Adds one event, trims what has expired, raises `seq`, publishes. `PERSIST` drops a TTL an
/// older version set on the key.
/// Returns 1 if the ready marker is present, 0 if Redis does not hold the full state.
const WRITE_SCRIPT: &str = r"
redis.call('ZADD', KEYS[1], 'GT', ARGV[2], ARGV[1])
redis.call('PERSIST', KEYS[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[6])
local seq = tonumber(ARGV[3])
if seq > tonumber(redis.call('GET', KEYS[2]) or '0') then redis.call('SET', KEYS[2], seq) end
redis.call('PUBLISH', ARGV[4], ARGV[5])
return redis.call('EXISTS', KEYS[3])
";

/// The auth-service's side: writes revocations, seeds an empty Redis, announces syncs.
pub struct Publisher {
    conn: SharedConnection,
    keys: Keys,
    script: Script,
    /// The last reading of `maxmemory-policy`: on which connection, when, and what it said.
    eviction: std::sync::Mutex<Option<(u64, tokio::time::Instant, Eviction)>>,
}

/// What Redis's `maxmemory-policy` means for the revocation keys (which carry no TTL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Eviction {
    /// `noeviction` or a `volatile-*` policy: no revocation key can be evicted.
    Safe(String),
    /// An `allkeys-*` policy: a revocation key can be evicted, and so lost.
    Unsafe(String),
    /// `CONFIG` is not allowed to this user (as on some managed services): not known.
    Unknown,
}

/// The policy is read again this often, and on every new connection.
const EVICTION_RECHECK: Duration = Duration::from_secs(5);

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl Publisher {
    /// Does not connect yet: the service starts while Redis is down.
    pub fn new(target: Target, prefix: &KeyPrefix) -> Self {
        Publisher {
            conn: SharedConnection::open(target),
            keys: Keys::new(prefix),
            script: Script::new(WRITE_SCRIPT),
            eviction: std::sync::Mutex::new(None),
        }
    }

    /// What Redis's `maxmemory-policy` means for the revocation keys: read on every new
    /// connection (Redis restarted, or another master after a failover) and every
    /// [`EVICTION_RECHECK`], from memory otherwise.
    pub async fn eviction(&self) -> Result<Eviction, Error> {
        let made = self.conn.connections_made();
        if let Ok(last) = self.eviction.lock()
            && let Some((on, at, eviction)) = last.as_ref()
            && *on == made
            && at.elapsed() < EVICTION_RECHECK
        {
            return Ok(eviction.clone());
        }
        let answer: Result<std::collections::HashMap<String, String>, _> = self
            .conn
            .run(|mut c| async move {
                redis::cmd("CONFIG")
                    .arg("GET")
                    .arg("maxmemory-policy")
                    .query_async(&mut c)
                    .await
            })
            .await;
        let eviction = match answer {
            Ok(config) => match config.get("maxmemory-policy") {
                Some(policy) if policy.starts_with("allkeys-") => Eviction::Unsafe(policy.clone()),
                Some(policy) => Eviction::Safe(policy.clone()),
                None => Eviction::Unknown,
            },
            // NOPERM, or CONFIG renamed away: the server refused the command itself.
            Err(Error::Redis(e)) if e.code().is_some() => Eviction::Unknown,
            Err(e) => return Err(e),
        };
        if let Ok(mut last) = self.eviction.lock() {
            *last = Some((
                self.conn.connections_made(),
                tokio::time::Instant::now(),
                eviction.clone(),
            ));
        }
        Ok(eviction)
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Writes events already committed to the database. Returns whether Redis holds the full
    /// state (false: it must be seeded).
    pub async fn write(&self, events: &[Event]) -> Result<bool, Error> {
        let mut ready = true;
        let now = unix_now();
        for event in events {
            let payload = serde_json::to_string(&Message::Revoked {
                event: event.clone(),
            })
            .map_err(|e| Error::Malformed(e.to_string()))?;
            let mut invocation = self.script.prepare_invoke();
            invocation
                .key(self.keys.set(event.kind))
                .key(self.keys.seq())
                .key(self.keys.ready())
                .arg(member_of(event))
                .arg(event.expires_at)
                .arg(event.seq)
                .arg(self.keys.channel())
                .arg(payload)
                .arg(now);
            let invocation = &invocation;
            let present: i64 = self
                .conn
                .run(|mut c| async move { invocation.invoke_async(&mut c).await })
                .await?;
            ready &= present == 1;
        }
        Ok(ready)
    }

    /// Whether Redis holds the full state, and the highest sequence number it has.
    pub async fn status(&self) -> Result<(bool, i64), Error> {
        let mut pipe = redis::pipe();
        pipe.exists(self.keys.ready()).get(self.keys.seq());
        let pipe = &pipe;
        let (ready, seq): (bool, Option<i64>) = self
            .conn
            .run(|mut c| async move { pipe.query_async(&mut c).await })
            .await?;
        Ok((ready, seq.unwrap_or(0)))
    }

    /// Loads a full state (every live revocation) and marks Redis as holding it. Idempotent:
    /// replicas may seed at once, and writes may go on meanwhile.
    pub async fn seed(&self, events: &[Event], seq: i64) -> Result<(), Error> {
        let now = unix_now();
        for kind in [Kind::Jti, Kind::Sid, Kind::User] {
            let key = self.keys.set(kind);
            let of_kind: Vec<&Event> = events.iter().filter(|e| e.kind == kind).collect();
            for chunk in of_kind.chunks(SEED_CHUNK) {
                let items: Vec<(i64, String)> =
                    chunk.iter().map(|e| (e.expires_at, member_of(e))).collect();
                let mut pipe = redis::pipe();
                pipe.cmd("ZADD")
                    .arg(&key)
                    .arg("GT")
                    .arg(&items)
                    .ignore()
                    .cmd("PERSIST")
                    .arg(&key)
                    .ignore()
                    .cmd("ZREMRANGEBYSCORE")
                    .arg(&key)
                    .arg("-inf")
                    .arg(format!("({now}"))
                    .ignore();
                let pipe = &pipe;
                let _: () = self
                    .conn
                    .run(|mut c| async move { pipe.query_async(&mut c).await })
                    .await?;
            }
        }
        let script = Script::new(
            r"
            if tonumber(ARGV[1]) > tonumber(redis.call('GET', KEYS[1]) or '0') then
                redis.call('SET', KEYS[1], ARGV[1])
            end
            redis.call('SET', KEYS[2], ARGV[1])
            redis.call('PUBLISH', ARGV[2], ARGV[3])
            return 1",
        );
        let reset = serde_json::to_string(&Message::Reset).unwrap_or_default();
        let mut invocation = script.prepare_invoke();
        invocation
            .key(self.keys.seq())
            .key(self.keys.ready())
            .arg(seq)
            .arg(self.keys.channel())
            .arg(reset);
        let invocation = &invocation;
        let _: i64 = self
            .conn
            .run(|mut c| async move { invocation.invoke_async(&mut c).await })
            .await?;
        Ok(())
    }

    /// Announces that Redis holds every revocation up to `seq`.
    pub async fn announce_sync(&self, seq: i64) -> Result<(), Error> {
        let payload = serde_json::to_string(&Message::Sync { seq })
            .map_err(|e| Error::Malformed(e.to_string()))?;
        let (channel, payload) = (self.keys.channel(), payload.as_str());
        let channel = channel.as_str();
        let _: i64 = self
            .conn
            .run(|mut c| async move { c.publish(channel, payload).await })
            .await?;
        Ok(())
    }
}

/// A connection for [`snapshot`]: its responses may take up to [`SNAPSHOT_TIMEOUT`].
pub async fn snapshot_connection(
    client: &Client,
) -> Result<redis::aio::MultiplexedConnection, Error> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(REDIS_TIMEOUT))
        .set_response_timeout(Some(SNAPSHOT_TIMEOUT));
    within(
        REDIS_TIMEOUT,
        client.get_multiplexed_async_connection_with_config(&config),
    )
    .await
}

async fn until<T>(
    deadline: tokio::time::Instant,
    fut: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, Error> {
    match tokio::time::timeout_at(deadline, fut).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(Error::Timeout),
    }
}

/// Members read per page of a snapshot.
const PAGE: isize = 20_000;

/// Reads the full state into `builder`, page by page so a million entries never sit in memory
/// twice. Returns whether Redis holds the full state, and its sequence number.
///
/// Pages go from the highest score down: trimming removes the lowest scores, so it never shifts
/// a page still to be read, and an entry added meanwhile at most shifts one already read (read
/// twice, harmlessly). Whatever changes during the read is also published on the channel, to
/// which the caller subscribed before calling this.
pub async fn snapshot<C: redis::aio::ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    builder: &mut StateBuilder,
) -> Result<(bool, i64), Error> {
    let deadline = tokio::time::Instant::now() + SNAPSHOT_TIMEOUT;
    let (ready, seq): (bool, Option<i64>) = until(
        deadline,
        redis::pipe()
            .atomic()
            .exists(keys.ready())
            .get(keys.seq())
            .query_async(conn),
    )
    .await?;
    if !ready {
        return Ok((false, 0));
    }
    let now = unix_now();
    for kind in [Kind::Jti, Kind::Sid, Kind::User] {
        let mut offset: isize = 0;
        loop {
            // By rank (O(log n) to reach a page), highest score first.
            let page: Vec<(String, i64)> = until(
                deadline,
                redis::cmd("ZREVRANGE")
                    .arg(keys.set(kind))
                    .arg(offset)
                    .arg(offset + PAGE - 1)
                    .arg("WITHSCORES")
                    .query_async(conn),
            )
            .await?;
            let mut reached_expired = false;
            for (member, expires_at) in &page {
                if *expires_at <= now {
                    reached_expired = true;
                    break;
                }
                builder.add(&event_of_member(kind, member, *expires_at)?);
            }
            if reached_expired || (page.len() as isize) < PAGE {
                break;
            }
            offset += PAGE;
        }
    }
    Ok((true, seq.unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that answers every connection with different bytes that are not Redis.
    async fn garbage_server() -> String {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let mut n = 0u32;
            while let Ok((mut socket, _)) = listener.accept().await {
                n += 1;
                let _ = socket
                    .write_all(format!("\u{1b}[31mGARBAGE{n}\u{0}\r\n").as_bytes())
                    .await;
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    drop(socket);
                });
            }
        });
        format!("redis://127.0.0.1:{port}")
    }

    #[tokio::test]
    async fn a_server_answering_garbage_is_described_without_its_bytes() {
        let url = garbage_server().await;
        let mut texts = Vec::new();
        for _ in 0..2 {
            let publisher = Publisher::new(
                Target::new(&url).unwrap(),
                &KeyPrefix::new("tokenauth-test:"),
            );
            let error = publisher.status().await.unwrap_err();
            texts.push(error.to_string());
        }
        assert_eq!(texts[0], texts[1], "the same fault reads the same");
        assert!(!texts[0].contains("GARBAGE"), "{}", texts[0]);
        assert!(!texts[0].chars().any(char::is_control), "{}", texts[0]);
        let long = Error::Malformed(format!("\u{7}{}", "x".repeat(10_000))).to_string();
        assert!(long.len() < 300 && !long.contains('\u{7}'), "{long}");
    }

    #[test]
    fn members_round_trip_for_every_kind() {
        for (kind, not_before) in [
            (Kind::Jti, None),
            (Kind::Sid, None),
            (Kind::User, Some(123)),
        ] {
            let event = Event {
                seq: 0,
                kind,
                subject: "01a2-subject with space".into(),
                not_before,
                expires_at: 999,
            };
            let back = event_of_member(kind, &member_of(&event), 999).unwrap();
            assert_eq!(back, event);
        }
        assert!(event_of_member(Kind::User, "no-instant", 1).is_err());
        assert!(event_of_member(Kind::User, "sub notanumber", 1).is_err());
    }

    #[test]
    fn messages_have_the_documented_shape() {
        let sync = serde_json::to_value(Message::Sync { seq: 7 }).unwrap();
        assert_eq!(sync, serde_json::json!({"type": "sync", "seq": 7}));
        let reset = serde_json::to_value(Message::Reset).unwrap();
        assert_eq!(reset, serde_json::json!({"type": "reset"}));
        let revoked = serde_json::to_value(Message::Revoked {
            event: Event {
                seq: 3,
                kind: Kind::Sid,
                subject: "s".into(),
                not_before: None,
                expires_at: 9,
            },
        })
        .unwrap();
        assert_eq!(
            revoked,
            serde_json::json!({"type": "revoked", "event": {"seq": 3, "kind": "sid", "subject": "s", "expires_at": 9}})
        );
        let keys = Keys::new(&KeyPrefix::default());
        assert_eq!(keys.set(Kind::Jti), "tokenauth:rev:jti");
        assert_eq!(keys.channel(), "tokenauth:revocations");
    }
}
