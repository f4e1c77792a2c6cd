//! Body compression. The Java client compresses bodies over 4 KiB with zlib
//! (level 5) and marks them with the COMPRESSED sys flag; 5.x also puts the
//! compression type in sys flag bits 8..=10 (LZ4 1, ZSTD 2, ZLIB 3; 0 means
//! zlib, as 4.x writes it). Only zlib is supported, behind the
//! `compression` feature.

use crate::error::ProtocolError;

/// Compression type bits for zlib in the sys flag (5.x).
pub const ZLIB_TYPE_BITS: i32 = 3 << 8;

/// Inflates a body compressed with compression type `kind` (sys flag bits 8..=10).
pub fn inflate(data: &[u8], kind: i32, limit: usize) -> Result<Vec<u8>, ProtocolError> {
    match kind {
        0 | 3 => inflate_zlib(data, limit),
        1 => Err(ProtocolError::Compression("LZ4 bodies are not supported".into())),
        2 => Err(ProtocolError::Compression("ZSTD bodies are not supported".into())),
        other => Err(ProtocolError::Compression(format!("unknown compression type {other}"))),
    }
}

#[cfg(feature = "compression")]
fn inflate_zlib(data: &[u8], limit: usize) -> Result<Vec<u8>, ProtocolError> {
    miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(data, limit)
        .map_err(|e| ProtocolError::Compression(format!("zlib: {:?}", e.status)))
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
        assert!(inflate(&z, 0, 100).is_err());
        assert!(inflate(b"not zlib", 0, 1 << 20).is_err());
        assert!(inflate(&z, 1, 1 << 20).is_err());
    }
}
