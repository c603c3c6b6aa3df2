//! The emotion model's cost against the per-channel signal core it sits on.
//!
//! - `predict_cold` / `predict_baseline`: one judgement of a window (normalisation + ensemble
//!   forward pass), without and with a sufficient speaker baseline;
//! - `functionals_features_per_window`: turning a window's accumulator into its feature vector
//!   (quantiles of the fixed histograms), once per judged window;
//! - `functionals_push_100_frames`: [`FunctionalsAccumulator::push`] of 1 s of frames (divide
//!   by 100 for one frame);
//! - `channel_analyzer_push_1s`: the per-channel signal core ([`ChannelAnalyzer::push`]) over
//!   1 s of 8 kHz audio, streaming (one analyzer fed second after second).
//!
//! Model share of a call's analysis, with a window judged every 1 s of speech:
//! `(predict_baseline + features_per_window + push_100_frames) / (channel_analyzer_push_1s +
//! the same)`.
//!
//! The model is `models/emotion.json` when present (else a small model trained here on
//! synthetic data, of the default architecture); the audio is the first second of speech of
//! `../shared/data/fda_tel/tel/sb025.wav` when present (telephone speech), else a synthetic
//! harmonic voice.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};

use attune_core::dsp::ANALYSIS_RATE_HZ;
use attune_core::features::{AnalyzerConfig, ChannelAnalyzer, FrameFeatures};
use attune_core::model::emotion::{EmotionModel, LabelledFunctionals};
use attune_core::model::labels::Label;
use attune_core::model::mlp::TrainConfig;
use attune_core::prosody::baseline::SpeakerBaseline;
use attune_core::prosody::functionals::{FEATURE_COUNT, FunctionalsAccumulator};
use attune_core::rng::SplitMix64;
use attune_lab::extract::ChannelCondition;
use attune_lab::extract::load_channel;

/// 1 s of synthetic voice: harmonics of a gliding F0 with a syllable envelope.
fn synthetic_second() -> Vec<f32> {
    let n = ANALYSIS_RATE_HZ as usize;
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(ANALYSIS_RATE_HZ);
            let phase = 2.0 * std::f64::consts::PI * (140.0 * t + 15.0 * t * t);
            let v: f64 = (1..20).map(|h| (h as f64 * phase).sin() / h as f64).sum();
            let syllable = (std::f64::consts::PI * t / 0.22).sin().abs();
            (0.2 * v * syllable) as f32
        })
        .collect()
}

fn one_second_of_audio() -> (Vec<f32>, &'static str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/fda_tel/tel/sb025.wav");
    match load_channel(&path, 0, ChannelCondition::AsRecorded) {
        Ok(samples) if samples.len() >= 2 * ANALYSIS_RATE_HZ as usize => {
            // Skip the leading silence: start 0.5 s in.
            let start = ANALYSIS_RATE_HZ as usize / 2;
            (
                samples[start..start + ANALYSIS_RATE_HZ as usize].to_vec(),
                "fda_tel/tel/sb025.wav",
            )
        }
        _ => (synthetic_second(), "synthetic voice"),
    }
}

fn toy_model() -> EmotionModel {
    let mut rng = SplitMix64::new(5);
    let labels = [
        Label::Anger,
        Label::Fear,
        Label::Sadness,
        Label::Happiness,
        Label::Neutral,
    ];
    let mut samples = Vec::new();
    for speaker in 0..4 {
        for (k, &label) in labels.iter().enumerate() {
            for _ in 0..8 {
                let mut features = [0f32; FEATURE_COUNT];
                for (d, f) in features.iter_mut().enumerate() {
                    *f = (speaker as f64 + if d % 5 == k { 2.0 } else { 0.0 } + rng.gaussian())
                        as f32;
                }
                samples.push(LabelledFunctionals {
                    features,
                    speech_s: 2.5,
                    voiced_s: 2.0,
                    speaker: format!("s{speaker}"),
                    label,
                });
            }
        }
    }
    EmotionModel::train(&samples, &TrainConfig::default(), "synthetic")
}

fn bench(c: &mut Criterion) {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/emotion.json");
    let (model, which) = match attune_qa::files::load_model(&shipped) {
        Ok(m) => (m, "models/emotion.json"),
        Err(_) => (toy_model(), "toy model"),
    };
    let (audio, source) = one_second_of_audio();
    eprintln!("model: {which}; audio: {source}");

    let mut frames: Vec<FrameFeatures> = Vec::new();
    let mut analyzer = ChannelAnalyzer::new(0, &AnalyzerConfig::default());
    // Two passes so the second second's frames come from a warmed-up analyzer.
    analyzer.push(&audio, &mut |_: &FrameFeatures| {});
    analyzer.push(&audio, &mut |f: &FrameFeatures| frames.push(*f));
    let mut acc = FunctionalsAccumulator::new();
    for f in &frames {
        acc.push(f);
    }
    let features = acc.features();
    let mut baseline = SpeakerBaseline::new();
    let mut rng = SplitMix64::new(9);
    while !baseline.is_sufficient() {
        let mut jittered = features;
        for v in &mut jittered {
            *v += (0.1 * rng.gaussian()) as f32 * v.abs().max(0.1);
        }
        baseline.add(&jittered, 2.5);
    }

    let mut group = c.benchmark_group("emotion_model");
    group.bench_function("predict_cold", |b| {
        b.iter(|| model.predict(black_box(&features), 2.5, 2.0, None))
    });
    group.bench_function("predict_baseline", |b| {
        b.iter(|| model.predict(black_box(&features), 2.5, 2.0, Some(&baseline)))
    });
    group.bench_function("functionals_features_per_window", |b| {
        b.iter(|| black_box(&acc).features())
    });
    group.bench_function("functionals_push_100_frames", |b| {
        let mut acc = FunctionalsAccumulator::new();
        b.iter(|| {
            acc.reset();
            for f in &frames {
                acc.push(black_box(f));
            }
            black_box(acc.speech_s())
        })
    });
    group.bench_function("channel_analyzer_push_1s", |b| {
        let mut analyzer = ChannelAnalyzer::new(0, &AnalyzerConfig::default());
        b.iter(|| {
            let mut n = 0u32;
            analyzer.push(black_box(&audio), &mut |_: &FrameFeatures| n += 1);
            black_box(n)
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
