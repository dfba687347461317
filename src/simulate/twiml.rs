//! Reading TwiML the way Twilio acts on it: the first verb that moves the call
//! (`<Dial>`, `<Record>`, `<Hangup>`), with the URLs it names.

use quick_xml::Reader;
use quick_xml::XmlVersion;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::Event;

/// A `<Dial>` and its one noun.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dial {
    /// `action`: where Twilio reports how the dial ended (none for a plain forward).
    pub action: Option<String>,
    /// `Number`, `Client` or `Sip`.
    pub noun: String,
    /// The noun's text: a number, identity or SIP URI.
    pub target: String,
    /// The noun's `statusCallback` (agent-leg events).
    pub status_callback: Option<String>,
    /// The noun's `url`: TwiML the agent's phone runs on pick-up (confirm).
    pub url: Option<String>,
    pub timeout_secs: Option<u32>,
}

/// A `<Gather>` around a hold round: where the keys go, and the key that
/// only ends the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gather {
    pub action: String,
    /// `finishOnKey`: `#` when the attribute is absent (Twilio's default),
    /// `None` for `finishOnKey=""` (no key ends the input, so `#` and `*` are
    /// digits like any other).
    pub finish_on_key: Option<char>,
}

impl Gather {
    fn read(e: &quick_xml::events::BytesStart<'_>) -> Option<Gather> {
        Some(Gather {
            action: attr(e, "action")?,
            finish_on_key: match attr(e, "finishOnKey") {
                None => Some('#'),
                Some(key) => key.chars().next(),
            },
        })
    }

    /// Where Twilio sends a caller's `key`, as its `Digits`: the action, unless
    /// the key is the finish key. A finish key pressed before any digit sends
    /// nothing, and the call goes on with the verb after the `<Gather>`.
    pub fn pressed(&self, key: char) -> Option<&str> {
        (self.finish_on_key != Some(key)).then_some(self.action.as_str())
    }
}

/// What the call does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verb {
    Dial(Dial),
    /// `<Record action=…>` (after a `<Say>` greeting).
    Record {
        action: Option<String>,
    },
    Hangup,
    /// A hold round: music or silence, then `<Redirect>` to `url`; keys go to
    /// `gather` (a `<Gather>` around the round) when there is one.
    Redirect {
        url: String,
        gather: Option<Gather>,
    },
    /// A `<Response>` with none of the above: the call ends.
    Nothing,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid TwiML: {0}")]
pub struct TwimlError(String);

fn attr(e: &quick_xml::events::BytesStart<'_>, name: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.as_ref() == name)
        .and_then(|a| {
            a.normalized_value(XmlVersion::Implicit1_0)
                .ok()
                .map(|v| v.into_owned())
        })
}

/// The first verb of a TwiML document that moves the call.
pub fn first_verb(xml: &str) -> Result<Verb, TwimlError> {
    let mut reader = Reader::from_str(xml);
    let mut saw_response = false;
    let mut dial: Option<Dial> = None;
    let mut in_noun = false;
    let mut gather: Option<Gather> = None;
    let mut redirect: Option<String> = None;
    loop {
        match reader.read_event() {
            Err(e) => return Err(TwimlError(e.to_string())),
            Ok(Event::Eof) => break,
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => {
                let name = e.name().as_ref().to_owned();
                match name.as_str() {
                    "Response" => saw_response = true,
                    "Dial" => {
                        dial = Some(Dial {
                            action: attr(&e, "action"),
                            timeout_secs: attr(&e, "timeout").and_then(|t| t.parse().ok()),
                            ..Dial::default()
                        })
                    }
                    "Number" | "Client" | "Sip" => {
                        if let Some(d) = dial.as_mut() {
                            d.noun = name.clone();
                            d.status_callback = attr(&e, "statusCallback");
                            d.url = attr(&e, "url");
                            in_noun = true;
                        }
                    }
                    "Record" if dial.is_none() => {
                        return Ok(Verb::Record {
                            action: attr(&e, "action"),
                        });
                    }
                    "Hangup" if dial.is_none() => return Ok(Verb::Hangup),
                    "Gather" if dial.is_none() => gather = Gather::read(&e),
                    "Redirect" if dial.is_none() => redirect = Some(String::new()),
                    _ => {}
                }
            }
            Ok(Event::Text(t)) if in_noun || redirect.is_some() => {
                let target = match dial.as_mut() {
                    Some(d) if in_noun => &mut d.target,
                    _ => redirect.get_or_insert_with(String::new),
                };
                target.push_str(&t.xml10_content());
            }
            Ok(Event::GeneralRef(r)) if in_noun || redirect.is_some() => {
                let target = match dial.as_mut() {
                    Some(d) if in_noun => &mut d.target,
                    _ => redirect.get_or_insert_with(String::new),
                };
                match r.resolve_char_ref() {
                    Ok(Some(c)) => target.push(c),
                    _ => {
                        target.push_str(resolve_predefined_entity(&r.xml10_content()).unwrap_or(""))
                    }
                }
            }
            Ok(Event::End(e)) => match e.name().as_ref() {
                "Number" | "Client" | "Sip" => in_noun = false,
                "Redirect" => {
                    if let Some(url) = redirect.take() {
                        return Ok(Verb::Redirect { url, gather });
                    }
                }
                "Dial" => {
                    if let Some(d) = dial.take() {
                        return Ok(Verb::Dial(d));
                    }
                }
                _ => {}
            },
            Ok(_) => {}
        }
    }
    if saw_response {
        Ok(Verb::Nothing)
    } else {
        Err(TwimlError("no <Response>".into()))
    }
}

