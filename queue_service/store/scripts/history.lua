-- The history prelude: the loader (store/lua.py) puts this file in front of every
-- script that calls add_event.
--
-- A registration's history (what its proof lists) is on its own hash since
-- 2026-11-29, not in a list key of its own (keys.HISTORY_KEY: a key costs about
-- 100 bytes before its value): field `h` counts the events, field `h<n>` is event n
-- as "<at> <kind>" or "<at> <kind> <detail as JSON>", cut into 64 bytes a field (the
-- listpack's limit, store/registrations.py) as `h<n>`, `h<n>.2`, `h<n>.3`...
-- A registration written before keeps its events in the list: the first event added
-- moves them into the hash, in order, and deletes the list. The keys come from KEYS,
-- never built here:
--   add_event(registration, history, text)   appends event `text` ("<at> <kind>[ <detail>]")
--   event_text(at, kind, detail)             that text, from a detail table (nil or empty: none)

local function event_text(at, kind, detail)
  if type(detail) == 'table' and next(detail) then return at .. ' ' .. kind .. ' ' .. cjson.encode(detail) end
  return at .. ' ' .. kind
end

local function store_event(registration, text)
  local field = 'h' .. redis.call('HINCRBY', registration, 'h', 1)
  local part = 1
  for start = 1, #text, 64 do
    redis.call('HSET', registration, part == 1 and field or field .. '.' .. part, string.sub(text, start, start + 63))
    part = part + 1
  end
end

local function add_event(registration, history, text)
  if redis.call('EXISTS', history) == 1 then
    for _, former in ipairs(redis.call('LRANGE', history, 0, -1)) do
      local event = cjson.decode(former)
      store_event(registration, event_text(event.at, event.kind, event.detail))
    end
    redis.call('DEL', history)
  end
  store_event(registration, text)
end
