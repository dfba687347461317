//! The declarative roster: an agents file (TOML, the format of
//! `examples/agents.toml`) checked as a whole, compared with the agents in
//! Redis, and applied through the store calls behind `PUT` and
//! `DELETE /v1/agents/{id}`, so a roster kept in git can be applied again and
//! again (`switchboard agents import`) and the demo loads its agents the same
//! way.
//!
//! Only configuration is applied (name, contact, queues, heartbeat_secs), never
//! live state: an agent on a call, reserved, in wrap-up, available (and its
//! place in line) or away stays so. A file's `state` is the state an agent this
//! import creates starts in, and nothing else. The whole file is checked before
//! anything is written, so a mistake changes nothing.

use std::collections::HashMap;
use std::ops::Range;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use crate::agent::{AgentSpec, AgentState, SettableState, SpecError};
use crate::config::routing::{excerpt, line_of};
use crate::config::{RedisArgs, RoutingFileError, RoutingTable, SettingsError};
use crate::needs::{SkillsInput, encode_skills};
use crate::store::{Actor, AgentView, SetStateOutcome, Store, StoreError};

/// `switchboard agents import`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// The agents file (TOML): `[[agents]]` tables of id, name, contact,
    /// queues, and optionally heartbeat_secs and state (the state of an agent
    /// this import creates; an existing agent's state is never changed).
    pub file: PathBuf,
    /// Print what would change, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Also delete the agents in Redis that the file does not list (a call in
    /// progress ends normally, as with DELETE /v1/agents/{id}).
    #[arg(long)]
    pub prune: bool,
    /// Routing file whose queues and `[contacts]` the agents are checked
    /// against: the one the servers run with; default: built-in.
    #[arg(long, env = "SWITCHBOARD_ROUTING")]
    pub routing: Option<PathBuf>,
    #[command(flatten)]
    pub redis: RedisArgs,
}

/// The file as written; spans say where each value is, for errors.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    // Optional only so that its absence gets our message: an empty or
    // truncated file must not read as "no agents" (with --prune: delete all).
    agents: Option<Vec<Spanned<RawAgent>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgent {
    id: Spanned<String>,
    name: Spanned<String>,
    contact: Spanned<String>,
    queues: Spanned<Vec<Spanned<String>>>,
    heartbeat_secs: Option<Spanned<i64>>,
    skills: Option<Spanned<SkillsInput>>,
    state: Option<Spanned<String>>,
}

/// One agent of the file, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterAgent {
    pub spec: AgentSpec,
    /// The state it starts in if this import creates it.
    pub initial_state: Option<SettableState>,
}

/// An agents file, every agent checked against the routing table.
#[derive(Debug, Clone)]
pub struct Roster {
    /// How the file is named in messages.
    pub path: String,
    pub agents: Vec<RosterAgent>,
}

/// One problem of an agents file: where (file, line, the line's text) and
/// what, naming the agent and the setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub line: usize,
    /// The agent setting it is about, when it is about one.
    pub field: Option<&'static str>,
    pub message: String,
    pub text: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: {}{}",
            self.path,
            self.line,
            self.message,
            excerpt(self.line, &self.text)
        )
    }
}

/// An agents file that cannot be applied: every problem, in file order.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", self.problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct RosterError {
    pub problems: Vec<Problem>,
}

impl Roster {
    /// Reads and checks an agents file.
    pub fn load(path: &std::path::Path, table: &RoutingTable) -> Result<Roster, RosterError> {
        let shown = path.display().to_string();
        let source = std::fs::read_to_string(path).map_err(|e| RosterError {
            problems: vec![Problem {
                path: shown.clone(),
                line: 0,
                field: None,
                message: format!("cannot read the agents file: {e}"),
                text: String::new(),
            }],
        })?;
        Roster::parse(&source, &shown, table)
    }

