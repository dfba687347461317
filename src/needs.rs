//! The needs language: what a call needs of the agent who takes it, written as
//! a small boolean expression over the agents' skills (issue 21), e.g.
//! `es and billing>=3`, `(es or pt) and not trainee`, `any`.
//!
//! ```text
//! expr    = and { "or" and }
//! and     = unary { "and" unary }
//! unary   = "not" unary | primary
//! primary = "(" expr ")" | "any" | skill [ ">=" level ]
//! skill   = a lowercase letter, then lowercase letters, digits, `_`
//!           (at most 32 characters; not `and`, `or`, `not`, `any`)
//! level   = 1 ..= 100
//! ```
//!
//! `skill` alone means the agent has it at any level (a skill given without a
//! level has level 1). An expression is parsed once, at start, into its
//! disjunctive normal form: a list of alternatives, each a list of skill tests
//! all of which must hold. That is the shape the Lua scripts evaluate, and
//! what lets them walk only the smallest index an alternative needs (the
//! agents free in the queue with its rarest required skill) rather than every
//! free agent.

use std::collections::BTreeMap;
use std::fmt;

/// Highest skill level.
pub const MAX_LEVEL: u8 = 100;
/// Longest skill name.
pub const MAX_SKILL_CHARS: usize = 32;
/// Most alternatives an expression may expand to: `(a or b) and (c or d) and
/// …` doubles with each group, and each alternative is one index walk.
pub const MAX_ALTERNATIVES: usize = 16;
/// Longest expression, in characters.
pub const MAX_EXPR_CHARS: usize = 512;

const KEYWORDS: [&str; 4] = ["and", "or", "not", "any"];

/// Whether `name` may be a skill's name.
pub fn is_skill_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && name.len() <= MAX_SKILL_CHARS
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && !KEYWORDS.contains(&name)
}

/// An agent's skills: name → level (1 ..= 100).
pub type Skills = BTreeMap<String, u8>;

/// Most skills one agent may have.
pub const MAX_SKILLS: usize = 64;

/// An agent's skills as the API and the agents file take them: levels by name
/// (`{"es": 3, "billing": 5}`), or names alone (`["es", "billing"]`, level 1
/// each). Its OpenAPI schema is [`schema::SkillsInput`], which states the rules.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(untagged)]
pub enum SkillsInput {
    /// Levels as JSON numbers: JSON Schema's `integer` allows `3.0`, which
    /// serde's integer types refuse (`check_skills` takes whole numbers).
    Levels(BTreeMap<String, serde_json::Number>),
    Names(Vec<String>),
}

/// A skill's name as `is_skill_name` takes it, spelled out without a lookahead
/// so every regex dialect reads it alike (`openapi::tests` checks it against
/// the code): a lowercase letter, then lowercase letters, digits or `_`, at
/// most 32, and not `and`, `or`, `not` or `any`.
pub const SKILL_NAME_PATTERN: &str = r"^(?:[a-z]|[a-np-z][a-z0-9_]|o[a-qs-z0-9_]|[b-mo-z][a-z0-9_]{2}|a[a-mo-z0-9_][a-z0-9_]|an[a-ce-xz0-9_]|n[a-np-z0-9_][a-z0-9_]|no[a-su-z0-9_]|[a-z][a-z0-9_]{3,31})$";

/// The OpenAPI schemas of skills, built by hand: the derive cannot say
/// `maxProperties`, `uniqueItems` or a map's key pattern, and every rule the
/// handler enforces must be in the schema (schema-valid bodies are accepted).
pub mod schema {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::{
        ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
    };

    use super::{MAX_LEVEL, MAX_SKILL_CHARS, MAX_SKILLS, SKILL_NAME_PATTERN};

    fn name() -> ObjectBuilder {
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .min_length(Some(1))
            .max_length(Some(MAX_SKILL_CHARS))
            .pattern(Some(SKILL_NAME_PATTERN))
    }

