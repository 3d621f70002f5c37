//! Java `String.hashCode` for tags (protocol.md §4.1) and the sysFlag helpers (§3.3).

use proptest::prelude::*;
use ringmq_protocol::message::properties;
use ringmq_protocol::message::sysflag::{
    self, compression, is_compressed, skipped_by_dispatch, CompressionType, TransactionType,
};
use ringmq_protocol::message::tag_hash::{
    java_string_hash, queue_tags_code, tags_code, SCHEDULE_TOPIC, TIMER_TOPIC,
};

#[test]
fn protocol_examples_hash_as_in_java() {
    assert_eq!(java_string_hash("TagA"), 2_598_919);
    assert_eq!(java_string_hash("TagB"), 2_598_920);
    assert_eq!(java_string_hash("*"), 42);
}

#[test]
fn empty_string_hashes_to_zero() {
    assert_eq!(java_string_hash(""), 0);
}

#[test]
fn hello_hashes_by_the_31_polynomial() {
    // ((((104*31 + 101)*31 + 108)*31 + 108)*31 + 111) = 99162322
    assert_eq!(java_string_hash("hello"), 99_162_322);
}

#[test]
fn non_bmp_character_hashes_as_its_two_surrogates() {
    // U+1F600 is the surrogate pair D83D DE00: 0xD83D*31 + 0xDE00 = 55357*31 + 56832 = 1772899.
    assert_eq!(java_string_hash("\u{1F600}"), 1_772_899);
    // 'a' first: ((97*31 + 55357)*31 + 56832) = 1866116.
    assert_eq!(java_string_hash("a\u{1F600}"), 1_866_116);
}

#[test]
fn bmp_non_ascii_character_hashes_as_its_code_unit() {
    assert_eq!(java_string_hash("\u{e9}"), 0xE9);
}

#[test]
fn long_string_wraps_at_32_bits() {
    // Printed by `"héllo wörld".hashCode()` on OpenJDK 17.
    assert_eq!(java_string_hash("héllo wörld"), 1_628_148_953);
    // Printed by `"TagA||TagB".hashCode()` on OpenJDK 17.
    assert_eq!(java_string_hash("TagA||TagB"), 1_789_476_431);
}

#[test]
fn tags_code_is_zero_without_tags_and_sign_extended_hash_with() {
    assert_eq!(tags_code(None), 0);
    assert_eq!(tags_code(Some("")), 0);
    assert_eq!(tags_code(Some("TagA")), 2_598_919);
    // Six 'z' (122) overflow: sum of 122*31^k for k<6 = 3_609_181_632 = 2^32 - 685_785_664,
    // so the i32 hash is -685_785_664 and the 64-bit code keeps the sign.
    assert_eq!(java_string_hash("zzzzzz"), -685_785_664);
    assert_eq!(tags_code(Some("zzzzzz")), -685_785_664);
}

#[test]
fn transaction_type_reads_bits_2_and_3() {
    assert_eq!(TransactionType::of(0x0), TransactionType::NotType);
    assert_eq!(TransactionType::of(0x4 | 0x1), TransactionType::Prepared);
    assert_eq!(TransactionType::of(0x8), TransactionType::Commit);
    assert_eq!(TransactionType::of(0xC), TransactionType::Rollback);
    assert_eq!(TransactionType::Commit.apply(0x301 | 0x4), 0x301 | 0x8);
}

#[test]
fn dispatch_skips_prepared_and_rollback_only() {
    assert!(skipped_by_dispatch(sysflag::TRANSACTION_PREPARED_TYPE));
    assert!(skipped_by_dispatch(sysflag::TRANSACTION_ROLLBACK_TYPE));
    assert!(!skipped_by_dispatch(sysflag::TRANSACTION_COMMIT_TYPE));
    assert!(!skipped_by_dispatch(0));
}

#[test]
fn compression_type_reads_bits_8_to_10_and_zero_means_zlib() {
    assert_eq!(compression(0x0), None);
    assert!(is_compressed(0x301));
    assert_eq!(compression(0x301), Some(Some(CompressionType::Zlib)));
    assert_eq!(compression(0x001), Some(Some(CompressionType::Zlib)));
    assert_eq!(compression(0x101), Some(Some(CompressionType::Lz4)));
    assert_eq!(compression(0x201), Some(Some(CompressionType::Zstd)));
    assert_eq!(compression(0x401), Some(None));
    assert_eq!(
        CompressionType::Zlib.bits() | sysflag::COMPRESSED_FLAG,
        0x301
    );
}

#[test]
fn flag_constants_match_the_protocol_table() {
    assert_eq!(sysflag::COMPRESSED_FLAG, 0x1);
    assert_eq!(sysflag::MULTI_TAGS_FLAG, 0x2);
    assert_eq!(sysflag::BORNHOST_V6_FLAG, 0x10);
    assert_eq!(sysflag::STOREHOST_V6_FLAG, 0x20);
    assert_eq!(sysflag::NEED_UNWRAP_FLAG, 0x40);
    assert_eq!(sysflag::INNER_BATCH_FLAG, 0x80);
    assert_eq!(sysflag::COMPRESSION_TYPE_MASK, 0x700);
}

#[test]
fn a_parked_copy_is_indexed_by_when_it_is_due_and_every_other_record_by_its_tags() {
    let mut props = String::new();
    properties::append(&mut props, "TAGS", "TagA").unwrap();
    properties::append(&mut props, "SCHEDULE_AT_MS", "1796655385622").unwrap();
    let lookup = |key: &str| properties::find(&props, key);
    assert_eq!(queue_tags_code(SCHEDULE_TOPIC, lookup), 1_796_655_385_622);
    assert_eq!(queue_tags_code(TIMER_TOPIC, lookup), 1_796_655_385_622);
    assert_eq!(queue_tags_code("Orders", lookup), 2_598_919);
    // A schedule copy without a readable time falls back to its tags, as any record.
    let mut bad = String::new();
    properties::append(&mut bad, "SCHEDULE_AT_MS", "soon").unwrap();
    assert_eq!(
        queue_tags_code(SCHEDULE_TOPIC, |k| properties::find(&bad, k)),
        0
    );
}

#[test]
fn properties_without_drops_only_the_named_keys_in_order() {
    let mut props = String::new();
    for (k, v) in [("A", "1"), ("DELAY", "3"), ("B", "2"), ("DELAY", "4")] {
        properties::append(&mut props, k, v).unwrap();
    }
    let kept = properties::without(&props, &["DELAY"]);
    assert_eq!(
        properties::pairs(&kept).collect::<Vec<_>>(),
        [("A", "1"), ("B", "2")]
    );
    assert_eq!(properties::without("", &["A"]), "");
}

proptest! {
    #[test]
    fn hash_of_a_concatenation_follows_the_polynomial(a in ".{0,20}", b in ".{0,20}") {
        // h(a+b) = h(a) * 31^len16(b) + h(b), all wrapping: the defining recurrence.
        let units_b = b.encode_utf16().count() as u32;
        let expected = java_string_hash(&a).wrapping_mul(31_i32.wrapping_pow(units_b)).wrapping_add(java_string_hash(&b));
        prop_assert_eq!(java_string_hash(&(a + &b)), expected);
    }
}