    /// Checks an agents file's text (`path` only names it in messages): the
    /// rules of `PUT /v1/agents/{id}` for each agent (`AgentSpec::check`), ids
    /// once each, and `state` one an operator may set.
    pub fn parse(source: &str, path: &str, table: &RoutingTable) -> Result<Roster, RosterError> {
        let mut problems: Vec<(usize, Option<&'static str>, String)> = Vec::new();
        let raw: RawFile = match toml::from_str(source) {
            Ok(raw) => raw,
            Err(e) => {
                let offset = e.span().map_or(0, |s| s.start);
                problems.push((offset, None, e.message().trim().to_owned()));
                return Err(RosterError::at(source, path, problems));
            }
        };
        let Some(raw_agents) = raw.agents else {
            problems.push((
                0,
                None,
                "no agents: write [[agents]] tables (or `agents = []` for an empty roster)".into(),
            ));
            return Err(RosterError::at(source, path, problems));
        };
        let mut agents = Vec::new();
        let mut seen: HashMap<String, Range<usize>> = HashMap::new();
        for raw in raw_agents {
            let raw = raw.into_inner();
            let id = raw.id.get_ref().clone();
            let named = |message: String| format!("agent {id:?}: {message}");
            if let Some(first) = seen.get(&id) {
                problems.push((
                    raw.id.span().start,
                    Some("id"),
                    named(format!(
                        "defined twice (first on line {})",
                        line_of(source, first.start)
                    )),
                ));
            } else {
                seen.insert(id.clone(), raw.id.span());
            }
            let initial_state = match &raw.state {
                None => None,
                Some(state) => match SettableState::parse(state.get_ref()) {
                    Some(s) => Some(s),
                    None => {
                        problems.push((
                            state.span().start,
                            Some("state"),
                            named(format!(
                                "state {:?} must be one of available, away, offline (the state of an agent this import creates)",
                                state.get_ref()
                            )),
                        ));
                        None
                    }
                },
            };
            let queues: Vec<String> = raw
                .queues
                .get_ref()
                .iter()
                .map(|q| q.get_ref().clone())
                .collect();
            let checked = AgentSpec::check(
                table,
                &id,
                raw.name.get_ref(),
                raw.contact.get_ref(),
                &queues,
                raw.heartbeat_secs.as_ref().map(|h| *h.get_ref()),
                raw.skills.as_ref().map(Spanned::get_ref),
            );
            match checked {
                Ok(spec) => agents.push(RosterAgent {
                    spec,
                    initial_state,
                }),
                Err(errors) => {
                    for error in errors.all() {
                        let at = span_of(&raw, &error).start;
                        let message = error.to_string();
                        // The rule's own message names its setting, but for a queue's.
                        let message = if message.contains(error.field()) {
                            message
                        } else {
                            format!("{}: {message}", error.field())
                        };
                        problems.push((at, Some(error.field()), named(message)));
                    }
                }
            }
        }
        if problems.is_empty() {
            Ok(Roster {
                path: path.to_owned(),
                agents,
            })
        } else {
            Err(RosterError::at(source, path, problems))
        }
    }
}

/// Where in the file the setting `error` is about was written.
fn span_of(raw: &RawAgent, error: &SpecError) -> Range<usize> {
    match error {
        SpecError::Id(_) => raw.id.span(),
        SpecError::Name => raw.name.span(),
        SpecError::Contact(_) | SpecError::ContactNotAllowed { .. } => raw.contact.span(),
        SpecError::UnknownQueue(name) => raw
            .queues
            .get_ref()
            .iter()
            .find(|q| q.get_ref() == name)
            .map_or_else(|| raw.queues.span(), Spanned::span),
        SpecError::HeartbeatSecs => raw
            .heartbeat_secs
            .as_ref()
            .map_or_else(|| raw.id.span(), Spanned::span),
        SpecError::Skills(_) => raw
            .skills
            .as_ref()
            .map_or_else(|| raw.id.span(), Spanned::span),
    }
}

impl RosterError {
    /// Problems given by byte offset, turned into lines, in file order.
    fn at(
        source: &str,
        path: &str,
        mut problems: Vec<(usize, Option<&'static str>, String)>,
    ) -> RosterError {
        problems.sort_by_key(|(offset, _, _)| *offset);
        RosterError {
            problems: problems
                .into_iter()
                .map(|(offset, field, message)| {
                    let line = line_of(source, offset);
                    Problem {
                        path: path.to_owned(),
                        line,
                        field,
                        message,
                        text: source.lines().nth(line - 1).unwrap_or("").to_owned(),
                    }
                })
                .collect(),
        }
    }
}

/// One setting that differs, as stored and as the file has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange {
    pub field: &'static str,
    pub from: String,
    pub to: String,
}

/// What the import does to one agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Not in Redis: created, then set to the file's `state` if it has one.
    Create(RosterAgent),
    /// In Redis with other settings: stored as `PUT /v1/agents/{id}` would.
    Update(AgentSpec, Vec<FieldChange>),
    /// In Redis as the file has it: nothing is written.
    Unchanged,
    /// In Redis, not in the file, and `--prune`: deleted as
    /// `DELETE /v1/agents/{id}` would; its state when planned.
    Delete(AgentState),
}