/// The `action` of a document's first `<Gather>`: where the keys go.
pub fn gather_action(xml: &str) -> Option<String> {
    let mut reader = Reader::from_str(xml);
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) if e.name().as_ref() == "Gather" => {
                return attr(&e, "action");
            }
            Ok(Event::Eof) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// The position a hold round announces ("You are number 3 in line."), if it
/// says one: a round that does proves the caller was in line, not yet given an
/// agent, when switchboard answered it.
pub fn announced_position(xml: &str) -> Option<u32> {
    let mut reader = Reader::from_str(xml);
    let mut in_say = false;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) if e.name().as_ref() == "Say" => in_say = true,
            Ok(Event::End(e)) if e.name().as_ref() == "Say" => in_say = false,
            Ok(Event::Text(t)) if in_say => {
                let text = t.xml10_content().into_owned();
                let rest = text.split("You are number ").nth(1)?;
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                return digits.parse().ok();
            }
            Ok(Event::Eof) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::Contact;
    use crate::twilio::twiml;

    #[test]
    fn reads_what_switchboard_writes() {
        let contact = Contact::Sip("sip:a&b@example.com".into());
        let xml = twiml::dial_agent(&twiml::AgentDial {
            contact: &contact,
            action: "http://h/twilio/voice/dial?agent=a&token=t",
            status_callback: "http://h/twilio/voice/agent?agent=a&token=t",
            ring_timeout_secs: 20,
            max_call_secs: 60,
            confirm_url: None,
        });
        let Verb::Dial(d) = first_verb(&xml).unwrap() else {
            panic!("{xml}")
        };
        assert_eq!(
            d.action.as_deref(),
            Some("http://h/twilio/voice/dial?agent=a&token=t")
        );
        assert_eq!(d.noun, "Sip");
        assert_eq!(d.target, "sip:a&b@example.com");
        assert_eq!(d.timeout_secs, Some(20));
        assert_eq!(
            first_verb(&twiml::voicemail("hi", 5, "/vm", &twiml::Speech::default())).unwrap(),
            Verb::Record {
                action: Some("/vm".into())
            }
        );
        assert_eq!(first_verb(&twiml::hangup()).unwrap(), Verb::Hangup);
        let round = twiml::hold(&twiml::HoldRound {
            announcement: "You are number 1 in line.",
            music_url: None,
            loop_secs: 5,
            wait_url: "http://h/twilio/voice/wait?queue=a&x=1",
            gather: true,
            speech: &twiml::Speech::default(),
        });
        assert_eq!(announced_position(&round), Some(1));
        assert_eq!(announced_position(&twiml::hangup()), None);
        assert_eq!(
            first_verb(&round).unwrap(),
            Verb::Redirect {
                url: "http://h/twilio/voice/wait?queue=a&x=1".into(),
                gather: Some(Gather {
                    action: "http://h/twilio/voice/wait?queue=a&x=1".into(),
                    finish_on_key: None,
                }),
            }
        );
        let Verb::Dial(f) = first_verb(&twiml::forward(
            &Contact::Number("+15005550010".into()),
            None,
        ))
        .unwrap() else {
            panic!()
        };
        assert_eq!((f.action, f.target.as_str()), (None, "+15005550010"));
        assert!(first_verb("not xml").is_err());
    }

    #[test]
    fn a_finish_key_is_not_delivered_as_digits() {
        let round = |gather: &str| {
            let xml = format!(
                "<Response>{gather}<Pause length=\"5\"/></Gather><Redirect>/w</Redirect></Response>"
            );
            match first_verb(&xml).unwrap() {
                Verb::Redirect {
                    gather: Some(g), ..
                } => g,
                other => panic!("{other:?}"),
            }
        };
        // No finishOnKey: Twilio's default `#` ends the input and is not sent.
        let default = round("<Gather numDigits=\"1\" action=\"/a\">");
        assert_eq!(default.pressed('#'), None);
        assert_eq!(default.pressed('*'), Some("/a"));
        assert_eq!(default.pressed('1'), Some("/a"));
        let none = round("<Gather numDigits=\"1\" finishOnKey=\"\" action=\"/a\">");
        assert_eq!(none.pressed('#'), Some("/a"));
        let star = round("<Gather finishOnKey=\"*\" action=\"/a\">");
        assert_eq!((star.pressed('*'), star.pressed('#')), (None, Some("/a")));
    }
}
