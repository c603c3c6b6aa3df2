//! Prints the cue and emotion events of a recorded call (development aid).
use attune::call::{CallConfig, CallEvent, analyze_recording};
use std::sync::Arc;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = std::path::Path::new(&args[1]);
    let agent_channel: usize = args.get(2).map_or(0, |a| a.parse().unwrap());
    let model = Arc::new(
        attune::model::emotion::EmotionModel::load(std::path::Path::new("models/emotion.json"))
            .unwrap(),
    );
    let mut reader = attune::audio::AudioReader::open(path).unwrap();
    let config = CallConfig {
        agent_channel,
        ..CallConfig::default()
    };
    let t = std::time::Instant::now();
    let outcome = analyze_recording(&mut reader, &args[1], config, model, |e| match e {
        CallEvent::Cue(c) => println!(
            "cue {:>7.2} {:?} {:?} {:?}",
            c.t_s,
            c.event,
            c.kind,
            c.evidence
                .values
                .iter()
                .map(|v| (v.name, (v.value * 100.0).round() / 100.0))
                .collect::<Vec<_>>()
        ),
        CallEvent::Emotion(p) => println!(
            "emo {:>7.2} {:?} {:?} ar {:.2} calm {:.0} {:?}",
            p.t_s, p.party, p.emotion, p.arousal, p.calmness, p.normalisation
        ),
        _ => {}
    })
    .unwrap();
    eprintln!(
        "{:.1} s of call in {:?}; {} cues",
        outcome.duration_s,
        t.elapsed(),
        outcome.cues.len()
    );
}
