//! The layering ARCHITECTURE.md states, checked so it cannot silently rot: which writ
//! crate may depend on which, which crates may use Cedar, SQL, HTTP clients and servers,
//! that writ-domain does no I/O and never reads the clock, and that every dependency is
//! declared once, in `[workspace.dependencies]`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Each workspace crate's name and its manifest.
fn manifests() -> BTreeMap<String, toml::Table> {
    let mut manifests = BTreeMap::new();
    for entry in std::fs::read_dir(root().join("crates")).expect("crates/") {
        let path = entry.expect("entry").path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let manifest: toml::Table = text.parse().expect("a manifest");
        let name = manifest["package"]["name"]
            .as_str()
            .expect("package.name")
            .to_string();
        manifests.insert(name, manifest);
    }
    manifests
}

fn dependencies(manifest: &toml::Table, table: &str) -> BTreeSet<String> {
    manifest
        .get(table)
        .and_then(toml::Value::as_table)
        .map(|deps| deps.keys().cloned().collect())
        .unwrap_or_default()
}

/// The writ crates each crate may depend on (ARCHITECTURE.md's codemap, bottom up).
const LAYERS: &[(&str, &[&str])] = &[
    ("writ-domain", &[]),
    // Tests only (a dev-dependency): below everything, depending on nothing of writ.
    ("writ-testkit", &[]),
    ("writ-config", &["writ-domain"]),
    ("writ-policy", &["writ-domain", "writ-config"]),
    ("writ-store", &["writ-domain"]),
    ("writ-connectors", &["writ-domain", "writ-config"]),
    ("writ-oidc", &["writ-config"]),
    ("writ-itsm", &["writ-domain", "writ-config", "writ-oidc"]),
    ("writ-export", &["writ-domain"]),
    // SCIM 2.0 as a protocol over JSON: no I/O, nothing of writ.
    ("writ-scim", &[]),
    (
        "writ-engine",
        &[
            "writ-domain",
            "writ-config",
            "writ-policy",
            "writ-store",
            "writ-connectors",
            "writ-itsm",
            "writ-export",
            "writ-oidc",
        ],
    ),
    (
        "writ-api",
        &[
            "writ-domain",
            "writ-config",
            "writ-engine",
            "writ-store",
            "writ-scim",
        ],
    ),
    (
        "writ",
        &[
            "writ-domain",
            "writ-config",
            "writ-policy",
            "writ-store",
            "writ-connectors",
            "writ-itsm",
            "writ-export",
            "writ-oidc",
            "writ-engine",
            "writ-api",
        ],
    ),
];

/// External crates only some writ crates may use (normal dependencies), and why.
const CAPABILITIES: &[(&str, &[&str], &str)] = &[
    (
        "cedar-policy",
        &["writ-policy"],
        "only writ-policy imports Cedar",
    ),
    (
        "sqlx",
        &["writ-store", "writ-connectors", "writ-testkit"],
        "only writ-store touches writ's database (connectors: the targets' own; the test kit: throwaway databases)",
    ),
    (
        "rusqlite",
        &["writ-store"],
        "only writ-store touches writ's database",
    ),
    (
        "reqwest",
        &["writ-itsm", "writ-oidc", "writ-connectors", "writ"],
        "only writ-itsm talks to ticketing systems, writ-oidc to identity providers and writ-connectors to targets (SCIM applications; the CLI talks to writ's own API)",
    ),
    (
        "axum",
        &["writ-api", "writ"],
        "only writ-api serves HTTP (the binary runs its router)",
    ),
];

