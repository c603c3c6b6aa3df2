//! Source utterances: read once, resampled to the call rate, their speech found by frame energy
//! and trimmed, and cut into clips ready to be placed.
//!
//! Speech of a source: 10 ms frames of the source (band-passed to 300-3400 Hz when the call
//! goes through the telephone channel, so that rumble below the band does not count) whose
//! energy is above the source's speech level ([`SPEECH_LEVEL_PERCENTILE`] of its frame levels)
//! minus [`ACTIVITY_FLOOR_DB`]; a run of such frames counts only if one frame reaches the speech
//! level minus [`CORE_DB`] in [`MIN_CORE_FRAMES`] frames and lasts [`MIN_RUN_FRAMES`] frames
//! (breaths before RAVDESS sentences and clicks at FDA file starts do not). A clip keeps
//! [`TRIM_MARGIN_S`] of the source either side of its speech and fades in and out over
//! [`FADE_S`].
//!
//! Backchannels: the corpora have no "mm-hm", so a backchannel is the first word or syllable of
//! a sentence: the clip ends at the quietest frame within the last 40 % of `max_s` seconds
//! after the speech onset.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::channel::TelephoneFilter;
use attune_core::audio::{AudioError, Resampler};

/// Activity frame length.
pub const FRAME_S: f64 = 0.01;
/// Frames above the speech level minus this are active.
pub const ACTIVITY_FLOOR_DB: f64 = 35.0;
/// A run is speech only if a frame reaches the speech level minus this.
pub const CORE_DB: f64 = 20.0;
/// A run is speech only if it lasts this many frames (50 ms: clicks do not count)...
pub const MIN_RUN_FRAMES: usize = 5;
/// ...and this many of its frames reach the core level.
pub const MIN_CORE_FRAMES: usize = 2;
/// The speech level: this percentile of the source's frame levels.
pub const SPEECH_LEVEL_PERCENTILE: f64 = 0.95;
/// Source kept either side of the speech.
pub const TRIM_MARGIN_S: f64 = 0.1;
/// Fade at both ends of a clip.
pub const FADE_S: f64 = 0.01;

/// What can go wrong with one source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: AudioError,
    },
    #[error("cannot resample {path}")]
    Resample {
        path: PathBuf,
        #[source]
        source: AudioError,
    },
    #[error("{0} holds no speech")]
    NoSpeech(PathBuf),
}

/// A source at the call rate.
#[derive(Debug, Clone)]
struct Source {
    clean: Vec<f32>,
    /// What the activity is measured on (band-passed when the call is telephone).
    measured: Vec<f32>,
    speech_level_db: f64,
}

/// A cut of a source, ready to place: clean samples (unit gain) and its speech runs.
#[derive(Debug, Clone)]
pub struct Clip {
    pub samples: Vec<f32>,
    /// What the activity is measured on (band-passed when the call is telephone).
    pub measured: Vec<f32>,
    /// The source's speech level, dB in the clip's own scale.
    pub speech_level_db: f64,
    /// Activity frame length, samples.
    pub frame_samples: usize,
    /// Speech runs, half-open sample ranges within `samples`, sorted; never empty.
    pub runs: Vec<(usize, usize)>,
    /// RMS of the clean samples inside the runs, dBFS.
    pub speech_rms_dbfs: f64,
}

impl Clip {
    /// First speech sample.
    pub fn speech_start(&self) -> usize {
        self.runs[0].0
    }
    /// One past the last speech sample.
    pub fn speech_end(&self) -> usize {
        self.runs[self.runs.len() - 1].1
    }
    /// Speech duration in samples (onset to end, pauses included).
    pub fn speech_len(&self) -> usize {
        self.speech_end() - self.speech_start()
    }

    /// The speech runs that stay audible when the clip is placed at `gain` over line noise of
    /// `noise_dbfs`: frames whose placed level is below the noise are masked and not speech
    /// (a listener, or an annotator, cannot hear them). Falls back to all runs if none is left.
    pub fn audible_runs(&self, gain: f64, noise_dbfs: Option<f64>) -> Vec<(usize, usize)> {
        let Some(noise_dbfs) = noise_dbfs else {
            return self.runs.clone();
        };
        let min_level_db = noise_dbfs - 20.0 * gain.max(1e-12).log10();
        let runs = speech_runs_above(
            &self.measured,
            self.frame_samples,
            self.speech_level_db,
            min_level_db,
        );
        if runs.is_empty() {
            self.runs.clone()
        } else {
            runs
        }
    }
}

