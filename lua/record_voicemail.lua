--[[ record_voicemail: keep a recorded message once, however often Twilio reports it.

KEYS[1]   call hash            sb:{ns}:call:<CallSid>
KEYS[2]   voicemail list       sb:{ns}:voicemails (newest first)
ARGV[1]   RecordingSid
ARGV[2]   the message as a JSON object (call_sid, from, to, queue, recording_url, ...)
ARGV[3]   how many messages the list keeps
ARGV[4]   ms the call hash lives if this creates it

Reply: 1 recorded, 0 already recorded.
The script adds `received_at` (ms, Redis clock) and the call's `queue` (or null).
]]
local call, list = KEYS[1], KEYS[2]
local recording_sid = ARGV[1]

if redis.call('HGET', call, 'voicemail') == recording_sid then
  return 0
end
local created = redis.call('EXISTS', call) == 0
redis.call('HSET', call, 'voicemail', recording_sid)
if created then
  redis.call('PEXPIRE', call, ARGV[4])
end
local message = cjson.decode(ARGV[2])
message['received_at'] = now_ms()
message['queue'] = redis.call('HGET', call, 'queue') or cjson.null
redis.call('LPUSH', list, cjson.encode(message))
redis.call('LTRIM', list, 0, tonumber(ARGV[3]) - 1)
return 1
