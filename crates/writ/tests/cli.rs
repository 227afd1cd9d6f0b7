//! The CLI explains itself: on the quickstart, as a new user meets it — what can be
//! asked for, why a denial and what would change it, who can approve, short ids,
//! durations and times as people write them, exit codes a script can rely on, quiet
//! pipes and no colour — and `writ check` on a real PostgreSQL target.

mod support;

use std::io::Read;
use std::process::{Output, Stdio};

use support::{PG_URL, TestRoles, Writ, stderr, stdout};

const EXIT_FAILED: i32 = 1;
const EXIT_USAGE: i32 = 2;
const EXIT_DENIED: i32 = 3;
const EXIT_NOT_FOUND: i32 = 4;
const EXIT_UNAUTHENTICATED: i32 = 5;
const EXIT_UNAVAILABLE: i32 = 7;

/// The quickstart's own configuration, policies and target script.
fn quickstart() -> Writ {
    let root =
        std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"))
            .join("../../examples/quickstart");
    let config = std::fs::read_to_string(root.join("writ.toml")).expect("quickstart config");
    let body = config.replace("[server]\nlisten = \"127.0.0.1:7070\"\n", "");
    let policy =
        |name: &str| std::fs::read_to_string(root.join("policies").join(name)).expect("policy");
    let writ = Writ::new(
        &body,
        &[
            ("request.cedar", &policy("request.cedar")),
            ("approve.cedar", &policy("approve.cedar")),
        ],
    );
    let script = writ.path("memberships.sh");
    std::fs::copy(root.join("memberships.sh"), &script).expect("script");
    writ
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("exited, not killed")
}

fn as_user(writ: &Writ, token: &str, args: &[&str]) -> Output {
    writ.command(args)
        .env("WRIT_TOKEN", token)
        .env("TZ", "UTC")
        .output()
        .expect("run writ")
}

/// The first word after `prefix` in the text (e.g. the id after "request ").
fn word_after<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.split(prefix)
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no {prefix:?} in {text}"))
}

