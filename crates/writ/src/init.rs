//! `writ init DIR`: the quickstart's files, ready to edit.

use crate::stdout::outln;
use std::path::Path;

use crate::Failure;

const FILES: &[(&str, &str, bool)] = &[
    (
        "writ.toml",
        include_str!("../../../examples/quickstart/writ.toml"),
        false,
    ),
    (
        "policies/request.cedar",
        include_str!("../../../examples/quickstart/policies/request.cedar"),
        false,
    ),
    (
        "policies/approve.cedar",
        include_str!("../../../examples/quickstart/policies/approve.cedar"),
        false,
    ),
    (
        "memberships.sh",
        include_str!("../../../examples/quickstart/memberships.sh"),
        true,
    ),
];

pub fn run(dir: &Path) -> Result<(), Failure> {
    // Refuse before writing anything, so a half-written folder never happens.
    for (name, _, _) in FILES {
        let path = dir.join(name);
        if path.exists() {
            return Err(Failure::failed(format!(
                "{} already exists; writ init never overwrites",
                path.display()
            )));
        }
    }
    for (name, text, executable) in FILES {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Failure::failed(format!("{}: {e}", parent.display())))?;
        }
        std::fs::write(&path, text)
            .map_err(|e| Failure::failed(format!("{}: {e}", path.display())))?;
        #[cfg(unix)]
        if *executable {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| Failure::failed(format!("{}: {e}", path.display())))?;
        }
        outln!("wrote {}", path.display());
    }
    let config = dir.join("writ.toml");
    outln!(
        "\nnext:\n  writ policy check --config {0}\n  writ serve --config {0}",
        config.display()
    );
    Ok(())
}
