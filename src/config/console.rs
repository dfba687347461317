//! The routing file's `[console]` table: the away reasons an agent may give
//! (`PUT /v1/me/state`) and the disposition codes of a call's wrap-up
//! (`PUT /v1/me/calls/{sid}/wrap-up`), with a queue's own `dispositions`
//! replacing the table's for calls taken through that queue. Checked with the
//! rest of the file, each problem reported at the value it is about; the API
//! then checks what an agent sends against these lists.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

/// Most entries one list may hold: a console shows them all as choices.
pub const MAX_ENTRIES: usize = 100;

/// A list as written: `["lunch", "training"]`.
pub(super) type RawList = Spanned<Vec<Spanned<String>>>;

/// `[console]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConsole {
    away_reasons: Option<RawList>,
    dispositions: Option<RawList>,
}

/// The checked lists. Empty `away_reasons`: away takes no reason; empty
/// dispositions (and no queue's own): no wrap-up can be given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsoleLists {
    pub away_reasons: Vec<String>,
    pub dispositions: Vec<String>,
    /// Queues with a list of their own, which replaces `dispositions`.
    pub queue_dispositions: BTreeMap<String, Vec<String>>,
}

impl ConsoleLists {
    /// The codes a call taken through `queue` may be given.
    pub fn dispositions_of(&self, queue: &str) -> &[String] {
        self.queue_dispositions
            .get(queue)
            .unwrap_or(&self.dispositions)
    }

    /// Every code of some list, each once, sorted.
    pub fn all_dispositions(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .dispositions
            .iter()
            .chain(self.queue_dispositions.values().flatten())
            .cloned()
            .collect();
        all.sort();
        all.dedup();
        all
    }

    /// Where `code` is valid: `None` for every queue (it is in the table's
    /// list and no queue's own list leaves it out); else the queues of
    /// `queues` whose list holds it (possibly none).
    pub fn queues_allowing<'a>(&self, code: &str, queues: &[&'a str]) -> Option<Vec<&'a str>> {
        let everywhere = self.dispositions.iter().any(|c| c == code)
            && self
                .queue_dispositions
                .values()
                .all(|list| list.iter().any(|c| c == code));
        if everywhere {
            return None;
        }
        Some(
            queues
                .iter()
                .copied()
                .filter(|q| self.dispositions_of(q).iter().any(|c| c == code))
                .collect(),
        )
    }
}

/// An entry: 1 to 64 letters, digits, `.`, `_`, `-` or spaces inside, so it
/// is safe in JSON, logs and the console as written.
pub fn is_valid_entry(entry: &str) -> bool {
    (1..=64).contains(&entry.len())
        && entry == entry.trim()
        && entry
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._- ".contains(&b))
}

/// Checks one list (`name` for messages), reporting each problem at its value.
pub(super) fn check_list(
    name: &str,
    raw: &RawList,
    error: &mut dyn FnMut(Range<usize>, String),
) -> Vec<String> {
    if raw.get_ref().len() > MAX_ENTRIES {
        error(
            raw.span(),
            format!("{name} lists more than {MAX_ENTRIES} entries"),
        );
    }
    let mut out: Vec<String> = Vec::new();
    for entry in raw.get_ref() {
        let value = entry.get_ref();
        if !is_valid_entry(value) {
            error(
                entry.span(),
                format!(
                    "{name} entry {value:?} must be 1 to 64 letters, digits, '.', '_', '-' or inner spaces"
                ),
            );
        } else if out.contains(value) {
            error(entry.span(), format!("{name} lists {value:?} twice"));
        } else {
            out.push(value.clone());
        }
    }
    out
}

impl RawConsole {
    /// The table's lists (queues' own are added by the caller).
    pub(super) fn build(&self, error: &mut dyn FnMut(Range<usize>, String)) -> ConsoleLists {
        let mut lists = ConsoleLists::default();
        if let Some(raw) = &self.away_reasons {
            lists.away_reasons = check_list("away_reasons", raw, error);
        }
        if let Some(raw) = &self.dispositions {
            lists.dispositions = check_list("dispositions", raw, error);
        }
        lists
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lists() -> ConsoleLists {
        ConsoleLists {
            away_reasons: vec!["lunch".into()],
            dispositions: vec!["sale".into(), "support".into()],
            queue_dispositions: BTreeMap::from([(
                "vip".to_owned(),
                vec!["sale".to_owned(), "vip-care".to_owned()],
            )]),
        }
    }

    #[test]
    fn a_queues_own_list_replaces_the_tables() {
        let l = lists();
        assert_eq!(l.dispositions_of("support"), ["sale", "support"]);
        assert_eq!(l.dispositions_of("vip"), ["sale", "vip-care"]);
        assert_eq!(l.queues_allowing("sale", &["support", "vip"]), None);
        assert_eq!(
            l.queues_allowing("support", &["support", "vip"]),
            Some(vec!["support"])
        );
        assert_eq!(
            l.queues_allowing("vip-care", &["support", "vip"]),
            Some(vec!["vip"])
        );
        assert_eq!(l.queues_allowing("nope", &["support", "vip"]), Some(vec![]));
        assert_eq!(l.all_dispositions(), ["sale", "support", "vip-care"]);
    }

    #[test]
    fn entries_are_short_plain_words() {
        for ok in ["lunch", "no-sale", "call back", "a.b_c"] {
            assert!(is_valid_entry(ok), "{ok}");
        }
        for bad in ["", " lunch", "lunch ", "<b>", "a\nb", &"x".repeat(65)] {
            assert!(!is_valid_entry(bad), "{bad:?}");
        }
    }
}
