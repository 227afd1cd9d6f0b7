//! The `command` connector running the Python example in examples/command-connector,
//! behind a wrapper that can make it fail or hang.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use writ_connectors::{CommandConnector, Connector};

use crate::proxy::Reach;
use crate::suite::Target;

pub struct Command {
    dir: tempfile::TempDir,
    connector: CommandConnector,
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/command-connector/groups.py")
}

impl Command {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let wrapper = dir.path().join("connector.sh");
        // `down`: fails at once; `stalled`: hangs until the connector's timeout kills it.
        let script = format!(
            "#!/bin/sh\ncase \"$(cat \"$(dirname \"$0\")/reach\" 2>/dev/null)\" in\n  down) echo 'target down' >&2; exit 1 ;;\n  stalled) sleep 60 ;;\nesac\nexec python3 {} \"$@\"\n",
            example().display()
        );
        std::fs::write(&wrapper, script).expect("write wrapper");
        let mut permissions = std::fs::metadata(&wrapper).expect("metadata").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
        std::fs::set_permissions(&wrapper, permissions).expect("chmod");
        let state = dir.path().join("groups.json").display().to_string();
        let connector = CommandConnector::new("groups", wrapper, vec!["--state".into(), state], 2);
        Self { dir, connector }
    }
}

#[async_trait]
impl Target for Command {
    fn kind(&self) -> &'static str {
        "command"
    }

    fn connector(&self) -> &dyn Connector {
        &self.connector
    }

    /// The file holds any name a process can be given; NUL cannot be passed.
    async fn create_role(&self, name: &str) -> bool {
        !name.contains('\0')
    }

    async fn create_account(&self, name: &str) -> bool {
        !name.contains('\0')
    }

    async fn grant_out_of_band(&self, role: &str, account: &str) {
        let path = self.dir.path().join("groups.json");
        let mut groups: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|_| b"{}".to_vec()))
                .expect("state file");
        let members = groups
            .entry(role.to_string())
            .or_insert_with(|| serde_json::json!([]));
        members
            .as_array_mut()
            .expect("members")
            .push(serde_json::Value::String(account.to_string()));
        std::fs::write(&path, serde_json::to_vec(&groups).expect("json")).expect("write state");
    }

    async fn set_reach(&self, reach: Reach) {
        let mode = match reach {
            Reach::Up => "up",
            Reach::Down => "down",
            Reach::Stalled => "stalled",
        };
        std::fs::write(self.dir.path().join("reach"), mode).expect("write reach");
    }
}
