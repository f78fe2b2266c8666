/**
 * The Lua scripts behind the stream log. Each runs atomically, so an entry is
 * in the log (and the meta agrees with it) before the notification announcing
 * it is published: a reader that subscribed first and then read can never miss
 * it (PROTOCOL.md section 8).
 *
 * KEYS: [1] log (Redis Stream), [2] meta (hash), [3] notify channel (declared as
 * a key so cluster routing checks its slot, which the hash tag makes the same).
 * Scripts answer `{status, ...}` tables instead of raising, so callers branch on
 * a status token, never on message text.
 *
 * Notification payload: `<incarnation> <firstSeq>[ <flushedAtMs>]\n<json>\n<json>...`,
 * the entries with consecutive seqs. JSON never contains a raw newline. The
 * optional stamp (appends only) is the writer's wall clock at the flush, so the
 * API can measure flush-to-SSE latency; it is never stored in the log.
 */

/**
 * ARGV: publish command, new incarnation (used only if the meta is created), model
 * suffix (`,"model":"…"` or ""), minimum attempt ("" = none), "1" to continue the
 * reply ("" = restart). The minimum lets the caller keep attempt numbers above what
 * PostgreSQL has seen when Redis lost the log (a restart without persistence), so
 * the fencing never goes backwards. A later attempt that continues writes `continue`
 * instead of `reset` (PROTOCOL.md 4.3), unless this call creates the log (there is
 * nothing to continue). The attempt number is bumped first either way, so the old
 * attempt is fenced, and the reply before this entry is final for the caller to read.
 */
export const beginAttemptScript = `
local state = redis.call('HGET', KEYS[2], 'state')
if state == 'ended' then return {'ENDED'} end
local created = 0
if not state then
  redis.call('HSET', KEYS[2], 'incarnation', ARGV[2], 'attempt', 0, 'lastSeq', 0, 'bytes', 0, 'state', 'live')
  created = 1
end
local attempt = redis.call('HINCRBY', KEYS[2], 'attempt', 1)
if ARGV[4] ~= '' and attempt < tonumber(ARGV[4]) then
  attempt = tonumber(ARGV[4])
  redis.call('HSET', KEYS[2], 'attempt', attempt)
end
local seq = redis.call('HINCRBY', KEYS[2], 'lastSeq', 1)
local incarnation = redis.call('HGET', KEYS[2], 'incarnation')
local continued = 0
local json
if attempt == 1 then
  json = '{"type":"start","attempt":1' .. ARGV[3] .. '}'
elseif ARGV[5] == '1' and created == 0 then
  continued = 1
  json = '{"type":"continue","attempt":' .. attempt .. ARGV[3] .. '}'
else
  json = '{"type":"reset","attempt":' .. attempt .. ',"reason":"retry"' .. ARGV[3] .. '}'
end
redis.call('XADD', KEYS[1], seq .. '-0', 'd', json)
redis.call('HINCRBY', KEYS[2], 'bytes', #json)
redis.call('PERSIST', KEYS[1])
redis.call('PERSIST', KEYS[2])
redis.call(ARGV[1], KEYS[3], incarnation .. ' ' .. seq .. '\\n' .. json)
return {'OK', attempt, incarnation, seq, created, continued}
`;

/**
 * ARGV: publish command, attempt, maxEntries, maxBytes, maxEventBytes, expected
 * first seq ("" = unchecked), flush stamp (ms since the epoch, "" = none), then
 * one JSON event per argument. With an expected
 * seq the append is idempotent: a retry of an append that already ran (its reply
 * was lost on a broken connection) answers DUPLICATE and writes nothing.
 */
