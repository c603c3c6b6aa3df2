//! Pitch accuracy regression guard on the shared corpora (skipped when they are absent).
use std::path::{Path, PathBuf};

fn data_dir(relative: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data")
        .join(relative);
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipping: {} is absent", dir.display());
        None
    }
}

#[test]
fn telephone_pitch_stays_accurate() {
    // Bounds well above the measured figures (pitchref_world/tel GPE ~1.0 %, VDE ~12 %;
    // fda_tel/tel GPE ~0.5 %, VDE ~6.5 %) and near Praat's, so a real regression trips them.
    for (set, max_gpe_pct, max_vde_pct) in [
        ("pitchref_world/tel", 3.0, 17.0),
        ("fda_tel/tel", 2.0, 10.0),
    ] {
        let Some(dir) = data_dir(set) else {
            continue;
        };
        let report = attune_lab::eval::pitch::evaluate(&dir).expect("evaluation runs");
        eprintln!(
            "{set}: {} files, GPE {:.2} %, FPE {:.1} cents, VDE {:.2} %",
            report.files, report.gpe_pct, report.fpe_cents, report.vde_pct
        );
        assert!(report.files >= 10, "{set}: only {} files", report.files);
        assert!(
            report.gpe_pct < max_gpe_pct,
            "{set}: GPE {:.2} %",
            report.gpe_pct
        );
        assert!(
            report.vde_pct < max_vde_pct,
            "{set}: VDE {:.2} %",
            report.vde_pct
        );
        assert!(
            report.fpe_cents < 40.0,
            "{set}: FPE {:.1} cents",
            report.fpe_cents
        );
    }
}
