//! The on-disk spool of the store writer ([`super::recorder`]): ended calls waiting for the
//! database, and the journal of the calls live now.
//!
//! - `<spool>/<ended-ms>-<seq>-<id hash>.call.json`: one ended call's complete store record
//!   ([`StoredCall`]), written before the call is acknowledged as ended (temporary file, fsync,
//!   rename, fsync of the directory) and deleted only after the database committed it. At
//!   startup the files left are stored again (a call is stored under its `call_id`, replacing
//!   what was there: storing one twice keeps one row).
//! - `<spool>/live/<id hash>.json`: a call live now ([`LiveMarker`]), written when it starts
//!   and removed when it ends, on a thread of its own (never on the audio path). A marker left
//!   at startup is a call the process died with: it is stored as interrupted.
//! - `<spool>/corrupt/`: spool files that cannot be read (truncated, not JSON), moved aside
//!   and reported, never deleted.
//!
//! The directories are created with mode 0700 (call records are personal data).

use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use attune_qa::store::StoredCall;
use serde::{Deserialize, Serialize};

use super::hub::CallInfo;

/// The spool format written by this build.
const SPOOL_VERSION: u32 = 1;
const CALL_SUFFIX: &str = ".call.json";

/// A spooled ended call, as written to its file.
#[derive(Debug, Serialize, Deserialize)]
struct SpoolFile {
    version: u32,
    call: StoredCall,
}

/// A live call's journal entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveMarker {
    pub call_id: String,
    pub agent_id: String,
    pub team: String,
    pub started_at_unix_ms: u64,
}

impl From<&CallInfo> for LiveMarker {
    fn from(info: &CallInfo) -> Self {
        Self {
            call_id: info.call_id.clone(),
            agent_id: info.agent_id.clone(),
            team: info.team.clone(),
            started_at_unix_ms: info.started_at_unix_ms,
        }
    }
}

/// The spool directory. See the module docs.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    seq: AtomicU64,
}

