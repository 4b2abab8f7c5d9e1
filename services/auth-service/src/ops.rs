//! What an operator does besides serving: migrate, make a signing key, rotate and retire keys,
//! create or promote an admin. The binary's subcommands call these; each is one step that
//! either finishes or changes nothing.
//!
//! Key rotation, end to end:
//! 1. `rotate-key` puts a new key first in the key file and keeps the old ones after it. Every
//!    auth-service reading that file signs with the new key within [`crate::KEY_RELOAD_EVERY`]
//!    and publishes both in its JWKS; a verifier meeting the new `kid` fetches the JWKS again.
//! 2. Once every token the old keys signed has expired (`ACCESS_TOKEN_TTL_SECS` after the
//!    rotation), `retire-keys` drops every key but the first. Verifiers stop accepting the old
//!    keys within `JWKS_REFRESH_SECS`, and a token naming one never brings it back.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};

use tokenauth_jwt::SigningKey;
use tokenauth_store::Database;

use crate::base::config::{AuthConfig, BootstrapAdmin};
use crate::base::passwords::Hasher;

const BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const END: &str = "-----END PRIVATE KEY-----";

/// Slack added to the access-token lifetime before old keys may be retired: clock skew and the
/// time a verifier may take to hear of the rotation.
pub const RETIRE_SLACK_SECS: u64 = 120;

/// Applies every pending migration and fills in what older versions left out.
pub async fn migrate(config: &AuthConfig) -> anyhow::Result<()> {
    migrated(config).await.map(drop)
}

/// The database, migrated.
async fn migrated(config: &AuthConfig) -> anyhow::Result<Database> {
    let db = Database::new(config.database_url.clone())
        .map_err(|e| anyhow::anyhow!("DATABASE_URL: {e}"))?;
    let worker = db.clone();
    tokio::task::spawn_blocking(move || worker.migrate()).await??;
    crate::base::usernames::backfill(&db).await?;
    Ok(db)
}

pub use crate::flows::accounts::AdminOutcome;

/// Creates the admin, or gives an existing user of that name the admin role, keeping its
/// password unless `reset_password` (then the password is set and every session of the user
/// ends). Migrates first. Returns what was done, and whether the password was set.
pub async fn create_admin(
    config: &AuthConfig,
    admin: &BootstrapAdmin,
    reset_password: bool,
) -> anyhow::Result<(AdminOutcome, bool)> {
    let db = migrated(config).await?;
    let hasher = Hasher::start(1).await?;
    let outcome = crate::flows::accounts::bootstrap_admin(&db, &hasher, admin)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let set = match outcome {
        AdminOutcome::Created => true,
        AdminOutcome::NameTaken => {
            anyhow::bail!(
                "another user's name looks just like {}",
                admin.username.as_str()
            )
        }
        AdminOutcome::Promoted | AdminOutcome::AlreadyAdmin if reset_password => {
            crate::flows::accounts::reset_password(
                &db,
                &hasher,
                &admin.username,
                admin.password.clone(),
                config.access_ttl_secs,
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?
        }
        AdminOutcome::Promoted | AdminOutcome::AlreadyAdmin => false,
    };
    Ok((outcome, set))
}

/// A new Ed25519 key (PKCS#8 PEM) written to `path`, readable by its owner only; an existing
/// file is never overwritten. Returns its `kid`.
pub fn generate_key(path: &Path) -> anyhow::Result<String> {
    let pem = SigningKey::generate_ed25519_pem()?;
    let kid = kids(&pem)?.remove(0);
    write_new(path, &pem)?;
    Ok(kid)
}

/// Puts a new key first in the key file (it signs from now on) and keeps the others after it
/// (still published, so tokens they signed keep verifying). Returns the new `kid`.
pub fn rotate_key(path: &Path) -> anyhow::Result<String> {
    let old = read(path)?;
    let new = SigningKey::generate_ed25519_pem()?;
    let kid = kids(&new)?.remove(0);
    let blocks: Vec<&str> = std::iter::once(new.trim()).chain(blocks(&old)).collect();
    replace(path, &join(&blocks))?;
    Ok(kid)
}

/// What [`retire_keys`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Retired {
    /// These `kid`s were dropped.
    Dropped(Vec<String>),
    /// Nothing to drop: the file holds one key.
    Nothing,
}

