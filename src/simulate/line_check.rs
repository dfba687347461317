//! Nobody overtaken, checked from the callers' side only (SPEC invariant 7):
//! from what each simulated caller heard and when, never from switchboard's own
//! records, so a server that kept its books wrong cannot pass by agreeing with
//! itself.
//!
//! Callers only see instants through requests, so the check counts an
//! overtaking only when the times prove it. Caller A is surely ahead of caller B
//! in a queue's line when A's first announced round was answered before B's
//! first was sent. B was given an agent at some instant after B's last
//! announced round before that `<Dial>` was sent, and no later than the
//! `<Dial>` arrived. If A heard an announced round sent after that `<Dial>`
//! arrived, A was still in line, not yet given an agent, when B was: B
//! overtook A, unless one of A's own offers may have been under way then (A
//! keeps its place while an agent rings for it).
//!
//! "Given an agent" is as the caller sees it: a `<Dial>` it received. A server
//! that reserved an agent for A and dropped that reservation before A was
//! dialled, leaving A out of line meanwhile, is judged by what A heard: if B
//! was served in that gap, it counts as an overtaking, as a caller would.

use std::collections::BTreeMap;
use std::time::Duration;

use super::call::LineMark;

/// One caller's stay in one queue's line.
struct Stay<'a> {
    sid: &'a str,
    /// Announced rounds: (sent, received).
    rounds: Vec<(Duration, Duration)>,
    /// Offers after joining: (earliest the agent was reserved, attempt over,
    /// `<Dial>` received).
    offers: Vec<(Duration, Duration, Duration)>,
}

impl Stay<'_> {
    fn joined_received(&self) -> Duration {
        self.rounds[0].1
    }

    fn joined_sent(&self) -> Duration {
        self.rounds[0].0
    }
}

/// The stays of every caller in each queue's line.
fn stays<'a>(
    calls: impl IntoIterator<Item = (&'a str, &'a [LineMark])>,
) -> BTreeMap<&'a str, Vec<Stay<'a>>> {
    let mut by_queue: BTreeMap<&str, Vec<Stay<'_>>> = BTreeMap::new();
    for (sid, marks) in calls {
        let mut mine: BTreeMap<&str, Stay<'_>> = BTreeMap::new();
        // The queue of the caller's latest announced round, and that round's
        // send time: an offer after it came from that line.
        let mut current: Option<(&str, Duration)> = None;
        for mark in marks {
            match mark {
                LineMark::Waiting {
                    queue,
                    sent,
                    received,
                    ..
                } => {
                    mine.entry(queue.as_str())
                        .or_insert_with(|| Stay {
                            sid,
                            rounds: Vec::new(),
                            offers: Vec::new(),
                        })
                        .rounds
                        .push((*sent, *received));
                    current = Some((queue.as_str(), *sent));
                }
                LineMark::Offered { received, ended } => {
                    if let Some((queue, last_round_sent)) = current
                        && let Some(stay) = mine.get_mut(queue)
                    {
                        stay.offers.push((last_round_sent, *ended, *received));
                    }
                }
            }
        }
        for (queue, stay) in mine {
            by_queue.entry(queue).or_default().push(stay);
        }
    }
    by_queue
}

/// What the check found.
#[derive(Debug, Default)]
pub(crate) struct Verdict {
    /// Pairs of callers in one line whose order the times prove and where the
    /// later one was given an agent: each could have shown an overtaking.
    pub pairs_judged: u64,
    /// Every proven overtaking, described.
    pub overtakings: Vec<String>,
}