fn frame_levels_db(samples: &[f32], frame: usize) -> Vec<f64> {
    samples
        .chunks(frame)
        .map(|c| {
            let energy = c.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>() / c.len() as f64;
            10.0 * (energy + 1e-20).log10()
        })
        .collect()
}

/// Speech runs of `samples` (sample ranges) given the source's speech level.
pub fn speech_runs(samples: &[f32], frame: usize, speech_level_db: f64) -> Vec<(usize, usize)> {
    speech_runs_above(samples, frame, speech_level_db, f64::NEG_INFINITY)
}

/// Speech runs whose frames are also above `min_level_db` (in the samples' own scale).
pub fn speech_runs_above(
    samples: &[f32],
    frame: usize,
    speech_level_db: f64,
    min_level_db: f64,
) -> Vec<(usize, usize)> {
    let levels = frame_levels_db(samples, frame);
    let floor = (speech_level_db - ACTIVITY_FLOOR_DB).max(min_level_db);
    let core = speech_level_db - CORE_DB;
    let mut runs = Vec::new();
    let mut i = 0;
    while i < levels.len() {
        if levels[i] <= floor {
            i += 1;
            continue;
        }
        let start = i;
        let mut core_frames = 0;
        while i < levels.len() && levels[i] > floor {
            core_frames += usize::from(levels[i] >= core);
            i += 1;
        }
        if i - start >= MIN_RUN_FRAMES && core_frames >= MIN_CORE_FRAMES {
            runs.push((start * frame, (i * frame).min(samples.len())));
        }
    }
    runs
}

fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn fade(samples: &mut [f32], fade_len: usize) {
    let n = samples.len();
    let len = fade_len.min(n / 2);
    for k in 0..len {
        let g = 0.5 - 0.5 * (std::f32::consts::PI * (k as f32 + 0.5) / len as f32).cos();
        samples[k] *= g;
        samples[n - 1 - k] *= g;
    }
}

/// Reads, resamples and cuts sources for one call rate, each at most once.
pub struct SourceCache {
    data_dir: PathBuf,
    sample_rate_hz: u32,
    telephone: bool,
    /// By (name, speed bits).
    sources: HashMap<(String, u64), Source>,
    /// By (name, max_s bits, speed bits).
    clips: HashMap<(String, Option<u64>, u64), Clip>,
}

impl SourceCache {
    /// A cache for sources under `data_dir`, for calls at `sample_rate_hz`.
    pub fn new(data_dir: &Path, sample_rate_hz: u32, telephone: bool) -> Self {
        Self {
            data_dir: data_dir.to_path_buf(),
            sample_rate_hz,
            telephone,
            sources: HashMap::new(),
            clips: HashMap::new(),
        }
    }

    /// The data folder.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Whether this cache serves calls of this rate and channel.
    pub fn serves(&self, data_dir: &Path, sample_rate_hz: u32, telephone: bool) -> bool {
        self.data_dir == data_dir
            && self.sample_rate_hz == sample_rate_hz
            && self.telephone == telephone
    }

    fn load(&mut self, name: &str, speed: f64) -> Result<&Source, SourceError> {
        let key = (name.to_owned(), speed.to_bits());
        if !self.sources.contains_key(&key) {
            let path = self.data_dir.join(name);
            let buffer = attune_qa::files::read_wav(&path).map_err(|source| SourceError::Read {
                path: path.clone(),
                source,
            })?;
            let count = buffer.channels.len().max(1) as f32;
            let frames = buffer.channels.first().map_or(0, Vec::len);
            let mono: Vec<f32> = (0..frames)
                .map(|i| buffer.channels.iter().map(|c| c[i]).sum::<f32>() / count)
                .collect();
            // Played `speed` times faster: read as if recorded at `speed` times its rate.
            let source_rate_hz = (f64::from(buffer.sample_rate_hz) * speed).round() as u32;
            let clean = if source_rate_hz == self.sample_rate_hz {
                mono
            } else {
                let mut resampler = Resampler::try_new(source_rate_hz, self.sample_rate_hz)
                    .map_err(|source| SourceError::Resample {
                        path: path.clone(),
                        source,
                    })?;
                let mut out = Vec::new();
                resampler.process(&mono, &mut out);
                resampler.finish(&mut out);
                out
            };
            let mut measured = clean.clone();
            if self.telephone {
                TelephoneFilter::new(self.sample_rate_hz).process(&mut measured);
            }
            let frame = self.frame_len();
            let levels = frame_levels_db(&measured, frame);
            if levels.is_empty() {
                return Err(SourceError::NoSpeech(path));
            }
            let speech_level_db = percentile(&levels, SPEECH_LEVEL_PERCENTILE);
            self.sources.insert(
                key.clone(),
                Source {
                    clean,
                    measured,
                    speech_level_db,
                },
            );
        }
        Ok(&self.sources[&key])
    }

