//! TwiML answers, written with a real XML writer so every attribute and text is
//! escaped. One function a kind of answer; the HTTP layer picks which.

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};

use crate::agent::Contact;

/// The voice and language of every `<Say>` written for a queue (its
/// `say_voice`/`say_language`, else `[defaults]`'). `None`: the attribute is left
/// out and Twilio's default (`man`, `en-US`) speaks, as before these settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Speech {
    /// `man`, `woman`, `Polly.<Name>`, `Google.<name>`, as Twilio spells them.
    pub voice: Option<String>,
    /// A language/locale such as `en-US`, `es-MX`.
    pub language: Option<String>,
}

/// `<Say voice=… language=…>text</Say>`: every `<Say>` goes through here, so
/// none can miss its queue's voice.
fn say(w: &mut Writer<Vec<u8>>, speech: &Speech, text: &str) -> std::io::Result<()> {
    let mut element = w.create_element("Say");
    if let Some(voice) = &speech.voice {
        element = element.with_attribute(("voice", voice.as_str()));
    }
    if let Some(language) = &speech.language {
        element = element.with_attribute(("language", language.as_str()));
    }
    element.write_text_content(BytesText::new(text))?;
    Ok(())
}

/// The `Content-Type` of every TwiML answer.
pub const CONTENT_TYPE: &str = "text/xml; charset=utf-8";

/// Writes `<?xml …?><Response>…</Response>`; `body` adds the verbs.
fn response(body: impl FnOnce(&mut Writer<Vec<u8>>) -> std::io::Result<()>) -> String {
    let mut writer = Writer::new(Vec::new());
    // Writing into a Vec cannot fail; an error here would be a bug in quick-xml.
    let written = writer
        .write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))
        .and_then(|()| {
            writer
                .create_element("Response")
                .write_inner_content(body)
                .map(|_| ())
        });
    debug_assert!(
        written.is_ok(),
        "writing TwiML into memory failed: {written:?}"
    );
    String::from_utf8(writer.into_inner()).unwrap_or_default()
}

/// Twilio's webhook connection overrides, the URL fragment of every status
/// callback switchboard writes: up to 5 retries when the answer is a 5xx, the
/// connection fails or no answer comes in time. A status callback that could
/// not be applied (Redis unreachable) is answered 503, so it comes again. The
/// number's own status callback should carry the same fragment (README).
pub const CONNECTION_OVERRIDES: &str = "rc=5&rp=5xx,ct,rt";

/// The agent-leg callbacks and limits of one dial attempt.
#[derive(Debug, Clone)]
pub struct AgentDial<'a> {
    pub contact: &'a Contact,
    /// Dial `action`: where Twilio reports how this attempt ended.
    pub action: &'a str,
    /// `statusCallback` of the agent leg.
    pub status_callback: &'a str,
    pub ring_timeout_secs: u32,
    pub max_call_secs: u32,
    /// The noun's `url`: TwiML the agent hears on pick-up, before the caller is
    /// connected (`confirm = true`).
    pub confirm_url: Option<&'a str>,
}

/// `<Dial>` to one agent, as SPEC 1 "Twilio webhooks" describes.
pub fn dial_agent(d: &AgentDial<'_>) -> String {
    let timeout = d.ring_timeout_secs.to_string();
    let limit = d.max_call_secs.to_string();
    response(|w| {
        w.create_element("Dial")
            .with_attribute(("action", d.action))
            .with_attribute(("method", "POST"))
            .with_attribute(("timeout", timeout.as_str()))
            .with_attribute(("timeLimit", limit.as_str()))
            .with_attribute(("answerOnBridge", "true"))
            .write_inner_content(|w| {
                let (noun, text) = noun(d.contact);
                let mut element = w.create_element(noun);
                if let Some(url) = d.confirm_url {
                    element = element
                        .with_attribute(("url", url))
                        .with_attribute(("method", "POST"));
                }
                element
                    .with_attribute(("statusCallback", d.status_callback))
                    .with_attribute(("statusCallbackMethod", "POST"))
                    .with_attribute((
                        "statusCallbackEvent",
                        "initiated ringing answered completed",
                    ))
                    .write_text_content(BytesText::new(text))?;
                Ok(())
            })?;
        Ok(())
    })
}

