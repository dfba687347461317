--[[ record_voicemail: keep a recorded message once, however often Twilio reports it.

KEYS[1]  call hash  sb:{ns}:call:<CallSid>; `voicemails` (a list, newest first)
         is built from the prefix
ARGV[1]  JSON VoicemailRequest (src/store/requests.rs): {prefix, recording_sid,
         message: {call_sid, from, to, recording_url, ...}, keep, tail_ms}

Reply: 1 recorded, 0 already recorded.
The script adds `received_at` (ms, Redis clock) and the call's `queue` (or null),
keeps the newest `keep` messages, and gives a call hash it creates `tail_ms`.
]]
local call = KEYS[1]

if redis.call('HGET', call, 'voicemail') == req.recording_sid then
  return 0
end
local created = redis.call('EXISTS', call) == 0
redis.call('HSET', call, 'voicemail', req.recording_sid)
if created then
  redis.call('PEXPIRE', call, req.tail_ms)
end
local message = req.message
message['received_at'] = now_ms()
message['queue'] = redis.call('HGET', call, 'queue') or cjson.null
redis.call('LPUSH', K.voicemails, cjson.encode(message))
redis.call('LTRIM', K.voicemails, 0, req.keep - 1)
return 1
