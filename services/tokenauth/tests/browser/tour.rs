//! The README's five-minute tour and the walk-throughs in docs/, run in order, as written: every
//! `sh` block of README.md, docs/oauth.md and docs/client.md in one shell, then those of
//! docs/guard.md (which starts its own stack, on Redis) in another. `cargo run --release` is
//! the all-in-one binary, `cargo run -p CRATE --example NAME` that example; the ports 8080,
//! 8081, 8082, 8090 and 6379 become free ones (the reader's own stack may be on the real ones),
//! and the files the steps write land in a directory of their own. A `# ` line right under a step that shows
//! an answer (`{…}`, `<h1>…`, a status, `GET …`) must match a line the step printed, `…`
//! standing for anything.

use std::path::{Path, PathBuf};
use std::process::Command;

use tokenauth_testkit::{TempDir, free_port};

/// The tour's pages, in the order a reader meets them.
const TOUR: &[&str] = &["README.md", "docs/oauth.md", "docs/client.md"];
/// The guard's page: a stack of its own.
const GUARD: &[&str] = &["docs/guard.md"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The `sh` blocks of a page, with the line each starts on.
fn sh_blocks(page: &str) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(root().join(page)).unwrap();
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (n, line) in text.lines().enumerate() {
        match &mut current {
            None if line.trim_end() == "```sh" => current = Some((n + 1, String::new())),
            None => {}
            Some(_) if line.starts_with("```") => blocks.extend(current.take()),
            Some((_, body)) => {
                body.push_str(line);
                body.push('\n');
            }
        }
    }
    assert!(current.is_none(), "{page}: an sh block is not closed");
    blocks
}

/// The answers a block shows: its `# ` lines that look like output, as patterns.
fn shown_answers(block: &str) -> Vec<String> {
    block
        .lines()
        .filter_map(|l| l.strip_prefix("# "))
        .filter(|l| {
            l.starts_with('{')
                || l.starts_with('<')
                || l.starts_with("GET ")
                || l.chars().next().is_some_and(|c| c.is_ascii_digit())
        })
        // A note after the answer: `{"answer":42}   (three times, one token)`.
        .map(|l| l.split("   (").next().unwrap_or(l).trim_end().to_owned())
        .collect()
}

/// Whether `line` ends with what `pattern` shows, `…` in the pattern standing for anything. The
/// shown text starts the line, or follows a JSON body printed before it without a newline
/// (curl prints a body as it came).
fn matches(pattern: &str, line: &str) -> bool {
    let starts = std::iter::once(0).chain(line.match_indices('}').map(|(i, _)| i + 1));
    starts
        .into_iter()
        .any(|start| matches_whole(pattern, &line[start..]))
}

