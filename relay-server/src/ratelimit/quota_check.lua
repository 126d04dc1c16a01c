-- Takes an envelope's items from their quotas, atomically (docs/rate-limits.md, "Redis").
--
-- KEYS: one window counter per (item, quota), items in order.
-- ARGV: per item, the number of its counters, then per counter: limit, quantity, window secs.
-- An item within every one of its quotas takes its quantity from each; an item over any of
-- them takes nothing. A counter's window starts with its first unit and lasts `window` secs.
-- Returns two numbers per item: 0 and 0 when taken; otherwise the refusing counter's position
-- among the item's (from 1) and the milliseconds until its window ends.
local results = {}
local arg, key = 1, 1
while arg <= #ARGV do
  local count = tonumber(ARGV[arg])
  arg = arg + 1
  local refused = 0
  for j = 0, count - 1 do
    local limit = tonumber(ARGV[arg + j * 3])
    local quantity = tonumber(ARGV[arg + j * 3 + 1])
    local used = tonumber(redis.call('GET', KEYS[key + j]) or 0)
    if refused == 0 and used + quantity > limit then
      refused = j + 1
    end
  end
  if refused == 0 then
    for j = 0, count - 1 do
      local quantity = tonumber(ARGV[arg + j * 3 + 1])
      if redis.call('INCRBY', KEYS[key + j], quantity) == quantity then
        redis.call('EXPIRE', KEYS[key + j], ARGV[arg + j * 3 + 2])
      end
    end
    results[#results + 1] = 0
    results[#results + 1] = 0
  else
    local ttl = redis.call('PTTL', KEYS[key + refused - 1])
    if ttl < 0 then
      ttl = tonumber(ARGV[arg + (refused - 1) * 3 + 2]) * 1000
    end
    results[#results + 1] = refused
    results[#results + 1] = ttl
  end
  arg = arg + count * 3
  key = key + count
end
return results
