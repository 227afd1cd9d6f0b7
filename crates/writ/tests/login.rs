//! `writ login` against a real OpenID provider (panva's `oidc-provider`), driven end to
//! end: a person signs in in a browser (code + PKCE, back to the CLI's loopback
//! listener) and on another device (device authorization grant); the CLI keeps the
//! tokens in a file only its owner can read, renews them when they expire, and forgets
//! them on `writ logout`.

mod support;

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use support::browser::Browser;
use support::oidc_provider::{AUDIENCE, Provider, provider_dir};
use support::{Writ, stderr, stdout};
use tokio::io::{AsyncBufReadExt, BufReader};

/// A running writ that offers sign-in through a running provider, and where this
/// test's CLI keeps its sign-ins (nothing there yet).
struct Signed {
    writ: Writ,
    credentials: std::path::PathBuf,
    _provider: Provider,
    _folder: tempfile::TempDir,
}

async fn signed_out() -> Option<Signed> {
    let provider = Provider::start(provider_dir()?, "k1").await;
    let mut writ = writ_with_sign_in(&provider);
    writ.start().await;
    let folder = tempfile::tempdir().expect("tempdir");
    Some(Signed {
        writ,
        // In a folder that does not exist yet: the CLI makes it (0700).
        credentials: folder.path().join("writ/credentials.json"),
        _provider: provider,
        _folder: folder,
    })
}

fn writ_with_sign_in(provider: &Provider) -> Writ {
    Writ::new(
        &format!(
            r#"
[[oidc]]
issuer = "{}"
audience = "{AUDIENCE}"
cli_client_id = "writ-cli"

[[target]]
name = "t"
kind = "noop"

[[user]]
name = "alice"
"#,
            provider.issuer()
        ),
        &[],
    )
}

/// Runs `writ login ARGS` with its sign-ins kept in `credentials`; waits for the line
/// that starts with `prefix` on its stderr and opens the address on it in a browser
/// that signs in as `login_as`;
/// then the command's (exit code, stdout, stderr).
async fn login(
    writ: &Writ,
    credentials: &std::path::Path,
    args: &[&str],
    prefix: &str,
    login_as: &str,
) -> (Option<i32>, String, String) {
    let mut all = vec!["login"];
    all.extend_from_slice(args);
    let mut command = tokio::process::Command::from(writ.command(&all));
    let mut child = command
        .env("WRIT_CREDENTIALS", credentials)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("writ login");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut seen = String::new();
    let address = loop {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("writ login printed where to sign in")
            .expect("stderr")
            .unwrap_or_else(|| panic!("writ login ended first: {seen}"));
        seen.push_str(&line);
        seen.push('\n');
        if line.starts_with(prefix)
            && let Some(at) = line.find("http")
        {
            break line[at..]
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
        }
    };
    let (_, page) = Browser::new().sign_in(&address, login_as).await;
    let mut rest = String::new();
    while let Ok(Some(line)) = lines.next_line().await {
        rest.push_str(&line);
        rest.push('\n');
    }
    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("writ login finished")
        .expect("writ login");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).to_string(),
        format!("{seen}{rest}\n(the browser's last page: {page})"),
    )
}

fn whoami(writ: &Writ, credentials: &std::path::Path) -> std::process::Output {
    writ.command(&["whoami"])
        .env("WRIT_CREDENTIALS", credentials)
        .output()
        .expect("writ whoami")
}

fn stored(credentials: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(credentials).expect("credentials")).expect("JSON")
}

#[tokio::test]
async fn a_person_signs_in_in_a_browser_and_the_cli_keeps_and_renews_the_sign_in() {
    // Bound by name: the provider and the folder live as long as the test.
    let Some(Signed {
        writ,
        credentials,
        _provider,
        _folder,
    }) = signed_out().await
    else {
        return;
    };

    let (code, out, err) = login(
        &writ,
        &credentials,
        &["--no-browser"],
        "http://127.0.0.1",
        "alice",
    )
    .await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.starts_with("alice (user)"), "{out}{err}");

    // Kept where only its owner can read it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| {
            std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
        };
        assert_eq!(mode(&credentials), 0o600);
        assert_eq!(mode(credentials.parent().expect("folder")), 0o700);
    }
    let output = whoami(&writ, &credentials);
    assert!(
        stdout(&output).starts_with("alice (user)"),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );

    // An access token about to expire is renewed with the refresh token, and kept.
    let server = writ.base();
    let mut file = stored(&credentials);
    let before = file["servers"][&server]["access_token"].clone();
    assert!(
        file["servers"][&server]["refresh_token"].is_string(),
        "{file}"
    );
    file["servers"][&server]["expires_at"] = 0.into();
    std::fs::write(&credentials, file.to_string()).expect("write");
    let output = whoami(&writ, &credentials);
    assert!(
        stdout(&output).starts_with("alice (user)"),
        "{}",
        stderr(&output)
    );
    let after = stored(&credentials)["servers"][&server]["access_token"].clone();
    assert_ne!(before, after, "the access token was not renewed");

    // A sign-in file others can read is refused, not used.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&credentials, std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
        let output = whoami(&writ, &credentials);
        assert!(!output.status.success());
        assert!(stderr(&output).contains("chmod 600"), "{}", stderr(&output));
        std::fs::set_permissions(&credentials, std::fs::Permissions::from_mode(0o600))
            .expect("chmod");
    }

    // Signed out: the sign-in is gone and the CLI says how to sign in.
    let output = writ
        .command(&["logout"])
        .env("WRIT_CREDENTIALS", &credentials)
        .output()
        .expect("logout");
    assert!(output.status.success(), "{}", stderr(&output));
    let output = whoami(&writ, &credentials);
    assert_eq!(output.status.code(), Some(5), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("writ login"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test]
async fn a_person_signs_in_on_another_device_with_a_code() {
    // Bound by name: the provider and the folder live as long as the test.
    let Some(Signed {
        writ,
        credentials,
        _provider,
        _folder,
    }) = signed_out().await
    else {
        return;
    };

    let (code, out, err) = login(
        &writ,
        &credentials,
        &["--device"],
        "To sign in, open ",
        "alice",
    )
    .await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.starts_with("alice (user)"), "{out}{err}");
    let output = whoami(&writ, &credentials);
    assert!(
        stdout(&output).starts_with("alice (user)"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test]
async fn signing_in_as_someone_writ_does_not_know_keeps_nothing() {
    // Bound by name: the provider and the folder live as long as the test.
    let Some(Signed {
        writ,
        credentials,
        _provider,
        _folder,
    }) = signed_out().await
    else {
        return;
    };

    let (code, out, err) = login(
        &writ,
        &credentials,
        &["--no-browser"],
        "http://127.0.0.1",
        "mallory",
    )
    .await;
    assert_eq!(code, Some(5), "{out}{err}");
    assert!(err.contains("token_identity_unknown"), "{err}");
    assert!(!credentials.exists(), "a refused sign-in was kept");
}