    fn frame_len(&self) -> usize {
        ((FRAME_S * f64::from(self.sample_rate_hz)).round() as usize).max(1)
    }

    /// The clip of source `name` (relative to the data folder), optionally only its first
    /// `max_s` seconds of speech.
    pub fn clip(&mut self, name: &str, max_s: Option<f64>) -> Result<&Clip, SourceError> {
        self.clip_at_speed(name, max_s, 1.0)
    }

    /// [`Self::clip`] of the source played `speed` times faster (a tape-speed change: rate
    /// and pitch change together, e.g. 1.15 is 15 % faster and 2.4 semitones higher).
    pub fn clip_at_speed(
        &mut self,
        name: &str,
        max_s: Option<f64>,
        speed: f64,
    ) -> Result<&Clip, SourceError> {
        let key = (name.to_owned(), max_s.map(f64::to_bits), speed.to_bits());
        if !self.clips.contains_key(&key) {
            let rate = f64::from(self.sample_rate_hz);
            let frame = self.frame_len();
            let margin = (TRIM_MARGIN_S * rate).round() as usize;
            let fade_len = (FADE_S * rate).round() as usize;
            let path = self.data_dir.join(name);
            let source = self.load(name, speed)?;
            let speech_level_db = source.speech_level_db;
            let runs = speech_runs(&source.measured, frame, source.speech_level_db);
            let (Some(first), Some(last)) = (runs.first(), runs.last()) else {
                return Err(SourceError::NoSpeech(path));
            };
            let from = first.0.saturating_sub(margin);
            let to = match max_s {
                None => (last.1 + margin).min(source.clean.len()),
                Some(max_s) => {
                    // Quietest frame in the last 40 % of the allowed span.
                    let limit = (first.0 + (max_s * rate) as usize).min(last.1);
                    let search_from = first.0 + (0.6 * max_s * rate) as usize;
                    let levels = frame_levels_db(&source.measured[..limit], frame);
                    let mut best = (f64::INFINITY, limit);
                    for (k, level) in levels.iter().enumerate() {
                        let centre = k * frame + frame / 2;
                        if centre >= search_from && centre < limit && *level < best.0 {
                            best = (*level, centre);
                        }
                    }
                    best.1.max(first.0 + 2 * fade_len)
                }
            };
            let mut samples = source.clean[from..to].to_vec();
            let mut measured = source.measured[from..to].to_vec();
            fade(&mut samples, fade_len);
            fade(&mut measured, fade_len);
            let runs = speech_runs(&measured, frame, source.speech_level_db);
            if runs.is_empty() {
                return Err(SourceError::NoSpeech(path));
            }
            let (sum, count) = runs
                .iter()
                .flat_map(|&(s, e)| &samples[s..e])
                .fold((0.0, 0usize), |(sum, n), x| {
                    (sum + f64::from(*x).powi(2), n + 1)
                });
            let speech_rms_dbfs = 10.0 * (sum / count.max(1) as f64 + 1e-20).log10();
            self.clips.insert(
                key.clone(),
                Clip {
                    samples,
                    measured,
                    speech_level_db,
                    frame_samples: frame,
                    runs,
                    speech_rms_dbfs,
                },
            );
        }
        Ok(&self.clips[&key])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speech_runs_skip_coreless_noise() {
        let frame = 80;
        let mut x = vec![0.0f32; 80 * 100];
        // a faint blip (-50 dBFS-ish) at frames 5..8, speech (-20 dBFS) at frames 30..60
        for v in &mut x[5 * 80..8 * 80] {
            *v = 0.003;
        }
        for v in &mut x[30 * 80..60 * 80] {
            *v = 0.1;
        }
        let level = percentile(&frame_levels_db(&x, frame), SPEECH_LEVEL_PERCENTILE);
        assert!((level + 20.0).abs() < 0.1);
        assert_eq!(speech_runs(&x, frame, level), vec![(30 * 80, 60 * 80)]);
    }
}
