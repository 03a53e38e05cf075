-- attach: a hello continues the user's session (back online) or opens a new one.
-- Matchmaker.attach.
-- KEYS[1] partition prefix; ARGV[1…4] see lib.lua
-- ARGV[5] user id, ARGV[6] display name, ARGV[7] node id, ARGV[8] session id if it is new
-- Reply: {session id, 1 if new else 0, the user's event order after it}; refused with `banned`
-- while the user is banned
local uid, name, node, new_session = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
return run(function()
  refuse_if_banned(uid)
  local u = load_user(uid)
  if u == nil then
    create_user(uid, name, node, new_session)
    return done({new_session, 1, 0})
  end
  if u.node ~= node then
    -- Taken over from another node: that node drops its copy of the session, closing the
    -- connection if it still has one.
    local code = false
    if u.presence == "online" then code = REPLACED_CLOSE end
    emit({"end_session", uid, u.node, u.session, code})
  end
  if u.node ~= node then
    redis.call("SREM", key("node", u.node), uid)
    redis.call("SADD", key("node", node), uid)
    set_user(u, "node", node)
  end
  set_user(u, "heard", NOW)
  if u.presence == "away" then
    set_user(u, "presence", "online")
    set_user(u, "away_since", nil)
    redis.call("ZADD", key("online"), int(NOW), uid)
    cancel_deadline("resume", uid)
    if u.status == "in_call" and u.match then
      local m = load_match(u.match)
      send(partner_of(m, uid), "partner_resumed", m.id)
    end
    try_pair(u)
  else
    redis.call("ZADD", key("online"), int(NOW), uid)
  end
  return done({u.session, 0, u.order or 0})
end)