#[tokio::test]
async fn the_cli_explains_itself_on_the_quickstart() {
    let mut writ = quickstart();

    // Before the server runs: where the address came from, and what to do.
    let alice = writ.token("alice");
    let output = as_user(&writ, &alice, &["grants"]);
    assert_eq!(code(&output), EXIT_UNAVAILABLE, "{}", stderr(&output));
    let said = stderr(&output);
    assert!(
        said.contains("cannot reach writ at http://127.0.0.1:")
            && said.contains("server.listen in")
            && said.contains("writ serve --config"),
        "{said}"
    );
    writ.start().await;

    // An empty token (a failed `$(writ token issue ...)`) is no token.
    let output = as_user(&writ, "", &["grants"]);
    assert_eq!(code(&output), EXIT_UNAUTHENTICATED);
    assert!(
        stderr(&output)
            .contains("not signed in: run `writ login`, or set WRIT_TOKEN or pass --token"),
        "{}",
        stderr(&output)
    );
    let output = as_user(&writ, "not-a-token", &["grants"]);
    assert_eq!(code(&output), EXIT_UNAUTHENTICATED);
    assert!(
        stderr(&output).contains("writ token issue NAME"),
        "{}",
        stderr(&output)
    );

    // What alice can ask for, and what policy says now.
    let output = as_user(&writ, &alice, &["entitlements"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let table = stdout(&output);
    let line = |id: &str| {
        table
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("{id} in {table}"))
            .to_string()
    };
    assert!(
        line("files/reports_read").contains("automatic, up to 8h"),
        "{table}"
    );
    assert!(
        line("files/prod_admin").contains("denied; with a ticket: 1 approval, up to 2h")
            && line("files/prod_admin").contains("sre-leads"),
        "{table}"
    );

    // A typo gets the nearest ids.
    let output = as_user(&writ, &alice, &["request", "files/prod_admn", "-j", "x"]);
    assert_eq!(code(&output), EXIT_USAGE);
    assert!(
        stderr(&output).contains("did you mean files/prod_admin"),
        "{}",
        stderr(&output)
    );

    // Durations: as people write them, the same help for everything else.
    for bad in ["1hour", "abc"] {
        let output = as_user(
            &writ,
            &alice,
            &[
                "request",
                "files/reports_read",
                "--duration",
                bad,
                "-j",
                "x",
            ],
        );
        assert_eq!(code(&output), EXIT_USAGE);
        assert!(
            stderr(&output)
                .contains("write a number and a unit (s, m, h, d, w), e.g. 90s, 15m, 8h, 3d"),
            "{}",
            stderr(&output)
        );
    }
    let output = as_user(
        &writ,
        &alice,
        &[
            "request",
            "files/reports_read",
            "--duration",
            "100d",
            "-j",
            "report",
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("asked for 100d, granted 8h (policy maximum)"),
        "{}",
        stdout(&output)
    );
    assert!(!stdout(&output).contains('\u{1b}'), "no colour into a pipe");

    // A denial says why and what would change it; the exit code says "denied".
    let output = as_user(
        &writ,
        &alice,
        &["request", "files/prod_admin", "-j", "deploy"],
    );
    assert_eq!(code(&output), EXIT_DENIED, "{}", stdout(&output));
    assert!(
        stdout(&output).contains("what would change it: a ticket would change this")
            && stdout(&output).contains("high-needs-ticket-and-approval would ask for 1 approval"),
        "{}",
        stdout(&output)
    );

    // Pending: who can approve (never alice herself), and the short id to do it with.
    let output = as_user(
        &writ,
        &alice,
        &[
            "request",
            "files/prod_admin",
            "--ticket",
            "jira:OPS-42",
            "-j",
            "deploy",
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains("waiting   for 1 more approval from any of: bob, carol, dave"),
        "{text}"
    );
    let request = word_after(&text, "request ").to_string();
    assert!(
        request.starts_with("req_") && request.len() == 12,
        "{request}"
    );

    // Short ids are accepted, of the right kind only.
    let carol = writ.token("carol");
    let output = as_user(&writ, &carol, &["requests", "--inbox"]);
    assert!(stdout(&output).contains(&request), "{}", stdout(&output));
    let output = as_user(&writ, &alice, &["approve", &request]);
    assert_eq!(
        code(&output),
        EXIT_DENIED,
        "self approval: {}",
        stderr(&output)
    );
    let grant_tagged = request.replacen("req_", "grt_", 1);
    let output = as_user(&writ, &carol, &["approve", &grant_tagged]);
    assert_eq!(code(&output), EXIT_NOT_FOUND, "{}", stderr(&output));
    let output = as_user(
        &writ,
        &carol,
        &["approve", &request[4..], "-m", "ticket checked"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let grant = word_after(&stdout(&output), "grant id  ").to_string();
    assert!(grant.starts_with("grt_"), "{}", stdout(&output));
    let output = as_user(&writ, &carol, &["grants", "../audit"]);
    assert_eq!(code(&output), EXIT_NOT_FOUND, "path segments are ids only");
    let output = as_user(&writ, &carol, &["grants", "ffffffff"]);
    assert_eq!(code(&output), EXIT_NOT_FOUND, "{}", stderr(&output));

    // Times in the reader's zone (TZ=UTC here), to the second, and relative.
    let output = as_user(&writ, &alice, &["grants"]);
    let table = stdout(&output);
    let row = table
        .lines()
        .find(|l| l.starts_with(&grant))
        .unwrap_or_else(|| panic!("{grant} in {table}"));
    assert!(
        row.contains("active") && row.contains(" +00:00 (in 1h59m"),
        "{row}"
    );
    let output = as_user(&writ, &alice, &["grants", &grant, "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert!(
        json["expires_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{json}"
    );

    // Revoked says what happened; an unknown grant is "not found".
    let output = as_user(&writ, &alice, &["revoke", &grant, "--reason", "done"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("revoked: removed from the target and verified gone"),
        "{}",
        stdout(&output)
    );

    // Findings: the open list points at the others.
    let output = as_user(&writ, &alice, &["findings"]);
    assert!(
        stdout(&output).contains("--state accepted"),
        "{}",
        stdout(&output)
    );

    // An approved request whose grant the target refuses says so at once.
    let memberships = writ.path("state/memberships.txt");
    std::fs::remove_file(&memberships).expect("memberships file");
    std::fs::create_dir(&memberships).expect("a folder where the file was");
    let output = as_user(
        &writ,
        &alice,
        &["request", "files/reports_read", "-j", "report"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains("pending: not yet applied on the target")
            && text.contains("the target refused:"),
        "{text}"
    );

    // A reader that goes away ends the command quietly.
    writ.stop_and_wait();
    let mut child = writ
        .command(&["audit", "export"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn export");
    drop(child.stdout.take());
    let mut said = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut said)
        .expect("read");
    let status = child.wait().expect("wait");
    assert!(
        status.success() && !said.contains("panicked"),
        "{status}: {said}"
    );

    // The server's own log is plain text into a file: no colour codes.
    assert!(!writ.log().contains('\u{1b}'), "{}", writ.log());
}

#[tokio::test]
async fn writ_check_finds_missing_roles_accounts_and_privileges_on_postgres() {
    let mut roles = TestRoles::new().await;
    let granted = roles.create("granted").await;
    let account = roles.create("alice").await;
    let login = roles.create("writ").await;
    let missing_role = format!("{}_missing", roles.prefix);
    let missing_account = format!("{}_nobody", roles.prefix);
    let admin = sqlx::PgPool::connect(PG_URL).await.expect("PostgreSQL");
    let run = |sql: String| {
        let admin = admin.clone();
        async move {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&admin)
                .await
                .expect("admin SQL");
        }
    };
    run(format!(
        "ALTER ROLE \"{login}\" LOGIN NOSUPERUSER NOCREATEROLE"
    ))
    .await;
    let writ = Writ::new(
        &format!(
            r#"
[storage]
url = "sqlite://writ.db"

[[target]]
name = "pg"
kind = "postgres"
url = "postgres://{login}@127.0.0.1:5432/test"

[[entitlement]]
id = "pg/granted"
target = "pg"
role = "{granted}"
sensitivity = "low"
max_duration = "1h"

[[entitlement]]
id = "pg/missing"
target = "pg"
role = "{missing_role}"
sensitivity = "low"
max_duration = "1h"

[[user]]
name = "alice"
accounts = {{ pg = "{account}" }}

[[user]]
name = "bob"
accounts = {{ pg = "{missing_account}" }}
"#
        ),
        &[(
            "p.cedar",
            "permit (principal, action == Action::\"request\", resource);",
        )],
    );

    let output = writ.run(&["check"]);
    let text = stdout(&output);
    assert_eq!(code(&output), EXIT_FAILED, "{text}\n{}", stderr(&output));
    let line = |subject: &str| {
        text.lines()
            .find(|l| l.contains(&format!(" {subject}:")))
            .unwrap_or_else(|| panic!("{subject} in {text}"))
            .to_string()
    };
    assert!(
        line(&format!("role {missing_role}")).contains("PROBLEM")
            && line(&format!("role {missing_role}")).contains("does not exist"),
        "{text}"
    );
    assert!(
        line(&format!("role {granted}")).contains("may not grant it"),
        "{text}"
    );
    assert!(
        line(&format!("account {missing_account}")).contains("PROBLEM"),
        "{text}"
    );
    assert!(line(&format!("account {account}")).contains("ok"), "{text}");
    assert!(
        line("privilege pg_signal_backend").contains("PROBLEM"),
        "{text}"
    );

    // Given what it needs, only the missing role and account remain.
    run(format!(
        "GRANT \"{granted}\" TO \"{login}\" WITH ADMIN OPTION"
    ))
    .await;
    run(format!("GRANT pg_signal_backend TO \"{login}\"")).await;
    let output = writ.run(&["check"]);
    let text = stdout(&output);
    // (The test kit's admin has no account on the target either; it never asks for access.)
    let problems: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("PROBLEM") && !l.contains(support::ADMIN))
        .collect();
    assert_eq!(problems.len(), 2, "{text}");
    assert!(
        problems
            .iter()
            .all(|l| l.contains(&missing_role) || l.contains(&missing_account)),
        "{text}"
    );

    run(format!("REVOKE pg_signal_backend FROM \"{login}\"")).await;
    roles.cleanup().await;
}

/// A database a newer writ has upgraded is refused by every command that opens it,
/// with both versions named and nothing written.
#[tokio::test]
async fn a_database_upgraded_by_a_newer_writ_is_refused() {
    let writ = quickstart();
    let made = writ.run(&["audit", "verify"]);
    assert!(made.status.success(), "{}", stderr(&made));
    let newer = writ_store::SCHEMA_VERSION + 1;
    let database = rusqlite::Connection::open(writ.path("state/writ.db")).expect("open");
    database
        .execute("INSERT INTO writ_schema (version) VALUES (?1)", [newer])
        .expect("newer version");
    drop(database);
    let refused = writ.run(&["audit", "verify"]);
    assert_eq!(code(&refused), EXIT_FAILED, "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains(&format!("schema is version {newer}")),
        "{}",
        stderr(&refused)
    );
    // `writ serve` refuses it too: it exits by itself, not serving.
    let mut serve = writ
        .command(&["serve"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn writ serve");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(status) = serve.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = serve.kill();
            panic!("writ serve started on a newer schema");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut log = String::new();
    serve
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut log)
        .expect("stderr");
    assert!(!status.success(), "{log}");
    assert!(log.contains(&format!("schema is version {newer}")), "{log}");
}

/// A SQLite database has one node: a second `writ serve` on the same file exits at once,
/// saying why and where several nodes go, before it listens or changes anything.
#[tokio::test]
async fn a_second_serve_on_one_sqlite_database_is_refused() {
    let mut writ = quickstart();
    writ.start().await;
    let second = writ
        .command(&["serve"])
        .env("WRIT_LOG_FORMAT", "text")
        .output()
        .expect("second serve");
    assert_eq!(code(&second), EXIT_FAILED, "{}", stderr(&second));
    let message = stderr(&second);
    assert!(
        message.contains("another `writ serve` is using"),
        "{message}"
    );
    assert!(message.contains("PostgreSQL"), "{message}");
    // The first one serves on, unharmed.
    let (status, _) = writ.get("/v1/grants", &writ.admin_token()).await;
    assert_eq!(status, 200);
    writ.stop();
}

/// `writ policy lint` names each finding with its policy and rule and exits 1;
/// `writ policy check` prints the same as warnings and still passes a valid set.
#[test]
fn policy_lint_names_its_findings_and_check_warns() {
    let config = format!(
        "{}\n[[entitlement]]\nid = \"t/root\"\ntarget = \"t\"\nrole = \"root\"\nsensitivity = \"critical\"\nmax_duration = \"1h\"\n",
        support::NOOP_CONFIG
    );
    let policies = r#"
@id("anyone-root")
permit (principal, action == Action::"request", resource == Entitlement::"t/root");
"#;
    let writ = Writ::new(&config, &[("p.cedar", policies)]);
    let lint = writ.run(&["policy", "lint"]);
    assert_eq!(code(&lint), 1, "{}", stderr(&lint));
    let out = stdout(&lint);
    assert!(out.contains("anyone-root: auto_high_sensitivity"), "{out}");
    assert!(out.contains("t/root (e.g. for alice)"), "{out}");
    assert!(out.contains("anyone-root: no_max_duration"), "{out}");
    let check = writ.run(&["policy", "check"]);
    assert_eq!(code(&check), 0, "{}", stderr(&check));
    assert!(
        stdout(&check).contains("warning: anyone-root: auto_high_sensitivity"),
        "{}",
        stdout(&check)
    );
    // Meant: said so on the policy.
    std::fs::write(
        writ.path("policies/p.cedar"),
        policies.replace(
            "@id(\"anyone-root\")",
            "@id(\"anyone-root\") @lint_allow(\"auto_high_sensitivity, no_max_duration\")",
        ),
    )
    .expect("write");
    let lint = writ.run(&["policy", "lint"]);
    assert_eq!(code(&lint), 0, "{}", stdout(&lint));
}