/// Drops every key but the first. Refused while a token signed by an older key may still be
/// live: until `access_ttl` (plus [`RETIRE_SLACK_SECS`]) has passed since the file last
/// changed (the rotation), unless `force`.
pub fn retire_keys(path: &Path, access_ttl: i64, force: bool) -> anyhow::Result<Retired> {
    let pem = read(path)?;
    let all = kids(&pem)?;
    if all.len() < 2 {
        return Ok(Retired::Nothing);
    }
    let changed = std::fs::metadata(path)?.modified()?;
    let wait = Duration::from_secs(u64::try_from(access_ttl).unwrap_or(0) + RETIRE_SLACK_SECS);
    let age = SystemTime::now()
        .duration_since(changed)
        .unwrap_or(Duration::ZERO);
    if age < wait && !force {
        anyhow::bail!(
            "the key file changed {}s ago; tokens signed by the older keys may live until {}s \
             after that (ACCESS_TOKEN_TTL_SECS plus {RETIRE_SLACK_SECS}s): try again later, or \
             pass --force to cut them off now",
            age.as_secs(),
            wait.as_secs()
        );
    }
    let first: Vec<&str> = blocks(&pem).take(1).collect();
    replace(path, &join(&first))?;
    Ok(Retired::Dropped(all[1..].to_vec()))
}

/// The `kid` of each key in a key file, in order; an error when it holds none or a bad one.
pub fn kids(pem: &str) -> anyhow::Result<Vec<String>> {
    let keys = SigningKey::ed25519_from_pem(pem)?;
    anyhow::ensure!(!keys.is_empty(), "no PRIVATE KEY block");
    Ok(keys.iter().map(|k| k.kid().to_owned()).collect())
}

fn read(path: &Path) -> anyhow::Result<String> {
    let pem = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("key file {}: {e}", path.display()))?;
    kids(&pem).map_err(|e| anyhow::anyhow!("key file {}: {e}", path.display()))?;
    Ok(pem)
}

/// Each `PRIVATE KEY` block of a PEM file, in order.
fn blocks(pem: &str) -> impl Iterator<Item = &str> {
    pem.match_indices(BEGIN).filter_map(move |(start, _)| {
        let end = pem[start..].find(END)? + start + END.len();
        Some(&pem[start..end])
    })
}

fn join(blocks: &[&str]) -> String {
    let mut out = blocks.join("\n");
    out.push('\n');
    out
}

/// Writes `contents` to a new file readable by its owner only.
fn write_new(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

/// Replaces a key file's contents after checking that they parse, in place: the same file (its
/// inode, owner and mode) gets the new bytes. A file bind-mounted into a container (a Compose
/// secret) is the inode, not the name, so a file renamed over it would never be seen there, and
/// the directory holding it may not be writable by whoever rotates. A reader that meets the
/// file half written fails to parse it and keeps its keys until it reads it again (every 2 s).
/// A file readable by its owner only (0400) is made writable for the write and put back.
fn replace(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    kids(contents)?;
    let named = |e: std::io::Error| anyhow::anyhow!("{}: {e}", path.display());
    let mode = std::fs::metadata(path).map_err(named)?.permissions().mode();
    let writable = mode | 0o200;
    if writable != mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(writable)).map_err(named)?;
    }
    let written = (|| {
        let mut file = std::fs::OpenOptions::new().write(true).open(path)?;
        // Over the old bytes, then cut what is left of them: never an empty file.
        file.write_all(contents.as_bytes())?;
        file.set_len(contents.len() as u64)?;
        file.sync_all()
    })();
    if writable != mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(named)?;
    }
    written.map_err(named)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("ops-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap_or_default();
        dir
    }

    #[test]
    fn rotation_puts_the_new_key_first_and_retiring_keeps_only_it() -> anyhow::Result<()> {
        tokenauth_jwt::install_crypto_provider();
        let dir = dir();
        let path = dir.join("keys.pem");
        let first = generate_key(&path)?;
        assert!(generate_key(&path).is_err(), "overwrote a key file");
        let second = rotate_key(&path)?;
        let third = rotate_key(&path)?;
        assert_eq!(
            kids(&std::fs::read_to_string(&path)?)?,
            [third.as_str(), second.as_str(), first.as_str()]
        );
        // Just rotated: refused.
        assert!(retire_keys(&path, 900, false).is_err());
        assert_eq!(
            retire_keys(&path, 900, true)?,
            Retired::Dropped(vec![second, first])
        );
        assert_eq!(kids(&std::fs::read_to_string(&path)?)?, [third.as_str()]);
        assert_eq!(retire_keys(&path, 0, false)?, Retired::Nothing);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path)?.permissions().mode() & 0o777,
            0o600
        );
        std::fs::remove_dir_all(dir)?;
        Ok(())
    }
}
