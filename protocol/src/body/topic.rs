//! Topic configuration bodies: `TopicConfig`, `DataVersion`,
//! `TopicConfigSerializeWrapper` (GET_ALL_TOPIC_CONFIG 21, `topics.json`) and
//! `RegisterBrokerBody` (REGISTER_BROKER 103) in both of its forms.
//!
//! The compressed form (header `compressed=true`, protocol.md §2.14) is a zlib
//! stream of big-endian length-prefixed sections:
//!
//! 1. `i32` length + `DataVersion` JSON;
//! 2. `i32` topic count, then per topic `i32` length + the topic's text form
//!    `name read write perm filterType attributesJson` (space separated);
//! 3. `i32` length + filter-server list JSON array;
//! 4. (5.x brokers) `i32` count, then per entry `i32` length +
//!    `TopicQueueMappingInfo` JSON. 4.x streams end after section 3.
//!
//! The text form carries neither `topicSysFlag` nor `order`: a name server
//! that receives the compressed form sees them as 0/false, as Java's does.
//! Decoding bounds the inflated size by [`MAX_INFLATED_BYTES`] and checks every
//! length against the bytes present, so a hostile stream costs at most that
//! much memory and never panics.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;
use flate2::Compression;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::enums::TopicFilterType;
use super::fastjson::{self, FastjsonError, Value};
use super::{json_body, BodyError, JsonBody};

/// Largest inflated size accepted for a compressed `RegisterBrokerBody`.
/// A topic's text form is ~50 bytes, so this is room for about a million topics.
pub const MAX_INFLATED_BYTES: usize = 64 * 1024 * 1024;

/// Java's default queue count of a new `TopicConfig`.
const DEFAULT_QUEUE_NUMS: i32 = 16;
/// PERM_READ | PERM_WRITE.
const DEFAULT_PERM: i32 = 6;

/// The configuration of one topic on a broker (Java `TopicConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TopicConfig {
    /// Topic name.
    pub topic_name: String,
    /// Readable queues.
    pub read_queue_nums: i32,
    /// Writable queues.
    pub write_queue_nums: i32,
    /// Permission bits (2 write, 4 read, 1 inherit).
    pub perm: i32,
    /// Single or multi tag.
    pub topic_filter_type: TopicFilterType,
    /// Topic system flag bits.
    pub topic_sys_flag: i32,
    /// Ordered topic.
    pub order: bool,
    /// 5.x attributes (`message.type` …).
    pub attributes: BTreeMap<String, String>,
}

impl Default for TopicConfig {
    /// Java's defaults: 16/16 queues, perm RW, single tag.
    fn default() -> Self {
        TopicConfig {
            topic_name: String::new(),
            read_queue_nums: DEFAULT_QUEUE_NUMS,
            write_queue_nums: DEFAULT_QUEUE_NUMS,
            perm: DEFAULT_PERM,
            topic_filter_type: TopicFilterType::SingleTag,
            topic_sys_flag: 0,
            order: false,
            attributes: BTreeMap::new(),
        }
    }
}

/// A topic's text form could not be read.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TopicConfigTextError {
    /// Fewer than five space-separated fields.
    #[error("topic config text lacks its {field} field")]
    MissingField {
        /// The first missing field.
        field: &'static str,
    },
    /// A queue count or perm is not an `i32`.
    #[error("topic config field {field} is not an integer")]
    InvalidNumber {
        /// Which field.
        field: &'static str,
        /// Why.
        #[source]
        source: std::num::ParseIntError,
    },
    /// The filter type is neither `SINGLE_TAG` nor `MULTI_TAG`.
    #[error("unknown topic filter type {0:?}")]
    UnknownFilterType(String),
}

impl TopicConfig {
    /// A topic with Java's defaults.
    pub fn new(topic_name: impl Into<String>) -> Self {
        TopicConfig {
            topic_name: topic_name.into(),
            ..TopicConfig::default()
        }
    }

