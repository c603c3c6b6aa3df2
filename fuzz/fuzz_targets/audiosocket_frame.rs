//! Fuzz target: Asterisk AudioSocket frames through `parse_frame`, as the connection reads
//! them: frame after frame from one buffer. Invariants: no panic, a parsed frame takes exactly
//! its 3 header bytes plus payload, re-encodes to the same bytes, and honours the payload
//! limit; UUIDs pair (`pair_key`) and print (`uuid_text`) without panicking.
#![no_main]

use attune_service::ingest::audiosocket::{
    DEFAULT_MAX_PAYLOAD_BYTES, Frame, encode_frame, pair_key, parse_frame, uuid_text,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the payload limit: the default or a small one.
    let Some((&config, mut buf)) = data.split_first() else {
        return;
    };
    let max = if config & 1 == 0 {
        DEFAULT_MAX_PAYLOAD_BYTES
    } else {
        usize::from(config)
    };
    let mut encoded = Vec::new();
    loop {
        match parse_frame(buf, max) {
            Ok(None) => break,
            Err(e) => {
                let _ = e.to_string();
                break;
            }
            Ok(Some((frame, used))) => {
                assert!(used >= 3 && used <= buf.len());
                let len = usize::from(u16::from_be_bytes([buf[1], buf[2]]));
                assert_eq!(used, 3 + len);
                assert!(len <= max);
                match frame {
                    Frame::Uuid(uuid) => {
                        let (key, party) = pair_key(uuid);
                        assert!(party <= 1);
                        assert_eq!(key[15] & 1, 0);
                        assert_eq!(uuid_text(&uuid).len(), 36);
                    }
                    Frame::Audio { rate_hz, pcm } => {
                        assert!((8000..=48_000).contains(&rate_hz));
                        assert_eq!(pcm.len() % 2, 0);
                        assert_eq!(pcm.len(), len);
                    }
                    Frame::Error(payload) => assert_eq!(payload.len(), len),
                    Frame::Hangup | Frame::Dtmf(_) => {}
                }
                encoded.clear();
                encode_frame(buf[0], &buf[3..used], &mut encoded);
                assert_eq!(&encoded[..], &buf[..used]);
                buf = &buf[used..];
            }
        }
    }
});
