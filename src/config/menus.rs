//! `[menus.NAME]`: a keypad menu a number answers with before any queue
//! (issue 21, item 4). Its prompt is spoken inside a one-key `<Gather>`; each
//! key routes to a queue with needs, or runs a fallback step (voicemail, a
//! forward) that needs no agent. No key, or a key that is not an option, hears
//! the prompt once more; the second time the `default` option is taken.
//!
//! ```toml
//! [menus.main]
//! prompt = "For sales press 1. Para español, oprima 2."
//! timeout_secs = 5
//! default = "1"
//! options = { "1" = { queue = "sales" }, "2" = { queue = "sales", needs = "es" }, "0" = { step = "voicemail" } }
//! ```

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use super::routing::FallbackStep;
use crate::agent::is_valid_id;
use crate::needs::Needs;

/// The keys a menu may offer: what `<Gather>` can report from a keypad.
pub const MENU_KEYS: &str = "0123456789*#";
/// Longest `timeout_secs`.
pub const MAX_TIMEOUT_SECS: i64 = 60;
/// Longest prompt, in characters.
pub const MAX_PROMPT_CHARS: usize = 4096;
/// Highest priority a call may be given (0: none, served by arrival).
pub const MAX_PRIORITY: u8 = 100;
/// How many times the prompt is heard before the default is taken.
pub const TRIES: u32 = 2;

/// A menu, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Menu {
    pub name: String,
    pub prompt: String,
    /// `<Gather timeout>`: seconds of silence after the prompt before it is
    /// taken as no key.
    pub timeout_secs: u32,
    pub options: BTreeMap<char, MenuOption>,
    /// The option taken after the prompt was heard twice without a valid key.
    pub default: char,
}

/// What a key does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MenuOption {
    /// Routes the call to `queue`, needing `needs` of an agent at every step,
    /// with `priority` (0 to 100) in its line.
    Route {
        queue: String,
        needs: Needs,
        priority: u8,
    },
    /// A fallback step that answers without an agent.
    Step(FallbackStep),
}

impl Menu {
    /// What `digits` (a `<Gather>`'s `Digits`; None or "" for no key) does on
    /// try `attempt` (1-based): its option, `None` to hear the prompt again.
    pub fn choose(&self, digits: Option<&str>, attempt: u32) -> Option<(char, &MenuOption)> {
        let key = digits.and_then(|d| {
            let mut chars = d.chars();
            let key = chars.next()?;
            chars.next().is_none().then_some(key)
        });
        if let Some((key, option)) = key.and_then(|k| self.options.get_key_value(&k)) {
            return Some((*key, option));
        }
        if attempt < TRIES {
            return None;
        }
        self.options
            .get_key_value(&self.default)
            .map(|(key, option)| (*key, option))
    }

