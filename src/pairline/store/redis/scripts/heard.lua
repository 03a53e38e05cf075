-- heard: the users sent something; each is alive, and may answer a pending health check.
-- Matchmaker.heard, for each user in turn (one node's pongs and probe answers, batched).
-- KEYS[1] partition prefix; ARGV[1…4] see lib.lua
-- ARGV[5…] user ids
-- Reply: {}
local function heard(uid)
  local u = load_user(uid)
  if u == nil then
    return
  end
  set_user(u, "heard", NOW)
  if u.presence == "online" then
    redis.call("ZADD", key("online"), int(NOW), uid)
  end
  local m = load_match(u.match)
  if m == nil then
    return
  end
  local i = probe_index(m, uid)
  if i == nil then
    return
  end
  table.remove(m.probing, i)
  save_probing(m)
  if m.phase == "checking" and #m.probing == 0 then
    cancel_deadline("health_check", m.id)
    propose(m)
  elseif m.phase == "confirmed" and #m.probing == 0 then
    cancel_deadline("media_check", m.id)
  end
end

return run(function()
  for i = 5, #ARGV do
    heard(ARGV[i])
  end
  return done()
end)