fn noun(contact: &Contact) -> (&'static str, &str) {
    match contact {
        Contact::Number(n) => ("Number", n),
        Contact::Client(id) => ("Client", id),
        Contact::Sip(uri) => ("Sip", uri),
    }
}

/// `<Dial>` forwarding the call to a number or client outside any queue.
/// With an `action`, Twilio reports there how the forward ended (so an unanswered
/// forward can go on to the next step of the chain); without one, the call ends
/// with the forwarded call.
pub fn forward(contact: &Contact, action: Option<&str>) -> String {
    response(|w| {
        let mut dial = w.create_element("Dial");
        if let Some(action) = action {
            dial = dial
                .with_attribute(("action", action))
                .with_attribute(("method", "POST"));
        }
        dial.write_inner_content(|w| {
            let (noun, text) = noun(contact);
            w.create_element(noun)
                .write_text_content(BytesText::new(text))?;
            Ok(())
        })?;
        Ok(())
    })
}

/// What an agent on a real phone hears on pick-up: who is calling, and "press
/// 1", reported to `action`. Without a key press in 5 s the leg hangs up, so a
/// voicemail that picks up never takes the call.
pub fn confirm_prompt(announcement: &str, action: &str, speech: &Speech) -> String {
    response(|w| {
        w.create_element("Gather")
            .with_attribute(("numDigits", "1"))
            .with_attribute(("timeout", "5"))
            .with_attribute(("action", action))
            .with_attribute(("method", "POST"))
            .write_inner_content(|w| say(w, speech, announcement))?;
        w.create_element("Hangup").write_empty()?;
        Ok(())
    })
}

/// One hold round for a waiting caller.
#[derive(Debug, Clone)]
pub struct HoldRound<'a> {
    /// Spoken first ("You are number 3 in line."); may be empty.
    pub announcement: &'a str,
    /// `<Play>`ed; `None`: `<Pause length=loop_secs>`.
    pub music_url: Option<&'a str>,
    pub loop_secs: u32,
    /// The wait URL: fetched at the end of the round (the caller's heartbeat),
    /// and the `<Gather>` action when keys can leave the line.
    pub wait_url: &'a str,
    pub gather: bool,
    /// The queue's voice for the announcement.
    pub speech: &'a Speech,
}

/// A hold round: announcement and music or silence (inside a one-key `<Gather>`
/// when exit keys are set), then `<Redirect>` to the wait URL.
///
/// The `<Gather>` has `finishOnKey=""`: Twilio's default finish key is `#`, and a
/// finish key pressed before any digit is not sent (the `<Gather>` falls through
/// to the `<Redirect>`), so a `#` exit key would never reach the wait URL.
pub fn hold(round: &HoldRound<'_>) -> String {
    let length = round.loop_secs.to_string();
    response(|w| {
        let body = |w: &mut Writer<Vec<u8>>| -> std::io::Result<()> {
            if !round.announcement.is_empty() {
                say(w, round.speech, round.announcement)?;
            }
            match round.music_url {
                Some(url) => {
                    w.create_element("Play")
                        .write_text_content(BytesText::new(url))?;
                }
                None => {
                    w.create_element("Pause")
                        .with_attribute(("length", length.as_str()))
                        .write_empty()?;
                }
            }
            Ok(())
        };
        if round.gather {
            w.create_element("Gather")
                .with_attribute(("numDigits", "1"))
                .with_attribute(("timeout", "1"))
                .with_attribute(("finishOnKey", ""))
                .with_attribute(("action", round.wait_url))
                .with_attribute(("method", "POST"))
                .write_inner_content(body)?;
        } else {
            body(w)?;
        }
        w.create_element("Redirect")
            .with_attribute(("method", "POST"))
            .write_text_content(BytesText::new(round.wait_url))?;
        Ok(())
    })
}

