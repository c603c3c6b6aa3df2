//! Caller emotion and agent calmness from window-level functionals.
//!
//! - [`labels`]: the class mapping (angry = anger + disgust (+ frustrated), anxious = fear,
//!   sad = sadness + boredom, happy = happiness, neutral = neutral + calm; surprised is high
//!   arousal but not one of the 5 classes) and arousal/valence of each label.
//! - [`mlp`]: the network (shared tanh hidden layer, 5-class softmax head, arousal head).
//! - [`emotion`]: the model file ([`emotion::EmotionModel`]: format version, feature names,
//!   normalisation statistics, two networks — one on speaker-baseline z-scores, one on global
//!   z-scores — and typed load errors), training from labelled functionals, and prediction with
//!   valence, confidence, abstention and calmness.
//! - [`calmness`]: the documented agent-calmness formula.
//! - [`eval`]: leave-one-speaker-out evaluation (UAR, confusion matrices, calmness ROC AUC).

pub mod calmness;
pub mod emotion;
pub mod labels;
pub mod mlp;