    /// Levels by name: `{"es": 3}`.
    fn levels(max: Option<usize>) -> ObjectBuilder {
        let level = ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::Integer))
            .minimum(Some(1))
            .maximum(Some(MAX_LEVEL));
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::Object))
            .property_names(Some(name()))
            .additional_properties(Some(level))
            .max_properties(max)
    }

    /// What `PUT /v1/agents/{id}` takes as `skills`.
    pub struct SkillsInput;

    impl utoipa::PartialSchema for SkillsInput {
        fn schema() -> RefOr<Schema> {
            let names = ArrayBuilder::new()
                .items(name())
                .max_items(Some(MAX_SKILLS))
                .unique_items(true)
                .description(Some("names alone, level 1 each: [\"es\", \"billing\"]"));
            OneOfBuilder::new()
                .item(levels(Some(MAX_SKILLS)).description(Some(
                    "levels (1 to 100) by name: {\"es\": 3, \"billing\": 5}",
                )))
                .item(names)
                .description(Some(
                    "An agent's skills, at most 64: levels by name, or names alone. A name is a lowercase letter, then lowercase letters, digits or _, at most 32, and not and, or, not, any.",
                ))
                .into()
        }
    }

    impl utoipa::ToSchema for SkillsInput {}

    /// An agent document's `skills`: levels by name.
    pub struct Skills;

    impl utoipa::PartialSchema for Skills {
        fn schema() -> RefOr<Schema> {
            levels(None)
                .description(Some("Skill name -> level (1 to 100)."))
                .into()
        }
    }

    impl utoipa::ToSchema for Skills {}
}

/// The skills as stored, or what is wrong with them (the first problem).
pub fn check_skills(input: &SkillsInput) -> Result<Skills, String> {
    let one = serde_json::Number::from(1);
    let pairs: Vec<(&str, &serde_json::Number)> = match input {
        SkillsInput::Levels(levels) => levels.iter().map(|(k, v)| (k.as_str(), v)).collect(),
        SkillsInput::Names(names) => names.iter().map(|n| (n.as_str(), &one)).collect(),
    };
    if pairs.len() > MAX_SKILLS {
        return Err(format!("at most {MAX_SKILLS} skills, not {}", pairs.len()));
    }
    let mut skills = Skills::new();
    for (name, level) in pairs {
        if !is_skill_name(name) {
            return Err(format!(
                "skill {name:?} must be a lowercase letter, then lowercase letters, digits or _ (at most {MAX_SKILL_CHARS}), and not and, or, not, any"
            ));
        }
        let level = whole(level)
            .and_then(|l| u8::try_from(l).ok())
            .filter(|l| (1..=MAX_LEVEL).contains(l))
            .ok_or_else(|| {
                format!(
                    "skill {name:?}: level {level} must be a whole number from 1 to {MAX_LEVEL}"
                )
            })?;
        if skills.insert(name.to_owned(), level).is_some() {
            return Err(format!("skill {name:?} is given twice"));
        }
    }
    Ok(skills)
}

/// A JSON number with no fraction (`3`, `3.0`) as a whole number.
fn whole(n: &serde_json::Number) -> Option<i64> {
    n.as_i64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 1e15)
            .map(|f| f as i64)
    })
}

