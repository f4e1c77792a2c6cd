//! Remoting frames: `RemotingCommand` and its encoding.
//!
//! ```text
//! [total length: i32 BE][serialize type: u8 | header length: u24 BE][header][body]
//! ```
//! The total length counts everything after itself. The header is JSON
//! (serialize type 0) or the ROCKETMQ binary layout (serialize type 1).

use std::collections::BTreeMap;

use byteorder::{BigEndian, ByteOrder};
use serde::{Deserialize, Serialize};

use super::codes::{LanguageCode, ResponseCode};
use crate::error::ProtocolError;

/// Default limit on one frame: 16 MiB.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 16 * 1024 * 1024;

/// Protocol version sent in request headers: the ordinal of `V4_9_8` in
/// Java's `MQVersion.Version` (5.3.3 brokers answer with 479, `V5_3_3`).
/// Brokers use it only to switch on what older clients lack; this client
/// uses the 4.9 protocol, which 4.x and 5.x brokers both speak.
pub const CLIENT_VERSION: i32 = 409;
/// [`CLIENT_VERSION`] as Java's `MQVersion.getVersionDesc` names it.
pub const CLIENT_VERSION_DESC: &str = "V4_9_8";

/// Flag bit 0: this frame is a response.
pub const FLAG_RESPONSE: i32 = 1;
/// Flag bit 1: this request wants no response.
pub const FLAG_ONEWAY: i32 = 2;

/// How the header of a frame is serialized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SerializeType {
    /// JSON header (type byte 0), the Java client's default.
    #[default]
    Json,
    /// ROCKETMQ binary header (type byte 1).
    RocketMq,
}

impl SerializeType {
    fn byte(self) -> u8 {
        match self {
            SerializeType::Json => 0,
            SerializeType::RocketMq => 1,
        }
    }
}

/// One request or response frame.
///
/// ```
/// use rocketmq_blocking::protocol::{RemotingCommand, request, decode_frame, DEFAULT_MAX_FRAME_SIZE};
///
/// let mut cmd = RemotingCommand::request(request::GET_MAX_OFFSET);
/// cmd.ext_fields.insert("topic".into(), "T".into());
/// cmd.opaque = 7;
/// let bytes = cmd.encode();
/// let (back, used) = decode_frame(&bytes, DEFAULT_MAX_FRAME_SIZE).unwrap().unwrap();
/// assert_eq!(used, bytes.len());
/// assert_eq!(back.ext_fields["topic"], "T");
/// assert_eq!(back.opaque, 7);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemotingCommand {
    /// Request code, or response code in a response.
    pub code: i32,
    /// Language of the sender.
    pub language: LanguageCode,
    /// Protocol version of the sender.
    pub version: i32,
    /// Matches a response to its request.
    pub opaque: i32,
    /// Bit 0 response, bit 1 oneway.
    pub flag: i32,
    /// Free text, mostly error explanations.
    pub remark: Option<String>,
    /// Custom header fields.
    pub ext_fields: BTreeMap<String, String>,
    /// Body bytes.
    pub body: Vec<u8>,
    /// How the header is serialized.
    pub serialize_type: SerializeType,
}

impl RemotingCommand {
    /// A request with this code, sent as language `RUST`.
    pub fn request(code: i32) -> Self {
        RemotingCommand {
            code,
            language: LanguageCode::Rust,
            version: CLIENT_VERSION,
            opaque: 0,
            flag: 0,
            remark: None,
            ext_fields: BTreeMap::new(),
            body: Vec::new(),
            serialize_type: SerializeType::Json,
        }
    }

    /// A response to `request`: same opaque and serialize type, response flag.
    pub fn response_to(request: &RemotingCommand, code: ResponseCode, remark: Option<String>) -> Self {
        let mut cmd = RemotingCommand::request(code.as_i32());
        cmd.opaque = request.opaque;
        cmd.flag = FLAG_RESPONSE;
        cmd.remark = remark;
        cmd.serialize_type = request.serialize_type;
        cmd
    }

