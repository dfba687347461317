//! A queue's `numbers`: each a phone number as a string, or a table that also
//! says what every call to it needs of an agent (issue 21, item 2):
//! `numbers = ["+15005550006", { number = "+15005550007", needs = "es" }]`.
//! A number's needs are added to every step of each queue its calls may take
//! an agent from (its queue's steps, then its overflow queues').

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

/// One entry of `numbers` as written.
#[derive(Debug)]
pub(super) struct RawNumber {
    pub number: String,
    pub needs: Option<String>,
    pub menu: Option<String>,
}

/// The table form's fields; unknown ones are refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNumberTable {
    number: String,
    needs: Option<String>,
    menu: Option<String>,
}

impl<'de> Deserialize<'de> for RawNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entry;

        impl<'de> Visitor<'de> for Entry {
            type Value = RawNumber;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    r#"a number ("+15005550006") or { number = "+15005550006", needs = "es" }"#,
                )
            }

            fn visit_str<E: de::Error>(self, number: &str) -> Result<RawNumber, E> {
                Ok(RawNumber {
                    number: number.to_owned(),
                    needs: None,
                    menu: None,
                })
            }

            fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<RawNumber, M::Error> {
                let table =
                    RawNumberTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(RawNumber {
                    number: table.number,
                    needs: table.needs,
                    menu: table.menu,
                })
            }
        }

        deserializer.deserialize_any(Entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Doc {
        numbers: Vec<RawNumber>,
    }

    #[test]
    fn a_number_is_a_string_or_a_table_with_needs() {
        let doc: Doc = toml::from_str(
            r#"numbers = ["+15005550006", { number = "+15005550007", needs = "es" }]"#,
        )
        .expect("TOML");
        assert_eq!(doc.numbers[0].number, "+15005550006");
        assert_eq!(doc.numbers[0].needs, None);
        assert_eq!(doc.numbers[1].number, "+15005550007");
        assert_eq!(doc.numbers[1].needs.as_deref(), Some("es"));
        let wrong =
            toml::from_str::<Doc>(r#"numbers = [{ number = "+15005550007", need = "es" }]"#)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
        assert!(wrong.contains("unknown field `need`"), "{wrong}");
        let wrong = toml::from_str::<Doc>("numbers = [7]")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(wrong.contains(r#"a number ("+15005550006") or"#), "{wrong}");
    }
}
