//! Criterion benches of the per-channel prosody track (filled in as stages land).
use criterion::{Criterion, criterion_group, criterion_main};

fn bench_placeholder(c: &mut Criterion) {
    c.bench_function("noop", |b| b.iter(|| std::hint::black_box(1 + 1)));
}

criterion_group!(benches, bench_placeholder);
criterion_main!(benches);
