-- queue_status: (position, eta_ms, event order) of those of these users who are queued.
-- Matchmaker.queue_status. Reads only.
-- KEYS[1] partition prefix; ARGV[1…4] see lib.lua
-- ARGV[5…] user ids
-- Reply: {user id, position, eta_ms, event order, user id, …}
return run(function()
  local out = {}
  for i = 5, #ARGV do
    if redis.call("ZSCORE", key("queue"), ARGV[i]) then
      local p, e = position(ARGV[i])
      out[#out + 1] = ARGV[i]
      out[#out + 1] = p
      out[#out + 1] = e
      out[#out + 1] = load_user(ARGV[i]).order or 0
    end
  end
  return done(out)
end)
