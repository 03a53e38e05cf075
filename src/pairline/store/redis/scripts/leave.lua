-- leave: queued → idle, or cancel the user's proposal. Matchmaker.leave.
-- KEYS[1] partition prefix; ARGV[1…4] see lib.lua
-- ARGV[5] user id
-- Reply: {the user's event order, {}}
local uid = ARGV[5]
return run(function()
  local u = user_or_refuse(uid)
  if u.status == "queued" then
    dequeue(u)
  elseif u.status == "proposed" and u.match then
    local m = load_match(u.match)
    cancel(m, "left", {[partner_of(m, uid)] = {"partner_left", true},
      [uid] = {leaver_reason(m), false}})
  else
    refuse_state("leave", "queued or proposed", status_name(u))
  end
  return done_for(u)
end)