    /// The text form of the compressed registration:
    /// `name read write perm filterType attributesJson`.
    pub fn to_text(&self) -> String {
        let attributes = Value::Object(
            self.attributes
                .iter()
                .map(|(k, v)| (Value::String(k.clone()), Value::String(v.clone())))
                .collect(),
        );
        let mut json = Vec::new();
        attributes.write_fastjson(&mut json);
        format!(
            "{} {} {} {} {} {}",
            self.topic_name,
            self.read_queue_nums,
            self.write_queue_nums,
            self.perm,
            self.topic_filter_type.java_name(),
            String::from_utf8_lossy(&json)
        )
    }

    /// Reads the text form. Like Java, attributes that do not parse are
    /// dropped rather than failing the topic; `topicSysFlag` and `order` take
    /// their defaults because the text form does not carry them.
    pub fn from_text(text: &str) -> Result<Self, TopicConfigTextError> {
        let mut fields = text.splitn(6, ' ');
        let mut next = |field: &'static str| {
            fields
                .next()
                .ok_or(TopicConfigTextError::MissingField { field })
        };
        let topic_name = next("topicName")?.to_owned();
        let number = |field: &'static str, s: &str| {
            s.parse::<i32>()
                .map_err(|source| TopicConfigTextError::InvalidNumber { field, source })
        };
        let read_queue_nums = number("readQueueNums", next("readQueueNums")?)?;
        let write_queue_nums = number("writeQueueNums", next("writeQueueNums")?)?;
        let perm = number("perm", next("perm")?)?;
        let filter = next("topicFilterType")?;
        let topic_filter_type = TopicFilterType::from_java_name(filter)
            .ok_or_else(|| TopicConfigTextError::UnknownFilterType(filter.to_owned()))?;
        let attributes = fields
            .next()
            .filter(|rest| !rest.trim().is_empty())
            .and_then(|rest| fastjson::from_slice(rest.as_bytes()).ok())
            .unwrap_or_default();
        Ok(TopicConfig {
            topic_name,
            read_queue_nums,
            write_queue_nums,
            perm,
            topic_filter_type,
            topic_sys_flag: 0,
            order: false,
            attributes,
        })
    }
}

/// Version of a config table: a counter bumped on every change, with the time
/// of the change (Java `DataVersion`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DataVersion {
    /// Changes so far.
    pub counter: i64,
    /// State version (controller mode; 0 otherwise).
    pub state_version: i64,
    /// Time of the last change, ms since the epoch.
    pub timestamp: i64,
}

impl DataVersion {
    /// A first version stamped `now_ms`.
    pub fn new(now_ms: i64) -> Self {
        DataVersion {
            counter: 0,
            state_version: 0,
            timestamp: now_ms,
        }
    }

    /// Records a change at `now_ms`.
    pub fn next_version(&mut self, now_ms: i64) {
        self.counter = self.counter.saturating_add(1);
        self.timestamp = now_ms;
    }
}

/// All topic configs of a broker with their version (GET_ALL_TOPIC_CONFIG
/// body, `topics.json`, and the inside of `RegisterBrokerBody`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TopicConfigSerializeWrapper {
    /// Topic name → config.
    pub topic_config_table: BTreeMap<String, TopicConfig>,
    /// Version of the table.
    pub data_version: DataVersion,
    /// 5.x static-topic mapping info, topic → opaque JSON. Always written
    /// (as `{}` when empty) because 5.x name servers expect the map.
    pub topic_queue_mapping_info_map: BTreeMap<String, serde_json::Value>,
}

/// The REGISTER_BROKER body.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RegisterBrokerBody {
    /// The broker's topics.
    pub topic_config_serialize_wrapper: TopicConfigSerializeWrapper,
    /// Filter server addresses (unused; empty).
    pub filter_server_list: Vec<String>,
}

json_body!(
    TopicConfig => "TopicConfig",
    DataVersion => "DataVersion",
    TopicConfigSerializeWrapper => "TopicConfigSerializeWrapper",
    RegisterBrokerBody => "RegisterBrokerBody",
);

