//! The form body of a Twilio webhook, kept as the ordered list of pairs the
//! signature is computed over, with typed access to the fields we use.

/// Why a webhook body cannot be used (answered with 400, nothing changed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    #[error("the body is not application/x-www-form-urlencoded")]
    NotAForm,
    #[error("{0} is missing")]
    Missing(&'static str),
    #[error("{0} is malformed")]
    Malformed(&'static str),
}

/// Whether `value` is a Twilio id: `prefix` (`CA`, `RE`, …) and 32 hex digits.
pub fn is_sid(value: &str, prefix: &str) -> bool {
    value.len() == prefix.len() + 32
        && value.starts_with(prefix)
        && value[prefix.len()..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// A decoded `application/x-www-form-urlencoded` body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    pub fn parse(body: &[u8]) -> Result<Params, ParamsError> {
        serde_urlencoded::from_bytes(body)
            .map(Params)
            .map_err(|_| ParamsError::NotAForm)
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    /// The first value of `name`, if present and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// `CallSid`: `CA` and 32 hex digits, as Twilio issues them.
    pub fn call_sid(&self) -> Result<&str, ParamsError> {
        self.sid("CallSid", "CA")
    }

    /// A `<prefix>` + 32 hex digits Twilio id.
    pub fn sid(&self, name: &'static str, prefix: &str) -> Result<&str, ParamsError> {
        let sid = self.get(name).ok_or(ParamsError::Missing(name))?;
        if is_sid(sid, prefix) {
            Ok(sid)
        } else {
            Err(ParamsError::Malformed(name))
        }
    }

    /// A required free-text field such as `To`: present, at most 256 bytes, no
    /// control characters.
    pub fn text(&self, name: &'static str) -> Result<&str, ParamsError> {
        let value = self.get(name).ok_or(ParamsError::Missing(name))?;
        if value.len() > 256 || value.chars().any(char::is_control) {
            return Err(ParamsError::Malformed(name));
        }
        Ok(value)
    }

    /// An optional free-text field such as `From`, dropped when malformed.
    pub fn optional_text(&self, name: &'static str) -> Option<&str> {
        self.text(name).ok()
    }

    /// An optional absolute `http(s)` URL such as `RecordingUrl`, at most 2 KiB,
    /// dropped when malformed.
    pub fn optional_url(&self, name: &'static str) -> Option<&str> {
        self.get(name).filter(|url| {
            url.len() <= 2048
                && (url.starts_with("https://") || url.starts_with("http://"))
                && !url.chars().any(|c| c.is_control() || c.is_whitespace())
        })
    }

    /// `CallStatus`: required (400 when missing), any value decoded, an
    /// unknown one as [`CallStatus::Unknown`] for the handler to decide.
    pub fn call_status(&self) -> Result<CallStatus, ParamsError> {
        let value = self
            .get("CallStatus")
            .ok_or(ParamsError::Missing("CallStatus"))?;
        Ok(CallStatus::parse(value))
    }

    /// `DialCallStatus` of a `<Dial>` action: required (400 when missing), an
    /// unknown value decoded as [`DialCallStatus::Unknown`].
    pub fn dial_call_status(&self) -> Result<DialCallStatus, ParamsError> {
        let value = self
            .get("DialCallStatus")
            .ok_or(ParamsError::Missing("DialCallStatus"))?;
        Ok(DialCallStatus::parse(value))
    }
}

/// At most this much of a value Twilio sent that switchboard does not know is
/// kept, for the log line: the body is 64 KiB, a log line need not be.
const UNKNOWN_KEPT: usize = 40;

/// An unknown value as it is logged: its first `UNKNOWN_KEPT` characters, control
/// characters replaced, so it cannot forge or flood log lines.
fn unknown(value: &str) -> String {
    value
        .chars()
        .take(UNKNOWN_KEPT)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// A call's `CallStatus` as Twilio documents it. A value Twilio adds later is
/// `Unknown`, not an error: a caller on the line must still be answered, and
/// each webhook decides what an unknown status means for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallStatus {
    Queued,
    Initiated,
    Ringing,
    InProgress,
    Answered,
    Completed,
    Busy,
    Failed,
    NoAnswer,
    Canceled,
    /// Not one of the above: the value, bounded (see `UNKNOWN_KEPT`).
    Unknown(String),
}

impl CallStatus {
    pub fn parse(value: &str) -> CallStatus {
        match value {
            "queued" => CallStatus::Queued,
            "initiated" => CallStatus::Initiated,
            "ringing" => CallStatus::Ringing,
            "in-progress" => CallStatus::InProgress,
            "answered" => CallStatus::Answered,
            "completed" => CallStatus::Completed,
            "busy" => CallStatus::Busy,
            "failed" => CallStatus::Failed,
            "no-answer" => CallStatus::NoAnswer,
            "canceled" => CallStatus::Canceled,
            other => CallStatus::Unknown(unknown(other)),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            CallStatus::Queued => "queued",
            CallStatus::Initiated => "initiated",
            CallStatus::Ringing => "ringing",
            CallStatus::InProgress => "in-progress",
            CallStatus::Answered => "answered",
            CallStatus::Completed => "completed",
            CallStatus::Busy => "busy",
            CallStatus::Failed => "failed",
            CallStatus::NoAnswer => "no-answer",
            CallStatus::Canceled => "canceled",
            CallStatus::Unknown(value) => value,
        }
    }

    /// The call is over. An unknown status is not: treating it as final would
    /// hang up or abandon a caller who may well be on the line.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            CallStatus::Completed
                | CallStatus::Busy
                | CallStatus::Failed
                | CallStatus::NoAnswer
                | CallStatus::Canceled
        )
    }
}

