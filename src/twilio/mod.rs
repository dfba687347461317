//! Twilio's side of the wire: how its webhooks are signed, what their form bodies
//! hold, the TwiML we answer with, and the one REST call we make (`rest`:
//! redirecting a live call). Nothing here touches Redis.

pub mod overrides;
pub mod params;
pub mod rest;
pub mod signature;
pub mod twiml;
