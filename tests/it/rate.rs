//! Speaking rate against the EmoDB syllable labels: a regression guard on the figures measured
//! with the detrended loudness nuclei (clean r 0.660 / MAE 0.633, telephone r 0.582 / MAE 0.674
//! syl/s over the 114 usable files); bounds are r - 0.05 and MAE + 0.05. Skipped when ../shared/data is absent.

use attune_lab::eval::rate::{RateEvalOptions, evaluate_with_audio};

use crate::util::shared_data;

fn check(telephone: bool, min_r: f64, max_mae: f64) {
    let Some(data) = shared_data() else {
        return;
    };
    let corpus = data.join("emodb");
    let options = RateEvalOptions {
        telephone,
        speakers: Vec::new(),
    };
    let report = evaluate_with_audio(&corpus, &corpus.join("wav"), &options).unwrap();
    assert!(report.files >= 100, "{} files", report.files);
    assert!(
        report.pearson_r >= min_r && report.mae_syl_per_s <= max_mae,
        "telephone {telephone}: r {:.3} (>= {min_r}), MAE {:.3} (<= {max_mae})",
        report.pearson_r,
        report.mae_syl_per_s
    );
}

#[test]
fn speaking_rate_on_emodb_clean_holds() {
    check(false, 0.61, 0.68);
}

#[test]
fn speaking_rate_on_emodb_telephone_holds() {
    check(true, 0.53, 0.72);
}

#[test]
fn telephone_option_changes_the_audio_and_speaker_filter_selects() {
    let Some(data) = shared_data() else {
        return;
    };
    let corpus = data.join("emodb");
    let only = |telephone| RateEvalOptions {
        telephone,
        speakers: vec!["03".into()],
    };
    let clean = evaluate_with_audio(&corpus, &corpus.join("wav"), &only(false)).unwrap();
    let line = evaluate_with_audio(&corpus, &corpus.join("wav"), &only(true)).unwrap();
    assert!(clean.items.iter().all(|i| i.file.starts_with("03")));
    assert_eq!(clean.files, line.files);
    assert!(
        clean
            .items
            .iter()
            .zip(&line.items)
            .any(|(a, b)| a.estimated_rate_syl_per_s != b.estimated_rate_syl_per_s)
    );
}
