//! A queue's routing steps (issue 21): what a waiting call needs of an agent,
//! relaxed as it waits. `steps = [{ needs = "es and billing>=3", for_secs = 30
//! }, { needs = "billing", for_secs = 60 }, { needs = "any" }]`: the first step
//! holds from the call's arrival for its `for_secs`, then the next, and the
//! last holds until the call leaves the queue. A queue without `steps` has one
//! step, `any`: every agent of the queue, as before steps existed. Checked with
//! the rest of the routing file; a problem names its queue and step.

use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use crate::needs::{Needs, NeedsError};

/// Longest a step may hold: a day.
pub const MAX_STEP_SECS: i64 = 86_400;
/// Most steps a queue may have.
pub const MAX_STEPS: usize = 16;

/// One step, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub needs: Needs,
    /// How long it holds before the next; `None` for the last.
    pub for_ms: Option<u64>,
}

/// A queue's steps, checked: never empty, only the last without a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Steps(Vec<Step>);

impl Default for Steps {
    fn default() -> Self {
        Steps(vec![Step {
            needs: Needs::any(),
            for_ms: None,
        }])
    }
}

impl Steps {
    pub fn all(&self) -> &[Step] {
        &self.0
    }

    /// The step that holds `waited_ms` after the call's arrival, and its
    /// index.
    pub fn at(&self, waited_ms: u64) -> (usize, &Step) {
        let mut start = 0u64;
        for (i, step) in self.0.iter().enumerate() {
            match step.for_ms {
                Some(ms) if waited_ms >= start.saturating_add(ms) => start += ms,
                _ => return (i, step),
            }
        }
        // Only the last has no time, so the loop returned at it.
        let last = self.0.len() - 1;
        (last, &self.0[last])
    }

    /// True when there is only `any`: routing is what it was before steps.
    pub fn is_any(&self) -> bool {
        self.0.len() == 1 && self.0[0].needs.is_any()
    }

    /// Each step also needing `needs` (a number's), at the same times; the
    /// error says which step could not take both.
    pub fn and(&self, needs: &Needs) -> Result<Steps, (usize, NeedsError)> {
        self.0
            .iter()
            .enumerate()
            .map(|(i, step)| {
                Ok(Step {
                    needs: step.needs.and(needs).map_err(|e| (i, e))?,
                    for_ms: step.for_ms,
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Steps)
    }
}

/// `{ needs = "…", for_secs = N }` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStep {
    needs: Spanned<String>,
    for_secs: Option<Spanned<i64>>,
}

/// Checks a queue's `steps` as written; each problem goes to `error` with
/// the span it is about, and the steps come back as far as they are usable.
pub(super) fn check(
    queue: &str,
    raw: &Spanned<Vec<RawStep>>,
    error: &mut dyn FnMut(Range<usize>, String),
) -> Steps {
    let given = raw.get_ref();
    if given.is_empty() {
        error(
            raw.span(),
            format!(
                "queue {queue:?}: steps is empty (leave it out for \"any agent of the queue\")"
            ),
        );
        return Steps::default();
    }
    if given.len() > MAX_STEPS {
        error(
            raw.span(),
            format!(
                "queue {queue:?}: at most {MAX_STEPS} steps, not {}",
                given.len()
            ),
        );
    }
    let last = given.len() - 1;
    let mut steps = Vec::with_capacity(given.len());
    for (i, step) in given.iter().enumerate() {
        let name = format!("queue {queue:?}, step {}", i + 1);
        let needs = match Needs::parse(step.needs.get_ref()) {
            Ok(needs) => needs,
            Err(e) => {
                error(
                    step.needs.span(),
                    format!("{name}: needs {:?}: {e}", step.needs.get_ref()),
                );
                Needs::any()
            }
        };
        let for_ms = match (&step.for_secs, i == last) {
            (None, true) => None,
            (Some(secs), true) => {
                error(
                    secs.span(),
                    format!(
                        "{name}: the last step holds until the call leaves the queue, so it takes no for_secs"
                    ),
                );
                None
            }
            (None, false) => {
                error(
                    step.needs.span(),
                    format!(
                        "{name}: for_secs is missing (how long this step holds before the next)"
                    ),
                );
                Some(1000)
            }
            (Some(secs), false) => {
                let value = *secs.get_ref();
                if !(1..=MAX_STEP_SECS).contains(&value) {
                    error(
                        secs.span(),
                        format!("{name}: for_secs must be 1 to {MAX_STEP_SECS}, not {value}"),
                    );
                }
                Some(u64::try_from(value.clamp(1, MAX_STEP_SECS)).unwrap_or(1) * 1000)
            }
        };
        steps.push(Step { needs, for_ms });
    }
    Steps(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Doc {
        steps: Spanned<Vec<RawStep>>,
    }

    fn checked(toml_text: &str) -> (Steps, Vec<String>) {
        let doc: Doc = toml::from_str(toml_text).expect("TOML");
        let mut errors = Vec::new();
        let steps = check("sales", &doc.steps, &mut |_, e| errors.push(e));
        (steps, errors)
    }

    #[test]
    fn steps_hold_one_after_another_and_the_last_for_good() {
        let (steps, errors) = checked(
            r#"steps = [{ needs = "es and billing>=3", for_secs = 30 }, { needs = "billing", for_secs = 60 }, { needs = "any" }]"#,
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(steps.at(0).0, 0);
        assert_eq!(steps.at(29_999).0, 0);
        assert_eq!(steps.at(30_000).0, 1);
        assert_eq!(steps.at(89_999).0, 1);
        assert_eq!(steps.at(90_000).0, 2);
        assert_eq!(steps.at(u64::MAX).0, 2);
        assert_eq!(steps.at(0).1.needs.text(), "es and billing>=3");
        assert!(!steps.is_any());
        assert!(Steps::default().is_any());
    }

    #[test]
    fn a_problem_names_the_queue_and_the_step() {
        let (_, errors) =
            checked(r#"steps = [{ needs = "es and", for_secs = 30 }, { needs = "any" }]"#);
        assert_eq!(
            errors,
            [
                "queue \"sales\", step 1: needs \"es and\": ends too soon: expected a skill, `any`, `not` or `(`"
            ]
        );
        let (_, errors) = checked(r#"steps = [{ needs = "es" }, { needs = "any", for_secs = 5 }]"#);
        assert_eq!(
            errors,
            [
                "queue \"sales\", step 1: for_secs is missing (how long this step holds before the next)",
                "queue \"sales\", step 2: the last step holds until the call leaves the queue, so it takes no for_secs",
            ]
        );
        let (_, errors) = checked(r#"steps = [{ needs = "es", for_secs = 0 }, { needs = "any" }]"#);
        assert_eq!(
            errors,
            ["queue \"sales\", step 1: for_secs must be 1 to 86400, not 0"]
        );
        let (_, errors) = checked("steps = []");
        assert!(errors[0].contains("steps is empty"), "{errors:?}");
    }
}
