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

    /// All 256 mu-law codes as decoded by SoX 14.4.2
    /// (`sox -t raw -r 8000 -e mu-law -b 8 -c 1 codes.ul -t raw -e signed -b 16 out.raw`).
    #[rustfmt::skip]
    const SOX_MULAW: [i16; 256] = [
        -32124, -31100, -30076, -29052, -28028, -27004, -25980, -24956, -23932, -22908, -21884, -20860, -19836, -18812, -17788, -16764,
        -15996, -15484, -14972, -14460, -13948, -13436, -12924, -12412, -11900, -11388, -10876, -10364, -9852, -9340, -8828, -8316,
        -7932, -7676, -7420, -7164, -6908, -6652, -6396, -6140, -5884, -5628, -5372, -5116, -4860, -4604, -4348, -4092,
        -3900, -3772, -3644, -3516, -3388, -3260, -3132, -3004, -2876, -2748, -2620, -2492, -2364, -2236, -2108, -1980,
        -1884, -1820, -1756, -1692, -1628, -1564, -1500, -1436, -1372, -1308, -1244, -1180, -1116, -1052, -988, -924,
        -876, -844, -812, -780, -748, -716, -684, -652, -620, -588, -556, -524, -492, -460, -428, -396,
        -372, -356, -340, -324, -308, -292, -276, -260, -244, -228, -212, -196, -180, -164, -148, -132,
        -120, -112, -104, -96, -88, -80, -72, -64, -56, -48, -40, -32, -24, -16, -8, 0,
        32124, 31100, 30076, 29052, 28028, 27004, 25980, 24956, 23932, 22908, 21884, 20860, 19836, 18812, 17788, 16764,
        15996, 15484, 14972, 14460, 13948, 13436, 12924, 12412, 11900, 11388, 10876, 10364, 9852, 9340, 8828, 8316,
        7932, 7676, 7420, 7164, 6908, 6652, 6396, 6140, 5884, 5628, 5372, 5116, 4860, 4604, 4348, 4092,
        3900, 3772, 3644, 3516, 3388, 3260, 3132, 3004, 2876, 2748, 2620, 2492, 2364, 2236, 2108, 1980,
        1884, 1820, 1756, 1692, 1628, 1564, 1500, 1436, 1372, 1308, 1244, 1180, 1116, 1052, 988, 924,
        876, 844, 812, 780, 748, 716, 684, 652, 620, 588, 556, 524, 492, 460, 428, 396,
        372, 356, 340, 324, 308, 292, 276, 260, 244, 228, 212, 196, 180, 164, 148, 132,
        120, 112, 104, 96, 88, 80, 72, 64, 56, 48, 40, 32, 24, 16, 8, 0,
    ];

    /// All 256 A-law codes as decoded by SoX 14.4.2 (`-e a-law`).
    #[rustfmt::skip]
    const SOX_ALAW: [i16; 256] = [
        -5504, -5248, -6016, -5760, -4480, -4224, -4992, -4736, -7552, -7296, -8064, -7808, -6528, -6272, -7040, -6784,
        -2752, -2624, -3008, -2880, -2240, -2112, -2496, -2368, -3776, -3648, -4032, -3904, -3264, -3136, -3520, -3392,
        -22016, -20992, -24064, -23040, -17920, -16896, -19968, -18944, -30208, -29184, -32256, -31232, -26112, -25088, -28160, -27136,
        -11008, -10496, -12032, -11520, -8960, -8448, -9984, -9472, -15104, -14592, -16128, -15616, -13056, -12544, -14080, -13568,
        -344, -328, -376, -360, -280, -264, -312, -296, -472, -456, -504, -488, -408, -392, -440, -424,
        -88, -72, -120, -104, -24, -8, -56, -40, -216, -200, -248, -232, -152, -136, -184, -168,
        -1376, -1312, -1504, -1440, -1120, -1056, -1248, -1184, -1888, -1824, -2016, -1952, -1632, -1568, -1760, -1696,
        -688, -656, -752, -720, -560, -528, -624, -592, -944, -912, -1008, -976, -816, -784, -880, -848,
        5504, 5248, 6016, 5760, 4480, 4224, 4992, 4736, 7552, 7296, 8064, 7808, 6528, 6272, 7040, 6784,
        2752, 2624, 3008, 2880, 2240, 2112, 2496, 2368, 3776, 3648, 4032, 3904, 3264, 3136, 3520, 3392,
        22016, 20992, 24064, 23040, 17920, 16896, 19968, 18944, 30208, 29184, 32256, 31232, 26112, 25088, 28160, 27136,
        11008, 10496, 12032, 11520, 8960, 8448, 9984, 9472, 15104, 14592, 16128, 15616, 13056, 12544, 14080, 13568,
        344, 328, 376, 360, 280, 264, 312, 296, 472, 456, 504, 488, 408, 392, 440, 424,
        88, 72, 120, 104, 24, 8, 56, 40, 216, 200, 248, 232, 152, 136, 184, 168,
        1376, 1312, 1504, 1440, 1120, 1056, 1248, 1184, 1888, 1824, 2016, 1952, 1632, 1568, 1760, 1696,
        688, 656, 752, 720, 560, 528, 624, 592, 944, 912, 1008, 976, 816, 784, 880, 848,
    ];

    #[test]
    fn all_codes_match_sox() {
        for code in 0..=255u8 {
            assert_eq!(
                decode_mulaw(code),
                SOX_MULAW[code as usize],
                "mu-law {code:#04x}"
            );
            assert_eq!(
                decode_alaw(code),
                SOX_ALAW[code as usize],
                "a-law {code:#04x}"
            );
        }
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
    fn encoders_stay_within_one_step() {
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