/// Judges every pair of callers who stood in the same line; `calls` are each
/// call's CallSid and what it saw of the lines.
pub(crate) fn check<'a>(calls: impl IntoIterator<Item = (&'a str, &'a [LineMark])>) -> Verdict {
    let mut verdict = Verdict::default();
    let found = &mut verdict.overtakings;
    for (queue, stays) in stays(calls) {
        for ahead in &stays {
            for behind in &stays {
                if ahead.joined_received() >= behind.joined_sent() || behind.offers.is_empty() {
                    continue;
                }
                verdict.pairs_judged += 1;
                for &(earliest, _, dial_received) in &behind.offers {
                    let still_waiting = ahead.rounds.iter().any(|&(sent, _)| sent > dial_received);
                    // One of the ahead caller's own offers may have been
                    // ringing when the behind caller got its agent.
                    let own_offer = ahead
                        .offers
                        .iter()
                        .any(|&(from, to, _)| from <= dial_received && to >= earliest);
                    if still_waiting && !own_offer {
                        found.push(format!(
                            "{} overtook {} in {queue}'s line: it was given an agent by {:?} while {} (ahead since {:?}) still waited",
                            behind.sid,
                            ahead.sid,
                            dial_received,
                            ahead.sid,
                            ahead.joined_received()
                        ));
                        break;
                    }
                }
            }
        }
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn round(sent: u64, received: u64) -> LineMark {
        LineMark::Waiting {
            queue: "q".into(),
            position: 1,
            sent: ms(sent),
            received: ms(received),
        }
    }

    fn offer(received: u64, ended: u64) -> LineMark {
        LineMark::Offered {
            received: ms(received),
            ended: ms(ended),
        }
    }

    fn overtakings(calls: &[(String, Vec<LineMark>)]) -> Vec<String> {
        check(
            calls
                .iter()
                .map(|(sid, marks)| (sid.as_str(), marks.as_slice())),
        )
        .overtakings
    }

    fn calls(a: Vec<LineMark>, b: Vec<LineMark>) -> Vec<(String, Vec<LineMark>)> {
        vec![("A".into(), a), ("B".into(), b)]
    }

    #[test]
    fn a_later_caller_given_an_agent_while_an_earlier_one_waits_is_caught() {
        // A joined at 0-1, B at 10-11; B dialled at 30; A still waiting at 40.
        let found = overtakings(&calls(
            vec![round(0, 1), round(20, 21), round(40, 41)],
            vec![round(10, 11), round(25, 26), offer(30, 50)],
        ));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("B overtook A"), "{found:?}");
    }

    #[test]
    fn the_line_served_in_order_passes() {
        let found = overtakings(&calls(
            vec![round(0, 1), offer(20, 30)],
            vec![round(10, 11), round(25, 26), offer(40, 50)],
        ));
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn callers_whose_order_the_times_do_not_prove_are_not_judged() {
        // B's first round was sent before A's was answered: either may be first.
        let found = overtakings(&calls(
            vec![round(0, 12), round(40, 41)],
            vec![round(10, 11), offer(30, 50)],
        ));
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn a_caller_whose_own_agent_rang_then_is_not_overtaken() {
        // A was offered an agent (ringing 18-33), missed, and is back in line:
        // B's agent, reserved between 25 and 30, was not A's to take.
        let found = overtakings(&calls(
            vec![round(0, 1), round(15, 16), offer(18, 33), round(40, 41)],
            vec![round(10, 11), round(25, 26), offer(30, 50)],
        ));
        assert!(found.is_empty(), "{found:?}");
        // The same offer over before B's agent could have been reserved is no
        // excuse.
        let found = overtakings(&calls(
            vec![
                round(0, 1),
                round(15, 16),
                offer(18, 22),
                round(23, 24),
                round(40, 41),
            ],
            vec![round(10, 11), round(25, 26), offer(30, 50)],
        ));
        assert_eq!(found.len(), 1, "{found:?}");
    }

    #[test]
    fn different_queues_are_different_lines() {
        let mut b = vec![round(10, 11), offer(30, 50)];
        if let LineMark::Waiting { queue, .. } = &mut b[0] {
            *queue = "other".into();
        }
        let found = overtakings(&calls(vec![round(0, 1), round(40, 41)], b));
        assert!(found.is_empty(), "{found:?}");
    }
}
