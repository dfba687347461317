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

    /// A required field with a value from a fixed set (CallStatus, DialCallStatus).
    pub fn one_of(&self, name: &'static str, allowed: &[&str]) -> Result<&str, ParamsError> {
        let value = self.get(name).ok_or(ParamsError::Missing(name))?;
        if allowed.contains(&value) {
            Ok(value)
        } else {
            Err(ParamsError::Malformed(name))
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
}
