//! The auth-service binary: with no subcommand (or `serve`) it serves, configured by the
//! environment; the other subcommands are one-off operator steps (see [`auth_service::ops`]).

use std::io::BufRead;
use std::path::PathBuf;

use auth_service::Application;
use auth_service::config::{AuthConfig, BootstrapAdmin};
use auth_service::domain::{Password, Username};
use auth_service::ops;
use clap::{Parser, Subcommand};
use secrecy::SecretString;
use tokenauth_kit::config::Env;

/// tokenauth's auth-service: users, sessions, access and refresh tokens, OAuth 2.0.
/// Configured by the environment (docs/configuration.md); with no subcommand it serves.
#[derive(Parser)]
#[command(name = "auth-service", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (what running with no subcommand does).
    Serve,
    /// Apply the database migrations (DATABASE_URL) and exit.
    Migrate,
    /// Write a new Ed25519 signing key (PKCS#8 PEM, mode 0600) to a file that must not exist.
    GenerateKey {
        #[arg(long)]
        out: PathBuf,
    },
    /// Put a new signing key first in the key file; the older keys stay published so tokens
    /// they signed keep verifying. Running services sign with it within seconds.
    RotateKey {
        /// Default: JWT_PRIVATE_KEY_FILE, or the key generated under ./data.
        #[arg(long)]
        key_file: Option<PathBuf>,
    },
    /// Drop every key but the first from the key file, once every token the others signed has
    /// expired (ACCESS_TOKEN_TTL_SECS after the rotation; refused before unless --force).
    RetireKeys {
        /// Default: JWT_PRIVATE_KEY_FILE, or the key generated under ./data.
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// Retire now, cutting off tokens the older keys signed that have not expired.
        #[arg(long)]
        force: bool,
    },
    /// Create an admin, or give an existing user the admin role. The password is read from
    /// the first line of standard input (never from an argument, which `ps` would show).
    CreateAdmin {
        #[arg(long)]
        username: String,
        /// When the user exists: set its password to the one given (every session of the user
        /// ends). Without it an existing user's password is kept.
        #[arg(long)]
        reset_password: bool,
    },
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    tokenauth_kit::service::exit_on_error("auth-service", run(cli.command)).await;
}

async fn run(command: Option<Command>) -> anyhow::Result<()> {
    tokenauth_kit::telemetry::init(&Env)?;
    let config = AuthConfig::from_env()?;
    let key_file = |given: Option<PathBuf>| {
        given
            .or_else(|| auth_service::tokens::key_file(&config))
            .ok_or_else(|| anyhow::anyhow!("HS256 mode has no key file (JWT_ALGORITHM=HS256)"))
    };
    match command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = Application::build(config).await?;
            tracing::info!(url = %app.base_url(), "auth-service listening");
            app.run_until_stopped().await?;
        }
        Command::Migrate => {
            ops::migrate(&config).await?;
            println!("database schema is current");
        }
        Command::GenerateKey { out } => {
            tokenauth_jwt::install_crypto_provider();
            let kid = ops::generate_key(&out)?;
            println!("wrote {} (kid {kid})", out.display());
        }
        Command::RotateKey { key_file: given } => {
            tokenauth_jwt::install_crypto_provider();
            let path = key_file(given)?;
            let kid = ops::rotate_key(&path)?;
            println!(
                "{}: kid {kid} signs now; the older keys stay published",
                path.display()
            );
        }
        Command::RetireKeys {
            key_file: given,
            force,
        } => {
            tokenauth_jwt::install_crypto_provider();
            let path = key_file(given)?;
            match ops::retire_keys(&path, config.access_ttl_secs, force)? {
                ops::Retired::Dropped(kids) => {
                    println!("{}: retired {}", path.display(), kids.join(", "));
                }
                ops::Retired::Nothing => println!("{}: one key, nothing to retire", path.display()),
            }
        }
        Command::CreateAdmin {
            username,
            reset_password,
        } => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            let password = line.trim_end_matches(['\n', '\r']).to_owned();
            let admin = BootstrapAdmin {
                username: Username::parse(&username)
                    .map_err(|m| anyhow::anyhow!("username: {m}"))?,
                password: Password::parse(SecretString::from(password))
                    .map_err(|m| anyhow::anyhow!("password: {m}"))?,
            };
            let (outcome, password_set) =
                ops::create_admin(&config, &admin, reset_password).await?;
            let unchanged = format!(
                "its password is unchanged (to set it: create-admin --username {username} \
                 --reset-password)"
            );
            match (outcome, password_set) {
                (ops::AdminOutcome::Created, _) => println!("{username}: created, an admin"),
                (_, true) => println!(
                    "{username}: an admin; its password is set and every session of it ended"
                ),
                (ops::AdminOutcome::Promoted, false) => {
                    println!("{username}: existed, now an admin; {unchanged}")
                }
                (_, false) => println!("{username}: already an admin; {unchanged}"),
            }
        }
    }
    Ok(())
}
