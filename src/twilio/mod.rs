//! Twilio's side of the wire: how its webhooks are signed, what their form bodies
//! hold, the TwiML we answer with, the one REST call we make (`rest`:
//! redirecting a live call), and the Access Tokens of the console's softphone
//! (`access_token`). Nothing here touches Redis.

pub mod access_token;
pub mod overrides;
pub mod params;
pub mod rest;
pub mod signature;
pub mod twiml;
