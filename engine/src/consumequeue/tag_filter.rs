//! Broker-side tag filter on ConsumeQueue entries (protocol.md §4.2).
//!
//! A TAG subscription arrives (in HEART_BEAT / PULL) with its expression (`subString`) and
//! the Java hash codes of its tags (`codeSet`). An entry passes when the expression is `*`
//! or empty, or when the codeSet holds `(int) tagsCode`. Only hashes are compared, so a
//! collision lets a foreign tag through: the client re-checks by tag string. Pure.

/// Which ConsumeQueue entries a subscription wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagFilter {
    /// `*` or an empty expression: every entry.
    All,
    /// Entries whose `tags_code as i32` is one of these (sorted, deduplicated).
    Codes(Vec<i32>),
}

impl TagFilter {
    /// Builds the filter from a subscription's expression and codeSet. `*` or a blank
    /// expression means all, whatever the codes; otherwise exactly the given codes (an
    /// empty codeSet then matches nothing, as RocketMQ's `codeSet.contains` does).
    pub fn from_subscription(expression: &str, code_set: impl IntoIterator<Item = i32>) -> Self {
        let expression = expression.trim();
        if expression.is_empty() || expression == "*" {
            return Self::All;
        }
        let mut codes: Vec<i32> = code_set.into_iter().collect();
        codes.sort_unstable();
        codes.dedup();
        Self::Codes(codes)
    }

    /// Whether an entry with this tagsCode passes. Compares the low 32 bits, like Java's
    /// `(int) tagsCode`.
    pub fn matches(&self, tags_code: i64) -> bool {
        match self {
            Self::All => true,
            // Truncation is the point: Java compares `(int) tagsCode`.
            #[allow(clippy::cast_possible_truncation)]
            Self::Codes(codes) => codes.binary_search(&(tags_code as i32)).is_ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAG_A: i32 = 2_598_919; // "TagA".hashCode()
    const TAG_B: i32 = 2_598_920; // "TagB".hashCode()

    #[test]
    fn star_and_blank_expressions_match_everything() {
        for expression in ["*", "", "  ", " * "] {
            let filter = TagFilter::from_subscription(expression, [TAG_A]);
            assert_eq!(filter, TagFilter::All);
            assert!(filter.matches(0));
            assert!(filter.matches(i64::from(TAG_B)));
        }
    }

    #[test]
    fn a_tag_expression_matches_only_its_codes() {
        let filter = TagFilter::from_subscription("TagA || TagB", [TAG_A, TAG_B]);
        assert!(filter.matches(i64::from(TAG_A)));
        assert!(filter.matches(i64::from(TAG_B)));
        assert!(
            !filter.matches(0),
            "a message without tags does not match a tag subscription"
        );
        assert!(!filter.matches(i64::from(TAG_A) + 7));
    }

    #[test]
    fn negative_hashes_match_after_sign_extension() {
        let code = -1_234_567_i32;
        let filter = TagFilter::from_subscription("X", [code]);
        assert!(filter.matches(i64::from(code)));
    }

    #[test]
    fn only_the_low_32_bits_of_tags_code_are_compared() {
        let filter = TagFilter::from_subscription("TagA", [TAG_A]);
        assert!(filter.matches((7_i64 << 32) | i64::from(TAG_A)));
    }

    #[test]
    fn an_empty_code_set_under_a_tag_expression_matches_nothing() {
        let filter = TagFilter::from_subscription("TagA", []);
        assert!(!filter.matches(i64::from(TAG_A)));
    }
}
