//! argon2id hashing on a pool of its own: one thread per core, each with one argon2 memory
//! block allocated at its first hash and reused for every later one, fed through a queue that callers
//! wait on without holding a thread. So a login flood cannot stall other requests (no hash runs
//! on an async worker) nor grow memory: however many logins arrive at once, the hashing memory
//! is `threads × 19 MiB`, allocated once. (Letting argon2 allocate per hash on tokio's blocking
//! pool grew a fresh service from 21 MiB to 940 MiB under 200 concurrent logins: every new
//! blocking thread gets a malloc arena of its own, and each arena kept the 19 MiB blocks it had
//! freed.) Unknown users are checked against a dummy hash so both failures cost the same time.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::{Semaphore, oneshot};

use crate::base::domain::Password;

/// OWASP's argon2id recommendation: 19 MiB, 2 iterations, 1 lane.
pub const M_COST_KIB: u32 = 19_456;
pub const T_COST: u32 = 2;
pub const P_COST: u32 = 1;

/// Checked when the crate compiles: invalid parameters fail the build, never fall back.
const PARAMS: Params = match Params::new(M_COST_KIB, T_COST, P_COST, None) {
    Ok(params) => params,
    Err(_) => panic!("argon2 parameters out of bounds"),
};

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("the hashing pool is gone")]
    Pool,
}

/// argon2id with the service's parameters (the benchmark's baseline uses it too).
pub fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, PARAMS)
}

type Job = Box<dyn FnOnce(&mut [Block]) + Send>;

struct Pool {
    queue: mpsc::Sender<Job>,
    /// One per thread: a hash waits here (on no thread) until a thread is free for it.
    permits: Arc<Semaphore>,
    threads: usize,
    /// Hashes waiting for a free thread.
    waiting: std::sync::atomic::AtomicUsize,
}

#[derive(Clone)]
pub struct Hasher {
    pool: Arc<Pool>,
    dummy_hash: Arc<str>,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher")
            .field("threads", &self.pool.threads)
            .field("free", &self.pool.permits.available_permits())
            .finish_non_exhaustive()
    }
}

impl Hasher {
    /// Starts `threads` hashing threads (default: one per core) and computes the dummy hash on
    /// one of them.
    pub async fn start(threads: usize) -> Result<Self, HashError> {
        let threads = threads.max(1);
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    // Allocated at the thread's first hash, then kept for its life.
                    let mut memory: Vec<Block> = Vec::new();
                    loop {
                        // The lock is held only while taking a job, never while hashing.
                        let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        match job {
                            Ok(job) => {
                                if memory.is_empty() {
                                    memory = vec![Block::new(); PARAMS.block_count()];
                                }
                                job(&mut memory)
                            }
                            // The hasher is gone: the thread ends and its memory is freed.
                            Err(_) => return,
                        }
                    }
                })
                .map_err(|e| HashError::Hash(format!("cannot start a hashing thread: {e}")))?;
        }
        let (done, dummy) = oneshot::channel();
        let job: Job = Box::new(move |memory| {
            let _ = done.send(hash_with(
                b"tokenauth dummy password for unknown users",
                memory,
            ));
        });
        tx.send(job).map_err(|_| HashError::Pool)?;
        let dummy = dummy.await.map_err(|_| HashError::Pool)??;
        let pool = Arc::new(Pool {
            queue: tx,
            permits: Arc::new(Semaphore::new(threads)),
            waiting: std::sync::atomic::AtomicUsize::new(0),
            threads,
        });
        Ok(Hasher {
            pool,
            dummy_hash: Arc::from(dummy),
        })
    }

    pub fn default_threads() -> usize {
        std::thread::available_parallelism().map_or(2, usize::from)
    }

    /// Runs `f` on a hashing thread with its memory.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut [Block]) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        use std::sync::atomic::Ordering;
        self.pool.waiting.fetch_add(1, Ordering::Relaxed);
        let permit = self.pool.permits.clone().acquire_owned().await;
        self.pool.waiting.fetch_sub(1, Ordering::Relaxed);
        let permit = permit.map_err(|_| HashError::Pool)?;
        let (tx, rx) = oneshot::channel();
        // The permit travels with the job: should the caller go away (a client that sends a
        // login and disconnects), its place is given back only when the hash has run, so no
        // more hashes than threads are ever queued, however many requests are abandoned.
        let job: Job = Box::new(move |memory| {
            let _ = tx.send(f(memory));
            drop(permit);
        });
        self.pool.queue.send(job).map_err(|_| HashError::Pool)?;
        rx.await.map_err(|_| HashError::Pool)
    }

    /// Hashes running now and hashes waiting for a thread (the argon2 queue).
    pub fn load(&self) -> (usize, usize) {
        let running = self.pool.threads - self.pool.permits.available_permits();
        let waiting = self.pool.waiting.load(std::sync::atomic::Ordering::Relaxed);
        (running, waiting)
    }

    pub async fn hash(&self, password: Password) -> Result<String, HashError> {
        self.run(move |memory| hash_with(password.expose().as_bytes(), memory))
            .await?
    }

    /// Checks a password against `hash`, or against the dummy hash when there is no user, so
    /// that both cost one full argon2id run. Returns false for no user.
    pub async fn verify(
        &self,
        password: Password,
        hash: Option<String>,
    ) -> Result<bool, HashError> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.to_string());
        let matched = self
            .run(move |memory| verify_with(password.expose().as_bytes(), &hash, memory))
            .await?;
        Ok(known && matched)
    }
}