/// The default spool of a store: `<db>.spool` beside a SQLite file; None for a database URL
/// (give `--spool-dir`).
pub fn default_dir(db: &str) -> Option<PathBuf> {
    if db.contains("://") {
        None
    } else {
        Some(PathBuf::from(format!("{db}.spool")))
    }
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Makes a rename or removal in `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn id_hash(call_id: &str) -> String {
    crate::auth::secrets::sha256_hex(call_id.as_bytes())
}

/// Writes `bytes` to `path` whole: a temporary file beside it, renamed (a reader never sees
/// half a file). `durable`: the file is fsynced before the rename and the directory after it,
/// so it survives a power cut too.
fn write_whole(path: &Path, bytes: &[u8], durable: bool) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let written = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        if durable {
            file.sync_all()?;
        }
        fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written?;
    if durable && let Some(parent) = path.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// A spool file that could not be read back, moved aside.
#[derive(Debug)]
pub struct CorruptFile {
    pub path: PathBuf,
    /// Where it was moved (None: it could not be moved and stays where it was).
    pub moved_to: Option<PathBuf>,
    pub error: String,
}

impl Spool {
    /// Opens (creating, mode 0700) the spool directory and its `live/` journal.
    pub fn open(dir: impl Into<PathBuf>) -> io::Result<Self> {
        let dir = dir.into();
        create_private_dir(&dir.join("live"))?;
        Ok(Self {
            dir,
            seq: AtomicU64::new(0),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn live_dir(&self) -> PathBuf {
        self.dir.join("live")
    }

    fn recovering_dir(&self) -> PathBuf {
        self.dir.join("recovering")
    }

    /// Writes an ended call's record durably; its path is returned (delete it with
    /// [`Self::remove`] once the database has it).
    pub fn write_call(&self, call: &StoredCall, ended_at_unix_ms: u64) -> io::Result<PathBuf> {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let name = format!(
            "{ended_at_unix_ms:013}-{seq:08}-{}{CALL_SUFFIX}",
            &id_hash(&call.call_id)[..16]
        );
        let path = self.dir.join(name);
        let bytes = serde_json::to_vec(&SpoolFile {
            version: SPOOL_VERSION,
            call: call.clone(),
        })
        .map_err(io::Error::other)?;
        write_whole(&path, &bytes, true)?;
        Ok(path)
    }

    /// Reads a spooled call back.
    pub fn read_call(path: &Path) -> Result<StoredCall, String> {
        let bytes = fs::read(path).map_err(|e| e.to_string())?;
        let file: SpoolFile = serde_json::from_slice(&bytes)
            .map_err(|e| format!("not a complete spool file ({} bytes): {e}", bytes.len()))?;
        if file.version != SPOOL_VERSION {
            return Err(format!(
                "spool format {} (this build reads {SPOOL_VERSION})",
                file.version
            ));
        }
        Ok(file.call)
    }

    /// Deletes a spool file (its call is stored). Not synced: were the deletion lost in a power
    /// cut, the call would be stored again under its id, which keeps one row.
    pub fn remove(path: &Path) -> io::Result<()> {
        match fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// The spooled calls, oldest first (their names sort by end time).
    pub fn spooled_calls(&self) -> io::Result<Vec<PathBuf>> {
        let mut files: Vec<PathBuf> = fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(CALL_SUFFIX))
            })
            .collect();
        files.sort();
        Ok(files)
    }

    /// Moves an unreadable spool file to `corrupt/`, keeping it for a person to look at.
    pub fn move_aside(&self, path: &Path, error: String) -> CorruptFile {
        let corrupt = self.dir.join("corrupt");
        let moved_to = create_private_dir(&corrupt).ok().and_then(|()| {
            let to = corrupt.join(path.file_name()?);
            fs::rename(path, &to).ok().map(|()| to)
        });
        CorruptFile {
            path: path.to_owned(),
            moved_to,
            error,
        }
    }

    /// Records a call as live: written whole, not fsynced (a killed process leaves it in the
    /// page cache; [`Self::sync_live`] syncs the directory once per batch).
    pub fn mark_live(&self, marker: &LiveMarker) -> io::Result<()> {
        let bytes = serde_json::to_vec(marker).map_err(io::Error::other)?;
        let path = self
            .live_dir()
            .join(format!("{}.json", id_hash(&marker.call_id)));
        write_whole(&path, &bytes, false)
    }

    /// Removes a call's live marker (it ended).
    pub fn unmark_live(&self, call_id: &str) -> io::Result<()> {
        Self::remove(&self.live_dir().join(format!("{}.json", id_hash(call_id))))
    }

    /// Makes the journal's latest writes and removals durable.
    pub fn sync_live(&self) -> io::Result<()> {
        sync_dir(&self.live_dir())
    }

    /// Takes the live markers a previous process left (the calls it died with) out of `live/`
    /// into `recovering/`, so that new calls of the same ids are journaled apart; returns the
    /// markers now in `recovering/` (also those of a recovery that was itself cut short).
    pub fn take_left_live(&self) -> io::Result<Vec<(PathBuf, Result<LiveMarker, String>)>> {
        let recovering = self.recovering_dir();
        create_private_dir(&recovering)?;
        for entry in fs::read_dir(self.live_dir())? {
            let path = entry?.path();
            if let Some(name) = path.file_name() {
                if path.extension().is_some_and(|e| e == "tmp") {
                    let _ = fs::remove_file(&path);
                    continue;
                }
                fs::rename(&path, recovering.join(name))?;
            }
        }
        sync_dir(&self.live_dir())?;
        sync_dir(&recovering)?;
        let mut out = Vec::new();
        for entry in fs::read_dir(&recovering)? {
            let path = entry?.path();
            let marker = fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()));
            out.push((path, marker));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("attune-spool-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    pub(crate) fn call(call_id: &str) -> StoredCall {
        StoredCall {
            call_id: call_id.into(),
            source: "live".into(),
            recording: Some(format!("live:{call_id}")),
            agent: Some("a1".into()),
            team: Some("t1".into()),
            call_at: "2026-12-07T10:00:00Z".into(),
            duration_s: 12.5,
            agent_talk_s: Some(5.0),
            caller_talk_s: Some(6.0),
            overlap_s: None,
            silence_s: Some(1.5),
            agent_interruptions: 1,
            caller_interruptions: 0,
            caller_end_emotion: Some("neutral".into()),
            caller_end_upset_probability: Some(0.1),
            agent_calmness_min: None,
            score_pct: Some(87.5),
            auto_fail: false,
            model_version: "m".into(),
            rules_version: "r".into(),
            rubric_version: None,
            stored_at: "2026-12-07T10:00:01Z".into(),
            cues: Vec::new(),
            qa_items: Vec::new(),
            report_json: "{\"file\":\"x\"}".into(),
        }
    }

    #[test]
    fn a_spooled_call_reads_back_whole_and_is_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = temp("roundtrip");
        let spool = Spool::open(&dir).unwrap();
        let mode = fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let first = spool.write_call(&call("c/1"), 1000).unwrap();
        let second = spool.write_call(&call("c/1"), 1001).unwrap();
        assert_ne!(first, second, "the same id twice is two files");
        assert_eq!(spool.spooled_calls().unwrap(), vec![first.clone(), second]);
        assert_eq!(Spool::read_call(&first).unwrap(), call("c/1"));
        Spool::remove(&first).unwrap();
        Spool::remove(&first).unwrap();
        assert_eq!(spool.spooled_calls().unwrap().len(), 1);
    }

    #[test]
    fn a_truncated_spool_file_is_reported_and_moved_aside() {
        let dir = temp("corrupt");
        let spool = Spool::open(&dir).unwrap();
        let path = spool.write_call(&call("c1"), 5).unwrap();
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let error = Spool::read_call(&path).unwrap_err();
        assert!(error.contains("not a complete spool file"), "{error}");
        let aside = spool.move_aside(&path, error);
        let moved = aside.moved_to.unwrap();
        assert!(moved.starts_with(dir.join("corrupt")));
        assert!(moved.exists());
        assert!(spool.spooled_calls().unwrap().is_empty());
    }

    #[test]
    fn live_markers_left_behind_are_taken_for_recovery() {
        let dir = temp("live");
        let spool = Spool::open(&dir).unwrap();
        let marker = LiveMarker {
            call_id: "c1".into(),
            agent_id: "a".into(),
            team: "t".into(),
            started_at_unix_ms: 42,
        };
        spool.mark_live(&marker).unwrap();
        spool
            .mark_live(&LiveMarker {
                call_id: "c2".into(),
                ..marker.clone()
            })
            .unwrap();
        spool.unmark_live("c2").unwrap();
        spool.sync_live().unwrap();
        let left = spool.take_left_live().unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].1.as_ref().unwrap(), &marker);
        // A new call of the same id is journaled apart from the one being recovered.
        spool.mark_live(&marker).unwrap();
        assert_eq!(fs::read_dir(dir.join("live")).unwrap().count(), 1);
        assert_eq!(fs::read_dir(dir.join("recovering")).unwrap().count(), 1);
    }
}
