-- sweep_stale: users whose open connection missed its pings leave queue and call, and are
-- closed; then forget what no longer matters (rematch pairs, blank skip records, pairings
-- older than the ETA window, bans that are over). At most ARGV[5] users per call, the longest
-- unheard first.
-- Matchmaker.sweep_stale.
-- KEYS[1] partition prefix; ARGV[1…4] see lib.lua
-- ARGV[5] batch size
-- Reply: {}
local batch = tonumber(ARGV[5])
return run(function()
  local cutoff = NOW - RULES.stale_after_ms
  local ids = redis.call("ZRANGEBYSCORE", key("online"), "-inf", "(" .. int(cutoff), "LIMIT", 0,
    batch)
  local stale = {}
  for _, uid in ipairs(ids) do
    stale[#stale + 1] = load_user(uid)
  end
  table.sort(stale, function(x, y) return x.seq < y.seq end)  -- the core's users-dict order
  for _, u in ipairs(stale) do
    drop_stale(u, "timed_out")
  end
  redis.call("ZREMRANGEBYSCORE", key("recent"), "-inf", int(NOW - RULES.rematch_after_ms))
  redis.call("ZREMRANGEBYSCORE", key("pairings"), "-inf", int(NOW - RULES.eta_window_ms))
  for _, uid in ipairs(redis.call("ZRANGEBYSCORE", key("skippers"), "-inf", int(NOW))) do
    redis.call("DEL", key("skips", uid))
    redis.call("ZREM", key("skippers"), uid)
  end
  for _, uid in ipairs(redis.call("ZRANGEBYSCORE", key("ban_ends"), "-inf", int(NOW))) do
    redis.call("HDEL", key("bans"), uid)
    redis.call("ZREM", key("ban_ends"), uid)
  end
  return done()
end)
