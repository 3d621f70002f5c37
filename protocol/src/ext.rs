//! extFields ⇄ typed headers: the [`CommandHeader`] trait every typed header implements, the
//! error it returns, and the lenient field readers and writers headers are built from
//! (protocol.md §1.5).
//!
//! On the wire a header is a flat `String → String` map whose keys are the Java field names.
//! Decoding follows the Java broker, so that anything a Java broker accepts we accept too:
//!
//! - **Integers** (`i32`, `i64`) parse like `Integer.parseInt` / `Long.parseLong`: decimal,
//!   optional `+` or `-`, no other syntax. Unlike Java, surrounding ASCII whitespace is
//!   trimmed first: no client is known to send it, but `" 3"` has only one sensible meaning
//!   and refusing it would gain nothing.
//! - **Booleans** parse like `Boolean.parseBoolean`: `true` in any letter case (after
//!   trimming) is true and *everything else is false*. So `"0"`, `"1"`, `"yes"` are false,
//!   and a boolean field can never be invalid. Real clients send `"0"` for false.
//! - **Strings** are taken verbatim.
//! - **Empty values**: some clients send `""` for a field they mean to leave out (for example
//!   `"consumerGroup": ""` in UNREGISTER_CLIENT). An *optional* field whose value is empty or
//!   all whitespace therefore reads as absent (`None` / its default). A *required* string may
//!   be empty (the processor decides what that means); a required number that is empty is
//!   [`HeaderError::InvalidField`].
//! - **Unknown keys are ignored**, which covers the base-class keys Java and other clients add
//!   (`ns`, `nsd`, `bname`, `oway`, `lo`) and the ACL keys sent even with ACL off
//!   (`AccessKey`, `Signature`, `OnsChannel`). A header that has a use for one (SEND and PULL
//!   keep `bname`) reads it explicitly.
//!
//! Encoding is the Java way: every field as a string, numbers in decimal, booleans
//! `"true"`/`"false"`, optional fields only when `Some`. Values are produced by the typed
//! header, never by a peer, so writing cannot fail.
//!
//! Invariant every header keeps (checked by property tests): for any value `h` whose optional
//! strings are not empty, `H::from_ext(&h.to_ext()) == Ok(h)`.

use std::fmt::Display;
use std::num::ParseIntError;

use crate::command::ExtFields;

/// A typed request or response header carried in a command's extFields.
pub trait CommandHeader: Sized {
    /// Decodes the header from a command's extFields. Unknown keys are ignored; a missing
    /// required field or an unparsable number is an error, never a panic.
    fn from_ext(ext: &ExtFields) -> Result<Self, HeaderError>;

    /// Writes every field into `ext` as strings (optional ones only when present), replacing
    /// values already there under the same keys and leaving other keys alone.
    fn write_ext(&self, ext: &mut ExtFields);

    /// The header as a fresh extFields map.
    fn to_ext(&self) -> ExtFields {
        let mut ext = ExtFields::new();
        self.write_ext(&mut ext);
        ext
    }
}

/// Longest excerpt of a bad value kept in [`HeaderError::InvalidField`]: the value comes from
/// a peer and ends up in logs and remarks, so it is bounded.
pub const INVALID_VALUE_EXCERPT_CHARS: usize = 64;

/// Why extFields could not be decoded into a typed header.
///
/// The Java broker answers both cases with `SYSTEM_ERROR` and the exception text; the
/// `Display` of `MissingField` matches Java's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// A required field is absent.
    #[error("the custom field <{field}> is null")]
    MissingField {
        /// Java field name (the extFields key).
        field: &'static str,
    },
    /// A field is present but its value cannot be parsed.
    #[error("the custom field <{field}> has an invalid value {value:?}")]
    InvalidField {
        /// Java field name (the extFields key).
        field: &'static str,
        /// The value as sent, cut to [`INVALID_VALUE_EXCERPT_CHARS`] characters.
        value: String,
        /// What is wrong with it.
        #[source]
        source: InvalidValue,
    },
}

/// What is wrong with an unparsable field value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidValue {
    /// Not a decimal integer in range.
    #[error("not a decimal integer in range")]
    Integer(#[from] ParseIntError),
    /// Not one of the names an enumerated field accepts.
    #[error("not one of {expected}")]
    UnknownName {
        /// The accepted names, for the message.
        expected: &'static str,
    },
}

