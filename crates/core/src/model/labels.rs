//! Emotion labels, the 5 call-center classes they map to, and their arousal and valence.

use serde::{Deserialize, Serialize};

/// The 5 classes, in the order of the model's probabilities.
pub const CLASS_NAMES: [&str; 5] = ["angry", "anxious", "sad", "happy", "neutral"];

/// Valence prototype of each class in -1..1 (valence = probability-weighted mean of these).
pub(crate) const CLASS_VALENCE: [f32; 5] = [-0.8, -0.6, -0.7, 0.8, 0.1];

/// A corpus label, normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Label {
    Anger,
    Disgust,
    Fear,
    Sadness,
    Boredom,
    Happiness,
    Neutral,
    Calm,
    Surprise,
}

impl Label {
    /// Parses a label as written in manifests and corpora (case-insensitive; RAVDESS and EmoDB
    /// names and the class names themselves are accepted).
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text.trim().to_ascii_lowercase().as_str() {
            "angry" | "anger" | "frustrated" | "frustration" => Self::Anger,
            "disgust" | "disgusted" => Self::Disgust,
            "anxious" | "fear" | "fearful" | "anxiety" => Self::Fear,
            "sad" | "sadness" => Self::Sadness,
            "boredom" | "bored" => Self::Boredom,
            "happy" | "happiness" | "joy" => Self::Happiness,
            "neutral" => Self::Neutral,
            "calm" => Self::Calm,
            "surprised" | "surprise" => Self::Surprise,
            _ => return None,
        })
    }

    /// RAVDESS emotion code (`EE` in `03-01-EE-...`).
    pub fn from_ravdess_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => Self::Neutral,
            2 => Self::Calm,
            3 => Self::Happiness,
            4 => Self::Sadness,
            5 => Self::Anger,
            6 => Self::Fear,
            7 => Self::Disgust,
            8 => Self::Surprise,
            _ => return None,
        })
    }

    /// Index into [`CLASS_NAMES`], or None for labels outside the 5 classes (surprise).
    pub fn class(self) -> Option<usize> {
        match self {
            Self::Anger | Self::Disgust => Some(0),
            Self::Fear => Some(1),
            Self::Sadness | Self::Boredom => Some(2),
            Self::Happiness => Some(3),
            Self::Neutral | Self::Calm => Some(4),
            Self::Surprise => None,
        }
    }

    /// High (true) or low arousal.
    pub fn high_arousal(self) -> bool {
        matches!(
            self,
            Self::Anger | Self::Disgust | Self::Fear | Self::Happiness | Self::Surprise
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Anger => "anger",
            Self::Disgust => "disgust",
            Self::Fear => "fear",
            Self::Sadness => "sadness",
            Self::Boredom => "boredom",
            Self::Happiness => "happiness",
            Self::Neutral => "neutral",
            Self::Calm => "calm",
            Self::Surprise => "surprise",
        }
    }
}

/// The model's class name equal to `label`, if any.
pub fn class_name(label: &str) -> Option<&'static str> {
    CLASS_NAMES.iter().copied().find(|c| *c == label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping() {
        assert_eq!(Label::parse("Disgust").and_then(Label::class), Some(0));
        assert_eq!(Label::parse("calm").and_then(Label::class), Some(4));
        assert_eq!(Label::from_ravdess_code(8).and_then(Label::class), None);
        assert!(Label::Surprise.high_arousal());
        assert!(!Label::Sadness.high_arousal());
        assert_eq!(Label::parse("bogus"), None);
    }
}