/// One agent's step of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub id: String,
    pub action: Action,
}

/// What applying a roster would do, agent by agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// How the file is named in the report.
    pub path: String,
    /// The file's agents in its order, then those to delete by id.
    pub steps: Vec<Step>,
    /// Agents in Redis that the file does not list, left alone (no `--prune`).
    pub kept: Vec<String>,
}

/// The page size of reading the whole roster: few round trips, bounded replies.
const READ_PAGE: usize = 1000;

impl Roster {
    /// Compares the file with the agents in Redis (read in pages, nothing
    /// written): the steps that would bring Redis to the file.
    pub async fn plan(&self, store: &Store, prune: bool) -> Result<Plan, StoreError> {
        let mut current: HashMap<String, AgentView> = HashMap::new();
        let mut cursor = 0;
        loop {
            let page = store.list_agents(cursor, READ_PAGE).await?;
            current.extend(page.agents.into_iter().map(|a| (a.record.id.clone(), a)));
            match page.next_cursor {
                Some(next) => cursor = next,
                None => break,
            }
        }
        let mut steps = Vec::new();
        for agent in &self.agents {
            let action = match current.remove(&agent.spec.id) {
                None => Action::Create(agent.clone()),
                Some(view) => {
                    let changes = differences(&view, &agent.spec);
                    if changes.is_empty() {
                        Action::Unchanged
                    } else {
                        Action::Update(agent.spec.clone(), changes)
                    }
                }
            };
            steps.push(Step {
                id: agent.spec.id.clone(),
                action,
            });
        }
        let mut absent: Vec<AgentView> = current.into_values().collect();
        absent.sort_by(|a, b| a.record.id.cmp(&b.record.id));
        let mut kept = Vec::new();
        for view in absent {
            if prune {
                steps.push(Step {
                    id: view.record.id,
                    action: Action::Delete(view.state),
                });
            } else {
                kept.push(view.record.id);
            }
        }
        Ok(Plan {
            path: self.path.clone(),
            steps,
            kept,
        })
    }
}

/// The settings of `view` that `spec` would change.
fn differences(view: &AgentView, spec: &AgentSpec) -> Vec<FieldChange> {
    let r = &view.record;
    let mut changes = Vec::new();
    let mut compare = |field: &'static str, from: String, to: String| {
        if from != to {
            changes.push(FieldChange { field, from, to });
        }
    };
    compare("name", r.name.clone(), spec.name.clone());
    compare("contact", r.contact.clone(), spec.contact.clone());
    compare("queues", r.queues.join(","), spec.queues.join(","));
    compare(
        "heartbeat_secs",
        r.heartbeat_secs.to_string(),
        spec.heartbeat_secs.to_string(),
    );
    compare(
        "skills",
        encode_skills(&r.skills),
        encode_skills(&spec.skills),
    );
    changes
}

/// A plan that stopped part way: the steps before `done` were applied.
#[derive(Debug, thiserror::Error)]
// `cause` is in the message, so not a `source` too (it would print twice).
#[error("agent {id:?}: {cause}")]
pub struct ApplyError {
    pub done: usize,
    pub id: String,
    pub cause: StoreError,
}

impl Plan {
    /// Carries the plan out, step by step, through the admin API's store calls.
    /// A Redis failure stops it: the steps before stay applied, and applying
    /// the file again finishes the rest.
    pub async fn apply(&self, store: &Store) -> Result<(), ApplyError> {
        for (done, step) in self.steps.iter().enumerate() {
            let failed = |cause| ApplyError {
                done,
                id: step.id.clone(),
                cause,
            };
            match &step.action {
                Action::Unchanged => {}
                Action::Create(agent) => {
                    let (created, _) = store
                        .put_agent(&agent.spec, &Actor::Import)
                        .await
                        .map_err(failed)?;
                    // Not created: an agent deleted while on a call was put
                    // back, and keeps that call's state.
                    if let Some(state) = agent.initial_state.filter(|_| created) {
                        match store
                            .set_agent_state(&step.id, state, false, &Actor::Import)
                            .await
                        {
                            Ok(SetStateOutcome::Done(_) | SetStateOutcome::Conflict(_)) => {}
                            // Deleted since: the next import creates it again.
                            Ok(SetStateOutcome::NotFound) => {}
                            Err(e) => return Err(failed(e)),
                        }
                    }
                }
                Action::Update(spec, _) => {
                    store
                        .put_agent(spec, &Actor::Import)
                        .await
                        .map_err(failed)?;
                }
                Action::Delete(_) => {
                    // false: deleted by someone else meanwhile; gone either way.
                    store
                        .delete_agent(&step.id, &Actor::Import)
                        .await
                        .map_err(failed)?;
                }
            }
        }
        Ok(())
    }

