-- Shared by every limit script (prepended to each). One organization's keys, all with the
-- same hash tag so a script touches one cluster slot:
--   KEYS[1] win    sorted set: reservation id -> admitted at (ms); the rolling hour, exact
--   KEYS[2] tok    hash: reservation id -> tokens (estimate until settled)
--   KEYS[3] lease  sorted set: running reservation id -> lease end (ms)
--   KEYS[4] sum    string: the tokens of every reservation in `win`
--   KEYS[5] month  string: invocations in one UTC month
local win, tok, lease, sum, month = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local HOUR = 3600000
local MONTH_TTL = 3456000 -- seconds (40 days): a month's count outlives its month

local function forget(member)
  local tokens = tonumber(redis.call('HGET', tok, member) or '0')
  redis.call('HDEL', tok, member)
  redis.call('ZREM', win, member)
  redis.call('ZREM', lease, member)
  if tokens ~= 0 then redis.call('DECRBY', sum, tokens) end
end

local function uncount_month()
  if tonumber(redis.call('GET', month) or '0') > 0 then redis.call('DECR', month) end
end

-- Releases reservations whose lease passed (their process died: no phantom 429) and
-- forgets requests that left the hour.
local function sweep(now, month_start)
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', lease, '-inf', now)) do
    local at = tonumber(redis.call('ZSCORE', win, member) or '0')
    forget(member)
    if at >= month_start then uncount_month() end
  end
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', win, '-inf', now - HOUR)) do
    forget(member)
  end
end

local function counts()
  local first = redis.call('ZRANGE', win, 0, 0, 'WITHSCORES')
  local oldest = -1
  if first[2] then oldest = tonumber(first[2]) end
  return redis.call('ZCARD', win), tonumber(redis.call('GET', sum) or '0'), oldest,
    tonumber(redis.call('GET', month) or '0')
end

-- The hour's keys live as long as their newest entry can matter.
local function keep(lease_ms)
  local ttl = HOUR + lease_ms
  for _, key in ipairs({win, tok, lease, sum}) do redis.call('PEXPIRE', key, ttl) end
  redis.call('EXPIRE', month, MONTH_TTL)
end
