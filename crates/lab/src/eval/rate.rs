//! Speaking-rate evaluation against EmoDB syllable labels (`labsilb/`).
//!
//! Reference rate of an utterance = labelled syllables / (time of the final `.` label − time of
//! the first label), the convention of the anchors in `shared/data/README.md`. Labels whose end
//! lies past the audio (this copy of EmoDB is cut to 2.0 s) are skipped. The estimate is
//! [`attune_core::features::ChannelSummary::speaking_rate_syl_per_s`] of the file, run through the
//! real pipeline (resampled to 8 kHz), optionally after a telephone channel simulation.

use std::path::Path;

use serde::Serialize;

use super::EvalError;
use super::telephone::telephone_channel;
use attune_core::audio::{AudioReader, read_all};
use attune_core::features::{AnalyzerConfig, ChannelAnalyzer, ChannelSummary, analyze_audio};

/// What to evaluate on.
#[derive(Debug, Clone, Default)]
pub struct RateEvalOptions {
    /// Pass each file through the telephone channel ([`super::telephone`]) first.
    pub telephone: bool,
    /// Only files of these speakers (the first two characters of an EmoDB file name); all when
    /// empty.
    pub speakers: Vec<String>,
}

/// Figures over one set of files.
#[derive(Debug, Clone, Serialize)]
pub struct RateEvalReport {
    pub files: usize,
    /// Pearson correlation of estimated and reference speaking rate.
    pub pearson_r: f64,
    /// Mean absolute error, syllables per second.
    pub mae_syl_per_s: f64,
    /// Mean of the reference and estimated rates, syllables per second.
    pub reference_mean_syl_per_s: f64,
    pub estimate_mean_syl_per_s: f64,
    /// Per-file detail.
    pub items: Vec<RateItem>,
}

/// One evaluated utterance.
#[derive(Debug, Clone, Serialize)]
pub struct RateItem {
    pub file: String,
    pub reference_syllables: usize,
    pub reference_rate_syl_per_s: f64,
    pub estimated_syllables: u64,
    pub estimated_rate_syl_per_s: f64,
}

/// Syllable count and speaking span parsed from one `.labsilb` file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SyllableLabels {
    pub syllables: usize,
    pub first_s: f64,
    pub end_s: f64,
}

impl SyllableLabels {
    /// Reference speaking rate, syllables per second.
    pub fn rate_syl_per_s(&self) -> f64 {
        self.syllables as f64 / (self.end_s - self.first_s)
    }
}

/// Parses an xlabel `.labsilb` file: after the `#` line, `time -1 label` per syllable and a final
/// `.` marking the end of speech.
pub fn parse_labsilb(text: &str) -> Result<SyllableLabels, String> {
    let mut in_body = false;
    let mut first_s = None;
    let mut syllables = 0;
    for line in text.lines() {
        if !in_body {
            in_body = line.trim() == "#";
            continue;
        }
        let mut fields = line.split_whitespace();
        let (Some(time), Some(_), Some(label)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let time_s: f64 = time
            .parse()
            .map_err(|_| format!("bad time {time:?} in line {line:?}"))?;
        if label == "." {
            let first_s = first_s.ok_or("end marker before any syllable")?;
            if time_s <= first_s {
                return Err(format!(
                    "end {time_s} s not after first syllable {first_s} s"
                ));
            }
            return Ok(SyllableLabels {
                syllables,
                first_s,
                end_s: time_s,
            });
        }
        first_s.get_or_insert(time_s);
        syllables += 1;
    }
    Err("no end marker `.`".into())
}

fn pearson(xs: &[f64], ys: &[f64]) -> f64 {
    let n = xs.len() as f64;
    let mx = xs.iter().sum::<f64>() / n;
    let my = ys.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in xs.iter().zip(ys) {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx) * (x - mx);
        syy += (y - my) * (y - my);
    }
    sxy / (sxx * syy).sqrt()
}

/// Evaluates the speaking rate of every labelled file under `corpus_dir` (with `wav/` and
/// `labsilb/`). Files are read from `wav/` unless `audio_dir` names another folder holding the
/// same file names (e.g. a telephone-channel copy).
pub fn evaluate(corpus_dir: &Path) -> Result<RateEvalReport, EvalError> {
    evaluate_with_audio(
        corpus_dir,
        &corpus_dir.join("wav"),
        &RateEvalOptions::default(),
    )
}

