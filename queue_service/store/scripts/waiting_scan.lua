-- Store.draw_candidates: one step of a ZSCAN of the waiting set, keeping those joined by a cutoff.
--
-- KEYS: waiting
-- ARGV: cursor, how many entries to look at (ZSCAN's COUNT), cutoff (epoch)
-- Returns {next cursor ("0": done), one string: "<id>U+001F<score>" for each entry whose
-- score is at most the cutoff, joined by U+001E}. ZSCAN's guarantee holds across the steps:
-- an entry present from the first step to the last is returned (perhaps twice). One string
-- rather than two reply elements per entry: the client parses a million of them.

local cutoff = tonumber(ARGV[3])
local reply = redis.call('ZSCAN', KEYS[1], ARGV[1], 'COUNT', ARGV[2])
local entries, kept, count = reply[2], {}, 0
for index = 1, #entries, 2 do
  if tonumber(entries[index + 1]) <= cutoff then
    count = count + 1
    kept[count] = entries[index] .. '\31' .. entries[index + 1]
  end
end
return {reply[1], table.concat(kept, '\30')}
