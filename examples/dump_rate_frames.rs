//! Development aid: dumps per-frame syllable inputs of every EmoDB file (clean and telephone)
//! as text, for offline tuning of the syllable detector.
//! `cargo run --release --example dump_rate_frames -- ../shared/data/emodb OUT_DIR`

use std::io::Write;
use std::path::PathBuf;

use attune::audio::{AudioReader, read_all};
use attune::dsp::vad::VoiceActivity;
use attune::eval::telephone::telephone_channel;
use attune::features::{AnalyzerConfig, ChannelAnalyzer, FrameFeatures};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let corpus = PathBuf::from(&args[1]);
    let out = PathBuf::from(&args[2]);
    std::fs::create_dir_all(&out).unwrap();
    let config = AnalyzerConfig::default();
    for entry in std::fs::read_dir(corpus.join("wav")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let audio = read_all(AudioReader::open(&path).unwrap()).unwrap();
        let samples = &audio.channels[0];
        let line = telephone_channel(samples, audio.sample_rate_hz).unwrap();
        for tag in ["clean", "tel"] {
            let mut file = std::fs::File::create(out.join(format!("{name}.{tag}.txt"))).unwrap();
            let mut write = |f: &FrameFeatures| {
                let act = match f.activity {
                    VoiceActivity::Speech => 2,
                    VoiceActivity::Noise => 1,
                    VoiceActivity::Silence => 0,
                };
                write!(
                    file,
                    "{} {:.2} {:.2} {} {:.3} {} {:.1} {}",
                    f.index,
                    f.loudness_db,
                    f.spectral.vowel_band_db,
                    u8::from(f.voiced),
                    f.voicing_strength,
                    act,
                    f.f0_hz,
                    u8::from(f.syllable_nucleus)
                )
                .unwrap();
                for b in f.spectral.band_db {
                    write!(file, " {b:.2}").unwrap();
                }
                writeln!(file).unwrap();
            };
            if tag == "clean" {
                let mut reader = AudioReader::open(&path).unwrap();
                attune::features::analyze_audio(&mut reader, &config, |_, f| write(f)).unwrap();
            } else {
                let mut analyzer = ChannelAnalyzer::new(0, &config);
                analyzer.push(&line, &mut write);
                analyzer.finish(&mut write);
            }
        }
    }
}
