-- media_absent: the call's media room has held only the present users for too long (one sat
-- alone, or the room was closed empty): the call ends, both re-queued, the one who waited in the
-- room first; a missing user whose connection is away ends as at the end of its resume window.
-- Nothing if the call is over or both are present. Matchmaker.media_absent.
-- KEYS[1] partition prefix; ARGV[1…4] see lib.lua
-- ARGV[5] match id, ARGV[6..] the user ids present in the room
-- Reply: {}
local mid = ARGV[5]
local present = {}
for i = 6, #ARGV do
  present[ARGV[i]] = true
end
return run(function()
  local m = load_match(mid)
  if m == nil or m.phase ~= "confirmed" then
    return done()
  end
  local missing, stayed = {}, {}
  for _, uid in ipairs({m.a, m.b}) do
    if present[uid] then
      stayed[#stayed + 1] = uid
    else
      missing[#missing + 1] = uid
    end
  end
  if #missing == 0 then
    return done()
  end
  for _, uid in ipairs(missing) do
    if load_user(uid).presence == "away" then
      resume_window_over(uid)
      return done()
    end
  end
  local alone = #missing == 1
  end_call(m, alone and "alone_in_room" or "room_closed", alone and missing[1] or nil)
  for _, uid in ipairs(missing) do
    stayed[#stayed + 1] = uid
  end
  for _, uid in ipairs(stayed) do
    requeue_partner(uid, m, "disconnected")
  end
  pair_requeued(stayed)
  return done()
end)
