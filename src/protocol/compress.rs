//! Body compression. The Java client compresses bodies over 4 KiB with zlib
//! (level 5) and marks them with the COMPRESSED sys flag; 5.x also puts the
//! compression type in sys flag bits 8..=10 (LZ4 1, ZSTD 2, ZLIB 3; 0 means
//! zlib, as 4.x writes it). Only zlib is supported, behind the
//! `compression` feature.
//!
//! # Limits
//! A compressed body is inflated incrementally, 32 KiB at a time, into a
//! buffer that never grows past the caller's limit: a small body that would
//! inflate to gigabytes (a "decompression bomb") ends in
//! [`ProtocolError::InflateLimit`] once the limit is reached, and nothing
//! beyond the limit is allocated. The limits the decoders use are in
//! [`crate::protocol::message`] ([`MAX_INFLATED_BODY`](crate::protocol::message::MAX_INFLATED_BODY)
//! per message, [`MAX_INFLATED_PER_RESPONSE`](crate::protocol::message::MAX_INFLATED_PER_RESPONSE)
//! per pull response).

use crate::error::ProtocolError;

/// Compression type bits for zlib in the sys flag (5.x).
pub const ZLIB_TYPE_BITS: i32 = 3 << 8;

/// Inflates a body compressed with compression type `kind` (sys flag bits
/// 8..=10) to at most `limit` bytes; more is [`ProtocolError::InflateLimit`]
/// (with `scope` "message").
pub fn inflate(data: &[u8], kind: i32, limit: usize) -> Result<Vec<u8>, ProtocolError> {
    match kind {
        0 | 3 => inflate_zlib(data, limit),
        1 => Err(ProtocolError::Compression("LZ4 bodies are not supported".into())),
        2 => Err(ProtocolError::Compression("ZSTD bodies are not supported".into())),
        other => Err(ProtocolError::Compression(format!("unknown compression type {other}"))),
    }
}

/// Output chunk of the incremental inflater.
#[cfg(feature = "compression")]
const INFLATE_CHUNK: usize = 32 * 1024;

#[cfg(feature = "compression")]
fn inflate_zlib(data: &[u8], limit: usize) -> Result<Vec<u8>, ProtocolError> {
    use miniz_oxide::inflate::stream::{inflate, InflateState};
    use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};

    let mut state = InflateState::new_boxed(DataFormat::Zlib);
    let mut chunk = vec![0u8; INFLATE_CHUNK];
    // Start small: the ratio is unknown, and a bomb must not reserve its
    // announced size up front.
    let mut out: Vec<u8> = Vec::with_capacity(data.len().saturating_mul(2).min(limit).min(1 << 20));
    let mut input = data;
    loop {
        let res = inflate(&mut state, input, &mut chunk, MZFlush::None);
        input = &input[res.bytes_consumed..];
        let n = res.bytes_written;
        if n > limit - out.len() {
            return Err(ProtocolError::InflateLimit { limit, scope: "message" });
        }
        if out.capacity() - out.len() < n {
            // Double, but never past the limit.
            let target = out.len().saturating_mul(2).max(out.len() + n).min(limit);
            out.reserve_exact(target - out.len());
        }
        out.extend_from_slice(&chunk[..n]);
        match res.status {
            Ok(MZStatus::StreamEnd) => return Ok(out),
            Ok(MZStatus::Ok) if n > 0 || res.bytes_consumed > 0 => {}
            Ok(_) | Err(MZError::Buf) => return Err(ProtocolError::Compression("zlib: truncated stream".into())),
            Err(e) => return Err(ProtocolError::Compression(format!("zlib: {e:?}"))),
        }
    }
}

#[cfg(not(feature = "compression"))]
fn inflate_zlib(_data: &[u8], _limit: usize) -> Result<Vec<u8>, ProtocolError> {
    Err(ProtocolError::Compression("zlib body received but the `compression` feature is off".into()))
}

/// Compresses with zlib at `level` (0..=10); `None` without the feature.
pub fn deflate_zlib(data: &[u8], level: u8) -> Option<Vec<u8>> {
    #[cfg(feature = "compression")]
    {
        Some(miniz_oxide::deflate::compress_to_vec_zlib(data, level))
    }
    #[cfg(not(feature = "compression"))]
    {
        let _ = (data, level);
        None
    }
}

#[cfg(all(test, feature = "compression"))]
mod tests {
    use super::*;

    #[test]
    fn zlib_round_trip_and_limit() {
        let data = vec![b'x'; 10_000];
        let z = deflate_zlib(&data, 5).unwrap();
        assert!(z.len() < 200);
        assert_eq!(inflate(&z, 0, 1 << 20).unwrap(), data);
        assert_eq!(inflate(&z, 3, 1 << 20).unwrap(), data);
        assert_eq!(inflate(&z, 0, 100), Err(ProtocolError::InflateLimit { limit: 100, scope: "message" }));
        assert_eq!(inflate(&z, 0, data.len()).unwrap(), data, "exactly the limit is fine");
        assert!(matches!(inflate(&z[..z.len() - 6], 0, 1 << 20), Err(ProtocolError::Compression(_))));
        assert!(inflate(b"not zlib", 0, 1 << 20).is_err());
        assert!(inflate(&z, 1, 1 << 20).is_err());
    }
}

#[cfg(all(test, feature = "compression"))]
mod bomb_tests {
    use super::*;

    #[test]
    fn a_bomb_stops_at_the_limit_without_reserving_more() {
        // 16 MiB of zeros deflate to about 16 KiB.
        let bomb = deflate_zlib(&vec![0u8; 16 << 20], 10).unwrap();
        assert!(bomb.len() < 25_000, "{}", bomb.len());
        let limit = 1 << 20;
        assert_eq!(inflate(&bomb, 0, limit), Err(ProtocolError::InflateLimit { limit, scope: "message" }));
        let ok = inflate(&bomb, 3, 16 << 20).unwrap();
        assert_eq!(ok.len(), 16 << 20);
        assert!(ok.capacity() <= 16 << 20, "capacity {} past the limit", ok.capacity());
    }
}
