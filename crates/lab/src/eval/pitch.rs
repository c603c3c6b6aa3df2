//! Pitch evaluation: gross pitch error, fine pitch error and voicing decision error against
//! reference F0 tracks (CSTR FDA laryngograph `.f0ref`, WORLD-resynthesised `f0/*.csv`).
//!
//! For each WAV in the folder the reference is, in order of preference:
//! - `NAME.f0ref` beside the WAV (CSTR FDA): one value per line, Hz, 0 = unvoiced, frame `k` at
//!   `k * 15 ms`;
//! - `../f0/NAME.csv` (pitchref_world): a `time_s,f0_hz,voiced` header, then one row per frame.
//!
//! Each reference frame is compared with our frame nearest in time (ours are 10 ms apart, frame
//! `k` at `k * 10 ms`). Figures are micro averages over all frames of all files:
//! - GPE %: frames voiced in both with |F0 ours / F0 ref - 1| > 20 %, among frames voiced in both;
//! - FPE: mean |1200 log2(F0 ours / F0 ref)| cents over frames voiced in both without gross error;
//! - VDE %: frames whose voicing differs, among all reference frames.

use std::path::{Path, PathBuf};

use super::EvalError;
use attune_core::dsp::FRAME_PERIOD_S;
use attune_core::features::{AnalyzerConfig, analyze_audio};

/// Relative F0 error above which a frame counts as a gross error.
pub const GROSS_ERROR_RATIO: f64 = 0.2;
/// Frame period of the CSTR FDA `.f0ref` files, seconds.
pub const FDA_FRAME_PERIOD_S: f64 = 0.015;

/// Figures over one set of files.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PitchEvalReport {
    pub files: usize,
    pub frames: usize,
    /// Gross pitch error, %: frames voiced in both with |error| > 20 %, among frames voiced in both.
    pub gpe_pct: f64,
    /// Fine pitch error: mean |error| in cents over frames voiced in both without gross error.
    pub fpe_cents: f64,
    /// Voicing decision error, %: frames whose voicing differs from the reference.
    pub vde_pct: f64,
    /// Frames voiced in ours but not in the reference, % of all reference frames.
    pub false_voiced_pct: f64,
    /// Frames voiced in the reference but not in ours, % of all reference frames.
    pub missed_voiced_pct: f64,
    /// Gross errors more than 20 % too low (mostly octave-down), % of frames voiced in both.
    pub gross_low_pct: f64,
    /// The same figures per file, in file-name order.
    pub per_file: Vec<PitchFileReport>,
}

/// Figures of one file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PitchFileReport {
    pub file: String,
    pub frames: usize,
    pub voiced_both: usize,
    pub gross_errors: usize,
    pub gpe_pct: f64,
    pub fpe_cents: f64,
    pub vde_pct: f64,
}

/// One reference frame: time and F0 (0 = unvoiced).
#[derive(Debug, Clone, Copy)]
struct RefFrame {
    time_s: f64,
    f0_hz: f64,
}

/// Running counts behind the figures.
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    frames: usize,
    voiced_both: usize,
    gross: usize,
    gross_low: usize,
    fine_cents_sum: f64,
    voicing_errors: usize,
    false_voiced: usize,
    missed_voiced: usize,
}

impl Tally {
    fn add(&mut self, reference_hz: f64, ours_hz: f64) {
        self.frames += 1;
        let ref_voiced = reference_hz > 0.0;
        let our_voiced = ours_hz > 0.0;
        match (ref_voiced, our_voiced) {
            (true, true) => {
                self.voiced_both += 1;
                let ratio = ours_hz / reference_hz;
                if (ratio - 1.0).abs() > GROSS_ERROR_RATIO {
                    self.gross += 1;
                    if ratio < 1.0 {
                        self.gross_low += 1;
                    }
                } else {
                    self.fine_cents_sum += (1200.0 * ratio.log2()).abs();
                }
            }
            (false, true) => {
                self.voicing_errors += 1;
                self.false_voiced += 1;
            }
            (true, false) => {
                self.voicing_errors += 1;
                self.missed_voiced += 1;
            }
            (false, false) => {}
        }
    }

    fn merge(&mut self, other: &Tally) {
        self.frames += other.frames;
        self.voiced_both += other.voiced_both;
        self.gross += other.gross;
        self.gross_low += other.gross_low;
        self.fine_cents_sum += other.fine_cents_sum;
        self.voicing_errors += other.voicing_errors;
        self.false_voiced += other.false_voiced;
        self.missed_voiced += other.missed_voiced;
    }

    fn gpe_pct(&self) -> f64 {
        percent(self.gross, self.voiced_both)
    }

    fn fpe_cents(&self) -> f64 {
        let fine = self.voiced_both - self.gross;
        if fine == 0 {
            0.0
        } else {
            self.fine_cents_sum / fine as f64
        }
    }

    fn vde_pct(&self) -> f64 {
        percent(self.voicing_errors, self.frames)
    }
}

