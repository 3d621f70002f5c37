//! Java's `String.hashCode`, the ConsumeQueue tagsCode of protocol.md §4.1.
//!
//! Java hashes UTF-16 code units, so a character outside the Basic Multilingual Plane
//! contributes its two surrogates; the arithmetic wraps at 32 bits. Consumers compare these
//! codes with the ones their own client computed, so the function must match Java bit for bit.

/// `h = 31*h + c` over the UTF-16 code units of `s`, wrapping: Java's `String.hashCode`.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0_i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// The tagsCode of a ConsumeQueue entry: 0 without tags (absent or empty), else the Java
/// hash of the tags sign-extended to 64 bits.
pub fn tags_code(tags: Option<&str>) -> i64 {
    match tags {
        Some(t) if !t.is_empty() => i64::from(java_string_hash(t)),
        _ => 0,
    }
}