/// A PHC string of `password` under a fresh salt, hashed in `memory`.
fn hash_with(password: &[u8], memory: &mut [Block]) -> Result<String, HashError> {
    let salt = Salt::generate();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2()
        .hash_password_into_with_memory(password, &salt, &mut out, memory)
        .map_err(|e| HashError::Hash(e.to_string()))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&PARAMS).map_err(|e| HashError::Hash(e.to_string()))?,
        salt: Some(salt),
        hash: Some(Output::new(&out).map_err(|e| HashError::Hash(e.to_string()))?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string `stored`, computed in `memory` (or, for a hash
/// stored with more memory than the service uses today, in memory of its own). The comparison
/// is constant-time. An unreadable hash matches nothing.
fn verify_with(password: &[u8], stored: &str, memory: &mut [Block]) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(mut params) = Params::try_from(&parsed.params) else {
        return false;
    };
    // The output is as long as the stored one.
    if let Ok(p) = Params::new(
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        Some(expected.len()),
    ) {
        params = p;
    }
    let argon = Argon2::new(algorithm, version, params.clone());
    let mut out = vec![0u8; expected.len()];
    let needed = params.block_count();
    let result = if needed <= memory.len() {
        argon.hash_password_into_with_memory(password, &salt, &mut out, &mut memory[..needed])
    } else {
        argon.hash_password_into(password, &salt, &mut out)
    };
    result.is_ok() && Output::new(&out).is_ok_and(|o| o == expected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordHasher as _;
    use secrecy::SecretString;

    fn pw(s: &str) -> Password {
        Password::parse(SecretString::from(s.to_owned())).unwrap()
    }

    #[tokio::test]
    async fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let hasher = Hasher::start(1).await.unwrap();
        let hash = hasher.hash(pw("correct horse")).await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(
            hasher
                .verify(pw("correct horse"), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(!hasher.verify(pw("wrong horse!"), Some(hash)).await.unwrap());
    }

    #[tokio::test]
    async fn hashes_made_by_the_argon2_crate_itself_still_verify() {
        // Hashes stored before the pool (and by any other argon2 implementation) keep working,
        // including ones with other parameters.
        let hasher = Hasher::start(1).await.unwrap();
        let ours = argon2()
            .hash_password(b"correct horse")
            .unwrap()
            .to_string();
        assert!(
            hasher
                .verify(pw("correct horse"), Some(ours))
                .await
                .unwrap()
        );
        let lighter = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8 * 1024, 1, 1, None).unwrap(),
        );
        let light = lighter.hash_password(b"correct horse").unwrap().to_string();
        assert!(
            hasher
                .verify(pw("correct horse"), Some(light.clone()))
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify(pw("correct horsf"), Some(light))
                .await
                .unwrap()
        );
        let heavier = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(32 * 1024, 1, 1, None).unwrap(),
        );
        let heavy = heavier.hash_password(b"correct horse").unwrap().to_string();
        assert!(
            hasher
                .verify(pw("correct horse"), Some(heavy))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn unreadable_hashes_match_nothing() {
        let hasher = Hasher::start(1).await.unwrap();
        for stored in [
            "",
            "$argon2id$",
            "not a hash",
            "$argon2id$v=19$m=19456,t=2,p=1$",
        ] {
            assert!(
                !hasher
                    .verify(pw("correct horse"), Some(stored.into()))
                    .await
                    .unwrap()
            );
        }
    }

    #[tokio::test]
    async fn unknown_users_never_verify_even_with_the_dummy_password() {
        let hasher = Hasher::start(1).await.unwrap();
        let dummy = pw("tokenauth dummy password for unknown users");
        assert!(!hasher.verify(dummy, None).await.unwrap());
    }

    #[tokio::test]
    async fn many_concurrent_hashes_run_on_the_pool_threads_only() {
        let hasher = Hasher::start(2).await.unwrap();
        let names = futures_util::future::join_all((0..8).map(|_| {
            let hasher = hasher.clone();
            async move {
                hasher
                    .run(|_| std::thread::current().name().map(str::to_owned))
                    .await
                    .unwrap()
            }
        }))
        .await;
        for name in names {
            let name = name.unwrap_or_default();
            assert!(name.starts_with("argon2-"), "{name}");
        }
    }

    #[tokio::test]
    async fn abandoned_hashes_keep_their_place_until_they_have_run() {
        let hasher = Hasher::start(1).await.unwrap();
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let first = tokio::spawn({
            let hasher = hasher.clone();
            async move { hasher.run(move |_| hold.recv().ok()).await }
        });
        while hasher.pool.permits.available_permits() != 0 {
            tokio::task::yield_now().await;
        }
        // The caller goes away while its hash runs: the place stays taken until it is done.
        first.abort();
        let _ = first.await;
        assert_eq!(hasher.pool.permits.available_permits(), 0);
        release.send(()).unwrap();
        let started = std::time::Instant::now();
        while hasher.pool.permits.available_permits() != 1 {
            assert!(started.elapsed() < std::time::Duration::from_secs(5));
            tokio::task::yield_now().await;
        }
    }
}