    /// Replaces the ext fields.
    pub fn with_ext_fields(mut self, fields: BTreeMap<String, String>) -> Self {
        self.ext_fields = fields;
        self
    }

    /// Sets the body.
    pub fn with_body(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }

    /// Whether this frame is a response.
    pub fn is_response(&self) -> bool {
        self.flag & FLAG_RESPONSE != 0
    }

    /// Whether this request wants no response.
    pub fn is_oneway(&self) -> bool {
        self.flag & FLAG_ONEWAY != 0
    }

    /// The code read as a response code.
    pub fn response_code(&self) -> ResponseCode {
        ResponseCode::from_i32(self.code)
    }

    /// Encodes the whole frame.
    pub fn encode(&self) -> Vec<u8> {
        let header = match self.serialize_type {
            SerializeType::Json => self.encode_json_header(),
            SerializeType::RocketMq => self.encode_binary_header(),
        };
        let mut out = Vec::with_capacity(8 + header.len() + self.body.len());
        let total = 4 + header.len() + self.body.len();
        out.extend_from_slice(&(total as i32).to_be_bytes());
        let word = ((self.serialize_type.byte() as u32) << 24) | (header.len() as u32 & 0x00FF_FFFF);
        out.extend_from_slice(&word.to_be_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(&self.body);
        out
    }

    fn encode_json_header(&self) -> Vec<u8> {
        let header = JsonHeader {
            code: self.code,
            language: self.language.name().to_string(),
            version: self.version,
            opaque: self.opaque,
            flag: self.flag,
            remark: self.remark.clone(),
            ext_fields: if self.ext_fields.is_empty() { None } else { Some(self.ext_fields.clone()) },
            serialize_type_current_rpc: Some("JSON".to_string()),
        };
        // Serializing a struct of strings and integers cannot fail.
        serde_json::to_vec(&header).unwrap_or_default()
    }

    fn encode_binary_header(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(&(self.code as i16).to_be_bytes());
        out.push(self.language.as_u8());
        out.extend_from_slice(&(self.version as i16).to_be_bytes());
        out.extend_from_slice(&self.opaque.to_be_bytes());
        out.extend_from_slice(&self.flag.to_be_bytes());
        let remark = self.remark.as_deref().unwrap_or("").as_bytes();
        out.extend_from_slice(&(remark.len() as i32).to_be_bytes());
        out.extend_from_slice(remark);
        let mut fields = Vec::new();
        for (k, v) in &self.ext_fields {
            fields.extend_from_slice(&(k.len() as i16).to_be_bytes());
            fields.extend_from_slice(k.as_bytes());
            fields.extend_from_slice(&(v.len() as i32).to_be_bytes());
            fields.extend_from_slice(v.as_bytes());
        }
        out.extend_from_slice(&(fields.len() as i32).to_be_bytes());
        out.extend_from_slice(&fields);
        out
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonHeader {
    code: i32,
    #[serde(default = "default_language")]
    language: String,
    #[serde(default)]
    version: i32,
    #[serde(default)]
    opaque: i32,
    #[serde(default)]
    flag: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    remark: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ext_fields: Option<BTreeMap<String, String>>,
    #[serde(default, rename = "serializeTypeCurrentRPC", skip_serializing_if = "Option::is_none")]
    serialize_type_current_rpc: Option<String>,
}

fn default_language() -> String {
    "JAVA".to_string()
}

/// Reads the total length from the first four bytes of a frame, checked
/// against `max_frame_size`. `Ok(None)` when fewer than four bytes are there.
pub fn frame_length(buf: &[u8], max_frame_size: usize) -> Result<Option<usize>, ProtocolError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let total = BigEndian::read_i32(&buf[..4]);
    if total < 4 {
        return Err(ProtocolError::BadFrameLength(total as i64));
    }
    let total = total as usize;
    if total > max_frame_size {
        return Err(ProtocolError::FrameTooLarge { len: total, max: max_frame_size });
    }
    Ok(Some(total))
}

/// Decodes one frame from the front of `buf`.
///
/// Returns `Ok(Some((command, consumed)))` for a complete frame,
/// `Ok(None)` when more bytes are needed, and an error for malformed bytes
/// (including a frame longer than `max_frame_size`, reported as soon as its
/// length is read).
pub fn decode_frame(buf: &[u8], max_frame_size: usize) -> Result<Option<(RemotingCommand, usize)>, ProtocolError> {
    let total = match frame_length(buf, max_frame_size)? {
        Some(total) => total,
        None => return Ok(None),
    };
    if buf.len() < 4 + total {
        return Ok(None);
    }
    let frame = &buf[4..4 + total];
    let word = BigEndian::read_u32(&frame[..4]);
    let serialize = (word >> 24) as u8;
    let header_len = (word & 0x00FF_FFFF) as usize;
    let rest = &frame[4..];
    if header_len > rest.len() {
        return Err(ProtocolError::HeaderBeyondFrame { header: header_len, frame: rest.len() });
    }
    let (header, body) = rest.split_at(header_len);
    let mut cmd = match serialize {
        0 => decode_json_header(header)?,
        1 => decode_binary_header(header)?,
        other => return Err(ProtocolError::UnknownSerializeType(other)),
    };
    cmd.body = body.to_vec();
    Ok(Some((cmd, 4 + total)))
}

fn decode_json_header(header: &[u8]) -> Result<RemotingCommand, ProtocolError> {
    let h: JsonHeader = serde_json::from_slice(header)
        .map_err(|e| ProtocolError::InvalidJson { what: "frame header", reason: e.to_string() })?;
    Ok(RemotingCommand {
        code: h.code,
        language: LanguageCode::from_name(&h.language).unwrap_or(LanguageCode::Other),
        version: h.version,
        opaque: h.opaque,
        flag: h.flag,
        remark: h.remark,
        ext_fields: h.ext_fields.unwrap_or_default(),
        body: Vec::new(),
        serialize_type: SerializeType::Json,
    })
}

/// A bounds-checked reader over a byte slice; every read returns `None`
/// past the end instead of panicking.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    pub(crate) fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }
    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.bytes(1).map(|b| b[0])
    }
    pub(crate) fn i16(&mut self) -> Option<i16> {
        self.bytes(2).map(BigEndian::read_i16)
    }
    pub(crate) fn u16(&mut self) -> Option<u16> {
        self.bytes(2).map(BigEndian::read_u16)
    }
    pub(crate) fn i32(&mut self) -> Option<i32> {
        self.bytes(4).map(BigEndian::read_i32)
    }
    pub(crate) fn i64(&mut self) -> Option<i64> {
        self.bytes(8).map(BigEndian::read_i64)
    }
}

