-- next_deadline: when the earliest live deadline falls due. Dead entries at the head are
-- dropped on the way, as DeadlineBook.next_at does. Matchmaker.next_deadline.
-- KEYS[1] partition prefix; ARGV[1…4] see lib.lua
-- Reply: {due ms, or false}
return run(function()
  local _, at = live_head()
  return done({at or false})
end)
