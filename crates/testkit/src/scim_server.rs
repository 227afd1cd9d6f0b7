//! A real SCIM 2.0 server for connector tests: `scim2-server` (PyPI, pinned and
//! installed by `.ci/run`), in memory, on a free port, with a bearer token.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const TOKEN: &str = "scim-test-token";

pub struct ScimServer {
    child: Child,
    port: u16,
    log: tempfile::NamedTempFile,
}

/// `$WRIT_SCIM_SERVER`, else the copy `.ci/run` installs.
fn program() -> PathBuf {
    std::env::var_os("WRIT_SCIM_SERVER").map_or_else(
        || {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/writ-scim-venv/bin/scim2-server")
        },
        PathBuf::from,
    )
}

impl ScimServer {
    pub fn start() -> Self {
        let program = program();
        assert!(
            program.exists(),
            "{} is missing: pip install scim2-server==0.8.3 (.ci/run does), or set WRIT_SCIM_SERVER",
            program.display()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let log = tempfile::NamedTempFile::new().expect("log file");
        let child = Command::new(&program)
            .args(["--hostname", "127.0.0.1", "--port", &port.to_string()])
            .args(["--bearer-token", TOKEN])
            .stdout(log.reopen().expect("log"))
            .stderr(log.reopen().expect("log"))
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
        let server = Self { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "scim2-server did not start: {}",
                std::fs::read_to_string(server.log.path()).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The SCIM base URL, `http://127.0.0.1:<port>/v2`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v2", self.port)
    }
}

impl Drop for ScimServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
