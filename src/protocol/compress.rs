//! Body compression. The Java client compresses bodies of 4 KiB or more with zlib
//! (level 5) and marks them with the COMPRESSED sys flag; 5.x also puts the
//! compression type in sys flag bits 8..=10 (LZ4 1, ZSTD 2, ZLIB 3; 0 means
//! zlib, as 4.x writes it). Only zlib is supported, behind the
//! `compression` feature.
//!
//! # Limits
//! A compressed body is inflated incrementally into a buffer that starts
//! small, doubles as needed and never grows past the caller's limit (plus
//! one byte, which tells a body over the limit from one that fits it): a small body that would
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

#[cfg(feature = "compression")]
fn inflate_zlib(data: &[u8], limit: usize) -> Result<Vec<u8>, ProtocolError> {
    use miniz_oxide::inflate::core::{decompress, inflate_flags, DecompressorOxide};
    use miniz_oxide::inflate::TINFLStatus;

    let flags = inflate_flags::TINFL_FLAG_PARSE_ZLIB_HEADER | inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
    let mut decomp = Box::<DecompressorOxide>::default();
    // The output buffer starts small (the ratio is unknown, and a bomb must
    // not reserve its announced size up front) and doubles as the stream
    // asks for room, never past `limit + 1` bytes: a byte past the limit
    // proves the body is over it.
    let cap = limit.saturating_add(1);
    let mut out = vec![0u8; data.len().saturating_mul(4).clamp(1024, 1 << 20).min(cap)];
    let (mut in_pos, mut out_pos) = (0, 0);
    loop {
        let (status, used, written) = decompress(&mut decomp, &data[in_pos..], &mut out, out_pos, flags);
        in_pos += used;
        out_pos += written;
        if out_pos > limit {
            return Err(ProtocolError::InflateLimit { limit, scope: "message" });
        }
        match status {
            TINFLStatus::Done => {
                out.truncate(out_pos);
                return Ok(out);
            }
            TINFLStatus::HasMoreOutput if out.len() < cap => {
                let len = out.len();
                let target = len.saturating_mul(2).max(len + 1024).min(cap);
                out.reserve_exact(target - len);
                out.resize(target, 0);
            }
            TINFLStatus::HasMoreOutput => return Err(ProtocolError::InflateLimit { limit, scope: "message" }),
            TINFLStatus::NeedsMoreInput | TINFLStatus::FailedCannotMakeProgress => {
                return Err(ProtocolError::Compression("zlib: truncated stream".into()))
            }
            other => return Err(ProtocolError::Compression(format!("zlib: {other:?}"))),
        }
    }
}

#[cfg(not(feature = "compression"))]
fn inflate_zlib(_data: &[u8], _limit: usize) -> Result<Vec<u8>, ProtocolError> {
    Err(ProtocolError::Compression("zlib body received but the `compression` feature is off".into()))
}

/// A zlib compressor kept from one body to the next: [`deflate_zlib`] sets
/// up (and zeroes) a few hundred KiB of match tables on every call, which
/// costs more than compressing a 4 KiB body itself; a `Deflater` sets them
/// up once and only resets them. The output is byte for byte that of
/// [`deflate_zlib`]; `None` without the `compression` feature.
///
/// ```
/// use rocketmq_blocking::protocol::compress::{deflate_zlib, Deflater};
///
/// let body: Vec<u8> = (0..5000u32).map(|i| b'a' + (i % 26) as u8).collect();
/// let mut d = Deflater::default();
/// assert_eq!(d.deflate(&body, 5), deflate_zlib(&body, 5));
/// assert_eq!(d.deflate(&body[..4096], 5), deflate_zlib(&body[..4096], 5));
/// ```
#[derive(Default)]
pub struct Deflater {
    #[cfg(feature = "compression")]
    state: Option<(u32, Box<miniz_oxide::deflate::core::CompressorOxide>)>,
}

impl std::fmt::Debug for Deflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deflater").finish_non_exhaustive()
    }
}

impl Deflater {
    /// Compresses with zlib at `level` (0..=10), as [`deflate_zlib`] does.
    pub fn deflate(&mut self, data: &[u8], level: u8) -> Option<Vec<u8>> {
        #[cfg(feature = "compression")]
        {
            use miniz_oxide::deflate::core::{
                compress, create_comp_flags_from_zip_params, CompressorOxide, TDEFLFlush, TDEFLStatus,
            };
            // Window bits > 0: the zlib header and checksum, as compress_to_vec_zlib writes them.
            let flags = create_comp_flags_from_zip_params(i32::from(level), 1, 0);
            let c = match &mut self.state {
                Some((f, c)) if *f == flags => {
                    c.reset();
                    c
                }
                slot => &mut slot.insert((flags, Box::new(CompressorOxide::new(flags)))).1,
            };
            let mut input = data;
            let mut out = vec![0; (data.len() / 2).max(2)];
            let mut pos = 0;
            loop {
                let (status, read, written) = compress(c, input, &mut out[pos..], TDEFLFlush::Finish);
                pos += written;
                match status {
                    TDEFLStatus::Done => {
                        out.truncate(pos);
                        return Some(out);
                    }
                    TDEFLStatus::Okay if read <= input.len() => {
                        input = &input[read..];
                        if out.len() - pos < 30 {
                            out.resize(out.len() * 2, 0);
                        }
                    }
                    // Not expected from miniz_oxide; start afresh the one-off way.
                    _ => {
                        self.state = None;
                        return deflate_zlib(data, level);
                    }
                }
            }
        }
        #[cfg(not(feature = "compression"))]
        {
            deflate_zlib(data, level)
        }
    }
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

    /// A kept compressor, reset between bodies and levels, writes exactly
    /// what the one-off function writes (the bytes Java already reads).
    #[test]
    fn deflater_matches_one_off_compression() {
        let mut d = Deflater::default();
        for (i, len) in [4096usize, 10_240, 1, 0, 70_000, 4096, 123_457].into_iter().enumerate() {
            let data: Vec<u8> = (0..len).map(|j| ((j * 7 + i) % 251) as u8 ^ (j / 300) as u8).collect();
            for level in [5u8, 1, 9, 5] {
                let z = d.deflate(&data, level).unwrap();
                assert_eq!(Some(&z), deflate_zlib(&data, level).as_ref(), "len {len} level {level}");
                assert_eq!(inflate(&z, 3, 1 << 20).unwrap(), data);
            }
        }
    }

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
        assert!(ok.capacity() <= (16 << 20) + 1, "capacity {} past the limit", ok.capacity());
    }
}
