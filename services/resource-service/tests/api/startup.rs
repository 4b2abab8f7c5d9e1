//! The binary as deployed: invalid configuration stops it with one line naming the variable.

use tokenauth_testkit::{TempDir, assert_stops_naming};

#[test]
fn invalid_configuration_stops_with_one_line_naming_the_variable() {
    let dir = TempDir::new();
    let missing = dir.join("missing.pem").display().to_string();
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![], "REDIS_URL"),
        (vec![("REDIS_URL", "http://127.0.0.1:6379")], "REDIS_URL"),
        (
            vec![
                ("REDIS_URL", "redis://127.0.0.1:1"),
                ("JWT_ALGORITHM", "none"),
            ],
            "JWT_ALGORITHM",
        ),
        (
            vec![
                ("REDIS_URL", "redis://127.0.0.1:1"),
                ("JWT_ALGORITHM", "HS256"),
            ],
            "JWT_SECRET",
        ),
        (
            vec![
                ("REDIS_URL", "redis://127.0.0.1:1"),
                ("JWT_PUBLIC_KEY_FILE", &missing),
            ],
            "JWT_PUBLIC_KEY_FILE",
        ),
        (
            vec![
                ("REDIS_URL", "redis://127.0.0.1:1"),
                ("JWKS_URL", "ftp://x"),
            ],
            "JWKS_URL",
        ),
        (
            vec![
                ("REDIS_URL", "redis://127.0.0.1:1"),
                ("FILES_LINK_SECRET", "short"),
            ],
            "FILES_LINK_SECRET",
        ),
        (
            vec![
                ("REDIS_URL", "redis://127.0.0.1:1"),
                ("TRUSTED_PROXIES", "10.0.0.0/8, proxy.internal"),
            ],
            "TRUSTED_PROXIES",
        ),
    ];
    let bad_bases = [
        "javascript://attacker.example",
        "ftp://files.example.com",
        "files.example.com",
        "/relative/path",
        "https://",
        "https://user:pass@files.example.com",
        "https://files.example.com/?q=1",
        "https://files.example.com/#top",
    ];
    let cases = cases.into_iter().chain(bad_bases.iter().map(|base| {
        (
            vec![
                ("REDIS_URL", "redis://127.0.0.1:1"),
                ("PUBLIC_BASE_URL", *base),
            ],
            "PUBLIC_BASE_URL",
        )
    }));
    let base = [
        ("BIND_ADDR", "127.0.0.1:0".to_owned()),
        ("FILES_DIR", dir.join("files").display().to_string()),
    ];
    for (env, var) in cases {
        assert_stops_naming(
            env!("CARGO_BIN_EXE_resource-service"),
            dir.path(),
            &base,
            &env,
            var,
        );
    }
}