/// As [`evaluate`], with the audio taken from `audio_dir` and the given options.
pub fn evaluate_with_audio(
    corpus_dir: &Path,
    audio_dir: &Path,
    options: &RateEvalOptions,
) -> Result<RateEvalReport, EvalError> {
    let label_dir = corpus_dir.join("labsilb");
    let io_error = |path: &Path, source| EvalError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut names: Vec<String> = std::fs::read_dir(&label_dir)
        .map_err(|e| io_error(&label_dir, e))?
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".labsilb").map(str::to_owned)
        })
        .collect();
    names.sort();
    let config = AnalyzerConfig::default();
    let mut items = Vec::new();
    for name in names {
        if !options.speakers.is_empty() && !options.speakers.iter().any(|s| name.starts_with(s)) {
            continue;
        }
        let label_path = label_dir.join(format!("{name}.labsilb"));
        let wav_path = audio_dir.join(format!("{name}.wav"));
        if !wav_path.is_file() {
            continue;
        }
        let text = std::fs::read(&label_path).map_err(|e| io_error(&label_path, e))?;
        let labels = parse_labsilb(&String::from_utf8_lossy(&text)).map_err(|message| {
            EvalError::BadReference {
                path: label_path.display().to_string(),
                message,
            }
        })?;
        let audio_error = |source| EvalError::Audio {
            path: wav_path.display().to_string(),
            source,
        };
        let mut reader = attune_qa::files::open_wav(&wav_path).map_err(audio_error)?;
        let duration_s = reader
            .spec()
            .total_frames
            .map(|n| n as f64 / reader.spec().sample_rate_hz as f64);
        if duration_s.is_some_and(|d| labels.end_s > d) {
            continue;
        }
        let summary = if options.telephone {
            telephone_summary(reader, &config).map_err(audio_error)?
        } else {
            analyze_audio(&mut reader, &config, |_, _| {})
                .map_err(audio_error)?
                .into_iter()
                .next()
        };
        let Some(summary) = summary else {
            continue;
        };
        items.push(RateItem {
            file: name,
            reference_syllables: labels.syllables,
            reference_rate_syl_per_s: labels.rate_syl_per_s(),
            estimated_syllables: summary.syllable_count,
            estimated_rate_syl_per_s: summary.speaking_rate_syl_per_s,
        });
    }
    if items.len() < 2 {
        return Err(EvalError::Empty(corpus_dir.display().to_string()));
    }
    let reference: Vec<f64> = items.iter().map(|i| i.reference_rate_syl_per_s).collect();
    let estimate: Vec<f64> = items.iter().map(|i| i.estimated_rate_syl_per_s).collect();
    let n = items.len() as f64;
    Ok(RateEvalReport {
        files: items.len(),
        pearson_r: pearson(&reference, &estimate),
        mae_syl_per_s: reference
            .iter()
            .zip(&estimate)
            .map(|(r, e)| (r - e).abs())
            .sum::<f64>()
            / n,
        reference_mean_syl_per_s: reference.iter().sum::<f64>() / n,
        estimate_mean_syl_per_s: estimate.iter().sum::<f64>() / n,
        items,
    })
}

/// Summary of the first channel of `reader` after the telephone channel, analysed in memory.
fn telephone_summary(
    reader: AudioReader,
    config: &AnalyzerConfig,
) -> Result<Option<ChannelSummary>, attune_core::audio::AudioError> {
    let audio = read_all(reader)?;
    let Some(samples) = audio.channels.first() else {
        return Ok(None);
    };
    let line = telephone_channel(samples, audio.sample_rate_hz)?;
    let mut analyzer = ChannelAnalyzer::new(0, config);
    analyzer.push(&line, &mut |_| {});
    analyzer.finish(&mut |_| {});
    Ok(Some(analyzer.summary()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_xlabel_syllables_and_end() {
        let text = "signal x\nnfields 1\n#\n    0.080080   -1 der\t0.4\n    0.244195   -1 la\t2.4\n    \
                    1.841390   -1 .\t\n";
        let labels = parse_labsilb(text).unwrap();
        assert_eq!(labels.syllables, 2);
        assert!((labels.rate_syl_per_s() - 2.0 / (1.841390 - 0.080080)).abs() < 1e-9);
        assert!(parse_labsilb("#\n 0.1 -1 a\n").is_err());
    }

    #[test]
    fn pearson_of_a_line_is_one() {
        let r = pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.5]);
        assert!(r > 0.99);
    }
}