fn percent(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

/// Evaluates every WAV in `dir` that has a reference track.
pub fn evaluate(dir: &Path) -> Result<PitchEvalReport, EvalError> {
    let io_error = |path: &Path| {
        let path = path.display().to_string();
        move |source| EvalError::Io { path, source }
    };
    let mut wavs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io_error(dir))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("wav")))
        .collect();
    wavs.sort();

    let mut total = Tally::default();
    let mut per_file = Vec::new();
    for wav in &wavs {
        let Some(reference) = load_reference(wav)? else {
            continue;
        };
        let track = analyze_file(wav)?;
        let mut tally = Tally::default();
        for frame in &reference {
            let index = (frame.time_s / FRAME_PERIOD_S).round();
            let ours = if index >= 0.0 {
                track.get(index as usize).copied().unwrap_or(0.0)
            } else {
                0.0
            };
            tally.add(frame.f0_hz, ours as f64);
        }
        total.merge(&tally);
        per_file.push(PitchFileReport {
            file: wav
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            frames: tally.frames,
            voiced_both: tally.voiced_both,
            gross_errors: tally.gross,
            gpe_pct: tally.gpe_pct(),
            fpe_cents: tally.fpe_cents(),
            vde_pct: tally.vde_pct(),
        });
    }
    if per_file.is_empty() {
        return Err(EvalError::Empty(dir.display().to_string()));
    }
    Ok(PitchEvalReport {
        files: per_file.len(),
        frames: total.frames,
        gpe_pct: total.gpe_pct(),
        fpe_cents: total.fpe_cents(),
        vde_pct: total.vde_pct(),
        false_voiced_pct: percent(total.false_voiced, total.frames),
        missed_voiced_pct: percent(total.missed_voiced, total.frames),
        gross_low_pct: percent(total.gross_low, total.voiced_both),
        per_file,
    })
}

/// The reference track of `wav`, or None when it has none.
fn load_reference(wav: &Path) -> Result<Option<Vec<RefFrame>>, EvalError> {
    let bad = |path: &Path, message: String| EvalError::BadReference {
        path: path.display().to_string(),
        message,
    };
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|source| EvalError::Io {
            path: path.display().to_string(),
            source,
        })
    };
    let fda = wav.with_extension("f0ref");
    if fda.is_file() {
        let text = read(&fda)?;
        let mut frames = Vec::new();
        for (k, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let f0_hz: f64 = line
                .parse()
                .map_err(|_| bad(&fda, format!("line {}: not a number: {line:?}", k + 1)))?;
            frames.push(RefFrame {
                time_s: frames.len() as f64 * FDA_FRAME_PERIOD_S,
                f0_hz: if f0_hz.is_finite() && f0_hz > 0.0 {
                    f0_hz
                } else {
                    0.0
                },
            });
        }
        return Ok(Some(frames));
    }
    let (Some(stem), Some(parent)) = (wav.file_stem(), wav.parent()) else {
        return Ok(None);
    };
    let csv = parent
        .join("..")
        .join("f0")
        .join(Path::new(stem).with_extension("csv"));
    if !csv.is_file() {
        return Ok(None);
    }
    let text = read(&csv)?;
    let mut frames = Vec::new();
    for (k, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || (k == 0 && line.starts_with("time")) {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let parse = |i: usize| -> Result<f64, EvalError> {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .ok_or_else(|| {
                    bad(
                        &csv,
                        format!("line {}: expected time_s,f0_hz,voiced", k + 1),
                    )
                })
        };
        let (time_s, f0_hz, voiced) = (parse(0)?, parse(1)?, parse(2)?);
        frames.push(RefFrame {
            time_s,
            f0_hz: if voiced > 0.0 && f0_hz.is_finite() && f0_hz > 0.0 {
                f0_hz
            } else {
                0.0
            },
        });
    }
    Ok(Some(frames))
}

/// Our F0 track (0 = unvoiced), one value per 10 ms frame of the first
/// channel: decoded and resampled to the analysis rate by [`attune_core::audio`], then tracked the way
/// [`attune_core::features::ChannelAnalyzer`] drives [`PitchTracker`] (windows centred on each frame, zeros
/// outside the signal).
///
/// INTERIM: `features::analyze_audio` cannot run until the voice-quality stage lands; then this
/// becomes a call to it.
fn analyze_file(wav: &Path) -> Result<Vec<f32>, EvalError> {
    let audio_error = |source| EvalError::Audio {
        path: wav.display().to_string(),
        source,
    };
    let mut reader = attune_qa::files::open_wav(wav).map_err(audio_error)?;
    // The whole per-channel pipeline, as `attune features` runs it: the figures are the product's.
    let mut track = Vec::new();
    analyze_audio(&mut reader, &AnalyzerConfig::default(), |channel, frame| {
        if channel == 0 {
            track.push(if frame.voiced { frame.f0_hz } else { 0.0 });
        }
    })
    .map_err(audio_error)?;
    Ok(track)
}