/// A keypad menu: the prompt inside a one-key `<Gather>` reported to
/// `action`, then, when no key was pressed within `timeout_secs`, a
/// `<Redirect>` to the same URL without `Digits`. `finishOnKey=""` so `#` can
/// be an option (see `hold`).
pub fn menu(prompt: &str, timeout_secs: u32, action: &str, speech: &Speech) -> String {
    let timeout = timeout_secs.to_string();
    response(|w| {
        w.create_element("Gather")
            .with_attribute(("numDigits", "1"))
            .with_attribute(("timeout", timeout.as_str()))
            .with_attribute(("finishOnKey", ""))
            .with_attribute(("action", action))
            .with_attribute(("method", "POST"))
            .write_inner_content(|w| say(w, speech, prompt))?;
        w.create_element("Redirect")
            .with_attribute(("method", "POST"))
            .write_text_content(BytesText::new(action))?;
        Ok(())
    })
}

/// What a `KeyPrompt` does when no key comes.
#[derive(Debug, Clone, Copy)]
pub enum NoKey<'a> {
    /// `<Redirect>` to this URL (back to the hold rounds).
    Redirect(&'a str),
    /// Say this, then `<Hangup/>`.
    HangUp(&'a str),
}

/// A prompt for keys (a callback's number, a customer's 1): `<Gather>` around
/// the `<Say>`, posting the keys to `action`, then `no_key`.
#[derive(Debug, Clone, Copy)]
pub struct KeyPrompt<'a> {
    pub prompt: &'a str,
    pub action: &'a str,
    /// `None`: any number of keys, ended by `finish_on_key` or `timeout_secs`
    /// of silence.
    pub num_digits: Option<u32>,
    pub finish_on_key: &'a str,
    pub timeout_secs: u32,
    pub no_key: NoKey<'a>,
    pub speech: &'a Speech,
}

pub fn key_prompt(p: &KeyPrompt<'_>) -> String {
    let timeout = p.timeout_secs.to_string();
    let digits = p.num_digits.map(|n| n.to_string());
    response(|w| {
        let mut gather = w
            .create_element("Gather")
            .with_attribute(("input", "dtmf"))
            .with_attribute(("timeout", timeout.as_str()))
            .with_attribute(("finishOnKey", p.finish_on_key))
            .with_attribute(("action", p.action))
            .with_attribute(("method", "POST"));
        if let Some(n) = &digits {
            gather = gather.with_attribute(("numDigits", n.as_str()));
        }
        gather.write_inner_content(|w| say(w, p.speech, p.prompt))?;
        match p.no_key {
            NoKey::Redirect(url) => {
                w.create_element("Redirect")
                    .with_attribute(("method", "POST"))
                    .write_text_content(BytesText::new(url))?;
            }
            NoKey::HangUp(text) => {
                say(w, p.speech, text)?;
                w.create_element("Hangup").write_empty()?;
            }
        }
        Ok(())
    })
}

/// An agent-first callback: the agent who answered hears `announcement`,
/// then the customer `to` is dialled from `caller_id`; the customer's answer
/// goes to `answered_callback`, the leg's end to `action`.
pub struct CustomerDial<'a> {
    pub announcement: &'a str,
    pub to: &'a str,
    pub caller_id: &'a str,
    pub timeout_secs: u32,
    pub action: &'a str,
    pub answered_callback: &'a str,
    pub speech: &'a Speech,
}

pub fn dial_customer(d: &CustomerDial<'_>) -> String {
    let timeout = d.timeout_secs.to_string();
    response(|w| {
        say(w, d.speech, d.announcement)?;
        w.create_element("Dial")
            .with_attribute(("callerId", d.caller_id))
            .with_attribute(("timeout", timeout.as_str()))
            .with_attribute(("action", d.action))
            .with_attribute(("method", "POST"))
            .write_inner_content(|w| {
                w.create_element("Number")
                    .with_attribute(("statusCallbackEvent", "answered"))
                    .with_attribute(("statusCallback", d.answered_callback))
                    .with_attribute(("statusCallbackMethod", "POST"))
                    .write_text_content(BytesText::new(d.to))?;
                Ok(())
            })?;
        Ok(())
    })
}

