//! Reading a policy folder: parse every `*.cedar` file, name each policy, read writ's
//! annotations, validate against the schema in strict mode, and hash the set.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use cedar_policy::{Effect, PolicyId, PolicySet, Schema, ValidationMode, Validator};
use miette::Diagnostic;
use sha2::{Digest, Sha256};
use writ_config::{Config, Identity};

use crate::entities::EntityCatalog;
use crate::slice::SlicedPolicySet;

/// The Cedar schema writ ships with.
pub const SCHEMA_TEXT: &str = include_str!("writ.cedarschema");

/// One problem in a policy file, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDiagnostic {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for PolicyDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyLoadError {
    #[error("{dir}: cannot read the policy folder: {source}")]
    Folder {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<PolicyDiagnostic>),
    #[error("writ's built-in schema does not parse: {0}")]
    Schema(String),
}

/// What writ reads from a policy's annotations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PolicyMeta {
    /// A `forbid`: one that cannot be evaluated denies (fail closed).
    pub forbid: bool,
    pub approvals: u32,
    pub max_duration_seconds: Option<i64>,
    pub reason: Option<String>,
    /// `@permanent("true")`: the permit allows access without an end.
    pub permanent: bool,
}

/// The loaded, validated policy set with the entities of the configuration.
#[derive(Debug)]
pub struct PolicyEngine {
    /// Shared with the engines made for other identities (`with_identities`).
    pub(crate) set: Arc<SlicedPolicySet>,
    pub(crate) meta: Arc<HashMap<PolicyId, PolicyMeta>>,
    pub(crate) catalog: EntityCatalog,
    hash: String,
    files: usize,
}

struct SourceFile {
    path: PathBuf,
    text: String,
}

impl SourceFile {
    fn locate(&self, offset: usize, message: String) -> PolicyDiagnostic {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before
            .rfind('\n')
            .map_or(before.len(), |newline| before.len() - newline - 1)
            + 1;
        PolicyDiagnostic {
            file: self.path.clone(),
            line,
            column,
            message,
        }
    }

    fn whole_file(&self, message: String) -> PolicyDiagnostic {
        PolicyDiagnostic {
            file: self.path.clone(),
            line: 1,
            column: 1,
            message,
        }
    }
}

fn first_offset(diagnostic: &dyn Diagnostic) -> Option<usize> {
    diagnostic
        .labels()
        .and_then(|mut labels| labels.next())
        .map(|label| label.offset())
}

fn message_of(diagnostic: &(impl Diagnostic + fmt::Display + ?Sized)) -> String {
    match diagnostic.help() {
        Some(help) => format!("{diagnostic} ({help})"),
        None => diagnostic.to_string(),
    }
}

fn read_sources(dir: &Path) -> Result<Vec<SourceFile>, PolicyLoadError> {
    let folder_error = |source| PolicyLoadError::Folder {
        dir: dir.to_path_buf(),
        source,
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(folder_error)?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "cedar") && path.is_file())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            std::fs::read_to_string(&path)
                .map(|text| SourceFile { path, text })
                .map_err(folder_error)
        })
        .collect()
}

fn parse_meta(policy: &cedar_policy::Policy) -> Result<PolicyMeta, String> {
    let approvals = match policy.annotation("approvals") {
        Some(text) => text
            .trim()
            .parse::<u32>()
            .map_err(|_| format!("@approvals(\"{text}\") must be a whole number such as \"1\""))?,
        None => 0,
    };
    let max_duration_seconds = policy
        .annotation("max_duration")
        .map(|text| {
            writ_domain::parse_duration_seconds(text)
                .map_err(|problem| format!("@max_duration(\"{text}\"): {problem}"))
        })
        .transpose()?;
    let reason = policy.annotation("reason").map(str::to_string);
    let permanent = match policy.annotation("permanent").map(str::trim) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(format!(
                "@permanent(\"{other}\") must be \"true\" (this permit allows access without an end) or \"false\""
            ));
        }
    };
    if policy.effect() == Effect::Forbid
        && (approvals > 0 || max_duration_seconds.is_some() || permanent)
    {
        return Err(
            "@approvals, @max_duration and @permanent belong on permit policies, not forbid"
                .to_string(),
        );
    }
    if permanent && max_duration_seconds.is_some() {
        return Err(
            "@permanent and @max_duration contradict each other: a permit allows access without an end, or caps it".to_string(),
        );
    }
    Ok(PolicyMeta {
        forbid: policy.effect() == Effect::Forbid,
        approvals,
        max_duration_seconds,
        reason,
        permanent,
    })
}

impl PolicyEngine {
    /// Loads every `*.cedar` file in `dir`, for the identities and entitlements in `config`.
    pub fn load(dir: &Path, config: &Config) -> Result<Self, PolicyLoadError> {
        Self::from_files(read_sources(dir)?, config)
    }

    /// Loads policies given as (file name, text), as if read from a folder: for tests
    /// and fuzzing.
    pub fn from_sources(
        files: &[(String, String)],
        config: &Config,
    ) -> Result<Self, PolicyLoadError> {
        let mut sources: Vec<SourceFile> = files
            .iter()
            .map(|(name, text)| SourceFile {
                path: PathBuf::from(name),
                text: text.clone(),
            })
            .collect();
        sources.sort_by(|a, b| a.path.cmp(&b.path));
        Self::from_files(sources, config)
    }

