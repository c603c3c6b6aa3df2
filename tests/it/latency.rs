//! The live analysis's latency plumbing: frames leave the prosody track without waiting for
//! their syllable decisions, and nothing is lost or changed but where a late mark lands.

use attune_core::audio::Resampler;
use attune_core::dsp::ANALYSIS_RATE_HZ;
use attune_core::features::{AnalyzerConfig, ChannelAnalyzer, FrameFeatures, SyllableMarks};

/// Runs one channel of a bundled call through the track in 100 ms pieces, as a live call
/// arrives; returns the frames and the track.
fn run(marks: SyllableMarks) -> (Vec<FrameFeatures>, ChannelAnalyzer) {
    let audio = attune_qa::files::read_wav(std::path::Path::new("examples/calls/upset_caller.wav"))
        .unwrap();
    let mut resampler = Resampler::try_new(audio.sample_rate_hz, ANALYSIS_RATE_HZ).unwrap();
    let mut track = ChannelAnalyzer::new(
        0,
        &AnalyzerConfig {
            syllable_marks: marks,
            ..AnalyzerConfig::default()
        },
    );
    let mut frames = Vec::new();
    let mut resampled = Vec::new();
    let piece = audio.sample_rate_hz as usize / 10;
    for chunk in audio.channels[0][..audio.sample_rate_hz as usize * 40].chunks(piece) {
        resampled.clear();
        resampler.process(chunk, &mut resampled);
        track.push(&resampled, &mut |f| frames.push(*f));
    }
    track.finish(&mut |f| frames.push(*f));
    (frames, track)
}

#[test]
fn frames_do_not_wait_for_syllable_marks_and_keep_the_counts() {
    let (exact, exact_track) = run(SyllableMarks::Exact);
    let (early, early_track) = run(SyllableMarks::NextSpeechFrame);
    assert_eq!(exact.len(), early.len());
    let without_mark = |f: &FrameFeatures| FrameFeatures {
        syllable_nucleus: false,
        ..*f
    };
    for (a, b) in exact.iter().zip(&early) {
        // Debug text: voice-quality fields are NaN on unvoiced frames.
        assert_eq!(
            format!("{:?}", without_mark(a)),
            format!("{:?}", without_mark(b)),
            "frame {}",
            a.index
        );
    }
    let marks = |frames: &[FrameFeatures]| frames.iter().filter(|f| f.syllable_nucleus).count();
    let (exact_marks, early_marks) = (marks(&exact), marks(&early));
    assert!(exact_marks > 50, "{exact_marks} nuclei in 40 s of a call");
    // Marks still pending when the last speech frame left count in the summary only.
    assert!(early_marks <= exact_marks && early_marks + 3 >= exact_marks);
    assert_eq!(
        exact_track.summary().syllable_count,
        early_track.summary().syllable_count
    );
    // Most marks land on their own frame or within 100 ms of it; none before it.
    let exact_at: Vec<u64> = exact
        .iter()
        .filter(|f| f.syllable_nucleus)
        .map(|f| f.index)
        .collect();
    let early_at: Vec<u64> = early
        .iter()
        .filter(|f| f.syllable_nucleus)
        .map(|f| f.index)
        .collect();
    let shifts: Vec<u64> = exact_at
        .iter()
        .zip(&early_at)
        .map(|(a, b)| b.checked_sub(*a).expect("a mark before its nucleus"))
        .collect();
    let near = shifts.iter().filter(|&&s| s <= 10).count();
    assert!(near * 10 >= shifts.len() * 8, "{shifts:?}");
    // And the frames leave sooner: the syllable stage adds nothing to voice activity.
    let early_lags = early_track.stage_lags();
    let exact_lags = exact_track.stage_lags();
    assert_eq!(
        early_lags.syllable.quantile_frames(0.95),
        early_lags.voice_activity.quantile_frames(0.95)
    );
    assert!(
        exact_lags.syllable.quantile_frames(0.5).unwrap()
            > early_lags.syllable.quantile_frames(0.5).unwrap()
    );
}