#[test]
fn writ_crates_depend_only_downward() {
    let manifests = manifests();
    let layers: BTreeMap<&str, &[&str]> = LAYERS.iter().copied().collect();
    assert_eq!(
        manifests
            .keys()
            .map(String::as_str)
            .collect::<BTreeSet<_>>(),
        layers.keys().copied().collect::<BTreeSet<_>>(),
        "every crate has its place in LAYERS (and ARCHITECTURE.md)"
    );
    let mut wrong = Vec::new();
    for (name, manifest) in &manifests {
        let allowed = layers[name.as_str()];
        for dependency in dependencies(manifest, "dependencies") {
            if dependency.starts_with("writ") && !allowed.contains(&dependency.as_str()) {
                wrong.push(format!("{name} depends on {dependency}"));
            }
        }
    }
    assert!(wrong.is_empty(), "layering broken: {wrong:?}");
}

#[test]
fn capabilities_stay_in_their_crates() {
    let mut wrong = Vec::new();
    for (name, manifest) in &manifests() {
        for (capability, allowed, why) in CAPABILITIES {
            if dependencies(manifest, "dependencies").contains(*capability)
                && !allowed.contains(&name.as_str())
            {
                wrong.push(format!("{name} uses {capability}: {why}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:?}");
}

/// OpenAPI schemas are the API crate's business: any other crate may derive them only
/// behind an `openapi` feature, and never uses utoipa without it.
#[test]
fn openapi_schemas_are_optional_outside_the_api() {
    let mut wrong = Vec::new();
    for (name, manifest) in &manifests() {
        if name == "writ-api" {
            continue;
        }
        let Some(utoipa) = manifest.get("dependencies").and_then(|d| d.get("utoipa")) else {
            continue;
        };
        let optional = utoipa.get("optional").and_then(toml::Value::as_bool) == Some(true);
        if !optional {
            wrong.push(format!("{name}: utoipa is not optional"));
        }
        let crate_dir = name.strip_prefix("writ-").unwrap_or(name);
        for file in sources(&root().join("crates").join(crate_dir).join("src")) {
            let text = std::fs::read_to_string(&file).expect("read");
            let mut previous = "";
            for (number, line) in text.lines().enumerate() {
                let code = line.trim();
                // Derives and field attributes go through `cfg_attr`; impls follow `cfg`.
                let ungated = (code.starts_with("#[derive(") && code.contains("ToSchema"))
                    || code.starts_with("#[schema(")
                    || (code.starts_with("impl utoipa::")
                        && previous != "#[cfg(feature = \"openapi\")]");
                if ungated {
                    wrong.push(format!("{}:{}: {code}", file.display(), number + 1));
                }
                previous = code;
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }
    found
}

#[test]
fn the_domain_does_no_io_and_never_reads_the_clock() {
    let manifest = &manifests()["writ-domain"];
    for io in ["tokio", "sqlx", "reqwest", "rusqlite", "axum"] {
        assert!(
            !dependencies(manifest, "dependencies").contains(io),
            "writ-domain depends on {io}"
        );
    }
    let forbidden = [
        "std::fs",
        "std::net",
        "std::process",
        "SystemTime",
        "Instant::now",
        "now_utc(",
        "now_v7(",
        "OffsetDateTime::now",
    ];
    let mut found = Vec::new();
    for file in sources(&root().join("crates/domain/src")) {
        let text = std::fs::read_to_string(&file).expect("source");
        for word in forbidden {
            if text.contains(word) {
                found.push(format!("{}: {word}", file.display()));
            }
        }
    }
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn every_dependency_is_declared_once_in_the_workspace() {
    let mut own = Vec::new();
    for (name, manifest) in &manifests() {
        for table in ["dependencies", "dev-dependencies", "build-dependencies"] {
            let Some(deps) = manifest.get(table).and_then(toml::Value::as_table) else {
                continue;
            };
            for (dependency, spec) in deps {
                let inherited = spec
                    .as_table()
                    .and_then(|spec| spec.get("workspace"))
                    .and_then(toml::Value::as_bool)
                    == Some(true);
                if !inherited {
                    own.push(format!("{name} [{table}] {dependency}"));
                }
            }
        }
    }
    assert!(
        own.is_empty(),
        "declare these in [workspace.dependencies] and inherit them: {own:?}"
    );
}
