-- ban: ban the user until a time or for good, acting at once: out of its queue place, proposal
-- or call, and its session ended with 4403. Matchmaker.ban.
-- KEYS[1] partition prefix; ARGV[1…4] see lib.lua
-- ARGV[5] user id, ARGV[6] banned until (epoch ms; "0": for good)
-- Reply: {}
local uid, until_at = ARGV[5], tonumber(ARGV[6])
return run(function()
  redis.call("HSET", key("bans"), uid, int(until_at))
  if until_at == 0 then
    redis.call("ZREM", key("ban_ends"), uid)
  else
    redis.call("ZADD", key("ban_ends"), int(until_at), uid)
  end
  local u = load_user(uid)
  if u == nil or ban_until(uid) == nil then  -- no session, or a ban already over: recorded
    return done()
  end
  local m = load_match(u.match)
  if u.status == "queued" or (m ~= nil and m.phase == "checking") then  -- queued, as it knows
    send(uid, "queue_cancelled", "banned")
  end
  if u.status == "queued" then
    dequeue(u)
  elseif m ~= nil then
    local partner = partner_of(m, uid)
    if m.phase == "confirmed" then
      end_call(m, "banned", uid)
      requeue_partner(partner, m, "ended")
      pair_requeued({partner})
    else
      cancel(m, "banned", {[partner] = {"partner_left", true}, [uid] = {"", false}})
    end
  end
  cancel_deadline("interest", uid)
  end_session(u, BANNED_CLOSE)
  return done()
end)