    /// The name a menu option's needs are kept under beside numbers' (see
    /// `RoutingTable::steps_for`).
    pub fn source(&self, key: char) -> String {
        format!("menu:{}:{key}", self.name)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMenu {
    prompt: Spanned<String>,
    timeout_secs: Option<Spanned<i64>>,
    default: Spanned<String>,
    options: Spanned<BTreeMap<String, Spanned<RawOption>>>,
}

impl RawMenu {
    /// Where its options are written.
    pub(super) fn options_span(&self) -> Range<usize> {
        self.options.span()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOption {
    queue: Option<String>,
    needs: Option<String>,
    priority: Option<i64>,
    step: Option<String>,
}

/// Checks one menu as written; each problem goes to `error` with its span.
/// `queue_exists` says whether a queue is defined; `step_allowed` checks a
/// step against `[contacts]` (and reports a refusal itself).
pub(super) fn check(
    name: &str,
    raw: &RawMenu,
    queue_exists: &dyn Fn(&str) -> bool,
    step_allowed: &mut dyn FnMut(&FallbackStep, Range<usize>),
    error: &mut dyn FnMut(Range<usize>, String),
) -> Menu {
    let at = format!("menu {name:?}");
    if !is_valid_id(name) {
        error(
            raw.prompt.span(),
            format!("{at}: a menu name must match [A-Za-z0-9._-]{{1,64}}"),
        );
    }
    let prompt = raw.prompt.get_ref().trim().to_owned();
    if prompt.is_empty() || prompt.chars().count() > MAX_PROMPT_CHARS {
        error(
            raw.prompt.span(),
            format!("{at}: prompt must be 1 to {MAX_PROMPT_CHARS} characters"),
        );
    }
    let timeout_secs = match &raw.timeout_secs {
        None => 5,
        Some(t) => match u32::try_from(*t.get_ref()) {
            Ok(secs) if (1..=MAX_TIMEOUT_SECS).contains(&i64::from(secs)) => secs,
            _ => {
                error(
                    t.span(),
                    format!(
                        "{at}: timeout_secs must be 1 to {MAX_TIMEOUT_SECS}, not {}",
                        t.get_ref()
                    ),
                );
                5
            }
        },
    };
    let mut options = BTreeMap::new();
    if raw.options.get_ref().is_empty() {
        error(raw.options.span(), format!("{at}: options is empty"));
    }
    for (key, option) in raw.options.get_ref() {
        let span = option.span();
        let mut chars = key.chars();
        let key = match (chars.next(), chars.next()) {
            (Some(k), None) if MENU_KEYS.contains(k) => k,
            _ => {
                error(
                    span,
                    format!("{at}: option {key:?} must be one key: 0 to 9, * or #"),
                );
                continue;
            }
        };
        let o = option.get_ref();
        let at = format!("{at}, option \"{key}\"");
        let parsed = if let Some(step) = &o.step {
            if o.queue.is_some() || o.needs.is_some() || o.priority.is_some() {
                error(
                    span,
                    format!(
                        "{at}: a step takes no queue, needs or priority (give one or the other)"
                    ),
                );
                continue;
            }
            match step.parse::<FallbackStep>() {
                Ok(FallbackStep::Queue(_)) => {
                    error(
                        span,
                        format!("{at}: step {step:?}: route to a queue with queue = \"…\""),
                    );
                    continue;
                }
                Ok(step) => {
                    step_allowed(&step, span.clone());
                    MenuOption::Step(step)
                }
                Err(e) => {
                    error(span, format!("{at}: {e}"));
                    continue;
                }
            }
        } else if let Some(queue) = &o.queue {
            if !queue_exists(queue) {
                error(span.clone(), format!("{at}: names unknown queue {queue:?}"));
            }
            let needs = match o.needs.as_deref().map(Needs::parse) {
                None => Needs::any(),
                Some(Ok(needs)) => needs,
                Some(Err(e)) => {
                    error(
                        span.clone(),
                        format!("{at}: needs {:?}: {e}", o.needs.as_deref().unwrap_or("")),
                    );
                    Needs::any()
                }
            };
            let priority = match o.priority {
                None => 0,
                Some(p) => u8::try_from(p)
                    .ok()
                    .filter(|p| *p <= MAX_PRIORITY)
                    .unwrap_or_else(|| {
                        error(
                            span.clone(),
                            format!("{at}: priority must be 0 to {MAX_PRIORITY}, not {p}"),
                        );
                        0
                    }),
            };
            MenuOption::Route {
                queue: queue.clone(),
                needs,
                priority,
            }
        } else {
            error(
                span,
                format!("{at}: give a queue (with needs, if any) or a step"),
            );
            continue;
        };
        options.insert(key, parsed);
    }
    let default_key = raw.default.get_ref();
    let default = default_key.chars().next().unwrap_or('?');
    if default_key.chars().count() != 1 || !options.contains_key(&default) {
        error(
            raw.default.span(),
            format!("{at}: default {default_key:?} must be one of its options' keys"),
        );
    }
    Menu {
        name: name.to_owned(),
        prompt,
        timeout_secs,
        options,
        default,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Doc {
        menus: BTreeMap<String, RawMenu>,
    }

    fn checked(text: &str) -> (Vec<Menu>, Vec<String>) {
        let doc: Doc = toml::from_str(text).expect("TOML");
        let mut errors = Vec::new();
        let menus = doc
            .menus
            .iter()
            .map(|(name, raw)| {
                check(name, raw, &|q| q == "sales", &mut |_, _| {}, &mut |_, e| {
                    errors.push(e)
                })
            })
            .collect();
        (menus, errors)
    }

    const MAIN: &str = r##"
[menus.main]
prompt = "For sales press 1. Para español, oprima 2."
default = "1"
options = { "1" = { queue = "sales" }, "2" = { queue = "sales", needs = "es" }, "#" = { step = "voicemail" } }
"##;

    #[test]
    fn a_key_chooses_its_option_and_no_key_twice_the_default() {
        let (menus, errors) = checked(MAIN);
        assert!(errors.is_empty(), "{errors:?}");
        let menu = &menus[0];
        assert_eq!(menu.timeout_secs, 5);
        let (key, option) = menu.choose(Some("2"), 1).unwrap();
        assert_eq!(key, '2');
        assert!(matches!(option, MenuOption::Route { needs, .. } if needs.text() == "es"));
        assert!(matches!(
            menu.choose(Some("#"), 1),
            Some(('#', MenuOption::Step(FallbackStep::Voicemail)))
        ));
        // No key, or one that is not an option: once more, then the default.
        assert!(menu.choose(None, 1).is_none());
        assert!(menu.choose(Some("7"), 1).is_none());
        assert!(menu.choose(Some("12"), 1).is_none());
        assert_eq!(menu.choose(None, 2).map(|(k, _)| k), Some('1'));
        assert_eq!(menu.choose(Some("7"), 2).map(|(k, _)| k), Some('1'));
        assert_eq!(menu.source('2'), "menu:main:2");
    }

    #[test]
    fn a_problem_names_the_menu_and_the_option() {
        let (_, errors) = checked(
            r#"
[menus.m]
prompt = "p"
default = "9"
timeout_secs = 0
options = { "1" = { queue = "support" }, "2" = { queue = "sales", needs = "es and" }, "3" = { step = "queue:sales" }, "x" = { queue = "sales" }, "4" = {}, "5" = { step = "voicemail", needs = "es" }, "6" = { queue = "sales", priority = 101 } }
"#,
        );
        let expected = [
            "menu \"m\": timeout_secs must be 1 to 60, not 0",
            "menu \"m\", option \"1\": names unknown queue \"support\"",
            "menu \"m\", option \"2\": needs \"es and\": ends too soon: expected a skill, `any`, `not` or `(`",
            "menu \"m\", option \"3\": step \"queue:sales\": route to a queue with queue = \"…\"",
            "menu \"m\", option \"4\": give a queue (with needs, if any) or a step",
            "menu \"m\", option \"5\": a step takes no queue, needs or priority (give one or the other)",
            "menu \"m\", option \"6\": priority must be 0 to 100, not 101",
            "menu \"m\": option \"x\" must be one key: 0 to 9, * or #",
            "menu \"m\": default \"9\" must be one of its options' keys",
        ];
        for e in expected {
            assert!(
                errors.iter().any(|got| got == e),
                "missing {e:?} in {errors:#?}"
            );
        }
        assert_eq!(errors.len(), expected.len(), "{errors:#?}");
    }
}
