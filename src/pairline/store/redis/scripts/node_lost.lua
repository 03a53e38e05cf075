-- node_lost: a node died; detach every user still online through it, as if each connection
-- dropped (in the core's user order), at most ARGV[6] of them per call. Matchmaker.node_lost.
-- KEYS[1] partition prefix; ARGV[1…4] see lib.lua
-- ARGV[5] node id, ARGV[6] batch size
-- Reply: {how many of its users are still online: call again while > 0}
local node, batch = ARGV[5], tonumber(ARGV[6])
return run(function()
  local online = {}
  for _, uid in ipairs(redis.call("SMEMBERS", key("node", node))) do
    if redis.call("ZSCORE", key("online"), uid) then
      online[#online + 1] = load_user(uid)
    end
  end
  table.sort(online, function(x, y) return x.seq < y.seq end)  -- the core's users-dict order
  for i = 1, math.min(batch, #online) do
    detach(online[i])
  end
  return done({math.max(0, #online - batch)})
end)