    /// The report: a line per agent, then the counts. `applied`: how many
    /// steps were carried out (those are reported, in the past tense); `None`:
    /// a dry run, every step reported as what it would do.
    pub fn report(&self, applied: Option<usize>) -> String {
        let steps = match applied {
            Some(done) => &self.steps[..done.min(self.steps.len())],
            None => &self.steps[..],
        };
        let mut out = String::new();
        let (mut created, mut updated, mut unchanged, mut deleted) = (0, 0, 0, 0);
        for step in steps {
            let (done, planned, detail) = match &step.action {
                Action::Create(agent) => {
                    created += 1;
                    let detail = agent
                        .initial_state
                        .map(|s| format!(" (starts {})", s.as_str()))
                        .unwrap_or_default();
                    ("created", "would create", detail)
                }
                Action::Update(_, changes) => {
                    updated += 1;
                    let detail = changes
                        .iter()
                        .map(|c| format!("{} {:?} -> {:?}", c.field, c.from, c.to))
                        .collect::<Vec<_>>()
                        .join(", ");
                    ("updated", "would update", format!(": {detail}"))
                }
                Action::Unchanged => {
                    unchanged += 1;
                    ("unchanged", "unchanged", String::new())
                }
                Action::Delete(state) => {
                    deleted += 1;
                    let detail = match state {
                        AgentState::Reserved | AgentState::OnCall => {
                            format!(" (was {}: its call ends normally)", state.as_str())
                        }
                        _ => format!(" (was {})", state.as_str()),
                    };
                    ("deleted", "would delete", detail)
                }
            };
            let verb = if applied.is_some() { done } else { planned };
            out.push_str(&format!("{verb:<12} {}{detail}\n", step.id));
        }
        if !self.kept.is_empty() {
            out.push_str(&format!(
                "not in the file, kept (--prune deletes them): {}\n",
                self.kept.join(", ")
            ));
        }
        let summary = format!(
            "{created} created, {updated} updated, {unchanged} unchanged, {deleted} deleted"
        );
        let path = &self.path;
        out.push_str(&match applied {
            Some(_) => format!("{path}: {summary}\n"),
            None => format!("{path} (dry run, nothing written): would be {summary}\n"),
        });
        out
    }
}

/// Why an import did not finish.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    Routing(#[from] RoutingFileError),
    #[error("{error}\n{hint}nothing was changed")]
    File {
        error: RosterError,
        /// Where queues were looked up, when that may be the mistake.
        hint: String,
    },
    // The cause is in the message, so not a `source` too (it would print twice).
    #[error("cannot read the agents in Redis: {0}; nothing was changed")]
    Read(StoreError),
    #[error(
        "{report}{error}\nthe agents above were applied and the rest not: applying the file again finishes it"
    )]
    Apply { report: String, error: ApplyError },
}

/// `switchboard agents import`: checks the file, plans, and (unless a dry run)
/// applies; the report of what changed.
pub async fn import(args: ImportArgs) -> Result<String, ImportError> {
    let redis = args.redis.into_redis_settings()?;
    let table = match &args.routing {
        Some(path) => RoutingTable::load(path)?,
        None => RoutingTable::builtin(),
    };
    let roster = Roster::load(&args.file, &table).map_err(|error| {
        let about_queues = error.problems.iter().any(|p| p.field == Some("queues"));
        let hint = if about_queues && args.routing.is_none() {
            "queues were looked up in the built-in routing (one queue, default): set SWITCHBOARD_ROUTING or --routing to the servers' routing file\n".to_owned()
        } else {
            String::new()
        };
        ImportError::File { error, hint }
    })?;
    let store = crate::server::build_store(&redis).map_err(ImportError::Read)?;
    let plan = roster
        .plan(&store, args.prune)
        .await
        .map_err(ImportError::Read)?;
    if args.dry_run {
        return Ok(plan.report(None));
    }
    match plan.apply(&store).await {
        Ok(()) => Ok(plan.report(Some(plan.steps.len()))),
        Err(error) => Err(ImportError::Apply {
            report: plan.report(Some(error.done)),
            error,
        }),
    }
}
