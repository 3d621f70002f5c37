//! Java enums that appear in bodies, with their exact Java names and ordinals.
//!
//! The Java client writes an enum by name (`"CONSUME_PASSIVELY"`); several
//! non-Java clients write its **ordinal** (`1`), sometimes as a string (`"1"`).
//! Each enum here reads all three and writes the name. Invariant: variants are
//! declared in Java declaration order, so a variant's position is its ordinal
//! (checked against apache/rocketmq sources; see each enum).

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! java_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $java:literal, )+
        }
        default = $default:ident;
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every variant, in Java ordinal order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The Java constant name, as the Java client writes it.
            pub fn java_name(self) -> &'static str {
                match self {
                    $($name::$variant => $java,)+
                }
            }

            /// The variant with this Java constant name.
            pub fn from_java_name(name: &str) -> Option<Self> {
                match name {
                    $($java => Some($name::$variant),)+
                    _ => None,
                }
            }

            /// The Java `ordinal()` of this variant.
            pub fn ordinal(self) -> u32 {
                // ALL is short; a variant is always found.
                Self::ALL.iter().position(|v| *v == self).map_or(0, |i| i as u32)
            }

            /// The variant with this Java `ordinal()`.
            pub fn from_ordinal(ordinal: u64) -> Option<Self> {
                usize::try_from(ordinal).ok().and_then(|i| Self::ALL.get(i).copied())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                $name::$default
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.java_name())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.java_name())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_any(JavaEnumVisitor::<$name>::new(
                    stringify!($name),
                    $name::from_java_name,
                    $name::from_ordinal,
                ))
            }
        }
    };
}

/// Reads a Java enum from its name, its ordinal, or its ordinal as a string.
struct JavaEnumVisitor<T> {
    type_name: &'static str,
    by_name: fn(&str) -> Option<T>,
    by_ordinal: fn(u64) -> Option<T>,
}

impl<T> JavaEnumVisitor<T> {
    fn new(
        type_name: &'static str,
        by_name: fn(&str) -> Option<T>,
        by_ordinal: fn(u64) -> Option<T>,
    ) -> Self {
        JavaEnumVisitor {
            type_name,
            by_name,
            by_ordinal,
        }
    }
}

impl<'de, T> Visitor<'de> for JavaEnumVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} name or ordinal", self.type_name)
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<T, E> {
        (self.by_ordinal)(n)
            .ok_or_else(|| E::custom(format_args!("{} has no ordinal {n}", self.type_name)))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<T, E> {
        match u64::try_from(n) {
            Ok(n) => self.visit_u64(n),
            Err(_) => Err(E::custom(format_args!(
                "{} has no ordinal {n}",
                self.type_name
            ))),
        }
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
        let s = s.trim();
        if let Some(v) = (self.by_name)(s) {
            return Ok(v);
        }
        match s.parse::<u64>() {
            Ok(n) => self.visit_u64(n),
            Err(_) => Err(E::custom(format_args!(
                "unknown {} name {s:?}",
                self.type_name
            ))),
        }
    }
}

java_enum! {
    /// How a consumer group consumes (`ConsumeType`). Ordinals per
    /// apache/rocketmq `ConsumeType.java` (`protocol/heartbeat`, 4.x and 5.x).
    pub enum ConsumeType {
        /// Pull and lite-pull consumers (ordinal 0).
        ConsumeActively => "CONSUME_ACTIVELY",
        /// Push consumers (ordinal 1).
        ConsumePassively => "CONSUME_PASSIVELY",
        /// POP consumers, 5.x (ordinal 2).
        ConsumePop => "CONSUME_POP",
    }
    default = ConsumePassively;
}

java_enum! {
    /// Clustering (queues shared in the group) or broadcasting (`MessageModel`).
    pub enum MessageModel {
        /// Every client gets every message; offsets stay on the client (ordinal 0).
        Broadcasting => "BROADCASTING",
        /// Queues are divided among the group (ordinal 1).
        Clustering => "CLUSTERING",
    }
    default = Clustering;
}

java_enum! {
    /// Where a push consumer starts when the broker has no offset
    /// (`ConsumeFromWhere`, ordinals checked against apache/rocketmq
    /// `common/src/main/java/org/apache/rocketmq/common/consumer/ConsumeFromWhere.java`).
    pub enum ConsumeFromWhere {
        /// The tail (ordinal 0, the Java default).
        ConsumeFromLastOffset => "CONSUME_FROM_LAST_OFFSET",
        /// Deprecated alias of last offset (ordinal 1).
        ConsumeFromLastOffsetAndFromMinWhenBootFirst => "CONSUME_FROM_LAST_OFFSET_AND_FROM_MIN_WHEN_BOOT_FIRST",
        /// Deprecated alias of last offset (ordinal 2).
        ConsumeFromMinOffset => "CONSUME_FROM_MIN_OFFSET",
        /// Deprecated alias of last offset (ordinal 3).
        ConsumeFromMaxOffset => "CONSUME_FROM_MAX_OFFSET",
        /// The head (ordinal 4).
        ConsumeFromFirstOffset => "CONSUME_FROM_FIRST_OFFSET",
        /// The first message at or after `consumeTimestamp` (ordinal 5).
        ConsumeFromTimestamp => "CONSUME_FROM_TIMESTAMP",
    }
    default = ConsumeFromLastOffset;
}

java_enum! {
    /// `TopicFilterType` of a topic config.
    pub enum TopicFilterType {
        /// One tag per message (ordinal 0, the default).
        SingleTag => "SINGLE_TAG",
        /// Several tags per message (ordinal 1).
        MultiTag => "MULTI_TAG",
    }
    default = SingleTag;
}