/// The compressed `RegisterBrokerBody` could not be written or read.
#[derive(Debug, Error)]
pub enum CompressedBodyError {
    /// The zlib stream is corrupt (or writing it failed).
    #[error("zlib stream failed")]
    Zlib(#[source] std::io::Error),
    /// The stream inflates beyond [`MAX_INFLATED_BYTES`].
    #[error("inflated body exceeds {limit_bytes} bytes")]
    TooLarge {
        /// The limit.
        limit_bytes: usize,
    },
    /// The inflated stream ends inside a section.
    #[error("inflated body ends inside {section} at byte {offset}")]
    Truncated {
        /// Which section.
        section: &'static str,
        /// Where the stream ended.
        offset: usize,
    },
    /// A negative length or count.
    #[error("negative length {length} for {section}")]
    NegativeLength {
        /// Which section.
        section: &'static str,
        /// The value read.
        length: i32,
    },
    /// A section is longer than an `i32` length can say.
    #[error("{section} is too long for an i32 length")]
    SectionTooLong {
        /// Which section.
        section: &'static str,
    },
    /// A text section is not UTF-8.
    #[error("{section} is not UTF-8")]
    Utf8 {
        /// Which section.
        section: &'static str,
        /// Why.
        #[source]
        source: std::str::Utf8Error,
    },
    /// A JSON section does not parse.
    #[error("{section} is not valid JSON")]
    Json {
        /// Which section.
        section: &'static str,
        /// Why.
        #[source]
        source: FastjsonError,
    },
    /// A JSON section could not be written.
    #[error("cannot write {section}")]
    JsonEncode {
        /// Which section.
        section: &'static str,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A topic's text form is broken.
    #[error("topic config text {text:?} is invalid")]
    TopicConfig {
        /// The text read.
        text: String,
        /// Why.
        #[source]
        source: TopicConfigTextError,
    },
}

impl RegisterBrokerBody {
    /// Reads the body as sent with the request header's `compressed` flag.
    pub fn decode_with(bytes: &[u8], compressed: bool) -> Result<Self, BodyError> {
        if compressed {
            Ok(Self::decode_compressed(bytes)?)
        } else {
            Self::decode(bytes)
        }
    }

    /// Writes the compressed form (zlib, best compression), including the 5.x
    /// mapping section.
    pub fn encode_compressed(&self) -> Result<Vec<u8>, CompressedBodyError> {
        let wrapper = &self.topic_config_serialize_wrapper;
        let mut raw = Vec::with_capacity(64 + wrapper.topic_config_table.len() * 64);

        let data_version = json_section("dataVersion", &wrapper.data_version)?;
        put_section(&mut raw, "dataVersion", &data_version)?;

        put_count(
            &mut raw,
            "topicConfigTable",
            wrapper.topic_config_table.len(),
        )?;
        for topic in wrapper.topic_config_table.values() {
            put_section(&mut raw, "topicConfig", topic.to_text().as_bytes())?;
        }

        let filters = json_section("filterServerList", &self.filter_server_list)?;
        put_section(&mut raw, "filterServerList", &filters)?;

        let mappings = &wrapper.topic_queue_mapping_info_map;
        put_count(&mut raw, "topicQueueMappingInfoMap", mappings.len())?;
        for info in mappings.values() {
            let json = json_section("topicQueueMappingInfo", info)?;
            put_section(&mut raw, "topicQueueMappingInfo", &json)?;
        }

        let mut encoder = ZlibEncoder::new(Vec::new(), Compression::best());
        encoder.write_all(&raw).map_err(CompressedBodyError::Zlib)?;
        encoder.finish().map_err(CompressedBodyError::Zlib)
    }

    /// Reads the compressed form written by a Java (4.x or 5.x) broker or by
    /// [`encode_compressed`](Self::encode_compressed).
    pub fn decode_compressed(bytes: &[u8]) -> Result<Self, CompressedBodyError> {
        let raw = inflate(bytes)?;
        let mut reader = SectionReader { raw: &raw, pos: 0 };

        let data_version = parse_json("dataVersion", reader.section("dataVersion")?)?;

        let topic_count = reader.count("topicConfigTable")?;
        let mut topic_config_table = BTreeMap::new();
        for _ in 0..topic_count {
            let text = reader.text("topicConfig")?;
            let topic = TopicConfig::from_text(text).map_err(|source| {
                CompressedBodyError::TopicConfig {
                    text: text.to_owned(),
                    source,
                }
            })?;
            topic_config_table.insert(topic.topic_name.clone(), topic);
        }

        let filter_server_list =
            parse_json("filterServerList", reader.section("filterServerList")?)?;

        // A 4.x broker's stream ends here.
        let mut topic_queue_mapping_info_map = BTreeMap::new();
        if !reader.at_end() {
            let mapping_count = reader.count("topicQueueMappingInfoMap")?;
            for _ in 0..mapping_count {
                let info: serde_json::Value = parse_json(
                    "topicQueueMappingInfo",
                    reader.section("topicQueueMappingInfo")?,
                )?;
                if let Some(topic) = info.get("topic").and_then(|t| t.as_str()) {
                    topic_queue_mapping_info_map.insert(topic.to_owned(), info);
                }
            }
        }

        Ok(RegisterBrokerBody {
            topic_config_serialize_wrapper: TopicConfigSerializeWrapper {
                topic_config_table,
                data_version,
                topic_queue_mapping_info_map,
            },
            filter_server_list,
        })
    }
}

fn inflate(bytes: &[u8]) -> Result<Vec<u8>, CompressedBodyError> {
    let mut raw = Vec::new();
    // One byte past the limit tells "exactly at the limit" from "beyond it".
    let limit = u64::try_from(MAX_INFLATED_BYTES)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    ZlibDecoder::new(bytes)
        .take(limit)
        .read_to_end(&mut raw)
        .map_err(CompressedBodyError::Zlib)?;
    if raw.len() > MAX_INFLATED_BYTES {
        return Err(CompressedBodyError::TooLarge {
            limit_bytes: MAX_INFLATED_BYTES,
        });
    }
    Ok(raw)
}

fn json_section<T: Serialize>(
    section: &'static str,
    value: &T,
) -> Result<Vec<u8>, CompressedBodyError> {
    serde_json::to_vec(value).map_err(|source| CompressedBodyError::JsonEncode { section, source })
}

fn parse_json<T: serde::de::DeserializeOwned>(
    section: &'static str,
    bytes: &[u8],
) -> Result<T, CompressedBodyError> {
    fastjson::from_slice(bytes).map_err(|source| CompressedBodyError::Json { section, source })
}

fn put_count(
    out: &mut Vec<u8>,
    section: &'static str,
    count: usize,
) -> Result<(), CompressedBodyError> {
    let count =
        i32::try_from(count).map_err(|_| CompressedBodyError::SectionTooLong { section })?;
    out.extend_from_slice(&count.to_be_bytes());
    Ok(())
}

fn put_section(
    out: &mut Vec<u8>,
    section: &'static str,
    bytes: &[u8],
) -> Result<(), CompressedBodyError> {
    put_count(out, section, bytes.len())?;
    out.extend_from_slice(bytes);
    Ok(())
}

/// Cursor over the inflated stream; every read is bounds-checked.
struct SectionReader<'a> {
    raw: &'a [u8],
    pos: usize,
}

impl<'a> SectionReader<'a> {
    fn at_end(&self) -> bool {
        self.pos >= self.raw.len()
    }

    fn take(&mut self, section: &'static str, len: usize) -> Result<&'a [u8], CompressedBodyError> {
        let bytes = self
            .pos
            .checked_add(len)
            .and_then(|end| self.raw.get(self.pos..end))
            .ok_or(CompressedBodyError::Truncated {
                section,
                offset: self.raw.len(),
            })?;
        self.pos += len;
        Ok(bytes)
    }

    fn count(&mut self, section: &'static str) -> Result<usize, CompressedBodyError> {
        let bytes = self.take(section, 4)?;
        let be = <[u8; 4]>::try_from(bytes).map_err(|_| CompressedBodyError::Truncated {
            section,
            offset: self.raw.len(),
        })?;
        let length = i32::from_be_bytes(be);
        usize::try_from(length).map_err(|_| CompressedBodyError::NegativeLength { section, length })
    }

    fn section(&mut self, section: &'static str) -> Result<&'a [u8], CompressedBodyError> {
        let len = self.count(section)?;
        self.take(section, len)
    }

    fn text(&mut self, section: &'static str) -> Result<&'a str, CompressedBodyError> {
        let bytes = self.section(section)?;
        std::str::from_utf8(bytes).map_err(|source| CompressedBodyError::Utf8 { section, source })
    }
}
