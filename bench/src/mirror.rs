//! Loading a revocation mirror of 1,000,000 revoked `jti`s: in process from a list, and the way
//! a verifier does it, from Redis (one `MULTI`/`EXEC` snapshot). Prints the time and the
//! resident memory the mirror adds (targets: ≤ 3 s, ≤ 128 MiB).

use std::time::Instant;

use tokenauth_revocation::redis_store::{Keys, Publisher, snapshot, snapshot_connection};
use tokenauth_revocation::{Event, Kind, MirrorWriter, StateBuilder, unix_now};

const COUNT: usize = 1_000_000;

fn rss_kib() -> u64 {
    crate::procs::rss_kib("self").unwrap_or(0)
}

pub async fn run(redis_url: &str) -> anyhow::Result<bool> {
    let exp = unix_now() + 900;
    let events: Vec<Event> = (0..COUNT)
        .map(|i| Event {
            seq: i as i64 + 1,
            kind: Kind::Jti,
            subject: uuid::Uuid::new_v4().to_string(),
            not_before: None,
            expires_at: exp,
        })
        .collect();

    // Seed a throw-away prefix in Redis, as the auth-service does after Redis restarts empty.
    let prefix = format!(
        "benchmirror{}:",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let publisher = Publisher::new(
        tokenauth_redis::target::Target::new(redis_url)?,
        &tokenauth_redis::KeyPrefix::new(prefix.clone()),
    );
    let started = Instant::now();
    publisher.seed(&events, COUNT as i64).await?;
    let seed_time = started.elapsed();
    drop(events);

    // A verifier's load: snapshot, then build the mirror.
    let before = rss_kib();
    let writer = MirrorWriter::new();
    let client = redis::Client::open(redis_url)?;
    let mut conn = snapshot_connection(&client).await?;
    let started = Instant::now();
    let mut builder = StateBuilder::default();
    let (_, seq) = snapshot(
        &mut conn,
        &Keys::new(&tokenauth_redis::KeyPrefix::new(prefix.clone())),
        &mut builder,
    )
    .await?;
    writer.install(builder, seq);
    let load_time = started.elapsed();
    let after = rss_kib();
    let stats = writer.mirror().stats();

    // Clean up the seeded keys.
    let keys = Keys::new(&tokenauth_redis::KeyPrefix::new(prefix));
    let _: () = redis::pipe()
        .del(keys.set(Kind::Jti))
        .del(keys.seq())
        .del(keys.ready())
        .query_async(&mut conn)
        .await?;

    let mib = (after.saturating_sub(before)) as f64 / 1024.0;
    println!("tokenauth revocation mirror benchmark ({COUNT} revoked jti)");
    println!(
        "  seeding Redis (auth-service, chunked ZADD): {:.2} s",
        seed_time.as_secs_f64()
    );
    println!(
        "  verifier load from Redis (paged snapshot into a new mirror): {:.2} s  (target <= 3 s)",
        load_time.as_secs_f64()
    );
    println!(
        "  mirror entries: {}  resident memory added: {mib:.1} MiB  (target <= 128 MiB)",
        stats.tokens
    );
    let pass = stats.tokens == COUNT && load_time.as_secs_f64() <= 3.0 && mib <= 128.0;
    println!("  result: {}", if pass { "PASS" } else { "FAIL" });
    Ok(pass)
}
