//! Batch scoring ([`run`]: a folder of recordings scored in parallel, resumably, into result
//! files and the store) and its helpers: which files a batch holds ([`collect_inputs`]), what
//! each result is named ([`ResultNames`]), whether a stored result is still current
//! ([`current_result`]), and crash-safe writes ([`write_atomic`]: a temp file in the same
//! folder, synced, then renamed, so a killed process leaves either the old file or the new
//! one, never half of one).

mod run;

pub use run::{
    BatchOptions, BatchOutcome, BatchRow, ExtraFile, Progress, ResultSummary, RowResult,
    agent_and_team, run, stored_recording,
};

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::report::{InputIdentity, Versions};
use super::store::{ReportDigest, StoreError};

/// What can go wrong finding inputs or writing results.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    #[error("{path}: no such file or folder")]
    Missing { path: String },
    #[error("cannot list {path}: {source}")]
    List {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {why}")]
    Write { path: String, why: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Explains a write error in words a user acts on.
pub fn explain_io(error: &std::io::Error) -> String {
    match error.raw_os_error() {
        Some(28) => format!("the disk is full ({error})"),
        Some(30) => format!("the file system is read-only ({error})"),
        Some(13) | Some(1) => format!("permission denied: the folder is not writable ({error})"),
        _ => error.to_string(),
    }
}

/// Whether a path is a recording a batch scores (by extension).
pub fn is_recording(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("wav"))
}

/// The recordings named by `args`: files as given, folders' `.wav` files (recursively, sorted).
pub fn collect_inputs(args: &[PathBuf]) -> Result<Vec<PathBuf>, BatchError> {
    let mut out = Vec::new();
    for arg in args {
        if arg.is_dir() {
            let mut found = Vec::new();
            walk(arg, &mut found)?;
            found.sort();
            out.extend(found);
        } else if arg.exists() {
            out.push(arg.clone());
        } else {
            return Err(BatchError::Missing {
                path: arg.display().to_string(),
            });
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), BatchError> {
    let entries = std::fs::read_dir(dir).map_err(|source| BatchError::List {
        path: dir.display().to_string(),
        source,
    })?;
    for entry in entries {
        let path = entry
            .map_err(|source| BatchError::List {
                path: dir.display().to_string(),
                source,
            })?
            .path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if is_recording(&path) {
            out.push(path);
        }
    }
    Ok(())
}

/// Gives each recording of a batch a unique result name: its file stem, or the stem with a
/// hash of its path when two recordings share a stem.
#[derive(Debug, Default)]
pub struct ResultNames {
    taken: BTreeSet<String>,
}

impl ResultNames {
    pub fn name(&mut self, path: &Path) -> String {
        let stem: String = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "call".to_owned())
            .chars()
            .map(|c| {
                if c.is_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let name = if self.taken.contains(&stem) || stem == "index" {
            let hash = super::rubric::fnv1a_hex(path.display().to_string().as_bytes());
            format!("{stem}-{}", &hash[..8])
        } else {
            stem
        };
        self.taken.insert(name.clone());
        name
    }
}

/// A result file that is still current ([`current_result`]).
#[derive(Debug, Clone, PartialEq)]
pub struct CurrentResult {
    /// What the store and the batch summary read of it.
    pub digest: ReportDigest,
    /// The document as stored (compact JSON).
    pub text: String,
}

/// The stored result at `json_path` when it was computed from this very input (same size and
/// modification time) with the same versions; None otherwise (absent, unreadable, stale, or
/// not a result document of this version: a missing field means scoring again).
pub fn current_result(
    json_path: &Path,
    input: &InputIdentity,
    versions: &Versions,
) -> Option<CurrentResult> {
    #[derive(Deserialize)]
    struct Identity {
        input: StoredInput,
        versions: serde_json::Value,
    }
    #[derive(Deserialize)]
    struct StoredInput {
        size_bytes: u64,
        modified_unix_ms: i64,
    }
    let text = std::fs::read_to_string(json_path).ok()?;
    let doc: serde_json::Value = serde_json::from_str(&text).ok()?;
    let identity = Identity::deserialize(&doc).ok()?;
    let same_input = identity.input.size_bytes == input.size_bytes
        && identity.input.modified_unix_ms == input.modified_unix_ms;
    let same_versions = identity.versions == serde_json::to_value(versions).ok()?;
    if !(same_input && same_versions) {
        return None;
    }
    Some(CurrentResult {
        digest: ReportDigest::from_document(&doc).ok()?,
        text: doc.to_string(),
    })
}

/// Writes `bytes` to `path` atomically: a temp file beside it, flushed to disk, then renamed
/// over `path`. On failure the temp file is removed and `path` is untouched.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), BatchError> {
    write_atomic_with(path, |file| file.write_all(bytes))
}

/// Like [`write_atomic`], with the content streamed by `write` (through a buffer), so a large
/// result never has to be one string in memory.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<(), BatchError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let fail = |e: std::io::Error| BatchError::Write {
        path: path.display().to_string(),
        why: explain_io(&e),
    };
    let result = (|| {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        write(&mut file)?;
        let file = file.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(e));
    }
    Ok(())
}

/// Checks up front that results can be written into `dir` (creating it), so a read-only or
/// full output folder is reported once, before any scoring.
pub fn prepare_out_dir(dir: &Path) -> Result<(), BatchError> {
    let fail = |e: std::io::Error| BatchError::Write {
        path: dir.display().to_string(),
        why: explain_io(&e),
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    let probe = dir.join(format!(".attune-write-probe-{}", std::process::id()));
    write_atomic(&probe, b"probe").map_err(|e| match e {
        BatchError::Write { why, .. } => BatchError::Write {
            path: dir.display().to_string(),
            why,
        },
        other => other,
    })?;
    std::fs::remove_file(&probe).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let mut names = ResultNames::default();
        assert_eq!(names.name(Path::new("a/call 1.wav")), "call_1");
        let second = names.name(Path::new("b/call 1.wav"));
        assert!(
            second.starts_with("call_1-") && second.len() == 15,
            "{second}"
        );
        assert_ne!(names.name(Path::new("x/index.wav")), "index");
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = std::env::temp_dir().join(format!("attune-batch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("r.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let leftovers = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(leftovers, 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
