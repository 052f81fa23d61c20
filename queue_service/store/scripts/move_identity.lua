-- Store.move_identity: a registration's person key recomputed with today's rules (`qs migrate-identity`):
-- the key it holds moves to the new fingerprint, and its hash names the new one, all or nothing.
--
-- KEYS: registration, its identity key under the fingerprint read, its identity key under the new one
--       (both as written before 2026-11-29: person.lua), the people hash
-- ARGV: id, the fingerprint read from its hash, the new fingerprint
-- Returns 'current' (already the new fingerprint), 'gone' (deleted meanwhile), 'changed' (another
-- fingerprint than the one read: read it again), 'taken <id>' (registration <id> holds the new key:
-- nothing changes), 'moved' (it held its key: now the new one), 'renamed' (it held none, being
-- closed: its hash names the new fingerprint, so that its purge finds the right key).

short_fields(KEYS[1])
local stored = redis.call('HGET', KEYS[1], FIELD.identity_fp)
if not stored then return 'gone' end
stored = print_text(stored)
if stored == ARGV[3] then return 'current' end
if stored ~= ARGV[2] then return 'changed' end
if person_holder(KEYS[4], KEYS[2], ARGV[2]) == ARGV[1] then
  local holder = person_holder(KEYS[4], KEYS[3], ARGV[3])
  if holder and holder ~= ARGV[1] then return 'taken ' .. holder end
  person_release(KEYS[4], KEYS[2], ARGV[2], ARGV[1])
  person_hold(KEYS[4], KEYS[3], ARGV[3], ARGV[1])
  redis.call('HSET', KEYS[1], FIELD.identity_fp, print_value(ARGV[3]))
  return 'moved'
end
redis.call('HSET', KEYS[1], FIELD.identity_fp, print_value(ARGV[3]))
return 'renamed'
