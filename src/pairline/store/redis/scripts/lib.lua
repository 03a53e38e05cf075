-- lib.lua: what every transition shares; a port of pairline.core.matchmaker's private methods
-- (each function names the one it mirrors). The loader sends `KEY` (keys.py) .. lib.lua ..
-- <script> as one script, so everything here is local to one call.
--
-- KEYS and ARGV common to every script:
--   KEYS[1]  the partition's key prefix, hash tag included ("pairline:{main}:"); every key is
--            this prefix and a suffix from `KEY` (see keys.py for why)
--   ARGV[1]  the rules (pairline.core.rules.Rules) as JSON
--   ARGV[2]  now, epoch ms (never Redis TIME: the caller's clock decides)
--   ARGV[3]  seed of new match ids: "" → "m_<n>", else "m_<n>_<8 hex of sha1(seed:n)>"
--   ARGV[4]  the calling node's id ("": no node listens for hand-offs; the store used alone)
--   ARGV[5…] the script's own
--
-- Every script returns {"ok", reply, effects} or, refusing having written nothing,
-- {"err", code, message, retry_after_ms or false}. codec.py turns both into Python.
-- Numbers go to Redis as strings made by `int` (a bare Lua number would be cut to 14 digits);
-- Lua false becomes a nil reply, so optional values are `x or false`, booleans 1 or 0.

local P = KEYS[1]
local RULES = cjson.decode(ARGV[1])
local NOW = tonumber(ARGV[2])
local ID_SEED = ARGV[3]
local CALLER = ARGV[4]
local TICKS_PER_MS = 1000
local STALE_CLOSE = 4408  -- CloseCode.STALE
local REPLACED_CLOSE = 4409  -- CloseCode.REPLACED
local BANNED_CLOSE = 4403  -- CloseCode.BANNED

local function key(name, id)
  return P .. KEY[name] .. (id or "")
end

local function int(n)
  return string.format("%.0f", n)
end

local FX = {}
local function emit(effect)
  FX[#FX + 1] = effect
end

-- A refusal: raised before anything was written; `run` turns it into the error reply.
local REFUSAL = {}
local function refuse(code, message, retry_after_ms)
  error({[REFUSAL] = {"err", code, message, retry_after_ms or false}}, 0)
end

local function refuse_state(command, expected, actual)  -- InvalidState.expected
  refuse("invalid_state", command .. " needs status " .. expected .. ", but the user is " .. actual)
end

local function run(main)
  local ok, out = pcall(main)
  if ok then
    return out
  end
  if type(out) == "table" and out[REFUSAL] then
    return out[REFUSAL]
  end
  error(out, 0)
end

-- Matchmaker._changed_skips: the skip records this transition changed (user → record), and
-- the users in the order their records first changed.
local CHANGED_SKIPS, CHANGED_ORDER = {}, {}

-- The hand-off: what a transition has for users connected to other nodes is published to
-- those nodes' channels by the transition itself, atomically with its writes, so that a node
-- that dies right after a transition cannot leave them untold (cluster/bus.py). The caller
-- carries out everything else, its own users' messages included. The channels are sharded and
-- in the partition's slot, where Redis Cluster lets a script publish.
local HANDED, HANDED_NODES = {}, {}  -- node → items, in effect order; nodes in first-use order

local function hand_off(node, item)
  if CALLER == "" or type(node) ~= "string" or node == "" or node == CALLER then
    return
  end
  local items = HANDED[node]
  if items == nil then
    items = {}
    HANDED[node] = items
    HANDED_NODES[#HANDED_NODES + 1] = node
  end
  items[#items + 1] = item
end

-- Where each effect that reaches a user goes: the index of its node field (two for a match).
local NODE_FIELDS = {send = {3}, probe = {3}, end_session = {3}, confirmed = {3, 4}}

local function hand_off_effects()
  for _, e in ipairs(FX) do
    local fields = NODE_FIELDS[e[1]]
    if fields ~= nil then
      hand_off(e[fields[1]], e)
      if fields[2] ~= nil and e[fields[2]] ~= e[fields[1]] then
        hand_off(e[fields[2]], e)
      end
    end
  end
  for _, node in ipairs(HANDED_NODES) do  -- msgpack keeps every number exact (codec.py)
    redis.call("SPUBLISH", key("handoff", node), cmsgpack.pack({CALLER, HANDED[node]}))
  end
end

local function done(reply)
  for _, uid in ipairs(CHANGED_ORDER) do  -- Matchmaker._penalties_changed: after all the rest
    local r = CHANGED_SKIPS[uid]
    emit({"skip_penalty", uid, r.times, r.level, r.until_at})
  end
  hand_off_effects()
  return {"ok", reply or {}, FX}
end

-- A command's reply, with the user's event order once it ran (store.base.Outcome.order).
local function done_for(u, reply)
  return done({u.order or 0, reply or {}})
end

local function ticket_ms(ticket)  -- model.ticket_ms, exact for tickets < 2^53
  return (ticket - math.fmod(ticket, TICKS_PER_MS)) / TICKS_PER_MS
end

local function round_half_even(x)  -- Python's round()
  local f = math.floor(x)
  local d = x - f
  if d > 0.5 or (d == 0.5 and f % 2 == 1) then
    return f + 1
  end
  return f
end

local function bytes_lt(a, b)  -- byte order, whatever Redis's collation locale
  for i = 1, math.min(#a, #b) do
    local x, y = a:byte(i), b:byte(i)
    if x ~= y then
      return x < y
    end
  end
  return #a < #b
end

local function list_json(list)  -- cjson would write an empty list as {}: "" stands for it
  if #list == 0 then
    return ""
  end
  return cjson.encode(list)
end

local function json_list(s)
  if s == nil or s == "" then
    return {}
  end
  return cjson.decode(s)
end

-- ---------------------------------------------------------------- users (model.User)

-- Hash fields: name, session, node, presence, heard, status, interests, lang, ticket, match,
-- last_match, last_partner, away_since, seq (creation order: the core's dict order), order
-- (events produced for the user so far; absent: 0).
local USER_NUMBERS = {heard = true, ticket = true, away_since = true, seq = true, order = true}
local USERS = {}  -- user id → user table, or false when it has no session

local function load_user(uid)
  if uid == nil then
    return nil
  end
  local cached = USERS[uid]
  if cached ~= nil then
    return cached or nil
  end
  local raw = redis.call("HGETALL", key("user", uid))
  if #raw == 0 then
    USERS[uid] = false
    return nil
  end
  local u = {id = uid}
  for i = 1, #raw, 2 do
    local field, value = raw[i], raw[i + 1]
    if USER_NUMBERS[field] then
      value = tonumber(value)
    end
    u[field] = value
  end
  USERS[uid] = u
  return u
end

local function set_user(u, field, value)
  if field == "status" and u.status ~= value then  -- the population counts (Store.population)
    redis.call("HINCRBY", key("population"), u.status, -1)
    redis.call("HINCRBY", key("population"), value, 1)
  end
  u[field] = value
  if value == nil then
    redis.call("HDEL", key("user", u.id), field)
  elseif type(value) == "number" then
    redis.call("HSET", key("user", u.id), field, int(value))
  else
    redis.call("HSET", key("user", u.id), field, value)
  end
end

-- Matchmaker._heard_now: a command from the user is word from it (no probe is answered here).
local function heard_now(u)
  set_user(u, "heard", NOW)
  if u.presence == "online" then
    redis.call("ZADD", key("online"), int(NOW), u.id)
  end
end

local function create_user(uid, name, node, session)
  local seq = redis.call("HINCRBY", key("counters"), "user_seq", 1)
  redis.call("HSET", key("user", uid), "name", name, "session", session, "node", node,
    "presence", "online", "heard", int(NOW), "status", "idle", "seq", int(seq))
  redis.call("ZADD", key("online"), int(NOW), uid)
  redis.call("SADD", key("node", node), uid)
  redis.call("HINCRBY", key("population"), "idle", 1)
  USERS[uid] = nil
end

local function interests_of(u)  -- sorted (by the caller, in Python's order) list, and set
  if u.interest_list == nil then
    u.interest_list = json_list(u.interests)
    u.interest_set = {}
    for _, i in ipairs(u.interest_list) do
      u.interest_set[i] = true
    end
  end
  return u.interest_list, u.interest_set
end

-- ---------------------------------------------------------------- matches (model.Match)

-- Hash fields: a, b (users: offerer, answerer), phase, created, common (JSON list), ta, tb
-- (each side's ticket), t_first (whose ticket the core's dict holds first), probing (JSON [user, ms, user, ms…], in probe order), acked (JSON),
-- proposed, confirmed. A match that ends or is cancelled is deleted.
local MATCHES = {}

local function load_match(mid)
  if mid == nil then
    return nil
  end
  local cached = MATCHES[mid]
  if cached ~= nil then
    return cached or nil
  end
  local raw = redis.call("HGETALL", key("match", mid))
  if #raw == 0 then
    MATCHES[mid] = false
    return nil
  end
  local h = {}
  for i = 1, #raw, 2 do
    h[raw[i]] = raw[i + 1]
  end
  local m = {
    id = mid, a = h.a, b = h.b, phase = h.phase, created = tonumber(h.created),
    common = json_list(h.common), tickets = {[h.a] = tonumber(h.ta), [h.b] = tonumber(h.tb)},
    t_first = h.t_first, probing = {}, acked = {}, proposed = tonumber(h.proposed), confirmed = tonumber(h.confirmed),
  }
  local flat = json_list(h.probing)
  for i = 1, #flat, 2 do
    m.probing[#m.probing + 1] = {flat[i], tonumber(flat[i + 1])}
  end
  for _, uid in ipairs(json_list(h.acked)) do
    m.acked[uid] = true
  end
  MATCHES[mid] = m
  return m
end

local function set_match(m, field, value)
  m[field] = value
  if type(value) == "number" then
    value = int(value)
  end
  redis.call("HSET", key("match", m.id), field, value)
end

local function save_probing(m)
  local flat = {}
  for _, p in ipairs(m.probing) do
    flat[#flat + 1] = p[1]
    flat[#flat + 1] = int(p[2])
  end
  redis.call("HSET", key("match", m.id), "probing", list_json(flat))
end

local function save_acked(m)
  local list = {}
  for _, uid in ipairs({m.a, m.b}) do
    if m.acked[uid] then
      list[#list + 1] = uid
    end
  end
  redis.call("HSET", key("match", m.id), "acked", list_json(list))
end

local function delete_match(m)
  redis.call("DEL", key("match", m.id))
  MATCHES[m.id] = false
end

local function partner_of(m, uid)
  if uid == m.a then
    return m.b
  end
  return m.a
end

local function probe_index(m, uid)
  for i, p in ipairs(m.probing) do
    if p[1] == uid then
      return i
    end
  end
  return nil
end

local function new_match_id()
  local n = int(redis.call("HINCRBY", key("counters"), "match_id", 1))
  if ID_SEED == "" then
    return "m_" .. n
  end
  return "m_" .. n .. "_" .. string.sub(redis.sha1hex(ID_SEED .. ":" .. n), 1, 8)
end

-- The match as effects carry it: codec.py makes a model.Match of it.
local function match_repr(m)
  local probing, acked = {}, {}
  for _, p in ipairs(m.probing) do
    probing[#probing + 1] = p[1]
    probing[#probing + 1] = p[2]
  end
  for _, uid in ipairs({m.a, m.b}) do
    if m.acked[uid] then
      acked[#acked + 1] = uid
    end
  end
  local t_second = partner_of(m, m.t_first)
  return {m.id, m.a, m.b, m.phase, m.created, m.common,
    {m.t_first, m.tickets[m.t_first], t_second, m.tickets[t_second]}, probing, acked, m.proposed or false, m.confirmed or false, m.ended or false, m.end_reason or false,
    m.ended_by or false}
end

-- ---------------------------------------------------------------- deadlines (DeadlineBook)

-- A mirror of the core's heap, dead entries included: `deadlines` holds every entry set (score
-- = due ms, member = "<seq>|<kind>|<key>", seq breaking ties in setting order); `deadline_at`
-- holds each live (kind, key)'s due time. An entry whose time is not its key's live time is
-- dead, and dropped when it reaches the head — as the heap does, so ties fall out the same.

local function set_deadline(kind, k, at)  -- Matchmaker._set_deadline
  local seq = redis.call("HINCRBY", key("counters"), "deadline_seq", 1)
  redis.call("HSET", key("deadline_at"), kind .. "|" .. k, int(at))
  redis.call("ZADD", key("deadlines"), int(at), string.format("%016d|%s|%s", seq, kind, k))
  emit({"wake", at})
end

local function cancel_deadline(kind, k)
  redis.call("HDEL", key("deadline_at"), kind .. "|" .. k)
end

local function live_head()  -- DeadlineBook._drop_dead_head: the earliest live entry
  while true do
    local head = redis.call("ZRANGE", key("deadlines"), 0, 0, "WITHSCORES")
    if #head == 0 then
      return nil
    end
    local member, at = head[1], tonumber(head[2])
    local kind, k = string.match(member, "^%d+|([^|]+)|(.*)$")
    local live = redis.call("HGET", key("deadline_at"), kind .. "|" .. k)
    if live and tonumber(live) == at then
      return member, at, kind, k
    end
    redis.call("ZREM", key("deadlines"), member)
  end
end

local function pop_due()  -- DeadlineBook.pop_due: claimed here, so it completes once
  local member, at, kind, k = live_head()
  if member == nil or at > NOW then
    return nil
  end
  redis.call("ZREM", key("deadlines"), member)
  cancel_deadline(kind, k)
  return kind, k
end

-- ---------------------------------------------------------------- skip records (SkipRecord)

local function load_skips(uid)
  local raw = redis.call("HMGET", key("skips", uid), "times", "level", "until")
  if not raw[2] then
    return nil
  end
  local times = {}
  for t in string.gmatch(raw[1] or "", "%d+") do
    times[#times + 1] = tonumber(t)
  end
  return {uid = uid, times = times, level = tonumber(raw[2]), until_at = tonumber(raw[3])}
end

local function save_skips(r)
  local parts, last = {}, nil
  for i, t in ipairs(r.times) do
    parts[i] = int(t)
    if last == nil or t > last then
      last = t
    end
  end
  redis.call("HSET", key("skips", r.uid), "times", table.concat(parts, ","), "level",
    int(r.level), "until", int(r.until_at))
  -- When SkipRecord.is_blank turns true: never while escalated, else after the last skip has
  -- left the window and the cool-down is over.
  local blank_at = "+inf"
  if r.level == 0 then
    local at = r.until_at
    if last ~= nil and last + RULES.skip_window_ms > at then
      at = last + RULES.skip_window_ms
    end
    blank_at = int(at)
  end
  redis.call("ZADD", key("skippers"), blank_at, r.uid)
end

local function skip_changed(r)  -- an entry of Matchmaker._changed_skips
  if CHANGED_SKIPS[r.uid] == nil then
    CHANGED_ORDER[#CHANGED_ORDER + 1] = r.uid
  end
  CHANGED_SKIPS[r.uid] = r
end

local function cooling_ms(uid)  -- Matchmaker._cooling_ms
  local r = load_skips(uid)
  if r == nil then
    return 0
  end
  return math.max(0, r.until_at - NOW)
end

local function record_skip(uid)  -- SkipRecord.record_skip
  if RULES.skip_limit <= 0 then
    return 0
  end
  local r = load_skips(uid) or {uid = uid, times = {}, level = 0, until_at = 0}
  local horizon = NOW - RULES.skip_window_ms
  local kept = {}
  for _, t in ipairs(r.times) do
    if t > horizon then
      kept[#kept + 1] = t
    end
  end
  kept[#kept + 1] = NOW
  r.times = kept
  local duration = 0
  if #kept >= RULES.skip_limit then
    duration = RULES.cooldowns_ms[math.min(r.level, #RULES.cooldowns_ms - 1) + 1]
    r.level = r.level + 1
    r.until_at = NOW + duration
    r.times = {}
  end
  save_skips(r)
  skip_changed(r)
  return duration
end

local function forgive(uid)  -- SkipRecord.forgive, for a user whose record it changes
  local r = load_skips(uid)
  if r ~= nil and (#r.times > 0 or r.level ~= 0) then
    r.times = {}
    r.level = 0
    save_skips(r)
    skip_changed(r)
  end
end

local function refuse_if_cooling(uid)  -- Matchmaker._refuse_if_cooling
  local cooling = cooling_ms(uid)
  if cooling > 0 then
    refuse("cooldown", "skipping too often; try again in " .. int(math.floor(cooling / 1000) + 1)
      .. " s", cooling)
  end
end

-- ---------------------------------------------------------------- bans (Matchmaker.bans)

local function ban_until(uid)  -- Matchmaker.is_banned: the end of the ban in force (0: for good)
  local raw = redis.call("HGET", key("bans"), uid)
  if not raw then
    return nil
  end
  local until_at = tonumber(raw)
  if until_at ~= 0 and until_at <= NOW then
    return nil  -- over
  end
  return until_at
end

local function refuse_if_banned(uid)  -- Matchmaker._refuse_if_banned
  local until_at = ban_until(uid)
  if until_at == nil then
    return
  elseif until_at == 0 then
    refuse("banned", "you are banned")
  end
  local left = until_at - NOW
  refuse("banned", "you are banned; try again in " .. int(math.floor(left / 1000) + 1) .. " s",
    left)
end

-- ---------------------------------------------------------------- compatibility (policy.py)

local function pair_member(a, b)  -- policy.pair_key, length-prefixed so it cannot be ambiguous
  if not bytes_lt(a, b) then
    a, b = b, a
  end
  return #a .. ":" .. a .. "|" .. b
end

local function met(a, b)
  if RULES.rematch_after_ms > 0 then
    redis.call("ZADD", key("recent"), int(NOW), pair_member(a, b))
  end
end

local function recently_met(a, b)
  local ended = redis.call("ZSCORE", key("recent"), pair_member(a, b))
  return ended and NOW - tonumber(ended) < RULES.rematch_after_ms
end

local function is_blocked(a, b)
  return redis.call("SISMEMBER", key("blocks", a), b) == 1
    or redis.call("SISMEMBER", key("blocks", b), a) == 1
end

local function wants_shared(u, since)  -- Compatibility.wants_shared
  return u.interests ~= nil and NOW - since < RULES.interest_wait_ms
end

local function compatible(a, a_since, b, b_since)  -- Compatibility.compatible
  if a.id == b.id or (a.lang and b.lang and a.lang ~= b.lang) then
    return false
  end
  if is_blocked(a.id, b.id) or recently_met(a.id, b.id) then
    return false
  end
  local a_list = interests_of(a)
  local _, b_set = interests_of(b)
  for _, i in ipairs(a_list) do
    if b_set[i] then
      return true
    end
  end
  return not (wants_shared(a, a_since) or wants_shared(b, b_since))
end

-- ---------------------------------------------------------------- queue (WaitQueue)

local function eta(position)  -- PairingRate.eta_ms
  local window = RULES.eta_window_ms
  local n = redis.call("ZCOUNT", key("pairings"), "(" .. int(NOW - window), "+inf")
  if n == 0 then
    return false
  end
  return round_half_even(position / (n / window))
end

local function position(uid)  -- Matchmaker._position: 1-based, and the ETA (or false)
  local p = redis.call("ZRANK", key("queue"), uid) + 1
  return p, eta(p)
end

local function new_ticket()  -- Matchmaker._new_ticket
  local last = tonumber(redis.call("HGET", key("counters"), "last_ticket") or "0")
  local ticket = math.max(NOW * TICKS_PER_MS, last + 1)
  redis.call("HSET", key("counters"), "last_ticket", int(ticket))
  return ticket
end

local function enqueue(u, ticket)
  set_user(u, "status", "queued")
  set_user(u, "ticket", ticket)
  redis.call("ZADD", key("queue"), int(ticket), u.id)
end

local function dequeue(u, status)
  redis.call("ZREM", key("queue"), u.id)
  set_user(u, "status", status or "idle")
  cancel_deadline("interest", u.id)
end

local function queue_reply(u, requeued)  -- Matchmaker._queue_reply: {requeued, pos, eta, cooldown}
  local flag = -1  -- no `requeued` field
  if requeued ~= nil then
    flag = requeued and 1 or 0
  end
  if u.status == "queued" then
    local p, e = position(u.id)
    return {flag, p, e, false}
  end
  return {flag, false, false, false}
end

local function status_name(u)  -- Matchmaker._status_name
  local m = load_match(u.match)
  if m ~= nil and m.phase == "checking" then
    return "queued"
  end
  return u.status
end

-- ---------------------------------------------------------------- messages

local function next_order(u)  -- the number of the user's next event (effects.Send.order)
  set_user(u, "order", (u.order or 0) + 1)
  return u.order
end

local function send(uid, kind, ...)  -- Matchmaker._send; codec.py builds the message
  local u = load_user(uid)
  emit({"send", uid, u.node, next_order(u), kind, ...})
end

local function leaver_reason(m)  -- _leaver_reason
  if m.phase == "proposed" then
    return "left"
  end
  return ""
end

-- ---------------------------------------------------------------- pairing

local function propose(m)  -- Matchmaker._propose
  set_match(m, "phase", "proposed")
  set_match(m, "proposed", NOW)
  set_deadline("ack", m.id, NOW + RULES.ack_timeout_ms)
  for _, uid in ipairs({m.a, m.b}) do
    local partner = load_user(partner_of(m, uid))
    send(uid, "matched", m.id, partner.id, partner.name, m.common, RULES.ack_timeout_ms)
  end
end

local function reserve(a, b)  -- Matchmaker._reserve
  local first, second = a, b
  if not (a.ticket < b.ticket) then
    first, second = b, a
  end
  local common = {}
  local first_list = interests_of(first)
  local _, second_set = interests_of(second)
  for _, i in ipairs(first_list) do  -- first_list is sorted, so common is too
    if second_set[i] then
      common[#common + 1] = i
    end
  end
  local m = {
    id = new_match_id(), a = first.id, b = second.id, phase = "checking", created = NOW,
    common = common, tickets = {[a.id] = a.ticket, [b.id] = b.ticket}, t_first = a.id,
    probing = {}, acked = {},
  }
  redis.call("HSET", key("match", m.id), "a", m.a, "b", m.b, "phase", m.phase, "created",
    int(NOW), "common", list_json(common), "ta", int(first.ticket), "tb", int(second.ticket),
    "t_first", a.id)
  MATCHES[m.id] = m
  for _, u in ipairs({first, second}) do
    dequeue(u, "proposed")
    set_user(u, "match", m.id)
    if NOW - u.heard > RULES.health_fresh_ms then
      m.probing[#m.probing + 1] = {u.id, NOW}
      emit({"probe", u.id, u.node})
    end
  end
  if #m.probing > 0 then
    save_probing(m)
    set_deadline("health_check", m.id, NOW + RULES.health_timeout_ms)
  else
    propose(m)
  end
end

local function find_partner(u)  -- Matchmaker._find_partner: at most scan_limit from the head
  local since = ticket_ms(u.ticket)
  for _, cid in ipairs(redis.call("ZRANGE", key("queue"), 0, RULES.scan_limit - 1)) do
    if cid ~= u.id then
      local c = load_user(cid)
      if c.presence == "online" and compatible(u, since, c, ticket_ms(c.ticket)) then
        return c
      end
    end
  end
  return nil
end

local function try_pair(u)  -- Matchmaker._try_pair
  if u.status ~= "queued" or u.presence ~= "online" then
    return
  end
  local partner = find_partner(u)
  if partner == nil then
    local since = ticket_ms(u.ticket)
    if wants_shared(u, since) then
      set_deadline("interest", u.id, since + RULES.interest_wait_ms)
    end
    return
  end
  reserve(u, partner)
end

local function pair_requeued(uids)  -- Matchmaker._pair_requeued
  for _, uid in ipairs(uids) do
    local u = load_user(uid)
    if u ~= nil then
      try_pair(u)
    end
  end
end

-- ---------------------------------------------------------------- failures and endings

-- Matchmaker._cancel. outcomes: user → {reason told ("" = not told), back in the queue?}
local function cancel(m, reason, outcomes)
  delete_match(m)
  cancel_deadline("health_check", m.id)
  cancel_deadline("ack", m.id)
  local detail = {}
  for _, uid in ipairs({m.a, m.b}) do
    local u = load_user(uid)
    local outcome = outcomes[uid][1]
    if outcome == "" then
      outcome = "left"
    end
    detail[#detail + 1] = {uid, u.presence, u.heard, m.acked[uid] and 1 or 0,
      probe_index(m, uid) and 1 or 0, outcome}
  end
  emit({"match_failed", match_repr(m), reason, detail})
  local requeued = {}
  for _, uid in ipairs({m.a, m.b}) do
    local u = load_user(uid)
    local told, back = outcomes[uid][1], outcomes[uid][2]
    set_user(u, "match", nil)  -- last_match stays the last call: late skip/end name it
    if back then
      enqueue(u, m.tickets[uid])
      requeued[#requeued + 1] = uid
    else
      set_user(u, "status", "idle")
    end
    if told ~= "" then
      local p = false
      if back then
        p = position(uid)
      end
      send(uid, "match_cancelled", m.id, told, back and 1 or 0, p)
    end
  end
  pair_requeued(requeued)
end

local function end_session(u, close_code)  -- Matchmaker._end_session
  cancel_deadline("resume", u.id)
  redis.call("DEL", key("user", u.id))
  redis.call("HINCRBY", key("population"), u.status, -1)
  redis.call("ZREM", key("online"), u.id)
  redis.call("SREM", key("node", u.node), u.id)
  USERS[u.id] = false
  emit({"end_session", u.id, u.node, u.session, close_code or false})
end

local function end_call(m, reason, by)  -- Matchmaker._end_call
  delete_match(m)
  cancel_deadline("media_check", m.id)
  m.phase, m.ended, m.end_reason, m.ended_by = "ended", NOW, reason, by
  met(m.a, m.b)
  local good = m.confirmed ~= nil and NOW - m.confirmed >= RULES.good_call_ms
  for _, uid in ipairs({m.a, m.b}) do
    local u = load_user(uid)
    set_user(u, "match", nil)
    set_user(u, "last_match", m.id)
    set_user(u, "last_partner", partner_of(m, uid))
    set_user(u, "status", "idle")
    if good then
      forgive(uid)
    end
  end
  emit({"call_ended", match_repr(m)})
end

local function requeue_partner(pid, m, reason)  -- Matchmaker._requeue_partner
  local partner = load_user(pid)
  local cooling = cooling_ms(pid)
  local p = false
  if cooling == 0 then
    enqueue(partner, new_ticket())
    p = position(pid)
  end
  send(pid, "partner_left", m.id, reason, cooling == 0 and 1 or 0, p)
end

local function withdraw(u)  -- Matchmaker._withdraw
  if u.status == "queued" then
    dequeue(u)
  elseif u.status == "proposed" and u.match then
    local m = load_match(u.match)
    cancel(m, "left", {[partner_of(m, u.id)] = {"partner_left", true},
      [u.id] = {leaver_reason(m), false}})
  end
end

local function leave_everything(u, call_reason)  -- Matchmaker._leave_everything
  if u.status == "queued" then
    dequeue(u)
  elseif u.match ~= nil then
    local m = load_match(u.match)
    local partner = partner_of(m, u.id)
    if m.phase == "confirmed" then
      end_call(m, call_reason, u.id)
      requeue_partner(partner, m, call_reason)
      pair_requeued({partner})
    else
      cancel(m, call_reason, {[partner] = {"partner_unreachable", true}, [u.id] = {"", false}})
    end
  end
  cancel_deadline("interest", u.id)
end

local function drop_stale(u, call_reason)  -- Matchmaker._drop_stale
  local m = load_match(u.match)
  if u.status == "queued" or (u.status == "proposed" and m and m.phase == "checking") then
    send(u.id, "queue_cancelled", "connection_timeout")
  end
  leave_everything(u, call_reason)
  end_session(u, STALE_CLOSE)
end

-- ---------------------------------------------------------------- command helpers

local function user_or_refuse(uid)  -- Matchmaker._user
  local u = load_user(uid)
  if u == nil then
    refuse("invalid_state", "no session for this user")
  end
  return u
end

-- Matchmaker._call_for: the confirmed call `mid` names, or nil when it is the user's last one.
local function call_for(u, mid, command)
  if u.match == mid then
    local m = load_match(mid)
    if m.phase ~= "confirmed" then
      refuse_state(command, "in_call", "proposed")
    end
    return m
  end
  if mid == u.last_match then
    return nil
  end
  if u.status ~= "in_call" then
    refuse_state(command, "in_call", status_name(u))
  end
  refuse("not_found", mid .. " is not your current match")
end

local function current_call(u, mid, what)  -- Matchmaker._current_call
  local m = call_for(u, mid, what)
  if m == nil then
    refuse("not_found", mid .. " is over")
  end
  return m
end


local function resume_window_over(uid)  -- Matchmaker._resume_window_over
  local u = load_user(uid)
  if u == nil or u.presence ~= "away" then
    return
  end
  leave_everything(u, "disconnected")
  end_session(u, nil)
end

local function check_media(m, target)  -- Matchmaker._check_media
  if target.presence ~= "online" or probe_index(m, target.id) then
    return  -- already away (the resume window decides) or already being checked
  end
  m.probing[#m.probing + 1] = {target.id, NOW}
  save_probing(m)
  emit({"probe", target.id, target.node})
  set_deadline("media_check", m.id, NOW + RULES.health_timeout_ms)
end

local function detach(u)  -- Matchmaker.detach, for the user's own session
  if u.presence == "away" then
    return
  end
  set_user(u, "presence", "away")
  set_user(u, "away_since", NOW)
  redis.call("ZREM", key("online"), u.id)
  set_deadline("resume", u.id, NOW + RULES.resume_window_ms)
  local m = load_match(u.match)
  if m == nil then
    return
  end
  local partner = partner_of(m, u.id)
  if m.phase == "confirmed" then
    send(partner, "partner_reconnecting", m.id, RULES.resume_window_ms)
  else
    -- A proposal cannot wait for a user who is gone: the partner goes back at once, and the
    -- dropped user keeps its place too (it is not proposed while away).
    cancel(m, "disconnected", {[partner] = {"partner_unreachable", true},
      [u.id] = {"disconnected", true}})
  end
end
