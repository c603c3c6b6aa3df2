//! Fuzz target: arbitrary text as cue rules (`rules/cues.toml`, parsed and validated by
//! `CueRules::from_toml`) and as a QA rubric (`Rubric::from_toml`). Errors are fine; a panic
//! (e.g. a line lookup past the text, a NaN slipping through validation) is a bug.
#![no_main]

use attune_core::cues::CueRules;
use attune_qa::Rubric;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match CueRules::from_toml(text, "fuzz.toml") {
        Ok(rules) => {
            // Accepted rules must be usable: the derived rule views must not panic.
            let _ = rules.caller_upset_probability.level();
            let _ = rules.caller_escalating_rise.level();
            let _ = rules.agent_slow_to_respond.events();
            if let Some(onset) = &rules.caller_upset_onset {
                let _ = onset.strong();
            }
            if let Some(pressing) = &rules.agent_pressing_upset_caller {
                let _ = pressing.level();
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    match Rubric::from_toml(text, "fuzz.toml") {
        Ok(rubric) => {
            let _ = format!("{rubric:?}");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
