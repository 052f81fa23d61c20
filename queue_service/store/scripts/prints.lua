-- The fingerprints prelude: the loader (store/lua.py) puts this file in front of every
-- script that calls print_text or print_value.
--
-- A registration's hash keeps its fingerprints (identity_fp, email_fp, phone_fp) as
-- their 32 bytes; hashes written before 2026-11-29 keep them as 64 hexadecimal
-- characters, and a fingerprint that is not 64 hexadecimal characters (none the
-- service computes) is kept as it is. Scripts are given, compare and return the
-- hexadecimal text, and never build a key name from either:
--   print_text(stored)  the text of a stored fingerprint (false or '' gives '')
--   print_value(text)   what to store for a fingerprint given as text
--   print_field(text)   the field naming it in a pool's people or contacts hash: its
--                       first 16 bytes (128 bits of a keyed hash), or the text as it is

local function print_text(stored)
  if stored and #stored == 32 then
    return (string.gsub(stored, '.', function(byte) return string.format('%02x', string.byte(byte)) end))
  end
  return stored or ''
end

local function print_value(text)
  if #text == 64 and not string.find(text, '[^0-9a-f]') then
    return (string.gsub(text, '..', function(pair) return string.char(tonumber(pair, 16)) end))
  end
  return text
end

local function print_field(text)
  local value = print_value(text)
  if #value == 32 then return string.sub(value, 1, 16) end
  return value
end
