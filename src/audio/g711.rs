//! G.711 mu-law and A-law: decode tables for all 256 codes, and encoders (used to build
//! telephone-channel test audio and by the raw-stream decoder).
//!
//! The decode tables are built at compile time from the segment/step description in ITU-T G.711
//! (Tables 2a/2b): a mu-law code of segment `e` and step `m` decodes to
//! `4 * (2^e * (2m + 33) - 33)` and an A-law code to `8 * (2m + 1)` (segment 0) or
//! `8 * 2^(e-1) * (2m + 33)` (segments 1..=7), both on the 16-bit linear scale. The encoders are
//! the classic segment search (as in the reference `g711.c`), so that
//! `encode(decode(c)) == c` for every code except mu-law `0x7F` ("negative zero", which encodes
//! back to `0xFF`).

/// Number of codes of an 8-bit G.711 law.
const CODES: usize = 256;

/// Mu-law code -> 16-bit linear sample, for all 256 codes (0xFF -> 0, 0x00 -> -32124).
pub const MULAW_TO_LINEAR: [i16; CODES] = build_mulaw_table();

/// A-law code -> 16-bit linear sample, for all 256 codes (0xD5 -> 8, 0x55 -> -8).
pub const ALAW_TO_LINEAR: [i16; CODES] = build_alaw_table();

const fn build_mulaw_table() -> [i16; CODES] {
    let mut table = [0i16; CODES];
    let mut code = 0;
    while code < CODES {
        // Codes are transmitted inverted.
        let bits = !(code as u8);
        let negative = bits & 0x80 != 0;
        let segment = ((bits >> 4) & 0x07) as i32;
        let step = (bits & 0x0F) as i32;
        let magnitude = 4 * ((1 << segment) * (2 * step + 33) - 33);
        table[code] = if negative {
            -magnitude as i16
        } else {
            magnitude as i16
        };
        code += 1;
    }
    table
}

const fn build_alaw_table() -> [i16; CODES] {
    let mut table = [0i16; CODES];
    let mut code = 0;
    while code < CODES {
        // Even bits are inverted on the line; the sign bit set means positive.
        let bits = (code as u8) ^ 0x55;
        let positive = bits & 0x80 != 0;
        let segment = ((bits >> 4) & 0x07) as i32;
        let step = (bits & 0x0F) as i32;
        let magnitude = if segment == 0 {
            8 * (2 * step + 1)
        } else {
            8 * (1 << (segment - 1)) * (2 * step + 33)
        };
        table[code] = if positive {
            magnitude as i16
        } else {
            -magnitude as i16
        };
        code += 1;
    }
    table
}

/// Decodes one mu-law byte to a linear 16-bit sample.
#[inline]
pub fn decode_mulaw(code: u8) -> i16 {
    MULAW_TO_LINEAR[code as usize]
}

/// Decodes one A-law byte to a linear 16-bit sample.
#[inline]
pub fn decode_alaw(code: u8) -> i16 {
    ALAW_TO_LINEAR[code as usize]
}

/// Segment (0..=7) of a biased mu-law magnitude in `0x84..=0x7FFF`: how far its top bit sits
/// above bit 7.
#[inline]
fn mulaw_segment(biased: i32) -> i32 {
    let top_bit = 31 - biased.leading_zeros() as i32;
    (top_bit - 7).clamp(0, 7)
}

/// Encodes a linear 16-bit sample to mu-law (magnitudes above 32635 clip to the top step).
pub fn encode_mulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32_635;
    let mut magnitude = i32::from(sample);
    let mask: u8 = if magnitude < 0 {
        magnitude = -magnitude;
        0x7F
    } else {
        0xFF
    };
    let biased = magnitude.min(CLIP) + BIAS;
    let segment = mulaw_segment(biased);
    let step = (biased >> (segment + 3)) & 0x0F;
    (((segment << 4) | step) as u8) ^ mask
}