/// As the agent's hash keeps them (`skills`, read by the Lua scripts):
/// `name:level` pairs, comma separated, by name.
pub fn encode_skills(skills: &Skills) -> String {
    skills
        .iter()
        .map(|(name, level)| format!("{name}:{level}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The stored form read back; a pair that does not parse is left out (only
/// `encode_skills` writes it).
pub fn decode_skills(stored: &str) -> Skills {
    stored
        .split(',')
        .filter_map(|pair| {
            let (name, level) = pair.split_once(':')?;
            Some((name.to_owned(), level.parse().ok()?))
        })
        .collect()
}

/// One test of an alternative: the agent has `skill` at `min` or more (or,
/// `negated`, does not).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Test {
    pub skill: String,
    pub min: u8,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub negated: bool,
}

impl Test {
    fn holds(&self, skills: &Skills) -> bool {
        let has = skills
            .get(&self.skill)
            .is_some_and(|level| *level >= self.min);
        has != self.negated
    }
}

/// A parsed expression: its text and its alternatives (any one satisfied is
/// enough; an empty alternative is satisfied by every agent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needs {
    text: String,
    alternatives: Vec<Vec<Test>>,
}

impl Needs {
    /// `any`: every agent of the queue.
    pub fn any() -> Needs {
        Needs {
            text: "any".into(),
            alternatives: vec![Vec::new()],
        }
    }

    pub fn parse(text: &str) -> Result<Needs, NeedsError> {
        if text.chars().count() > MAX_EXPR_CHARS {
            return Err(NeedsError::new(
                0,
                format!("longer than {MAX_EXPR_CHARS} characters"),
            ));
        }
        let tokens = tokenize(text)?;
        let mut parser = Parser { tokens, at: 0 };
        let expr = parser.or()?;
        if let Some((column, token)) = parser.tokens.get(parser.at) {
            return Err(NeedsError::new(
                *column,
                format!("unexpected {token} (expected `and`, `or` or the end)"),
            ));
        }
        let alternatives = dnf(&nnf(expr, false))
            .ok_or_else(|| {
                NeedsError::new(
                    0,
                    format!("expands to more than {MAX_ALTERNATIVES} alternatives: simplify it"),
                )
            })?
            .into_iter()
            .filter_map(simplify)
            .collect::<Vec<_>>();
        if alternatives.is_empty() {
            return Err(NeedsError::new(0, "no agent can ever satisfy it".into()));
        }
        Ok(Needs {
            text: text.trim().to_owned(),
            alternatives: prune(alternatives),
        })
    }

    /// The expression as written (trimmed).
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn alternatives(&self) -> &[Vec<Test>] {
        &self.alternatives
    }

    /// True when every agent satisfies it.
    pub fn is_any(&self) -> bool {
        self.alternatives.iter().any(Vec::is_empty)
    }

    pub fn satisfied_by(&self, skills: &Skills) -> bool {
        self.alternatives
            .iter()
            .any(|tests| tests.iter().all(|t| t.holds(skills)))
    }

    /// Both at once: each alternative of one with each of the other (not
    /// parsed again, so two expressions of the longest length may be joined).
    pub fn and(&self, other: &Needs) -> Result<Needs, NeedsError> {
        if other.is_any() {
            return Ok(self.clone());
        }
        if self.is_any() {
            return Ok(other.clone());
        }
        let mut alternatives = Vec::new();
        for a in &self.alternatives {
            for b in &other.alternatives {
                alternatives.extend(simplify(a.iter().chain(b).cloned().collect()));
            }
        }
        if alternatives.len() > MAX_ALTERNATIVES {
            return Err(NeedsError::new(
                0,
                format!("together they expand to more than {MAX_ALTERNATIVES} alternatives"),
            ));
        }
        if alternatives.is_empty() {
            return Err(NeedsError::new(
                0,
                "together no agent can ever satisfy them".into(),
            ));
        }
        Ok(Needs {
            text: format!("({}) and ({})", self.text, other.text),
            alternatives: prune(alternatives),
        })
    }

    /// Every one of `skills` at its level or more (`es>=2 and vip`); `any`
    /// when there are none.
    pub fn all_of(skills: &Skills) -> Needs {
        if skills.is_empty() {
            return Needs::any();
        }
        let text = skills
            .iter()
            .map(|(name, level)| match level {
                1 => name.clone(),
                _ => format!("{name}>={level}"),
            })
            .collect::<Vec<_>>()
            .join(" and ");
        let tests = skills
            .iter()
            .map(|(name, level)| Test {
                skill: name.clone(),
                min: *level,
                negated: false,
            })
            .collect();
        Needs {
            text,
            alternatives: vec![tests],
        }
    }

    /// The skills it names.
    pub fn skills(&self) -> impl Iterator<Item = &str> {
        self.alternatives.iter().flatten().map(|t| t.skill.as_str())
    }
}

impl fmt::Display for Needs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Why an expression was refused: where (a 1-based column; 0 for the whole)
/// and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", if *.column > 0 { format!("at column {column}: ") } else { String::new() })]
pub struct NeedsError {
    pub column: usize,
    pub message: String,
}

impl NeedsError {
    fn new(column: usize, message: String) -> Self {
        NeedsError { column, message }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Number(u32),
    AtLeast,
    Open,
    Close,
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Word(w) => write!(f, "`{w}`"),
            Token::Number(n) => write!(f, "`{n}`"),
            Token::AtLeast => f.write_str("`>=`"),
            Token::Open => f.write_str("`(`"),
            Token::Close => f.write_str("`)`"),
        }
    }
}

