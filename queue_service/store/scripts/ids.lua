-- The ids prelude: the loader (store/lua.py) puts this file in front of every script
-- that calls id_value or id_text.
--
-- A registration id made since 2026-11-29 is 16 characters of the URL-safe base64
-- alphabet (registration.new_registration_id): 12 bytes. The pool's people and
-- references hashes keep it as those 12 bytes (jemalloc's 16-byte class, not the
-- 32-byte one of 16 characters); any other id (the 32 hexadecimal characters of
-- before) as it is.
-- Scripts are given, compare and return the text, as store/registrations.py
-- (`_id_value`, `_id_text`) does:
--   id_value(text)     what to store for id `text`
--   id_text(stored)    the id a stored value stands for (false stays false)

local ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

local function id_value(text)
  if #text ~= 16 or string.find(text, '[^A-Za-z0-9_%-]') then return text end
  local bytes = {}
  for start = 1, 16, 4 do
    local number = 0
    for at = start, start + 3 do
      number = number * 64 + string.find(ID_ALPHABET, string.sub(text, at, at), 1, true) - 1
    end
    bytes[#bytes + 1] = string.char(math.floor(number / 65536), math.floor(number / 256) % 256, number % 256)
  end
  return table.concat(bytes)
end

local function id_text(stored)
  if not stored or #stored ~= 12 then return stored end
  local characters = {}
  for start = 1, 12, 3 do
    local first, second, third = string.byte(stored, start, start + 2)
    local number = first * 65536 + second * 256 + third
    for shift = 18, 0, -6 do
      local index = math.floor(number / 2 ^ shift) % 64 + 1
      characters[#characters + 1] = string.sub(ID_ALPHABET, index, index)
    end
  end
  return table.concat(characters)
end
