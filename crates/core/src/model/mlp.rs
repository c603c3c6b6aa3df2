//! A small multi-task network in plain ndarray: one tanh hidden layer shared by a softmax head
//! over the 5 emotion classes and a sigmoid head for high arousal. Trained full-batch with Adam,
//! L2 weight decay and class-balanced losses (each class, and each arousal side, weighs the same
//! in total whatever its number of examples). Examples without a class (RAVDESS "surprised")
//! train the arousal head only.

use ndarray::{Array1, Array2, Axis};
use serde::{Deserialize, Serialize};

use crate::rng::SplitMix64;

/// Emotion classes of the softmax head.
pub const CLASS_COUNT: usize = 5;

/// Hyper-parameters (see the model card for how they were chosen).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub hidden: usize,
    pub epochs: usize,
    pub learning_rate: f32,
    pub weight_decay: f32,
    pub seed: u64,
    /// Networks per head, trained from different random starts and averaged.
    #[serde(default = "default_ensemble")]
    pub ensemble: usize,
    /// Baselines drawn per training speaker for the speaker network (random subsets of the
    /// speaker's files: all of them, random ones, one emotion, mostly calm, mostly upset).
    #[serde(default = "default_baseline_draws")]
    pub baseline_draws: usize,
    /// Standard deviation of Gaussian noise added to the standardised inputs, drawn afresh
    /// every epoch (0 = none; default 0.3, chosen on the leave-one-speaker-out figures).
    #[serde(default)]
    pub input_noise: f32,
    /// The speaker network does not see the window's level against the baseline (the
    /// gain-dependent features' speaker z-scores are zeroed): for recordings whose level was
    /// normalised file by file.
    #[serde(default)]
    pub level_blind_baseline: bool,
}

fn default_ensemble() -> usize {
    3
}

fn default_baseline_draws() -> usize {
    16
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            hidden: 32,
            epochs: 400,
            learning_rate: 0.01,
            weight_decay: 1e-3,
            seed: 7,
            ensemble: default_ensemble(),
            baseline_draws: default_baseline_draws(),
            input_noise: 0.3,
            level_blind_baseline: false,
        }
    }
}

/// One training example: input vector, class (if any), high arousal (if known).
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub input: Vec<f32>,
    pub class: Option<usize>,
    pub high_arousal: Option<bool>,
}

/// Output of the network for one input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MlpOutput {
    pub probabilities: [f32; CLASS_COUNT],
    /// Probability of high arousal.
    pub arousal: f32,
}

/// Weights of the network.
#[derive(Debug, Clone, PartialEq)]
pub struct Mlp {
    /// inputs x hidden
    pub w1: Array2<f32>,
    pub b1: Array1<f32>,
    /// hidden x classes
    pub w_class: Array2<f32>,
    pub b_class: Array1<f32>,
    /// hidden
    pub w_arousal: Array1<f32>,
    pub b_arousal: f32,
}

/// Adam moment buffers for one parameter array (flattened).
struct AdamState {
    m: Vec<f32>,
    v: Vec<f32>,
}

impl AdamState {
    fn new(len: usize) -> Self {
        Self {
            m: vec![0.0; len],
            v: vec![0.0; len],
        }
    }

