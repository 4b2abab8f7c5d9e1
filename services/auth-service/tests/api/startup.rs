//! The binary as deployed: invalid configuration stops it at start-up with one line naming the
//! variable.

use tokenauth_testkit::{TempDir, assert_stops_naming};

#[test]
fn invalid_configuration_stops_with_one_line_naming_the_variable() {
    let dir = TempDir::new();
    let missing = dir.join("missing.pem").display().to_string();
    let not_a_key = dir.join("not-a-key.pem");
    std::fs::write(&not_a_key, "hello").unwrap();
    let not_a_key = not_a_key.display().to_string();
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("JWT_ALGORITHM", "RS256")], "JWT_ALGORITHM"),
        (vec![("JWT_ALGORITHM", "HS256")], "JWT_SECRET"),
        (
            vec![("JWT_ALGORITHM", "HS256"), ("JWT_SECRET", "too-short")],
            "JWT_SECRET",
        ),
        (
            vec![("JWT_PRIVATE_KEY_FILE", &missing)],
            "JWT_PRIVATE_KEY_FILE",
        ),
        (
            vec![("JWT_PRIVATE_KEY_FILE", &not_a_key)],
            "JWT_PRIVATE_KEY_FILE",
        ),
        (
            vec![("DATABASE_URL", "mysql://localhost/x")],
            "DATABASE_URL",
        ),
        (
            vec![("ACCESS_TOKEN_TTL_SECS", "soon")],
            "ACCESS_TOKEN_TTL_SECS",
        ),
        (
            vec![("REFRESH_TOKEN_TTL_SECS", "0")],
            "REFRESH_TOKEN_TTL_SECS",
        ),
        (vec![("BIND_ADDR", "not an address")], "BIND_ADDR"),
        (vec![("TLS_CERT_FILE", &missing)], "TLS_KEY_FILE"),
        (
            vec![("TLS_CERT_FILE", &missing), ("TLS_KEY_FILE", &missing)],
            "TLS_CERT_FILE",
        ),
        (
            vec![("BOOTSTRAP_ADMIN_USERNAME", "root")],
            "BOOTSTRAP_ADMIN_PASSWORD",
        ),
        (
            vec![
                ("BOOTSTRAP_ADMIN_USERNAME", "root"),
                ("BOOTSTRAP_ADMIN_PASSWORD", "short"),
            ],
            "BOOTSTRAP_ADMIN_PASSWORD",
        ),
        (vec![("LOG_FORMAT", "xml")], "LOG_FORMAT"),
    ];
    let base = [
        ("BIND_ADDR", "127.0.0.1:0".to_owned()),
        (
            "DATABASE_URL",
            format!("sqlite://{}/db.sqlite", dir.path().display()),
        ),
    ];
    for (env, var) in cases {
        assert_stops_naming(
            env!("CARGO_BIN_EXE_auth-service"),
            dir.path(),
            &base,
            &env,
            var,
        );
    }
}
