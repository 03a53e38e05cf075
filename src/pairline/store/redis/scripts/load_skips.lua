-- load_skips: skip records from the durable records, for users that have none here (the one
-- held here is as new or newer). Matchmaker.load_skip_penalties, one batch.
-- KEYS[1] partition prefix; ARGV[1…4] see lib.lua
-- ARGV[5…] user id, skip times (comma-separated, oldest first; "" for none), level,
-- cooldown_until: four per user
-- Reply: {how many records were added}
return run(function()
  local added = 0
  for i = 5, #ARGV, 4 do
    local uid = ARGV[i]
    if load_skips(uid) == nil then
      local times = {}
      for t in string.gmatch(ARGV[i + 1], "%d+") do
        times[#times + 1] = tonumber(t)
      end
      save_skips({uid = uid, times = times, level = tonumber(ARGV[i + 2]),
        until_at = tonumber(ARGV[i + 3])})
      added = added + 1
    end
  end
  return done({added})
end)