export const appendScript = `
local m = redis.call('HMGET', KEYS[2], 'state', 'attempt', 'lastSeq', 'bytes', 'incarnation')
if not m[1] then return {'MISSING'} end
if m[1] ~= 'live' then return {'ENDED'} end
if m[2] ~= ARGV[2] then return {'STALE', tonumber(m[2])} end
local lastSeq = tonumber(m[3])
local bytes = tonumber(m[4])
local count = #ARGV - 7
if ARGV[6] ~= '' then
  local expected = tonumber(ARGV[6])
  if expected + count - 1 <= lastSeq then return {'DUPLICATE', expected, expected + count - 1} end
  if expected ~= lastSeq + 1 then return {'SEQ_MISMATCH', lastSeq} end
end
local maxEventBytes = tonumber(ARGV[5])
local added = 0
for i = 8, #ARGV do
  local size = #ARGV[i]
  if size > maxEventBytes then return {'EVENT_TOO_LARGE', size} end
  added = added + size
end
if lastSeq + count > tonumber(ARGV[3]) or bytes + added > tonumber(ARGV[4]) then
  return {'STREAM_TOO_LARGE', lastSeq, bytes + added}
end
local first = lastSeq + 1
local header = m[5] .. ' ' .. first
if ARGV[7] ~= '' then header = header .. ' ' .. ARGV[7] end
local payload = {header}
for i = 8, #ARGV do
  lastSeq = lastSeq + 1
  redis.call('XADD', KEYS[1], lastSeq .. '-0', 'd', ARGV[i])
  payload[#payload + 1] = ARGV[i]
end
redis.call('HSET', KEYS[2], 'lastSeq', lastSeq, 'bytes', bytes + added)
redis.call(ARGV[1], KEYS[3], table.concat(payload, '\\n'))
return {'OK', first, lastSeq}
`;

/**
 * ARGV: publish command, attempt ("" = unfenced, used by forceEnd, which also
 * creates a missing log), ttlSeconds, end JSON, new incarnation. A second end
 * writes nothing and reports the first one. The end is allowed past the caps.
 */
export const endScript = `
local m = redis.call('HMGET', KEYS[2], 'state', 'attempt', 'lastSeq', 'incarnation', 'endSeq')
if m[1] == 'ended' then
  local existing = redis.call('XRANGE', KEYS[1], m[5] .. '-0', m[5] .. '-0')
  local json = ''
  if existing[1] then json = existing[1][2][2] end
  return {'ENDED', tonumber(m[5]), m[4], json}
end
if not m[1] then
  if ARGV[2] ~= '' then return {'MISSING'} end
  redis.call('HSET', KEYS[2], 'incarnation', ARGV[5], 'attempt', 0, 'lastSeq', 0, 'bytes', 0, 'state', 'live')
  m = {'live', '0', '0', ARGV[5]}
elseif ARGV[2] ~= '' and m[2] ~= ARGV[2] then
  return {'STALE', tonumber(m[2])}
end
local seq = tonumber(m[3]) + 1
redis.call('XADD', KEYS[1], seq .. '-0', 'd', ARGV[4])
redis.call('HSET', KEYS[2], 'state', 'ended', 'lastSeq', seq, 'endSeq', seq)
redis.call('HINCRBY', KEYS[2], 'bytes', #ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call(ARGV[1], KEYS[3], m[4] .. ' ' .. seq .. '\\n' .. ARGV[4])
return {'OK', seq, m[4], ARGV[4]}
`;

/** KEYS: log, meta. ARGV: afterSeq, count. Meta and entries from one snapshot; nil when there is no log. */
export const readScript = `
local m = redis.call('HMGET', KEYS[2], 'incarnation', 'state', 'lastSeq', 'attempt', 'endSeq')
if not m[1] then return false end
local entries = redis.call('XRANGE', KEYS[1], (tonumber(ARGV[1]) + 1) .. '-0', '+', 'COUNT', ARGV[2])
-- At most ARGV[3] bytes of field values, but never an empty page while entries remain.
local maxBytes = tonumber(ARGV[3])
local total = 0
for i = 1, #entries do
  local fields = entries[i][2]
  for j = 2, #fields, 2 do total = total + #fields[j] end
  if total > maxBytes and i > 1 then
    local kept = {}
    for k = 1, i - 1 do kept[k] = entries[k] end
    entries = kept
    break
  end
end
return {m[1], m[2], tonumber(m[3]), tonumber(m[4]), tonumber(m[5] or 0), entries}
`;