impl HeaderError {
    /// Builds an [`HeaderError::InvalidField`], keeping a bounded excerpt of `value`.
    #[must_use]
    pub fn invalid(field: &'static str, value: &str, source: InvalidValue) -> Self {
        HeaderError::InvalidField {
            field,
            value: value.chars().take(INVALID_VALUE_EXCERPT_CHARS).collect(),
            source,
        }
    }

    /// The extFields key the error is about.
    #[must_use]
    pub fn field(&self) -> &'static str {
        match self {
            HeaderError::MissingField { field } | HeaderError::InvalidField { field, .. } => field,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Readers
// ---------------------------------------------------------------------------------------------

/// The raw value of `field`, treating an empty or all-whitespace value as absent.
fn non_blank<'a>(ext: &'a ExtFields, field: &str) -> Option<&'a str> {
    ext.get(field)
        .map(String::as_str)
        .filter(|value| !value.trim().is_empty())
}

fn parse_int<T: std::str::FromStr<Err = ParseIntError>>(
    field: &'static str,
    value: &str,
) -> Result<T, HeaderError> {
    value
        .trim()
        .parse::<T>()
        .map_err(|source| HeaderError::invalid(field, value, InvalidValue::Integer(source)))
}

fn parse_bool(value: &str) -> bool {
    value.trim().eq_ignore_ascii_case("true")
}

/// A required string field, verbatim (it may be empty).
pub fn required_str(ext: &ExtFields, field: &'static str) -> Result<String, HeaderError> {
    ext.get(field)
        .cloned()
        .ok_or(HeaderError::MissingField { field })
}

/// An optional string field, verbatim; absent or empty (all whitespace) is `None`.
#[must_use]
pub fn optional_str(ext: &ExtFields, field: &str) -> Option<String> {
    non_blank(ext, field).map(str::to_owned)
}

/// A required `Integer` field.
pub fn required_i32(ext: &ExtFields, field: &'static str) -> Result<i32, HeaderError> {
    let value = ext.get(field).ok_or(HeaderError::MissingField { field })?;
    parse_int(field, value)
}

/// An optional `Integer` field; absent or blank is `None`.
pub fn optional_i32(ext: &ExtFields, field: &'static str) -> Result<Option<i32>, HeaderError> {
    non_blank(ext, field)
        .map(|value| parse_int(field, value))
        .transpose()
}

/// An `int` field with a Java-side default used when it is absent or blank.
pub fn i32_or(ext: &ExtFields, field: &'static str, default: i32) -> Result<i32, HeaderError> {
    Ok(optional_i32(ext, field)?.unwrap_or(default))
}

/// A required `Long` field.
pub fn required_i64(ext: &ExtFields, field: &'static str) -> Result<i64, HeaderError> {
    let value = ext.get(field).ok_or(HeaderError::MissingField { field })?;
    parse_int(field, value)
}

/// An optional `Long` field; absent or blank is `None`.
pub fn optional_i64(ext: &ExtFields, field: &'static str) -> Result<Option<i64>, HeaderError> {
    non_blank(ext, field)
        .map(|value| parse_int(field, value))
        .transpose()
}

/// A `long` field with a Java-side default used when it is absent or blank.
pub fn i64_or(ext: &ExtFields, field: &'static str, default: i64) -> Result<i64, HeaderError> {
    Ok(optional_i64(ext, field)?.unwrap_or(default))
}

/// A required `Boolean` field: present means parsed with `Boolean.parseBoolean` semantics.
pub fn required_bool(ext: &ExtFields, field: &'static str) -> Result<bool, HeaderError> {
    ext.get(field)
        .map(|value| parse_bool(value))
        .ok_or(HeaderError::MissingField { field })
}

/// An optional `Boolean` field; absent or blank is `None`, anything else but `true`
/// (any case) is `Some(false)`.
#[must_use]
pub fn optional_bool(ext: &ExtFields, field: &str) -> Option<bool> {
    non_blank(ext, field).map(parse_bool)
}

/// A `boolean` field with a Java-side default used when it is absent or blank.
#[must_use]
pub fn bool_or(ext: &ExtFields, field: &str, default: bool) -> bool {
    optional_bool(ext, field).unwrap_or(default)
}

// ---------------------------------------------------------------------------------------------
// Writers
// ---------------------------------------------------------------------------------------------

/// Writes `value` under `field` in its Java string form (decimal numbers, `true`/`false`).
pub fn put(ext: &mut ExtFields, field: &str, value: impl Display) {
    ext.insert(field.to_owned(), value.to_string());
}

