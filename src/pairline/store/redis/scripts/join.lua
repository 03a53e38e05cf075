-- join: idle → queued, paired at once with the longest-waiting compatible user if any.
-- Matchmaker.join.
-- KEYS[1] partition prefix; ARGV[1…4] see lib.lua
-- ARGV[5] user id, ARGV[6] interests (JSON list, sorted; "[]" for none), ARGV[7] lang ("": none)
-- Reply: {the user's event order, queue_reply {-1, position, eta_ms, false}}
local uid, interests, lang = ARGV[5], ARGV[6], ARGV[7]
return run(function()
  local u = user_or_refuse(uid)
  refuse_if_banned(uid)
  if u.status ~= "idle" then
    refuse_state("join", "idle", status_name(u))
  end
  refuse_if_cooling(uid)
  heard_now(u)
  if interests == "[]" then
    interests = nil
  end
  if lang == "" then
    lang = nil
  end
  set_user(u, "interests", interests)
  set_user(u, "lang", lang)
  u.interest_list = nil
  enqueue(u, new_ticket())
  local reply = queue_reply(u)
  try_pair(u)
  return done_for(u, reply)
end)