    fn from_files(sources: Vec<SourceFile>, config: &Config) -> Result<Self, PolicyLoadError> {
        let (schema_text, _warnings) = Schema::from_cedarschema_str(SCHEMA_TEXT)
            .map_err(|e| PolicyLoadError::Schema(e.to_string()))?;
        let mut diagnostics = Vec::new();
        let mut set = PolicySet::new();
        let mut meta = HashMap::new();
        let mut origin: HashMap<PolicyId, usize> = HashMap::new();
        let mut hasher = Sha256::new();

        for (file_index, source) in sources.iter().enumerate() {
            let name = source
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            hasher.update((name.len() as u64).to_be_bytes());
            hasher.update(name.as_bytes());
            hasher.update((source.text.len() as u64).to_be_bytes());
            hasher.update(source.text.as_bytes());

            let parsed = match PolicySet::from_str(&source.text) {
                Ok(parsed) => parsed,
                Err(errors) => {
                    for error in errors.iter() {
                        let offset = first_offset(error).unwrap_or(0);
                        diagnostics.push(source.locate(offset, message_of(error)));
                    }
                    continue;
                }
            };
            if parsed.templates().next().is_some() {
                diagnostics.push(source.whole_file(
                    "templates (?principal / ?resource) are not supported in writ policies".into(),
                ));
                continue;
            }
            let stem = source
                .path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            // A parsed policy displays as its own source text; finding it in order gives its line.
            let mut cursor = 0;
            // Cedar names parsed policies policy0, policy1, ... in file order.
            let mut in_file_order: Vec<&cedar_policy::Policy> = parsed.policies().collect();
            in_file_order.sort_by_key(|p| {
                p.id()
                    .to_string()
                    .trim_start_matches("policy")
                    .parse::<usize>()
                    .unwrap_or(usize::MAX)
            });
            for (index, policy) in in_file_order.into_iter().enumerate() {
                let text = policy.to_string();
                let offset = source.text[cursor..]
                    .find(text.as_str())
                    .map_or(cursor, |found| cursor + found);
                cursor = offset + text.len().min(source.text.len() - offset);
                let id = match policy.annotation("id") {
                    Some(id) => PolicyId::new(id),
                    None => PolicyId::new(format!("{stem}.{index}")),
                };
                if let Some(&other) = origin.get(&id) {
                    let other = sources[other].path.display();
                    diagnostics.push(source.locate(
                        offset,
                        format!("policy id \"{id}\" is already used in {other}"),
                    ));
                    continue;
                }
                match parse_meta(policy) {
                    Ok(policy_meta) => {
                        meta.insert(id.clone(), policy_meta);
                    }
                    Err(problem) => diagnostics.push(source.locate(offset, problem)),
                }
                origin.insert(id.clone(), file_index);
                if let Err(error) = set.add(policy.new_id(id)) {
                    diagnostics.push(source.locate(offset, error.to_string()));
                }
            }
        }

        if diagnostics.is_empty() {
            let validation = Validator::new(schema_text).validate(&set, ValidationMode::Strict);
            for error in validation.validation_errors() {
                let Some(&file_index) = origin.get(error.policy_id()) else {
                    continue;
                };
                let offset = first_offset(error).unwrap_or(0);
                diagnostics.push(sources[file_index].locate(
                    offset,
                    format!("policy {}: {}", error.policy_id(), message_of(error)),
                ));
            }
        }
        if !diagnostics.is_empty() {
            return Err(PolicyLoadError::Invalid(diagnostics));
        }

        let catalog =
            EntityCatalog::build(config, config.identities.values()).map_err(|problem| {
                PolicyLoadError::Invalid(vec![PolicyDiagnostic {
                    file: config.path.clone(),
                    line: 1,
                    column: 1,
                    message: format!("cannot build Cedar entities: {problem}"),
                }])
            })?;
        Ok(Self {
            set: Arc::new(SlicedPolicySet::new(set)),
            meta: Arc::new(meta),
            catalog,
            hash: hex::encode(hasher.finalize()),
            files: sources.len(),
        })
    }

    /// The same policies, deciding for `identities` (the configured ones and those an
    /// identity provider pushed) and the configured entitlements. The policy set is
    /// shared, not copied.
    pub fn with_identities<'a>(
        &self,
        config: &Config,
        identities: impl IntoIterator<Item = &'a Identity>,
    ) -> Result<Self, String> {
        Ok(Self {
            set: self.set.clone(),
            meta: self.meta.clone(),
            catalog: EntityCatalog::build(config, identities)?,
            hash: self.hash.clone(),
            files: self.files,
        })
    }

    /// SHA-256 over the names and contents of the policy files, in name order.
    pub fn policy_hash(&self) -> &str {
        &self.hash
    }

    pub fn policy_count(&self) -> usize {
        self.set.len()
    }

    pub fn file_count(&self) -> usize {
        self.files
    }

    /// Policy ids and their effect, for `writ policy check`.
    pub fn policy_ids(&self) -> BTreeMap<String, &'static str> {
        self.set
            .whole()
            .policies()
            .map(|p| {
                (
                    p.id().to_string(),
                    if p.effect() == Effect::Permit {
                        "permit"
                    } else {
                        "forbid"
                    },
                )
            })
            .collect()
    }
}
