//! Fuzz target: the gRPC ingest session fed an arbitrary sequence of `IngestRequest`s (header,
//! audio chunk, end, empty; any order, any field values), driven exactly as
//! `Shared::ingest`/`ingest_audio` in crates/service/src/grpc.rs drive it, minus the network,
//! the hub and the thread pool: the first message must be a valid header (`CallSpec::
//! from_header`), then each chunk is checked (`check_chunk`), reordered (`Sequencer`) and
//! analysed (`SessionCore`, the real analyzer with the embedded model and default rules) until
//! the end, an error or the input runs out; then the call is finished.
//!
//! Invariants: no panic; chunks come out of the sequencer consecutive and in order; at most
//! `reorder_window_chunks` are held; the time analysed is finite and never more than the audio
//! pushed.
#![no_main]

use std::sync::{Arc, LazyLock};

use attune_core::cues::CueRules;
use attune_core::model::emotion::EmotionModel;
use attune_service::pb::{self, Bytes, ingest_request::Msg};
use attune_service::session::{CallSpec, Layout, Sequencer, SessionCore};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

static MODEL: LazyLock<Arc<EmotionModel>> = LazyLock::new(|| Arc::new(EmotionModel::embedded()));
static RULES: LazyLock<CueRules> = LazyLock::new(CueRules::default);

/// Most audio bytes analysed per input (keeps one execution short).
const MAX_AUDIO_BYTES: usize = 32 * 1024;
const RATES: [u32; 6] = [8_000, 16_000, 11_025, 48_000, 7_999, 48_001];

fn text(u: &mut Unstructured) -> Result<String> {
    Ok(match u.int_in_range(0u8..=3)? {
        0 => String::new(),
        1 => "call-1".into(),
        _ => u.arbitrary()?,
    })
}

fn header(u: &mut Unstructured) -> Result<pb::CallHeader> {
    Ok(pb::CallHeader {
        call_id: text(u)?,
        agent_id: text(u)?,
        team: text(u)?,
        sample_rate_hz: if u.ratio(7u8, 8)? {
            RATES[u.choose_index(RATES.len())?]
        } else {
            u.arbitrary()?
        },
        encoding: if u.ratio(7u8, 8)? {
            u.int_in_range(0..=5)?
        } else {
            u.arbitrary()?
        },
        layout: if u.ratio(7u8, 8)? {
            u.int_in_range(0..=3)?
        } else {
            u.arbitrary()?
        },
        agent_channel: if u.ratio(7u8, 8)? {
            u.int_in_range(0..=2)?
        } else {
            u.arbitrary()?
        },
    })
}

fn chunk(u: &mut Unstructured, next: &mut u64, budget: &mut usize) -> Result<pb::AudioChunk> {
    let seq = match u.int_in_range(0u8..=7)? {
        0..=3 => *next,
        4 => next.saturating_sub(u.int_in_range(0..=3)?),
        5 => *next + u.int_in_range(0..=20)?,
        _ => u.arbitrary()?,
    };
    *next = seq.saturating_add(1);
    let channel = if u.ratio(7u8, 8)? {
        u.int_in_range(0..=1)?
    } else {
        u.arbitrary()?
    };
    // A pattern repeated: long chunks (seconds of audio) from a few input bytes.
    let len = u.int_in_range(0usize..=64)?;
    let pattern = u.bytes(len)?;
    let repeat = usize::from(u.int_in_range(1u16..=128)?);
    let mut audio = Vec::new();
    if !pattern.is_empty() {
        let total = (pattern.len() * repeat).min(*budget);
        audio = pattern.iter().copied().cycle().take(total).collect();
        if u.arbitrary()? {
            audio.truncate(total & !7);
        }
    }
    *budget -= audio.len();
    Ok(pb::AudioChunk {
        seq,
        channel,
        audio: Bytes::from(audio),
    })
}

fn request(u: &mut Unstructured, next: &mut u64, budget: &mut usize) -> Result<pb::IngestRequest> {
    let msg = match u.int_in_range(0u8..=15)? {
        0 => Some(Msg::Header(header(u)?)),
        1 => Some(Msg::End(pb::EndCall {})),
        2 => None,
        _ => Some(Msg::Audio(chunk(u, next, budget)?)),
    };
    Ok(pb::IngestRequest { msg })
}

fn run(u: &mut Unstructured) -> Result<()> {
    let window = usize::from(u.int_in_range(0u8..=32)?);
    // Setting up the analyzer dominates a short input: one input in four analyses its audio,
    // the rest drive the protocol (header, checks, sequencing) alone, many times faster.
    let analyse = u.ratio(1u8, 4)?;
    let mut next_guess = 0u64;
    let mut budget = MAX_AUDIO_BYTES;
    // The first message: anything, as the client sends it; only a valid header goes on.
    let first = if u.ratio(15u8, 16)? {
        pb::IngestRequest {
            msg: Some(Msg::Header(header(u)?)),
        }
    } else {
        request(u, &mut next_guess, &mut budget)?
    };
    let Some(Msg::Header(h)) = first.msg else {
        return Ok(());
    };
    let Ok(spec) = CallSpec::from_header(&h) else {
        return Ok(());
    };
    spec.validate()
        .expect("a header accepted by from_header validates");
    let spec = Arc::new(spec);
    let mut core = if analyse {
        let Ok(core) = SessionCore::new(spec.clone(), RULES.clone(), MODEL.clone(), 1.0) else {
            return Ok(());
        };
        Some(core)
    } else {
        None
    };
    let mut sequencer = Sequencer::new(window);
    let mut ready = Vec::new();
    let (mut new_chunks, mut released) = (0u64, 0u64);
    let mut samples = [0u64; 2];
    let bytes_per_sample = spec.encoding.bytes_per_sample();
    while !u.is_empty() {
        let request = request(u, &mut next_guess, &mut budget)?;
        let chunk = match request.msg {
            Some(Msg::Audio(chunk)) => chunk,
            // End, a second header, an empty request: the call ends (ended or error).
            _ => break,
        };
        if spec.check_chunk(&chunk).is_err() {
            break;
        }
        let before = sequencer.next_seq();
        match sequencer.accept(chunk, &mut ready) {
            Err(_) => break,
            Ok(true) => new_chunks += 1,
            Ok(false) => {}
        }
        assert!(sequencer.next_seq() >= before);
        for (i, c) in ready.iter().enumerate() {
            assert_eq!(c.seq, before + i as u64, "chunks out of order");
        }
        assert_eq!(sequencer.next_seq(), before + ready.len() as u64);
        released += ready.len() as u64;
        assert!(
            new_chunks - released <= window as u64,
            "more than the window held"
        );
        if ready.is_empty() {
            continue;
        }
        for c in &ready {
            match spec.layout {
                Layout::InterleavedStereo => {
                    let frames = (c.audio.len() / (2 * bytes_per_sample)) as u64;
                    samples[0] += frames;
                    samples[1] += frames;
                }
                Layout::TwoMono => {
                    samples[c.channel as usize] += (c.audio.len() / bytes_per_sample) as u64;
                }
            }
        }
        if let Some(core) = &mut core {
            core.push_chunks(&mut ready);
            let analysed = core.analysed_s();
            let pushed_s = samples[0].max(samples[1]) as f64 / f64::from(spec.sample_rate_hz);
            assert!(analysed.is_finite() && analysed >= 0.0);
            assert!(
                analysed <= pushed_s + 1e-6,
                "analysed {analysed} s of {pushed_s} s"
            );
        }
        ready.clear();
    }
    if let Some(core) = &mut core {
        let outcome = core.finish();
        let _ = format!("{outcome:?}");
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