    fn step(&mut self, param: &mut [f32], grad: &[f32], lr: f32, t: i32) {
        const B1: f32 = 0.9;
        const B2: f32 = 0.999;
        const EPS: f32 = 1e-8;
        let c1 = 1.0 - B1.powi(t);
        let c2 = 1.0 - B2.powi(t);
        for i in 0..param.len() {
            self.m[i] = B1 * self.m[i] + (1.0 - B1) * grad[i];
            self.v[i] = B2 * self.v[i] + (1.0 - B2) * grad[i] * grad[i];
            param[i] -= lr * (self.m[i] / c1) / ((self.v[i] / c2).sqrt() + EPS);
        }
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

impl Mlp {
    /// Random initial weights (Glorot-scaled normal), deterministic in `seed`.
    pub fn new(inputs: usize, hidden: usize, seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed);
        let mut normal = |fan_in: usize, fan_out: usize| {
            let scale = (2.0 / (fan_in + fan_out) as f64).sqrt();
            Array2::from_shape_fn((fan_in, fan_out), |_| (scale * rng.gaussian()) as f32)
        };
        let w1 = normal(inputs, hidden);
        let w_class = normal(hidden, CLASS_COUNT);
        let w_arousal = normal(hidden, 1).column(0).to_owned();
        Self {
            w1,
            b1: Array1::zeros(hidden),
            w_class,
            b_class: Array1::zeros(CLASS_COUNT),
            w_arousal,
            b_arousal: 0.0,
        }
    }

    pub fn inputs(&self) -> usize {
        self.w1.nrows()
    }

    pub fn hidden(&self) -> usize {
        self.w1.ncols()
    }

    /// Trains a new network on `examples` (all inputs of the same length).
    pub fn train(examples: &[Example], config: &TrainConfig) -> Self {
        Self::train_with(examples, config, |_, _| {})
    }

    /// Trains a new network on `examples`, letting `redraw(epoch, x)` overwrite the input
    /// matrix (one row per example, in order; it starts as the examples' inputs) before every
    /// epoch — data augmentation that draws a fresh view of each example per epoch.
    pub(crate) fn train_with(
        examples: &[Example],
        config: &TrainConfig,
        mut redraw: impl FnMut(usize, &mut Array2<f32>),
    ) -> Self {
        let inputs = examples.first().map_or(0, |e| e.input.len());
        let n = examples.len();
        let mut net = Self::new(inputs, config.hidden, config.seed);
        if n == 0 {
            return net;
        }
        let mut x = Array2::from_shape_fn((n, inputs), |(i, j)| examples[i].input[j]);
        // Class-balanced weights, normalised so the weights of labelled rows sum to 1.
        let mut class_counts = [0usize; CLASS_COUNT];
        let mut arousal_counts = [0usize; 2];
        for e in examples {
            if let Some(c) = e.class {
                class_counts[c] += 1;
            }
            if let Some(a) = e.high_arousal {
                arousal_counts[usize::from(a)] += 1;
            }
        }
        let present_classes = class_counts.iter().filter(|&&c| c > 0).count().max(1);
        let present_arousal = arousal_counts.iter().filter(|&&c| c > 0).count().max(1);
        let mut targets = Array2::<f32>::zeros((n, CLASS_COUNT));
        let mut class_weight = Array1::<f32>::zeros(n);
        let mut arousal_target = Array1::<f32>::zeros(n);
        let mut arousal_weight = Array1::<f32>::zeros(n);
        for (i, e) in examples.iter().enumerate() {
            if let Some(c) = e.class {
                targets[[i, c]] = 1.0;
                class_weight[i] = 1.0 / (present_classes * class_counts[c]) as f32;
            }
            if let Some(a) = e.high_arousal {
                arousal_target[i] = f32::from(u8::from(a));
                arousal_weight[i] = 1.0 / (present_arousal * arousal_counts[usize::from(a)]) as f32;
            }
        }

        let mut adam_w1 = AdamState::new(net.w1.len());
        let mut adam_b1 = AdamState::new(net.b1.len());
        let mut adam_wc = AdamState::new(net.w_class.len());
        let mut adam_bc = AdamState::new(net.b_class.len());
        let mut adam_wa = AdamState::new(net.w_arousal.len());
        let mut adam_ba = AdamState::new(1);
        let lambda = config.weight_decay;
        for epoch in 1..=config.epochs {
            redraw(epoch, &mut x);
            let t = epoch as i32;
            let h = (x.dot(&net.w1) + &net.b1).mapv(f32::tanh);
            let mut logits = h.dot(&net.w_class) + &net.b_class;
            for mut row in logits.rows_mut() {
                let max = row.fold(f32::NEG_INFINITY, |a, &b| a.max(b));
                row.mapv_inplace(|v| (v - max).exp());
                let sum = row.sum();
                row.mapv_inplace(|v| v / sum);
            }
            // d loss / d logits = w_i (p - y)
            let mut d_logits = logits - &targets;
            for (mut row, &w) in d_logits.rows_mut().into_iter().zip(class_weight.iter()) {
                row.mapv_inplace(|v| v * w);
            }
            let a = (h.dot(&net.w_arousal) + net.b_arousal).mapv(sigmoid);
            let d_a = (a - &arousal_target) * &arousal_weight;

            let g_wc = h.t().dot(&d_logits) + &(&net.w_class * lambda);
            let g_bc = d_logits.sum_axis(Axis(0));
            let g_wa = h.t().dot(&d_a) + &(&net.w_arousal * lambda);
            let g_ba = d_a.sum();
            let mut d_h = d_logits.dot(&net.w_class.t());
            for (mut row, &da) in d_h.rows_mut().into_iter().zip(d_a.iter()) {
                row.scaled_add(da, &net.w_arousal);
            }
            let d_z = d_h * &h.mapv(|v| 1.0 - v * v);
            let g_w1 = x.t().dot(&d_z) + &(&net.w1 * lambda);
            let g_b1 = d_z.sum_axis(Axis(0));

            let lr = config.learning_rate;
            step(
                &mut adam_w1,
                net.w1.as_slice_mut(),
                g_w1.as_standard_layout().as_slice(),
                lr,
                t,
            );
            step(&mut adam_b1, net.b1.as_slice_mut(), g_b1.as_slice(), lr, t);
            step(
                &mut adam_wc,
                net.w_class.as_slice_mut(),
                g_wc.as_standard_layout().as_slice(),
                lr,
                t,
            );
            step(
                &mut adam_bc,
                net.b_class.as_slice_mut(),
                g_bc.as_slice(),
                lr,
                t,
            );
            step(
                &mut adam_wa,
                net.w_arousal.as_slice_mut(),
                g_wa.as_slice(),
                lr,
                t,
            );
            let mut ba = [net.b_arousal];
            adam_ba.step(&mut ba, &[g_ba], lr, t);
            net.b_arousal = ba[0];
        }
        net
    }

    /// Forward pass for one input (of length [`Mlp::inputs`]; missing values read as 0).
    pub fn predict(&self, input: &[f32]) -> MlpOutput {
        let hidden = self.hidden();
        let mut h = [0f32; 256];
        let hidden = hidden.min(h.len());
        for (hj, &b) in h.iter_mut().zip(self.b1.iter()) {
            *hj = b;
        }
        // Row by row: each input adds its (contiguous) row of weights to the hidden sums.
        if let Some(w1) = self.w1.as_slice() {
            for (&x, row) in input.iter().zip(w1.chunks_exact(hidden.max(1))) {
                for (hj, &w) in h[..hidden].iter_mut().zip(row) {
                    *hj += x * w;
                }
            }
        } else {
            for (&x, row) in input.iter().zip(self.w1.rows()) {
                for (hj, &w) in h[..hidden].iter_mut().zip(row.iter()) {
                    *hj += x * w;
                }
            }
        }
        for hj in &mut h[..hidden] {
            *hj = hj.tanh();
        }
        let mut logits = [0f32; CLASS_COUNT];
        for (c, l) in logits.iter_mut().enumerate() {
            let mut z = self.b_class[c];
            for (j, &hj) in h.iter().enumerate().take(hidden) {
                z += hj * self.w_class[[j, c]];
            }
            *l = z;
        }
        let max = logits.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        let mut probabilities = logits.map(|l| (l - max).exp());
        let sum: f32 = probabilities.iter().sum();
        for p in &mut probabilities {
            *p /= sum;
        }
        let mut a = self.b_arousal;
        for (j, &hj) in h.iter().enumerate().take(hidden) {
            a += hj * self.w_arousal[j];
        }
        MlpOutput {
            probabilities,
            arousal: sigmoid(a),
        }
    }
}

fn step(state: &mut AdamState, param: Option<&mut [f32]>, grad: Option<&[f32]>, lr: f32, t: i32) {
    if let (Some(param), Some(grad)) = (param, grad) {
        state.step(param, grad, lr, t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Five Gaussian blobs in 6-D; arousal = class in {0, 1, 3}.
    fn toy(n_per_class: usize, seed: u64) -> Vec<Example> {
        let mut rng = SplitMix64::new(seed);
        let mut out = Vec::new();
        for c in 0..CLASS_COUNT {
            for _ in 0..n_per_class {
                let input = (0..6)
                    .map(|d| {
                        let centre = if d == c { 3.0 } else { 0.0 };
                        (centre + 0.5 * rng.gaussian()) as f32
                    })
                    .collect();
                out.push(Example {
                    input,
                    class: Some(c),
                    high_arousal: Some(matches!(c, 0 | 1 | 3)),
                });
            }
        }
        out
    }

    #[test]
    fn separable_toy_problem_is_learnt() {
        let train = toy(40, 1);
        let test = toy(40, 2);
        let net = Mlp::train(&train, &TrainConfig::default());
        let mut correct = 0;
        let mut arousal_correct = 0;
        for e in &test {
            let out = net.predict(&e.input);
            let best = (0..CLASS_COUNT)
                .max_by(|&a, &b| out.probabilities[a].total_cmp(&out.probabilities[b]))
                .unwrap_or(0);
            correct += usize::from(Some(best) == e.class);
            arousal_correct += usize::from(Some(out.arousal > 0.5) == e.high_arousal);
        }
        assert!(correct >= 198, "{correct}/200");
        assert!(arousal_correct >= 198, "{arousal_correct}/200");
        let p: f32 = net.predict(&test[0].input).probabilities.iter().sum();
        assert!((p - 1.0).abs() < 1e-5);
    }
}