/// Writes `value` under `field` when it is `Some`; leaves `ext` untouched when `None`.
pub fn put_opt(ext: &mut ExtFields, field: &str, value: Option<impl Display>) {
    if let Some(value) = value {
        put(ext, field, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(pairs: &[(&str, &str)]) -> ExtFields {
        pairs
            .iter()
            .map(|&(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    #[test]
    fn integers_accept_sign_and_surrounding_whitespace() {
        let e = ext(&[("a", "-12"), ("b", "+7"), ("c", " 42 ")]);
        assert_eq!(required_i32(&e, "a"), Ok(-12));
        assert_eq!(required_i64(&e, "b"), Ok(7));
        assert_eq!(required_i32(&e, "c"), Ok(42));
    }

    #[test]
    fn integer_out_of_range_is_invalid() {
        let e = ext(&[("queueId", "2147483648")]);
        let err = required_i32(&e, "queueId").unwrap_err();
        assert!(matches!(
            err,
            HeaderError::InvalidField { field: "queueId", ref value, .. } if value == "2147483648"
        ));
        assert_eq!(required_i64(&e, "queueId"), Ok(2_147_483_648));
    }

    #[test]
    fn non_decimal_integer_syntax_is_invalid() {
        for bad in ["0x10", "1_000", "1.0", "1e3", "abc", "--1"] {
            let e = ext(&[("n", bad)]);
            assert!(
                matches!(required_i64(&e, "n"), Err(HeaderError::InvalidField { .. })),
                "{bad:?} should be invalid"
            );
        }
    }

    #[test]
    fn missing_required_field_names_the_field() {
        let e = ext(&[]);
        assert_eq!(
            required_i64(&e, "queueOffset"),
            Err(HeaderError::MissingField {
                field: "queueOffset"
            })
        );
        assert_eq!(
            required_str(&e, "topic"),
            Err(HeaderError::MissingField { field: "topic" })
        );
        assert_eq!(
            required_bool(&e, "isForce"),
            Err(HeaderError::MissingField { field: "isForce" })
        );
    }

    #[test]
    fn empty_required_number_is_invalid_not_missing() {
        let e = ext(&[("queueId", "")]);
        assert!(matches!(
            required_i32(&e, "queueId"),
            Err(HeaderError::InvalidField {
                field: "queueId",
                ..
            })
        ));
    }

    #[test]
    fn empty_optional_fields_read_as_absent() {
        let e = ext(&[("s", ""), ("n", " "), ("b", "")]);
        assert_eq!(optional_str(&e, "s"), None);
        assert_eq!(optional_i32(&e, "n"), Ok(None));
        assert_eq!(optional_i64(&e, "n"), Ok(None));
        assert_eq!(optional_bool(&e, "b"), None);
        assert_eq!(i32_or(&e, "n", -1), Ok(-1));
        assert!(bool_or(&e, "b", true));
    }

    #[test]
    fn required_string_may_be_empty() {
        let e = ext(&[("consumerGroup", "")]);
        assert_eq!(required_str(&e, "consumerGroup"), Ok(String::new()));
    }

    #[test]
    fn booleans_follow_java_parse_boolean() {
        let e = ext(&[
            ("t1", "true"),
            ("t2", "TRUE"),
            ("t3", " True "),
            ("f1", "false"),
            ("f2", "0"),
            ("f3", "1"),
            ("f4", "yes"),
        ]);
        for key in ["t1", "t2", "t3"] {
            assert_eq!(optional_bool(&e, key), Some(true), "{key}");
        }
        for key in ["f1", "f2", "f3", "f4"] {
            assert_eq!(optional_bool(&e, key), Some(false), "{key}");
        }
    }

    #[test]
    fn invalid_value_excerpt_is_bounded() {
        let long = "x".repeat(10_000);
        let e = ext(&[("n", &long)]);
        let Err(HeaderError::InvalidField { value, .. }) = required_i64(&e, "n") else {
            panic!("expected InvalidField");
        };
        assert_eq!(value.chars().count(), INVALID_VALUE_EXCERPT_CHARS);
    }

    #[test]
    fn writers_use_java_string_forms() {
        let mut e = ExtFields::new();
        put(&mut e, "n", -5_i64);
        put(&mut e, "b", true);
        put(&mut e, "s", "x");
        put_opt(&mut e, "none", None::<i32>);
        put_opt(&mut e, "some", Some(false));
        assert_eq!(
            e,
            ext(&[("n", "-5"), ("b", "true"), ("s", "x"), ("some", "false")])
        );
    }
}
