//! Twilio's side of the wire: how its webhooks are signed, what their form bodies
//! hold, and the TwiML we answer with. Nothing here touches Redis.

pub mod params;
pub mod signature;
pub mod twiml;