/// Encodes a linear 16-bit sample to A-law (the 13-bit magnitude saturates at the top step).
pub fn encode_alaw(sample: i16) -> u8 {
    // A-law works on 13-bit magnitudes; the arithmetic shift keeps the sign.
    let mut value = i32::from(sample) >> 3;
    let mask: u8 = if value >= 0 {
        0xD5
    } else {
        value = -value - 1;
        0x55
    };
    // Segment upper ends on the 13-bit scale.
    const SEGMENT_END: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];
    let Some(segment) = SEGMENT_END.iter().position(|&end| value <= end) else {
        return 0x7F ^ mask;
    };
    let shift = if segment < 2 { 1 } else { segment };
    let step = (value >> shift) & 0x0F;
    (((segment as i32) << 4 | step) as u8) ^ mask
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Textbook bit-manipulation mu-law decoder (independent of the table construction).
    fn oracle_mulaw(code: u8) -> i16 {
        let u = !code;
        let exponent = (u >> 4) & 0x07;
        let mantissa = i32::from(u & 0x0F);
        let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
        (if u & 0x80 != 0 { -magnitude } else { magnitude }) as i16
    }

    /// Textbook bit-manipulation A-law decoder.
    fn oracle_alaw(code: u8) -> i16 {
        let a = code ^ 0x55;
        let exponent = (a >> 4) & 0x07;
        let mantissa = i32::from(a & 0x0F);
        let magnitude = if exponent == 0 {
            (mantissa << 4) + 8
        } else {
            ((mantissa << 4) + 0x108) << (exponent - 1)
        };
        (if a & 0x80 != 0 { magnitude } else { -magnitude }) as i16
    }

    #[test]
    fn known_answers() {
        assert_eq!(decode_mulaw(0xFF), 0);
        assert_eq!(decode_mulaw(0x7F), 0);
        assert_eq!(decode_mulaw(0x00), -32_124);
        assert_eq!(decode_mulaw(0x80), 32_124);
        assert_eq!(decode_alaw(0xD5), 8);
        assert_eq!(decode_alaw(0x55), -8);
        assert_eq!(decode_alaw(0xAA), 32_256);
        assert_eq!(decode_alaw(0x2A), -32_256);
    }

    #[test]
    fn mulaw_all_codes_match_bit_formula() {
        for code in 0..=255u8 {
            assert_eq!(decode_mulaw(code), oracle_mulaw(code), "code {code:#04x}");
        }
    }

    #[test]
    fn alaw_all_codes_match_bit_formula() {
        for code in 0..=255u8 {
            assert_eq!(decode_alaw(code), oracle_alaw(code), "code {code:#04x}");
        }
    }

    #[test]
    fn mulaw_round_trips_every_code() {
        for code in 0..=255u8 {
            let back = encode_mulaw(decode_mulaw(code));
            // 0x7F is mu-law's negative zero: it decodes to 0, which encodes as 0xFF.
            let expected = if code == 0x7F { 0xFF } else { code };
            assert_eq!(back, expected, "code {code:#04x}");
        }
    }

    #[test]
    fn alaw_round_trips_every_code() {
        for code in 0..=255u8 {
            assert_eq!(encode_alaw(decode_alaw(code)), code, "code {code:#04x}");
        }
    }

    #[test]
    fn decode_tables_are_odd_symmetric_and_monotonic() {
        // Mu-law codes 0x80..=0xFF are positive, decreasing in magnitude as the code rises.
        for code in 0x80..=0xFEu8 {
            assert!(decode_mulaw(code) > decode_mulaw(code + 1));
            assert_eq!(decode_mulaw(code), -decode_mulaw(code & 0x7F));
        }
        for code in 0..=255u8 {
            assert_eq!(decode_alaw(code), -decode_alaw(code ^ 0x80));
        }
    }

    #[test]
    fn encoders_quantize_to_the_nearest_step_below() {
        // Every 16-bit value encodes to a code whose decoded value is within one step of it.
        for sample in (i16::MIN..=i16::MAX).step_by(7) {
            let mu = i32::from(decode_mulaw(encode_mulaw(sample)));
            let a = i32::from(decode_alaw(encode_alaw(sample)));
            let s = i32::from(sample);
            // Largest step is 1024 (mu-law) / 1024 (A-law) at full scale; plus clipping slack.
            assert!((mu - s).abs() <= 1024 + 700, "mu-law {sample} -> {mu}");
            assert!((a - s).abs() <= 1024 + 600, "a-law {sample} -> {a}");
            if s.abs() < 1000 {
                assert!((mu - s).abs() <= 32, "mu-law small {sample} -> {mu}");
                assert!((a - s).abs() <= 32, "a-law small {sample} -> {a}");
            }
        }
    }
}