/// `<Say>text</Say><Hangup/>`.
pub fn say_and_hang_up(text: &str, speech: &Speech) -> String {
    response(|w| {
        say(w, speech, text)?;
        w.create_element("Hangup").write_empty()?;
        Ok(())
    })
}

/// Greeting, a recorded message reported to `action`, then hang up.
pub fn voicemail(greeting: &str, max_length_secs: u32, action: &str, speech: &Speech) -> String {
    let max = max_length_secs.to_string();
    response(|w| {
        say(w, speech, greeting)?;
        w.create_element("Record")
            .with_attribute(("maxLength", max.as_str()))
            .with_attribute(("action", action))
            .with_attribute(("method", "POST"))
            .with_attribute(("playBeep", "true"))
            .write_empty()?;
        w.create_element("Hangup").write_empty()?;
        Ok(())
    })
}

/// Ends the call.
pub fn hangup() -> String {
    response(|w| {
        w.create_element("Hangup").write_empty()?;
        Ok(())
    })
}

/// An empty `<Response/>`: for callbacks whose answer Twilio ignores.
pub fn empty() -> String {
    response(|_| Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dial_agent_escapes_and_carries_the_contract_attributes() {
        let contact = Contact::Sip("sip:a&b@example.com".into());
        let xml = dial_agent(&AgentDial {
            contact: &contact,
            action: "https://x.example/twilio/voice/dial?token=a&b=<c>",
            status_callback: "https://x.example/twilio/voice/agent?token=t",
            ring_timeout_secs: 20,
            max_call_secs: 14400,
            confirm_url: None,
        });
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Dial"));
        assert!(
            xml.contains("action=\"https://x.example/twilio/voice/dial?token=a&amp;b=&lt;c&gt;\"")
        );
        assert!(xml.contains(
            " method=\"POST\" timeout=\"20\" timeLimit=\"14400\" answerOnBridge=\"true\">"
        ));
        assert!(xml.contains("statusCallbackEvent=\"initiated ringing answered completed\""));
        assert!(xml.contains(">sip:a&amp;b@example.com</Sip></Dial></Response>"));
    }

    #[test]
    fn voicemail_says_records_and_hangs_up() {
        let xml = voicemail(
            "Busy <now>",
            120,
            "/twilio/voice/voicemail",
            &Speech::default(),
        );
        assert!(xml.contains("<Say>Busy &lt;now&gt;</Say><Record maxLength=\"120\""));
        assert!(xml.ends_with("<Hangup/></Response>"));
    }

    #[test]
    fn every_say_carries_the_voice_and_language_and_none_without_them() {
        let speech = Speech {
            voice: Some("Polly.Joanna".into()),
            language: Some("en-US".into()),
        };
        let said = "<Say voice=\"Polly.Joanna\" language=\"en-US\">";
        let round = |speech| {
            hold(&HoldRound {
                announcement: "You are number 1 in line.",
                music_url: None,
                loop_secs: 5,
                wait_url: "/w",
                gather: false,
                speech,
            })
        };
        for xml in [
            voicemail("Busy", 120, "/vm", &speech),
            confirm_prompt("Call from 1 5 5 5", "/c", &speech),
            round(&speech),
        ] {
            assert!(xml.contains(said), "{xml}");
        }
        let plain = round(&Speech::default());
        assert!(
            plain.contains("<Say>You are number 1 in line.</Say>"),
            "{plain}"
        );
    }

    #[test]
    fn the_hold_gather_has_no_finish_key_so_hash_is_delivered() {
        let xml = hold(&HoldRound {
            announcement: "",
            music_url: Some("https://m.example/a.mp3"),
            loop_secs: 5,
            wait_url: "/w",
            gather: true,
            speech: &Speech::default(),
        });
        assert!(
            xml.contains("<Gather numDigits=\"1\" timeout=\"1\" finishOnKey=\"\" action=\"/w\""),
            "{xml}"
        );
    }
}
