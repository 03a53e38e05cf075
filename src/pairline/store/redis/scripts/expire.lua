-- expire: complete the deadlines due at `now`, earliest first, at most ARGV[5] of them (the
-- rest are left for the next call; next_deadline reports them). Each is claimed (ZREM) in here,
-- so nodes expiring at once complete each exactly once. Matchmaker.expire.
-- KEYS[1] partition prefix; ARGV[1…4] see lib.lua
-- ARGV[5] batch size
-- Reply: {}

local function health_check_failed(mid)  -- Matchmaker._health_check_failed
  local m = load_match(mid)
  if m == nil or m.phase ~= "checking" then
    return
  end
  local failed, is_failed = {}, {}
  for _, p in ipairs(m.probing) do  -- in probe order (the core iterates a set here)
    failed[#failed + 1] = p[1]
    is_failed[p[1]] = true
  end
  for _, uid in ipairs(failed) do  -- from its side it was still waiting in the queue
    send(uid, "queue_cancelled", "connection_timeout")
  end
  local outcomes = {}
  for _, uid in ipairs({m.a, m.b}) do
    if is_failed[uid] then
      outcomes[uid] = {"", false}
    else
      outcomes[uid] = {"partner_unreachable", true}
    end
  end
  cancel(m, "health_check", outcomes)
  for _, uid in ipairs(failed) do
    end_session(load_user(uid), STALE_CLOSE)
  end
end

local function ack_timed_out(mid)  -- Matchmaker._ack_timed_out
  local m = load_match(mid)
  if m == nil or m.phase ~= "proposed" then
    return
  end
  local outcomes = {}
  for _, uid in ipairs({m.a, m.b}) do
    outcomes[uid] = {"ack_timeout", m.acked[uid] == true}
  end
  cancel(m, "ack_timeout", outcomes)
end

local function media_check_failed(mid)  -- Matchmaker._media_check_failed
  local m = load_match(mid)
  if m == nil or m.phase ~= "confirmed" or #m.probing == 0 then
    return
  end
  drop_stale(load_user(m.probing[1][1]), "disconnected")
end

local batch = tonumber(ARGV[5])
return run(function()
  for _ = 1, batch do
    local kind, k = pop_due()
    if kind == nil then
      break
    elseif kind == "health_check" then
      health_check_failed(k)
    elseif kind == "ack" then
      ack_timed_out(k)
    elseif kind == "resume" then
      resume_window_over(k)
    elseif kind == "interest" then
      local u = load_user(k)
      if u ~= nil then
        try_pair(u)
      end
    elseif kind == "media_check" then
      media_check_failed(k)
    end
  end
  return done()
end)