/// Whether all of `line` is `pattern`, `…` standing for anything.
fn matches_whole(pattern: &str, line: &str) -> bool {
    let mut parts = pattern.split('…');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = line.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    for (i, part) in parts.iter().enumerate() {
        if i == parts.len() - 1 {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

/// Where cargo put the example binaries of the client and guard crates.
fn examples_dir() -> PathBuf {
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "-q",
            "-p",
            "tokenauth-client",
            "-p",
            "tokenauth-guard",
        ])
        .arg("--examples")
        .current_dir(root())
        .status()
        .expect("running cargo to build the client's examples");
    assert!(status.success(), "building the examples failed");
    // target/<profile>/deps/<this test> → target/<profile>/examples
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().join("examples")
}

/// Runs every `sh` block of `pages` in one shell and checks each against the answers it shows.
/// At least `min_steps` blocks.
fn run_as_written(pages: &[&str], min_steps: usize) {
    let (auth, resource, guarded, app, redis) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let dir = TempDir::new();
    std::os::unix::fs::symlink(root().join("examples"), dir.join("examples")).unwrap();
    let ports = |text: &str| {
        text.replace("127.0.0.1:8080", &format!("127.0.0.1:{auth}"))
            .replace("127.0.0.1:8081", &format!("127.0.0.1:{resource}"))
            .replace("127.0.0.1:8082", &format!("127.0.0.1:{guarded}"))
            .replace("127.0.0.1:8090", &format!("127.0.0.1:{app}"))
            .replace("http.server 8090", &format!("http.server {app}"))
            .replace("127.0.0.1:6379", &format!("127.0.0.1:{redis}"))
            .replace("--port 6379", &format!("--port {redis}"))
    };

    let mut script = format!(
        r#"set -eo pipefail
# Every process the tour starts ends with it (the shell itself keeps its own exit status).
trap 'trap "" TERM; kill 0' EXIT
trap 'exit 143' TERM
cargo() {{
  case "$*" in
    "run --release")
      BIND_ADDR=127.0.0.1:{auth} RESOURCE_BIND_ADDR=127.0.0.1:{resource} {bin} ;;
    "run -p tokenauth-client --example "*)
      AUTH_URL=http://127.0.0.1:{auth} RESOURCE_URL=http://127.0.0.1:{resource} {examples}/"$5" ;;
    "run -p tokenauth-guard --example hello")
      BIND_ADDR=127.0.0.1:{guarded} JWKS_URL=http://127.0.0.1:{auth}/.well-known/jwks.json \
        {examples}/hello ;;
    *) echo "the tour runs cargo $*, which this test does not stand in for" >&2; return 97 ;;
  esac
}}
"#,
        bin = env!("CARGO_BIN_EXE_tokenauth"),
        examples = examples_dir().display(),
    );
    let mut steps = Vec::new();
    for page in pages {
        for (line, block) in sh_blocks(page) {
            let block = ports(&block);
            let n = steps.len();
            script.push_str(&format!("echo '@@step {n}'\n{block}echo '@@done {n}'\n"));
            steps.push((format!("{page}:{line}"), shown_answers(&block)));
        }
    }
    assert!(
        steps.len() >= min_steps,
        "the pages hold {} sh blocks",
        steps.len()
    );
    let script_file = dir.join("tour.sh");
    std::fs::write(&script_file, &script).unwrap();

    // A deadline for the whole tour; `setsid` gives it a process group of its own to end.
    let out = Command::new("timeout")
        .args(["150", "setsid", "bash"])
        .arg(&script_file)
        .current_dir(dir.path())
        .env_remove("REDIS_URL")
        .env_remove("DATABASE_URL")
        .output()
        .expect("running bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (n, (at, answers)) in steps.iter().enumerate() {
        let begin = stdout.find(&format!("@@step {n}\n"));
        let end = stdout.find(&format!("@@done {n}\n"));
        let (Some(begin), Some(end)) = (begin, end) else {
            panic!(
                "the step at {at} did not finish (exit {:?})\n--- output\n{stdout}\n--- errors\n{stderr}",
                out.status.code()
            );
        };
        let printed: Vec<&str> = stdout[begin..end].lines().collect();
        for answer in answers {
            assert!(
                printed.iter().any(|line| matches(answer, line)),
                "the step at {at} shows `{answer}`, but printed:\n{}\n--- errors\n{stderr}",
                printed.join("\n")
            );
        }
    }
    // Every step's answers were checked; the shell itself must have ended well too.
    assert!(
        out.status.success(),
        "the tour's shell ended with {:?}\n{stderr}",
        out.status.code()
    );
    assert!(
        Path::new(&dir.join("data")).exists(),
        "the stack wrote no ./data"
    );
}

/// One after the other, not side by side: each starts a whole stack, and on a busy machine two
/// at once would measure the machine rather than the pages.
#[test]
fn the_readme_tour_and_the_docs_walkthroughs_run_as_written() {
    run_as_written(TOUR, 10);
    run_as_written(GUARD, 2);
}

#[test]
fn an_answer_pattern_matches_only_what_it_shows() {
    assert!(matches(r#"{"answer":42}"#, r#"{"answer":42}"#));
    assert!(matches(
        r#"{"answer":42}"#,
        r#"{"user":{"id":"1"}}{"answer":42}"#
    ));
    assert!(!matches(r#"{"answer":42}"#, r#"x{"answer":42}"#));
    assert!(!matches("204", "1204"));
    assert!(!matches(r#"{"answer":42}"#, r#"{"answer":43}"#));
    assert!(matches(
        r#"{"status":401,"title":"Unauthorized","code":"token_revoked",…}"#,
        r#"{"status":401,"title":"Unauthorized","code":"token_revoked","detail":"x"}"#
    ));
    assert!(!matches(
        r#"{"status":401,"title":"Unauthorized","code":"token_revoked",…}"#,
        r#"{"status":401,"title":"Unauthorized","code":"token_expired","detail":"x"}"#
    ));
    assert!(matches(
        r#"{"client_id":"svc-…",…,"username":"carol"}"#,
        r#"{"client_id":"svc-1","scope":"api","username":"carol"}"#
    ));
    assert!(!matches(
        r#"{"client_id":"svc-…",…,"username":"carol"}"#,
        r#"{"client_id":"svc-1","scope":"api","username":"bob"}"#
    ));
    assert_eq!(
        shown_answers("curl x\n# 204\n# open the page\n# GET u: 200 OK {}   (twice)\n"),
        vec!["204".to_owned(), "GET u: 200 OK {}".to_owned()]
    );
}