fn decode_binary_header(header: &[u8]) -> Result<RemotingCommand, ProtocolError> {
    const SHORT: &str = "header shorter than its fields";
    let mut r = Reader::new(header);
    let code = r.i16().ok_or(ProtocolError::BadHeader(SHORT))?;
    let language = r.u8().ok_or(ProtocolError::BadHeader(SHORT))?;
    let version = r.i16().ok_or(ProtocolError::BadHeader(SHORT))?;
    let opaque = r.i32().ok_or(ProtocolError::BadHeader(SHORT))?;
    let flag = r.i32().ok_or(ProtocolError::BadHeader(SHORT))?;
    let remark_len = r.i32().ok_or(ProtocolError::BadHeader(SHORT))?;
    if remark_len < 0 {
        return Err(ProtocolError::BadHeader("negative remark length"));
    }
    let remark = r.bytes(remark_len as usize).ok_or(ProtocolError::BadHeader("remark runs past the header"))?;
    let remark = std::str::from_utf8(remark).map_err(|_| ProtocolError::BadHeader("remark is not UTF-8"))?;
    let fields_len = r.i32().ok_or(ProtocolError::BadHeader(SHORT))?;
    if fields_len < 0 {
        return Err(ProtocolError::BadHeader("negative ext fields length"));
    }
    let fields = r.bytes(fields_len as usize).ok_or(ProtocolError::BadHeader("ext fields run past the header"))?;
    let mut ext_fields = BTreeMap::new();
    let mut f = Reader::new(fields);
    while f.remaining() > 0 {
        const BAD: &str = "malformed ext field";
        let klen = f.i16().ok_or(ProtocolError::BadHeader(BAD))?;
        let key = usize::try_from(klen).ok().and_then(|n| f.bytes(n)).ok_or(ProtocolError::BadHeader(BAD))?;
        let vlen = f.i32().ok_or(ProtocolError::BadHeader(BAD))?;
        let value = usize::try_from(vlen).ok().and_then(|n| f.bytes(n)).ok_or(ProtocolError::BadHeader(BAD))?;
        let key =
            String::from_utf8(key.to_vec()).map_err(|_| ProtocolError::BadHeader("ext field key is not UTF-8"))?;
        let value =
            String::from_utf8(value.to_vec()).map_err(|_| ProtocolError::BadHeader("ext field value is not UTF-8"))?;
        ext_fields.insert(key, value);
    }
    Ok(RemotingCommand {
        code: code as i32,
        language: LanguageCode::from_u8(language),
        version: version as i32,
        opaque,
        flag,
        remark: if remark_len == 0 { None } else { Some(remark.to_string()) },
        ext_fields,
        body: Vec::new(),
        serialize_type: SerializeType::RocketMq,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(st: SerializeType) -> RemotingCommand {
        let mut cmd = RemotingCommand::request(310);
        cmd.opaque = 42;
        cmd.flag = FLAG_ONEWAY;
        cmd.remark = Some("héllo".into());
        cmd.ext_fields.insert("a".into(), "group".into());
        cmd.ext_fields.insert("b".into(), "Topic✓".into());
        cmd.body = b"body bytes".to_vec();
        cmd.serialize_type = st;
        cmd
    }

    #[test]
    fn json_and_binary_round_trip() {
        for st in [SerializeType::Json, SerializeType::RocketMq] {
            let cmd = sample(st);
            let bytes = cmd.encode();
            let (back, n) = decode_frame(&bytes, DEFAULT_MAX_FRAME_SIZE).unwrap().unwrap();
            assert_eq!(n, bytes.len());
            assert_eq!(back, cmd);
            assert!(back.is_oneway() && !back.is_response());
        }
    }

    #[test]
    fn partial_frames_need_more() {
        let bytes = sample(SerializeType::Json).encode();
        for cut in 0..bytes.len() {
            assert_eq!(decode_frame(&bytes[..cut], DEFAULT_MAX_FRAME_SIZE).unwrap(), None, "cut at {cut}");
        }
    }

    #[test]
    fn two_frames_in_one_buffer() {
        let mut bytes = sample(SerializeType::Json).encode();
        let first = bytes.len();
        bytes.extend(sample(SerializeType::RocketMq).encode());
        let (_, n) = decode_frame(&bytes, DEFAULT_MAX_FRAME_SIZE).unwrap().unwrap();
        assert_eq!(n, first);
        let (second, m) = decode_frame(&bytes[n..], DEFAULT_MAX_FRAME_SIZE).unwrap().unwrap();
        assert_eq!(m, bytes.len() - first);
        assert_eq!(second.serialize_type, SerializeType::RocketMq);
    }

    #[test]
    fn binary_truncated_header_fields_are_errors() {
        let cmd = sample(SerializeType::RocketMq);
        let header = cmd.encode_binary_header();
        for cut in 0..header.len() {
            assert!(decode_binary_header(&header[..cut]).is_err(), "cut at {cut}");
        }
    }
}