/// How a `<Dial>` attempt ended (`DialCallStatus` of its action), as Twilio
/// documents it; a value Twilio adds later is `Unknown`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialCallStatus {
    Completed,
    Answered,
    Busy,
    Failed,
    NoAnswer,
    Canceled,
    /// Not one of the above: the value, bounded (see `UNKNOWN_KEPT`).
    Unknown(String),
}

impl DialCallStatus {
    pub fn parse(value: &str) -> DialCallStatus {
        match value {
            "completed" => DialCallStatus::Completed,
            "answered" => DialCallStatus::Answered,
            "busy" => DialCallStatus::Busy,
            "failed" => DialCallStatus::Failed,
            "no-answer" => DialCallStatus::NoAnswer,
            "canceled" => DialCallStatus::Canceled,
            other => DialCallStatus::Unknown(unknown(other)),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            DialCallStatus::Completed => "completed",
            DialCallStatus::Answered => "answered",
            DialCallStatus::Busy => "busy",
            DialCallStatus::Failed => "failed",
            DialCallStatus::NoAnswer => "no-answer",
            DialCallStatus::Canceled => "canceled",
            DialCallStatus::Unknown(value) => value,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_sid_must_look_like_twilios() {
        let ok = Params::parse(b"CallSid=CA0123456789abcdef0123456789abcdef&To=%2B1555").unwrap();
        assert_eq!(ok.call_sid().unwrap(), "CA0123456789abcdef0123456789abcdef");
        assert_eq!(ok.text("To").unwrap(), "+1555");
        let short = Params::parse(b"CallSid=CA01").unwrap();
        assert_eq!(short.call_sid(), Err(ParamsError::Malformed("CallSid")));
        let none = Params::parse(b"To=x").unwrap();
        assert_eq!(none.call_sid(), Err(ParamsError::Missing("CallSid")));
        let empty = Params::parse(b"CallSid=CA0123456789abcdef0123456789abcdef&To=").unwrap();
        assert_eq!(empty.text("To"), Err(ParamsError::Missing("To")));
    }

    #[test]
    fn statuses_decode_known_values_and_keep_unknown_ones_bounded() {
        let p = Params::parse(b"CallStatus=in-progress&DialCallStatus=no-answer").unwrap();
        assert_eq!(p.call_status(), Ok(CallStatus::InProgress));
        assert_eq!(p.dial_call_status(), Ok(DialCallStatus::NoAnswer));
        let long = format!("CallStatus=a%0Ab{}", "x".repeat(100));
        let p = Params::parse(long.as_bytes()).unwrap();
        let status = p.call_status().unwrap();
        assert!(!status.is_final());
        assert_eq!(status.as_str().chars().count(), UNKNOWN_KEPT);
        assert!(status.as_str().starts_with("a?bx"), "{status:?}");
        let none = Params::parse(b"CallSid=x").unwrap();
        assert_eq!(none.call_status(), Err(ParamsError::Missing("CallStatus")));
        assert_eq!(
            none.dial_call_status(),
            Err(ParamsError::Missing("DialCallStatus"))
        );
    }
}