fn tokenize(text: &str) -> Result<Vec<(usize, Token)>, NeedsError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let column = i + 1;
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' || c == ')' {
            tokens.push((column, if c == '(' { Token::Open } else { Token::Close }));
            i += 1;
        } else if c == '>' && chars.get(i + 1) == Some(&'=') {
            tokens.push((column, Token::AtLeast));
            i += 2;
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            let digits: String = chars[start..i].iter().collect();
            let n = digits.parse().unwrap_or(u32::MAX);
            tokens.push((column, Token::Number(n)));
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push((column, Token::Word(chars[start..i].iter().collect())));
        } else {
            return Err(NeedsError::new(
                column,
                format!(
                    "unexpected {c:?} (skills, `>=`, `and`, `or`, `not`, `any` and parentheses only)"
                ),
            ));
        }
    }
    Ok(tokens)
}

#[derive(Debug, Clone)]
enum Expr {
    Any,
    Has { skill: String, min: u8 },
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    at: usize,
}

impl Parser {
    fn peek_word(&self, word: &str) -> bool {
        matches!(self.tokens.get(self.at), Some((_, Token::Word(w))) if w == word)
    }

    fn or(&mut self) -> Result<Expr, NeedsError> {
        let mut left = self.and()?;
        while self.peek_word("or") {
            self.at += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, NeedsError> {
        let mut left = self.unary()?;
        while self.peek_word("and") {
            self.at += 1;
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, NeedsError> {
        if self.peek_word("not") {
            self.at += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, NeedsError> {
        let expected = "expected a skill, `any`, `not` or `(`";
        let Some((column, token)) = self.tokens.get(self.at).cloned() else {
            return Err(NeedsError::new(0, format!("ends too soon: {expected}")));
        };
        self.at += 1;
        match token {
            Token::Open => {
                let inner = self.or()?;
                match self.tokens.get(self.at) {
                    Some((_, Token::Close)) => {
                        self.at += 1;
                        Ok(inner)
                    }
                    Some((c, t)) => Err(NeedsError::new(
                        *c,
                        format!("unexpected {t} (expected `)`)"),
                    )),
                    None => Err(NeedsError::new(
                        0,
                        format!("the `(` at column {column} is never closed"),
                    )),
                }
            }
            Token::Word(w) if w == "any" => Ok(Expr::Any),
            Token::Word(w) if is_skill_name(&w) => {
                let mut min = 1;
                if let Some((_, Token::AtLeast)) = self.tokens.get(self.at) {
                    self.at += 1;
                    match self.tokens.get(self.at) {
                        Some((_, Token::Number(n))) if (1..=u32::from(MAX_LEVEL)).contains(n) => {
                            min = u8::try_from(*n).unwrap_or(MAX_LEVEL);
                            self.at += 1;
                        }
                        Some((c, t)) => {
                            return Err(NeedsError::new(
                                *c,
                                format!("unexpected {t} (expected a level, 1 to {MAX_LEVEL})"),
                            ));
                        }
                        None => {
                            return Err(NeedsError::new(
                                0,
                                format!("ends too soon: expected a level after `{w}>=`"),
                            ));
                        }
                    }
                }
                Ok(Expr::Has { skill: w, min })
            }
            Token::Word(w) => Err(NeedsError::new(
                column,
                if KEYWORDS.contains(&w.as_str()) {
                    format!("unexpected `{w}` ({expected})")
                } else {
                    format!(
                        "`{w}` is not a skill name (a lowercase letter, then lowercase letters, digits or `_`, at most {MAX_SKILL_CHARS})"
                    )
                },
            )),
            other => Err(NeedsError::new(
                column,
                format!("unexpected {other} ({expected})"),
            )),
        }
    }
}

/// Negations pushed down to the skill tests (De Morgan); `not any` is the
/// empty disjunction.
#[derive(Debug, Clone)]
enum Nnf {
    True,
    False,
    Test(Test),
    And(Vec<Nnf>),
    Or(Vec<Nnf>),
}

fn nnf(expr: Expr, negated: bool) -> Nnf {
    match (expr, negated) {
        (Expr::Any, false) => Nnf::True,
        (Expr::Any, true) => Nnf::False,
        (Expr::Has { skill, min }, negated) => Nnf::Test(Test {
            skill,
            min,
            negated,
        }),
        (Expr::Not(inner), negated) => nnf(*inner, !negated),
        (Expr::And(a, b), false) | (Expr::Or(a, b), true) => {
            Nnf::And(vec![nnf(*a, negated), nnf(*b, negated)])
        }
        (Expr::Or(a, b), false) | (Expr::And(a, b), true) => {
            Nnf::Or(vec![nnf(*a, negated), nnf(*b, negated)])
        }
    }
}

/// The alternatives; None past `MAX_ALTERNATIVES`.
fn dnf(expr: &Nnf) -> Option<Vec<Vec<Test>>> {
    let out = match expr {
        Nnf::True => vec![Vec::new()],
        Nnf::False => Vec::new(),
        Nnf::Test(t) => vec![vec![t.clone()]],
        Nnf::Or(parts) => {
            let mut all = Vec::new();
            for p in parts {
                all.extend(dnf(p)?);
            }
            all
        }
        Nnf::And(parts) => {
            let mut acc = vec![Vec::new()];
            for p in parts {
                let right = dnf(p)?;
                let mut next = Vec::with_capacity(acc.len() * right.len());
                for a in &acc {
                    for b in &right {
                        next.push(a.iter().chain(b).cloned().collect());
                    }
                }
                if next.len() > MAX_ALTERNATIVES {
                    return None;
                }
                acc = next;
            }
            acc
        }
    };
    (out.len() <= MAX_ALTERNATIVES).then_some(out)
}

/// One alternative with its tests merged per skill (`a>=2 and a>=3` is
/// `a>=3`); None when it can never hold (`a and not a`).
fn simplify(tests: Vec<Test>) -> Option<Vec<Test>> {
    // Per skill: the least level needed, and the level it must stay under.
    let mut bounds: BTreeMap<String, (u8, u8)> = BTreeMap::new();
    for t in tests {
        let (low, high) = bounds.entry(t.skill).or_insert((0, u8::MAX));
        if t.negated {
            *high = (*high).min(t.min);
        } else {
            *low = (*low).max(t.min);
        }
    }
    let mut out = Vec::new();
    for (skill, (low, high)) in bounds {
        if low > 0 && high <= low {
            return None;
        }
        if low > 0 {
            out.push(Test {
                skill: skill.clone(),
                min: low,
                negated: false,
            });
        }
        if high != u8::MAX {
            out.push(Test {
                skill,
                min: high,
                negated: true,
            });
        }
    }
    Some(out)
}

/// Alternatives that another, weaker one already covers are dropped (`a or (a
/// and b)` is `a`); duplicates too.
fn prune(mut alternatives: Vec<Vec<Test>>) -> Vec<Vec<Test>> {
    alternatives.sort_by_key(Vec::len);
    let mut kept: Vec<Vec<Test>> = Vec::new();
    for alt in alternatives {
        if !kept.iter().any(|k| k.iter().all(|t| alt.contains(t))) {
            kept.push(alt);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skills(pairs: &[(&str, u8)]) -> Skills {
        pairs.iter().map(|(s, l)| ((*s).to_owned(), *l)).collect()
    }

    fn err(text: &str) -> String {
        Needs::parse(text).expect_err(text).to_string()
    }

    #[test]
    fn precedence_is_not_then_and_then_or() {
        let n = Needs::parse("es or pt and billing>=3").unwrap();
        assert!(n.satisfied_by(&skills(&[("es", 1)])));
        assert!(!n.satisfied_by(&skills(&[("pt", 5)])));
        assert!(n.satisfied_by(&skills(&[("pt", 1), ("billing", 3)])));
        let n = Needs::parse("(es or pt) and not trainee").unwrap();
        assert!(n.satisfied_by(&skills(&[("pt", 1)])));
        assert!(!n.satisfied_by(&skills(&[("pt", 1), ("trainee", 1)])));
        assert_eq!(n.alternatives().len(), 2);
    }

    #[test]
    fn levels_are_lower_bounds_and_a_bare_skill_is_any_level() {
        let n = Needs::parse("billing>=3").unwrap();
        assert!(!n.satisfied_by(&skills(&[("billing", 2)])));
        assert!(n.satisfied_by(&skills(&[("billing", 3)])));
        assert!(n.satisfied_by(&skills(&[("billing", 100)])));
        assert!(
            Needs::parse("billing")
                .unwrap()
                .satisfied_by(&skills(&[("billing", 1)]))
        );
        let n = Needs::parse("not billing>=3").unwrap();
        assert!(n.satisfied_by(&skills(&[("billing", 2)])));
        assert!(n.satisfied_by(&skills(&[])));
        assert!(!n.satisfied_by(&skills(&[("billing", 4)])));
    }

    #[test]
    fn any_matches_everyone_and_absorbs() {
        assert!(Needs::any().is_any());
        assert!(Needs::parse("any").unwrap().satisfied_by(&skills(&[])));
        assert!(Needs::parse("es or any").unwrap().is_any());
        let n = Needs::parse("es and any").unwrap();
        assert_eq!(n.alternatives(), Needs::parse("es").unwrap().alternatives());
    }

    #[test]
    fn alternatives_are_merged_and_pruned() {
        let n = Needs::parse("billing>=2 and billing>=4").unwrap();
        assert_eq!(
            n.alternatives(),
            &[vec![Test {
                skill: "billing".into(),
                min: 4,
                negated: false
            }]]
        );
        assert_eq!(
            Needs::parse("es or (es and pt)")
                .unwrap()
                .alternatives()
                .len(),
            1
        );
        assert_eq!(Needs::parse("es or es").unwrap().alternatives().len(), 1);
        // A contradictory alternative is dropped; the other stays.
        let n = Needs::parse("(es and not es) or pt").unwrap();
        assert_eq!(n.alternatives().len(), 1);
        // `b>=2 and not b>=5`: level 2 to 4.
        let n = Needs::parse("b>=2 and not b>=5").unwrap();
        assert!(n.satisfied_by(&skills(&[("b", 4)])));
        assert!(!n.satisfied_by(&skills(&[("b", 5)])));
        assert!(!n.satisfied_by(&skills(&[("b", 1)])));
    }

    #[test]
    fn and_of_two_keeps_both() {
        let step = Needs::parse("es or pt").unwrap();
        let call = Needs::parse("billing>=3").unwrap();
        let both = step.and(&call).unwrap();
        assert!(both.satisfied_by(&skills(&[("pt", 1), ("billing", 3)])));
        assert!(!both.satisfied_by(&skills(&[("pt", 1)])));
        assert_eq!(step.and(&Needs::any()).unwrap(), step);
        assert_eq!(both.text(), "(es or pt) and (billing>=3)");
        // Not parsed again: two of the longest expressions join.
        let longest = |prefix: &str| {
            let tests: Vec<String> = (0..13)
                .map(|i| format!("{}{i:02}>=2", prefix.repeat(28)))
                .collect();
            Needs::parse(&tests.join(" and ")).unwrap()
        };
        let (a, b) = (longest("a"), longest("b"));
        assert!(a.text().len() > MAX_EXPR_CHARS - 40, "{}", a.text().len());
        assert_eq!(a.and(&b).unwrap().alternatives()[0].len(), 26);
        // Contradictions are refused, not kept as a step nobody meets.
        let es = Needs::parse("es").unwrap();
        let no_es = Needs::parse("not es").unwrap();
        assert!(es.and(&no_es).is_err());
    }

    #[test]
    fn all_of_needs_each_skill_at_its_level() {
        let n = Needs::all_of(&skills(&[("es", 2), ("vip", 1)]));
        assert_eq!(n.text(), "es>=2 and vip");
        assert!(n.satisfied_by(&skills(&[("es", 3), ("vip", 1)])));
        assert!(!n.satisfied_by(&skills(&[("es", 1), ("vip", 1)])));
        assert!(Needs::all_of(&Skills::new()).is_any());
    }

    #[test]
    fn errors_say_where_and_what() {
        assert_eq!(
            err("es and"),
            "ends too soon: expected a skill, `any`, `not` or `(`"
        );
        assert_eq!(
            err("es billing"),
            "at column 4: unexpected `billing` (expected `and`, `or` or the end)"
        );
        assert_eq!(
            err(">= 3"),
            "at column 1: unexpected `>=` (expected a skill, `any`, `not` or `(`)"
        );
        assert_eq!(
            Needs::parse("es >= 3").unwrap().alternatives(),
            Needs::parse("es>=3").unwrap().alternatives()
        );
        assert_eq!(
            err("billing>=0"),
            "at column 10: unexpected `0` (expected a level, 1 to 100)"
        );
        assert_eq!(
            err("billing>=101"),
            "at column 10: unexpected `101` (expected a level, 1 to 100)"
        );
        assert_eq!(err("(es or pt"), "the `(` at column 1 is never closed");
        assert_eq!(
            err("es & pt"),
            "at column 4: unexpected '&' (skills, `>=`, `and`, `or`, `not`, `any` and parentheses only)"
        );
        assert!(err("Spanish").contains("`Spanish` is not a skill name"));
        assert_eq!(err("es and not es"), "no agent can ever satisfy it");
        assert_eq!(err("not any"), "no agent can ever satisfy it");
        assert_eq!(
            err(""),
            "ends too soon: expected a skill, `any`, `not` or `(`"
        );
        let wide = (0..5)
            .map(|i| format!("(a{i} or b{i})"))
            .collect::<Vec<_>>()
            .join(" and ");
        assert!(
            err(&wide).contains("more than 16 alternatives"),
            "{}",
            err(&wide)
        );
        assert!(err(&"a or ".repeat(200)).contains("longer than 512"));
    }

    #[test]
    fn skills_are_levels_or_names_and_round_trip() {
        let level = |name: &str, n: f64| {
            let number = serde_json::Number::from_f64(n).unwrap();
            SkillsInput::Levels([(name.to_owned(), number)].into())
        };
        let levels = SkillsInput::Levels(
            [
                ("es".to_owned(), 3.into()),
                ("billing".to_owned(), 5.into()),
            ]
            .into(),
        );
        // JSON Schema's integers include 3.0.
        assert_eq!(check_skills(&level("es", 3.0)).unwrap()["es"], 3);
        let skills = check_skills(&levels).unwrap();
        assert_eq!(encode_skills(&skills), "billing:5,es:3");
        assert_eq!(decode_skills("billing:5,es:3"), skills);
        assert_eq!(decode_skills(""), Skills::new());
        let names = SkillsInput::Names(vec!["es".into(), "vip".into()]);
        assert_eq!(encode_skills(&check_skills(&names).unwrap()), "es:1,vip:1");
        for (bad, why) in [
            (
                SkillsInput::Levels([("es".to_owned(), 0.into())].into()),
                "level 0 must be a whole number from 1 to 100",
            ),
            (
                SkillsInput::Levels([("es".to_owned(), 101.into())].into()),
                "level 101",
            ),
            (level("es", 2.5), "level 2.5"),
            (
                SkillsInput::Names(vec!["Es".into()]),
                "skill \"Es\" must be",
            ),
            (
                SkillsInput::Names(vec!["es".into(), "es".into()]),
                "given twice",
            ),
            (
                SkillsInput::Names((0..65).map(|i| format!("s{i}")).collect()),
                "at most 64",
            ),
        ] {
            let error = check_skills(&bad).unwrap_err();
            assert!(error.contains(why), "{error}");
        }
    }

    #[test]
    fn skill_names() {
        for ok in ["es", "tier2", "billing_pro", "a"] {
            assert!(is_skill_name(ok), "{ok}");
        }
        for bad in ["", "Es", "2fa", "es-mx", "and", "any", &"a".repeat(33)] {
            assert!(!is_skill_name(bad), "{bad}");
        }
    }
}
